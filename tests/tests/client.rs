//! wasmray as a client: SOCKS5 in, VLESS over TLS out, to a wasmray server, with the
//! example `config/client.toml`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use wasmray::config::Config;
use wasmray::daemon::Daemon;
use wasmray_tests::peers::{fetch_via_socks, socks5_connect};
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
    let page = fetch_via_socks(socks, web, "/both").await;
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
            let page = fetch_via_socks(socks, web, &format!("/c{i}")).await;
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
    let page = fetch_via_socks(socks, web, "/v2").await;
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
