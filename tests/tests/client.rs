//! wasmray as a client: SOCKS5 and HTTP proxy in, VLESS over TLS out (mux off and
//! on), to a wasmray server and to the real v2ray server, with the example
//! `config/client.toml`.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmray::config::Config;
use wasmray::daemon::Daemon;
use wasmray_tests::peers::{SocksUdp, curl, fetch_via_socks, socks5_connect};
use wasmray_tests::{TestServer, server_toml, servers};

struct Client {
    daemon: Daemon,
    socks: SocketAddr,
    http: SocketAddr,
}

impl Client {
    /// The example client config pointed at `server` (self-signed: insecure), with
    /// mux on or off and `tweak` applied to the text.
    async fn start(server: SocketAddr, mux: bool, tweak: impl Fn(String) -> String) -> Client {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/client.toml");
        let text = std::fs::read_to_string(path)
            .unwrap()
            .replace("127.0.0.1:1080", "127.0.0.1:0")
            .replace("127.0.0.1:8118", "127.0.0.1:0")
            .replace("proxy.example.com:443", &server.to_string())
            .replace("sni = \"proxy.example.com\"", "sni = \"localhost\"")
            .replace("insecure = false", "insecure = true")
            .replace("enabled = false", &format!("enabled = {mux}"));
        let config = Config::parse(&tweak(text), Path::new(".")).unwrap();
        let daemon = Daemon::start(&config).await.unwrap();
        let socks = daemon.addr("socks-in").await.unwrap();
        let http = daemon.addr("http-in").await.unwrap();
        Client {
            daemon,
            socks,
            http,
        }
    }

    /// Mux tunnels the proxy outbound has dialed.
    fn tunnels_dialed(&self) -> u64 {
        let outbounds = self.daemon.outbounds();
        let proxy = outbounds.get("proxy").unwrap();
        proxy.mux.as_ref().map_or(0, |m| m.dialed())
    }
}

fn same(text: String) -> String {
    text
}

