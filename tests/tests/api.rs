//! Xray's management API driven by a real generated client: python-xray-api (PyPI,
//! stubs generated from Xray's own .proto files) through `tests/api/xray_api.py`, as a
//! panel drives Xray. Users added at runtime connect, their traffic is counted under
//! Xray's names, online IPs show while connected, and removal closes their sessions.

use std::net::{IpAddr, SocketAddr};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::config::Config;
use wasmray::daemon::Daemon;
use wasmray_tests::vless_client::{dest, header, read_response, tls_connect_from};
use wasmray_tests::{CertDir, servers};

const BOB: &str = "bob@example.com";
const BOB_ID: &str = "5f8d1f0c-2b1a-4c37-9a53-6f7b0c1d2e3f";
const BOB_UP: &str = "user>>>bob@example.com>>>traffic>>>uplink";
const BOB_DOWN: &str = "user>>>bob@example.com>>>traffic>>>downlink";
const BOB_ONLINE: &str = "user>>>bob@example.com>>>online";

/// One API call through the Python client, answered as JSON.
fn api(port: u16, args: &[&str]) -> Value {
    api_with(port, &[], args)
}

/// One call with environment variables `env` (XRAY_API_CA and friends: TLS).
fn api_with(port: u16, env: &[(&str, &std::path::Path)], args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/api/xray_api.py");
    let out = Command::new("python3")
        .envs(env.iter().copied())
        .arg(script)
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "xray_api.py {args:?} failed (is python-xray-api installed? tests/install-peers.sh does it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

fn ok(port: u16, args: &[&str]) -> Value {
    let answer = api(port, args);
    answer
        .get("ok")
        .cloned()
        .unwrap_or_else(|| panic!("{args:?}: {answer}"))
}

/// An RPC that must fail: its status code name and message.
fn refused(port: u16, args: &[&str]) -> (String, String) {
    let answer = api(port, args);
    let code = answer["code"]
        .as_str()
        .unwrap_or_else(|| panic!("{args:?} succeeded: {answer}"));
    (
        code.to_string(),
        answer["details"].as_str().unwrap_or("").to_string(),
    )
}

struct Running {
    daemon: Arc<Daemon>,
    vless: SocketAddr,
    api: u16,
    certs: CertDir,
}

async fn start() -> Running {
    let certs = CertDir::new();
    let toml = wasmray_tests::server_toml("", "");
    let config = Config::parse(&toml, certs.path()).expect("config");
    start_with(&config, certs).await
}

/// A daemon of `config` with its API on a port of its own (TLS as configured).
async fn start_with(config: &Config, certs: CertDir) -> Running {
    let daemon = Arc::new(Daemon::start(config).await.expect("daemon"));
    let vless = daemon.listeners().await[0].1;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap().port();
    let tls = config.api.as_ref().and_then(|a| a.tls.clone());
    let served = Arc::clone(&daemon);
    tokio::spawn(async move {
        wasmray::api::serve(listener, served, tls.as_ref(), std::future::pending()).await
    });
    Running {
        daemon,
        vless,
        api,
        certs,
    }
}

/// A VLESS TCP session as `id` from 127.0.0.2 to `target`.
async fn session(
    r: &Running,
    id: &str,
    target: SocketAddr,
) -> std::io::Result<wasmray_tests::vless_client::Stream> {
    let from: IpAddr = "127.0.0.2".parse().unwrap();
    let mut s = tls_connect_from(Some(from), r.vless, &r.certs.cert_der, &["http/1.1"]).await?;
    let head = header(id, wasmray::proto::vless::Command::Tcp(dest(target)));
    s.write_all(&head).await?;
    s.flush().await?;
    Ok(s)
}

/// Polls a counter until it reads `want` (the relay counts a chunk right after
/// writing it, so the reader may be a moment ahead); bounded.
fn wait_stat(port: u16, name: &str, want: u64) {
    for _ in 0..100 {
        if api(port, &["stat", name]).get("ok") == Some(&json!(want)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{name} never reached {want}: {}",
        api(port, &["stat", name])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panel_adds_a_user_reads_its_traffic_and_removes_it() {
    let r = start().await;
    let port = r.api;
    let echo = servers::echo().await;
    let blocking = |f: Box<dyn FnOnce() + Send>| tokio::task::spawn_blocking(f);

    blocking(Box::new(move || {
        assert_eq!(ok(port, &["inbounds"]), json!(["vless-in"]));
        assert_eq!(ok(port, &["count", "vless-in"]), json!(1));
        assert_eq!(ok(port, &["add", "vless-in", BOB, BOB_ID, ""]), json!(true));
        let (code, text) = refused(port, &["add", "vless-in", BOB, BOB_ID, ""]);
        assert_eq!(
            (code.as_str(), text.as_str()),
            (
                "UNKNOWN",
                "proxy/vless: User bob@example.com already exists."
            )
        );
        assert_eq!(
            ok(port, &["users", "vless-in", BOB]),
            json!([{"email": BOB, "id": BOB_ID, "flow": ""}])
        );
        assert_eq!(ok(port, &["count", "vless-in"]), json!(2));
        // Nobody has connected as bob yet: no counters, no online map.
        let (code, text) = refused(port, &["stat", BOB_UP]);
        assert_eq!(
            (code.as_str(), text.as_str()),
            (
                "NOT_FOUND",
                "user>>>bob@example.com>>>traffic>>>uplink not found."
            )
        );
        let (code, text) = refused(port, &["online", BOB_ONLINE]);
        assert_eq!(code, "NOT_FOUND");
        assert!(text.ends_with("online not found."), "{text}");
    }))
    .await
    .unwrap();

    // Bob connects (from 127.0.0.2: Xray never records 127.0.0.1) and echoes 1000 bytes.
    let mut bob = session(&r, BOB_ID, echo).await.expect("bob connects");
    let payload = vec![0x5a; 1000];
    bob.write_all(&payload).await.unwrap();
    read_response(&mut bob).await.expect("bob is accepted");
    let mut back = vec![0; 1000];
    bob.read_exact(&mut back).await.unwrap();
    assert_eq!(back, payload);

    blocking(Box::new(move || {
        wait_stat(port, BOB_UP, 1000);
        wait_stat(port, BOB_DOWN, 1000);
        assert_eq!(ok(port, &["online", BOB_ONLINE]), json!(1));
        let ips = ok(port, &["ips", BOB_ONLINE]);
        assert_eq!(
            ips.as_object()
                .map(|m| m.keys().cloned().collect::<Vec<_>>()),
            Some(vec!["127.0.0.2".to_string()])
        );
        assert!(
            ips["127.0.0.2"].as_i64().is_some_and(|t| t > 1_600_000_000),
            "{ips}"
        );
        assert_eq!(ok(port, &["all-online"]), json!([BOB_ONLINE]));
        assert_eq!(
            ok(port, &["users-stats", "traffic"]),
            json!([{"email": BOB, "ips": ["127.0.0.2"], "up": 1000, "down": 1000}])
        );
        let bobs = ok(port, &["query", "user>>>bob@example.com>>>"]);
        assert_eq!(bobs, json!({ BOB_DOWN: 1000, BOB_UP: 1000 }));
        // The same service under its v2ray name.
        assert_eq!(
            ok(port, &["v2ray-query", "user>>>bob@example.com>>>"]),
            bobs
        );
        let inbound = ok(port, &["query", "inbound>>>vless-in>>>"]);
        assert_eq!(
            inbound["inbound>>>vless-in>>>traffic>>>uplink"],
            json!(1000)
        );
        // A reset answers the old value and leaves zero.
        assert_eq!(ok(port, &["stat", BOB_UP, "reset"]), json!(1000));
        assert_eq!(ok(port, &["stat", BOB_UP]), json!(0));
        let sys = ok(port, &["sys"]);
        assert!(sys["tasks"].as_u64().is_some_and(|n| n > 0), "{sys}");
        assert!(sys["sys"].as_u64().is_some_and(|n| n > 0), "{sys}");
        // Removing bob closes his session.
        assert_eq!(
            ok(port, &["remove", "vless-in", "BOB@example.com"]),
            json!(true)
        );
        let (_, text) = refused(port, &["remove", "vless-in", BOB]);
        assert_eq!(text, "proxy/vless: User bob@example.com not found.");
        assert_eq!(ok(port, &["count", "vless-in"]), json!(1));
    }))
    .await
    .unwrap();
    let mut rest = Vec::new();
    let ended = tokio::time::timeout(Duration::from_secs(10), bob.read_to_end(&mut rest)).await;
    assert!(ended.is_ok(), "bob's session was closed");

    // And bob can no longer connect.
    let mut again = session(&r, BOB_ID, echo).await.expect("tcp+tls still work");
    again.write_all(b"hello").await.unwrap();
    assert!(
        read_response(&mut again).await.is_err(),
        "a removed user is refused"
    );

    blocking(Box::new(move || {
        assert!(
            ok(port, &["all-online"])
                .as_array()
                .is_some_and(|a| a.is_empty())
        );
        // His counters stay, as in Xray.
        assert_eq!(ok(port, &["stat", BOB_DOWN]), json!(1000));
    }))
    .await
    .unwrap();
    drop(r.daemon);
}

#[tokio::test]
async fn wrong_handlers_and_unsupported_rpcs_get_xrays_answers() {
    let r = start().await;
    let port = r.api;
    tokio::task::spawn_blocking(move || {
        let (code, text) = refused(port, &["add", "nope", BOB, BOB_ID, ""]);
        assert_eq!(code, "UNKNOWN");
        assert_eq!(
            text,
            "app/proxyman/command: failed to get handler: nope > app/proxyman/inbound: handler not found: nope"
        );
        let (_, text) = refused(port, &["add", "vless-in", "x@y", "not-a-uuid", ""]);
        assert!(text.starts_with("app/proxyman/command: failed to parse user > "), "{text}");
        let (_, text) = refused(port, &["add", "vless-in", "x@y", BOB_ID, "xtls-rprx-origin"]);
        assert!(text.contains("unknown flow"), "{text}");
        let (_, text) = refused(port, &["remove", "vless-in", ""]);
        assert_eq!(text, "proxy/vless: Email must not be empty.");
        assert_eq!(ok(port, &["users", "vless-in", "nobody@x"]), json!([{"email": "", "id": "", "flow": ""}]));
    })
    .await
    .unwrap();
}

/// `[api] persist`: users added and removed over the API outlive a reload and a
/// restart, and the file says what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_changes_are_kept_across_a_reload_and_a_restart_with_persist() {
    let certs = CertDir::new();
    let extra = "[api]\nlisten = \"127.0.0.1:0\"\npersist = \"state/users.json\"\n";
    let toml = wasmray_tests::server_toml("", extra);
    std::fs::create_dir(certs.path().join("state")).unwrap();
    let ledger = certs.path().join("state/users.json");
    let config = Config::parse(&toml, certs.path()).expect("config");
    let r = start_with(&config, certs).await;
    let port = r.api;
    tokio::task::spawn_blocking(move || {
        assert_eq!(
            ok(port, &["add", "vless-in", BOB, BOB_ID, "xtls-rprx-vision"]),
            json!(true)
        );
        assert_eq!(
            ok(port, &["remove", "vless-in", "alice@example.com"]),
            json!(true)
        );
    })
    .await
    .unwrap();
    let text = std::fs::read_to_string(&ledger).expect("the ledger is written");
    assert!(
        text.contains(BOB_ID) && text.contains("alice@example.com"),
        "{text}"
    );

    // A reload of the same config keeps the API's changes.
    let summary = r
        .daemon
        .reload(&config, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(summary.users_revoked, 0, "{summary:?}");
    let users = |port: u16| tokio::task::spawn_blocking(move || ok(port, &["users", "vless-in"]));
    let bob_only = json!([{"email": BOB, "id": BOB_ID, "flow": "xtls-rprx-vision"}]);
    assert_eq!(users(port).await.unwrap(), bob_only);

    // So does a restart: a new daemon from the same config reads the ledger.
    r.daemon.shutdown(Duration::from_secs(1)).await;
    let certs = r.certs;
    let again = start_with(&config, certs).await;
    assert_eq!(users(again.api).await.unwrap(), bob_only);
    // The config's user stays removed: alice cannot connect.
    let echo = servers::echo().await;
    let mut alice = session(&again, wasmray_tests::UUID, echo).await.unwrap();
    alice.write_all(b"hi").await.unwrap();
    assert!(
        read_response(&mut alice).await.is_err(),
        "alice was removed for good"
    );
    again.daemon.shutdown(Duration::from_secs(1)).await;
}

/// A CA and a client certificate it signed, as PEM files in `dir`: ca.pem,
/// client.pem, client-key.pem; and a second, unknown client: other.pem, other-key.pem.
fn client_certificates(dir: &std::path::Path) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    let panel = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["panel".to_string()])
        .unwrap()
        .signed_by(&panel, &ca)
        .unwrap();
    std::fs::write(dir.join("client.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("client-key.pem"), panel.serialize_pem()).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["other".to_string()]).unwrap();
    std::fs::write(dir.join("other.pem"), other.cert.pem()).unwrap();
    std::fs::write(dir.join("other-key.pem"), other.signing_key.serialize_pem()).unwrap();
}

/// Beyond loopback the API needs TLS; with `client_ca`, only a client certificate that
/// CA signed gets in. Plain-text and unknown clients are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_tls_takes_only_the_panels_certificate() {
    let certs = CertDir::new();
    let remote = |tls: &str| {
        let extra = format!("[api]\nlisten = \"0.0.0.0:0\"\nallow_remote = true\n{tls}");
        Config::parse(&wasmray_tests::server_toml("", &extra), certs.path())
    };
    let err = remote("").unwrap_err().to_string();
    assert!(
        err.contains("api.tls") && err.contains("needs TLS"),
        "{err}"
    );
    client_certificates(certs.path());
    let tls = "[api.tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\nclient_ca = \"ca.pem\"\n";
    assert!(
        remote(tls)
            .expect("TLS beyond loopback")
            .api
            .unwrap()
            .tls
            .is_some()
    );

    let extra = format!("[api]\nlisten = \"127.0.0.1:0\"\n{tls}");
    let config = Config::parse(&wasmray_tests::server_toml("", &extra), certs.path()).unwrap();
    let dir = certs.path().to_path_buf();
    let r = start_with(&config, certs).await;
    let port = r.api;
    tokio::task::spawn_blocking(move || {
        let ca = dir.join("cert.pem");
        let (cert, key) = (dir.join("client.pem"), dir.join("client-key.pem"));
        let panel = [
            ("XRAY_API_CA", ca.as_path()),
            ("XRAY_API_CERT", &cert),
            ("XRAY_API_KEY", &key),
        ];
        assert_eq!(
            api_with(port, &panel, &["inbounds"]),
            json!({"ok": ["vless-in"]})
        );
        let (other, other_key) = (dir.join("other.pem"), dir.join("other-key.pem"));
        let stranger = [
            ("XRAY_API_CA", ca.as_path()),
            ("XRAY_API_CERT", &other),
            ("XRAY_API_KEY", &other_key),
        ];
        for env in [&stranger[..], &stranger[..1], &[]] {
            let answer = api_with(port, env, &["inbounds"]);
            assert_eq!(answer["code"], json!("UNAVAILABLE"), "{env:?}: {answer}");
        }
    })
    .await
    .unwrap();
    drop(r.daemon);
}
