//! The relay of a session whose ends may turn into plain TCP sockets part-way (the
//! Vision direct phase): it copies as [`super::relay`] does until, in one direction, the
//! reader's bytes come straight off a socket and the writer's go straight onto one;
//! from then on that direction moves in the kernel (`splice`), never through user
//! space. Counters, the idle timeout and the half-close timeouts work in both phases.
//!
//! Why a relay of its own: the plain relay splits each stream into halves, and a half
//! cannot say what it has under it. This one polls both directions in one task over
//! the whole streams, so each can be asked for its socket.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::splice::{Pipe, shutdown_write};
use super::{Tally, Traffic, watch_idle};
use crate::bufpool;
use crate::config::Timeouts;
use crate::session::Outcome;
use crate::stats::Meter;

/// A stream that may be, or become, a plain TCP socket in one direction or both.
pub trait Sockets {
    /// It may turn into a socket part-way (Vision), so a relay should keep asking.
    fn switches(&self) -> bool {
        false
    }
    /// The socket reads come from, when nothing is buffered above it.
    fn read_socket(&mut self) -> Option<&TcpStream>;
    /// The socket writes go to, when everything written before is on it.
    fn write_socket(&mut self) -> Option<&TcpStream>;
}

impl Sockets for TcpStream {
    fn read_socket(&mut self) -> Option<&TcpStream> {
        Some(self)
    }

    fn write_socket(&mut self) -> Option<&TcpStream> {
        Some(self)
    }
}

/// Streams that never are a socket to splice: they frame or encrypt what they carry.
macro_rules! never_a_socket {
    ($($ty:ty),+) => {$(
        impl crate::relay::Sockets for $ty {
            fn read_socket(&mut self) -> Option<&tokio::net::TcpStream> {
                None
            }

            fn write_socket(&mut self) -> Option<&tokio::net::TcpStream> {
                None
            }
        }
    )+};
}
pub(crate) use never_a_socket;

enum State {
    /// Through user space; the buffer only while bytes are in it.
    Copy {
        buf: Option<Box<[u8]>>,
        pos: usize,
        len: usize,
    },
    Splice(Pipe),
    Done,
}

/// One direction's copy.
struct Direction<'a> {
    state: State,
    moved: &'a Tally<'a>,
    /// Splicing is off for good (no pipe could be made).
    no_splice: bool,
}

/// When something last moved, in milliseconds since the relay started.
struct Activity<'a>(&'a AtomicU64, Instant);

