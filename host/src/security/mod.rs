//! The security layer: what protects a transport's stream, between the transport and
//! VLESS. TLS now (rustls); REALITY is one more module here, one more arm of
//! `config::Security` and one more variant of the secured streams. Nothing here knows
//! VLESS or what the stream carries.

mod tls;

use std::sync::Arc;

use crate::config::{Security, TlsIdentity, VlessOutbound};
use crate::transport::Stream;

pub use tls::client_provider;

#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    #[error("invalid TLS server name {0:?}")]
    Name(String),
    #[error("TLS handshake: {0}")]
    Handshake(std::io::Error),
}

/// The server side of an inbound's security layer, built once per configuration.
pub enum ServerSecurity {
    Tls(tokio_rustls::TlsAcceptor),
}

/// An accepted, secured connection. Boxed inside: a TLS stream is over a kilobyte, and
/// every future it passes through would otherwise hold its own copy of that space for
/// the connection's whole life.
pub enum Secured {
    Tls(Box<tokio_rustls::server::TlsStream<Stream>>),
}

impl ServerSecurity {
    pub fn new(security: Security, identity: &TlsIdentity) -> Result<Self, SecurityError> {
        match security {
            Security::Tls => Ok(ServerSecurity::Tls(tls::acceptor(identity)?)),
        }
    }

    /// The handshake. Boxed: it holds a whole TLS state while it runs, and inline it
    /// would size the task of every connection for its whole life.
    pub async fn accept(&self, stream: Stream) -> Result<Secured, SecurityError> {
        match self {
            ServerSecurity::Tls(acceptor) => {
                let tls = Box::pin(acceptor.accept(stream))
                    .await
                    .map_err(SecurityError::Handshake)?;
                Ok(Secured::Tls(Box::new(tls)))
            }
        }
    }
}

impl Secured {
    /// The server name the client asked for, lower-cased.
    pub fn sni(&self) -> Option<Arc<str>> {
        match self {
            Secured::Tls(tls) => tls
                .get_ref()
                .1
                .server_name()
                .map(|s| Arc::from(s.to_ascii_lowercase())),
        }
    }

    /// The negotiated application protocol.
    pub fn alpn(&self) -> Option<Arc<str>> {
        match self {
            Secured::Tls(tls) => tls
                .get_ref()
                .1
                .alpn_protocol()
                .and_then(|a| std::str::from_utf8(a).ok())
                .map(Arc::from),
        }
    }

    /// Lets one write of up to `bytes` go out whole (a Mux.Cool batch), where the
    /// layer would otherwise split it.
    pub fn take_writes_of(&mut self, bytes: usize) {
        match self {
            Secured::Tls(tls) => tls.get_mut().1.set_buffer_limit(Some(bytes)),
        }
    }
}

/// The client side of an outbound's security layer, built once per configuration.
#[derive(Clone)]
pub enum ClientSecurity {
    Tls {
        config: Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
    },
}

/// A dialed, secured connection.
pub enum ClientSecured {
    Tls(Box<tokio_rustls::client::TlsStream<Stream>>),
}

impl ClientSecurity {
    pub fn new(cfg: &VlessOutbound) -> Result<Self, SecurityError> {
        match cfg.security {
            Security::Tls => {
                let name = rustls::pki_types::ServerName::try_from(cfg.sni.clone())
                    .map_err(|_| SecurityError::Name(cfg.sni.clone()))?;
                Ok(ClientSecurity::Tls {
                    config: tls::client_config(cfg),
                    name,
                })
            }
        }
    }

    pub async fn connect(&self, stream: Stream) -> Result<ClientSecured, SecurityError> {
        match self {
            ClientSecurity::Tls { config, name } => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = Box::pin(connector.connect(name.clone(), stream))
                    .await
                    .map_err(SecurityError::Handshake)?;
                Ok(ClientSecured::Tls(Box::new(tls)))
            }
        }
    }
}

impl ClientSecured {
    /// See [`Secured::take_writes_of`].
    pub fn take_writes_of(&mut self, bytes: usize) {
        match self {
            ClientSecured::Tls(tls) => tls.get_mut().1.set_buffer_limit(Some(bytes)),
        }
    }
}

/// What a layer above may learn of the security layer under it, and reach past it:
/// Vision switches a direction to the raw socket once the inner traffic is TLS 1.3
/// (`shared/spec/xtls-vision.md` §6.1).
pub trait Peel {
    /// The stream under the security layer.
    fn raw(&mut self) -> &mut Stream;
    /// Moves the plaintext the layer has decrypted but not yet handed up into `out`,
    /// without reading the socket.
    fn take_plaintext(&mut self, out: &mut bytes::BytesMut);
    /// The negotiated TLS version (`0x0304` for 1.3).
    fn outer_version(&self) -> Option<u16>;
    /// Reads plaintext of at most one record: a read that went on to the next record
    /// (tokio-rustls's client read fills the whole buffer) could take the peer's raw
    /// bytes after its direct frame for a record.
    fn poll_read_record(
        &mut self,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>>;
}

/// One chunk of a buffered reader's data: rustls hands its plaintext up a record at
/// a time.
fn poll_chunk<R: tokio::io::AsyncBufRead + Unpin>(
    reader: &mut R,
    cx: &mut std::task::Context<'_>,
    buf: &mut tokio::io::ReadBuf<'_>,
) -> std::task::Poll<std::io::Result<()>> {
    use std::pin::Pin;
    let data = std::task::ready!(Pin::new(&mut *reader).poll_fill_buf(cx))?;
    let n = data.len().min(buf.remaining());
    buf.put_slice(data.get(..n).unwrap_or_default());
    Pin::new(reader).consume(n);
    std::task::Poll::Ready(Ok(()))
}

/// Drains rustls's decrypted plaintext (its `Reader` says `WouldBlock` once empty).
fn drain(mut reader: rustls::Reader<'_>, out: &mut bytes::BytesMut) {
    use std::io::Read;
    let mut chunk = [0u8; 4096];
    while let Ok(n @ 1..) = reader.read(&mut chunk) {
        out.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
}

/// Both secured streams peel the same way: rustls over the transport's stream.
macro_rules! peel_tls {
    ($ty:ident) => {
        impl Peel for $ty {
            fn raw(&mut self) -> &mut Stream {
                match self {
                    $ty::Tls(tls) => tls.get_mut().0,
                }
            }

            fn take_plaintext(&mut self, out: &mut bytes::BytesMut) {
                match self {
                    $ty::Tls(tls) => drain(tls.get_mut().1.reader(), out),
                }
            }

            fn outer_version(&self) -> Option<u16> {
                match self {
                    $ty::Tls(tls) => tls.get_ref().1.protocol_version().map(u16::from),
                }
            }

            fn poll_read_record(
                &mut self,
                cx: &mut std::task::Context<'_>,
                buf: &mut tokio::io::ReadBuf<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                match self {
                    $ty::Tls(tls) => poll_chunk(&mut **tls, cx, buf),
                }
            }
        }
    };
}

peel_tls!(Secured);
peel_tls!(ClientSecured);

// Both secured streams are plain byte streams to the layers above.
crate::util::delegate_io!(Secured { Tls });
crate::util::delegate_io!(ClientSecured { Tls });
crate::relay::never_a_socket!(Secured);
