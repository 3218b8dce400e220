//! The API beyond loopback: TLS (rustls) in front of tonic, optionally requiring a
//! client certificate signed by `[api.tls] client_ca`. Handshakes run in their own
//! tasks, bounded in time and number, so a slow or hostile client holds up nobody;
//! only finished connections reach the gRPC server.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

use crate::config::ApiTls;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in flight at once; more wait in the kernel's backlog.
const HANDSHAKES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ApiTlsError {
    #[error("api.tls: {0}")]
    Config(#[from] rustls::Error),
    #[error("api.tls.client_ca: {0}")]
    ClientCa(String),
}

/// The acceptor of `tls`: ALPN h2, and client certificates checked if a CA is set.
pub fn acceptor(tls: &ApiTls) -> Result<tokio_rustls::TlsAcceptor, ApiTlsError> {
    let builder = rustls::ServerConfig::builder();
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(cas) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in cas {
                roots
                    .add(ca.clone())
                    .map_err(|e| ApiTlsError::ClientCa(e.to_string()))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .build()
                .map_err(|e| ApiTlsError::ClientCa(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let id = &tls.identity;
    let mut config = builder.with_single_cert(id.certs.clone(), id.key.clone_key())?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A connection that finished its TLS handshake.
pub struct ApiConn(TlsStream<TcpStream>);

impl Connected for ApiConn {
    type ConnectInfo = Option<SocketAddr>;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.0.get_ref().0.peer_addr().ok()
    }
}

impl AsyncRead for ApiConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ApiConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Accepts on `listener` and hands each connection that completes its handshake to
/// the returned stream (which ends when the listener's task does).
pub fn incoming(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<ApiConn>> {
    let (tx, rx) = mpsc::channel(HANDSHAKES);
    let permits = Arc::new(Semaphore::new(HANDSHAKES));
    tokio::spawn(async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return;
            };
            let (tcp, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("api: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            if tx.is_closed() {
                return;
            }
            let (tx, acceptor) = (tx.clone(), acceptor.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(ApiConn(tls))).await;
                    }
                    Ok(Err(e)) => tracing::info!(%peer, "api: TLS handshake refused: {e}"),
                    Err(_) => tracing::info!(%peer, "api: TLS handshake timed out"),
                }
                drop(permit);
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
