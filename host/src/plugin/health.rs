//! Quarantine: a plugin that keeps failing is taken out of the pipeline for a while.
//!
//! Envoy's wasm VMs never come back after a crash; here a plugin that fails
//! `failures` times (traps, timeouts, memory limits, malformed output) within `window`
//! is skipped, its stage following its `on_error` as if each call had failed, for
//! `backoff`. Then one call is let through as a trial: success puts it back, failure
//! quarantines it again for twice as long (up to `max_backoff`). One log line per
//! transition, a gauge and a counter per plugin.
//!
//! The hot path is one relaxed atomic load: the lock is taken only on failures and on
//! the trial.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::config::Quarantine;

/// One plugin's failures and quarantine.
#[derive(Debug, Default)]
pub struct Health {
    /// Milliseconds since [`epoch`] at which the quarantine ends; 0: in the pipeline.
    until: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// When the recent failures happened (ms since [`epoch`]), oldest first.
    failures: VecDeque<u64>,
    /// The quarantine now or next (0: the configured first backoff).
    backoff_ms: u64,
    /// A trial call is in flight.
    trial: bool,
}

/// What a recorded outcome changed, for the log line and the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    /// Taken out of the pipeline for this long.
    Quarantined(Duration),
    /// The trial call succeeded: back in the pipeline.
    Recovered,
}

/// A process-wide monotonic origin, so instants fit in an atomic.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Milliseconds since [`epoch`], never 0 (0 means "not quarantined").
fn now_ms() -> u64 {
    (epoch().elapsed().as_millis() as u64).max(1)
}

impl Health {
    /// Whether a call may run now: always in the pipeline; in quarantine, only the one
    /// trial call once the backoff is over.
    pub fn admit(&self) -> bool {
        self.until.load(Ordering::Relaxed) == 0 || self.admit_at(now_ms())
    }

    /// A call failed now.
    pub fn failed(&self, policy: &Quarantine) -> Transition {
        self.failed_at(now_ms(), policy)
    }

    fn admit_at(&self, now: u64) -> bool {
        let until = self.until.load(Ordering::Relaxed);
        if until == 0 {
            return true;
        }
        if now < until {
            return false;
        }
        let mut inner = crate::util::lock(&self.inner);
        if inner.trial {
            return false;
        }
        inner.trial = true;
        true
    }

    /// Whether the plugin is out of the pipeline now.
    pub fn quarantined(&self) -> bool {
        self.until.load(Ordering::Relaxed) != 0
    }

    /// A call succeeded.
    pub fn succeeded(&self) -> Transition {
        if self.until.load(Ordering::Relaxed) == 0 {
            return Transition::None;
        }
        let mut inner = crate::util::lock(&self.inner);
        if !inner.trial {
            return Transition::None;
        }
        *inner = Inner::default();
        self.until.store(0, Ordering::Relaxed);
        Transition::Recovered
    }

    fn failed_at(&self, now: u64, policy: &Quarantine) -> Transition {
        if policy.failures == 0 {
            return Transition::None;
        }
        let mut inner = crate::util::lock(&self.inner);
        let first = policy.backoff.as_millis() as u64;
        let max = (policy.max_backoff.as_millis() as u64).max(first);
        if inner.trial {
            inner.trial = false;
            inner.backoff_ms = inner.backoff_ms.max(first).saturating_mul(2).min(max);
        } else {
            let window = policy.window.as_millis() as u64;
            inner.failures.push_back(now);
            while inner
                .failures
                .front()
                .is_some_and(|t| now.saturating_sub(*t) > window)
            {
                inner.failures.pop_front();
            }
            if inner.failures.len() < policy.failures as usize || self.quarantined() {
                return Transition::None;
            }
            inner.backoff_ms = first;
        }
        inner.failures.clear();
        self.until.store(
            now.saturating_add(inner.backoff_ms).max(1),
            Ordering::Relaxed,
        );
        Transition::Quarantined(Duration::from_millis(inner.backoff_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> Quarantine {
        Quarantine {
            failures: 3,
            window: Duration::from_millis(1000),
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        }
    }

    #[test]
    fn n_failures_in_the_window_quarantine_and_the_backoff_doubles_to_its_cap() {
        let (h, p) = (Health::default(), policy());
        assert_eq!(h.failed_at(10, &p), Transition::None);
        // The first failure left the window before the third.
        assert_eq!(h.failed_at(1500, &p), Transition::None);
        assert_eq!(h.failed_at(1600, &p), Transition::None);
        assert!(h.admit_at(1600));
        let out = Transition::Quarantined(Duration::from_millis(100));
        assert_eq!(h.failed_at(1700, &p), out);
        assert!(!h.admit_at(1750), "skipped while quarantined");
        assert!(h.admit_at(1800), "the trial");
        assert!(!h.admit_at(1800), "one trial at a time");
        let twice = Transition::Quarantined(Duration::from_millis(200));
        assert_eq!(h.failed_at(1801, &p), twice);
        assert!(!h.admit_at(1900));
        assert!(h.admit_at(2001));
        let capped = Transition::Quarantined(Duration::from_millis(350));
        assert_eq!(h.failed_at(2002, &p), capped);
        assert!(h.admit_at(2352));
        assert_eq!(h.succeeded(), Transition::Recovered);
        assert!(!h.quarantined() && h.admit_at(2353));
        assert_eq!(h.succeeded(), Transition::None);
        // Recovered: the count starts again and the backoff from the first.
        assert_eq!(h.failed_at(2400, &p), Transition::None);
        assert_eq!(h.failed_at(2401, &p), Transition::None);
        assert_eq!(h.failed_at(2402, &p), out);
    }

    #[test]
    fn zero_failures_turns_quarantine_off() {
        let h = Health::default();
        let off = Quarantine {
            failures: 0,
            ..policy()
        };
        for t in 0..100 {
            assert_eq!(h.failed_at(t, &off), Transition::None);
            assert!(h.admit_at(t));
        }
    }
}
