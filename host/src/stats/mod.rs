//! Traffic statistics under Xray's names, for the management API and the metrics:
//! `user>>>EMAIL>>>traffic>>>uplink`, `inbound>>>TAG>>>traffic>>>downlink`,
//! `outbound>>>TAG>>>...`, and the online maps `user>>>EMAIL>>>online`.
//!
//! Counting must cost the relay nothing: a session looks its counters up once, when it
//! is routed, and holds them in a [`Meter`]; each relayed chunk then adds to a few
//! sharded atomics ([`Counter`]), with no lock and no map. As in Xray, nothing is ever
//! unregistered: a removed user's counters keep their values until restart.

mod counter;
mod online;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use crate::util::{read, write};

pub use counter::Counter;
pub use online::{OnlineGuard, OnlineMap, render};

/// Separates the parts of a stat name, as in Xray.
pub const SEP: &str = ">>>";

/// Every counter and online map of the daemon (one, kept across reloads).
#[derive(Debug)]
pub struct Stats {
    enabled: bool,
    counters: RwLock<BTreeMap<String, Arc<Counter>>>,
    online: RwLock<BTreeMap<String, Arc<OnlineMap>>>,
    started: Instant,
}

/// Where a session's bytes are counted besides its own totals.
#[derive(Debug, Default, Clone)]
pub struct Meter {
    up: Vec<Arc<Counter>>,
    down: Vec<Arc<Counter>>,
}

impl Meter {
    pub fn up(&self, n: u64) {
        self.up.iter().for_each(|c| c.add(n));
    }

    pub fn down(&self, n: u64) {
        self.down.iter().for_each(|c| c.add(n));
    }
}

/// The online-map name of a user.
pub fn online_name(email: &str) -> String {
    format!("user{SEP}{email}{SEP}online")
}

impl Stats {
    /// With `enabled` false nothing is counted and every lookup finds nothing (as Xray
    /// without its `stats` section).
    pub fn new(enabled: bool) -> Self {
        Stats {
            enabled,
            counters: RwLock::default(),
            online: RwLock::default(),
            started: Instant::now(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Seconds since the daemon started counting.
    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    fn counter(&self, name: String) -> Arc<Counter> {
        if let Some(c) = read(&self.counters).get(&name) {
            return Arc::clone(c);
        }
        Arc::clone(write(&self.counters).entry(name).or_default())
    }

    /// Registers `KIND>>>NAME>>>traffic>>>uplink` and `...downlink` (at load, so an
    /// inbound's counters exist before its first session, as in Xray).
    pub fn register(&self, kind: &str, name: &str) {
        if self.enabled && !name.is_empty() {
            self.link(kind, name, &mut Meter::default());
        }
    }

    fn link(&self, kind: &str, name: &str, meter: &mut Meter) {
        let base = format!("{kind}{SEP}{name}{SEP}traffic{SEP}");
        meter.up.push(self.counter(format!("{base}uplink")));
        meter.down.push(self.counter(format!("{base}downlink")));
    }

    /// The counters of a session of `user` (its email) through `inbound` and
    /// `outbound`; parts with an empty name are not counted, as in Xray.
    pub fn meter(&self, user: Option<&str>, inbound: &str, outbound: &str) -> Meter {
        let mut meter = Meter::default();
        if !self.enabled {
            return meter;
        }
        let parts = [
            ("user", user.unwrap_or("")),
            ("inbound", inbound),
            ("outbound", outbound),
        ];
        for (kind, name) in parts {
            if !name.is_empty() {
                self.link(kind, name, &mut meter);
            }
        }
        meter
    }

    /// Marks `user` online from `ip` until the guard drops. Loopback (127.0.0.1, ::1)
    /// is never recorded, as in Xray.
    pub fn online(&self, user: Option<&str>, ip: IpAddr) -> Option<OnlineGuard> {
        let user = user.filter(|u| self.enabled && !u.is_empty())?;
        if ip == IpAddr::from([127, 0, 0, 1]) || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST) {
            return None;
        }
        let name = online_name(user);
        let known = read(&self.online).get(&name).cloned();
        let map = match known {
            Some(m) => m,
            None => Arc::clone(write(&self.online).entry(name).or_default()),
        };
        Some(map.enter(ip))
    }

    /// The counter `name`'s value (taken, if `reset`); `None` if there is none.
    pub fn get(&self, name: &str, reset: bool) -> Option<u64> {
        let counters = read(&self.counters);
        let c = counters.get(name)?;
        Some(if reset { c.take() } else { c.value() })
    }

    /// Every counter whose name contains `pattern` (all for ""), sorted by name.
    pub fn query(&self, pattern: &str, reset: bool) -> Vec<(String, u64)> {
        read(&self.counters)
            .iter()
            .filter(|(name, _)| name.contains(pattern))
            .map(|(name, c)| (name.clone(), if reset { c.take() } else { c.value() }))
            .collect()
    }

    /// The online map `name` (`user>>>EMAIL>>>online`), if that user ever connected.
    pub fn online_map(&self, name: &str) -> Option<Arc<OnlineMap>> {
        read(&self.online).get(name).cloned()
    }

    /// The names of the online maps with someone online.
    pub fn online_users(&self) -> Vec<String> {
        read(&self.online)
            .iter()
            .filter(|(_, m)| m.count() > 0)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_counts_for_its_user_inbound_and_outbound_under_xrays_names() {
        let stats = Stats::new(true);
        let meter = stats.meter(Some("a@b"), "vless-in", "direct");
        meter.up(5);
        meter.down(7);
        stats.meter(None, "vless-in", "").up(1);
        let all = stats.query("", false);
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "inbound>>>vless-in>>>traffic>>>downlink",
                "inbound>>>vless-in>>>traffic>>>uplink",
                "outbound>>>direct>>>traffic>>>downlink",
                "outbound>>>direct>>>traffic>>>uplink",
                "user>>>a@b>>>traffic>>>downlink",
                "user>>>a@b>>>traffic>>>uplink",
            ]
        );
        assert_eq!(
            stats.get("inbound>>>vless-in>>>traffic>>>uplink", false),
            Some(6)
        );
        assert_eq!(stats.get("user>>>a@b>>>traffic>>>downlink", true), Some(7));
        assert_eq!(stats.get("user>>>a@b>>>traffic>>>downlink", false), Some(0));
        assert_eq!(stats.get("user>>>nobody>>>traffic>>>uplink", false), None);
        let users = stats.query("user>>>", true);
        assert_eq!(users.len(), 2);
        assert_eq!(stats.get("user>>>a@b>>>traffic>>>uplink", false), Some(0));
    }

    #[test]
    fn online_skips_loopback_and_disabled_stats_count_nothing() {
        let stats = Stats::new(true);
        assert!(
            stats
                .online(Some("a"), "127.0.0.1".parse().unwrap())
                .is_none()
        );
        assert!(stats.online(Some("a"), "::1".parse().unwrap()).is_none());
        let guard = stats.online(Some("a"), "127.0.0.2".parse().unwrap());
        assert_eq!(stats.online_users(), ["user>>>a>>>online"]);
        drop(guard);
        assert!(stats.online_users().is_empty());
        assert!(stats.online_map("user>>>a>>>online").is_some());

        let off = Stats::new(false);
        off.meter(Some("a"), "in", "out").up(1);
        off.register("inbound", "in");
        assert!(off.query("", false).is_empty());
        assert!(off.online(Some("a"), "10.0.0.1".parse().unwrap()).is_none());
    }
}
