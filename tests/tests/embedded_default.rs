//! The embedded default (what `wasmray run` starts with no config) serves a real VLESS
//! client: a page is fetched through it.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use wasmray::config::InboundKind;
use wasmray::daemon::Daemon;
use wasmray::proto::vless::Command;
use wasmray_tests::servers;
use wasmray_tests::vless_client::{dest, header, read_all, read_response, tls_connect};

#[tokio::test]
async fn a_vless_client_fetches_a_page_through_the_embedded_default() {
    let config = wasmray::default_config::embedded("127.0.0.1:0".parse().unwrap()).unwrap();
    let InboundKind::Vless(vless) = &config.inbounds[0].kind else {
        panic!("vless")
    };
    let cert = vless.tls.certs[0].to_vec();
    let user = vless.users[0].id.to_string();
    let daemon = Daemon::start(&config).await.unwrap();
    let web = servers::http("hello through wasmray").await;

    let mut s = tls_connect(daemon.listeners().await[0].1, &cert, &["http/1.1"])
        .await
        .unwrap();
    let mut request = header(&user, Command::Tcp(dest(web)));
    request.extend_from_slice(b"GET /page HTTP/1.1\r\nHost: localhost\r\n\r\n");
    s.write_all(&request).await.unwrap();
    read_response(&mut s).await.unwrap();
    let page = tokio::time::timeout(Duration::from_secs(30), read_all(&mut s))
        .await
        .unwrap()
        .unwrap();
    let page = String::from_utf8(page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(page.ends_with("hello through wasmray"), "{page}");
    assert_eq!(
        daemon.shutdown(Duration::from_secs(5)).await,
        0,
        "sessions drained"
    );
}
