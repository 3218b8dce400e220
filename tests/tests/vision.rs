//! XTLS Vision against the real sing-box 1.14.4 (`tests/install-peers.sh`), on loopback:
//! sing-box as a Vision client through a wasmray server, to local TLS 1.3, TLS 1.2 and
//! plain servers, byte for byte; the flow rules; and clients that misbehave.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray_tests::peers::{curl, fetch_via_socks, socks5_connect};
use wasmray_tests::singbox::SingBox;
use wasmray_tests::tls_web::{Serves, TlsWeb};
use wasmray_tests::{TestServer, UUID, logcapture, server_toml, servers};

const VISION: &str = "xtls-rprx-vision";

async fn vision_server() -> TestServer {
    logcapture::install();
    let toml = server_toml("", "").replace(
        "email = \"alice@example.com\"",
        "email = \"alice@example.com\"\nflow = \"xtls-rprx-vision\"",
    );
    TestServer::start(&toml).await
}

/// Lines of the capture after `mark` that contain `needle`.
fn logged_since(mark: usize, needle: &str) -> usize {
    let all = logcapture::all();
    all.get(mark..).unwrap_or_default().matches(needle).count()
}

/// Downloads `size` bytes from a TLS server through the SOCKS5 proxy `socks`, checking
/// every byte; returns how many arrived.
async fn tls_download(socks: std::net::SocketAddr, size: u64, tls13: bool) -> u64 {
    let web = TlsWeb::start(Serves::Blob(size), tls13).await;
    let tcp = socks5_connect(socks, web.addr)
        .await
        .expect("socks connect");
    let mut tls = web.connect(tcp).await.expect("inner TLS handshake");
    let check = servers::read_pattern(&mut tls);
    tokio::time::timeout(Duration::from_secs(180), check)
        .await
        .expect("the download within 180 s")
}

#[tokio::test]
async fn a_sing_box_vision_client_fetches_https_and_200_mb_of_tls13_through_wasmray_directly() {
    let server = vision_server().await;
    let client = SingBox::client(server.addr, UUID, VISION).await;
    let mark = logcapture::mark();

    let page = TlsWeb::start(Serves::Page("served over Vision"), true).await;
    let proxy = format!("socks5://{}", client.addr);
    let url = format!("https://127.0.0.1:{}/vision", page.addr.port());
    let body = curl(&["-k", "--proxy", &proxy, &url]).await;
    assert_eq!(body, "served over Vision");

    const SIZE: u64 = 200 * 1024 * 1024;
    assert_eq!(tls_download(client.addr, SIZE, true).await, SIZE);
    // The download went through the kernel (splice), and the counters saw all of it.
    assert!(
        logged_since(mark, "splicing") >= 1,
        "never spliced:\n{}",
        logcapture::all()
    );
    let most_down = || {
        logcapture::all()
            .get(mark..)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|f| f.strip_prefix("down=")?.parse::<u64>().ok())
            .max()
    };
    // The server logs the session once it has ended on its side too.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while most_down() < Some(SIZE) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        most_down() >= Some(SIZE),
        "access lines count {:?} bytes down",
        most_down()
    );
    // The page's both directions left the outer TLS (the client's direct frame was
    // read, ours sent), and the download's downlink did (its client sends no data).
    assert!(
        logged_since(mark, "phase=Direct") >= 1 && logged_since(mark, "our side went direct") >= 2,
        "no direct switch:\n{}",
        logcapture::all()
    );
}

#[tokio::test]
async fn tls12_and_plain_inner_traffic_stay_inside_the_outer_tls_and_arrive_whole() {
    let server = vision_server().await;
    let client = SingBox::client(server.addr, UUID, VISION).await;
    const SIZE: u64 = 8 * 1024 * 1024;
    assert_eq!(tls_download(client.addr, SIZE, false).await, SIZE);

    let web = servers::http("plain over Vision").await;
    let page = fetch_via_socks(client.addr, web, "/plain").await;
    assert!(page.ends_with("plain over Vision"), "{page}");
    let blob = servers::blob(SIZE).await;
    let mut s = socks5_connect(client.addr, blob).await.unwrap();
    assert_eq!(servers::read_pattern(&mut s).await, SIZE);
}

#[tokio::test]
async fn flows_that_do_not_match_the_user_are_refused_with_xrays_words() {
    // A Vision user whose client sends no flow.
    let server = vision_server().await;
    let plain = SingBox::client(server.addr, UUID, "").await;
    let mark = logcapture::mark();
    let web = servers::http("never").await;
    let mut s = socks5_connect(plain.addr, web).await.unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    assert!(got.is_empty(), "served without the flow");
    wait_logged(mark, "is rejected since the client flow is empty").await;

    // A user without a flow whose client asks for Vision.
    logcapture::install();
    let server = TestServer::start(&server_toml("", "")).await;
    let vision = SingBox::client(server.addr, UUID, VISION).await;
    let mark = logcapture::mark();
    let mut s = socks5_connect(vision.addr, web).await.unwrap();
    let _ = s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
    assert!(got.is_empty(), "served with a flow the user does not have");
    wait_logged(mark, "is not able to use the flow xtls-rprx-vision").await;
}

