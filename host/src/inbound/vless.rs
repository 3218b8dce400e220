//! The VLESS inbound: the stack of layers of one accepted connection, composed from
//! its config (spec sections 1.3 and 3):
//!
//! ```text
//! transport (TCP) -> security (TLS: SNI, ALPN) -> vless (user, fallback decision, header)
//!   -> [Vision, for a user with that flow] -> command: TCP stream | UDP packets |
//!   Mux.Cool, each into the dispatcher
//!   or a fallback, which receives every byte read so far
//! ```
//!
//! The response header `00 00` goes out glued to the first downlink bytes, as Xray
//! sends it (under Vision, glued to the first padded frame). An inbound with a Vision
//! user reads one TLS record at a time until the request says whether it is Vision
//! (`vless::vision`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use bytes::BytesMut;
use tokio::net::TcpStream;

use super::fallback;
use crate::config::User;
use crate::config::{Fallback, Timeouts, Transport};
use crate::dispatch::{Dispatcher, FramedPackets, Rejection, Reply, SessionLog};
use crate::proto::vless::{Command, RequestHeader};
use crate::security::{Peel, Secured, SecurityError, ServerSecurity};
use crate::session::{Network, Outcome, SnapshotFields, Target};
use crate::vless::VisionStream;
use crate::vless::flow::{self, FlowError};
use crate::vless::server::{Handshake, HandshakeError, RESPONSE, handshake};
use crate::vless::users::{UserEntry, Users, UsersError};

/// One VLESS inbound, shared by its connections.
pub struct VlessServer {
    pub tag: Arc<str>,
    pub transport: Transport,
    pub security: ServerSecurity,
    /// Swapped whole by the management API (readers never wait).
    pub users: ArcSwap<Users>,
    /// Serialises the API's changes to `users`.
    pub users_write: std::sync::Mutex<()>,
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
    #[error("{0}")]
    Flow(#[from] FlowError),
    #[error("{0}")]
    Vision(std::io::Error),
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
}

impl Rejected {
    fn reason(&self) -> &'static str {
        match self {
            Rejected::Security(_) => "tls",
            Rejected::Timeout => "timeout",
            Rejected::Vless(e) => e.reason(),
            Rejected::Flow(_) => "flow",
            Rejected::Vision(_) => "vision",
            Rejected::Unsupported(_) => "unsupported",
        }
    }
}

impl VlessServer {
    /// Adds a user for the next handshakes (the management API).
    pub fn add_user(&self, user: &User) -> Result<(), UsersError> {
        let _writer = crate::util::lock(&self.users_write);
        let next = self.users.load().with(user)?;
        self.users.store(Arc::new(next));
        Ok(())
    }

    /// Removes the user with `email` and ends its sessions (the management API).
    pub fn remove_user(&self, email: &str) -> Result<(), UsersError> {
        let _writer = crate::util::lock(&self.users_write);
        let (next, gone) = self.users.load().without(email)?;
        self.users.store(Arc::new(next));
        Users::revoke(&gone);
        Ok(())
    }

