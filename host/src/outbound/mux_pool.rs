//! The Mux.Cool client: many sessions over few VLESS connections (command 3), as
//! Xray's client does it (spec 2.2, 2.3). The framing, queues and bounds are the
//! server's (`mux::tunnel`); this is the pool.
//!
//! - A tunnel carries at most `concurrency` open sub-streams; when every tunnel is full
//!   a new one is dialed.
//! - Session ids run 1..=128 and never wrap: after 128 allocations a tunnel takes no
//!   new sessions and closes when its last one ends (Xray's `MaxConnection`).
//! - A tunnel with no sub-stream and no new allocation for `idle_timeout` is closed.
//! - A broken tunnel (read error, malformed frame, server gone) ends only its own
//!   sub-streams; the next session dials a fresh one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::ReadHalf;
use tokio::sync::mpsc;

use super::OutboundError;
use super::Upstream;
use super::vless;
use crate::config::VlessOutbound;
use crate::framed::FrameError;
use crate::mux::{MuxNetwork, MuxStream, Packet, PacketWriter, Tunnel, next_frame, write_frames};
use crate::proto::Destination;
use crate::proto::mux::{Frame, Status};
use crate::proto::vless::Command;
use crate::security::ClientSecurity;

/// Sessions ever allocated on one tunnel (Xray's `MaxConnection`).
pub const MAX_SESSIONS: u16 = 128;

/// The Mux.Cool pool of one vless outbound.
pub struct MuxClient {
    server: VlessOutbound,
    security: ClientSecurity,
    tunnels: tokio::sync::Mutex<Vec<Arc<ClientTunnel>>>,
    /// Tunnels dialed so far.
    dialed: AtomicU64,
}

/// A tunnel and the session ids it has handed out.
struct ClientTunnel {
    tunnel: Arc<Tunnel>,
    allocated: Mutex<u16>,
}

impl MuxClient {
    pub fn new(server: VlessOutbound, security: ClientSecurity) -> Self {
        Self {
            server,
            security,
            tunnels: tokio::sync::Mutex::new(Vec::new()),
            dialed: AtomicU64::new(0),
        }
    }

    /// Opens a TCP sub-stream to `target`; `first` rides in the New frame.
    pub async fn open_stream(
        &self,
        target: Destination,
        first: &[u8],
    ) -> Result<MuxStream, OutboundError> {
        let (tunnel, id) = self.allocate().await?;
        let stream = tunnel.open_stream(id);
        let data = (!first.is_empty()).then_some(first);
        let new = Frame::new_session(id, MuxNetwork::Tcp, target, data);
        tunnel.send(&new).await.map_err(|e| self.broken(e))?;
        Ok(stream)
    }

    /// Opens a UDP sub-stream to `target` (a New frame without data, as Xray's client
    /// sends when no packet is ready).
    pub async fn open_packets(
        &self,
        target: Destination,
    ) -> Result<(PacketWriter, mpsc::Receiver<Packet>), OutboundError> {
        let (tunnel, id) = self.allocate().await?;
        let flow = tunnel.open_packets(id);
        let new = Frame::new_session(id, MuxNetwork::Udp, target, None);
        tunnel.send(&new).await.map_err(|e| self.broken(e))?;
        Ok(flow)
    }

    fn broken(&self, e: std::io::Error) -> OutboundError {
        OutboundError::Connect(self.server.target(), e)
    }

    /// A session id on a tunnel with room, dialing a new tunnel when none has any.
    async fn allocate(&self) -> Result<(Arc<Tunnel>, u16), OutboundError> {
        let mut tunnels = self.tunnels.lock().await;
        tunnels.retain(|t| t.takes_sessions());
        let concurrency = usize::from(self.server.mux.concurrency);
        for tunnel in tunnels.iter() {
            if let Some(id) = tunnel.try_allocate(concurrency) {
                return Ok((tunnel.tunnel.clone(), id));
            }
        }
        let tunnel = self.dial().await?;
        tunnels.push(tunnel.clone());
        let id = tunnel
            .try_allocate(concurrency)
            .ok_or_else(|| self.broken(std::io::Error::other("new mux tunnel refused")))?;
        Ok((tunnel.tunnel.clone(), id))
    }

