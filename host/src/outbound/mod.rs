//! Outbounds: where a routed session goes. Enum dispatch, no `Box<dyn>` on the hot path.
//! A TCP session becomes an [`Upstream`], a UDP flow becomes [`Packets`]; full-cone UDP
//! (XUDP) is something an outbound offers ([`Outbound::open_cone`]) or refuses.

mod cone;
mod direct;
mod mux_pool;
mod packets;
mod upstream;
pub mod vless;

use std::sync::Arc;

use crate::config::{OutboundConfig, OutboundKind};
use crate::proto::vless::Command;
use crate::security::{ClientSecurity, SecurityError};
use crate::session::{Failure, Target};
use crate::transport::TransportError;

pub use cone::REUSE_FOR;
pub use direct::udp_socket;
pub use mux_pool::{MAX_SESSIONS, MuxClient};
pub use packets::{PacketRx, PacketTx, Packets, read_datagram};
pub use upstream::Upstream;

/// A configured outbound.
#[derive(Clone)]
pub struct Outbound {
    pub tag: Arc<str>,
    pub kind: OutboundKind,
    /// The security layer of a vless outbound, built once.
    pub security: Option<ClientSecurity>,
    /// The Mux.Cool pool of a vless outbound with mux enabled.
    pub mux: Option<Arc<MuxClient>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Outbound({}, {:?})", self.tag, self.kind)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("blocked by outbound {0}")]
    Blocked(Arc<str>),
    #[error("no outbound is tagged {0:?}")]
    Unknown(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{0}: {1}")]
    Security(Target, SecurityError),
    #[error("connect to {0}: {1}")]
    Connect(Target, std::io::Error),
    #[error("outbound {0} offers no full-cone UDP (XUDP goes out direct)")]
    NoFullCone(Arc<str>),
}

impl OutboundError {
    pub fn failure(&self) -> Failure {
        match self {
            OutboundError::Blocked(_) | OutboundError::NoFullCone(_) => Failure::Blocked,
            OutboundError::Unknown(_) => Failure::Other,
            OutboundError::Transport(e) => e.failure(),
            OutboundError::Security(..) => Failure::Unreachable,
            OutboundError::Connect(_, e) => match e.kind() {
                std::io::ErrorKind::ConnectionRefused => Failure::Refused,
                std::io::ErrorKind::TimedOut => Failure::TimedOut,
                _ => Failure::Unreachable,
            },
        }
    }
}

impl Outbound {
    fn new(config: &OutboundConfig) -> Result<Self, SecurityError> {
        let security = match &config.kind {
            OutboundKind::Vless(v) => Some(ClientSecurity::new(v)?),
            _ => None,
        };
        let mux = match (&config.kind, &security) {
            // With Vision, UDP goes over Mux.Cool (XUDP) as Xray's client sends it.
            (OutboundKind::Vless(v), Some(security)) if v.mux.enabled || v.flow.is_vision() => {
                Some(Arc::new(MuxClient::new(v.clone(), security.clone())))
            }
            _ => None,
        };
        Ok(Outbound {
            tag: config.tag.as_str().into(),
            kind: config.kind.clone(),
            security,
            mux,
        })
    }

    /// Opens a full-cone flow (one socket for every destination, replies tagged with
    /// their source) whose datagrams without an address go to `target`: only `direct`
    /// offers it. `global_id` lets a reconnecting XUDP client keep its port.
    pub async fn open_cone(
        &self,
        target: &Target,
        global_id: Option<[u8; 8]>,
    ) -> Result<Packets, OutboundError> {
        match &self.kind {
            OutboundKind::Direct { .. } => {
                let (tx, rx) = cone::open(target, global_id)
                    .await
                    .map_err(|e| OutboundError::Connect(target.clone(), e))?;
                Ok(Packets {
                    tx: PacketTx::Cone(tx),
                    rx: PacketRx::Cone(rx),
                })
            }
            _ => Err(OutboundError::NoFullCone(self.tag.clone())),
        }
    }

