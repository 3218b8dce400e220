//! The Mux.Cool client: many sessions over few VLESS connections (command 3), as
//! Xray's client does it (spec 2.2, 2.3).
//!
//! - A tunnel carries at most `concurrency` open sub-streams; when every tunnel is full
//!   a new one is dialed.
//! - Session ids run 1..=128 and never wrap: after 128 allocations a tunnel takes no
//!   new sessions and closes when its last one ends (Xray's `MaxConnection`).
//! - A tunnel with no sub-stream and no new allocation for `idle_timeout` is closed.
//! - A broken tunnel (read error, malformed frame, server gone) ends only its own
//!   sub-streams; the next session dials a fresh one.
//!
//! Each sub-stream is served like the server's: the session owns one end of an
//! in-memory pipe, two pumps move bytes between its other end and the tunnel, so the
//! relay code is the same as for a plain connection. UDP sub-streams carry one
//! datagram per frame instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

use super::server::{STALL, write_frames};
use super::substream::{PIPE_CAPACITY, pipe_to_frames, send_frame};
use crate::config::VlessOutbound;
use crate::outbound::OutboundError;
use crate::outbound::vless::{self, VlessStream};
use crate::proto::Destination;
use crate::proto::mux::{Frame, Network, Status};
use crate::proto::vless::Command;

/// Sessions ever allocated on one tunnel (Xray's `MaxConnection`).
pub const MAX_SESSIONS: u16 = 128;
/// Frames queued for one tunnel's writer.
const FRAME_QUEUE: usize = 64;
/// Downlink chunks (or datagrams) queued per sub-stream.
const STREAM_QUEUE: usize = 8;

/// The Mux.Cool pool of one vless outbound.
pub struct MuxClient {
    server: VlessOutbound,
    tls: Arc<rustls::ClientConfig>,
    tunnels: tokio::sync::Mutex<Vec<Arc<Tunnel>>>,
    /// Tunnels dialed so far.
    dialed: AtomicU64,
}

/// One open sub-stream's way back to its session.
enum Downlink {
    Stream(mpsc::Sender<Bytes>),
    Packets(mpsc::Sender<Bytes>),
}

/// A tunnel as the pool and the pumps see it.
pub struct Tunnel {
    state: Mutex<State>,
}

struct State {
    /// `None` once the tunnel is closed.
    frames: Option<mpsc::Sender<BytesMut>>,
    allocated: u16,
    streams: HashMap<u16, Downlink>,
}

/// A sub-stream as the session sees it: a byte pipe.
pub type MuxStream = DuplexStream;

/// A UDP sub-stream: datagrams go out through `tx`, replies arrive on `rx`.
pub struct MuxPackets {
    pub tx: MuxPacketTx,
    pub rx: mpsc::Receiver<Bytes>,
}

/// The sending side of a UDP sub-stream; dropping it ends the sub-stream.
pub struct MuxPacketTx {
    tunnel: Arc<Tunnel>,
    frames: mpsc::Sender<BytesMut>,
    id: u16,
}

