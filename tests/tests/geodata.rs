//! Routing data end to end: geosite, geoip and sing-box rule-sets from files, routing
//! real VLESS sessions through the wasm route-rules; a data file swapped under traffic;
//! `.srs` files compiled by the real sing-box read as sing-box reads them.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use wasmray::config::Config;
use wasmray::geodata::dat::write;
use wasmray::geodata::ruleset::Query;
use wasmray_plugin_sdk::tls::build_client_hello;
use wasmray_tests::vless_client::{dest, echoes};
use wasmray_tests::{CertDir, TestServer, server_toml, servers};

const ROUTES: &str = r#"
[geodata]
geosite = "geosite.dat"
geoip = "geoip.dat"
[geodata.rule_sets]
media = "media.json"

[plugins]
call_timeout = "250ms"
route_only = true

[plugins.config.route-rules]
default = "block"
[[plugins.config.route-rules.rule]]
domain = ["geosite:allowed", "geosite:tagged@ok", "ext:my-ext.dat:extra"]
outbound = "direct"
[[plugins.config.route-rules.rule]]
rule_set = ["media"]
outbound = "direct"
[[plugins.config.route-rules.rule]]
ip = ["geoip:loopback"]
protocol = ["http"]
outbound = "direct"
"#;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn write_data(dir: &Path, allowed: &[&str]) {
    let domains = allowed.iter().map(|d| (2, *d, &[][..])).collect();
    let site = write::geosite(&[
        ("ALLOWED", domains),
        (
            "tagged",
            vec![(3, "yes.test", &["ok"][..]), (3, "no.test", &[][..])],
        ),
    ]);
    std::fs::write(dir.join("geosite.dat"), site).unwrap();
    let geoip = write::geoip(&[("LOOPBACK", vec![(ip("127.0.0.0"), 8)], false)]);
    std::fs::write(dir.join("geoip.dat"), geoip).unwrap();
    let ext = write::geosite(&[("EXTRA", vec![(2, "ext.test", &[][..])])]);
    std::fs::write(dir.join("my-ext.dat"), ext).unwrap();
    let media = r#"{"version": 2, "rules": [{"domain_suffix": ["media.test"]}]}"#;
    std::fs::write(dir.join("media.json"), media).unwrap();
}

async fn start(allowed: &[&str]) -> TestServer {
    let certs = CertDir::new();
    write_data(certs.path(), allowed);
    let config = Config::parse(&server_toml("", ROUTES), certs.path()).unwrap();
    TestServer::start_with(config, certs).await
}

/// Whether a TLS session with `sni` to the echo server is routed direct (the echo
/// answers) rather than to block (closed with nothing).
async fn direct(server: &TestServer, echo: std::net::SocketAddr, sni: &str) -> bool {
    echoed(server, echo, &build_client_hello(Some(sni), &["h2"])).await
}

async fn echoed(server: &TestServer, echo: std::net::SocketAddr, hello: &[u8]) -> bool {
    echoes(server.addr, &server.certs.cert_der, dest(echo), hello).await
}

#[tokio::test]
async fn sessions_are_routed_by_geosite_geoip_and_rule_sets_from_files() {
    let server = start(&["allowed.test"]).await;
    let echo = servers::echo().await;
    assert!(direct(&server, echo, "www.allowed.test").await);
    assert!(direct(&server, echo, "yes.test").await, "entry with @ok");
    assert!(!direct(&server, echo, "no.test").await, "entry without @ok");
    assert!(direct(&server, echo, "a.media.test").await, "rule-set");
    assert!(direct(&server, echo, "www.ext.test").await, "ext:FILE:LIST");
    assert!(!direct(&server, echo, "other.test").await);
    // geoip: plain HTTP to the echo's 127.0.0.1, whatever its Host.
    let http = b"GET / HTTP/1.1\r\nHost: unlisted.test\r\n\r\n";
    assert!(echoed(&server, echo, http).await, "geoip:loopback");
    let summary = server.daemon.registry.geodata().summary();
    assert!(
        summary.contains("geosite 2 lists") && summary.contains("1 rule-sets"),
        "{summary}"
    );
}

