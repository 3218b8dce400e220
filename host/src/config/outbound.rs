//! `[[outbound]]` sections.

use std::time::Duration;

use super::error::{Errors, check_duplicates};
use super::raw::RawOutbound;
use super::units::parse_duration;
use super::{OutboundConfig, OutboundKind};

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn validate_all(raw: Vec<RawOutbound>, errors: &mut Errors) -> Vec<OutboundConfig> {
    if raw.is_empty() {
        errors.push(
            "outbound",
            "at least one [[outbound]] is needed (e.g. type = \"direct\")",
        );
    }
    check_duplicates("outbound", raw.iter().map(|r| r.tag.as_str()), errors);
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, r)| validate_one(r, &format!("outbound[{i}]"), errors))
        .collect()
}

fn validate_one(raw: RawOutbound, at: &str, errors: &mut Errors) -> Option<OutboundConfig> {
    let connect_timeout = match &raw.connect_timeout {
        Some(t) => errors.take(&format!("{at}.connect_timeout"), parse_duration(t))?,
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    let kind = match raw.kind.as_str() {
        "direct" => OutboundKind::Direct { connect_timeout },
        "block" => OutboundKind::Block,
        other => {
            errors.push(
                format!("{at}.type"),
                format!("unknown outbound type {other:?}; use \"direct\" or \"block\""),
            );
            return None;
        }
    };
    Some(OutboundConfig { tag: raw.tag, kind })
}