async fn wait_logged(mark: usize, needle: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while logged_since(mark, needle) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never logged {needle:?}:\n{}",
            logcapture::all()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A TLS connection to the server with a Vision request to `target` sent, `after`
/// right behind the header.
async fn raw_vision_request(
    server: &TestServer,
    target: std::net::SocketAddr,
    after: &[u8],
) -> wasmray_tests::vless_client::Stream {
    use wasmray::proto::vless::{Addons, Command, RequestHeader};
    let mut tls =
        wasmray_tests::vless_client::tls_connect(server.addr, &server.certs.cert_der, &[])
            .await
            .expect("TLS to wasmray");
    let header = RequestHeader {
        uuid: *uuid::Uuid::parse_str(UUID).unwrap().as_bytes(),
        addons: Addons::vision(),
        command: Command::Tcp(wasmray_tests::vless_client::dest(target)),
    };
    let mut out = bytes::BytesMut::new();
    header.encode(&mut out).unwrap();
    out.extend_from_slice(after);
    tls.write_all(&out).await.unwrap();
    tls.flush().await.unwrap();
    tls
}

/// What the server sends until it closes (within 10 s).
async fn until_closed(mut tls: wasmray_tests::vless_client::Stream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut got));
    let _ = read.await.expect("the server closes within 10 s");
    got
}

#[tokio::test]
async fn a_malformed_frame_or_a_client_that_stops_mid_padding_ends_only_its_connection() {
    let server = vision_server().await;
    let echo = servers::echo().await;
    let uuid = *uuid::Uuid::parse_str(UUID).unwrap().as_bytes();

    // The UUID, then a frame with command 7.
    let mark = logcapture::mark();
    let bad = [&uuid[..], &[7, 0, 1, 0, 0, b'x']].concat();
    assert!(
        until_closed(raw_vision_request(&server, echo, &bad).await)
            .await
            .is_empty()
    );
    wait_logged(mark, "unknown Vision padding command 7").await;

    // A frame promising 100 bytes of content, 10 sent, then the client's close.
    let mark = logcapture::mark();
    let cut = [&uuid[..], &[0, 0, 100, 0, 0], &[b'y'; 10]].concat();
    let mut tls = raw_vision_request(&server, echo, &cut).await;
    tls.shutdown().await.unwrap();
    let _ = until_closed(tls).await;
    wait_logged(mark, "closed inside a padded frame").await;

    // Bytes after the header that are not padded at all (no UUID): passed on as they
    // are, as Xray does; the echo sends them back inside the response.
    let plain = b"plain bytes, not one padded frame among them";
    let mut tls = raw_vision_request(&server, echo, plain).await;
    let mut back = Vec::new();
    let mut buf = [0u8; 4096];
    while !back.windows(plain.len()).any(|w| w == plain) {
        let read = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf));
        match read.await.expect("an answer within 10 s") {
            Ok(0) | Err(_) => break,
            Ok(n) => back.extend_from_slice(&buf[..n]),
        }
    }
    assert!(
        back.windows(plain.len()).any(|w| w == plain),
        "{back:?}\n{}",
        logcapture::all()
    );

    // The server goes on serving: a real Vision client still works.
    let client = SingBox::client(server.addr, UUID, VISION).await;
    let web = servers::http("still serving").await;
    assert!(
        fetch_via_socks(client.addr, web, "/")
            .await
            .ends_with("still serving")
    );
}

/// A wasmray client: SOCKS5 in, VLESS with Vision over TLS out to `server`.
async fn vision_client(
    server: std::net::SocketAddr,
) -> (wasmray::daemon::Daemon, std::net::SocketAddr) {
    logcapture::install();
    let toml = format!(
        r#"
[log]
level = "warn"
[[inbound]]
tag = "socks-in"
type = "socks"
listen = "127.0.0.1:0"
[[outbound]]
tag = "proxy"
type = "vless"
server = "{server}"
id = "{UUID}"
flow = "xtls-rprx-vision"
sni = "localhost"
insecure = true
"#
    );
    let config = wasmray::config::Config::parse(&toml, std::path::Path::new(".")).unwrap();
    let daemon = wasmray::daemon::Daemon::start(&config).await.unwrap();
    let socks = daemon.addr("socks-in").await.unwrap();
    (daemon, socks)
}

#[tokio::test]
async fn a_wasmray_vision_client_through_a_sing_box_vision_server() {
    let certs = wasmray_tests::CertDir::new();
    let server = SingBox::server(certs.path(), UUID, VISION).await;
    let (_client, socks) = vision_client(server.addr).await;
    let mark = logcapture::mark();
    const SIZE: u64 = 64 * 1024 * 1024;
    assert_eq!(tls_download(socks, SIZE, true).await, SIZE);
    // sing-box's direct frame was read: the download came raw off the socket.
    wait_logged(mark, "phase=Direct").await;
    assert_eq!(tls_download(socks, 1024 * 1024, false).await, 1024 * 1024);
    let web = servers::http("plain via sing-box").await;
    assert!(
        fetch_via_socks(socks, web, "/")
            .await
            .ends_with("plain via sing-box")
    );
}

#[tokio::test]
async fn wasmray_to_wasmray_with_vision_tcp_and_udp() {
    let server = vision_server().await;
    let (_client, socks) = vision_client(server.addr).await;
    let mark = logcapture::mark();
    const SIZE: u64 = 64 * 1024 * 1024;
    assert_eq!(tls_download(socks, SIZE, true).await, SIZE);
    wait_logged(mark, "phase=Direct").await;
    let blob = servers::blob(SIZE).await;
    let mut s = socks5_connect(socks, blob).await.unwrap();
    assert_eq!(servers::read_pattern(&mut s).await, SIZE);

    // UDP goes over Mux.Cool (XUDP) under Vision, as Xray's client sends it.
    let echo = servers::udp_echo().await;
    let udp = wasmray_tests::peers::SocksUdp::associate(socks)
        .await
        .unwrap();
    for i in 0..5 {
        let data = format!("datagram {i}");
        let (_, reply) = udp.round_trip(echo, data.as_bytes()).await.unwrap();
        assert_eq!(reply, data.as_bytes());
    }
}
