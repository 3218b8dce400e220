//! The VLESS inbound over TLS (spec sections 1.3 and 3).
//!
//! accept → TLS (record SNI and ALPN) → one first read → fallback decision (fewer than
//! 18 bytes, wrong version, unknown user) → header → session. Once the user is valid,
//! later errors close the connection and never fall back. The response header `00 00`
//! goes out glued to the first downlink bytes, as Xray sends it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::fallback;
use super::users::{UserEntry, Users};
use crate::bufpool::Coalesced;
use crate::config::{Fallback, Timeouts, VlessInbound};
use crate::dispatch::{Dispatcher, FramedPackets, Reply, SessionLog};
use crate::framed::{FrameError, Limits, read_frame};
use crate::proto::vless::{Command, RequestHeader, VlessError};
use crate::session::{Network, Outcome, SnapshotFields, Target};

/// Xray's first read buffer (`buf.Size`).
const FIRST_READ: usize = 8192;
/// A VLESS request header is at most 1+16+1+255+1+2+1+1+255 bytes.
const MAX_HEADER: usize = 600;
/// The response header: version 0, no addons.
pub const RESPONSE: [u8; 2] = [0, 0];

/// One VLESS inbound, shared by its connections.
pub struct VlessServer {
    pub tag: Arc<str>,
    pub acceptor: TlsAcceptor,
    pub users: Users,
    pub fallbacks: Vec<Fallback>,
    pub timeouts: Timeouts,
    /// Connections served at once (the accept loop's permits).
    pub max_connections: usize,
    pub dispatcher: Dispatcher,
}

