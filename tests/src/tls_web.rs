//! A local TLS web server for traffic that is itself TLS (what Vision is for): its own
//! certificate made at test time, TLS 1.3 or 1.2 only, serving either a page to any
//! request (for curl) or a patterned download to every client.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::servers::send_pattern;

/// What the server sends.
#[derive(Clone, Copy)]
pub enum Serves {
    /// An HTTP/1.1 200 answer with this body to any request, then close.
    Page(&'static str),
    /// `n` bytes of the test pattern at once, then close.
    Blob(u64),
}

pub struct TlsWeb {
    pub addr: SocketAddr,
    /// Its certificate, for a client that checks it.
    pub cert_der: Vec<u8>,
}

impl TlsWeb {
    /// Listens on 127.0.0.1:0; `tls13` picks the version it will speak.
    pub async fn start(serves: Serves, tls13: bool) -> TlsWeb {
        let cert = rcgen::generate_simple_self_signed(vec![crate::SNI.to_string()]).expect("cert");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let versions: &[&rustls::SupportedProtocolVersion] = if tls13 {
            &[&rustls::version::TLS13]
        } else {
            &[&rustls::version::TLS12]
        };
        let config = rustls::ServerConfig::builder_with_protocol_versions(versions)
            .with_no_client_auth()
            .with_single_cert(vec![cert.cert.der().clone()], key)
            .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        serve(tls, serves).await;
                    }
                });
            }
        });
        TlsWeb {
            addr,
            cert_der: cert.cert.der().to_vec(),
        }
    }

    /// A TLS client session over `stream` (through a proxy) that checks this server's
    /// certificate.
    pub async fn connect<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: S,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<S>> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.cert_der.clone()))
            .map_err(std::io::Error::other)?;
        let config = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(crate::SNI).map_err(std::io::Error::other)?;
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, stream)
            .await
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut tls: S, serves: Serves) {
    match serves {
        Serves::Page(body) => {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
                match tls.read(&mut byte).await {
                    Ok(1) => head.push(byte[0]),
                    _ => return,
                }
            }
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = tls.write_all(answer.as_bytes()).await;
        }
        Serves::Blob(size) => {
            if send_pattern(&mut tls, size).await.is_err() {
                return;
            }
        }
    }
    let _ = tls.shutdown().await;
}
