//! wasmray as a client: SOCKS5 in, VLESS over TLS out, to a wasmray server, with the
//! example `config/client.toml`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::config::Config;
use wasmray::daemon::Daemon;
use wasmray_tests::peers::socks5_connect;
use wasmray_tests::{TestServer, server_toml, servers};

/// The example client config, pointed at `server` (self-signed: insecure).
async fn start_client(server: SocketAddr) -> Daemon {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/client.toml");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("127.0.0.1:1080", "127.0.0.1:0")
        .replace("proxy.example.com:443", &server.to_string())
        .replace("sni = \"proxy.example.com\"", "sni = \"localhost\"")
        .replace("insecure = false", "insecure = true");
    let config = Config::parse(&text, Path::new(".")).unwrap();
    Daemon::start(&config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks_through_a_wasmray_client_to_a_wasmray_server() {
    let server = TestServer::start(&server_toml("", "")).await;
    let client = start_client(server.addr).await;
    let socks = client.addr("socks-in").unwrap();

    let web = servers::http("through both").await;
    let mut s = socks5_connect(socks, web).await.unwrap();
    s.write_all(b"GET /both HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    assert!(
        page.starts_with("HTTP/1.1 200 OK") && page.contains("X-Path: /both"),
        "{page}"
    );
    assert!(page.ends_with("through both"), "{page}");

    const SIZE: u64 = 16 * 1024 * 1024;
    let blob = servers::blob(SIZE).await;
    let mut s = socks5_connect(socks, blob).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(120), servers::read_pattern(&mut s))
        .await
        .unwrap();
    assert_eq!(received, SIZE);

    let mut tasks = Vec::new();
    for i in 0..16 {
        tasks.push(tokio::spawn(async move {
            let echo_payload = format!("GET /c{i} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
            let mut s = socks5_connect(socks, web).await.unwrap();
            s.write_all(echo_payload.as_bytes()).await.unwrap();
            let mut page = String::new();
            s.read_to_string(&mut page).await.unwrap();
            assert!(page.contains(&format!("X-Path: /c{i}\r\n")), "{page}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// The wasmray client in front of the real v2ray 4.34 server.
#[tokio::test]
async fn socks_through_a_wasmray_client_to_the_v2ray_server() {
    let certs = wasmray_tests::CertDir::new();
    let v2ray = wasmray_tests::peers::V2ray::server(certs.path(), wasmray_tests::UUID).await;
    let client = start_client(v2ray.socks).await;
    let socks = client.addr("socks-in").unwrap();
    let web = servers::http("wasmray client, v2ray server").await;
    let mut s = socks5_connect(socks, web).await.unwrap();
    s.write_all(b"GET /v2 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut page = String::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_string(&mut page))
        .await
        .unwrap()
        .unwrap();
    assert!(
        page.contains("X-Path: /v2") && page.ends_with("wasmray client, v2ray server"),
        "{page}"
    );

    const SIZE: u64 = 8 * 1024 * 1024;
    let blob = servers::blob(SIZE).await;
    let mut s = socks5_connect(socks, blob).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(120), servers::read_pattern(&mut s))
        .await
        .unwrap();
    assert_eq!(received, SIZE);
}
