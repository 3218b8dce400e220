//! One Mux.Cool tunnel as both ends use it: the table of open sub-streams, the frames
//! waiting for the tunnel's writer, and a sub-stream as a byte stream ([`MuxStream`]).
//! The server (`server`) and the client pool (`outbound::mux_pool`) differ only in who
//! opens sub-streams; the queues, their bounds and the stall rule are these.
//!
//! The data path is built so a frame costs no task wake-up and no buffer of its own:
//!
//! - Downlink (a session writes): `poll_write` encodes Keep frames straight into the
//!   tunnel's one outgoing buffer and wakes the writer task only if it sleeps. The
//!   writer swaps that buffer for its spare and sends everything queued in one write,
//!   so many frames cost one TLS write and one syscall.
//! - Uplink (frames arrive): the reader decodes a frame in its read buffer and hands
//!   the payload on as a slice of that buffer (no copy) into the sub-stream's inbox;
//!   the session is woken only if it is waiting, and copies what has queued into its
//!   relay buffer in one read.
//!
//! Back-pressure: writers wait while [`OUT_LIMIT`] bytes of frames are queued; a
//! sub-stream's inbox takes at most [`STREAM_WINDOW`] bytes, and when it stays full for
//! [`STALL`] that sub-stream is ended (End with the error bit), not the tunnel, so a
//! slow target cannot stall its neighbours for longer. Datagrams to a UDP sub-stream
//! whose queue is full are dropped, as a full socket buffer drops them.

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, mpsc};

use super::outgoing::{Outgoing, closed};
use crate::framed::{FrameError, Limits, read_frame_split};
use crate::proto::Destination;
use crate::proto::mux::{Frame, MAX_METADATA_LEN, MuxError, Status};
use crate::util::lock;

/// Uplink bytes one sub-stream may have queued before the reader waits for it.
pub const STREAM_WINDOW: usize = 64 * 1024;
/// Datagrams queued for one UDP sub-stream.
pub const PACKET_QUEUE: usize = 32;
/// How long the reader waits on one sub-stream's full inbox before ending it.
pub const STALL: Duration = Duration::from_secs(2);

/// The longest frame: metadata, its length, the data length and 64 KiB of data.
const MAX_FRAME: usize = 2 + MAX_METADATA_LEN + 2 + 65535;
/// Room made in the read buffer before each read.
const READ_SIZE: usize = 64 * 1024;

/// A datagram and the address its frame named (None: the sub-stream's target).
pub type Packet = (Option<Destination>, Bytes);

/// The shared state of one tunnel.
#[derive(Default)]
pub struct Tunnel {
    out: Outgoing,
    streams: Mutex<HashMap<u16, Entry>>,
    /// Close the tunnel once its last sub-stream is gone (a client tunnel that has
    /// used up its session ids).
    close_when_empty: AtomicBool,
}

/// Where the reader delivers a sub-stream's data.
#[derive(Clone)]
enum Entry {
    Stream(Arc<Inbox>),
    Packets(mpsc::Sender<Packet>),
}

/// What became of delivered data.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// No such sub-stream (never opened, or already ended).
    Unknown,
    /// Its inbox stayed full for [`STALL`]: the sub-stream was ended.
    Stalled,
}

impl Tunnel {
    pub fn new() -> Arc<Tunnel> {
        Arc::new(Tunnel::default())
    }

    /// Queues `frame` for the writer, waiting while the queue is full.
    pub async fn send(&self, frame: &Frame<'_>) -> std::io::Result<()> {
        std::future::poll_fn(|cx| self.out.poll_frame(cx, frame)).await
    }

    /// Queues a small control frame (End) at once, over the bound if need be: a drop
    /// or an error path cannot wait.
    pub fn send_now(&self, frame: &Frame<'_>) {
        self.out.send_now(frame);
    }

    /// Takes no more frames; the writer sends what is queued and shuts the tunnel down.
    /// Every sub-stream reads its end.
    pub fn close(&self) {
        self.out.close();
        self.end_reads();
    }

    /// Forgets every sub-stream: each reads its end (the peer is gone), while what
    /// sessions still write goes out until [`Tunnel::close`].
    pub fn end_reads(&self) {
        let streams: Vec<Entry> = lock(&self.streams).drain().map(|(_, e)| e).collect();
        for entry in streams {
            if let Entry::Stream(inbox) = entry {
                inbox.finish();
            }
        }
    }

