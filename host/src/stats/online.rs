//! Who is online: per user, the source IPs of its live sessions, each with a count
//! of sessions and the time the latest began (Xray's online map). Touched once when a
//! session starts and once when it ends, never per byte.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
struct Seen {
    sessions: u32,
    last_seen: i64,
}

#[derive(Debug, Default)]
pub struct OnlineMap {
    ips: Mutex<HashMap<IpAddr, Seen>>,
}

/// Xray renders addresses with IPv6 in brackets; panels show and key them so.
pub fn render(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl OnlineMap {
    /// A session from `ip` began; it counts until the guard drops.
    pub fn enter(self: &Arc<Self>, ip: IpAddr) -> OnlineGuard {
        let mut ips = crate::util::lock(&self.ips);
        let seen = ips.entry(ip).or_insert(Seen {
            sessions: 0,
            last_seen: 0,
        });
        seen.sessions = seen.sessions.saturating_add(1);
        seen.last_seen = unix_now();
        OnlineGuard {
            map: Arc::clone(self),
            ip,
        }
    }

    fn leave(&self, ip: &IpAddr) {
        let mut ips = crate::util::lock(&self.ips);
        if let Some(seen) = ips.get_mut(ip) {
            seen.sessions = seen.sessions.saturating_sub(1);
            if seen.sessions == 0 {
                ips.remove(ip);
            }
        }
    }

    /// How many distinct IPs have a live session.
    pub fn count(&self) -> usize {
        crate::util::lock(&self.ips).len()
    }

    /// Each online IP (rendered as Xray does) with its last-seen time, Unix seconds.
    pub fn ips(&self) -> Vec<(String, i64)> {
        let mut ips: Vec<_> = crate::util::lock(&self.ips)
            .iter()
            .map(|(ip, seen)| (render(ip), seen.last_seen))
            .collect();
        ips.sort();
        ips
    }
}

/// A live session's place in its user's online map.
#[derive(Debug)]
pub struct OnlineGuard {
    map: Arc<OnlineMap>,
    ip: IpAddr,
}

impl Drop for OnlineGuard {
    fn drop(&mut self) {
        self.map.leave(&self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ip_stays_online_until_its_last_session_ends() {
        let map = Arc::new(OnlineMap::default());
        let a: IpAddr = "203.0.113.7".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let first = map.enter(a);
        let second = map.enter(a);
        let other = map.enter(b);
        assert_eq!(map.count(), 2);
        let ips: Vec<String> = map.ips().into_iter().map(|(ip, _)| ip).collect();
        assert_eq!(ips, ["203.0.113.7", "[2001:db8::1]"]);
        assert!(map.ips().iter().all(|(_, seen)| *seen > 1_600_000_000));
        drop(first);
        assert_eq!(map.count(), 2);
        drop(second);
        drop(other);
        assert_eq!(map.count(), 0);
    }
}
