//! Mux.Cool on the server: one session per sub-stream, under load, with the real v2ray
//! client, and with malformed frames.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::proto::mux::{Frame, MuxNetwork};
use wasmray_tests::mux_client::{collect, open, open_frames};
use wasmray_tests::peers::{V2ray, fetch_via_socks};
use wasmray_tests::vless_client::{dest, read_all};
use wasmray_tests::{SNI, TestServer, UUID, server_toml, servers};

/// `no-cache` goes direct, everything else is blocked (the seed's scenario).
/// The plugin deadline is wall-clock time: on this 2-core machine, with 64 sessions at
/// once and other tests running, a 5 ms call can be descheduled past it (and then, by
/// `on_error = "skip"`, routed by the default). This test is about isolation, so it
/// gives the calls room.
const ATTRS_RULES: &str = r#"
[plugins]
call_timeout = "250ms"

[plugins.config.route-rules]
default = "block"
[[plugins.config.route-rules.rule]]
attrs = { "cache-control" = "no-cache" }
outbound = "direct"
"#;

fn request(i: usize) -> (String, Vec<u8>) {
    let path = format!("/stream/{i}");
    let cache = if i.is_multiple_of(2) {
        "no-cache"
    } else {
        "max-age=60"
    };
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nCache-Control: {cache}\r\nUser-Agent: seed/{i}\r\n\r\n"
    );
    (path, req.into_bytes())
}

/// 64 concurrent HTTP sub-streams in one tunnel, each routed by its own headers; 100
/// rounds. Xray-core 24.9.30 crashed here ("concurrent map writes") or routed streams
/// by a neighbour's headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_scenario_routes_every_sub_stream_by_its_own_headers() {
    let rounds: usize = std::env::var("SEED_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let streams: usize = std::env::var("SEED_STREAMS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("SEED_LOG").unwrap_or("off".into()))
        .try_init();
    let server = TestServer::start(&server_toml("", ATTRS_RULES)).await;
    let web = servers::http("ok").await;
    let started = Instant::now();
    let mut misroutes = 0;
    for round in 0..rounds {
        let requests: Vec<_> = (0..streams)
            .map(|i| (MuxNetwork::Tcp, dest(web), request(i).1))
            .collect();
        let mut tunnel = open(server.addr, &server.certs.cert_der, UUID)
            .await
            .unwrap();
        tunnel
            .write_all(&open_frames(&requests, true))
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(60), collect(&mut tunnel, streams))
            .await
            .unwrap_or_else(|_| panic!("round {round}: not every sub-stream ended"))
            .unwrap();
        for i in 0..streams {
            let r = got.get(&(i as u16 + 1)).cloned().unwrap_or_default();
            assert!(r.ended, "round {round}: stream {i} never ended");
            let text = String::from_utf8_lossy(&r.data);
            let direct = text.starts_with("HTTP/1.1 200 OK")
                && text.contains(&format!("X-Path: {}\r\n", request(i).0));
            let blocked = r.data.is_empty();
            let right = if i.is_multiple_of(2) { direct } else { blocked };
            if !right {
                misroutes += 1;
                eprintln!("round {round}: stream {i} misrouted: {text:?}");
            }
        }
    }
    eprintln!(
        "seed scenario: {rounds} rounds x {streams} sub-streams in {:?}, {misroutes} misroutes",
        started.elapsed()
    );
    assert_eq!(misroutes, 0);
}

#[tokio::test]
async fn a_udp_sub_stream_echoes_with_the_source_address() {
    let server = TestServer::start(&server_toml("", "")).await;
    let echo = servers::udp_echo().await;
    let mut tunnel = open(server.addr, &server.certs.cert_der, UUID)
        .await
        .unwrap();
    let mut frames = open_frames(&[(MuxNetwork::Udp, dest(echo), b"ping".to_vec())], false);
    Frame::keep(1, b"pong").encode(&mut frames).unwrap();
    tunnel.write_all(&frames).await.unwrap();
    let got = read_datagrams(&mut tunnel, 2).await;
    assert_eq!(got[0], (Some(dest(echo)), b"ping".to_vec()));
    assert_eq!(got[1], (Some(dest(echo)), b"pong".to_vec()));
}

