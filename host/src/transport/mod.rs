//! The transport layer: how a stream reaches the next hop, under the security layer
//! and VLESS. TCP now; a WebSocket, gRPC or XHTTP transport is one more module here, one
//! more arm of `config::Transport` and of the [`Stream`] it hands up. Nothing here
//! knows TLS or VLESS.

mod tcp;

use std::time::Duration;

use tokio::net::TcpStream;

use crate::bufpool::Coalesced;
use crate::config::Transport;
use crate::session::Target;

pub use tcp::{TransportError, connect, resolve};

/// The stream a transport hands up: TCP, read in large reads (`Coalesced`, for rustls
/// above it, which pulls 4 KiB at a time).
pub type Stream = Coalesced<TcpStream>;

/// An accepted connection as the transport's stream.
pub fn accepted(transport: Transport, tcp: TcpStream) -> Stream {
    match transport {
        Transport::Tcp => {
            let _ = tcp.set_nodelay(true);
            Coalesced::new(tcp)
        }
    }
}

/// Dials `target` over `transport`, within `timeout`.
pub async fn dial(
    transport: Transport,
    target: &Target,
    timeout: Duration,
) -> Result<Stream, TransportError> {
    match transport {
        Transport::Tcp => Ok(Coalesced::new(connect(target, timeout).await?)),
    }
}