#[derive(Debug, thiserror::Error)]
enum Rejected {
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("handshake timed out")]
    Timeout,
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Header(#[from] VlessError),
    #[error("request header longer than {0} bytes")]
    TooLong(usize),
    #[error("unknown user")]
    UnknownUser,
    #[error("connection closed before a complete header")]
    Truncated,
    #[error("unsupported flow {0:?}")]
    Flow(String),
    #[error("{0} is not supported yet")]
    Unsupported(&'static str),
}

/// What the first bytes say.
enum First {
    /// A valid user; the header may still be incomplete.
    User(Arc<UserEntry>),
    /// Not VLESS, or an unknown user.
    Invalid(Rejected),
    /// Need more bytes to tell (only without fallbacks).
    More,
}

impl VlessServer {
    /// Serves one accepted TCP connection to its end.
    pub async fn serve(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr) {
        let started = Instant::now();
        let local = tcp.local_addr().unwrap_or(peer);
        let _ = tcp.set_nodelay(true);
        let deadline = tokio::time::Instant::now() + self.timeouts.handshake;
        // The handshake's futures are boxed: they hold a whole TLS state while they run,
        // and inline they would size the task of every connection for its whole life.
        let accept = Box::pin(self.acceptor.accept(Coalesced::new(tcp)));
        let tls = match tokio::time::timeout_at(deadline, accept).await {
            Ok(Ok(tls)) => Box::new(tls),
            Ok(Err(e)) => return self.rejected(peer, started, Rejected::Tls(e)),
            Err(_) => return self.rejected(peer, started, Rejected::Timeout),
        };
        match tokio::time::timeout_at(deadline, Box::pin(self.handshake(tls))).await {
            Err(_) => self.rejected(peer, started, Rejected::Timeout),
            Ok(Err(e)) => self.rejected(peer, started, e),
            Ok(Ok(Handshake::Fallback(tls, first))) => {
                Box::pin(self.fallback(tls, first, peer, local, started)).await
            }
            Ok(Ok(Handshake::Session(tls, header, user, payload))) => {
                // A user removed by a reload ends its sessions (and Mux.Cool tunnels).
                tokio::select! {
                    () = self.session(tls, header, user.email.clone(), payload, peer) => {}
                    () = user.revoked() => {
                        tracing::info!(user = %user.email, "user removed by a reload; closing its session");
                    }
                }
            }
        }
    }

    async fn handshake(&self, mut tls: Tls) -> Result<Handshake, Rejected> {
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        tls.read_buf(&mut buf).await?;
        let user = loop {
            match self.check_first(&buf) {
                First::User(user) => break user,
                First::Invalid(_) if !self.fallbacks.is_empty() => {
                    return Ok(Handshake::Fallback(tls, buf));
                }
                First::Invalid(e) => return Err(e),
                First::More => {
                    // Wait for a whole user id, without taking it from the buffer.
                    let peek =
                        |b: &[u8]| RequestHeader::peek_user(b).map(|id| id.map(|id| (id, 0)));
                    read_frame(&mut tls, &mut buf, header_limits(), peek).await?;
                }
            }
        };
        let header = read_frame(&mut tls, &mut buf, header_limits(), RequestHeader::decode).await?;
        Ok(Handshake::Session(tls, header, user, buf))
    }

    /// The fallback decision on the first read, as Xray makes it.
    fn check_first(&self, buf: &[u8]) -> First {
        if !self.fallbacks.is_empty() && buf.len() < 18 {
            return First::Invalid(Rejected::Truncated);
        }
        match RequestHeader::peek_user(buf) {
            Ok(None) => First::More,
            Ok(Some(id)) => match self.users.find(&id) {
                Some(user) => First::User(user),
                None => First::Invalid(Rejected::UnknownUser),
            },
            Err(e) => First::Invalid(Rejected::Header(e)),
        }
    }

    async fn session(
        &self,
        tls: Tls,
        header: RequestHeader,
        user: Arc<str>,
        payload: BytesMut,
        peer: SocketAddr,
    ) {
        let (sni, alpn) = tls_facts(&tls);
        let (network, dest) = match &header.command {
            Command::Tcp(d) => (Network::Tcp, d),
            Command::Udp(d) => (Network::Udp, d),
            Command::Mux if header.addons.flow.is_empty() => {
                let mut fields = SnapshotFields::new(
                    &self.tag,
                    peer,
                    Network::Tcp,
                    Target::new("v1.mux.cool", 0),
                );
                fields.user = Some(user);
                fields.sni = sni;
                fields.alpn = alpn;
                let mut tls = tls;
                // The tunnel writer sends a batch of frames in one write: rustls must
                // take it whole, or it splits it into two syscalls.
                tls.get_mut()
                    .1
                    .set_buffer_limit(Some(crate::mux::TLS_BUFFER));
                // Boxed, as the other rare shapes below: the task of a plain TCP
                // session, the common case, keeps only the size it needs.
                return Box::pin(crate::mux::serve(
                    self.dispatcher.clone(),
                    fields.freeze(),
                    tls,
                    payload,
                    &RESPONSE,
                    self.timeouts.idle,
                ))
                .await;
            }
            Command::Mux => {
                return self.rejected(
                    peer,
                    Instant::now(),
                    Rejected::Flow(header.addons.flow.clone()),
                );
            }
            Command::Reverse => {
                return self.rejected(peer, Instant::now(), Rejected::Unsupported("reverse proxy"));
            }
        };
        if !header.addons.flow.is_empty() {
            return self.rejected(
                peer,
                Instant::now(),
                Rejected::Flow(header.addons.flow.clone()),
            );
        }
        let mut fields = SnapshotFields::new(&self.tag, peer, network, Target::from(dest));
        fields.user = Some(user);
        fields.sni = sni;
        fields.alpn = alpn;
        let snapshot = fields.freeze();
        match network {
            Network::Tcp => {
                let reply = Reply::prefix(&RESPONSE);
                self.dispatcher.tcp(snapshot, tls, payload, &reply).await
            }
            Network::Udp => {
                let packets = FramedPackets::new(tls, payload, &RESPONSE);
                Box::pin(self.dispatcher.udp(snapshot, packets)).await
            }
        }
    }

    async fn fallback(
        &self,
        tls: Tls,
        first: BytesMut,
        peer: SocketAddr,
        local: SocketAddr,
        started: Instant,
    ) {
        let (sni, alpn) = tls_facts(&tls);
        let chosen = fallback::select(
            &self.fallbacks,
            sni.as_deref().unwrap_or(""),
            alpn.as_deref().unwrap_or(""),
            &first,
        );
        let Some(chosen) = chosen else {
            return self.rejected(peer, started, Rejected::UnknownUser);
        };
        let target = Target::new(format!("{:?}", chosen.dest), 0);
        let snapshot = SnapshotFields::new(&self.tag, peer, Network::Tcp, target).freeze();
        let mut log = SessionLog::start_at(&snapshot, started);
        match fallback::serve(chosen, tls, first, peer, local, &self.timeouts).await {
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

/// The TLS stream of a connection, boxed once after the handshake: it is over a
/// kilobyte, and every future it passes through would otherwise hold its own copy of
/// that space for the connection's whole life.
type Tls = Box<TlsStream<Coalesced<TcpStream>>>;

enum Handshake {
    Fallback(Tls, BytesMut),
    Session(Tls, RequestHeader, Arc<UserEntry>, BytesMut),
}

/// The request header is read within the first read's size (the handshake's deadline
/// bounds the time).
fn header_limits() -> Limits {
    Limits::new(MAX_HEADER.max(FIRST_READ)).reading(FIRST_READ)
}

impl From<FrameError<VlessError>> for Rejected {
    fn from(e: FrameError<VlessError>) -> Self {
        match e {
            FrameError::Invalid(e) => Rejected::Header(e),
            FrameError::TooLong(n) => Rejected::TooLong(n),
            FrameError::Io(e) => Rejected::Io(e),
            FrameError::Closed | FrameError::Truncated(_) => Rejected::Truncated,
            FrameError::TimedOut => Rejected::Timeout,
        }
    }
}

fn tls_facts(tls: &TlsStream<Coalesced<TcpStream>>) -> (Option<Arc<str>>, Option<Arc<str>>) {
    let conn = tls.get_ref().1;
    let sni = conn
        .server_name()
        .map(|s| Arc::from(s.to_ascii_lowercase()));
    let alpn = conn
        .alpn_protocol()
        .and_then(|a| std::str::from_utf8(a).ok())
        .map(Arc::from);
    (sni, alpn)
}

/// Builds the TLS acceptor of a VLESS inbound.
pub fn acceptor(config: &VlessInbound) -> anyhow::Result<TlsAcceptor> {
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(config.tls.certs.clone(), config.tls.key.clone_key())?;
    tls.alpn_protocols = config
        .tls
        .alpn
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    // One resumption ticket per handshake, as Go's servers send (rustls sends two):
    // each costs a session-cache insert, an encrypted record and a write.
    tls.send_tls13_tickets = 1;
    Ok(TlsAcceptor::from(Arc::new(tls)))
}