#[tokio::test]
async fn a_malformed_frame_ends_only_its_tunnel() {
    let server = TestServer::start(&server_toml("", "")).await;
    let echo = servers::echo().await;
    // A healthy tunnel with an open sub-stream.
    let mut good = open(server.addr, &server.certs.cert_der, UUID)
        .await
        .unwrap();
    good.write_all(&open_frames(
        &[(MuxNetwork::Tcp, dest(echo), b"before".to_vec())],
        false,
    ))
    .await
    .unwrap();
    let mut head = [0u8; 2];
    good.read_exact(&mut head).await.unwrap();

    for bad in [
        vec![0x02, 0x01, 0, 1, 1, 1], // metadata longer than 512
        vec![0x00, 0x04, 0, 1, 9, 0], // unknown status
        vec![0x00, 0x02, 0, 1],       // metadata shorter than 4
        vec![
            0x00, 0x0c, 0, 1, 1, 1, 2, 0, 53, 1, 127, 0, 0, 1, 0x40, 0x00,
        ], // UDP data > 8192
    ] {
        let mut s = open(server.addr, &server.certs.cert_der, UUID)
            .await
            .unwrap();
        s.write_all(&bad).await.unwrap();
        let rest = tokio::time::timeout(Duration::from_secs(20), read_all(&mut s))
            .await
            .unwrap()
            .unwrap_or_default();
        assert!(rest.len() <= 2, "the bad tunnel is closed: {rest:?}");
    }
    // The healthy tunnel still works.
    let mut frames = bytes::BytesMut::new();
    Frame::keep(1, b" after").encode(&mut frames).unwrap();
    Frame::end(1, false).encode(&mut frames).unwrap();
    good.write_all(&frames).await.unwrap();
    let mut echoed = Vec::new();
    let mut buf = bytes::BytesMut::new();
    while echoed.len() < b"before after".len() {
        tokio::time::timeout(Duration::from_secs(20), good.read_buf(&mut buf))
            .await
            .unwrap()
            .unwrap();
        while let Some((frame, used)) = Frame::decode(&buf).unwrap() {
            echoed.extend_from_slice(frame.data.unwrap_or_default());
            bytes::Buf::advance(&mut buf, used);
        }
    }
    assert_eq!(echoed, b"before after");
}

