//! A VLESS-over-TLS client for the tests, built on wasmray's own codecs (interop with
//! real peers is tested against v2ray separately).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use wasmray::proto::vless::{Addons, Command, RequestHeader};
use wasmray::proto::{Address, Destination};

pub type Stream = TlsStream<TcpStream>;

/// A TLS connection to `server` trusting only `cert_der`.
pub async fn tls_connect(
    server: SocketAddr,
    cert_der: &[u8],
    alpn: &[&str],
) -> std::io::Result<Stream> {
    tls_connect_from(None, server, cert_der, alpn).await
}

/// [`tls_connect`] from the loopback address `source` (127.0.0.2 is not the one
/// loopback address Xray's online map leaves out).
pub async fn tls_connect_from(
    source: Option<std::net::IpAddr>,
    server: SocketAddr,
    cert_der: &[u8],
    alpn: &[&str],
) -> std::io::Result<Stream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(cert_der.to_vec()))
        .map_err(std::io::Error::other)?;
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    let tcp = match source {
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(server).await?
        }
        None => TcpStream::connect(server).await?,
    };
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(crate::SNI).map_err(std::io::Error::other)?;
    TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
}

pub fn dest(addr: SocketAddr) -> Destination {
    Destination::new(Address::from_ip(addr.ip()), addr.port())
}

/// The request header bytes for `command` with user `uuid`.
pub fn header(uuid: &str, command: Command) -> BytesMut {
    let id = uuid::Uuid::parse_str(uuid).expect("uuid");
    let header = RequestHeader {
        uuid: *id.as_bytes(),
        addons: Addons::default(),
        command,
    };
    let mut buf = BytesMut::new();
    header.encode(&mut buf).expect("encode header");
    buf
}

/// Opens a VLESS TCP session to `target` and sends `first` glued to the header.
pub async fn connect_tcp(
    server: SocketAddr,
    cert_der: &[u8],
    target: Destination,
    first: &[u8],
) -> std::io::Result<Stream> {
    connect_tcp_as(crate::UUID, server, cert_der, target, first).await
}

/// Whether a session to `target` through the server, sending `first` and closing its
/// side, gets the echo's answer back (routed and dialed) rather than nothing (blocked):
/// for a target that is an echo server.
pub async fn echoes(
    server: SocketAddr,
    cert_der: &[u8],
    target: Destination,
    first: &[u8],
) -> bool {
    let mut s = connect_tcp(server, cert_der, target, first).await.unwrap();
    s.shutdown().await.unwrap();
    let reply = tokio::time::timeout(std::time::Duration::from_secs(20), read_all(&mut s))
        .await
        .unwrap()
        .unwrap_or_default();
    reply.get(2..) == Some(first)
}

/// As [`connect_tcp`], as the user `uuid`.
pub async fn connect_tcp_as(
    uuid: &str,
    server: SocketAddr,
    cert_der: &[u8],
    target: Destination,
    first: &[u8],
) -> std::io::Result<Stream> {
    let mut stream = tls_connect(server, cert_der, &["http/1.1"]).await?;
    let mut buf = header(uuid, Command::Tcp(target));
    buf.extend_from_slice(first);
    stream.write_all(&buf).await?;
    stream.flush().await?;
    Ok(stream)
}

/// Reads and checks the `00 00` response header.
pub async fn read_response(stream: &mut Stream) -> std::io::Result<()> {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).await?;
    if head != [0, 0] {
        return Err(std::io::Error::other(format!(
            "bad response header {head:?}"
        )));
    }
    Ok(())
}

/// Reads to EOF (or error) and returns what came; an error after data is reported.
pub async fn read_all(stream: &mut Stream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    stream.read_to_end(&mut out).await?;
    Ok(out)
}
