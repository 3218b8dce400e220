//! From an accepted session to its outbound: the sniff window, the plugin stages, the
//! dial, the replay of the held bytes, the relay and the access-log line. Inbounds
//! (VLESS, and each Mux.Cool sub-stream) hand sessions here and do no routing.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::{OutboundKind, Timeouts};
use crate::outbound::{Outbound, Outbounds, connect_tcp};
use crate::plugin::{Pipeline, Registry, SniffOutcome};
use crate::relay::{End, Traffic, relay};
use crate::session::Snapshot;

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

/// A TCP session: decide, dial, replay the held bytes, relay. `prefix` goes to the
/// client with the first downlink bytes (the VLESS response header).
pub async fn tcp_session<S>(
    ctx: &Context,
    snapshot: Snapshot,
    mut client: S,
    mut held: BytesMut,
    prefix: &[u8],
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let pipeline = ctx.registry.pipeline();
    let decided = match decide(&pipeline, &snapshot, &mut client, &mut held).await {
        Ok(s) => s,
        Err(outcome) => return access_log(&snapshot, None, Traffic::default(), started, outcome),
    };
    let Some(outbound) = pick_outbound(ctx, &decided, started) else {
        return;
    };
    if matches!(outbound.kind, OutboundKind::Block) {
        return access_log(
            &decided,
            Some(&outbound.tag),
            Traffic::default(),
            started,
            Outcome::Blocked,
        );
    }
    let (traffic, outcome) =
        match dial_and_relay(outbound, &decided, client, held, prefix, &ctx.timeouts).await {
            Ok((t, end)) => (t, end_outcome(end)),
            Err(e) => {
                tracing::debug!("{e}");
                (Traffic::default(), Outcome::Error)
            }
        };
    access_log(&decided, Some(&outbound.tag), traffic, started, outcome);
}

async fn dial_and_relay<S>(
    outbound: &Outbound,
    decided: &Snapshot,
    client: S,
    held: BytesMut,
    prefix: &[u8],
    timeouts: &Timeouts,
) -> anyhow::Result<(Traffic, End)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut traffic, end) = match (&outbound.kind, &outbound.tls) {
        (OutboundKind::Vless(cfg), Some(tls)) => {
            let target =
                crate::outbound::vless::connect(cfg, tls, &decided.dial_target, &held).await?;
            relay(client, target, prefix, timeouts).await
        }
        (OutboundKind::Direct { connect_timeout }, _) => {
            let mut target = connect_tcp(&decided.dial_target, *connect_timeout).await?;
            target.write_all(&held).await?;
            relay(client, target, prefix, timeouts).await
        }
        _ => anyhow::bail!("outbound {} cannot carry TCP", outbound.tag),
    };
    traffic.up += held.len() as u64;
    Ok((traffic, end))
}

/// A UDP session (VLESS command 2): route (no sniffing for UDP yet), then relay
/// length-framed datagrams through a UDP socket to the target.
pub async fn udp_session<S>(
    ctx: &Context,
    snapshot: Snapshot,
    client: S,
    held: BytesMut,
    prefix: &[u8],
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let pipeline = ctx.registry.pipeline();
    let routed = pipeline.finish_sniff(&snapshot, &pipeline.new_sniff_state());
    let decided = match pipeline.route(&routed) {
        Ok(s) => s,
        Err(_) => {
            return access_log(
                &snapshot,
                None,
                Traffic::default(),
                started,
                Outcome::Blocked,
            );
        }
    };
    let Some(outbound) = pick_outbound(ctx, &decided, started) else {
        return;
    };
    if !matches!(outbound.kind, OutboundKind::Direct { .. }) {
        // Only direct carries UDP for now (not block, not yet vless).
        return access_log(
            &decided,
            Some(&outbound.tag),
            Traffic::default(),
            started,
            Outcome::Blocked,
        );
    }
    let result = async {
        let addr = *crate::outbound::resolve(&decided.dial_target)
            .await?
            .first()
            .ok_or_else(|| anyhow::anyhow!("{} has no address", decided.dial_target))?;
        let socket = crate::outbound::udp_socket(&addr).await?;
        socket.connect(addr).await?;
        Ok::<_, anyhow::Error>(
            crate::udp_relay::relay_udp(client, held, socket, prefix, ctx.timeouts.idle).await?,
        )
    };
    let (traffic, outcome) = match result.await {
        Ok(t) => (t, Outcome::Ok),
        Err(e) => {
            tracing::debug!("udp: {e:#}");
            (Traffic::default(), Outcome::Error)
        }
    };
    access_log(&decided, Some(&outbound.tag), traffic, started, outcome);
}

/// The outbound the route stage chose (or the default); on an unknown tag the session
/// is logged as an error and `None` returned.
fn pick_outbound<'a>(
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

fn end_outcome(end: End) -> Outcome {
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
    tracing::info!(
        target: "access",
        source = %s.source,
        user = s.user.as_deref().unwrap_or("-"),
        network = %s.network,
        target = %s.target,
        sniffed = s.sniffed_domain.as_deref().unwrap_or("-"),
        protocol = s.protocol.as_deref().unwrap_or("-"),
        outbound = outbound.unwrap_or("-"),
        up = traffic.up,
        down = traffic.down,
        ms = started.elapsed().as_millis() as u64,
        result = outcome.as_str(),
    );
}