    pub fn is_closed(&self) -> bool {
        self.out.is_closed()
    }

    /// Sub-streams open now.
    pub fn open_streams(&self) -> usize {
        lock(&self.streams).len()
    }

    /// Closes the tunnel when its last sub-stream ends (including one about to be
    /// opened with an id just handed out).
    pub fn close_when_empty(&self) {
        self.close_when_empty.store(true, Ordering::Relaxed);
    }

    /// Registers TCP sub-stream `id` and returns the session's end of it.
    pub fn open_stream(self: &Arc<Self>, id: u16) -> MuxStream {
        let inbox = Arc::new(Inbox::default());
        lock(&self.streams).insert(id, Entry::Stream(inbox.clone()));
        MuxStream {
            tunnel: self.clone(),
            id,
            inbox,
            ended: false,
        }
    }

    /// Registers UDP sub-stream `id`; its datagrams arrive on the receiver.
    pub fn open_packets(self: &Arc<Self>, id: u16) -> (PacketWriter, mpsc::Receiver<Packet>) {
        let (tx, rx) = mpsc::channel(PACKET_QUEUE);
        lock(&self.streams).insert(id, Entry::Packets(tx));
        let writer = PacketWriter {
            tunnel: self.clone(),
            id,
        };
        (writer, rx)
    }

    /// Forgets sub-stream `id` (the peer ended it, or its session is gone): its reader
    /// sees the end.
    pub fn remove(&self, id: u16) {
        let removed = lock(&self.streams).remove(&id);
        if let Some(Entry::Stream(inbox)) = &removed {
            inbox.finish();
        }
        if removed.is_some()
            && self.close_when_empty.load(Ordering::Relaxed)
            && self.open_streams() == 0
        {
            self.close();
        }
    }

    /// Hands data from the peer to sub-stream `id`.
    pub async fn deliver(&self, id: u16, addr: Option<Destination>, mut data: Bytes) -> Delivery {
        let entry = lock(&self.streams).get(&id).cloned();
        match entry {
            None => Delivery::Unknown,
            Some(Entry::Packets(tx)) => {
                // A datagram nobody reads in time is dropped, as UDP is.
                let _ = tx.try_send((addr, data));
                Delivery::Delivered
            }
            Some(Entry::Stream(inbox)) => {
                let deadline = tokio::time::Instant::now() + STALL;
                loop {
                    let room = inbox.room.notified();
                    data = match inbox.push(data) {
                        None => return Delivery::Delivered,
                        Some(back) => back,
                    };
                    if tokio::time::timeout_at(deadline, room).await.is_err() {
                        tracing::debug!(id, "mux: sub-stream stalled for {STALL:?}; ending it");
                        self.send_now(&Frame::end(id, true));
                        self.remove(id);
                        return Delivery::Stalled;
                    }
                }
            }
        }
    }
}

/// Sends the tunnel's frames to `writer` (see `outgoing`), the first batch glued to
/// `prefix` (the VLESS response header), until the tunnel is closed and everything
/// queued is sent; then shuts `writer` down.
pub async fn write_frames<W>(tunnel: Arc<Tunnel>, writer: W, prefix: &[u8])
where
    W: AsyncWrite + Send + Unpin + 'static,
{
    tunnel.out.run_writer(writer, prefix).await;
    tunnel.close();
}

/// A sub-stream's queued uplink data.
#[derive(Default)]
struct Inbox {
    state: Mutex<InboxState>,
    /// Signalled when the session has taken data (the reader waits on it when full).
    room: Notify,
}

#[derive(Default)]
struct InboxState {
    chunks: VecDeque<Bytes>,
    bytes: usize,
    ended: bool,
    reader: Option<Waker>,
}

impl Inbox {
    /// Queues `data`, or gives it back when the inbox is full.
    fn push(&self, data: Bytes) -> Option<Bytes> {
        let mut s = lock(&self.state);
        if s.ended {
            return None;
        }
        if s.bytes >= STREAM_WINDOW {
            return Some(data);
        }
        s.bytes += data.len();
        s.chunks.push_back(data);
        if let Some(w) = s.reader.take() {
            w.wake();
        }
        None
    }

    fn finish(&self) {
        let mut s = lock(&self.state);
        s.ended = true;
        if let Some(w) = s.reader.take() {
            w.wake();
        }
    }