impl MuxClient {
    pub fn new(server: VlessOutbound, tls: Arc<rustls::ClientConfig>) -> Self {
        Self {
            server,
            tls,
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
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let (tunnel, id, frames) = self.allocate(Downlink::Stream(tx)).await?;
        let data = (!first.is_empty()).then_some(first);
        let new = Frame::new_session(id, Network::Tcp, target, data);
        send_frame(&frames, &new)
            .await
            .map_err(|e| self.broken(e))?;
        let (session_end, pump_end) = tokio::io::duplex(PIPE_CAPACITY);
        let (pump_read, pump_write) = tokio::io::split(pump_end);
        tokio::spawn(pipe_to_frames(pump_read, id, frames));
        tokio::spawn(pump_downlink(pump_write, rx, id, tunnel));
        Ok(session_end)
    }

    /// Opens a UDP sub-stream to `target` (a New frame without data, as Xray's client
    /// sends when no packet is ready).
    pub async fn open_packets(&self, target: Destination) -> Result<MuxPackets, OutboundError> {
        let (tx, rx) = mpsc::channel(STREAM_QUEUE);
        let (tunnel, id, frames) = self.allocate(Downlink::Packets(tx)).await?;
        let new = Frame::new_session(id, Network::Udp, target, None);
        send_frame(&frames, &new)
            .await
            .map_err(|e| self.broken(e))?;
        Ok(MuxPackets {
            tx: MuxPacketTx { tunnel, frames, id },
            rx,
        })
    }

    fn broken(&self, e: std::io::Error) -> OutboundError {
        OutboundError::Connect(self.server.target(), e)
    }

    /// A session id on a tunnel with room, dialing a new tunnel when none has any.
    async fn allocate(
        &self,
        downlink: Downlink,
    ) -> Result<(Arc<Tunnel>, u16, mpsc::Sender<BytesMut>), OutboundError> {
        let mut tunnels = self.tunnels.lock().await;
        tunnels.retain(|t| t.takes_sessions());
        let concurrency = usize::from(self.server.mux.concurrency);
        let mut downlink = Some(downlink);
        for tunnel in tunnels.iter() {
            if let Some((id, frames)) = tunnel.try_allocate(concurrency, &mut downlink) {
                return Ok((tunnel.clone(), id, frames));
            }
        }
        let tunnel = self.dial().await?;
        tunnels.push(tunnel.clone());
        let (id, frames) = tunnel
            .try_allocate(concurrency, &mut downlink)
            .ok_or_else(|| self.broken(std::io::Error::other("new mux tunnel refused")))?;
        Ok((tunnel, id, frames))
    }

    async fn dial(&self) -> Result<Arc<Tunnel>, OutboundError> {
        let stream = vless::connect(&self.server, &self.tls, Command::Mux, &[]).await?;
        self.dialed.fetch_add(1, Ordering::Relaxed);
        let (reader, writer) = tokio::io::split(stream);
        let (frames, queued) = mpsc::channel(FRAME_QUEUE);
        tokio::spawn(write_frames(writer, queued, &[]));
        let tunnel = Arc::new(Tunnel {
            state: Mutex::new(State {
                frames: Some(frames),
                allocated: 0,
                streams: HashMap::new(),
            }),
        });
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
        tunnels.retain(|t| t.is_open());
        tunnels.len()
    }
}

impl Tunnel {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_open(&self) -> bool {
        self.lock().frames.is_some()
    }

    fn takes_sessions(&self) -> bool {
        let s = self.lock();
        s.frames.is_some() && s.allocated < MAX_SESSIONS
    }

    /// The next id and the frame queue, if this tunnel has room; takes `downlink`.
    fn try_allocate(
        &self,
        concurrency: usize,
        downlink: &mut Option<Downlink>,
    ) -> Option<(u16, mpsc::Sender<BytesMut>)> {
        let mut s = self.lock();
        let frames = s.frames.clone()?;
        if s.allocated >= MAX_SESSIONS || s.streams.len() >= concurrency {
            return None;
        }
        s.allocated += 1;
        let id = s.allocated;
        s.streams.insert(id, downlink.take()?);
        Some((id, frames))
    }

    /// Forgets sub-stream `id`; an exhausted tunnel closes with its last one.
    fn remove(&self, id: u16) {
        let mut s = self.lock();
        s.streams.remove(&id);
        if s.allocated >= MAX_SESSIONS && s.streams.is_empty() {
            s.frames = None;
        }
    }

    /// Ends every sub-stream and lets the writer finish.
    fn close(&self) {
        let mut s = self.lock();
        s.frames = None;
        s.streams.clear();
    }

    /// True when nothing was open or allocated since the previous check.
    fn idle_since(&self, seen: &mut u16) -> bool {
        let s = self.lock();
        let idle = s.streams.is_empty() && (s.allocated == *seen || s.frames.is_none());
        *seen = s.allocated;
        idle
    }

