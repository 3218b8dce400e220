//! Relay buffers taken only while data moves, so an idle connection holds none.
//!
//! A relay direction waits for its reader with no buffer: [`read`] takes a buffer
//! from a small per-thread pool when it polls the reader, and gives it back at once if
//! the reader is not ready (an `AsyncRead` that returns `Pending` has written nothing
//! into the buffer). Only once bytes have arrived does the buffer stay with them, until
//! they are written and the [`Filled`] is dropped. A thousand idle connections then
//! cost no relay memory at all, and a busy one costs one 64 KiB buffer per direction,
//! recycled without touching the allocator.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::Poll;

use tokio::io::{AsyncRead, ReadBuf};

use crate::proto::tls_record::RecordGate;

/// Size of one buffer. Four TLS records' worth: one read and one `writev` move four
/// records, which cut the server's CPU per GB relayed from 3.1 s to about 1.5 s against
/// 16 KiB buffers (loadgen, one run; 32 KiB gave 1.9 s, 256 KiB no better than 64).
pub const BUF_SIZE: usize = 64 * 1024;
/// Buffers kept per thread for reuse; more are freed.
const KEEP: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

pub(crate) fn take() -> Box<[u8]> {
    POOL.with(|p| p.borrow_mut().pop())
        .unwrap_or_else(|| vec![0u8; BUF_SIZE].into_boxed_slice())
}

pub(crate) fn give(buf: Box<[u8]>) {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        if pool.len() < KEEP {
            pool.push(buf);
        }
    });
}

/// Bytes read into a pooled buffer; the buffer goes back to the pool when dropped.
pub struct Filled {
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
}

impl Filled {
    /// The bytes read (empty at end of stream).
    pub fn data(&self) -> &[u8] {
        self.buf
            .as_deref()
            .and_then(|b| b.get(self.start..self.end))
            .unwrap_or_default()
    }

    /// Puts `prefix` in front of the data (in the room [`read`] left for it).
    pub fn prepend(&mut self, prefix: &[u8]) {
        let Some(buf) = self.buf.as_deref_mut() else {
            return;
        };
        let Some(at) = self.start.checked_sub(prefix.len()) else {
            return;
        };
        if let Some(room) = buf.get_mut(at..self.start) {
            room.copy_from_slice(prefix);
            self.start = at;
        }
    }
}

impl Drop for Filled {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            give(buf);
        }
    }
}

/// Reads once from `reader`, holding a buffer only while bytes are there, leaving
/// `room` bytes in front of them for [`Filled::prepend`] (`room` < [`BUF_SIZE`]).
pub async fn read<R: AsyncRead + Unpin>(reader: &mut R, room: usize) -> std::io::Result<Filled> {
    let room = room.min(BUF_SIZE / 2);
    std::future::poll_fn(|cx| {
        let mut buf = take();
        let mut read_buf = ReadBuf::new(buf.get_mut(room..).unwrap_or_default());
        match Pin::new(&mut *reader).poll_read(cx, &mut read_buf) {
            Poll::Pending => {
                give(buf);
                Poll::Pending
            }
            Poll::Ready(Err(e)) => {
                give(buf);
                Poll::Ready(Err(e))
            }
            Poll::Ready(Ok(())) => {
                let n = read_buf.filled().len();
                Poll::Ready(Ok(Filled {
                    buf: Some(buf),
                    start: room,
                    end: room + n,
                }))
            }
        }
    })
    .await
}

/// A stream whose reads are served from large reads into a pooled buffer.
///
/// rustls pulls at most 4 KiB from its transport per call, so a 16 KiB TLS record
/// costs four or five `read` syscalls. Under a TLS stream, this turns them into one
/// 64 KiB read served from memory. Like [`read`], it holds a buffer only while unread
/// bytes are in it. Writes pass straight through.
///
/// Gated ([`Coalesced::one_record_at_a_time`]), a read never passes the end of a TLS
/// record: rustls above then never holds bytes past the record it decrypts, and the
/// bytes still here are the peer's next ones as sent (the Vision switch, see
/// `proto::tls_record`).
pub struct Coalesced<S> {
    inner: S,
    buf: Option<Box<[u8]>>,
    start: usize,
    end: usize,
    gate: Option<RecordGate>,
}

