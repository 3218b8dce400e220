//! Bidirectional copy between a client and a target, with Xray's timeouts: `idle`
//! while both directions are open, then `downlink_only` after the client finished
//! sending or `uplink_only` after the target finished. Counts bytes both ways, for
//! the session and, as they move, on its [`Meter`] (the user's, inbound's and
//! outbound's counters).
//!
//! Each direction reads into a 64 KiB buffer (four TLS records per read and write)
//! taken from `bufpool` only while bytes are in hand, so an idle session holds no relay
//! buffer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

mod direct;
mod splice;

pub(crate) use direct::never_a_socket;
pub use direct::{Sockets, relay_direct};

use crate::bufpool;
use crate::config::Timeouts;
use crate::session::Outcome;
use crate::stats::Meter;

pub use crate::bufpool::BUF_SIZE;

/// Bytes moved by a relay.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Traffic {
    pub up: u64,
    pub down: u64,
}

/// Copies client→target and target→client until both are done (`Ok`), a timeout hits
/// (`Timeout`) or a read or write fails (`Error`).
/// `prefix` is written to the client glued to the first downlink bytes (the VLESS
/// response header), or alone before closing if the target sends nothing.
pub async fn relay<C, T>(
    client: C,
    target: T,
    prefix: &[u8],
    timeouts: &Timeouts,
    meter: &Meter,
) -> (Traffic, Outcome)
where
    C: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut target_r, mut target_w) = tokio::io::split(target);
    let start = Instant::now();
    let activity = AtomicU64::new(0);
    let up = Tally::new(meter, true);
    let down = Tally::new(meter, false);
    let mut uplink = std::pin::pin!(copy(
        &mut client_r,
        &mut target_w,
        &[],
        &up,
        &activity,
        start
    ));
    let mut downlink = std::pin::pin!(copy(
        &mut target_r,
        &mut client_w,
        prefix,
        &down,
        &activity,
        start
    ));
    let idle = watch_idle(&activity, start, timeouts.idle);
    tokio::pin!(idle);
    let end = tokio::select! {
        r = &mut uplink => finish(r, &mut downlink, timeouts.downlink_only, &activity, start).await,
        r = &mut downlink => finish(r, &mut uplink, timeouts.uplink_only, &activity, start).await,
        _ = &mut idle => Outcome::Timeout,
    };
    let traffic = Traffic {
        up: up.total(),
        down: down.total(),
    };
    (traffic, end)
}

/// One direction's count: the session's own, and its meter's.
pub(crate) struct Tally<'a> {
    moved: AtomicU64,
    meter: &'a Meter,
    uplink: bool,
}

impl<'a> Tally<'a> {
    pub(crate) fn new(meter: &'a Meter, uplink: bool) -> Self {
        Tally {
            moved: AtomicU64::new(0),
            meter,
            uplink,
        }
    }

    pub(crate) fn add(&self, n: u64) {
        self.moved.fetch_add(n, Ordering::Relaxed);
        if self.uplink {
            self.meter.up(n);
        } else {
            self.meter.down(n);
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.moved.load(Ordering::Relaxed)
    }
}

/// One direction has ended with `first`; let the other go on for at most `timeout`
/// of inactivity.
async fn finish(
    first: std::io::Result<()>,
    other: &mut (impl std::future::Future<Output = std::io::Result<()>> + Unpin),
    timeout: Duration,
    activity: &AtomicU64,
    start: Instant,
) -> Outcome {
    if first.is_err() {
        return Outcome::Error;
    }
    tokio::select! {
        r = other => if r.is_ok() { Outcome::Ok } else { Outcome::Error },
        _ = watch_idle(activity, start, timeout) => Outcome::Timeout,
    }
}

async fn copy<R, W>(
    reader: &mut R,
    writer: &mut W,
    prefix: &[u8],
    counter: &Tally<'_>,
    activity: &AtomicU64,
    start: Instant,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    // The prefix goes out glued to the first data, or alone at the end.
    let mut prefix = prefix;
    loop {
        let mut filled = match bufpool::read(reader, prefix.len()).await {
            Ok(f) => f,
            // A TLS peer that closes its TCP connection without close_notify (most
            // clients and servers end so): every byte it sent has arrived; the stream
            // simply ended.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e),
        };
        let n = filled.data().len();
        if n == 0 {
            break;
        }
        activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        filled.prepend(prefix);
        prefix = &[];
        writer.write_all(filled.data()).await?;
        counter.add(n as u64);
    }
    if !prefix.is_empty() {
        writer.write_all(prefix).await?;
    }
    writer.flush().await?;
    // Everything is delivered; a peer that has gone already cannot take the close
    // (its close_notify or FIN), and that is no failure of the session.
    let _ = writer.shutdown().await;
    Ok(())
}

/// Resolves once nothing moved for `timeout`.
pub(crate) async fn watch_idle(activity: &AtomicU64, start: Instant, timeout: Duration) {
    let mut deadline = start + timeout;
    loop {
        tokio::time::sleep_until(deadline.into()).await;
        let last = start + Duration::from_millis(activity.load(Ordering::Relaxed));
        let next = last + timeout;
        if next <= Instant::now() {
            return;
        }
        deadline = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::{AsyncReadExt, DuplexStream, ReadBuf};

    /// A stream whose end reads as `UnexpectedEof`, as rustls reports a peer that
    /// closed its TCP connection without close_notify.
    struct NoCloseNotify(DuplexStream);

    impl AsyncRead for NoCloseNotify {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let before = buf.filled().len();
            match Pin::new(&mut self.0).poll_read(cx, buf) {
                Poll::Ready(Ok(())) if buf.filled().len() == before => Poll::Ready(Err(
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no close_notify"),
                )),
                other => other,
            }
        }
    }

    impl AsyncWrite for NoCloseNotify {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            Pin::new(&mut self.0).poll_write(cx, buf)
        }
        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_flush(cx)
        }
        fn poll_shutdown(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<std::io::Result<()>> {
            Pin::new(&mut self.0).poll_shutdown(cx)
        }
    }

    #[tokio::test]
    async fn a_client_that_closes_without_close_notify_ends_the_session_ok() {
        let (client, mut user) = tokio::io::duplex(1024);
        let (target, mut server) = tokio::io::duplex(1024);
        let relay = tokio::spawn(async move {
            let meter = Meter::default();
            relay(
                NoCloseNotify(client),
                target,
                b"",
                &Timeouts::default(),
                &meter,
            )
            .await
        });
        user.write_all(b"hello").await.unwrap();
        user.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hello");
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        let mut back = Vec::new();
        user.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"bye");
        let (traffic, end) = relay.await.unwrap();
        assert_eq!(end, Outcome::Ok);
        assert_eq!(traffic, Traffic { up: 5, down: 3 });
    }
}