    /// Serves one accepted TCP connection to its end.
    pub async fn serve(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        let started = Instant::now();
        let local = tcp.local_addr().unwrap_or(peer);
        let mut stream = crate::transport::accepted(self.transport, tcp);
        let users = self.users.load_full();
        if users.any_vision() {
            stream = stream.one_record_at_a_time();
        }
        let deadline = tokio::time::Instant::now() + self.timeouts.handshake;
        let mut secured =
            match tokio::time::timeout_at(deadline, self.security.accept(stream)).await {
                Ok(Ok(secured)) => secured,
                Ok(Err(e)) => return self.rejected(peer, started, e.into()),
                Err(_) => return self.rejected(peer, started, Rejected::Timeout),
            };
        let fallbacks = !self.fallbacks.is_empty();
        let shook = Box::pin(handshake(&mut secured, &users, fallbacks));
        let shook = tokio::time::timeout_at(deadline, shook).await;
        // The session holds its user's entry, not the whole list of the moment.
        drop(users);
        match shook {
            Err(_) => self.rejected(peer, started, Rejected::Timeout),
            Ok(Err(e)) => self.rejected(peer, started, e.into()),
            Ok(Ok(Handshake::Fallback(first))) => {
                Box::pin(self.fallback(secured, first, peer, local, started)).await
            }
            Ok(Ok(Handshake::Session(header, user, payload))) => {
                // A user removed by a reload ends its sessions (and Mux.Cool tunnels).
                tokio::select! {
                    () = self.command(secured, header, &user, payload, peer) => {}
                    () = user.revoked() => {
                        tracing::info!(user = %user.email, "user removed; closing its session");
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
        user: &UserEntry,
        mut payload: BytesMut,
        peer: SocketAddr,
    ) {
        let vision = flow::decide(
            &header.addons.flow,
            user.flow.is_vision(),
            &user.short_id,
            &header.command,
            &payload,
            secured.outer_version(),
        );
        let vision = match vision {
            Ok(v) => v,
            Err(e) => {
                // A known user's client is misconfigured: the operator should hear of it.
                tracing::warn!(%peer, user = %user.email, "{e}");
                return self.rejected(peer, Instant::now(), e.into());
            }
        };
        if !vision {
            secured.raw().ungate();
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
        fields.user = Some(user.email.clone());
        fields.sni = secured.sni();
        fields.alpn = secured.alpn();
        let snapshot = fields.freeze();
        if vision {
            secured.take_writes_of(crate::mux::TLS_BUFFER);
            let mut stream = VisionStream::server(secured, header.uuid, &RESPONSE);
            match stream.begin(&mut payload) {
                Ok(()) => Box::pin(self.vision(stream, &header.command, snapshot, payload)).await,
                Err(e) => {
                    tracing::warn!(%peer, user = %user.email, "{e}");
                    self.rejected(peer, Instant::now(), Rejected::Vision(e))
                }
            }
            return;
        }
        // The rare shapes are boxed: the task of a plain TCP session, the common case,
        // keeps only the size it needs.
        match (&header.command, network) {
            (Command::Mux, _) => {
                // A batch of frames goes out in one write: the layer must take it whole.
                secured.take_writes_of(crate::mux::TLS_BUFFER);
                let idle = self.timeouts.idle;
                let dispatcher = self.dispatcher.clone();
                Box::pin(crate::mux::serve(
                    dispatcher, snapshot, secured, payload, &RESPONSE, idle, false,
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

    /// A Vision session: TCP, or Mux.Cool that may carry UDP only (Xray's rule for a
    /// Vision user's tunnel). `first` is the unpadded payload read with the header.
    async fn vision(
        &self,
        stream: VisionStream<Secured>,
        command: &Command,
        snapshot: crate::session::Snapshot,
        first: BytesMut,
    ) {
        if matches!(command, Command::Mux) {
            let idle = self.timeouts.idle;
            let dispatcher = self.dispatcher.clone();
            crate::mux::serve(dispatcher, snapshot, stream, first, &[], idle, true).await
        } else {
            let reply = Reply::prefix(&[]);
            self.dispatcher.tcp(snapshot, stream, first, &reply).await
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
        self.dispatcher.metrics.fallback(&self.tag);
        let mut log = SessionLog::start_at(&snapshot, started, &self.dispatcher.metrics);
        match fallback::serve(chosen, secured, first, peer, local, &self.timeouts).await {
            Ok(traffic) => {
                log.traffic(traffic);
                log.end(Outcome::Fallback);
            }
            Err(e) => tracing::warn!(%peer, "fallback failed: {e}"),
        }
    }

    fn rejected(&self, peer: SocketAddr, started: Instant, why: Rejected) {
        let rejection = Rejection {
            metrics: &self.dispatcher.metrics,
            inbound: &self.tag,
            peer,
            started,
            reason: why.reason(),
        };
        SessionLog::rejected(rejection, &why);
    }
}
