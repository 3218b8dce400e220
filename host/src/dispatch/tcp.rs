//! A TCP session: the inbound's handshake answer, routing, the dial, the replay of the
//! held bytes, the relay.
//!
//! When the answer goes out depends on the inbound. A VLESS client sends its payload
//! with the header and takes the response header glued to the first downlink bytes.
//! A SOCKS5 or HTTP CONNECT client sends nothing before it is answered, so when the
//! pipeline wants payload to sniff, success is answered first (as Xray does, and as
//! sing-box does when it sniffs); otherwise the outbound is connected first and a
//! failure gets its proper code (refused, unreachable, blocked).

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Dispatcher, SessionLog};
use crate::outbound::Upstream;
use crate::relay::{Sockets, relay, relay_direct};
use crate::session::{Failure, Outcome, Snapshot};

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

/// A session ready to relay.
struct Connected<'a, S> {
    client: S,
    upstream: Upstream,
    /// What still goes to the client ahead of the first downlink byte.
    prefix: &'a [u8],
    /// Held bytes already sent to the upstream.
    replayed: u64,
}

impl Dispatcher {
    /// Serves one TCP session whose first payload bytes (if any) are in `held`.
    ///
    /// The setup (answer, sniff window, routing, dial) runs in its own boxed future
    /// that is freed once the session is connected: a task's size is the largest state
    /// it ever has, and the relay, where a session spends its life, needs far less
    /// than a TLS dial in flight.
    ///
    /// Where an end may turn into a plain socket part-way (Vision), the relay is the one
    /// that splices each direction once both of its ends are sockets.
    pub async fn tcp<S>(&self, snapshot: Snapshot, client: S, held: BytesMut, reply: &Reply<'_>)
    where
        S: AsyncRead + AsyncWrite + Sockets + Unpin,
    {
        let mut log = SessionLog::start(&snapshot, &self.metrics);
        let setup = Box::pin(self.connect(snapshot, client, held, reply, &mut log)).await;
        let Some(c) = setup else { return };
        let spliceable = c.client.switches() || c.upstream.switches();
        // The held bytes went out with the dial, before the relay counted anything.
        log.meter().up(c.replayed);
        let meter = log.meter();
        let (mut traffic, outcome) = if spliceable && c.prefix.is_empty() {
            relay_direct(c.client, c.upstream, &self.timeouts, meter).await
        } else {
            relay(c.client, c.upstream, c.prefix, &self.timeouts, meter).await
        };
        traffic.up += c.replayed;
        log.traffic(traffic);
        log.end(outcome);
    }

    /// Routes a session whose whole first message is `first` (sniffers see only it)
    /// and connects it, sending `first` ahead: for inbounds that frame each session
    /// themselves (the HTTP proxy's plain requests). The caller relays and ends `log`.
    pub async fn open(
        &self,
        snapshot: &Snapshot,
        first: &mut BytesMut,
        log: &mut SessionLog,
    ) -> Result<Upstream, Failure> {
        let mut nothing = tokio::io::empty();
        let (decided, outbound) = self.route(snapshot, &mut nothing, first, log).await?;
        dial(outbound, &decided, first, log).await
    }

    /// Answers, routes and dials; a session that goes no further is answered here.
    async fn connect<'a, S>(
        &self,
        snapshot: Snapshot,
        mut client: S,
        mut held: BytesMut,
        reply: &Reply<'a>,
        log: &mut SessionLog,
    ) -> Option<Connected<'a, S>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let early = reply.client_waits && self.registry.pipeline().wants_payload() > 0;
        if early && client.write_all(reply.success).await.is_err() {
            return None;
        }
        let routed = self.route(&snapshot, &mut client, &mut held, log).await;
        let dialed = match routed {
            Ok((decided, outbound)) => dial(outbound, &decided, &held, log).await,
            Err(failure) => Err(failure),
        };
        let upstream = match dialed {
            Ok(u) => u,
            Err(failure) => {
                if !early {
                    let _ = client.write_all(&(reply.failure)(failure)).await;
                }
                return None;
            }
        };
        let prefix = match (early, reply.client_waits) {
            (true, _) => &[][..],
            (false, true) => {
                if client.write_all(reply.success).await.is_err() {
                    log.end(Outcome::Error);
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
            replayed: held.len() as u64,
        })
    }
}

/// Connects the decided session, `first` going out ahead of everything else.
async fn dial(
    outbound: &crate::outbound::Outbound,
    decided: &Snapshot,
    first: &[u8],
    log: &mut SessionLog,
) -> Result<Upstream, Failure> {
    match outbound.connect(&decided.dial_target, first).await {
        Ok(u) => Ok(u),
        Err(e) => {
            tracing::debug!("{e}");
            let failure = e.failure();
            log.end(failure.outcome());
            Err(failure)
        }
    }
}
