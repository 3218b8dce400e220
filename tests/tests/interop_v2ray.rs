//! Interop with the real v2ray 4.34 client (Debian package; `tests/install-peers.sh`).
//! v2ray's SOCKS port → VLESS over TLS → wasmray → a local server. Fails (does not
//! skip) when v2ray is missing, so CI cannot pass without having run it.

use std::time::Duration;

use wasmray_tests::peers::{V2ray, fetch_via_socks, socks5_connect};
use wasmray_tests::{SNI, TestServer, UUID, server_toml, servers};

#[tokio::test]
async fn the_v2ray_client_fetches_a_page_and_a_large_download_through_wasmray() {
    let server = TestServer::start(&server_toml("", "")).await;
    let v2ray = V2ray::client(server.addr, UUID, SNI, false).await;

    let web = servers::http("served via v2ray and wasmray").await;
    let page = fetch_via_socks(v2ray.socks, web, "/interop").await;
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.contains("X-Path: /interop"), "{page}");
    assert!(page.ends_with("served via v2ray and wasmray"), "{page}");

    const SIZE: u64 = 32 * 1024 * 1024;
    let blob = servers::blob(SIZE).await;
    let mut s = socks5_connect(v2ray.socks, blob).await.unwrap();
    let check = servers::read_pattern(&mut s);
    let received = tokio::time::timeout(Duration::from_secs(120), check)
        .await
        .unwrap();
    assert_eq!(received, SIZE, "the whole download arrived intact");
}
