//! `[[outbound]]` sections.

use std::time::Duration;

use super::error::{Errors, check_duplicates};
use super::raw::RawOutbound;
use super::units::parse_duration;
use super::{OutboundConfig, OutboundKind, VlessOutbound};

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
        "vless" => OutboundKind::Vless(validate_vless(&raw, at, connect_timeout, errors)?),
        other => {
            errors.push(
                format!("{at}.type"),
                format!("unknown outbound type {other:?}; use \"direct\", \"block\" or \"vless\""),
            );
            return None;
        }
    };
    Some(OutboundConfig { tag: raw.tag, kind })
}

fn validate_vless(
    raw: &RawOutbound,
    at: &str,
    connect_timeout: Duration,
    errors: &mut Errors,
) -> Option<VlessOutbound> {
    let server = match raw.server.as_deref() {
        Some(s) => errors.take(&format!("{at}.server"), parse_server(s)),
        None => {
            errors.push(
                format!("{at}.server"),
                "a vless outbound needs server = \"host:port\"",
            );
            None
        }
    };
    let id = match raw.id.as_deref() {
        Some(id) => errors.take(&format!("{at}.id"), super::inbound::parse_uuid(id)),
        None => {
            errors.push(format!("{at}.id"), "a vless outbound needs the user id");
            None
        }
    };
    let (host, port) = server?;
    Some(VlessOutbound {
        sni: raw.sni.clone().unwrap_or_else(|| host.clone()),
        host,
        port,
        id: id?,
        insecure: raw.insecure.unwrap_or(false),
        alpn: raw.alpn.clone().unwrap_or_default(),
        connect_timeout,
    })
}

/// "host:port" or "[v6]:port".
fn parse_server(text: &str) -> Result<(String, u16), String> {
    let bad = || format!("not host:port: {text:?}");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}
