//! The `direct` outbound: TCP connect and UDP sockets, with the system resolver.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpStream, UdpSocket};

use super::OutboundError;
use crate::session::Target;

/// Resolves a target with the system resolver (an IP literal needs no lookup).
pub async fn resolve(target: &Target) -> Result<Vec<SocketAddr>, OutboundError> {
    if let Some(ip) = target.ip() {
        return Ok(vec![SocketAddr::new(ip, target.port)]);
    }
    let addrs = tokio::net::lookup_host((&*target.host, target.port))
        .await
        .map_err(|e| OutboundError::Resolve(target.clone(), e))?;
    Ok(addrs.collect())
}

/// Connects to the first address of `target` that answers, within `timeout` overall.
pub async fn connect_tcp(target: &Target, timeout: Duration) -> Result<TcpStream, OutboundError> {
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
        Err(OutboundError::Connect(target.clone(), e))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| OutboundError::Timeout(target.clone()))?
}

/// A UDP socket for sending to `target`'s address family.
pub async fn udp_socket(target: &SocketAddr) -> std::io::Result<UdpSocket> {
    let bind: SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    UdpSocket::bind(bind).await
}
