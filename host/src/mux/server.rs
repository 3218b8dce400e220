//! The tunnel: one reader loop that demultiplexes frames to sub-streams, one writer
//! task that sends their frames back, and one session per sub-stream.
//!
//! Back-pressure: each sub-stream has a bounded uplink queue and a bounded pipe. When a
//! sub-stream's queue stays full for [`STALL`], that sub-stream is ended (End with the
//! error bit), not the tunnel, so a slow target cannot stall its neighbours for longer.
//! A malformed frame ends the tunnel and every sub-stream in it, with one log line.

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::substream::{self, PIPE_CAPACITY};
use super::xudp;
use crate::dispatch::{self, Context};
use crate::inbound::vless::target_of;
use crate::proto::Destination;
use crate::proto::mux::{Frame, MuxError, Network as MuxNetwork, Status};
use crate::session::{Network, Snapshot};

/// Sub-streams open at once in one tunnel (Xray's client opens at most 128 ever).
pub const MAX_STREAMS: usize = 1024;
/// How long the reader waits on one sub-stream's full queue before ending it.
pub const STALL: Duration = Duration::from_secs(2);
/// Frames queued for the tunnel writer.
const FRAME_QUEUE: usize = 64;
/// Bytes of queued frames the tunnel writer sends in one write.
const BATCH: usize = 64 * 1024;
/// Uplink chunks queued per sub-stream (each at most 64 KiB, normally 8 KiB).
const STREAM_QUEUE: usize = 8;

/// Serves a Mux.Cool tunnel whose first bytes are in `held`. `prefix` (the VLESS
/// response header) goes out with the first downlink frame.
pub async fn serve<S>(
    ctx: Context,
    tunnel: Snapshot,
    stream: S,
    held: BytesMut,
    prefix: &'static [u8],
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, writer) = tokio::io::split(stream);
    let (frames, queued) = mpsc::channel::<BytesMut>(FRAME_QUEUE);
    let writer = tokio::spawn(write_frames(writer, queued, prefix));
    let mut tunnel_state = Tunnel {
        ctx,
        snapshot: tunnel,
        frames,
        streams: HashMap::new(),
        sessions: JoinSet::new(),
    };
    let mut buf = held;
    let result = tunnel_state.run(&mut reader, &mut buf).await;
    match &result {
        Err(e @ TunnelError::Frame(_)) => {
            tracing::warn!(
                streams = tunnel_state.streams.len(),
                "mux tunnel closed: {e}"
            );
            tunnel_state.sessions.abort_all();
        }
        Err(e) => tracing::debug!(
            streams = tunnel_state.streams.len(),
            "mux tunnel ended: {e}"
        ),
        Ok(()) => {}
    }
    tunnel_state.streams.clear();
    let Tunnel {
        frames,
        mut sessions,
        ..
    } = tunnel_state;
    drop(frames);
    while sessions.join_next().await.is_some() {}
    let _ = writer.await;
}

struct Tunnel {
    ctx: Context,
    snapshot: Snapshot,
    frames: mpsc::Sender<BytesMut>,
    streams: HashMap<u16, Uplink>,
    sessions: JoinSet<()>,
}

/// Where a sub-stream's uplink data goes.
enum Uplink {
    /// TCP: bytes into the session's pipe.
    Stream(mpsc::Sender<Bytes>),
    /// UDP: datagrams, each with its destination if the frame named one.
    Packets(mpsc::Sender<xudp::Packet>),
}

