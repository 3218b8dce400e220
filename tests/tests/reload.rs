//! Whole-config reloads under traffic: users added and removed, the certificate
//! rotated, inbounds added and removed, an invalid config refused; running sessions of
//! everyone else go on untouched.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::config::Config;
use wasmray::daemon::Daemon;
use wasmray::proto::vless::Command;
use wasmray_tests::vless_client::{dest, header, read_response, tls_connect};
use wasmray_tests::{CertDir, UUID, server_toml, servers};

const GRACE: Duration = Duration::from_secs(2);
const BOB: &str = "0f6a5c44-5b8e-4e34-9c1a-2b0c4a9e7d10";

/// The suite's server config with alice, `extra_users` (uuid, email) and `extra`.
fn config_text(extra_users: &[(&str, &str)], extra: &str) -> String {
    let mut users = String::new();
    for (id, email) in extra_users {
        users.push_str(&format!(
            "[[inbound.users]]\nid = \"{id}\"\nemail = \"{email}\"\n"
        ));
    }
    server_toml(&users, extra)
}

/// Writes a fresh `cert.pem` and `key.pem` for localhost into `dir`; returns the DER.
fn write_cert(dir: &Path) -> Vec<u8> {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    cert.cert.der().to_vec()
}

fn load(dir: &Path, text: &str) -> Result<Config, String> {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).map_err(|e| e.to_string())
}

/// A TCP session as user `uuid` to `target`, response header read.
async fn session(
    daemon: &Daemon,
    cert: &[u8],
    uuid: &str,
    target: std::net::SocketAddr,
) -> wasmray_tests::vless_client::Stream {
    let addr = daemon.addr("vless-in").await.unwrap();
    let mut s = tls_connect(addr, cert, &["http/1.1"]).await.unwrap();
    s.write_all(&header(uuid, Command::Tcp(dest(target))))
        .await
        .unwrap();
    s.flush().await.unwrap();
    s
}

async fn echo_round(s: &mut wasmray_tests::vless_client::Stream, first: bool) {
    s.write_all(b"ping").await.unwrap();
    s.flush().await.unwrap();
    if first {
        read_response(s).await.unwrap();
    }
    let mut got = [0u8; 4];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_1gb_download_runs_whole_across_ten_reloads() {
    const SIZE: u64 = 1 << 30;
    let certs = CertDir::new();
    let dir = certs.path();
    let mut cert = write_cert(dir);
    let config = load(dir, &config_text(&[], "")).unwrap();
    let daemon = Daemon::start(&config).await.unwrap();
    let blob = servers::blob(SIZE).await;

    let mut download = session(&daemon, &cert, UUID, blob).await;
    read_response(&mut download).await.unwrap();
    let progress = Arc::new(AtomicU64::new(0));
    let reader = tokio::spawn({
        let progress = progress.clone();
        async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut expected = vec![0u8; 64 * 1024];
            let mut offset = 0u64;
            loop {
                let n = download.read(&mut buf).await.expect("download read");
                if n == 0 {
                    return offset;
                }
                servers::fill_pattern(offset, &mut expected[..n]);
                assert!(buf[..n] == expected[..n], "corrupt data at {offset}");
                offset += n as u64;
                progress.store(offset, Ordering::Relaxed);
            }
        }
    });

    let echo = servers::echo().await;
    for round in 1..=10u64 {
        // Each reload happens while the download is in flight, spread over it.
        while progress.load(Ordering::Relaxed) < round * SIZE / 12 {
            assert!(!reader.is_finished(), "the download ended early");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let new_cert = write_cert(dir);
        let users: &[(&str, &str)] = if round % 2 == 1 {
            &[(BOB, "bob@example.com")]
        } else {
            &[]
        };
        let config = load(dir, &config_text(users, "")).unwrap();
        let summary = daemon.reload(&config, GRACE).await.expect("reload");
        assert_eq!(summary.inbounds_kept, 1);
        assert_eq!(summary.users_revoked, usize::from(round % 2 == 0));
        // New handshakes get the new certificate; the old one is no longer served.
        let addr = daemon.addr("vless-in").await.unwrap();
        assert!(tls_connect(addr, &cert, &["http/1.1"]).await.is_err());
        cert = new_cert;
        let mut probe = session(&daemon, &cert, UUID, echo).await;
        echo_round(&mut probe, true).await;
    }
    let got = tokio::time::timeout(Duration::from_secs(300), reader)
        .await
        .expect("the download finishes")
        .unwrap();
    assert_eq!(got, SIZE);
}

#[tokio::test]
async fn a_removed_users_idle_session_is_closed_and_the_others_go_on() {
    let certs = CertDir::new();
    let dir = certs.path();
    let cert = write_cert(dir);
    let with_bob = config_text(&[(BOB, "bob@example.com")], "");
    let daemon = Daemon::start(&load(dir, &with_bob).unwrap()).await.unwrap();
    let echo = servers::echo().await;
    let mut alice = session(&daemon, &cert, UUID, echo).await;
    echo_round(&mut alice, true).await;
    let mut bob = session(&daemon, &cert, BOB, echo).await;
    echo_round(&mut bob, true).await;

    let without_bob = load(dir, &config_text(&[], "")).unwrap();
    let summary = daemon.reload(&without_bob, GRACE).await.unwrap();
    assert_eq!(summary.users_revoked, 1);
    // Bob sends nothing: the daemon ends his idle session by itself, within 1 s.
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(1), bob.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "bob's session is still open: {closed:?}"
    );
    echo_round(&mut alice, false).await;
    // And bob cannot start a new one.
    let mut again = session(&daemon, &cert, BOB, echo).await;
    let _ = again.write_all(b"ping").await;
    let mut head = [0u8; 2];
    assert!(again.read_exact(&mut head).await.is_err());
}

