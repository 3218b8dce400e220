//! The VLESS-over-TLS server end to end, with a VLESS client written in the test suite.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::proto::vless::Command;
use wasmray_tests::servers;
use wasmray_tests::vless_client::{self, connect_tcp, dest, read_all, read_response, tls_connect};
use wasmray_tests::{TestServer, UUID, logcapture, server_toml};

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

/// Most clients end a session by closing TCP, with no TLS close_notify: the access
/// log calls that `ok`, not `error`.
#[tokio::test]
async fn a_client_that_closes_tcp_without_close_notify_ends_ok() {
    logcapture::install();
    let server = plain_server().await;
    let echo = servers::echo().await;
    let mut s = connect_tcp(server.addr, &server.certs.cert_der, dest(echo), b"hi")
        .await
        .unwrap();
    read_response(&mut s).await.unwrap();
    let mut got = [0u8; 2];
    s.read_exact(&mut got).await.unwrap();
    let source = s.get_ref().0.local_addr().unwrap().to_string();
    let mark = logcapture::mark();
    // Drop the TCP connection under TLS: no close_notify is sent.
    let (tcp, _tls) = s.into_inner();
    drop(tcp);
    let line = logcapture::wait_access_line(mark, &source)
        .await
        .unwrap_or_else(|| panic!("no access line; log:\n{}", logcapture::all()));
    assert!(
        line.contains("result=\"ok\"") || line.contains("result=ok"),
        "{line}"
    );
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

/// A fallback with `proxy_protocol = 1` or `2` receives the PROXY header (the real
/// client's address), then every byte the client sent.
#[tokio::test]
async fn a_fallback_gets_a_proxy_protocol_header_then_every_byte() {
    for version in [1u8, 2] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let capture = listener.local_addr().unwrap();
        let received = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed early: {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            got
        });
        let inbound =
            format!("[[inbound.fallback]]\ndest = \"{capture}\"\nproxy_protocol = {version}");
        let server = TestServer::start(&server_toml(&inbound, "")).await;
        let mut s = tls_connect(server.addr, &server.certs.cert_der, &["http/1.1"])
            .await
            .unwrap();
        let client_port = s.get_ref().0.local_addr().unwrap().port();
        s.write_all(b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let got = tokio::time::timeout(LIMIT, received)
            .await
            .unwrap()
            .unwrap();
        let request = &b"GET /probe HTTP/1.1\r\nHost: x\r\n\r\n"[..];
        assert!(got.ends_with(request), "{got:?}");
        let header = &got[..got.len() - request.len()];
        let (decoded, used) = wasmray::proto::proxy_protocol::ProxyHeader::decode(header)
            .unwrap()
            .unwrap();
        assert_eq!(
            used,
            header.len(),
            "v{version}: nothing between the header and the request"
        );
        let addrs = decoded.addrs.expect("addresses");
        assert_eq!(
            addrs.source.port(),
            client_port,
            "v{version}: the real client's address"
        );
        assert_eq!(addrs.destination.port(), server.addr.port());
    }
}
