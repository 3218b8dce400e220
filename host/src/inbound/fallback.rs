//! Xray's fallbacks: a connection that is not valid VLESS (first read shorter than 18
//! bytes, wrong version, unknown user) goes to a real server instead, chosen by SNI,
//! negotiated ALPN and HTTP path, optionally behind a PROXY protocol header, and that
//! server receives every byte read so far.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::config::{Fallback, FallbackDest, Timeouts};
use crate::proto::proxy_protocol::{ProxyAddrs, ProxyHeader, Version};
use crate::relay::{Traffic, relay};
use crate::stats::Meter;

/// Chooses the entry as Xray does: the SNI picks a name (exact, else the longest
/// configured name contained in it, else ""), then the ALPN, then the path; at each
/// level a missing specific entry falls back to the "" one. Among equals the last wins.
pub fn select<'a>(
    fallbacks: &'a [Fallback],
    sni: &str,
    alpn: &str,
    first: &[u8],
) -> Option<&'a Fallback> {
    let sni = sni.to_ascii_lowercase();
    let alpn = alpn.to_ascii_lowercase();
    let name = pick_name(fallbacks, &sni);
    let names: &[&str] = &[name, ""];
    let in_names = |f: &&Fallback| names.contains(&f.sni.as_str());
    let alpn_key = if fallbacks.iter().filter(in_names).any(|f| f.alpn == alpn) {
        alpn.as_str()
    } else {
        ""
    };
    let alpns: &[&str] = &[alpn_key, ""];
    let level = |f: &&Fallback| in_names(f) && alpns.contains(&f.alpn.as_str());
    let path = request_path(first).unwrap_or("");
    let path_key = if !path.is_empty() && fallbacks.iter().filter(level).any(|f| f.path == path) {
        path
    } else {
        ""
    };
    fallbacks
        .iter()
        .filter(level)
        .filter(|f| f.path == path_key)
        .max_by_key(|f| {
            (
                f.sni == name && !name.is_empty(),
                f.alpn == alpn_key && !alpn_key.is_empty(),
            )
        })
}

fn pick_name<'a>(fallbacks: &'a [Fallback], sni: &str) -> &'a str {
    if let Some(f) = fallbacks.iter().find(|f| f.sni == sni) {
        return &f.sni;
    }
    fallbacks
        .iter()
        .filter(|f| !f.sni.is_empty() && sni.contains(f.sni.as_str()))
        .max_by_key(|f| f.sni.len())
        .map_or("", |f| &f.sni)
}

/// The HTTP request path peeked from the first bytes (spec 3.4): a '/' after a space
/// at index 4..8, up to '?' or a space, at most up to index 63; not for "PRI *".
pub fn request_path(first: &[u8]) -> Option<&str> {
    if first.len() < 18 || first.get(4) == Some(&b'*') {
        return None;
    }
    let start =
        (4..=8).find(|&i| first.get(i) == Some(&b'/') && first.get(i - 1) == Some(&b' '))?;
    let mut end = start;
    while end < first.len().min(64) {
        match first.get(end)? {
            b'?' | b' ' => break,
            b'\r' | b'\n' => return None,
            _ => end += 1,
        }
    }
    std::str::from_utf8(first.get(start..end)?).ok()
}

/// Connects to the fallback, sends the PROXY header if configured and `first`, then
/// relays both ways.
pub async fn serve<S>(
    fallback: &Fallback,
    client: S,
    first: BytesMut,
    peer: SocketAddr,
    local: SocketAddr,
    timeouts: &Timeouts,
) -> std::io::Result<Traffic>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut head = BytesMut::new();
    let version = match fallback.proxy_protocol {
        1 => Some(Version::V1),
        2 => Some(Version::V2),
        _ => None,
    };
    if let Some(version) = version {
        ProxyHeader::new(version, Some(ProxyAddrs::new(peer, local))).encode(&mut head);
    }
    head.extend_from_slice(&first);
    match &fallback.dest {
        FallbackDest::Tcp(addr) => {
            let mut target = connect_with_retries(addr).await?;
            let _ = target.set_nodelay(true);
            target.write_all(&head).await?;
            Ok(relay(client, target, &[], timeouts, &Meter::default())
                .await
                .0)
        }
        FallbackDest::Unix(path) => {
            let mut target = connect_unix(path).await?;
            target.write_all(&head).await?;
            Ok(relay(client, target, &[], timeouts, &Meter::default())
                .await
                .0)
        }
    }
}

