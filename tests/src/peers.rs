//! The real v2ray (Debian package, V2Ray 4.34) as a peer, from the templates in
//! `shared/interop/` (copied here so the repo stands alone). Installed by `.ci/run`
//! through `shared/interop/install-peers.sh`.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running v2ray, killed when dropped.
pub struct V2ray {
    /// The port it listens on (SOCKS for a client, VLESS for a server).
    pub socks: SocketAddr,
    _child: Child,
    _dir: tempfile::TempDir,
}

/// A free port on 127.0.0.1 (bound then released; v2ray binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl V2ray {
    /// v2ray as a client: SOCKS5 on a free port → VLESS over TLS to `server`.
    pub async fn client(server: SocketAddr, uuid: &str, sni: &str, mux: bool) -> V2ray {
        let socks_port = free_port();
        let config = format!(
            r#"{{
  "log": {{"loglevel": "warning"}},
  "inbounds": [{{"listen": "127.0.0.1", "port": {socks_port}, "protocol": "socks", "settings": {{"udp": true}}}}],
  "outbounds": [{{
    "protocol": "vless",
    "settings": {{"vnext": [{{"address": "127.0.0.1", "port": {port},
                  "users": [{{"id": "{uuid}", "encryption": "none"}}]}}]}},
    "streamSettings": {{"network": "tcp", "security": "tls",
                       "tlsSettings": {{"serverName": "{sni}", "allowInsecure": true}}}},
    "mux": {{"enabled": {mux}, "concurrency": 8}}
  }}]
}}"#,
            port = server.port()
        );
        let socks = SocketAddr::from(([127, 0, 0, 1], socks_port));
        Self::spawn(&config, socks).await
    }

    /// v2ray as a server: VLESS over TLS (cert.pem/key.pem in `certs`) → freedom.
    pub async fn server(certs: &std::path::Path, uuid: &str) -> V2ray {
        let port = free_port();
        let config = format!(
            r#"{{
  "log": {{"loglevel": "warning"}},
  "inbounds": [{{
    "listen": "127.0.0.1", "port": {port}, "protocol": "vless",
    "settings": {{"clients": [{{"id": "{uuid}", "email": "test@local"}}], "decryption": "none"}},
    "streamSettings": {{"network": "tcp", "security": "tls",
                       "tlsSettings": {{"certificates": [{{"certificateFile": "{cert}", "keyFile": "{key}"}}]}}}}
  }}],
  "outbounds": [{{"protocol": "freedom", "tag": "direct"}}]
}}"#,
            cert = certs.join("cert.pem").display(),
            key = certs.join("key.pem").display(),
        );
        Self::spawn(&config, SocketAddr::from(([127, 0, 0, 1], port))).await
    }

    async fn spawn(config: &str, ready: SocketAddr) -> V2ray {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v2ray.json");
        std::fs::write(&path, config).expect("write v2ray config");
        let child = Command::new(v2ray_binary())
            .arg("-config")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("v2ray is installed (run shared/interop/install-peers.sh or .ci/run)");
        wait_listening(ready).await;
        V2ray {
            socks: ready,
            _child: child,
            _dir: dir,
        }
    }
}

fn v2ray_binary() -> String {
    std::env::var("V2RAY").unwrap_or_else(|_| "v2ray".into())
}

/// Waits until something accepts TCP on `addr` (at most 20 s).
pub async fn wait_listening(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut delay = Duration::from_millis(5);
    while TcpStream::connect(addr).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} never started listening"
        );
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_millis(200));
    }
}

