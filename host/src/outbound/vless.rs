//! The `vless` outbound: the client's stack of layers, composed from its config, to a
//! server (wasmray, Xray, v2ray, sing-box):
//!
//! ```text
//! transport (TCP) -> security (TLS) -> vless (request header glued to the first bytes)
//!   -> [Vision, with flow xtls-rprx-vision: the header glued to the first padded frame]
//! ```

use tokio::io::AsyncWriteExt;

use super::OutboundError;
use crate::config::VlessOutbound;
use crate::proto::vless::{Addons, Command};
use crate::security::{ClientSecured, ClientSecurity, Peel};
use crate::session::Target;
use crate::vless::flow::FlowError;
use crate::vless::{VisionStream, VlessStream};

/// A VLESS connection to a server, as the layers make it.
pub type VlessConn = VlessStream<ClientSecured>;
/// A VLESS connection with the Vision flow.
pub type VisionConn = VisionStream<VlessConn>;

impl VlessOutbound {
    /// The server's address, for dialing and for error messages.
    pub fn target(&self) -> Target {
        Target::new(self.host.as_str(), self.port)
    }
}

/// Dials the server through every layer and sends the header for `command` glued to
/// `first`.
pub async fn connect(
    cfg: &VlessOutbound,
    security: &ClientSecurity,
    command: Command,
    first: &[u8],
) -> Result<VlessConn, OutboundError> {
    let server = cfg.target();
    let stream = crate::transport::dial(cfg.transport, &server, cfg.connect_timeout).await?;
    let secured = security
        .connect(stream)
        .await
        .map_err(|e| OutboundError::Security(server.clone(), e))?;
    crate::vless::client::open(secured, &cfg.id, command, first)
        .await
        .map_err(|e| OutboundError::Connect(server, e))
}

/// Dials the server through every layer with the Vision flow (reads one TLS record at
/// a time, so the server's switch to raw bytes loses nothing) and sends the header for
/// `command` glued to `first`, padded. With nothing to send yet, an empty padded frame
/// goes with the header (Xray's camouflage frame, sent at once rather than after its
/// 500 ms: the sniff window has already waited).
pub async fn connect_vision(
    cfg: &VlessOutbound,
    security: &ClientSecurity,
    command: Command,
    first: &[u8],
) -> Result<VisionConn, OutboundError> {
    let server = cfg.target();
    let stream = crate::transport::dial(cfg.transport, &server, cfg.connect_timeout)
        .await?
        .one_record_at_a_time();
    let failed = |e| OutboundError::Connect(server.clone(), e);
    let secured = security
        .connect(stream)
        .await
        .map_err(|e| OutboundError::Security(server.clone(), e))?;
    match secured.outer_version() {
        Some(0x0304) => {}
        other => {
            let why = FlowError::OuterVersion(other.unwrap_or(0));
            return Err(failed(std::io::Error::other(why)));
        }
    }
    let vless =
        crate::vless::client::open_with_first_write(secured, &cfg.id, Addons::vision(), command)
            .map_err(failed)?;
    let mut vision = VisionStream::client(vless, *cfg.id.as_bytes());
    if first.is_empty() {
        vision.camouflage();
    } else {
        vision.write_all(first).await.map_err(failed)?;
    }
    vision.flush().await.map_err(failed)?;
    Ok(vision)
}
