//! Small local servers for the tests, each on 127.0.0.1:0, each task ending with the
//! test's runtime.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// TCP echo: writes back every byte, closes after the client does.
pub async fn echo() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    addr
}

/// HTTP/1.1: answers every request with `body` (200) and closes. Each answer names the
/// request path in an `X-Path` header, so a test can tell which request it got.
pub async fn http(body: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&head);
                let path = text.split(' ').nth(1).unwrap_or("?").to_string();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nX-Path: {path}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(reply.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// The byte at `offset` of the test pattern (cheap, position-dependent, not periodic at
/// any small power of two, so a dropped or repeated chunk is caught).
pub fn pattern_byte(offset: u64) -> u8 {
    let x = offset.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (offset >> 7);
    (x >> 29) as u8
}

/// Fills `buf` with the pattern starting at `offset`.
pub fn fill_pattern(offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern_byte(offset + i as u64);
    }
}

/// Writes the first `size` bytes of the pattern to `w`.
pub async fn send_pattern<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    size: u64,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0u64;
    while sent < size {
        let n = (size - sent).min(buf.len() as u64) as usize;
        fill_pattern(sent, &mut buf[..n]);
        w.write_all(&buf[..n]).await?;
        sent += n as u64;
    }
    Ok(())
}

/// Sends `size` bytes of the pattern to every client, then closes.
pub async fn blob(size: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                if send_pattern(&mut s, size).await.is_ok() {
                    let _ = s.shutdown().await;
                }
            });
        }
    });
    addr
}

/// UDP echo: sends every datagram back to its sender.
pub async fn udp_echo() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    addr
}

/// Reads `reader` to its end, checking every byte against the pattern; returns how many
/// bytes arrived. Panics at the first wrong byte.
pub async fn read_pattern<R: tokio::io::AsyncRead + Unpin>(reader: &mut R) -> u64 {
    read_pattern_from(reader, 0).await
}

/// [`read_pattern`] for a stream whose first `offset` bytes were already read; returns
/// the offset of its end.
pub async fn read_pattern_from<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    mut offset: u64,
) -> u64 {
    let mut buf = vec![0u8; 64 * 1024];
    let mut expected = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf).await.expect("read");
        if n == 0 {
            return offset;
        }
        fill_pattern(offset, &mut expected[..n]);
        assert!(buf[..n] == expected[..n], "corrupt data at offset {offset}");
        offset += n as u64;
    }
}

/// UDP "who am I": answers every datagram with the sender's address as text.
pub async fn udp_whoami() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
    let addr = socket.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        while let Ok((_, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(from.to_string().as_bytes(), from).await;
        }
    });
    addr
}

/// HTTP/1.1 with keep-alive and request bodies (Content-Length or chunked): answers
/// each request with a chunked body `path=P bytes=N sum=S` (S: the byte sum of the
/// request body), and `X-Conn: K` naming the connection, so a test can tell whether
/// requests shared one upstream connection. Closes when the client does, or after a
/// request with `Connection: close`.
pub async fn http_upload() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut conn = 0u32;
        while let Ok((s, _)) = listener.accept().await {
            conn += 1;
            tokio::spawn(serve_uploads(s, conn));
        }
    });
    addr
}

async fn serve_uploads(mut s: tokio::net::TcpStream, conn: u32) {
    let mut buf = Vec::new();
    loop {
        let Some(head_end) = read_until_found(&mut s, &mut buf, b"\r\n\r\n").await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let path = head.split(' ').nth(1).unwrap_or("?").to_string();
        buf.drain(..head_end + 4);
        let body = if head.contains("transfer-encoding: chunked") {
            read_chunked(&mut s, &mut buf).await
        } else {
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            while buf.len() < len {
                if read_more(&mut s, &mut buf).await == 0 {
                    return;
                }
            }
            Some(buf.drain(..len).collect())
        };
        let Some(body) = body else { return };
        let sum: u64 = body.iter().map(|b| u64::from(*b)).sum();
        let text = format!("path={path} bytes={} sum={sum}", body.len());
        let reply = format!(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Conn: {conn}\r\n\r\n{:x}\r\n{text}\r\n0\r\n\r\n",
            text.len()
        );
        if s.write_all(reply.as_bytes()).await.is_err() || head.contains("connection: close") {
            return;
        }
    }
}

async fn read_more(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> usize {
    let mut chunk = [0u8; 16 * 1024];
    let n = s.read(&mut chunk).await.unwrap_or(0);
    buf.extend_from_slice(&chunk[..n]);
    n
}

async fn read_until_found(
    s: &mut tokio::net::TcpStream,
    buf: &mut Vec<u8>,
    needle: &[u8],
) -> Option<usize> {
    loop {
        if let Some(at) = buf.windows(needle.len()).position(|w| w == needle) {
            return Some(at);
        }
        if read_more(s, buf).await == 0 {
            return None;
        }
    }
}

/// De-chunks a request body (no trailers expected).
async fn read_chunked(s: &mut tokio::net::TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = read_until_found(s, buf, b"\r\n").await?;
        let line = String::from_utf8_lossy(&buf[..line_end]).to_string();
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        buf.drain(..line_end + 2);
        while buf.len() < size + 2 {
            if read_more(s, buf).await == 0 {
                return None;
            }
        }
        body.extend(buf.drain(..size));
        buf.drain(..2);
        if size == 0 {
            return Some(body);
        }
    }
}

/// A TCP relay in front of `target` that can cut one of the connections it carries,
/// to break one Mux.Cool tunnel and leave the others.
pub struct Cutter {
    pub addr: SocketAddr,
    connections: std::sync::Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Cutter {
    pub async fn start(target: SocketAddr) -> Cutter {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let connections = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let list = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let task = tokio::spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
                list.lock().unwrap().push(task.abort_handle());
            }
        });
        Cutter { addr, connections }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.connections.lock().unwrap().len()
    }

    /// Drops both sides of connection `index` (0: the first accepted).
    pub fn cut(&self, index: usize) {
        self.connections.lock().unwrap()[index].abort();
    }
}
