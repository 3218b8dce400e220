//! TCP: the system resolver and connects that try each address in turn.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::session::{Failure, Target};

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("connect to {0} timed out")]
    Timeout(Target),
    #[error("connect to {0}: {1}")]
    Connect(Target, std::io::Error),
    #[error("resolve {0}: {1}")]
    Resolve(Target, std::io::Error),
}

impl TransportError {
    /// In the terms an inbound answers with.
    pub fn failure(&self) -> Failure {
        match self {
            TransportError::Timeout(_) => Failure::TimedOut,
            TransportError::Resolve(..) => Failure::UnknownHost,
            TransportError::Connect(_, e) => match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Failure::Refused,
                std::io::ErrorKind::TimedOut => Failure::TimedOut,
                _ => Failure::Unreachable,
            },
        }
    }
}

/// Resolves a target with the system resolver (an IP literal needs no lookup).
pub async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, TransportError> {
    if let Some(ip) = target.ip() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let addrs = tokio::net::lookup_host((&*target.host, target.port))
        .await
        .map_err(|e| TransportError::Resolve(target.clone(), e))?;
    Ok(addrs.collect())
}

/// Connects to the first address of `target` that answers, within `timeout` overall.
pub async fn connect(target: &Target, timeout: Duration) -> Result<TcpStream, TransportError> {
    let attempt = async {
        let mut last = None;
        for addr in resolve(target).await? {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.unwrap_or_else(|| std::io::Error::other("no address"));
        Err(TransportError::Connect(target.clone(), e))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| TransportError::Timeout(target.clone()))?
}
