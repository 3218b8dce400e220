//! The access log: one line per session on the `access` target, written by the
//! session's [`SessionLog`] when it drops. A session that is cut off (its Mux.Cool
//! tunnel broke, its task was aborted, a user was revoked) still gets its line, with
//! result `error` unless it had ended otherwise before.
//!
//! The log also holds the session's [`Meter`], its place in the online map and the
//! open-sessions gauge, so they live exactly as long as the session; its drop counts
//! the session's end on the metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use crate::metrics::{Held, Metrics, SessionEnd};
use crate::relay::Traffic;
use crate::session::{Network, Outcome, Snapshot, SnapshotFields, Target};
use crate::stats::{Meter, OnlineGuard};

/// A session's access-log line in the making.
///
/// It keeps what the line needs, not the decided snapshot, whose attribute map (a
/// persistent map node of about a kilobyte once a sniffer has written headers) would
/// otherwise live as long as the connection.
pub struct SessionLog {
    metrics: Arc<Metrics>,
    inbound: Arc<str>,
    source: SocketAddr,
    user: Option<Arc<str>>,
    network: Network,
    target: Target,
    sniffed: Option<Arc<str>>,
    protocol: Option<Arc<str>>,
    outbound: Option<Arc<str>>,
    traffic: Traffic,
    started: Instant,
    outcome: Outcome,
    meter: Meter,
    _online: Option<OnlineGuard>,
    _open: Held,
}

impl SessionLog {
    /// A session that starts now.
    pub fn start(snapshot: &Snapshot, metrics: &Arc<Metrics>) -> Self {
        Self::start_at(snapshot, Instant::now(), metrics)
    }

    /// A session that started at `started` (its connection's accept).
    pub fn start_at(s: &Snapshot, started: Instant, metrics: &Arc<Metrics>) -> Self {
        SessionLog {
            _open: metrics.session_open(&s.inbound_tag),
            metrics: Arc::clone(metrics),
            inbound: s.inbound_tag.clone(),
            source: s.source,
            user: s.user.clone(),
            network: s.network,
            target: s.target.clone(),
            sniffed: s.sniffed_domain.clone(),
            protocol: s.protocol.clone(),
            outbound: None,
            traffic: Traffic::default(),
            started,
            outcome: Outcome::Error,
            meter: Meter::default(),
            _online: None,
        }
    }

    /// A connection refused before it became a session (bad handshake, unknown user
    /// with no fallback, timeout): one debug line with the reason, one access line,
    /// and a handshake failure of kind `reason` on the metrics.
    pub fn rejected(rejection: Rejection<'_>, why: &dyn std::fmt::Display) {
        let Rejection {
            metrics,
            inbound,
            peer,
            started,
            reason,
        } = rejection;
        tracing::debug!(%peer, "rejected: {why}");
        metrics.handshake_failed(inbound, reason);
        let snapshot =
            SnapshotFields::new(inbound, peer, Network::Tcp, Target::new("-", 0)).freeze();
        Self::start_at(&snapshot, started, metrics).end(Outcome::Rejected);
    }

    /// The plugin stages decided: the line shows what they found.
    pub fn decided(&mut self, s: &Snapshot) {
        self.target = s.target.clone();
        self.sniffed = s.sniffed_domain.clone();
        self.protocol = s.protocol.clone();
    }

    pub fn outbound(&mut self, tag: &Arc<str>) {
        self.outbound = Some(tag.clone());
    }

    /// The routed session's counters, and its user online while the session lives.
    pub fn count_on(&mut self, meter: Meter, online: Option<OnlineGuard>) {
        self.meter = meter;
        self._online = online;
    }

    /// The counters the relay adds to as bytes move.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The session's totals, already counted on the meter as they moved.
    pub fn traffic(&mut self, traffic: Traffic) {
        self.traffic = traffic;
    }

    /// Totals of an exchange that was not relayed through the meter: counted now.
    pub fn traffic_at_end(&mut self, traffic: Traffic) {
        self.meter.up(traffic.up);
        self.meter.down(traffic.down);
        self.traffic = traffic;
    }

    /// How the session ended (the last call wins).
    pub fn end(&mut self, outcome: Outcome) {
        self.outcome = outcome;
    }
}

/// Who was refused, where, since when, and the metric's reason label.
pub struct Rejection<'a> {
    pub metrics: &'a Arc<Metrics>,
    pub inbound: &'a Arc<str>,
    pub peer: SocketAddr,
    pub started: Instant,
    /// `tls`, `timeout`, `auth`, `protocol`, `io`, `flow`, `vision` or `unsupported`.
    pub reason: &'static str,
}

impl Drop for SessionLog {
    fn drop(&mut self) {
        self.metrics.session_ended(&SessionEnd {
            inbound: &self.inbound,
            outbound: self.outbound.as_ref(),
            network: self.network,
            outcome: self.outcome,
            up: self.traffic.up,
            down: self.traffic.down,
        });
        tracing::info!(
            target: crate::logging::ACCESS_TARGET,
            source = %self.source,
            user = self.user.as_deref().unwrap_or("-"),
            network = %self.network,
            target = %self.target,
            sniffed = self.sniffed.as_deref().unwrap_or("-"),
            protocol = self.protocol.as_deref().unwrap_or("-"),
            outbound = self.outbound.as_deref().unwrap_or("-"),
            up = self.traffic.up,
            down = self.traffic.down,
            ms = self.started.elapsed().as_millis() as u64,
            result = self.outcome.as_str(),
        );
    }
}
