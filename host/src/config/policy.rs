//! `[plugins] on_error`, `[plugins.policy.NAME]` and `[plugins.quarantine]`: what a
//! session does when a plugin fails, per plugin, and when a plugin that keeps failing
//! is taken out of the pipeline for a while.

use std::collections::BTreeMap;
use std::time::Duration;

use super::OnError;
use super::error::Errors;
use super::raw::{RawPolicy, RawQuarantine};
use super::units::parse_positive_duration;

/// When a failing plugin is taken out of the pipeline (`failures` 0: never).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarantine {
    /// Failures (traps, timeouts, memory limits, malformed output) ...
    pub failures: u32,
    /// ... within this long quarantine the plugin ...
    pub window: Duration,
    /// ... for this long; each failed trial doubles it ...
    pub backoff: Duration,
    /// ... up to this.
    pub max_backoff: Duration,
}

impl Default for Quarantine {
    fn default() -> Self {
        Quarantine {
            failures: 5,
            window: Duration::from_secs(10),
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// `skip` or `block`, or an error at `at`.
pub fn on_error(text: Option<&str>, at: &str, errors: &mut Errors) -> OnError {
    match text {
        None | Some("skip") => OnError::Skip,
        Some("block") => OnError::Block,
        Some(other) => {
            errors.push(at, format!("unknown policy {other:?}; use skip or block"));
            OnError::Skip
        }
    }
}

/// Each named plugin's own `on_error`; a name the pipeline does not hold is refused.
pub fn policies(
    raw: BTreeMap<String, RawPolicy>,
    pipeline: &[String],
    errors: &mut Errors,
) -> BTreeMap<String, OnError> {
    let mut out = BTreeMap::new();
    for (name, policy) in raw {
        let at = format!("plugins.policy.{name}");
        if !pipeline.contains(&name) {
            errors.push(&at, "names no plugin of plugins.pipeline");
            continue;
        }
        let policy = on_error(
            policy.on_error.as_deref(),
            &format!("{at}.on_error"),
            errors,
        );
        out.insert(name, policy);
    }
    out
}

pub fn quarantine(raw: Option<RawQuarantine>, errors: &mut Errors) -> Quarantine {
    let mut q = Quarantine::default();
    let Some(raw) = raw else { return q };
    let mut duration = |field: &str, text: Option<String>, into: &mut Duration| {
        let Some(text) = text else { return };
        let at = format!("plugins.quarantine.{field}");
        if let Some(d) = errors.take(&at, parse_positive_duration(&text)) {
            *into = d;
        }
    };
    duration("window", raw.window, &mut q.window);
    duration("backoff", raw.backoff, &mut q.backoff);
    duration("max_backoff", raw.max_backoff, &mut q.max_backoff);
    if let Some(n) = raw.failures {
        match u32::try_from(n) {
            Ok(n) => q.failures = n,
            Err(_) => errors.push("plugins.quarantine.failures", "too large"),
        }
    }
    if q.max_backoff < q.backoff {
        errors.push(
            "plugins.quarantine.max_backoff",
            "must be at least plugins.quarantine.backoff",
        );
    }
    q
}
