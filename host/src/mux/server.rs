//! The server end of a tunnel: one reader loop that demultiplexes frames to
//! sub-streams (`tunnel`), one writer task, and one session per sub-stream, started
//! through [`SubSessions`] so this module never names what serves them.
//!
//! A malformed frame ends the tunnel and every sub-stream in it, with one log line.

use std::future::Future;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;

use super::tunnel::{Delivery, MuxStream, Packet, PacketWriter, Tunnel, next_frame, write_frames};
use crate::framed::FrameError;
use crate::proto::Destination;
use crate::proto::mux::{Frame, MuxError, MuxNetwork, Status};
use crate::session::{Network, Snapshot, Target};

/// Sub-streams open at once in one tunnel (Xray's client opens at most 128 ever).
pub const MAX_STREAMS: usize = 1024;
/// What serves the sub-streams of a tunnel (the dispatcher).
pub trait SubSessions: Clone + Send + Sync + 'static {
    /// Serves a TCP sub-stream to its end.
    fn serve_tcp(&self, snapshot: Snapshot, stream: MuxStream) -> impl Future<Output = ()> + Send;
    /// Serves a UDP sub-stream (XUDP when it has a GlobalID) to its end.
    fn serve_udp(&self, snapshot: Snapshot, packets: SubPackets)
    -> impl Future<Output = ()> + Send;
}

/// A UDP sub-stream as its session sees it: datagrams from the client (each with the
/// destination its frame named, if any; without one they go to the session's target)
/// and a way to send replies tagged with their source, as XUDP carries them.
pub struct SubPackets {
    pub uplink: tokio::sync::mpsc::Receiver<Packet>,
    pub downlink: PacketWriter,
    /// The XUDP GlobalID (none: all zeros, or not sent).
    pub global_id: Option<[u8; 8]>,
}

/// Serves a Mux.Cool tunnel whose first bytes are in `held`, until the client closes
/// it and its sessions end. `prefix` (the VLESS response header) goes out with the first
/// downlink frame. With `udp_only` (a Vision user's tunnel, as Xray rules), a TCP
/// sub-stream ends the whole tunnel.
pub async fn serve<D, S>(
    sessions: D,
    tunnel_snapshot: Snapshot,
    stream: S,
    held: BytesMut,
    prefix: &'static [u8],
    idle: std::time::Duration,
    udp_only: bool,
) where
    D: SubSessions,
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let tunnel = Tunnel::new();
    let writer = tokio::spawn(write_frames(tunnel.clone(), writer, prefix));
    let mut server = Server {
        sessions,
        snapshot: tunnel_snapshot,
        tunnel: tunnel.clone(),
        tasks: JoinSet::new(),
        udp_only,
    };
    let mut buf = held;
    match server.run(&mut reader, &mut buf, idle).await {
        Err(e @ FrameError::Invalid(_)) | Err(e @ FrameError::TooLong(_)) => {
            tracing::warn!(streams = tunnel.open_streams(), "mux tunnel closed: {e}");
            server.tasks.abort_all();
        }
        Err(FrameError::Closed) => {}
        Err(e) => tracing::debug!(streams = tunnel.open_streams(), "mux tunnel ended: {e}"),
        Ok(()) => {}
    }
    // Every sub-stream reads its end; sessions finish their downlink, then the
    // writer sends what is left and closes.
    tunnel.end_reads();
    while server.tasks.join_next().await.is_some() {}
    tunnel.close();
    let _ = writer.await;
}

struct Server<D> {
    sessions: D,
    snapshot: Snapshot,
    tunnel: Arc<Tunnel>,
    tasks: JoinSet<()>,
    udp_only: bool,
}

impl<D: SubSessions> Server<D> {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        buf: &mut BytesMut,
        idle: std::time::Duration,
    ) -> Result<(), FrameError<MuxError>> {
        loop {
            let deadline = tokio::time::Instant::now() + idle;
            match next_frame(reader, buf, Some(deadline)).await {
                Ok((_, Status::New { network, .. }, _))
                    if self.udp_only && network == MuxNetwork::Tcp =>
                {
                    return Err(FrameError::Invalid(MuxError::UnexpectedNetwork("tcp")));
                }
                Ok((id, status, data)) => self.handle(id, status, data).await,
                // Quiet sub-streams keep the tunnel; a tunnel with none is idle.
                Err(FrameError::TimedOut) if self.tunnel.open_streams() > 0 => {}
                Err(FrameError::Closed) => return Ok(()),
                Err(e) => return Err(e),
            }
            // Reap finished sessions so the set does not grow with the tunnel's age.
            while self.tasks.try_join_next().is_some() {}
        }
    }

    async fn handle(&mut self, id: u16, status: Status, data: Option<Bytes>) {
        match status {
            Status::New {
                network,
                target,
                global_id,
            } => {
                if !self.open(id, network, target, global_id.filter(|g| *g != [0; 8])) {
                    return;
                }
                if let Some(data) = data {
                    self.tunnel.deliver(id, None, data).await;
                }
            }
            Status::Keep { udp_addr } => {
                if let Some(data) = data
                    && self.tunnel.deliver(id, udp_addr, data).await == Delivery::Unknown
                {
                    self.tunnel.send_now(&Frame::end(id, false));
                }
            }
            Status::End { .. } => self.tunnel.remove(id),
            Status::KeepAlive => {}
        }
    }

    /// Starts the sub-stream `id` and its session; false if it was refused.
    fn open(
        &mut self,
        id: u16,
        network: MuxNetwork,
        target: Destination,
        global_id: Option<[u8; 8]>,
    ) -> bool {
        if self.tunnel.open_streams() >= MAX_STREAMS {
            tracing::warn!(id, "mux: more than {MAX_STREAMS} sub-streams; refused");
            self.tunnel.send_now(&Frame::end(id, true));
            return false;
        }
        let sessions = self.sessions.clone();
        // Its own session: the tunnel's facts, none of its (or a sibling's) attributes.
        match network {
            MuxNetwork::Udp => {
                let snapshot = self.snapshot.child(Network::Udp, Target::from(&target));
                let (downlink, uplink) = self.tunnel.open_packets(id);
                let packets = SubPackets {
                    uplink,
                    downlink,
                    global_id,
                };
                self.tasks
                    .spawn(async move { sessions.serve_udp(snapshot, packets).await });
            }
            MuxNetwork::Tcp => {
                let snapshot = self.snapshot.child(Network::Tcp, Target::from(&target));
                let stream = self.tunnel.open_stream(id);
                self.tasks
                    .spawn(async move { sessions.serve_tcp(snapshot, stream).await });
            }
        }
        true
    }
}
