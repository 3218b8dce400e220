//! A TCP session: the inbound's handshake answer, decide, connect, replay the held
//! bytes, relay, log.
//!
//! When the answer goes out depends on the inbound. A VLESS client sends its payload
//! with the header and takes the response header glued to the first downlink bytes.
//! A SOCKS5 or HTTP CONNECT client sends nothing before it is answered, so when the
//! pipeline wants payload to sniff, success is answered first (as Xray does, and as
//! sing-box does when it sniffs); otherwise the outbound is connected first and a
//! failure gets its proper code (refused, unreachable, blocked).

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Context, LogFields, Outcome, access_log, decide, end_outcome, pick_outbound};
use crate::outbound::{Failure, Upstream};
use crate::relay::{Traffic, relay};
use crate::session::Snapshot;

/// What an inbound owes its client once a session's fate is known.
pub struct Reply<'a> {
    /// Sent ahead of the first downlink byte once the session goes ahead.
    pub success: &'a [u8],
    /// The client sends nothing until it has `success` (SOCKS5, HTTP CONNECT).
    pub client_waits: bool,
    /// The answer to a session that could not be connected (empty: just close).
    pub failure: fn(Failure) -> Vec<u8>,
}

fn no_answer(_: Failure) -> Vec<u8> {
    Vec::new()
}

impl<'a> Reply<'a> {
    /// A header glued to the first downlink bytes; a failure just closes (VLESS).
    pub const fn prefix(success: &'a [u8]) -> Self {
        Reply {
            success,
            client_waits: false,
            failure: no_answer,
        }
    }
}

/// Serves one TCP session whose first payload bytes (if any) are in `held`.
///
/// The setup (answer, sniff window, routing, dial) runs in its own boxed future that
/// is freed once the session is connected: a task's size is the largest state it
/// ever has, and the relay, where a session spends its life, needs far less than a
/// TLS dial in flight.
pub async fn tcp_session<S>(
    ctx: &Context,
    snapshot: Snapshot,
    client: S,
    held: BytesMut,
    reply: &Reply<'_>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let setup = Box::pin(connect(ctx, snapshot, client, held, reply, started)).await;
    let Some(c) = setup else { return };
    let (mut traffic, end) = relay(c.client, c.upstream, c.prefix, &ctx.timeouts).await;
    traffic.up += c.replayed;
    c.log
        .write(Some(&c.tag), traffic, started, end_outcome(end));
}

/// A session ready to relay.
struct Connected<'a, S> {
    /// Inbounds pass large streams boxed (a TLS stream is over a kilobyte).
    client: S,
    upstream: Upstream,
    /// What still goes to the client ahead of the first downlink byte.
    prefix: &'a [u8],
    log: LogFields,
    tag: Arc<str>,
    /// Held bytes already sent to the upstream.
    replayed: u64,
}

/// Answers, decides and dials; a session that goes no further is answered and logged
/// here.
async fn connect<'a, S>(
    ctx: &Context,
    snapshot: Snapshot,
    mut client: S,
    mut held: BytesMut,
    reply: &Reply<'a>,
    started: Instant,
) -> Option<Connected<'a, S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let pipeline = ctx.registry.pipeline();
    let early = reply.client_waits && pipeline.wants_payload() > 0;
    if early && client.write_all(reply.success).await.is_err() {
        access_log(&snapshot, None, Traffic::default(), started, Outcome::Error);
        return None;
    }
    let answer_failure = async |client: &mut S, failure| {
        if !early {
            let _ = client.write_all(&(reply.failure)(failure)).await;
        }
    };
    let decided = match decide(&pipeline, &snapshot, &mut client, &mut held).await {
        Ok(s) => s,
        Err(outcome) => {
            answer_failure(&mut client, Failure::Blocked).await;
            access_log(&snapshot, None, Traffic::default(), started, outcome);
            return None;
        }
    };
    let Some(outbound) = pick_outbound(ctx, &decided, started) else {
        answer_failure(&mut client, Failure::Other).await;
        return None;
    };
    let tag = outbound.tag.clone();
    let upstream = match outbound.connect(&decided.dial_target, &held).await {
        Ok(u) => u,
        Err(e) => {
            tracing::debug!("{e}");
            answer_failure(&mut client, e.failure()).await;
            let outcome = Outcome::of_failed_dial(&e);
            access_log(&decided, Some(&tag), Traffic::default(), started, outcome);
            return None;
        }
    };
    let prefix = match (early, reply.client_waits) {
        (true, _) => &[][..],
        (false, true) => {
            if client.write_all(reply.success).await.is_err() {
                access_log(
                    &decided,
                    Some(&tag),
                    Traffic::default(),
                    started,
                    Outcome::Error,
                );
                return None;
            }
            &[][..]
        }
        (false, false) => reply.success,
    };
    Some(Connected {
        client,
        upstream,
        prefix,
        log: LogFields::from(&decided),
        tag,
        replayed: held.len() as u64,
    })
}
