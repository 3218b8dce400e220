//! The Vision layer (flow `xtls-rprx-vision`, `shared/spec/xtls-vision.md`), between
//! VLESS and the command, the same on both ends: each direction pads the inner traffic
//! until the inner TLS handshake is over, then goes on raw inside the outer TLS (end)
//! or raw on the socket under it (direct).
//!
//! The codec is `proto::vision`; this is its IO. The two facts it leans on:
//!
//! * reads come one TLS record at a time while a switch is possible
//!   (`Coalesced::one_record_at_a_time`), so when the peer's direct frame arrives rustls
//!   holds nothing past its record: its leftover plaintext ([`Peel::take_plaintext`])
//!   and then the socket's bytes are the raw stream, in order, none lost or doubled;
//! * every frame goes out in its own outer-TLS write, after everything before it was
//!   flushed, so no receiver finds a frame header cut across records (sing-box's
//!   unpadder cannot take that), and before the first raw write every TLS record of
//!   that direction is on the socket.
//!
//! After the switch, a direction costs what a TCP socket costs: reads and writes go to
//! the raw stream, shutdown is a TCP FIN (an outer close_notify would reach the inner
//! application as garbage).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::proto::vision::{Command, DEFAULT_SEED, Padder, TrafficState, Unpadder};
use crate::security::Peel;
use crate::util::poll_write_all;

/// One padded read's worth (an outer TLS record holds at most 16 KiB).
const READ_CHUNK: usize = 16 * 1024;

/// Where one direction stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Padded,
    /// Raw, inside the outer TLS.
    Ended,
    /// Raw, on the socket.
    Direct,
}

/// A stream whose both directions speak Vision over `S`, a secured stream.
pub struct VisionStream<S> {
    inner: S,
    traffic: TrafficState,
    read: Phase,
    unpadder: Unpadder,
    /// Read but not yet unpadded (the unpadder waits for 21 bytes at first).
    held: BytesMut,
    /// Unpadded, for the caller.
    ready: BytesMut,
    write: Phase,
    padder: Padder,
    /// Each entry goes out in its own write.
    queue: VecDeque<Bytes>,
    /// Goes out glued to the first frame (the server's response header).
    prefix: &'static [u8],
    /// The direct frame is queued: switch once the queue is on the socket.
    switch: bool,
    /// Goes out on the socket right after the switch.
    after_switch: Bytes,
}

/// The reason a Vision stream ended, as the error the relay sees.
fn invalid(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("vision: {e}"))
}

/// A uniform value in `0..n` from the TLS stack's CSPRNG (Xray draws from
/// `crypto/rand`); 0 when `n` is 0.
fn random(n: u32) -> u32 {
    static RNG: LazyLock<&'static dyn rustls::crypto::SecureRandom> =
        LazyLock::new(|| rustls::crypto::aws_lc_rs::default_provider().secure_random);
    if n == 0 {
        return 0;
    }
    let mut b = [0u8; 8];
    // A failing system RNG leaves zeros: the padding is then only less random.
    let _ = RNG.fill(&mut b);
    (u64::from_le_bytes(b) % u64::from(n)) as u32
}

impl<S: Peel + AsyncRead + AsyncWrite + Unpin> VisionStream<S> {
    /// The server side: `sent` is the id the client sent (its frames start with it,
    /// and so do ours, spec §3.2); `prefix` goes out ahead of the first frame.
    pub fn server(inner: S, sent: [u8; 16], prefix: &'static [u8]) -> Self {
        Self::new(inner, sent, prefix)
    }

    /// The client side, over a VLESS stream whose request header goes out with the
    /// first write.
    pub fn client(inner: S, id: [u8; 16]) -> Self {
        Self::new(inner, id, &[])
    }

    fn new(inner: S, uuid: [u8; 16], prefix: &'static [u8]) -> Self {
        VisionStream {
            inner,
            traffic: TrafficState::default(),
            read: Phase::Padded,
            unpadder: Unpadder::new(uuid),
            held: BytesMut::new(),
            ready: BytesMut::new(),
            write: Phase::Padded,
            padder: Padder::new(uuid, DEFAULT_SEED),
            queue: VecDeque::new(),
            prefix,
            switch: false,
            after_switch: Bytes::new(),
        }
    }

    /// Takes the bytes read with the request header (padded, as the peer sent them)
    /// and leaves in `first` what they carry.
    pub fn begin(&mut self, first: &mut BytesMut) -> std::io::Result<()> {
        self.held.extend_from_slice(first);
        first.clear();
        self.unpad()?;
        *first = self.ready.split();
        Ok(())
    }

    /// Queues the empty first frame of a client whose application is silent, so the
    /// request goes out (spec §3.4, camouflage).
    pub fn camouflage(&mut self) {
        if self.write == Phase::Padded {
            let frame = self.padder.camouflage(random);
            self.queue.push_back(frame.freeze());
        }
    }

    /// Unpads what was read; switches the read side where padding ended.
    fn unpad(&mut self) -> std::io::Result<()> {
        let start = self.ready.len();
        let done = self
            .unpadder
            .unpad(&self.held, &mut self.ready)
            .map_err(invalid)?;
        self.held.advance(done.used);
        if let Some(new) = self.ready.get(start..).filter(|n| !n.is_empty()) {
            self.traffic.filter(new);
        }
        match done.ended {
            None | Some(Command::Continue) => {}
            Some(end) => {
                // Bytes after the last frame in the same record are raw (Xray logs them
                // as "shouldn't happen" and keeps them).
                let rest = self.held.split();
                self.ready.extend_from_slice(&rest);
                if end == Command::Direct {
                    self.inner.take_plaintext(&mut self.ready);
                    self.read = Phase::Direct;
                } else {
                    self.read = Phase::Ended;
                }
                tracing::debug!(phase = ?self.read, "vision: the peer ended padding");
                // This direction cannot switch again: reads may take whole buffers.
                self.inner.raw().ungate();
            }
        }
        Ok(())
    }

