//! The byte counters, read from the stats core at scrape time: the relay feeds the
//! core's sharded counters already, so the metrics add nothing to the hot path and
//! show a long session's bytes while it still runs.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use crate::stats::{SEP, Stats};

#[derive(Debug)]
pub struct StatsCollector {
    pub stats: Arc<Stats>,
    pub per_user: bool,
}

/// One family: the metric's name, its label and which of Xray's kinds feeds it.
struct Kind {
    xray: &'static str,
    metric: &'static str,
    label: &'static str,
    help: &'static str,
}

const KINDS: [Kind; 3] = [
    Kind {
        xray: "inbound",
        metric: "inbound_bytes",
        label: "inbound",
        help: "Bytes through an inbound, by direction (live; needs [stats] on)",
    },
    Kind {
        xray: "outbound",
        metric: "outbound_bytes",
        label: "outbound",
        help: "Bytes through an outbound, by direction (live; needs [stats] on)",
    },
    Kind {
        xray: "user",
        metric: "user_bytes",
        label: "user",
        help: "Bytes of a user (its email), by direction (live; [metrics] per_user)",
    },
];

/// `KIND>>>NAME>>>traffic>>>DIRECTION` split into (name, direction).
fn parse<'a>(name: &'a str, kind: &str) -> Option<(&'a str, &'a str)> {
    let rest = name.strip_prefix(kind)?.strip_prefix(SEP)?;
    let (who, counter) = rest.rsplit_once(SEP)?;
    let who = who.strip_suffix("traffic")?.strip_suffix(SEP)?;
    matches!(counter, "uplink" | "downlink").then_some((who, counter))
}

impl Collector for StatsCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if !self.stats.enabled() {
            return Ok(());
        }
        for kind in KINDS.iter().filter(|k| self.per_user || k.xray != "user") {
            let prefix = format!("{}{SEP}", kind.xray);
            let values = self.stats.query(&prefix, false);
            let series: Vec<_> = values
                .iter()
                .filter_map(|(name, v)| parse(name, kind.xray).map(|(who, dir)| (who, dir, *v)))
                .collect();
            let mut family =
                encoder.encode_descriptor(kind.metric, kind.help, None, MetricType::Counter)?;
            for (who, direction, value) in series {
                let labels = [(kind.label, who), ("direction", direction)];
                let metric = family.encode_family(&labels)?;
                ConstCounter::new(value).encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn xray_counter_names_split_into_name_and_direction() {
        assert_eq!(
            parse("user>>>a>>>b@c>>>traffic>>>uplink", "user"),
            Some(("a>>>b@c", "uplink"))
        );
        assert_eq!(
            parse("inbound>>>in>>>traffic>>>downlink", "inbound"),
            Some(("in", "downlink"))
        );
        assert_eq!(parse("inbound>>>in>>>traffic>>>sideways", "inbound"), None);
        assert_eq!(parse("user>>>x>>>online", "user"), None);
        assert_eq!(parse("outbound>>>o>>>traffic>>>uplink", "inbound"), None);
    }
}
