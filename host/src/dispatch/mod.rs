//! From an accepted session to its outbound: the sniff window, the plugin stages, the
//! dial, the replay of the held bytes, the relay and the access-log line. Inbounds
//! (VLESS, each Mux.Cool sub-stream, SOCKS5, HTTP) hand sessions here and do no
//! routing; `tcp` and `udp` hold the two session shapes.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::Timeouts;
use crate::outbound::{Outbound, Outbounds};
use crate::plugin::{Pipeline, Registry, SniffOutcome};
use crate::relay::{End, Traffic};
use crate::session::Snapshot;

mod tcp;
mod udp;

pub use tcp::{Reply, tcp_session};
pub use udp::udp_session;

/// What every session needs from the daemon.
#[derive(Clone)]
pub struct Context {
    pub registry: Arc<Registry>,
    pub outbounds: Arc<Outbounds>,
    pub timeouts: Timeouts,
}

/// How a session ended, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Blocked,
    Rejected,
    Fallback,
    Timeout,
    Error,
}

impl Outcome {
    /// How a session ends whose outbound could not be opened: blocked by a `block`
    /// outbound, or an error.
    pub fn of_failed_dial(e: &crate::outbound::OutboundError) -> Outcome {
        match e {
            crate::outbound::OutboundError::Blocked(_) => Outcome::Blocked,
            _ => Outcome::Error,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Blocked => "blocked",
            Outcome::Rejected => "rejected",
            Outcome::Fallback => "fallback",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
        }
    }
}

/// Runs the plugin stages on a session whose first payload bytes are in `held`,
/// reading more from `client` while sniffers ask for it (bounded in size and time).
pub async fn decide<S>(
    pipeline: &Pipeline,
    snapshot: &Snapshot,
    client: &mut S,
    held: &mut BytesMut,
) -> Result<Snapshot, Outcome>
where
    S: AsyncRead + Unpin,
{
    let sniffed = sniff_window(pipeline, snapshot, client, held).await?;
    pipeline.route(&sniffed).map_err(|_| Outcome::Blocked)
}

async fn sniff_window<S>(
    pipeline: &Pipeline,
    snapshot: &Snapshot,
    client: &mut S,
    held: &mut BytesMut,
) -> Result<Snapshot, Outcome>
where
    S: AsyncRead + Unpin,
{
    let want = pipeline.wants_payload();
    let mut state = pipeline.new_sniff_state();
    if want == 0 {
        return Ok(pipeline.finish_sniff(snapshot, &state));
    }
    let deadline = tokio::time::Instant::now() + pipeline.settings.sniff_window;
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
        match tokio::time::timeout_at(deadline, limited.read_buf(held)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return Err(Outcome::Error),
        }
    }
    Ok(pipeline.finish_sniff(snapshot, &state))
}

/// Routes a session that has no payload to sniff (UDP: VLESS command 2, XUDP, SOCKS5
/// UDP): the sniff stage sees nothing, the route stage decides, the outbound is picked.
/// A refused session is logged here and `None` returned.
pub fn route_without_payload<'a>(
    ctx: &'a Context,
    snapshot: &Snapshot,
    started: Instant,
) -> Option<(Snapshot, &'a Outbound)> {
    let pipeline = ctx.registry.pipeline();
    let routed = pipeline.finish_sniff(snapshot, &pipeline.new_sniff_state());
    let Ok(decided) = pipeline.route(&routed) else {
        access_log(
            snapshot,
            None,
            Traffic::default(),
            started,
            Outcome::Blocked,
        );
        return None;
    };
    let outbound = pick_outbound(ctx, &decided, started)?;
    Some((decided, outbound))
}

/// The outbound the route stage chose (or the default); on an unknown tag the session
/// is logged as an error and `None` returned.
pub fn pick_outbound<'a>(
    ctx: &'a Context,
    decided: &Snapshot,
    started: Instant,
) -> Option<&'a Outbound> {
    match ctx.outbounds.pick(decided.outbound.as_deref()) {
        Ok(o) => Some(o),
        Err(e) => {
            tracing::warn!("{e}");
            access_log(decided, None, Traffic::default(), started, Outcome::Error);
            None
        }
    }
}

pub fn end_outcome(end: End) -> Outcome {
    match end {
        End::Done => Outcome::Ok,
        End::Timeout => Outcome::Timeout,
        End::Error => Outcome::Error,
    }
}

/// A connection refused before it became a session (bad handshake, unknown user with
/// no fallback, timeout): one debug line with the reason, one access-log line.
pub fn log_rejected(
    inbound_tag: &str,
    peer: std::net::SocketAddr,
    started: Instant,
    why: &dyn std::fmt::Display,
) {
    tracing::debug!(%peer, "rejected: {why}");
    let target = crate::session::Target::new("-", 0);
    let snapshot = crate::session::SnapshotFields::new(
        inbound_tag,
        peer,
        crate::session::Network::Tcp,
        target,
    )
    .freeze();
    access_log(
        &snapshot,
        None,
        Traffic::default(),
        started,
        Outcome::Rejected,
    );
}

/// One line per session on the `access` target.
pub fn access_log(
    s: &Snapshot,
    outbound: Option<&str>,
    traffic: Traffic,
    started: Instant,
    outcome: Outcome,
) {
    LogFields::from(s).write(outbound, traffic, started, outcome);
}

/// What the access-log line needs of a session. A relay keeps this, not the decided
/// snapshot, whose attribute map (a persistent map node of about a kilobyte once a
/// sniffer has written headers) would otherwise live as long as the connection.
pub struct LogFields {
    source: std::net::SocketAddr,
    user: Option<Arc<str>>,
    network: crate::session::Network,
    target: crate::session::Target,
    sniffed: Option<Arc<str>>,
    protocol: Option<Arc<str>>,
}

impl From<&Snapshot> for LogFields {
    fn from(s: &Snapshot) -> Self {
        LogFields {
            source: s.source,
            user: s.user.clone(),
            network: s.network,
            target: s.target.clone(),
            sniffed: s.sniffed_domain.clone(),
            protocol: s.protocol.clone(),
        }
    }
}

impl LogFields {
    pub fn write(
        &self,
        outbound: Option<&str>,
        traffic: Traffic,
        started: Instant,
        outcome: Outcome,
    ) {
        tracing::info!(
            target: crate::logging::ACCESS_TARGET,
            source = %self.source,
            user = self.user.as_deref().unwrap_or("-"),
            network = %self.network,
            target = %self.target,
            sniffed = self.sniffed.as_deref().unwrap_or("-"),
            protocol = self.protocol.as_deref().unwrap_or("-"),
            outbound = outbound.unwrap_or("-"),
            up = traffic.up,
            down = traffic.down,
            ms = started.elapsed().as_millis() as u64,
            result = outcome.as_str(),
        );
    }
}
