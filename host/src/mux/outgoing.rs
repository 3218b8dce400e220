//! The frames a tunnel sends, and who sends them.
//!
//! Frames are encoded into one queue. Whoever queues them (a session writing, the
//! reader ending a sub-stream) then sends the queue itself if nobody is sending: it
//! takes the whole queue as one batch and writes it to the tunnel's stream on its own
//! thread, and goes on with what others queued meanwhile. Only when the stream cannot
//! take more (the socket is full) does the tunnel's writer task take over, woken once,
//! and carry on when the socket drains. So a busy tunnel costs no task wake-up per
//! write, and many frames still share one TLS write and one syscall.
//!
//! Writers wait while [`OUT_LIMIT`] bytes are queued; each batch taken lets one
//! waiting writer on, which passes the room on in turn.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard};
use std::task::{Context, Poll, Waker, ready};

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::proto::mux::{Frame, MAX_STREAM_CHUNK};
use crate::util::lock;

/// Bytes of frames queued before writers wait; about what one batch carries.
pub const OUT_LIMIT: usize = 64 * 1024;
/// The TLS send buffer a tunnel's stream needs: one batch (up to [`OUT_LIMIT`] and one
/// frame more) with its record overhead, so rustls takes it in one write (its default
/// 64 KiB would split a batch in two).
pub const TLS_BUFFER: usize = 2 * OUT_LIMIT;

pub(super) fn closed() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "mux tunnel closed")
}

/// The sending side of a tunnel.
#[derive(Default)]
pub struct Outgoing {
    queue: Mutex<Queue>,
    /// The tunnel's stream, held by whoever sends (see [`Sender`]).
    sink: Mutex<Option<Sink>>,
}

#[derive(Default)]
struct Queue {
    buf: BytesMut,
    /// No more frames are taken; what is queued is sent, then the stream shut down.
    closed: bool,
    sender: Sender,
    /// The writer task, when it waits.
    writer: Option<Waker>,
    /// Writers waiting for room, in the order they came.
    waiting: VecDeque<Waker>,
}

/// Who sends the queue now.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Sender {
    #[default]
    Nobody,
    /// A task that queued frames, inside its poll.
    Caller,
    /// The writer task (the stream was full when a caller tried).
    Writer,
}

struct Sink {
    io: Box<dyn AsyncWrite + Send + Unpin>,
    batch: BytesMut,
    /// Bytes of `batch` written.
    pos: usize,
    /// `batch` holds only the prefix, which waits for the first frames.
    prefix_only: bool,
    /// Everything written has been flushed.
    flushed: bool,
}

impl Outgoing {
    /// Queues `frame`, waiting while the queue is full, and sends it unless someone is.
    pub fn poll_frame(&self, cx: &mut Context<'_>, frame: &Frame<'_>) -> Poll<std::io::Result<()>> {
        let mut q = ready!(self.poll_room(cx))?;
        q.reserve(frame.encoded_len());
        frame.encode(&mut q.buf).map_err(std::io::Error::other)?;
        drop(q);
        self.send_inline(cx);
        Poll::Ready(Ok(()))
    }

    /// Queues `data` as Keep frames of sub-stream `id`: as many as fit now, at least
    /// one chunk; the only copy is the one into the queue.
    pub fn poll_keep(
        &self,
        cx: &mut Context<'_>,
        id: u16,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let mut q = ready!(self.poll_room(cx))?;
        let mut written = 0;
        for chunk in data.chunks(MAX_STREAM_CHUNK) {
            if written > 0 && q.buf.len() >= OUT_LIMIT {
                break;
            }
            let frame = Frame::keep(id, chunk);
            q.reserve(frame.encoded_len());
            frame.encode(&mut q.buf).map_err(std::io::Error::other)?;
            written += chunk.len();
        }
        q.pass_room();
        drop(q);
        self.send_inline(cx);
        Poll::Ready(Ok(written))
    }

    /// Queues a small control frame (End) at once, over the bound if need be (a drop or
    /// an error path cannot wait); the writer task sends it if nobody is sending.
    pub fn send_now(&self, frame: &Frame<'_>) {
        let mut q = lock(&self.queue);
        if !q.closed && frame.encode(&mut q.buf).is_ok() && q.sender == Sender::Nobody {
            q.wake_writer();
        }
    }

    /// Takes no more frames: what is queued is sent, then the stream is shut down.
    pub fn close(&self) {
        let mut q = lock(&self.queue);
        q.closed = true;
        q.wake_writer();
        for w in q.waiting.drain(..) {
            w.wake();
        }
    }

    pub fn is_closed(&self) -> bool {
        lock(&self.queue).closed
    }