impl<S> Coalesced<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            buf: None,
            start: 0,
            end: 0,
            gate: None,
        }
    }

    /// Reads stop at TLS record ends, from the stream's first byte on.
    pub fn one_record_at_a_time(mut self) -> Self {
        self.gate = Some(RecordGate::default());
        self
    }

    /// Reads go on whole again (the records are no longer the concern).
    pub fn ungate(&mut self) {
        self.gate = None;
    }

    /// No bytes read ahead are waiting here.
    pub fn is_drained(&self) -> bool {
        self.buf.is_none()
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S> Drop for Coalesced<S> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            give(buf);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Coalesced<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.buf.is_none() {
            let mut buf = take();
            let mut read_buf = ReadBuf::new(&mut buf);
            match Pin::new(&mut this.inner).poll_read(cx, &mut read_buf) {
                Poll::Ready(Ok(())) if !read_buf.filled().is_empty() => {
                    this.end = read_buf.filled().len();
                    this.start = 0;
                    this.buf = Some(buf);
                }
                other => {
                    give(buf);
                    return other;
                }
            }
        }
        let Some(buf) = this.buf.as_deref() else {
            return Poll::Ready(Ok(()));
        };
        let available = buf.get(this.start..this.end).unwrap_or_default();
        let mut n = available.len().min(out.remaining());
        if let Some(gate) = &mut this.gate {
            n = gate.pass(available.get(..n).unwrap_or_default());
        }
        out.put_slice(available.get(..n).unwrap_or_default());
        this.start += n;
        if this.start >= this.end
            && let Some(drained) = this.buf.take()
        {
            give(drained);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Coalesced<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_and_prepends_and_recycles() {
        let mut input: &[u8] = b"hello";
        let mut filled = read(&mut input, 2).await.unwrap();
        assert_eq!(filled.data(), b"hello");
        filled.prepend(b"\0\0");
        assert_eq!(filled.data(), b"\0\0hello");
        filled.prepend(b"too long for the room");
        assert_eq!(filled.data(), b"\0\0hello");
        drop(filled);
        assert!(POOL.with(|p| !p.borrow().is_empty()));
        let at_end = read(&mut input, 0).await.unwrap();
        assert!(at_end.data().is_empty());
    }

    #[tokio::test]
    async fn coalesced_reads_serve_small_reads_in_order_and_release_the_buffer() {
        use tokio::io::AsyncReadExt;
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = Coalesced::new(&data[..]);
        let mut out = Vec::new();
        let mut small = [0u8; 4096];
        loop {
            let n = stream.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&small[..n]);
        }
        assert_eq!(out, data);
        assert!(stream.buf.is_none(), "drained: no buffer held");
    }

    #[tokio::test]
    async fn a_pending_reader_holds_no_buffer() {
        let (mut quiet, _other) = tokio::io::duplex(64);
        POOL.with(|p| p.borrow_mut().clear());
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(20), read(&mut quiet, 0));
        assert!(waiting.await.is_err());
        assert_eq!(
            POOL.with(|p| p.borrow().len()),
            1,
            "the buffer went back while waiting"
        );
    }

    #[tokio::test]
    async fn a_gated_stream_stops_every_read_at_a_record_end_until_ungated() {
        use tokio::io::AsyncReadExt;
        let record = |n: u8| [&[0x17, 0x03, 0x03, 0x00, n][..], &vec![n; usize::from(n)]].concat();
        let raw = b"raw bytes after the records";
        let data = [record(3), record(9), raw.to_vec()].concat();
        let mut stream = Coalesced::new(&data[..]).one_record_at_a_time();
        let mut big = [0u8; 4096];
        assert_eq!(stream.read(&mut big).await.unwrap(), 8);
        assert_eq!(stream.read(&mut big).await.unwrap(), 14);
        stream.ungate();
        let n = stream.read(&mut big).await.unwrap();
        assert_eq!(&big[..n], raw);
    }
}