    fn poll_read(&self, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let mut s = lock(&self.state);
        if s.chunks.is_empty() {
            if !s.ended {
                s.reader = Some(cx.waker().clone());
                return Poll::Pending;
            }
            return Poll::Ready(Ok(()));
        }
        let was_full = s.bytes >= STREAM_WINDOW;
        while buf.remaining() > 0 {
            let Some(chunk) = s.chunks.front_mut() else {
                break;
            };
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(chunk.get(..n).unwrap_or_default());
            chunk.advance(n);
            if chunk.is_empty() {
                s.chunks.pop_front();
            }
            s.bytes -= n;
        }
        if was_full && s.bytes < STREAM_WINDOW {
            self.room.notify_one();
        }
        Poll::Ready(Ok(()))
    }
}

/// A TCP sub-stream as its session sees it: reads are the peer's Keep data, writes go
/// out as Keep frames, shutdown sends End, and dropping it without shutdown sends End
/// with the error bit.
pub struct MuxStream {
    tunnel: Arc<Tunnel>,
    id: u16,
    inbox: Arc<Inbox>,
    /// End has been sent.
    ended: bool,
}

impl AsyncRead for MuxStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.inbox.poll_read(cx, buf)
    }
}

impl AsyncWrite for MuxStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.ended {
            return Poll::Ready(Err(closed()));
        }
        if data.is_empty() {
            return Poll::Ready(Ok(0));
        }
        self.tunnel.out.poll_keep(cx, self.id, data)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // The writer task flushes after every batch.
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if !self.ended {
            self.ended = true;
            self.tunnel.send_now(&Frame::end(self.id, false));
        }
        Poll::Ready(Ok(()))
    }
}

impl Drop for MuxStream {
    fn drop(&mut self) {
        if !self.ended {
            self.tunnel.send_now(&Frame::end(self.id, true));
        }
        self.tunnel.remove(self.id);
    }
}

/// The sending side of a UDP sub-stream; dropping it ends the sub-stream.
pub struct PacketWriter {
    tunnel: Arc<Tunnel>,
    id: u16,
}

impl PacketWriter {
    /// Sends one datagram as a Keep frame, naming its address (`from`: the source of a
    /// server's reply, XUDP) or not (a client's datagram to the sub-stream's target).
    pub async fn send(&self, from: Option<Destination>, datagram: &[u8]) -> std::io::Result<()> {
        let frame = match from {
            Some(addr) => Frame::keep_udp(self.id, addr, datagram),
            None => Frame::keep(self.id, datagram),
        };
        self.tunnel.send(&frame).await
    }
}

impl Drop for PacketWriter {
    fn drop(&mut self) {
        self.tunnel.send_now(&Frame::end(self.id, false));
        self.tunnel.remove(self.id);
    }
}

/// A decoded frame whose payload is a range of its own bytes.
struct Decoded {
    id: u16,
    status: Status,
    data: Option<Range<usize>>,
}

/// Decodes one frame, keeping where its payload lies instead of borrowing it.
fn decode(buf: &[u8]) -> Result<Option<(Decoded, usize)>, MuxError> {
    let Some((frame, used)) = Frame::decode(buf)? else {
        return Ok(None);
    };
    let data = frame.data.map(|d| {
        let start = (d.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
        start..start + d.len()
    });
    let decoded = Decoded {
        id: frame.session_id,
        status: frame.status,
        data,
    };
    Ok(Some((decoded, used)))
}

/// Reads the next frame: its id, status and payload (a slice of the read buffer).
pub async fn next_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    deadline: Option<tokio::time::Instant>,
) -> Result<(u16, Status, Option<Bytes>), FrameError<MuxError>> {
    let mut limits = Limits::new(MAX_FRAME).reading(READ_SIZE);
    limits.deadline = deadline;
    let (frame, bytes) = read_frame_split(reader, buf, limits, decode).await?;
    let data = frame.data.map(|range| {
        let bytes = bytes.freeze();
        if range.end <= bytes.len() {
            bytes.slice(range)
        } else {
            Bytes::new()
        }
    });
    Ok((frame.id, frame.status, data))
}

#[cfg(test)]
#[path = "tunnel_tests.rs"]
mod tests;

// A sub-stream is frames in a tunnel, never a socket of its own.
crate::relay::never_a_socket!(MuxStream);