    fn poll_room(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<MutexGuard<'_, Queue>>> {
        let mut q = lock(&self.queue);
        if q.closed {
            return Poll::Ready(Err(closed()));
        }
        if q.buf.len() >= OUT_LIMIT {
            if !q.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                q.waiting.push_back(cx.waker().clone());
            }
            return Poll::Pending;
        }
        Poll::Ready(Ok(q))
    }

    /// Sends the queue from the calling task if nobody is sending; when the stream is
    /// full, hands over to the writer task.
    fn send_inline(&self, cx: &mut Context<'_>) {
        {
            let mut q = lock(&self.queue);
            if q.sender != Sender::Nobody {
                return;
            }
            q.sender = Sender::Caller;
        }
        if self.poll_send(cx).is_pending() {
            let mut q = lock(&self.queue);
            q.sender = Sender::Writer;
            q.wake_writer();
        }
    }

    /// Sends batches until the queue is empty and flushed (then nobody sends), the
    /// stream is full (`Pending`: the sender stays) or it failed (the tunnel closes).
    fn poll_send(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let mut guard = lock(&self.sink);
        let Some(sink) = guard.as_mut() else {
            // No stream yet (or any more): the writer task sends once it has one.
            let mut q = lock(&self.queue);
            q.sender = Sender::Nobody;
            q.wake_writer();
            return Poll::Ready(Ok(()));
        };
        match sink.poll_send(cx, &self.queue) {
            Poll::Ready(Err(e)) => {
                *guard = None;
                drop(guard);
                lock(&self.queue).sender = Sender::Nobody;
                self.close();
                Poll::Ready(Err(e))
            }
            other => other,
        }
    }

    /// The writer task: takes over from a caller whose send found the stream full, and
    /// sends what nobody else will (frames queued by `send_now`), until the tunnel is
    /// closed and everything queued is sent. The first batch is glued to `prefix` (the
    /// VLESS response header).
    pub async fn run_writer<W>(&self, writer: W, prefix: &[u8])
    where
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let mut batch = BytesMut::new();
        batch.extend_from_slice(prefix);
        *lock(&self.sink) = Some(Sink {
            io: Box::new(writer),
            prefix_only: !batch.is_empty(),
            batch,
            pos: 0,
            flushed: true,
        });
        std::future::poll_fn(|cx| self.poll_writer(cx)).await;
        let sink = lock(&self.sink).take();
        if let Some(mut sink) = sink {
            if sink.prefix_only {
                let _ = sink.io.write_all(&sink.batch).await;
            }
            let _ = sink.io.shutdown().await;
        }
    }

    fn poll_writer(&self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            {
                let mut q = lock(&self.queue);
                match q.sender {
                    Sender::Caller => {
                        q.writer = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    Sender::Writer => {}
                    Sender::Nobody if q.buf.is_empty() => {
                        // All the room is free: a writer woken for it whose task was
                        // dropped must not leave the others waiting.
                        for w in q.waiting.drain(..) {
                            w.wake();
                        }
                        if q.closed {
                            return Poll::Ready(());
                        }
                        q.writer = Some(cx.waker().clone());
                        return Poll::Pending;
                    }
                    Sender::Nobody => q.sender = Sender::Writer,
                }
            }
            match self.poll_send(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl Queue {
    fn wake_writer(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Room was made, or left over by a writer that is done: the next waiting writer
    /// goes on. One at a time, so a drained queue does not wake every sub-stream to
    /// find it full again after the first.
    fn pass_room(&mut self) {
        if self.buf.len() < OUT_LIMIT
            && let Some(w) = self.waiting.pop_front()
        {
            w.wake();
        }
    }

    /// Makes room for `n` more bytes. An empty buffer gets room for a whole batch at
    /// once (writers stop at [`OUT_LIMIT`], so one more frame at most follows), and then
    /// never grows, which would copy what is queued.
    fn reserve(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n {
            self.buf.reserve(n.max(OUT_LIMIT + 2 * MAX_STREAM_CHUNK));
        }
    }
}

impl Sink {
    fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        queue: &Mutex<Queue>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            if self.pos >= self.batch.len() || self.prefix_only {
                let mut q = lock(queue);
                if q.buf.is_empty() {
                    drop(q);
                    if !self.flushed {
                        ready!(Pin::new(&mut self.io).poll_flush(cx))?;
                        self.flushed = true;
                        continue;
                    }
                    let mut q = lock(queue);
                    if !q.buf.is_empty() {
                        continue;
                    }
                    q.sender = Sender::Nobody;
                    for w in q.waiting.drain(..) {
                        w.wake();
                    }
                    if q.closed {
                        // The writer task shuts the stream down.
                        q.wake_writer();
                    }
                    if !self.prefix_only {
                        // Quiet now: an idle tunnel keeps no batch buffer.
                        self.batch = BytesMut::new();
                        self.pos = 0;
                    }
                    return Poll::Ready(Ok(()));
                }
                if self.prefix_only {
                    self.batch.extend_from_slice(&q.buf);
                    q.buf.clear();
                    self.prefix_only = false;
                } else {
                    self.batch.clear();
                    std::mem::swap(&mut self.batch, &mut q.buf);
                }
                self.pos = 0;
                self.flushed = false;
                q.pass_room();
            }
            let rest = self.batch.get(self.pos..).unwrap_or_default();
            match ready!(Pin::new(&mut self.io).poll_write(cx, rest)) {
                Ok(0) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Ok(n) => self.pos += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}