    /// Reads and unpads until there is something for the caller or the stream ends.
    fn poll_padded(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while self.ready.is_empty() && self.read == Phase::Padded {
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            ready!(self.inner.poll_read_record(cx, &mut buf))?;
            if buf.filled().is_empty() {
                if self.unpadder.in_frame() || !self.held.is_empty() && !self.unpadder.at_start() {
                    let e = invalid("the peer closed inside a padded frame");
                    tracing::warn!("{e}");
                    return Poll::Ready(Err(e));
                }
                // A first read too short to be a frame is passed on as it is (as Xray does).
                let rest = self.held.split();
                self.ready.extend_from_slice(&rest);
                return Poll::Ready(Ok(()));
            }
            self.held.extend_from_slice(buf.filled());
            if let Err(e) = self.unpad() {
                tracing::warn!("{e}; closing the connection");
                return Poll::Ready(Err(e));
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Writes the queue, each entry in its own outer-TLS write after everything before
    /// it is on the socket; then makes a pending switch.
    fn poll_queue(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        while let Some(front) = self.queue.front_mut() {
            ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
            ready!(poll_write_all(&mut self.inner, cx, front))?;
            self.queue.pop_front();
        }
        if self.switch {
            ready!(Pin::new(&mut self.inner).poll_flush(cx))?;
            self.switch = false;
            self.write = Phase::Direct;
            tracing::debug!("vision: our side went direct");
        }
        poll_write_all(self.inner.raw(), cx, &mut self.after_switch)
    }

    /// Pads one batch into the queue.
    fn pad(&mut self, data: &[u8]) {
        let batch = self.padder.pad(&mut self.traffic, data, random);
        let mut frames = batch.frames.into_iter();
        if !self.prefix.is_empty()
            && let Some(first) = frames.next()
        {
            let mut glued = BytesMut::with_capacity(self.prefix.len() + first.len());
            glued.extend_from_slice(std::mem::take(&mut self.prefix));
            glued.extend_from_slice(&first);
            self.queue.push_back(glued.freeze());
        }
        self.queue.extend(frames.map(BytesMut::freeze));
        match batch.ended {
            Some(Command::Direct) => {
                self.write = Phase::Ended;
                self.switch = true;
                self.after_switch = Bytes::from(batch.raw);
            }
            _ => {
                if !batch.raw.is_empty() {
                    self.queue.push_back(Bytes::from(batch.raw));
                }
                if batch.ended.is_some() {
                    self.write = Phase::Ended;
                }
            }
        }
    }
}

impl<S: Peel + AsyncRead + AsyncWrite + Unpin> AsyncRead for VisionStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.ready.is_empty() {
            match this.read {
                Phase::Padded => ready!(this.poll_padded(cx))?,
                Phase::Direct => return Pin::new(this.inner.raw()).poll_read(cx, buf),
                Phase::Ended => {
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    if this.traffic.packets_to_filter > 0 {
                        this.traffic
                            .filter(buf.filled().get(before..).unwrap_or_default());
                    }
                    return Poll::Ready(Ok(()));
                }
            }
        }
        let n = this.ready.len().min(buf.remaining());
        buf.put_slice(this.ready.get(..n).unwrap_or_default());
        this.ready.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl<S: Peel + AsyncRead + AsyncWrite + Unpin> AsyncWrite for VisionStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        ready!(this.poll_queue(cx))?;
        match this.write {
            Phase::Direct => Pin::new(this.inner.raw()).poll_write(cx, data),
            Phase::Ended => Pin::new(&mut this.inner).poll_write(cx, data),
            Phase::Padded => {
                this.pad(data);
                // The batch is taken; what the socket cannot take now goes out with the
                // next write or flush, as a TLS stream's buffered records do.
                if let Poll::Ready(Err(e)) = this.poll_queue(cx) {
                    return Poll::Ready(Err(e));
                }
                Poll::Ready(Ok(data.len()))
            }
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_queue(cx))?;
        match this.write {
            Phase::Direct => Pin::new(this.inner.raw()).poll_flush(cx),
            _ => Pin::new(&mut this.inner).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if !this.prefix.is_empty() {
            // Nothing came down: the response header still goes out alone.
            this.queue
                .push_back(Bytes::from_static(std::mem::take(&mut this.prefix)));
        }
        ready!(this.poll_queue(cx))?;
        match this.write {
            Phase::Direct => Pin::new(this.inner.raw()).poll_shutdown(cx),
            _ => Pin::new(&mut this.inner).poll_shutdown(cx),
        }
    }
}

// The direct phase, to the relay: a direction is a socket once nothing of it is
// buffered here or in the layers under.
impl<S: Peel> crate::relay::Sockets for VisionStream<S> {
    fn switches(&self) -> bool {
        true
    }

    fn read_socket(&mut self) -> Option<&tokio::net::TcpStream> {
        let direct = self.read == Phase::Direct && self.ready.is_empty() && self.held.is_empty();
        let raw = self.inner.raw();
        (direct && raw.is_drained()).then(|| raw.get_ref())
    }

    fn write_socket(&mut self) -> Option<&tokio::net::TcpStream> {
        let direct = self.write == Phase::Direct
            && !self.switch
            && self.queue.is_empty()
            && self.after_switch.is_empty();
        direct.then(|| self.inner.raw().get_ref())
    }
}
