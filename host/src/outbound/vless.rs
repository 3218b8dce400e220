//! The `vless` outbound: VLESS over TLS to a server (wasmray, Xray, v2ray, sing-box).
//!
//! The request header goes out glued to the first payload bytes (the bytes the sniff
//! window held), as Xray's client coalesces them. The server's response header (`00`,
//! addons length, addons) arrives with its first downlink bytes and is stripped here
//! without waiting for it, so the uplink never stalls behind it.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio_rustls::TlsConnector;

use super::{OutboundError, connect_tcp};
use crate::bufpool::Coalesced;
use crate::config::VlessOutbound;
use crate::proto::vless::{Addons, Command, RequestHeader};

use crate::session::Target;

/// The crypto provider with the cipher-suite order of Go's TLS clients (Xray, v2ray,
/// sing-box): AES-128-GCM with SHA-256 first. rustls's default puts AES-256-GCM with
/// SHA-384 first; against a server that honours the client's order that costs more
/// on both ends (14 AES rounds, and SHA-384, which has no SHA-NI, in every handshake)
/// for no security a proxy hop needs.
pub fn client_provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        use rustls::CipherSuite::*;
        match s.suite() {
            TLS13_AES_128_GCM_SHA256 => 0,
            TLS13_CHACHA20_POLY1305_SHA256 => 1,
            TLS13_AES_256_GCM_SHA384 => 2,
            _ => 3,
        }
    });
    Arc::new(provider)
}

/// The TLS client configuration of a vless outbound: the web PKI roots, the configured
/// CA file's certificates, or (`insecure`) none checked.
pub fn tls_config(cfg: &VlessOutbound) -> Arc<rustls::ClientConfig> {
    let provider = client_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions");
    let mut config = if cfg.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(Some(provider))))
            .with_no_client_auth()
    } else {
        let roots = match &cfg.ca {
            Some(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(certs.iter().cloned());
                if ignored > 0 {
                    tracing::warn!(added, ignored, "vless outbound: unusable CA certificates");
                }
                roots
            }
            None => {
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
            }
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = cfg.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Arc::new(config)
}

impl VlessOutbound {
    /// The server's address, for dialing and for error messages.
    pub fn target(&self) -> Target {
        Target::new(self.host.as_str(), self.port)
    }
}

/// Dials the server, sends the header for `command` glued to `first`, and returns the
/// stream.
pub async fn connect(
    cfg: &VlessOutbound,
    tls: &Arc<rustls::ClientConfig>,
    command: Command,
    first: &[u8],
) -> Result<VlessStream, OutboundError> {
    let server = cfg.target();
    let tcp = connect_tcp(&server, cfg.connect_timeout).await?;
    let io = |e: std::io::Error| OutboundError::Connect(server.clone(), e);
    let name = ServerName::try_from(cfg.sni.clone()).map_err(|e| io(std::io::Error::other(e)))?;
    let mut stream = TlsConnector::from(tls.clone())
        .connect(name, Coalesced::new(tcp))
        .await
        .map_err(io)?;
    let header = RequestHeader {
        uuid: *cfg.id.as_bytes(),
        addons: Addons::default(),
        command,
    };
    let mut out = BytesMut::with_capacity(header.encoded_len() + first.len());
    header
        .encode(&mut out)
        .map_err(|e| io(std::io::Error::other(e)))?;
    out.extend_from_slice(first);
    stream.write_all(&out).await.map_err(io)?;
    stream.flush().await.map_err(io)?;
    Ok(VlessStream {
        inner: stream,
        header: Header::Version,
    })
}

/// Where the response header stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Version,
    AddonsLen,
    Addons(u8),
    Done,
}

/// A VLESS client stream: writes pass through, reads skip the response header.
pub struct VlessStream {
    inner: tokio_rustls::client::TlsStream<Coalesced<tokio::net::TcpStream>>,
    header: Header,
}

/// Consumes response-header bytes from the front of `data`; returns how many.
fn strip_header(state: &mut Header, data: &[u8]) -> std::io::Result<usize> {
    let mut used = 0;
    while *state != Header::Done {
        let Some(&b) = data.get(used) else { break };
        *state = match *state {
            Header::Version if b != 0 => {
                return Err(std::io::Error::other(format!("VLESS response version {b}")));
            }
            Header::Version => Header::AddonsLen,
            Header::AddonsLen if b == 0 => Header::Done,
            Header::AddonsLen => Header::Addons(b),
            Header::Addons(1) | Header::Done => Header::Done,
            Header::Addons(n) => Header::Addons(n - 1),
        };
        used += 1;
    }
    Ok(used)
}

impl AsyncRead for VlessStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let before = buf.filled().len();
            ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
            let filled = buf.filled().len();
            if self.header == Header::Done || filled == before {
                return Poll::Ready(Ok(()));
            }
            let used = {
                let new = buf.filled().get(before..).unwrap_or_default().to_vec();
                strip_header(&mut self.header, &new)?
            };
            let data = buf.filled_mut();
            data.copy_within(before + used..filled, before);
            buf.set_filled(filled - used);
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl AsyncWrite for VlessStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Accepts any server certificate (`insecure = true`), still checking signatures.
#[derive(Debug)]
struct AcceptAny(Option<Arc<rustls::crypto::CryptoProvider>>);

impl AcceptAny {
    fn algorithms(&self) -> rustls::crypto::WebPkiSupportedAlgorithms {
        self.0
            .as_ref()
            .map(|p| p.signature_verification_algorithms)
            .unwrap_or_else(|| {
                rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
            })
    }
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_all(chunks: &[&[u8]]) -> std::io::Result<Vec<u8>> {
        let mut state = Header::Version;
        let mut out = Vec::new();
        for chunk in chunks {
            let used = strip_header(&mut state, chunk)?;
            out.extend_from_slice(&chunk[used..]);
        }
        Ok(out)
    }

    #[test]
    fn the_response_header_is_stripped_however_it_is_split() {
        assert_eq!(strip_all(&[b"\0\0hello"]).unwrap(), b"hello");
        assert_eq!(strip_all(&[b"\0", b"\0", b"hi"]).unwrap(), b"hi");
        assert_eq!(strip_all(&[b"\0\x02ab", b"c"]).unwrap(), b"c");
        assert_eq!(strip_all(&[b"\0\x02a", b"bcd"]).unwrap(), b"cd");
        assert!(strip_all(&[b"\x01\0"]).is_err());
    }
}