impl Activity<'_> {
    fn touch(&self) {
        self.0
            .store(self.1.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl<'a> Direction<'a> {
    fn new(moved: &'a Tally<'a>) -> Self {
        Direction {
            state: State::Copy {
                buf: None,
                pos: 0,
                len: 0,
            },
            moved,
            no_splice: false,
        }
    }

    /// Moves bytes from `r` to `w` until `r` ends (`Ready(Ok)`) or something fails.
    fn poll<R, W>(
        &mut self,
        cx: &mut Context<'_>,
        r: &mut R,
        w: &mut W,
        activity: &Activity<'_>,
    ) -> Poll<std::io::Result<()>>
    where
        R: AsyncRead + Sockets + Unpin,
        W: AsyncWrite + Sockets + Unpin,
    {
        loop {
            match &mut self.state {
                State::Done => return Poll::Ready(Ok(())),
                State::Copy { buf, pos, len } if *pos < *len => {
                    let data = buf
                        .as_deref()
                        .and_then(|b| b.get(*pos..*len))
                        .unwrap_or_default();
                    let n = ready!(Pin::new(&mut *w).poll_write(cx, data))?;
                    if n == 0 {
                        return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                    }
                    *pos += n;
                    self.moved.add(n as u64);
                    activity.touch();
                    if *pos >= *len
                        && let Some(b) = buf.take()
                    {
                        bufpool::give(b);
                    }
                }
                State::Copy { buf, pos, len } => {
                    if !self.no_splice && r.read_socket().is_some() && w.write_socket().is_some() {
                        ready!(Pin::new(&mut *w).poll_flush(cx))?;
                        match Pipe::new() {
                            Ok(pipe) => {
                                tracing::debug!(after = self.moved.total(), "splicing");
                                self.state = State::Splice(pipe);
                            }
                            Err(e) => {
                                tracing::debug!("no splice ({e}): copying");
                                self.no_splice = true;
                            }
                        }
                        continue;
                    }
                    let b = buf.get_or_insert_with(bufpool::take);
                    let mut read = ReadBuf::new(b);
                    let n = match ready!(Pin::new(&mut *r).poll_read(cx, &mut read)) {
                        Ok(()) => read.filled().len(),
                        // A TLS peer gone without close_notify: its stream simply ended.
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
                        Err(e) => return Poll::Ready(Err(e)),
                    };
                    (*pos, *len) = (0, n);
                    if n == 0 {
                        if let Some(b) = buf.take() {
                            bufpool::give(b);
                        }
                        // Everything is delivered; a peer already gone cannot take the close.
                        let _ = ready!(Pin::new(&mut *w).poll_shutdown(cx));
                        self.state = State::Done;
                    } else {
                        activity.touch();
                    }
                }
                State::Splice(pipe) => {
                    let (Some(from), Some(to)) = (r.read_socket(), w.write_socket()) else {
                        return Poll::Ready(Err(std::io::Error::other("spliced socket went away")));
                    };
                    if pipe.held() > 0 {
                        let n = ready!(pipe.poll_drain(cx, to))?;
                        self.moved.add(n as u64);
                        activity.touch();
                    } else if ready!(pipe.poll_fill(cx, from))? == 0 {
                        let _ = shutdown_write(to);
                        self.state = State::Done;
                    } else {
                        activity.touch();
                    }
                }
            }
        }
    }
}

/// Relays `client` and `target` like [`super::relay`] (no prefix: the layers send
/// their own headers), splicing each direction once both of its ends are sockets.
pub async fn relay_direct<C, T>(
    mut client: C,
    mut target: T,
    timeouts: &Timeouts,
    meter: &Meter,
) -> (Traffic, Outcome)
where
    C: AsyncRead + AsyncWrite + Sockets + Unpin,
    T: AsyncRead + AsyncWrite + Sockets + Unpin,
{
    let last = AtomicU64::new(0);
    let activity = Activity(&last, Instant::now());
    let (up_tally, down_tally) = (Tally::new(meter, true), Tally::new(meter, false));
    let (mut up, mut down) = (Direction::new(&up_tally), Direction::new(&down_tally));
    let first = poll_fn(|cx| {
        if let Poll::Ready(r) = up.poll(cx, &mut client, &mut target, &activity) {
            return Poll::Ready((true, r));
        }
        down.poll(cx, &mut target, &mut client, &activity)
            .map(|r| (false, r))
    });
    let idle = watch_idle(&last, activity.1, timeouts.idle);
    let outcome = tokio::select! {
        (up_first, r) = first => match r {
            Err(_) => Outcome::Error,
            Ok(()) => {
                let (rest, timeout) = if up_first {
                    (&mut down, timeouts.downlink_only)
                } else {
                    (&mut up, timeouts.uplink_only)
                };
                let other = poll_fn(|cx| {
                    if up_first {
                        rest.poll(cx, &mut target, &mut client, &activity)
                    } else {
                        rest.poll(cx, &mut client, &mut target, &activity)
                    }
                });
                finish(other, &last, activity.1, timeout).await
            }
        },
        _ = idle => Outcome::Timeout,
    };
    let traffic = Traffic {
        up: up_tally.total(),
        down: down_tally.total(),
    };
    (traffic, outcome)
}

async fn finish(
    other: impl std::future::Future<Output = std::io::Result<()>>,
    last: &AtomicU64,
    start: Instant,
    timeout: Duration,
) -> Outcome {
    tokio::select! {
        r = other => if r.is_ok() { Outcome::Ok } else { Outcome::Error },
        _ = watch_idle(last, start, timeout) => Outcome::Timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A connected pair of loopback sockets.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap());
        let (near, far) = tokio::join!(near, listener.accept());
        (near.unwrap(), far.unwrap().0)
    }

    #[tokio::test]
    async fn two_sockets_are_spliced_both_ways_with_every_byte_counted() {
        let (mut user, client) = pair().await;
        let (target, mut server) = pair().await;
        let stats = std::sync::Arc::new(crate::stats::Stats::new(true));
        let meter = stats.meter(Some("u"), "in", "out");
        let relay = tokio::spawn(async move {
            relay_direct(client, target, &Timeouts::default(), &meter).await
        });
        let down: Vec<u8> = (0..5_000_000u32).map(|i| (i % 253) as u8).collect();
        let up = vec![7u8; 300_000];
        let (sent_down, sent_up) = (down.clone(), up.clone());
        let serve = tokio::spawn(async move {
            server.write_all(&sent_down).await.unwrap();
            server.shutdown().await.unwrap();
            let mut got = Vec::new();
            server.read_to_end(&mut got).await.unwrap();
            got
        });
        user.write_all(&sent_up).await.unwrap();
        user.shutdown().await.unwrap();
        let mut got = Vec::new();
        user.read_to_end(&mut got).await.unwrap();
        assert!(got == down, "the download arrived whole");
        assert!(serve.await.unwrap() == up, "the upload arrived whole");
        let (traffic, outcome) = relay.await.unwrap();
        assert_eq!(outcome, Outcome::Ok);
        assert_eq!((traffic.up, traffic.down), (300_000, 5_000_000));
        let counted = |name: &str| stats.get(name, false);
        assert_eq!(counted("user>>>u>>>traffic>>>uplink"), Some(300_000));
        assert_eq!(
            counted("outbound>>>out>>>traffic>>>downlink"),
            Some(5_000_000)
        );
    }

    #[tokio::test]
    async fn a_quiet_spliced_session_times_out() {
        let (_user, client) = pair().await;
        let (target, _server) = pair().await;
        let timeouts = Timeouts {
            idle: Duration::from_millis(100),
            ..Timeouts::default()
        };
        let meter = Meter::default();
        let ended = tokio::time::timeout(
            Duration::from_secs(10),
            relay_direct(client, target, &timeouts, &meter),
        );
        assert_eq!(
            ended.await.expect("the idle timeout ended it").1,
            Outcome::Timeout
        );
    }
}