    fn downlink(&self, id: u16) -> Option<Result<mpsc::Sender<Bytes>, mpsc::Sender<Bytes>>> {
        match self.lock().streams.get(&id)? {
            Downlink::Stream(tx) => Some(Ok(tx.clone())),
            Downlink::Packets(tx) => Some(Err(tx.clone())),
        }
    }

    fn queue(&self) -> Option<mpsc::Sender<BytesMut>> {
        self.lock().frames.clone()
    }
}

/// Reads the tunnel: routes Keep data to its sub-stream, End closes one. Ends (closing
/// the tunnel) on EOF, a read error, a malformed frame or idleness.
async fn read_frames(tunnel: Arc<Tunnel>, mut reader: ReadHalf<VlessStream>, idle: Duration) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + idle, idle);
    let mut seen = 0;
    let why: String = 'tunnel: loop {
        tokio::select! {
            read = reader.read_buf(&mut buf) => match read {
                Ok(0) => break "closed by the server".into(),
                Ok(_) => {}
                Err(e) => break format!("read: {e}"),
            },
            _ = ticker.tick() => {
                if tunnel.idle_since(&mut seen) {
                    break "idle".into();
                }
                continue;
            }
        }
        loop {
            let (id, status, data) = match Frame::decode(&buf) {
                Ok(Some((frame, used))) => {
                    let data = frame.data.map(Bytes::copy_from_slice);
                    let parts = (frame.session_id, frame.status, data);
                    buf.advance(used);
                    parts
                }
                Ok(None) => break,
                Err(e) => break 'tunnel format!("malformed frame: {e}"),
            };
            handle(&tunnel, id, status, data).await;
        }
        buf.reserve(16 * 1024);
    };
    tracing::debug!("mux tunnel closed: {why}");
    tunnel.close();
}

async fn handle(tunnel: &Tunnel, id: u16, status: Status, data: Option<Bytes>) {
    match status {
        Status::Keep { .. } => {
            let Some(data) = data else { return };
            match tunnel.downlink(id) {
                Some(Ok(stream)) => {
                    if let Err(mpsc::error::SendTimeoutError::Timeout(_)) =
                        stream.send_timeout(data, STALL).await
                    {
                        tracing::debug!(id, "mux: sub-stream stalled for {STALL:?}; ending it");
                        end(tunnel, id, true);
                        tunnel.remove(id);
                    }
                }
                // A datagram nobody reads in time is dropped, as UDP is.
                Some(Err(packets)) => drop(packets.try_send(data)),
                None => {}
            }
        }
        Status::End { .. } => tunnel.remove(id),
        // A server does not open sessions toward a client (no reverse proxy here).
        Status::New { .. } => end(tunnel, id, true),
        Status::KeepAlive => {}
    }
}

fn end(tunnel: &Tunnel, id: u16, error: bool) {
    if let Some(frames) = tunnel.queue() {
        let mut bytes = BytesMut::new();
        if Frame::end(id, error).encode(&mut bytes).is_ok() {
            let _ = frames.try_send(bytes);
        }
    }
}

/// Tunnel bytes into the session's pipe until the server ends the sub-stream (or the
/// tunnel closes); then half-closes the pipe.
async fn pump_downlink(
    mut pipe: WriteHalf<DuplexStream>,
    mut data: mpsc::Receiver<Bytes>,
    id: u16,
    tunnel: Arc<Tunnel>,
) {
    while let Some(chunk) = data.recv().await {
        if pipe.write_all(&chunk).await.is_err() {
            // The session is gone: forget the sub-stream and tell the server.
            end(&tunnel, id, true);
            tunnel.remove(id);
            return;
        }
    }
    let _ = pipe.shutdown().await;
}

impl MuxPacketTx {
    /// Sends one datagram as a Keep frame.
    pub async fn send(&self, datagram: &[u8]) -> std::io::Result<()> {
        send_frame(&self.frames, &Frame::keep(self.id, datagram)).await
    }
}

impl Drop for MuxPacketTx {
    fn drop(&mut self) {
        end(&self.tunnel, self.id, false);
        self.tunnel.remove(self.id);
    }
}