#[tokio::test]
async fn a_data_file_swapped_under_traffic_fails_no_session_and_a_broken_one_is_refused() {
    wasmray_tests::logcapture::install();
    let server = Arc::new(start(&["one.test"]).await);
    let echo = servers::echo().await;
    assert!(!direct(&server, echo, "two.test").await);
    let (stop, failed, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let traffic = {
        let (server, stop, failed, done) =
            (server.clone(), stop.clone(), failed.clone(), done.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if !direct(&server, echo, "one.test").await {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // The watcher sees the new file, reloads it and swaps the pipeline.
    let dir = server.certs.path().to_path_buf();
    let site = write::geosite(&[
        (
            "allowed",
            vec![(2, "one.test", &[][..]), (2, "two.test", &[][..])],
        ),
        ("tagged", vec![(3, "yes.test", &["ok"][..])]),
    ]);
    std::fs::write(dir.join("geosite.dat.tmp"), site).unwrap();
    std::fs::rename(dir.join("geosite.dat.tmp"), dir.join("geosite.dat")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !direct(&server, echo, "two.test").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new geosite was never served"
        );
    }
    // A broken file is refused; the data read before keeps serving.
    let before = server.daemon.registry.geodata();
    std::fs::write(dir.join("geosite.dat"), [0x0a, 0xff, 0xff]).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !wasmray_tests::logcapture::all().contains("geodata refused") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the broken file was not looked at"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        Arc::ptr_eq(&before, &server.daemon.registry.geodata()),
        "the broken file replaced the data"
    );
    assert!(
        direct(&server, echo, "two.test").await,
        "the data read before serves"
    );
    stop.store(true, Ordering::Relaxed);
    traffic.await.unwrap();
    assert!(done.load(Ordering::Relaxed) > 0);
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "sessions failed during the swap"
    );
}

/// `sing-box rule-set compile` of `json` into `srs`.
fn compile(json: &Path, srs: &Path) {
    let status = Command::new("sing-box")
        .args(["rule-set", "compile", "-o"])
        .arg(srs)
        .arg(json)
        .status()
        .expect("sing-box (tests/install-peers.sh installs it)");
    assert!(
        status.success(),
        "sing-box rule-set compile {}",
        json.display()
    );
}

/// What the real sing-box says of `query` on the rule-set `srs`.
fn sing_box_matches(srs: &Path, query: &str) -> bool {
    let out = Command::new("sing-box")
        .args(["rule-set", "match", "-f", "binary"])
        .arg(srs)
        .arg(query)
        .output()
        .expect("sing-box (tests/install-peers.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).contains("match rules")
        || String::from_utf8_lossy(&out.stderr).contains("match rules")
}

#[test]
fn srs_files_compiled_by_sing_box_match_as_sing_box_matches_them() {
    let dir = tempfile::tempdir().unwrap();
    let rules = r#"[
        {"domain": ["exact.test", "Mixed.Case.test"], "domain_suffix": ["suffix.test", ".sub.test"],
         "domain_keyword": ["kw"], "domain_regex": ["^re[0-9]+\\.test$"]},
        {"ip_cidr": ["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"]},
        {"type": "logical", "mode": "or", "rules": [{"domain": "either.test"}, {"ip_cidr": "198.51.100.0/24"}]},
        {"domain_suffix": "inverted.test", "invert": true, "ip_cidr": "203.0.113.0/24"}
    ]"#;
    let queries = [
        "exact.test",
        "a.exact.test",
        "mixed.case.test",
        "suffix.test",
        "a.suffix.test",
        "sub.test",
        "a.sub.test",
        "b.a.sub.test",
        "xkwx.test",
        "re5.test",
        "re.test",
        "either.test",
        "inverted.test",
        "x.inverted.test",
        "unrelated.test",
        "10.1.1.1",
        "11.0.0.1",
        "192.0.2.1",
        "192.0.2.2",
        "2001:db8::7",
        "2001:db9::1",
        "198.51.100.9",
        "203.0.113.5",
    ];
    for version in [1, 2, 3] {
        let json = dir.path().join(format!("v{version}.json"));
        let srs = dir.path().join(format!("v{version}.srs"));
        std::fs::write(
            &json,
            format!(r#"{{"version": {version}, "rules": {rules}}}"#),
        )
        .unwrap();
        compile(&json, &srs);
        let bytes = std::fs::read(&srs).unwrap();
        // sing-box writes version 1 as asked, and 3 or 4 down to 2 when no rule needs more.
        assert_eq!(bytes[3], if version == 1 { 1 } else { 2 });
        let binary = wasmray::geodata::read_rule_set(&srs).unwrap();
        let source = wasmray::geodata::read_rule_set(&json).unwrap();
        for q in queries {
            let query = match q.parse::<IpAddr>() {
                Ok(addr) => Query {
                    ip: Some(addr),
                    ..Query::default()
                },
                Err(_) => Query {
                    domain: Some(q),
                    ..Query::default()
                },
            };
            let expected = sing_box_matches(&srs, q);
            assert_eq!(binary.matches(&query), expected, "v{version} srs: {q}");
            assert_eq!(source.matches(&query), expected, "v{version} json: {q}");
        }
        // The body of versions 3 and 4 is version 2's: the same file under their
        // header must read the same.
        for v in [3u8, 4] {
            let mut patched = bytes.clone();
            patched[3] = v;
            let path = dir.path().join(format!("as-v{v}.srs"));
            std::fs::write(&path, &patched).unwrap();
            let set = wasmray::geodata::read_rule_set(&path).unwrap();
            assert!(set.matches(&Query {
                domain: Some("a.sub.test"),
                ..Query::default()
            }));
        }
    }
}

#[test]
fn srs_files_with_items_wasmray_cannot_route_on_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("ports.json");
    let srs = dir.path().join("ports.srs");
    std::fs::write(
        &json,
        r#"{"version": 3, "rules": [{"domain": "a.test"}, {"port": 443, "network_type": "wifi"}]}"#,
    )
    .unwrap();
    let status = Command::new("sing-box")
        .args(["rule-set", "compile", "-o"])
        .arg(&srs)
        .arg(&json)
        .status()
        .unwrap();
    assert!(status.success());
    let e = wasmray::geodata::read_rule_set(&srs)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("ports.srs") && e.contains("item port (9)"),
        "{e}"
    );
    let e = wasmray::geodata::read_rule_set(&json)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("rule 1") && e.contains("port"), "{e}");
    // Every prefix of a real file is refused cleanly or read, never a panic.
    let bytes = std::fs::read(&srs).unwrap();
    for cut in 0..bytes.len() {
        let _ = wasmray::geodata::srs::parse(&bytes[..cut]);
    }
}

#[tokio::test]
async fn an_ext_file_is_watched_once_a_rule_has_opened_it() {
    let server = start(&["allowed.test"]).await;
    let echo = servers::echo().await;
    assert!(direct(&server, echo, "www.ext.test").await);
    assert!(!direct(&server, echo, "new-ext.test").await);
    let dir = server.certs.path().to_path_buf();
    let ext = write::geosite(&[("extra", vec![(2, "new-ext.test", &[][..])])]);
    std::fs::write(dir.join("my-ext.dat.tmp"), ext).unwrap();
    std::fs::rename(dir.join("my-ext.dat.tmp"), dir.join("my-ext.dat")).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !direct(&server, echo, "new-ext.test").await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the changed ext file was never served"
        );
    }
    assert!(
        !direct(&server, echo, "www.ext.test").await,
        "the old list is gone"
    );
}