/// Downloads a pattern blob through SOCKS5 and checks every byte.
async fn download_via_socks(socks: SocketAddr, size: u64) {
    let blob = servers::blob(size).await;
    let mut s = socks5_connect(socks, blob).await.unwrap();
    let received = tokio::time::timeout(Duration::from_secs(120), servers::read_pattern(&mut s))
        .await
        .unwrap();
    assert_eq!(received, size);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks_through_a_wasmray_client_to_a_wasmray_server() {
    let server = TestServer::start(&server_toml("", "")).await;
    let client = Client::start(server.addr, false, same).await;
    let web = servers::http("through both").await;
    let page = fetch_via_socks(client.socks, web, "/both").await;
    assert!(
        page.starts_with("HTTP/1.1 200 OK") && page.contains("X-Path: /both"),
        "{page}"
    );
    assert!(page.ends_with("through both"), "{page}");
    download_via_socks(client.socks, 16 * 1024 * 1024).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let socks = client.socks;
        tasks.push(tokio::spawn(async move {
            let page = fetch_via_socks(socks, web, &format!("/c{i}")).await;
            assert!(page.contains(&format!("X-Path: /c{i}\r\n")), "{page}");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// curl through both inbounds, plain and with Mux.Cool; the mux run gives the server
/// as a share link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_through_the_socks_and_http_inbounds_with_mux_off_and_on() {
    let web = servers::http("hello via wasmray").await;
    let uploads = servers::http_upload().await;
    let file = tempfile::NamedTempFile::new().unwrap();
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(file.path(), &body).unwrap();
    let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
    let data = format!("@{}", file.path().display());
    for mux in [false, true] {
        let server = TestServer::start(&server_toml("", "")).await;
        let link = server_config(&server).share_links(None, Some("localhost"), true);
        let use_link = move |text: String| -> String {
            if !mux {
                return text;
            }
            let fields = text.find("server = ").unwrap();
            let end = text.find("connect_timeout").unwrap();
            format!(
                "{}link = \"{}\"\n{}",
                &text[..fields],
                link[0],
                &text[end..]
            )
        };
        let client = Client::start(server.addr, mux, use_link).await;
        let socks = format!("socks5h://{}", client.socks);
        let http = format!("http://{}", client.http);
        let page = |path: &str| format!("http://127.0.0.1:{}{path}", web.port());
        assert_eq!(
            curl(&["-x", &socks, &page("/s")]).await,
            "hello via wasmray"
        );
        assert_eq!(curl(&["-x", &http, &page("/p")]).await, "hello via wasmray");
        assert_eq!(
            curl(&["-p", "-x", &http, &page("/t")]).await,
            "hello via wasmray"
        );

        // Two chunked uploads on one kept-alive proxy connection, then one with a length.
        let up = |path: &str| format!("http://127.0.0.1:{}{path}", uploads.port());
        let chunked = [
            "-x",
            &http,
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            &data,
            "-w",
            "\n%{num_connects}\n",
        ];
        let out = curl(&[&chunked[..], &[&up("/u1"), &up("/u2")]].concat()).await;
        assert_eq!(
            out,
            format!("path=/u1 bytes=300000 sum={sum}\n1\npath=/u2 bytes=300000 sum={sum}\n0\n"),
            "mux {mux}"
        );
        let out = curl(&["-x", &http, "--data-binary", &data, &up("/len")]).await;
        assert_eq!(out, format!("path=/len bytes=300000 sum={sum}"));
        // With mux on, every session so far shared one tunnel.
        assert_eq!(client.tunnels_dialed(), u64::from(mux), "mux {mux}");
    }
}

fn server_config(server: &TestServer) -> Config {
    let text = server_toml("", "").replace("127.0.0.1:0", &server.addr.to_string());
    Config::parse(&text, server.certs.path()).unwrap()
}

/// Many sessions at once over one tunnel; after 128 session ids a second tunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_connections_over_one_mux_tunnel() {
    let server = TestServer::start(&server_toml("", "")).await;
    let concurrency = |text: String| text.replace("concurrency = 8", "concurrency = 64");
    let client = Client::start(server.addr, true, concurrency).await;
    let web = servers::http("muxed").await;
    let mut tasks = Vec::new();
    for i in 0..48 {
        let socks = client.socks;
        tasks.push(tokio::spawn(async move {
            let page = fetch_via_socks(socks, web, &format!("/m{i}")).await;
            assert!(page.contains(&format!("X-Path: /m{i}\r\n")) && page.ends_with("muxed"));
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    download_via_socks(client.socks, 8 * 1024 * 1024).await;
    assert_eq!(client.tunnels_dialed(), 1);
    for i in 0..100 {
        let page = fetch_via_socks(client.socks, web, &format!("/n{i}")).await;
        assert!(page.ends_with("muxed"), "{page}");
    }
    assert_eq!(
        client.tunnels_dialed(),
        2,
        "ids 1..=128, then a fresh tunnel"
    );
}

/// Without `insecure`, the server's certificate must chain to the web PKI roots or to
/// the configured `ca` file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vless_outbound_verifies_the_server_certificate() {
    let server = TestServer::start(&server_toml("", "")).await;
    let web = servers::http("verified").await;
    let strict = |text: String| text.replace("insecure = true", "insecure = false");
    let client = Client::start(server.addr, false, strict).await;
    let page = fetch_via_socks(client.socks, web, "/untrusted").await;
    assert_eq!(
        page, "",
        "a self-signed server is refused against the web PKI roots"
    );

    let ca = server.certs.path().join("cert.pem");
    let with_ca = move |text: String| {
        let ca = format!("insecure = false\nca = {:?}", ca.display().to_string());
        text.replace("insecure = true", &ca)
    };
    let client = Client::start(server.addr, false, with_ca).await;
    let page = fetch_via_socks(client.socks, web, "/trusted").await;
    assert!(page.ends_with("verified"), "{page}");
}

/// With one sub-stream per tunnel, cutting one tunnel ends its session only; the
/// other keeps going, and the next session gets a fresh tunnel. An idle tunnel closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_tunnel_fails_only_its_own_sub_streams_and_idle_ones_close() {
    let server = TestServer::start(&server_toml("", "")).await;
    let cutter = servers::Cutter::start(server.addr).await;
    let tweak = |text: String| {
        text.replace("concurrency = 8", "concurrency = 1")
            .replace("idle_timeout = \"16s\"", "idle_timeout = \"1s\"")
    };
    let client = Client::start(cutter.addr, true, tweak).await;
    const SIZE: u64 = 64 * 1024 * 1024;
    let blob = servers::blob(SIZE).await;
    let mut first = socks5_connect(client.socks, blob).await.unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    first.read_exact(&mut buf).await.unwrap();
    let mut second = socks5_connect(client.socks, blob).await.unwrap();
    second.read_exact(&mut buf).await.unwrap();
    assert_eq!((cutter.accepted(), client.tunnels_dialed()), (2, 2));

    cutter.cut(0);
    let broken = tokio::time::timeout(Duration::from_secs(30), async {
        let mut total = buf.len() as u64;
        loop {
            match first.read(&mut buf).await {
                Ok(0) | Err(_) => return total,
                Ok(n) => total += n as u64,
            }
        }
    });
    assert!(broken.await.unwrap() < SIZE, "the cut session ended early");
    let rest = servers::read_pattern_from(&mut second, buf.len() as u64);
    let rest = tokio::time::timeout(Duration::from_secs(120), rest);
    assert_eq!(
        rest.await.unwrap(),
        SIZE,
        "the other tunnel's session is whole"
    );
    drop(second);

    // The cut tunnel is first in the pool and has room (its sub-stream is gone): had it
    // not been dropped as broken, this session would have been put on it and failed.
    let web = servers::http("after the cut").await;
    assert!(
        fetch_via_socks(client.socks, web, "/x")
            .await
            .ends_with("after the cut")
    );

    let outbounds = client.daemon.outbounds();
    let proxy = outbounds.get("proxy").unwrap();
    let mux = proxy.mux.as_ref().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while mux.open_tunnels().await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "idle tunnels never closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socks5_udp_associate_round_trips_with_mux_off_and_on() {
    let echo = servers::udp_echo().await;
    let whoami = servers::udp_whoami().await;
    for mux in [false, true] {
        let server = TestServer::start(&server_toml("", "")).await;
        let client = Client::start(server.addr, mux, same).await;
        let udp = SocksUdp::associate(client.socks).await.unwrap();
        for i in 0..5 {
            let data = format!("ping {i}");
            let (from, reply) = udp.round_trip(echo, data.as_bytes()).await.unwrap();
            assert_eq!((from, reply), (echo, data.into_bytes()), "mux {mux}");
        }
        let (from, reply) = udp.round_trip(whoami, b"who").await.unwrap();
        assert_eq!(from, whoami);
        assert!(String::from_utf8(reply).unwrap().starts_with("127.0.0.1:"));
        let big = vec![7u8; 8000];
        assert_eq!(udp.round_trip(echo, &big).await.unwrap().1, big);
    }
}

/// The wasmray client in front of the real v2ray 4.34 server: TCP and UDP (command 2
/// with mux off, a mux UDP sub-stream with mux on).
#[tokio::test]
async fn the_wasmray_client_in_front_of_the_v2ray_server() {
    let certs = wasmray_tests::CertDir::new();
    let v2ray = wasmray_tests::peers::V2ray::server(certs.path(), wasmray_tests::UUID).await;
    let web = servers::http("wasmray client, v2ray server").await;
    let echo = servers::udp_echo().await;
    for mux in [false, true] {
        let client = Client::start(v2ray.socks, mux, same).await;
        let page = fetch_via_socks(client.socks, web, "/v2").await;
        assert!(
            page.contains("X-Path: /v2") && page.ends_with("wasmray client, v2ray server"),
            "{page}"
        );
        download_via_socks(client.socks, 8 * 1024 * 1024).await;
        let http = format!("http://{}", client.http);
        let url = format!("http://127.0.0.1:{}/h", web.port());
        assert_eq!(
            curl(&["-x", &http, &url]).await,
            "wasmray client, v2ray server"
        );
        let udp = SocksUdp::associate(client.socks).await.unwrap();
        for i in 0..3 {
            let data = format!("v2ray udp {i}");
            let (from, reply) = udp.round_trip(echo, data.as_bytes()).await.unwrap();
            assert_eq!((from, reply), (echo, data.into_bytes()), "mux {mux}");
        }
        let mut tasks = Vec::new();
        for i in 0..16 {
            let socks = client.socks;
            tasks.push(tokio::spawn(async move {
                let page = fetch_via_socks(socks, web, &format!("/v{i}")).await;
                assert!(page.contains(&format!("X-Path: /v{i}\r\n")), "{page}");
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
}

/// Without sniffers the outbound is dialed before the answer, so failures get their
/// codes; accounts are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_get_socks_codes_and_http_statuses_and_accounts_are_checked() {
    let server = TestServer::start(&server_toml("", "")).await;
    let tweak = |text: String| {
        let text = text
            .replace(
                "pipeline = [\"sniff-http\", \"sniff-tls\", \"route-rules\"]",
                // The deadline is wall-clock: on a loaded CI host a 5 ms call can be
                // preempted past it, and `skip` would then route by the default.
                "pipeline = [\"route-rules\"]\ncall_timeout = \"250ms\"",
            )
            .replace(
                "# [[inbound.accounts]]        # username/password; none: no authentication\n# user = \"me\"\n# pass = \"secret\"",
                "[[inbound.accounts]]\nuser = \"me\"\npass = \"secret\"",
            );
        format!(
            "{text}\n[[plugins.config.route-rules.rule]]\nip = [\"127.0.0.0/8\"]\noutbound = \"direct\"\n\
             [[plugins.config.route-rules.rule]]\ndomain = [\"suffix:blocked.test\"]\noutbound = \"block\"\n"
        )
    };
    let client = Client::start(server.addr, false, tweak).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let web = servers::http("direct").await;

    // SOCKS5: wrong password, no acceptable method, then the codes.
    assert_eq!(socks_auth(client.socks, b"me", b"wrong").await, 1);
    let mut s = TcpStream::connect(client.socks).await.unwrap();
    s.write_all(&[5, 1, 0]).await.unwrap();
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [5, 0xff]);
    let ok = socks_request(client.socks, 1, &ipv4(web)).await;
    assert_eq!(ok, 0);
    assert_eq!(
        socks_request(client.socks, 1, &ipv4(closed)).await,
        5,
        "refused"
    );
    assert_eq!(
        socks_request(client.socks, 1, &domain("x.blocked.test", 80)).await,
        2
    );
    assert_eq!(socks_request(client.socks, 2, &ipv4(web)).await, 7, "BIND");

    // HTTP: 502 for a refused port, 403 when blocked, both for CONNECT and plain.
    let http = format!("http://{}", client.http);
    let status = ["-o", "/dev/null", "-w", "%{http_code}", "-x", &http];
    let url = format!("http://{closed}/");
    assert_eq!(curl(&[&status[..], &[&url]].concat()).await, "502");
    assert_eq!(
        curl(&[&status[..], &["http://x.blocked.test/"]].concat()).await,
        "403"
    );
    assert_eq!(
        connect_status(client.http, &closed.to_string()).await,
        "HTTP/1.1 502"
    );
    assert_eq!(
        connect_status(client.http, "x.blocked.test:443").await,
        "HTTP/1.1 403"
    );
    let page = curl(&["-x", &http, &format!("http://{web}/ok")]).await;
    assert_eq!(page, "direct");
}

fn ipv4(addr: SocketAddr) -> Vec<u8> {
    let SocketAddr::V4(v4) = addr else { panic!() };
    let mut a = vec![1];
    a.extend_from_slice(&v4.ip().octets());
    a.extend_from_slice(&v4.port().to_be_bytes());
    a
}

fn domain(name: &str, port: u16) -> Vec<u8> {
    let mut a = vec![3, name.len() as u8];
    a.extend_from_slice(name.as_bytes());
    a.extend_from_slice(&port.to_be_bytes());
    a
}

/// Username/password negotiation; returns the RFC 1929 status (0: accepted).
async fn socks_auth_stream(socks: SocketAddr, user: &[u8], pass: &[u8]) -> (TcpStream, u8) {
    let mut s = TcpStream::connect(socks).await.unwrap();
    s.write_all(&[5, 2, 0, 2]).await.unwrap();
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await.unwrap();
    assert_eq!(reply, [5, 2]);
    let mut auth = vec![1, user.len() as u8];
    auth.extend_from_slice(user);
    auth.push(pass.len() as u8);
    auth.extend_from_slice(pass);
    s.write_all(&auth).await.unwrap();
    s.read_exact(&mut reply).await.unwrap();
    (s, reply[1])
}

async fn socks_auth(socks: SocketAddr, user: &[u8], pass: &[u8]) -> u8 {
    socks_auth_stream(socks, user, pass).await.1
}

/// Authenticates as me/secret, sends `command` to `addr`; returns the reply code.
async fn socks_request(socks: SocketAddr, command: u8, addr: &[u8]) -> u8 {
    let (mut s, status) = socks_auth_stream(socks, b"me", b"secret").await;
    assert_eq!(status, 0);
    s.write_all(&[&[5, command, 0][..], addr].concat())
        .await
        .unwrap();
    let mut head = [0u8; 10];
    s.read_exact(&mut head).await.unwrap();
    head[1]
}

/// The status line the HTTP inbound answers a CONNECT to `authority` with.
async fn connect_status(http: SocketAddr, authority: &str) -> String {
    let mut s = TcpStream::connect(http).await.unwrap();
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    s.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_string(&mut answer))
        .await
        .unwrap()
        .unwrap();
    answer.get(..12).unwrap_or(&answer).to_string()
}
