//! One configuration's plugins in order, and the stage runner.
//!
//! A session holds the `Arc<Pipeline>` it started with, so a hot swap never changes the
//! plugins under a session in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::bindings::types::Stage;
use super::instance::{Answer, LoadedPlugin};
use crate::config::{OnError, Quarantine};
use crate::session::{Delta, Merge, Snapshot, apply_sniffed, merge};

/// Settings of the pipeline that come from `[plugins]`.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub sniff_window: Duration,
    pub on_error: OnError,
    /// Plugins with their own `on_error`.
    pub policies: BTreeMap<String, OnError>,
    pub quarantine: Quarantine,
    pub dest_override: Vec<String>,
    pub route_only: bool,
}

#[derive(Debug)]
pub struct Pipeline {
    /// Incremented by every swap (the swap's log line names it); a reload commits its
    /// prepared pipeline only onto the generation it was built from.
    pub generation: u64,
    pub plugins: Vec<Arc<LoadedPlugin>>,
    pub settings: PipelineSettings,
}

/// A plugin failed and the policy is `block`.
#[derive(Debug, thiserror::Error)]
#[error("blocked: plugin {plugin} failed")]
pub struct Blocked {
    pub plugin: Arc<str>,
}

/// Where the sniffers stand on one session.
#[derive(Debug)]
pub struct SniffState {
    /// Per sniffer, in pipeline order: `None` while it needs more data.
    answers: Vec<Option<Answer>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SniffOutcome {
    /// Every sniffer answered, or one recognised the protocol.
    Done,
    /// Some sniffer wants more payload.
    NeedMore,
}

impl Pipeline {
    fn stage(&self, stage: Stage) -> impl Iterator<Item = &Arc<LoadedPlugin>> {
        self.plugins.iter().filter(move |p| p.stage == stage)
    }

    /// The most payload bytes any sniffer asked for (0: no sniffing at all).
    pub fn wants_payload(&self) -> usize {
        self.stage(Stage::Sniff)
            .map(|p| p.payload_bytes)
            .max()
            .unwrap_or(0)
    }

    pub fn new_sniff_state(&self) -> SniffState {
        SniffState {
            answers: self.stage(Stage::Sniff).map(|_| None).collect(),
        }
    }

    /// Runs the undecided sniffers on the payload held so far, in pipeline order, until
    /// one recognises the protocol: the later ones are not called (as Xray stops at
    /// its first successful sniffer; their protocol and domain could not win anyway).
    pub fn sniff(
        &self,
        snapshot: &Snapshot,
        payload: &[u8],
        state: &mut SniffState,
    ) -> Result<SniffOutcome, Blocked> {
        let recognises =
            |a: &Option<Answer>| matches!(a, Some(Answer::Matched(d)) if d.protocol.is_some());
        let mut recognised = state.answers.iter().any(recognises);
        for (plugin, answer) in self.stage(Stage::Sniff).zip(state.answers.iter_mut()) {
            if recognised {
                break;
            }
            if answer.is_some() {
                continue;
            }
            match self.call(plugin, snapshot, payload)? {
                Answer::NeedMore if payload.len() >= plugin.payload_bytes => {
                    *answer = Some(Answer::NoMatch)
                }
                Answer::NeedMore => {}
                other => *answer = Some(other),
            }
            recognised = recognises(answer);
        }
        let all_answered = state.answers.iter().all(Option::is_some);
        Ok(if recognised || all_answered {
            SniffOutcome::Done
        } else {
            SniffOutcome::NeedMore
        })
    }

    /// Merges the sniffers' deltas in pipeline order and applies `dest_override`.
    pub fn finish_sniff(&self, snapshot: &Snapshot, state: &SniffState) -> Snapshot {
        let merges: Vec<Merge<'_>> = self
            .stage(Stage::Sniff)
            .zip(&state.answers)
            .filter_map(|(p, a)| match a {
                Some(Answer::Matched(delta)) => Some(Merge {
                    plugin: &p.name,
                    delta,
                }),
                _ => None,
            })
            .collect();
        let sniffed = merge(snapshot, &merges);
        apply_sniffed(
            &sniffed,
            &self.settings.dest_override,
            self.settings.route_only,
        )
    }

    /// Runs the route stage; the merged snapshot carries the chosen outbound, if any.
    pub fn route(&self, snapshot: &Snapshot) -> Result<Snapshot, Blocked> {
        let mut deltas: Vec<(Arc<str>, Delta)> = Vec::new();
        for plugin in self.stage(Stage::Route) {
            if let Answer::Matched(delta) = self.call(plugin, snapshot, &[])? {
                deltas.push((plugin.name.clone(), delta));
            }
        }
        let merges: Vec<Merge<'_>> = deltas
            .iter()
            .map(|(p, d)| Merge {
                plugin: p,
                delta: d,
            })
            .collect();
        Ok(merge(snapshot, &merges))
    }

    /// One call with the plugin's `on_error` policy: a failure is logged
    /// (rate-limited) and either counts as "no match" or blocks the session. A
    /// quarantined plugin is not called: its stage follows the policy as if it failed.
    fn call(
        &self,
        plugin: &Arc<LoadedPlugin>,
        snapshot: &Snapshot,
        payload: &[u8],
    ) -> Result<Answer, Blocked> {
        if !plugin.health.admit() {
            return self.failed(plugin);
        }
        match plugin.handle(snapshot, payload) {
            Ok(answer) => {
                plugin.transition(plugin.health.succeeded());
                Ok(answer)
            }
            Err(e) => {
                plugin.report(&e);
                let quarantine = &self.settings.quarantine;
                plugin.transition(plugin.health.failed(quarantine));
                self.failed(plugin)
            }
        }
    }

    /// What the plugin's policy makes of a call that failed or was not made.
    fn failed(&self, plugin: &Arc<LoadedPlugin>) -> Result<Answer, Blocked> {
        let policy = self.settings.policies.get(&*plugin.name);
        match policy.copied().unwrap_or(self.settings.on_error) {
            OnError::Skip => Ok(Answer::NoMatch),
            OnError::Block => Err(Blocked {
                plugin: plugin.name.clone(),
            }),
        }
    }
}