/// Connects to a unix socket: "@name" (or Xray's "@@name") is an abstract socket on
/// Linux, anything else a path. (Xray pads "@@" names to the full sun_path length;
/// here both forms use the name as given.)
pub async fn connect_unix(path: &std::path::Path) -> std::io::Result<tokio::net::UnixStream> {
    let text = path.to_string_lossy();
    let Some(name) = text.strip_prefix('@') else {
        return tokio::net::UnixStream::connect(path).await;
    };
    use std::os::linux::net::SocketAddrExt;
    let name = name.strip_prefix('@').unwrap_or(name);
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    // A local connect does not block: the kernel accepts into the listener's backlog.
    let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

/// Up to 5 attempts with exponential backoff from 100 ms, as Xray.
async fn connect_with_retries(addr: &str) -> std::io::Result<tokio::net::TcpStream> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) if attempt >= 5 => {
                tracing::warn!(
                    "fallback {addr} unreachable after {attempt} attempts in {:?}: {e}",
                    started.elapsed()
                );
                return Err(e);
            }
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fb(sni: &str, alpn: &str, path: &str, port: u16) -> Fallback {
        Fallback {
            dest: FallbackDest::Tcp(format!("127.0.0.1:{port}")),
            sni: sni.into(),
            alpn: alpn.into(),
            path: path.into(),
            proxy_protocol: 0,
        }
    }

    fn port(f: Option<&Fallback>) -> String {
        match f.map(|f| &f.dest) {
            Some(FallbackDest::Tcp(a)) => a.rsplit(':').next().unwrap().to_string(),
            _ => "none".into(),
        }
    }

    #[test]
    fn selection_by_sni_alpn_and_path() {
        let list = vec![
            fb("", "", "", 1),
            fb("", "", "/ws", 2),
            fb("", "h2", "", 3),
            fb("www", "", "", 4),
            fb("www.example", "", "", 5),
        ];
        let get = b"GET /ws?x=1 HTTP/1.1\r\nHost: a\r\n\r\n";
        let other = b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n";
        assert_eq!(port(select(&list, "", "", other)), "1");
        assert_eq!(port(select(&list, "", "http/1.1", get)), "2");
        assert_eq!(port(select(&list, "", "h2", other)), "3");
        assert_eq!(
            port(select(&list, "www.example.com", "", other)),
            "5",
            "longest contained name"
        );
        assert_eq!(port(select(&list, "www.other.com", "", other)), "4");
        assert_eq!(
            port(select(&list, "www.other.com", "", get)),
            "2",
            "paths of \"\" are inherited"
        );
    }

    #[test]
    fn no_default_means_no_fallback() {
        let list = vec![fb("only.example", "", "", 1)];
        assert_eq!(port(select(&list, "x.com", "", b"")), "none");
        assert_eq!(port(select(&list, "only.example", "", b"")), "1");
    }

    #[tokio::test]
    async fn abstract_and_path_unix_sockets() {
        use std::os::linux::net::SocketAddrExt;
        use tokio::io::AsyncReadExt;
        let name = format!("wasmray-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&name).unwrap();
        let listener = std::os::unix::net::UnixListener::bind_addr(&addr).unwrap();
        let mut client = connect_unix(std::path::Path::new(&format!("@{name}")))
            .await
            .unwrap();
        let (mut server, _) = listener.accept().unwrap();
        std::io::Write::write_all(&mut server, b"hi").unwrap();
        let mut got = [0u8; 2];
        client.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hi");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("web.sock");
        let _listener = tokio::net::UnixListener::bind(&path).unwrap();
        assert!(connect_unix(&path).await.is_ok());
        assert!(
            connect_unix(&dir.path().join("missing.sock"))
                .await
                .is_err()
        );
    }

    #[test]
    fn path_peek() {
        assert_eq!(request_path(b"GET /a/b?c HTTP/1.1\r\n\r\n"), Some("/a/b"));
        assert_eq!(
            request_path(b"OPTIONS /x HTTP/1.1\r\nHost: y\r\n"),
            Some("/x")
        );
        assert_eq!(request_path(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), None);
        assert_eq!(request_path(b"GET /short"), None);
        assert_eq!(
            request_path(
                b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x10\x11\x12\x13\x14\x15\x16\x17\x18"
            ),
            None
        );
    }
}