/// SOCKS5 CONNECT (no auth) through `proxy` to `target`.
pub async fn socks5_connect(proxy: SocketAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(proxy).await?;
    s.write_all(&[5, 1, 0]).await?;
    let mut reply = [0u8; 2];
    s.read_exact(&mut reply).await?;
    if reply != [5, 0] {
        return Err(std::io::Error::other(format!("socks auth reply {reply:?}")));
    }
    let SocketAddr::V4(v4) = target else {
        return Err(std::io::Error::other("ipv4 only"));
    };
    let mut req = vec![5, 1, 0, 1];
    req.extend_from_slice(&v4.ip().octets());
    req.extend_from_slice(&v4.port().to_be_bytes());
    s.write_all(&req).await?;
    let mut head = [0u8; 10];
    s.read_exact(&mut head).await?;
    if head[1] != 0 {
        return Err(std::io::Error::other(format!(
            "socks connect failed: code {}",
            head[1]
        )));
    }
    Ok(s)
}

/// GET `path` from the HTTP server `web` through the SOCKS5 proxy `proxy`; the whole
/// response (the test server closes after it).
pub async fn fetch_via_socks(proxy: SocketAddr, web: SocketAddr, path: &str) -> String {
    let mut s = socks5_connect(proxy, web).await.expect("socks connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    s.write_all(request.as_bytes())
        .await
        .expect("send the request");
    let mut page = String::new();
    tokio::time::timeout(Duration::from_secs(30), s.read_to_string(&mut page))
        .await
        .expect("the page within 30 s")
        .expect("read the page");
    page
}

/// Runs `curl` with `args` (always `-sS` and a 30 s cap); its stdout, or a panic with
/// its stderr when it fails.
pub async fn curl(args: &[&str]) -> String {
    let output = tokio::process::Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs (apt install curl)");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A SOCKS5 UDP association: the control connection (kept open) and a UDP socket
/// that talks to the relay.
pub struct SocksUdp {
    _control: TcpStream,
    socket: tokio::net::UdpSocket,
    relay: SocketAddr,
}

impl SocksUdp {
    /// UDP ASSOCIATE through `proxy` (no auth).
    pub async fn associate(proxy: SocketAddr) -> std::io::Result<SocksUdp> {
        let mut control = TcpStream::connect(proxy).await?;
        control.write_all(&[5, 1, 0]).await?;
        let mut reply = [0u8; 2];
        control.read_exact(&mut reply).await?;
        control.write_all(&[5, 3, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        let mut head = [0u8; 10];
        control.read_exact(&mut head).await?;
        if head[1] != 0 || head[3] != 1 {
            return Err(std::io::Error::other(format!("associate reply {head:?}")));
        }
        let ip = std::net::Ipv4Addr::new(head[4], head[5], head[6], head[7]);
        let relay = SocketAddr::from((ip, u16::from_be_bytes([head[8], head[9]])));
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
        Ok(SocksUdp {
            _control: control,
            socket,
            relay,
        })
    }

    /// Sends `data` to `target` through the relay and waits (5 s) for one reply;
    /// returns the reply's source and payload.
    pub async fn round_trip(
        &self,
        target: SocketAddr,
        data: &[u8],
    ) -> std::io::Result<(SocketAddr, Vec<u8>)> {
        let SocketAddr::V4(v4) = target else {
            return Err(std::io::Error::other("ipv4 only"));
        };
        let mut packet = vec![0, 0, 0, 1];
        packet.extend_from_slice(&v4.ip().octets());
        packet.extend_from_slice(&v4.port().to_be_bytes());
        packet.extend_from_slice(data);
        self.socket.send_to(&packet, self.relay).await?;
        let mut buf = vec![0u8; 65536];
        let n = tokio::time::timeout(Duration::from_secs(5), self.socket.recv(&mut buf))
            .await
            .map_err(|_| std::io::Error::other("no UDP reply within 5 s"))??;
        let reply = &buf[..n];
        if n < 10 || reply[3] != 1 {
            return Err(std::io::Error::other(format!("bad reply header {reply:?}")));
        }
        let ip = std::net::Ipv4Addr::new(reply[4], reply[5], reply[6], reply[7]);
        let from = SocketAddr::from((ip, u16::from_be_bytes([reply[8], reply[9]])));
        Ok((from, reply[10..].to_vec()))
    }
}
