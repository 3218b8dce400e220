//! The VLESS-over-TLS server end to end, with a VLESS client written in the test suite.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::proto::vless::Command;
use wasmray_tests::servers;
use wasmray_tests::vless_client::{self, connect_tcp, dest, read_all, read_response, tls_connect};
use wasmray_tests::{TestServer, UUID, server_toml};

const LIMIT: Duration = Duration::from_secs(60);

async fn plain_server() -> TestServer {
    TestServer::start(&server_toml("", "")).await
}

#[tokio::test]
async fn tcp_echo() {
    let server = plain_server().await;
    let echo = servers::echo().await;
    let mut s = connect_tcp(server.addr, &server.certs.cert_der, dest(echo), b"hello ")
        .await
        .unwrap();
    s.write_all(b"wasmray").await.unwrap();
    s.shutdown().await.unwrap();
    tokio::time::timeout(LIMIT, read_response(&mut s))
        .await
        .unwrap()
        .unwrap();
    let body = tokio::time::timeout(LIMIT, read_all(&mut s))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body, b"hello wasmray");
}

#[tokio::test]
async fn a_100_mb_download_arrives_byte_for_byte() {
    const SIZE: u64 = 100 * 1024 * 1024;
    let server = plain_server().await;
    let blob = servers::blob(SIZE).await;
    let mut s = connect_tcp(server.addr, &server.certs.cert_der, dest(blob), b"")
        .await
        .unwrap();
    read_response(&mut s).await.unwrap();
    let check = servers::read_pattern(&mut s);
    let received = tokio::time::timeout(Duration::from_secs(240), check)
        .await
        .unwrap();
    assert_eq!(received, SIZE);
}

#[tokio::test]
async fn udp_echo() {
    let server = plain_server().await;
    let echo = servers::udp_echo().await;
    let mut s = tls_connect(server.addr, &server.certs.cert_der, &[])
        .await
        .unwrap();
    let mut out = vless_client::header(UUID, Command::Udp(dest(echo)));
    for packet in [&b"one"[..], b"", b"three"] {
        wasmray::proto::udp::encode(packet, &mut out).ok();
    }
    s.write_all(&out).await.unwrap();
    read_response(&mut s).await.unwrap();
    for expected in [&b"one"[..], b"three"] {
        let mut len = [0u8; 2];
        tokio::time::timeout(LIMIT, s.read_exact(&mut len))
            .await
            .unwrap()
            .unwrap();
        let mut packet = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut packet).await.unwrap();
        assert_eq!(packet, expected);
    }
}

#[tokio::test]
async fn a_wrong_uuid_falls_back_to_the_web_server() {
    let web = servers::http("the fallback page").await;
    let server = TestServer::start(&server_toml(
        &format!("[[inbound.fallback]]\ndest = \"{web}\""),
        "",
    ))
    .await;
    let mut s = tls_connect(server.addr, &server.certs.cert_der, &["http/1.1"])
        .await
        .unwrap();
    s.write_all(b"GET /probe HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let page = String::from_utf8(
        tokio::time::timeout(LIMIT, read_all(&mut s))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    assert!(
        page.contains("X-Path: /probe"),
        "the fallback got every byte: {page}"
    );
    assert!(page.ends_with("the fallback page"), "{page}");

    // A VLESS header with an unknown user goes to the fallback too, bytes intact.
    let mut s = tls_connect(server.addr, &server.certs.cert_der, &["http/1.1"])
        .await
        .unwrap();
    let wrong = vless_client::header(
        "00000000-0000-4000-8000-000000000000",
        Command::Tcp(dest(web)),
    );
    s.write_all(&wrong).await.unwrap();
    s.write_all(b" / HTTP/1.1\r\n\r\n").await.unwrap();
    let reply = tokio::time::timeout(LIMIT, read_all(&mut s))
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(
        !reply.starts_with(&[0, 0]),
        "no VLESS response for an unknown user"
    );
}

#[tokio::test]
async fn a_wrong_uuid_without_fallback_is_closed_with_no_response() {
    let server = plain_server().await;
    let echo = servers::echo().await;
    let mut s = tls_connect(server.addr, &server.certs.cert_der, &[])
        .await
        .unwrap();
    let wrong = vless_client::header(
        "00000000-0000-4000-8000-000000000000",
        Command::Tcp(dest(echo)),
    );
    s.write_all(&wrong).await.unwrap();
    s.write_all(b"payload").await.unwrap();
    let reply = tokio::time::timeout(LIMIT, read_all(&mut s))
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(reply.is_empty(), "got {reply:?}");
}

#[tokio::test]
async fn bad_clients_are_closed_while_others_are_served() {
    let server = plain_server().await;
    let echo = servers::echo().await;
    let mut bad = Vec::new();
    let garbage: Vec<u8> = (0..600u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut truncated = vless_client::header(UUID, Command::Tcp(dest(echo))).to_vec();
    truncated.truncate(20);
    let mut oversized = vec![0u8];
    oversized.extend_from_slice(uuid::Uuid::parse_str(UUID).unwrap().as_bytes());
    oversized.push(255);
    oversized.extend(std::iter::repeat_n(0x0a, 255));
    oversized.extend_from_slice(&[1, 0, 80, 9]);
    for input in [garbage, truncated, oversized] {
        let mut s = tls_connect(server.addr, &server.certs.cert_der, &[])
            .await
            .unwrap();
        s.write_all(&input).await.unwrap();
        s.shutdown().await.ok();
        bad.push(s);
    }
    // A good client is served while the bad ones are open or closing.
    let mut good = connect_tcp(
        server.addr,
        &server.certs.cert_der,
        dest(echo),
        b"still here",
    )
    .await
    .unwrap();
    good.shutdown().await.unwrap();
    read_response(&mut good).await.unwrap();
    assert_eq!(read_all(&mut good).await.unwrap(), b"still here");
    for mut s in bad {
        let reply = tokio::time::timeout(LIMIT, read_all(&mut s))
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(reply.is_empty(), "a bad client got {reply:?}");
    }
}
