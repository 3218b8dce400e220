//! The one way into a session. Every inbound (VLESS, SOCKS5, HTTP), every Mux.Cool
//! sub-stream, SOCKS5 UDP and XUDP hand their sessions to a [`Dispatcher`], which owns
//! everything from there: the sniff window, the plugin stages, the outbound, the dial,
//! the replay of held bytes, the relay and the access-log line. Inbounds do no
//! routing, and the line is written by one [`SessionLog`] when the session drops,
//! whichever way it ended.
//!
//! `tcp` and `udp` hold the two session shapes.

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::{OutboundKind, Timeouts};
use crate::dns;
use crate::metrics::Metrics;
use crate::mux::{MuxStream, SubPackets, SubSessions};
use crate::outbound::{Outbound, Outbounds};
use crate::plugin::{Blocked, Pipeline, Registry, SniffOutcome};
use crate::session::{Failure, Outcome, Snapshot};
use crate::stats::Stats;

mod log;
mod resolved;
mod tcp;
mod udp;

pub use log::{Rejection, SessionLog};
pub use tcp::Reply;
pub use udp::{ClientPackets, FramedPackets};

/// What every session needs from the daemon: the plugins, the outbounds, the
/// counters and the timeouts of the inbound it came through.
#[derive(Clone)]
pub struct Dispatcher {
    pub registry: Arc<Registry>,
    pub outbounds: Arc<Outbounds>,
    pub stats: Arc<Stats>,
    pub metrics: Arc<Metrics>,
    pub timeouts: Timeouts,
    /// `[dns]`, for route plugins that ask for a name's addresses.
    pub resolver: dns::Resolver,
}

impl Dispatcher {
    /// Runs the plugin stages on a session whose first payload bytes are in `held`,
    /// reading more from `client` while sniffers ask for it (bounded in size and
    /// time), and picks the outbound. A refused session gets its outcome on `log`.
    async fn route<S>(
        &self,
        snapshot: &Snapshot,
        client: &mut S,
        held: &mut BytesMut,
        log: &mut SessionLog,
    ) -> Result<(Snapshot, &Outbound), Failure>
    where
        S: AsyncRead + Unpin,
    {
        let pipeline = self.registry.pipeline();
        let window = sniff_window(&pipeline, snapshot, client, held, &self.metrics);
        let sniffed = match window.await {
            Ok(s) => s,
            Err(outcome) => {
                log.end(outcome);
                return Err(Failure::Blocked);
            }
        };
        let Ok((decided, answer)) = self.decide(&pipeline, &sniffed).await else {
            log.end(Outcome::Blocked);
            return Err(Failure::Blocked);
        };
        log.decided(&decided);
        match self.outbounds.pick(decided.outbound.as_deref()) {
            Ok(outbound) => {
                let decided = match (&outbound.kind, answer) {
                    (OutboundKind::Direct { .. }, Some((name, ips))) => {
                        resolved::dial_answer(decided, &name, &ips)
                    }
                    _ => decided,
                };
                log.outbound(&outbound.tag);
                let user = decided.user.as_deref();
                log.count_on(
                    self.stats.meter(user, &decided.inbound_tag, &outbound.tag),
                    self.stats.online(user, decided.source.ip()),
                );
                Ok((decided, outbound))
            }
            Err(e) => {
                tracing::warn!("{e}");
                log.end(Outcome::Error);
                Err(Failure::Other)
            }
        }
    }
}

/// A name the route stage asked about, and what the resolver answered.
type Answer = (String, Vec<std::net::IpAddr>);

impl Dispatcher {
    /// The route stage's decision on `sniffed`: once, or twice when a route plugin
    /// asked for a name's addresses first (then with the answer beside it).
    async fn decide(
        &self,
        pipeline: &Pipeline,
        sniffed: &Snapshot,
    ) -> Result<(Snapshot, Option<Answer>), Blocked> {
        let decided = pipeline.route(sniffed)?;
        let Some(name) = decided.attr(dns::RESOLVE_ATTRIBUTE) else {
            return Ok((decided, None));
        };
        let name = name.to_string();
        let ips = self.lookup(&name).await;
        let decided = pipeline.route(&resolved::with_answer(sniffed, &name, &ips))?;
        Ok((decided, Some((name, ips))))
    }

    /// The answer for a name a route plugin asked about; empty when there is none in
    /// time (routing goes on without addresses, as Xray's does).
    async fn lookup(&self, name: &str) -> Vec<std::net::IpAddr> {
        let result = self.resolver.resolve(name).await;
        self.metrics.dns_looked_up(match &result {
            Ok(_) => "ok",
            Err(dns::DnsError::Timeout { .. }) => "timeout",
            Err(_) => "failed",
        });
        result.unwrap_or_else(|e| {
            tracing::debug!("dns: {e}");
            Vec::new()
        })
    }
}

async fn sniff_window<S>(
    pipeline: &Pipeline,
    snapshot: &Snapshot,
    client: &mut S,
    held: &mut BytesMut,
    metrics: &Metrics,
) -> Result<Snapshot, Outcome>
where
    S: AsyncRead + Unpin,
{
    let want = pipeline.wants_payload();
    let mut state = pipeline.new_sniff_state();
    if want == 0 {
        return Ok(pipeline.finish_sniff(snapshot, &state));
    }
    let opened = tokio::time::Instant::now();
    let deadline = opened + pipeline.settings.sniff_window;
    let mut waited = false;
    let mut expired = false;
    loop {
        if !held.is_empty() {
            let outcome = pipeline
                .sniff(snapshot, held, &mut state)
                .map_err(|_| Outcome::Blocked)?;
            if outcome == SniffOutcome::Done {
                break;
            }
        }
        let room = want.saturating_sub(held.len());
        if room == 0 {
            break;
        }
        held.reserve(room.min(crate::relay::BUF_SIZE));
        let mut limited = AsyncReadExt::take(&mut *client, room as u64);
        waited = true;
        match tokio::time::timeout_at(deadline, limited.read_buf(held)).await {
            Ok(Ok(0)) => break,
            Err(_) => {
                expired = true;
                break;
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(Outcome::Error),
        }
    }
    if waited {
        metrics.sniff_waited(opened.elapsed().as_secs_f64(), expired);
    }
    Ok(pipeline.finish_sniff(snapshot, &state))
}

/// Mux.Cool sub-streams are sessions like any other.
impl SubSessions for Dispatcher {
    fn serve_tcp(&self, snapshot: Snapshot, stream: MuxStream) -> impl Future<Output = ()> + Send {
        let dispatcher = self.clone();
        async move {
            let reply = Reply::prefix(&[]);
            dispatcher
                .tcp(snapshot, stream, BytesMut::new(), &reply)
                .await
        }
    }

    fn serve_udp(
        &self,
        snapshot: Snapshot,
        packets: SubPackets,
    ) -> impl Future<Output = ()> + Send {
        let dispatcher = self.clone();
        async move { dispatcher.udp(snapshot, packets).await }
    }
}