    async fn dial(&self) -> Result<Arc<ClientTunnel>, OutboundError> {
        let stream = if self.server.flow.is_vision() {
            // A Vision tunnel (for UDP only: Xray's servers refuse TCP in it).
            Upstream::Vision(Box::new(
                vless::connect_vision(&self.server, &self.security, Command::Mux, &[]).await?,
            ))
        } else {
            let mut s = vless::connect(&self.server, &self.security, Command::Mux, &[]).await?;
            // A batch of frames goes out in one write: the layer must take it whole.
            s.get_mut().take_writes_of(crate::mux::TLS_BUFFER);
            Upstream::Vless(s)
        };
        self.dialed.fetch_add(1, Ordering::Relaxed);
        let (reader, writer) = tokio::io::split(stream);
        let tunnel = Arc::new(ClientTunnel {
            tunnel: Tunnel::new(),
            allocated: Mutex::new(0),
        });
        tokio::spawn(write_frames(tunnel.tunnel.clone(), writer, &[]));
        tokio::spawn(read_frames(
            tunnel.clone(),
            reader,
            self.server.mux.idle_timeout,
        ));
        tracing::debug!(server = %self.server.target(), "mux tunnel opened");
        Ok(tunnel)
    }

    /// Tunnels dialed since the start (for tests and a client's status).
    pub fn dialed(&self) -> u64 {
        self.dialed.load(Ordering::Relaxed)
    }

    /// Tunnels open now.
    pub async fn open_tunnels(&self) -> usize {
        let mut tunnels = self.tunnels.lock().await;
        tunnels.retain(|t| !t.tunnel.is_closed());
        tunnels.len()
    }
}

impl ClientTunnel {
    fn allocated(&self) -> std::sync::MutexGuard<'_, u16> {
        crate::util::lock(&self.allocated)
    }

    fn takes_sessions(&self) -> bool {
        !self.tunnel.is_closed() && *self.allocated() < MAX_SESSIONS
    }

    /// The next id, if this tunnel has room.
    fn try_allocate(&self, concurrency: usize) -> Option<u16> {
        let mut allocated = self.allocated();
        if self.tunnel.is_closed()
            || *allocated >= MAX_SESSIONS
            || self.tunnel.open_streams() >= concurrency
        {
            return None;
        }
        *allocated += 1;
        if *allocated >= MAX_SESSIONS {
            self.tunnel.close_when_empty();
        }
        Some(*allocated)
    }

    /// True when nothing was open or allocated since the previous check.
    fn idle_since(&self, seen: &mut u16) -> bool {
        let allocated = *self.allocated();
        let idle = self.tunnel.open_streams() == 0 && allocated == *seen;
        *seen = allocated;
        idle
    }
}

/// Reads the tunnel: Keep data to its sub-stream, End closes one. Ends (closing the
/// tunnel) on EOF, a read error, a malformed frame or idleness.
async fn read_frames(tunnel: Arc<ClientTunnel>, mut reader: ReadHalf<Upstream>, idle: Duration) {
    let mut buf = BytesMut::new();
    let mut seen = 0;
    let why = loop {
        let deadline = tokio::time::Instant::now() + idle;
        match next_frame(&mut reader, &mut buf, Some(deadline)).await {
            Ok((id, status, data)) => handle(&tunnel.tunnel, id, status, data).await,
            Err(FrameError::TimedOut) if tunnel.idle_since(&mut seen) => break "idle".to_string(),
            Err(FrameError::TimedOut) => {}
            Err(FrameError::Closed) => break "closed by the server".to_string(),
            Err(e) => break e.to_string(),
        }
    };
    tracing::debug!("mux tunnel closed: {why}");
    tunnel.tunnel.close();
}

async fn handle(tunnel: &Tunnel, id: u16, status: Status, data: Option<bytes::Bytes>) {
    match status {
        Status::Keep { udp_addr } => {
            if let Some(data) = data {
                tunnel.deliver(id, udp_addr, data).await;
            }
        }
        Status::End { .. } => tunnel.remove(id),
        // A server does not open sessions toward a client (no reverse proxy here).
        Status::New { .. } => tunnel.send_now(&Frame::end(id, true)),
        Status::KeepAlive => {}
    }
}
