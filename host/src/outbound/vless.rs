//! The `vless` outbound: the client's stack of layers, composed from its config, to a
//! server (wasmray, Xray, v2ray, sing-box):
//!
//! ```text
//! transport (TCP) -> security (TLS) -> vless (request header glued to the first bytes)
//! ```

use super::OutboundError;
use crate::config::VlessOutbound;
use crate::proto::vless::Command;
use crate::security::{ClientSecured, ClientSecurity};
use crate::session::Target;
use crate::vless::VlessStream;

/// A VLESS connection to a server, as the layers make it.
pub type VlessConn = VlessStream<ClientSecured>;

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