#[tokio::test]
async fn an_invalid_config_is_refused_whole_while_traffic_continues() {
    let certs = CertDir::new();
    let dir = certs.path();
    let cert = write_cert(dir);
    let good = config_text(&[], "");
    let daemon = Daemon::start(&load(dir, &good).unwrap()).await.unwrap();
    let echo = servers::echo().await;
    let mut alice = session(&daemon, &cert, UUID, echo).await;
    echo_round(&mut alice, true).await;

    // Refused by validation: the same text `wasmray check` prints.
    let bad = config_text(&[], "[plugins.config.route-rules]\ndefault = \"nowhere\"\n");
    let err = load(dir, &bad).unwrap_err();
    assert!(err.contains("nowhere"), "{err}");
    // Valid TOML, but its new inbound cannot listen (the port is taken): refused at
    // apply time, and nothing of it is applied (the user bob is not added).
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let second = format!(
        "[[inbound]]\ntag = \"socks-in\"\ntype = \"socks\"\nlisten = \"127.0.0.1:{port}\"\n"
    );
    let unbindable = load(dir, &config_text(&[(BOB, "bob")], &second)).unwrap();
    let err = daemon.reload(&unbindable, GRACE).await.unwrap_err();
    assert!(format!("{err:#}").contains("cannot listen"), "{err:#}");
    assert_eq!(daemon.listeners().await.len(), 1);
    let mut bob = session(&daemon, &cert, BOB, echo).await;
    let _ = bob.write_all(b"ping").await;
    let mut head = [0u8; 2];
    assert!(bob.read_exact(&mut head).await.is_err(), "bob was added");

    echo_round(&mut alice, false).await;
    let mut fresh = session(&daemon, &cert, UUID, echo).await;
    echo_round(&mut fresh, true).await;
}

#[tokio::test]
async fn inbounds_are_added_and_removed_and_a_removed_one_drains() {
    let certs = CertDir::new();
    let dir = certs.path();
    let cert = write_cert(dir);
    let daemon = Daemon::start(&load(dir, &config_text(&[], "")).unwrap())
        .await
        .unwrap();
    let vless = daemon.addr("vless-in").await.unwrap();
    let socks = "[[inbound]]\ntag = \"socks-in\"\ntype = \"socks\"\nlisten = \"127.0.0.1:0\"\n";
    let added = daemon
        .reload(&load(dir, &config_text(&[], socks)).unwrap(), GRACE)
        .await
        .unwrap();
    assert_eq!((added.inbounds_kept, added.inbounds_added), (1, 1));
    assert_eq!(
        daemon.addr("vless-in").await,
        Some(vless),
        "kept its listener"
    );
    let socks_addr = daemon.addr("socks-in").await.unwrap();
    let echo = servers::echo().await;
    let mut through_socks = wasmray_tests::peers::socks5_connect(socks_addr, echo)
        .await
        .unwrap();
    through_socks.write_all(b"ping").await.unwrap();
    let mut got = [0u8; 4];
    through_socks.read_exact(&mut got).await.unwrap();

    let removed = daemon
        .reload(&load(dir, &config_text(&[], "")).unwrap(), GRACE)
        .await
        .unwrap();
    assert_eq!(removed.inbounds_removed, 1);
    // No new connections to the removed inbound...
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(socks_addr).await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still accepting");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...its session goes on during the grace period, and is closed after it.
    through_socks.write_all(b"pong").await.unwrap();
    through_socks.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"pong");
    let mut buf = [0u8; 4];
    let end = tokio::time::timeout(GRACE * 3, through_socks.read(&mut buf)).await;
    assert!(matches!(end, Ok(Ok(0)) | Ok(Err(_))), "{end:?}");
    let mut fresh = session(&daemon, &cert, UUID, echo).await;
    echo_round(&mut fresh, true).await;
}
