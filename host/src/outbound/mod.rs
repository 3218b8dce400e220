//! Outbounds: where a routed session goes. Enum dispatch, no `Box<dyn>` on the hot path.

mod direct;
pub mod vless;

use std::sync::Arc;

use crate::config::{OutboundConfig, OutboundKind};
use crate::session::Target;

pub use direct::{connect_tcp, resolve, udp_socket};

/// A configured outbound.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub tag: Arc<str>,
    pub kind: OutboundKind,
    /// The TLS client configuration of a vless outbound, built once.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("blocked by outbound {0}")]
    Blocked(Arc<str>),
    #[error("no outbound is tagged {0:?}")]
    Unknown(String),
    #[error("connect to {0} timed out")]
    Timeout(Target),
    #[error("connect to {0}: {1}")]
    Connect(Target, std::io::Error),
    #[error("resolve {0}: {1}")]
    Resolve(Target, std::io::Error),
}

/// The outbounds of one configuration, by tag; the first is the default.
#[derive(Debug, Clone)]
pub struct Outbounds(Vec<Outbound>);

impl Outbounds {
    pub fn new(configs: &[OutboundConfig]) -> Self {
        Self(
            configs
                .iter()
                .map(|c| Outbound {
                    tag: c.tag.as_str().into(),
                    kind: c.kind.clone(),
                    tls: match &c.kind {
                        OutboundKind::Vless(v) => Some(vless::tls_config(v)),
                        _ => None,
                    },
                })
                .collect(),
        )
    }

    /// The outbound named by the route stage, or the first one when none was chosen.
    /// A tag that does not exist closes the session (as Xray does), not the default.
    pub fn pick(&self, tag: Option<&str>) -> Result<&Outbound, OutboundError> {
        match tag {
            Some(tag) => self
                .0
                .iter()
                .find(|o| &*o.tag == tag)
                .ok_or_else(|| OutboundError::Unknown(tag.into())),
            None => self
                .0
                .first()
                .ok_or_else(|| OutboundError::Unknown("(none configured)".into())),
        }
    }
}