/// The real v2ray client with mux on: many pages at once through one tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v2ray_client_with_mux_fetches_many_pages_at_once() {
    let server = TestServer::start(&server_toml("", "")).await;
    let v2ray = V2ray::client(server.addr, UUID, SNI, true).await;
    let web = servers::http("through mux").await;
    let mut tasks = Vec::new();
    for i in 0..32 {
        let socks: SocketAddr = v2ray.socks;
        tasks.push(tokio::spawn(async move {
            let page = fetch_via_socks(socks, web, &format!("/page/{i}")).await;
            assert!(page.contains(&format!("X-Path: /page/{i}\r\n")), "{page}");
            assert!(page.ends_with("through mux"), "{page}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// Reads `n` UDP Keep frames: (source address, payload).
async fn read_datagrams(
    s: &mut wasmray_tests::vless_client::Stream,
    n: usize,
) -> Vec<(Option<wasmray::proto::Destination>, Vec<u8>)> {
    wasmray_tests::vless_client::read_response(s).await.unwrap();
    let mut got = Vec::new();
    let mut buf = bytes::BytesMut::new();
    while got.len() < n {
        tokio::time::timeout(Duration::from_secs(20), s.read_buf(&mut buf))
            .await
            .unwrap()
            .unwrap();
        while let Some((frame, used)) = Frame::decode(&buf).unwrap() {
            if let wasmray::proto::mux::Status::Keep { udp_addr } = &frame.status {
                got.push((udp_addr.clone(), frame.data.unwrap_or_default().to_vec()));
            }
            bytes::Buf::advance(&mut buf, used);
        }
    }
    got
}

/// XUDP as Xray's client sends it: session 0, a GlobalID, Keep frames naming other
/// destinations (full cone: one source port for all), and the same source port again
/// after a reconnect with the same GlobalID.
#[tokio::test]
async fn xudp_is_full_cone_and_reuses_its_global_id_after_a_reconnect() {
    let server = TestServer::start(&server_toml("", "")).await;
    let (who1, who2) = (servers::udp_whoami().await, servers::udp_whoami().await);
    let global_id = *b"wasmray1";

    let mut tunnel = open(server.addr, &server.certs.cert_der, UUID)
        .await
        .unwrap();
    let mut frames = bytes::BytesMut::new();
    Frame::new_session(0, MuxNetwork::Udp, dest(who1), Some(b"x"))
        .with_global_id(global_id)
        .encode(&mut frames)
        .unwrap();
    Frame::keep_udp(0, dest(who2), b"y")
        .encode(&mut frames)
        .unwrap();
    tunnel.write_all(&frames).await.unwrap();
    let got = read_datagrams(&mut tunnel, 2).await;
    let sources: Vec<_> = got.iter().map(|(a, _)| a.clone().unwrap()).collect();
    assert!(
        sources.contains(&dest(who1)) && sources.contains(&dest(who2)),
        "{sources:?}"
    );
    assert_eq!(
        got[0].1, got[1].1,
        "both destinations saw one source port (full cone)"
    );
    let first_port = got[0].1.clone();
    drop(tunnel);

    let mut again = open(server.addr, &server.certs.cert_der, UUID)
        .await
        .unwrap();
    let mut frames = bytes::BytesMut::new();
    Frame::new_session(0, MuxNetwork::Udp, dest(who1), Some(b"z"))
        .with_global_id(global_id)
        .encode(&mut frames)
        .unwrap();
    again.write_all(&frames).await.unwrap();
    let got = read_datagrams(&mut again, 1).await;
    assert_eq!(
        got[0].1, first_port,
        "the GlobalID brought back the same outbound socket"
    );

    // Another GlobalID gets another socket.
    let mut other = open(server.addr, &server.certs.cert_der, UUID)
        .await
        .unwrap();
    let mut frames = bytes::BytesMut::new();
    Frame::new_session(0, MuxNetwork::Udp, dest(who1), Some(b"w"))
        .with_global_id(*b"another!")
        .encode(&mut frames)
        .unwrap();
    other.write_all(&frames).await.unwrap();
    assert_ne!(read_datagrams(&mut other, 1).await[0].1, first_port);
}

/// Keep for a sub-stream that does not exist is answered with End for that id; the
/// tunnel goes on. KeepAlive is ignored.
#[tokio::test]
async fn keep_for_an_unknown_id_is_answered_with_end() {
    let server = TestServer::start(&server_toml("", "")).await;
    let echo = servers::echo().await;
    let mut tunnel = open(server.addr, &server.certs.cert_der, UUID)
        .await
        .unwrap();
    let mut frames = bytes::BytesMut::new();
    Frame::keep(7, b"nobody here").encode(&mut frames).unwrap();
    Frame::keep_alive(7).encode(&mut frames).unwrap();
    frames.extend_from_slice(&open_frames(
        &[(MuxNetwork::Tcp, dest(echo), b"hello".to_vec())],
        true,
    ));
    tunnel.write_all(&frames).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(20), collect(&mut tunnel, 2))
        .await
        .unwrap()
        .unwrap();
    assert!(
        got[&7].ended && got[&7].data.is_empty(),
        "{:?}",
        got.get(&7)
    );
    assert_eq!(got[&1].data, b"hello");
}

/// The session guard writes a sub-stream's access line however it ends: here its
/// tunnel breaks on a malformed frame while the sub-stream is open, and the session is
/// cut off mid-relay.
#[tokio::test]
async fn a_sub_stream_cut_off_by_a_broken_tunnel_still_gets_its_access_line() {
    wasmray_tests::logcapture::install();
    let server = TestServer::start(&server_toml("", "")).await;
    let echo = servers::echo().await;
    let mut s = open(server.addr, &server.certs.cert_der, UUID)
        .await
        .unwrap();
    let source = s.get_ref().0.local_addr().unwrap().to_string();
    let mark = wasmray_tests::logcapture::mark();
    s.write_all(&open_frames(
        &[(MuxNetwork::Tcp, dest(echo), b"hello".to_vec())],
        false,
    ))
    .await
    .unwrap();
    // The echo comes back (response header, then a Keep frame): the session relays.
    let mut head = [0u8; 2];
    s.read_exact(&mut head).await.unwrap();
    s.write_all(&[0x00, 0x04, 0, 1, 9, 0]).await.unwrap(); // unknown status
    let _ = tokio::time::timeout(Duration::from_secs(20), read_all(&mut s)).await;
    let line = wasmray_tests::logcapture::wait_access_line(mark, &source)
        .await
        .unwrap_or_else(|| panic!("no access line; log:\n{}", wasmray_tests::logcapture::all()));
    assert!(
        line.contains("result=error") || line.contains("result=\"error\""),
        "{line}"
    );
    assert!(line.contains(&format!("target={echo}")), "{line}");
}
