//! The HTTP proxy inbound: `CONNECT host:port` tunnels and plain requests with an
//! absolute URI (`GET http://host/path`), as browsers and curl send them to a proxy.
//!
//! - CONNECT becomes a TCP session like a SOCKS5 CONNECT: `200 Connection
//!   established` is answered before the sniff window when the pipeline sniffs (the
//!   client sends nothing until then), otherwise after the outbound is connected, and a
//!   failure then gets 403 (blocked), 502 (refused, unreachable) or 504 (timed out).
//! - A plain request is a session of its own, routed by its own target and sniffed on
//!   its own head: it goes out in origin form on a fresh upstream connection (as v2ray
//!   does), hop-by-hop headers removed, the body passed through as framed
//!   (Content-Length or chunked), and the response passed back the same way. The
//!   client connection is kept for the next request when both sides allow it.
//!   Failures before the response get an error page with the status above.
//!
//! Not supported: `Upgrade` through a plain request (WebSocket clients use CONNECT).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Timeouts;
use crate::dispatch::{Dispatcher, Rejection, Reply, SessionLog};
use crate::framed::{FrameError, Limits, read_frame};
use crate::outbound::Upstream;
use crate::proto::http1::{
    BodyFraming, BodyReader, CONNECT_OK, HttpError, MAX_HEAD, RequestHead, RequestTarget,
    ResponseHead, error_response,
};
use crate::relay::Traffic;
use crate::session::{Failure, Network, Outcome, SnapshotFields, Target};

/// What is buffered before giving up on a head: past the codec's own limit
/// (`MAX_HEAD`), so that its error, with its status, is the one reported.
const HEAD_LIMIT: usize = 2 * MAX_HEAD;

pub struct HttpServer {
    pub tag: Arc<str>,
    pub timeouts: Timeouts,
    /// Connections served at once (the accept loop's permits).
    pub max_connections: usize,
    pub dispatcher: Dispatcher,
}

#[derive(Debug, thiserror::Error)]
enum ProxyError {
    #[error("{0}")]
    Http(#[from] HttpError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("closed before the message ended")]
    Truncated,
    #[error("timed out")]
    Timeout,
    #[error("message head longer than {0} bytes")]
    TooLong(usize),
}

impl From<FrameError<HttpError>> for ProxyError {
    fn from(e: FrameError<HttpError>) -> Self {
        match e {
            FrameError::Invalid(e) => ProxyError::Http(e),
            FrameError::Io(e) => ProxyError::Io(e),
            FrameError::Closed | FrameError::Truncated(_) => ProxyError::Truncated,
            FrameError::TooLong(n) => ProxyError::TooLong(n),
            FrameError::TimedOut => ProxyError::Timeout,
        }
    }
}

fn failure_status(failure: Failure) -> (u16, &'static str) {
    match failure {
        Failure::Blocked => (403, "Forbidden"),
        Failure::TimedOut => (504, "Gateway Timeout"),
        Failure::UnknownHost | Failure::Refused | Failure::Unreachable | Failure::Other => {
            (502, "Bad Gateway")
        }
    }
}

fn failure_page(failure: Failure) -> Vec<u8> {
    let (status, reason) = failure_status(failure);
    error_response(status, reason)
}

impl HttpServer {
    pub async fn serve(self: Arc<Self>, mut tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let mut buf = BytesMut::with_capacity(4096);
        let mut wait = self.timeouts.handshake;
        loop {
            let started = Instant::now();
            let head = match read_head(&mut tcp, &mut buf, wait).await {
                Ok(Some(head)) => head,
                Ok(None) => return,
                Err(e) => return self.refuse(&mut tcp, peer, started, e).await,
            };
            let target = match &head.target {
                RequestTarget::Authority { host, port } => {
                    let target = Target::new(host.as_str(), *port);
                    return self.connect(tcp, peer, target, buf).await;
                }
                RequestTarget::Absolute { host, port, .. } => Target::new(host.as_str(), *port),
            };
            match self.forward(&mut tcp, peer, target, &head, &mut buf).await {
                Ok(true) => wait = self.timeouts.idle,
                Ok(false) => return,
                Err(e) => return tracing::debug!(%peer, "http proxy: {e}"),
            }
        }
    }

    async fn refuse(&self, tcp: &mut TcpStream, peer: SocketAddr, started: Instant, e: ProxyError) {
        if let ProxyError::Http(e) = &e {
            let _ = tcp
                .write_all(&error_response(e.status(), &e.to_string()))
                .await;
        }
        let reason = match &e {
            ProxyError::Timeout => "timeout",
            ProxyError::Io(_) | ProxyError::Truncated => "io",
            ProxyError::Http(_) | ProxyError::TooLong(_) => "protocol",
        };
        let rejection = Rejection {
            metrics: &self.dispatcher.metrics,
            inbound: &self.tag,
            peer,
            started,
            reason,
        };
        SessionLog::rejected(rejection, &e);
    }

    /// CONNECT: the rest of the connection is one TCP session.
    async fn connect(&self, tcp: TcpStream, peer: SocketAddr, target: Target, held: BytesMut) {
        let snapshot = SnapshotFields::new(&self.tag, peer, Network::Tcp, target).freeze();
        let reply = Reply {
            success: CONNECT_OK,
            client_waits: true,
            failure: failure_page,
        };
        self.dispatcher.tcp(snapshot, tcp, held, &reply).await;
    }

