//! `[[outbound]]` sections.

use std::path::Path;
use std::time::Duration;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::error::{Errors, check_duplicates};
use super::raw::{RawMux, RawOutbound};
use super::units::parse_duration;
use super::{MuxConfig, OutboundConfig, OutboundKind, Security, Transport, VlessOutbound};

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

pub fn validate_all(
    raw: Vec<RawOutbound>,
    base: &Path,
    errors: &mut Errors,
) -> Vec<OutboundConfig> {
    if raw.is_empty() {
        errors.push(
            "outbound",
            "at least one [[outbound]] is needed (e.g. type = \"direct\")",
        );
    }
    check_duplicates("outbound", raw.iter().map(|r| r.tag.as_str()), errors);
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, r)| validate_one(r, &format!("outbound[{i}]"), base, errors))
        .collect()
}

fn validate_one(
    raw: RawOutbound,
    at: &str,
    base: &Path,
    errors: &mut Errors,
) -> Option<OutboundConfig> {
    let connect_timeout = match &raw.connect_timeout {
        Some(t) => errors.take(&format!("{at}.connect_timeout"), parse_duration(t))?,
        None => DEFAULT_CONNECT_TIMEOUT,
    };
    let kind = match raw.kind.as_str() {
        "direct" => OutboundKind::Direct { connect_timeout },
        "block" => OutboundKind::Block,
        "vless" => OutboundKind::Vless(validate_vless(&raw, at, base, connect_timeout, errors)?),
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
    base: &Path,
    connect_timeout: Duration,
    errors: &mut Errors,
) -> Option<VlessOutbound> {
    let server = match &raw.link {
        Some(link) => from_link(raw, link, at, errors)?,
        None => from_fields(raw, at, errors)?,
    };
    let ca = match &raw.ca {
        Some(path) => Some(errors.take(&format!("{at}.ca"), load_ca(&base.join(path)))?),
        None => None,
    };
    let mux = validate_mux(raw.mux.as_ref(), at, errors)?;
    if mux.enabled && server.flow.is_vision() {
        errors.push(
            format!("{at}.mux"),
            "Mux.Cool cannot carry TCP with flow xtls-rprx-vision (Xray's servers close such \
             tunnels); remove [outbound.mux]: UDP goes over Mux.Cool by itself with Vision",
        );
        return None;
    }
    let (transport, security) = super::layers::layers(
        raw.transport.as_deref(),
        raw.security.as_deref(),
        at,
        errors,
    );
    Some(VlessOutbound {
        transport,
        security,
        connect_timeout,
        ca,
        mux,
        ..server
    })
}

/// server, id, sni, alpn and insecure written out as fields.
fn from_fields(raw: &RawOutbound, at: &str, errors: &mut Errors) -> Option<VlessOutbound> {
    let server = match raw.server.as_deref() {
        Some(s) => errors.take(&format!("{at}.server"), parse_server(s)),
        None => {
            errors.push(
                format!("{at}.server"),
                "a vless outbound needs server = \"host:port\" (or link = \"vless://...\")",
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
    let flow = raw.flow.as_deref().unwrap_or("");
    let flow = errors.take(&format!("{at}.flow"), super::Flow::parse(flow, true));
    let (host, port) = server?;
    Some(VlessOutbound {
        flow: flow?,
        transport: Transport::Tcp,
        security: Security::Tls,
        sni: raw.sni.clone().unwrap_or_else(|| host.clone()),
        host,
        port,
        id: id?,
        insecure: raw.insecure.unwrap_or(false),
        alpn: raw.alpn.clone().unwrap_or_default(),
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        ca: None,
        mux: MuxConfig::default(),
    })
}

/// The same facts from a `vless://` share link; the fields it replaces are refused
/// next to it, so there is one source of truth.
fn from_link(
    raw: &RawOutbound,
    link: &str,
    at: &str,
    errors: &mut Errors,
) -> Option<VlessOutbound> {
    let given = [
        ("server", raw.server.is_some()),
        ("id", raw.id.is_some()),
        ("sni", raw.sni.is_some()),
        ("alpn", raw.alpn.is_some()),
        ("insecure", raw.insecure.is_some()),
        ("flow", raw.flow.is_some()),
    ];
    for (field, present) in given {
        if present {
            errors.push(
                format!("{at}.{field}"),
                "give either link or the server fields, not both",
            );
        }
    }
    let link = errors.take(
        &format!("{at}.link"),
        crate::share::parse_vless_link(link).map_err(|e| e.to_string()),
    )?;
    let flow = errors.take(&format!("{at}.link"), super::Flow::parse(&link.flow, true))?;
    Some(VlessOutbound {
        transport: Transport::Tcp,
        security: Security::Tls,
        flow,
        sni: link.sni.unwrap_or_else(|| link.host.clone()),
        host: link.host,
        port: link.port,
        id: link.id,
        insecure: link.insecure,
        alpn: link.alpn,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        ca: None,
        mux: MuxConfig::default(),
    })
}

fn validate_mux(raw: Option<&RawMux>, at: &str, errors: &mut Errors) -> Option<MuxConfig> {
    let mut mux = MuxConfig::default();
    let Some(raw) = raw else { return Some(mux) };
    mux.enabled = raw.enabled.unwrap_or(true);
    if let Some(c) = raw.concurrency {
        if !(1..=128).contains(&c) {
            errors.push(
                format!("{at}.mux.concurrency"),
                "must be 1 to 128 (sub-streams per tunnel)",
            );
            return None;
        }
        mux.concurrency = c;
    }
    if let Some(t) = &raw.idle_timeout {
        mux.idle_timeout = errors.take(&format!("{at}.mux.idle_timeout"), parse_duration(t))?;
    }
    Some(mux)
}

/// The certificates of a PEM file, for a private CA.
fn load_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
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