    /// Connects a TCP session to `target`; `first` (the bytes the sniff window held)
    /// goes out ahead of everything else, glued to the protocol header where there is one.
    pub async fn connect(&self, target: &Target, first: &[u8]) -> Result<Upstream, OutboundError> {
        use tokio::io::AsyncWriteExt;
        match (&self.kind, &self.security, &self.mux) {
            (OutboundKind::Direct { connect_timeout }, _, _) => {
                let mut tcp = crate::transport::connect(target, *connect_timeout).await?;
                tcp.write_all(first)
                    .await
                    .map_err(|e| OutboundError::Connect(target.clone(), e))?;
                Ok(Upstream::Direct(tcp))
            }
            (OutboundKind::Vless(cfg), Some(security), _) if cfg.flow.is_vision() => {
                let command = Command::Tcp(target.destination());
                let stream = vless::connect_vision(cfg, security, command, first).await?;
                Ok(Upstream::Vision(Box::new(stream)))
            }
            (OutboundKind::Vless(_), _, Some(mux)) => Ok(Upstream::Mux(
                mux.open_stream(target.destination(), first).await?,
            )),
            (OutboundKind::Vless(cfg), Some(security), None) => {
                let command = Command::Tcp(target.destination());
                let stream = vless::connect(cfg, security, command, first).await?;
                Ok(Upstream::Vless(stream))
            }
            _ => Err(OutboundError::Blocked(self.tag.clone())),
        }
    }

    /// Opens a UDP flow to `target`: a connected socket, VLESS command 2, or a UDP
    /// sub-stream of the Mux.Cool pool (always, with Vision: command 2 never goes
    /// with that flow).
    pub async fn open_packets(&self, target: &Target) -> Result<Packets, OutboundError> {
        match (&self.kind, &self.security, &self.mux) {
            (OutboundKind::Direct { .. }, _, _) => {
                let io = |e| OutboundError::Connect(target.clone(), e);
                let addr = *crate::transport::resolve(target)
                    .await?
                    .first()
                    .ok_or_else(|| io(std::io::Error::other("no address")))?;
                let socket = udp_socket(&addr).await.map_err(io)?;
                socket.connect(addr).await.map_err(io)?;
                Ok(Packets::socket(socket))
            }
            (OutboundKind::Vless(cfg), _, _)
                if cfg.flow == crate::config::Flow::Vision && target.port == 443 =>
            {
                // Xray's rule, with its words (QUIC is left to fall back to TCP).
                Err(OutboundError::Connect(
                    target.clone(),
                    std::io::Error::other("XTLS rejected UDP/443 traffic"),
                ))
            }
            (OutboundKind::Vless(_), _, Some(mux)) => {
                let (tx, rx) = mux.open_packets(target.destination()).await?;
                Ok(Packets {
                    tx: PacketTx::Mux(tx),
                    rx: PacketRx::Mux(rx),
                })
            }
            (OutboundKind::Vless(cfg), Some(security), None) => {
                let command = Command::Udp(target.destination());
                Ok(Packets::vless(
                    vless::connect(cfg, security, command, &[]).await?,
                ))
            }
            _ => Err(OutboundError::Blocked(self.tag.clone())),
        }
    }
}

/// The outbounds of one configuration, by tag; the first is the default.
#[derive(Debug, Clone)]
pub struct Outbounds(Vec<Outbound>);

impl Outbounds {
    /// Builds every outbound's layers; a configuration one of them cannot use (a
    /// server name that is not one) fails here, not at the first dial.
    pub fn new(configs: &[OutboundConfig]) -> Result<Self, SecurityError> {
        let built: Result<Vec<_>, _> = configs.iter().map(Outbound::new).collect();
        Ok(Self(built?))
    }

    /// The outbound tagged `tag`.
    pub fn get(&self, tag: &str) -> Option<&Outbound> {
        self.0.iter().find(|o| &*o.tag == tag)
    }

    /// The outbound named by the route stage, or the first one when none was chosen.
    /// A tag that does not exist closes the session (as Xray does), not the default.
    pub fn pick(&self, tag: Option<&str>) -> Result<&Outbound, OutboundError> {
        match tag {
            Some(tag) => self
                .get(tag)
                .ok_or_else(|| OutboundError::Unknown(tag.into())),
            None => self
                .0
                .first()
                .ok_or_else(|| OutboundError::Unknown("(none configured)".into())),
        }
    }
}
