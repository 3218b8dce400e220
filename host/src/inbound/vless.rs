//! The VLESS inbound: the stack of layers of one accepted connection, composed from
//! its config (spec sections 1.3 and 3):
//!
//! ```text
//! transport (TCP) -> security (TLS: SNI, ALPN) -> vless (user, fallback decision, header)
//!   -> command: TCP stream | UDP packets | Mux.Cool, each into the dispatcher
//!   or a fallback, which receives every byte read so far
//! ```
//!
//! The response header `00 00` goes out glued to the first downlink bytes, as Xray
//! sends it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::net::TcpStream;

use super::fallback;
use crate::config::{Fallback, Timeouts, Transport};
use crate::dispatch::{Dispatcher, FramedPackets, Reply, SessionLog};
use crate::proto::vless::{Command, RequestHeader};
use crate::security::{Secured, SecurityError, ServerSecurity};
use crate::session::{Network, Outcome, SnapshotFields, Target};
use crate::vless::server::{Handshake, HandshakeError, RESPONSE, handshake};
use crate::vless::users::Users;

/// One VLESS inbound, shared by its connections.
pub struct VlessServer {
    pub tag: Arc<str>,
    pub transport: Transport,
    pub security: ServerSecurity,
    pub users: Users,
    pub fallbacks: Vec<Fallback>,
    pub timeouts: Timeouts,
    /// Connections served at once (the accept loop's permits).
    pub max_connections: usize,
    pub dispatcher: Dispatcher,
}

#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error("{0}")]
    Security(#[from] SecurityError),
    #[error("handshake timed out")]
    Timeout,
    #[error("{0}")]
    Vless(#[from] HandshakeError),
    #[error("unsupported flow {0:?}")]
    Flow(String),
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
}

impl VlessServer {
    /// Serves one accepted TCP connection to its end.
    pub async fn serve(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        let started = Instant::now();
        let local = tcp.local_addr().unwrap_or(peer);
        let stream = crate::transport::accepted(self.transport, tcp);
        let deadline = tokio::time::Instant::now() + self.timeouts.handshake;
        let mut secured =
            match tokio::time::timeout_at(deadline, self.security.accept(stream)).await {
                Ok(Ok(secured)) => secured,
                Ok(Err(e)) => return self.rejected(peer, started, e.into()),
                Err(_) => return self.rejected(peer, started, Rejected::Timeout),
            };
        let fallbacks = !self.fallbacks.is_empty();
        let shook = Box::pin(handshake(&mut secured, &self.users, fallbacks));
        match tokio::time::timeout_at(deadline, shook).await {
            Err(_) => self.rejected(peer, started, Rejected::Timeout),
            Ok(Err(e)) => self.rejected(peer, started, e.into()),
            Ok(Ok(Handshake::Fallback(first))) => {
                Box::pin(self.fallback(secured, first, peer, local, started)).await
            }
            Ok(Ok(Handshake::Session(header, user, payload))) => {
                // A user removed by a reload ends its sessions (and Mux.Cool tunnels).
                tokio::select! {
                    () = self.command(secured, header, user.email.clone(), payload, peer) => {}
                    () = user.revoked() => {
                        tracing::info!(user = %user.email, "user removed by a reload; closing its session");
                    }
                }
            }
        }
    }

    /// The command layer: the request's command decides what the stream carries.
    async fn command(
        &self,
        mut secured: Secured,
        header: RequestHeader,
        user: Arc<str>,
        payload: BytesMut,
        peer: SocketAddr,
    ) {
        if !header.addons.flow.is_empty() {
            let why = Rejected::Flow(header.addons.flow.clone());
            return self.rejected(peer, Instant::now(), why);
        }
        let (network, target) = match &header.command {
            Command::Tcp(d) => (Network::Tcp, Target::from(d)),
            Command::Udp(d) => (Network::Udp, Target::from(d)),
            Command::Mux => (Network::Tcp, Target::new("v1.mux.cool", 0)),
            Command::Reverse => {
                return self.rejected(peer, Instant::now(), Rejected::Unsupported("reverse proxy"));
            }
        };
        let mut fields = SnapshotFields::new(&self.tag, peer, network, target);
        fields.user = Some(user);
        fields.sni = secured.sni();
        fields.alpn = secured.alpn();
        let snapshot = fields.freeze();
        // The rare shapes are boxed: the task of a plain TCP session, the common case,
        // keeps only the size it needs.
        match (&header.command, network) {
            (Command::Mux, _) => {
                // A batch of frames goes out in one write: the layer must take it whole.
                secured.take_writes_of(crate::mux::TLS_BUFFER);
                let idle = self.timeouts.idle;
                let dispatcher = self.dispatcher.clone();
                Box::pin(crate::mux::serve(
                    dispatcher, snapshot, secured, payload, &RESPONSE, idle,
                ))
                .await
            }
            (_, Network::Tcp) => {
                let reply = Reply::prefix(&RESPONSE);
                self.dispatcher
                    .tcp(snapshot, secured, payload, &reply)
                    .await
            }
            (_, Network::Udp) => {
                let packets = FramedPackets::new(secured, payload, &RESPONSE);
                Box::pin(self.dispatcher.udp(snapshot, packets)).await
            }
        }
    }

    async fn fallback(
        &self,
        secured: Secured,
        first: BytesMut,
        peer: SocketAddr,
        local: SocketAddr,
        started: Instant,
    ) {
        let (sni, alpn) = (secured.sni(), secured.alpn());
        let chosen = fallback::select(
            &self.fallbacks,
            sni.as_deref().unwrap_or(""),
            alpn.as_deref().unwrap_or(""),
            &first,
        );
        let Some(chosen) = chosen else {
            return self.rejected(peer, started, HandshakeError::UnknownUser.into());
        };
        let target = Target::new(format!("{:?}", chosen.dest), 0);
        let snapshot = SnapshotFields::new(&self.tag, peer, Network::Tcp, target).freeze();
        let mut log = SessionLog::start_at(&snapshot, started);
        match fallback::serve(chosen, secured, first, peer, local, &self.timeouts).await {
            Ok(traffic) => {
                log.traffic(traffic);
                log.end(Outcome::Fallback);
            }
            Err(e) => tracing::warn!(%peer, "fallback failed: {e}"),
        }
    }

    fn rejected(&self, peer: SocketAddr, started: Instant, why: Rejected) {
        SessionLog::rejected(&self.tag, peer, started, &why);
    }
}