    /// One plain request and its response; returns whether the client connection
    /// may carry another request.
    async fn forward(
        &self,
        tcp: &mut TcpStream,
        peer: SocketAddr,
        target: Target,
        head: &RequestHead,
        buf: &mut BytesMut,
    ) -> Result<bool, ProxyError> {
        let request_body = head.body()?;
        let snapshot = SnapshotFields::new(&self.tag, peer, Network::Tcp, target).freeze();
        let mut log = SessionLog::start(&snapshot, &self.dispatcher.metrics);
        let mut first = BytesMut::new();
        head.encode_origin(&mut first);
        // The sniffers see this request's head only: the body is framed, not sniffed.
        let upstream = match self.dispatcher.open(&snapshot, &mut first, &mut log).await {
            Ok(u) => u,
            Err(failure) => {
                tcp.write_all(&failure_page(failure)).await?;
                return Ok(false);
            }
        };
        let exchange = Exchange {
            idle: self.timeouts.idle,
            method: &head.method,
        };
        let result = exchange.run(tcp, upstream, buf, request_body).await;
        let (mut traffic, keep) = match result {
            Ok((t, keep)) => {
                log.end(Outcome::Ok);
                (t, keep && head.keep_alive())
            }
            Err((t, e)) => {
                tracing::debug!(%peer, "http proxy: {e}");
                (t, false)
            }
        };
        traffic.up += first.len() as u64;
        log.traffic_at_end(traffic);
        Ok(keep)
    }
}

/// Reads one request head; `None` when the client closed (or went quiet) between
/// requests.
async fn read_head(
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
    wait: Duration,
) -> Result<Option<RequestHead>, ProxyError> {
    let limits = Limits::new(HEAD_LIMIT).until(tokio::time::Instant::now() + wait);
    match read_frame(tcp, buf, limits, RequestHead::decode).await {
        Ok(head) => Ok(Some(head)),
        Err(FrameError::Closed) => Ok(None),
        Err(FrameError::TimedOut) if buf.is_empty() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The request body up and the response down, at once (a server may answer before
/// the upload ends, or send `100 Continue` first).
struct Exchange<'a> {
    idle: Duration,
    method: &'a str,
}

type Failed = (Traffic, ProxyError);

impl Exchange<'_> {
    async fn run(
        &self,
        tcp: &mut TcpStream,
        upstream: Upstream,
        buf: &mut BytesMut,
        request_body: BodyFraming,
    ) -> Result<(Traffic, bool), Failed> {
        let (mut client_r, mut client_w) = tcp.split();
        let (mut up_r, mut up_w) = tokio::io::split(upstream);
        let upload = pass_body(&mut client_r, &mut up_w, buf, request_body, self.idle);
        let download = self.response(&mut up_r, &mut client_w);
        let (up, down) = tokio::join!(upload, download);
        let mut traffic = Traffic::default();
        if let Ok(n) = &up {
            traffic.up = *n;
        }
        let keep = match down {
            Ok((n, keep)) => {
                traffic.down = n;
                keep
            }
            Err(e) => return Err((traffic, e)),
        };
        match up {
            Ok(_) => Ok((traffic, keep)),
            Err(e) => Err((traffic, e)),
        }
    }

    /// Passes interim responses, then the final head and its body; returns the bytes
    /// sent and whether the client connection can be reused.
    async fn response<R, W>(
        &self,
        upstream: &mut R,
        client: &mut W,
    ) -> Result<(u64, bool), ProxyError>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let mut buf = BytesMut::with_capacity(8192);
        let mut sent = 0u64;
        let mut out = BytesMut::new();
        loop {
            let limits = Limits::new(HEAD_LIMIT).until(tokio::time::Instant::now() + self.idle);
            let head = read_frame(upstream, &mut buf, limits, ResponseHead::decode).await?;
            let framing = head.body(self.method)?;
            let keep = !matches!(framing, BodyFraming::UntilClose) && !head.is_interim();
            out.clear();
            head.encode_for_client(keep || head.is_interim(), &mut out);
            client.write_all(&out).await?;
            sent += out.len() as u64;
            if head.is_interim() {
                continue;
            }
            sent += pass_body(upstream, client, &mut buf, framing, self.idle).await?;
            client.flush().await?;
            return Ok((sent, keep));
        }
    }
}

/// Copies one framed body from `from` (starting with what `buf` holds) to `to`, and
/// leaves any bytes after it in `buf`. Returns the bytes copied.
async fn pass_body<R, W>(
    from: &mut R,
    to: &mut W,
    buf: &mut BytesMut,
    framing: BodyFraming,
    idle: Duration,
) -> Result<u64, ProxyError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut body = BodyReader::new(framing);
    let mut copied = 0u64;
    while !body.is_done() {
        if !buf.is_empty() {
            let progress = body.advance(buf)?;
            let chunk = buf.split_to(progress.used.min(buf.len()));
            to.write_all(&chunk).await?;
            copied += chunk.len() as u64;
            if progress.done {
                break;
            }
            if progress.used > 0 && !buf.is_empty() {
                continue;
            }
        }
        if read_some(from, buf, idle).await? == 0 {
            body.finish_at_eof().map_err(|_| ProxyError::Truncated)?;
            break;
        }
    }
    to.flush().await?;
    Ok(copied)
}

async fn read_some<R: AsyncRead + Unpin>(
    from: &mut R,
    buf: &mut BytesMut,
    idle: Duration,
) -> Result<usize, ProxyError> {
    buf.reserve(crate::relay::BUF_SIZE);
    match tokio::time::timeout(idle, from.read_buf(buf)).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(ProxyError::Timeout),
    }
}