#[derive(Debug, thiserror::Error)]
enum TunnelError {
    #[error("malformed frame: {0}")]
    Frame(#[from] MuxError),
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
    #[error("idle for {0:?}")]
    Idle(Duration),
}

impl Tunnel {
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        buf: &mut BytesMut,
    ) -> Result<(), TunnelError> {
        loop {
            while let Some((frame, used)) = Frame::decode(buf)? {
                let data = frame.data.map(Bytes::copy_from_slice);
                let (id, status) = (frame.session_id, frame.status.clone());
                buf.advance(used);
                self.handle(id, status, data).await;
            }
            buf.reserve(16 * 1024);
            let idle = self.ctx.timeouts.idle;
            match tokio::time::timeout(idle, reader.read_buf(buf)).await {
                Ok(Ok(0)) => return Ok(()),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e.into()),
                Err(_) if self.streams.is_empty() => return Err(TunnelError::Idle(idle)),
                Err(_) => {}
            }
        }
    }

    async fn handle(&mut self, id: u16, status: Status, data: Option<Bytes>) {
        match status {
            Status::New {
                network,
                target,
                global_id,
            } => {
                self.open(id, network, target, global_id.filter(|g| *g != [0; 8]));
                if let Some(data) = data {
                    self.forward(id, None, data).await;
                }
            }
            Status::Keep { udp_addr } => match data {
                Some(data) if self.streams.contains_key(&id) => {
                    self.forward(id, udp_addr, data).await
                }
                Some(_) => self.send(Frame::end(id, false)).await,
                None => {}
            },
            Status::End { .. } => {
                self.streams.remove(&id);
            }
            Status::KeepAlive => {}
        }
    }

    /// Starts the sub-stream `id`: its pipe, its pumps and its session.
    fn open(
        &mut self,
        id: u16,
        network: MuxNetwork,
        target: Destination,
        global_id: Option<[u8; 8]>,
    ) {
        if self.streams.len() >= MAX_STREAMS {
            tracing::warn!(id, "mux: more than {MAX_STREAMS} sub-streams; refused");
            let mut end = BytesMut::new();
            let _ = Frame::end(id, true).encode(&mut end);
            let _ = self.frames.try_send(end);
            return;
        }
        if network == MuxNetwork::Udp {
            // Its own session: the tunnel's facts, none of its (or a sibling's) attributes.
            let snapshot = self.snapshot.child(Network::Udp, target_of(&target));
            let (uplink, packets) = mpsc::channel(STREAM_QUEUE);
            self.streams.insert(id, Uplink::Packets(uplink));
            let (ctx, frames) = (self.ctx.clone(), self.frames.clone());
            self.sessions.spawn(xudp::session(
                ctx, snapshot, target, global_id, packets, id, frames,
            ));
            return;
        }
        let (session_end, pump_end) = tokio::io::duplex(PIPE_CAPACITY);
        let (pump_read, pump_write) = tokio::io::split(pump_end);
        let (uplink, uplink_rx) = mpsc::channel(STREAM_QUEUE);
        self.streams.insert(id, Uplink::Stream(uplink));
        self.sessions
            .spawn(substream::uplink(pump_write, uplink_rx));
        self.sessions.spawn(substream::pipe_to_frames(
            pump_read,
            id,
            self.frames.clone(),
        ));
        let snapshot = self.snapshot.child(Network::Tcp, target_of(&target));
        let ctx = self.ctx.clone();
        self.sessions.spawn(async move {
            let reply = dispatch::Reply::prefix(&[]);
            dispatch::tcp_session(&ctx, snapshot, session_end, BytesMut::new(), &reply).await;
        });
    }

    /// Queues uplink data for sub-stream `id`; ends the sub-stream if it stays full.
    async fn forward(&mut self, id: u16, addr: Option<Destination>, data: Bytes) {
        let sent = match self.streams.get(&id) {
            Some(Uplink::Stream(tx)) => send_or_stall(tx, data).await,
            Some(Uplink::Packets(tx)) => send_or_stall(tx, (addr, data)).await,
            None => return,
        };
        match sent {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(())) => {
                tracing::debug!(id, "mux: sub-stream stalled for {STALL:?}; ending it");
                self.streams.remove(&id);
                self.send(Frame::end(id, true)).await;
            }
            Err(mpsc::error::SendTimeoutError::Closed(())) => {
                self.streams.remove(&id);
            }
        }
    }

    async fn send(&self, frame: Frame<'_>) {
        let _ = substream::send_frame(&self.frames, &frame).await;
    }
}

/// Sends on a sub-stream's queue, waiting at most [`STALL`] for room.
async fn send_or_stall<T>(
    tx: &mpsc::Sender<T>,
    item: T,
) -> Result<(), mpsc::error::SendTimeoutError<()>> {
    tx.send_timeout(item, STALL).await.map_err(|e| match e {
        mpsc::error::SendTimeoutError::Timeout(_) => mpsc::error::SendTimeoutError::Timeout(()),
        mpsc::error::SendTimeoutError::Closed(_) => mpsc::error::SendTimeoutError::Closed(()),
    })
}

/// Writes queued frames to the tunnel, the first glued to `prefix`. Frames waiting
/// together go out in one write of up to [`BATCH`] bytes: one TLS write and one
/// syscall for several 8 KiB frames instead of one each.
pub(super) async fn write_frames<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut queued: mpsc::Receiver<BytesMut>,
    prefix: &[u8],
) {
    let mut batch = BytesMut::with_capacity(prefix.len());
    batch.extend_from_slice(prefix);
    while let Some(frame) = queued.recv().await {
        batch.extend_from_slice(&frame);
        while batch.len() < BATCH {
            let Ok(more) = queued.try_recv() else { break };
            batch.extend_from_slice(&more);
        }
        if writer.write_all(&batch).await.is_err() {
            return;
        }
        batch.clear();
        if queued.is_empty() && writer.flush().await.is_err() {
            return;
        }
        if batch.capacity() > 2 * BATCH {
            // A burst grew the buffer; an idle tunnel should not keep it.
            batch = BytesMut::new();
        }
    }
    let _ = writer.write_all(&batch).await;
    let _ = writer.shutdown().await;
}
