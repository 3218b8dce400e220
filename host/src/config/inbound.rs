//! `[[inbound]]` sections.

use std::net::SocketAddr;
use std::path::Path;

use super::error::{Errors, check_duplicates};
use super::raw::{RawFallback, RawInbound, RawUser};
use super::units::parse_duration;
use super::{Account, HttpInbound, SocksInbound};
use super::{
    Fallback, FallbackDest, InboundConfig, InboundKind, Timeouts, User, VlessInbound, tls,
};

/// Default cap on connections served at once by one inbound.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

pub fn validate_all(raw: Vec<RawInbound>, base: &Path, errors: &mut Errors) -> Vec<InboundConfig> {
    check_duplicates("inbound", raw.iter().map(|r| r.tag.as_str()), errors);
    raw.into_iter()
        .enumerate()
        .filter_map(|(i, r)| validate_one(r, &format!("inbound[{i}]"), base, errors))
        .collect()
}

fn validate_one(
    raw: RawInbound,
    at: &str,
    base: &Path,
    errors: &mut Errors,
) -> Option<InboundConfig> {
    let listen = errors.take(&format!("{at}.listen"), parse_listen(&raw.listen));
    let kind = match raw.kind.as_str() {
        "vless" => validate_vless(&raw, at, base, errors).map(InboundKind::Vless),
        "socks" => Some(InboundKind::Socks(SocksInbound {
            timeouts: inbound_timeouts(&raw, at, errors),
            max_connections: max_connections(raw.max_connections, at, errors),
            accounts: validate_accounts(&raw, at, errors),
            udp: raw.udp.unwrap_or(true),
        })),
        "http" => Some(InboundKind::Http(HttpInbound {
            timeouts: inbound_timeouts(&raw, at, errors),
            max_connections: max_connections(raw.max_connections, at, errors),
        })),
        other => {
            errors.push(
                format!("{at}.type"),
                format!("unknown inbound type {other:?}; use \"vless\", \"socks\" or \"http\""),
            );
            None
        }
    };
    refuse_foreign_fields(&raw, at, errors);
    Some(InboundConfig {
        tag: raw.tag,
        listen: listen?,
        kind: kind?,
    })
}

fn validate_vless(
    raw: &RawInbound,
    at: &str,
    base: &Path,
    errors: &mut Errors,
) -> Option<VlessInbound> {
    let tls = match &raw.tls {
        Some(t) => tls::load(t, &format!("{at}.tls"), base, errors),
        None => {
            errors.push(
                format!("{at}.tls"),
                "a vless inbound needs a [inbound.tls] table with cert and key",
            );
            None
        }
    };
    let users = validate_users(&raw.users, at, errors);
    let fallbacks = raw
        .fallback
        .iter()
        .enumerate()
        .filter_map(|(i, f)| errors.take(&format!("{at}.fallback[{i}]"), validate_fallback(f)))
        .collect();
    let timeouts = inbound_timeouts(raw, at, errors);
    let max_connections = max_connections(raw.max_connections, at, errors);
    let (transport, security) = super::layers::layers(
        raw.transport.as_deref(),
        raw.security.as_deref(),
        at,
        errors,
    );
    Some(VlessInbound {
        transport,
        security,
        tls: tls?,
        users,
        fallbacks,
        timeouts,
        max_connections,
    })
}

/// Fields that belong to another inbound type are a mistake, not something to ignore.
fn refuse_foreign_fields(raw: &RawInbound, at: &str, errors: &mut Errors) {
    let kind = raw.kind.as_str();
    let foreign = [
        ("tls", raw.tls.is_some(), "vless"),
        ("transport", raw.transport.is_some(), "vless"),
        ("security", raw.security.is_some(), "vless"),
        ("users", !raw.users.is_empty(), "vless"),
        ("fallback", !raw.fallback.is_empty(), "vless"),
        ("accounts", !raw.accounts.is_empty(), "socks"),
        ("udp", raw.udp.is_some(), "socks"),
    ];
    for (field, present, owner) in foreign {
        if present && kind != owner && ["vless", "socks", "http"].contains(&kind) {
            errors.push(
                format!("{at}.{field}"),
                format!("only a {owner} inbound takes {field}"),
            );
        }
    }
}

/// SOCKS5 accounts (RFC 1929): each name and password 1..=255 bytes, names unique.
fn validate_accounts(raw: &RawInbound, at: &str, errors: &mut Errors) -> Vec<Account> {
    let mut accounts: Vec<Account> = Vec::new();
    for (i, a) in raw.accounts.iter().enumerate() {
        let path = format!("{at}.accounts[{i}]");
        let fits = |s: &str| (1..=255).contains(&s.len());
        if !fits(&a.user) || !fits(&a.pass) {
            errors.push(path, "user and pass must each be 1 to 255 bytes");
        } else if accounts.iter().any(|b| b.user == a.user) {
            errors.push(
                format!("{path}.user"),
                format!("duplicate user {:?}", a.user),
            );
        } else {
            accounts.push(Account {
                user: a.user.clone(),
                pass: a.pass.clone(),
            });
        }
    }
    accounts
}

fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        format!("not an IP:port address: {text:?} (e.g. \"0.0.0.0:443\" or \"[::]:443\")")
    })
}

fn validate_users(raw: &[RawUser], at: &str, errors: &mut Errors) -> Vec<User> {
    if raw.is_empty() {
        errors.push(
            format!("{at}.users"),
            "a vless inbound needs at least one [[inbound.users]]",
        );
    }
    let mut users: Vec<User> = Vec::new();
    for (i, u) in raw.iter().enumerate() {
        let path = format!("{at}.users[{i}].id");
        let Some(id) = errors.take(&path, parse_uuid(&u.id)) else {
            continue;
        };
        if users.iter().any(|other| other.id == id) {
            errors.push(path, "duplicate user id");
            continue;
        }
        let email = u.email.clone().unwrap_or_else(|| format!("user{i}"));
        let flow_at = format!("{at}.users[{i}].flow");
        let flow = u.flow.as_deref().unwrap_or("");
        let Some(flow) = errors.take(&flow_at, super::Flow::parse(flow, false)) else {
            continue;
        };
        users.push(User { id, email, flow });
    }
    users
}

/// A user id, as `util::parse_user_id` reads it.
pub fn parse_uuid(text: &str) -> Result<uuid::Uuid, String> {
    crate::util::parse_user_id(text).ok_or_else(|| format!("not a UUID: {text:?}"))
}

fn validate_fallback(raw: &RawFallback) -> Result<Fallback, String> {
    let dest = parse_fallback_dest(&raw.dest)?;
    let path = raw.path.clone().unwrap_or_default();
    if !path.is_empty() && !path.starts_with('/') {
        return Err(format!("path must start with '/': {path:?}"));
    }
    let proxy_protocol = raw.proxy_protocol.unwrap_or(0);
    if proxy_protocol > 2 {
        return Err(format!(
            "proxy_protocol must be 0, 1 or 2, not {proxy_protocol}"
        ));
    }
    Ok(Fallback {
        dest,
        sni: raw.sni.clone().unwrap_or_default().to_ascii_lowercase(),
        alpn: raw.alpn.clone().unwrap_or_default().to_ascii_lowercase(),
        path,
        proxy_protocol,
    })
}

/// A port number (or numeric string) means localhost; "host:port" is TCP; a path is a
/// unix socket.
fn parse_fallback_dest(value: &toml::Value) -> Result<FallbackDest, String> {
    let text = match value {
        toml::Value::Integer(port) => port.to_string(),
        toml::Value::String(s) => s.clone(),
        other => return Err(format!("dest must be a port or an address, not {other}")),
    };
    if text.starts_with('/') || text.starts_with('@') {
        return Ok(FallbackDest::Unix(text.into()));
    }
    if let Ok(port) = text.parse::<u16>() {
        return Ok(FallbackDest::Tcp(format!("localhost:{port}")));
    }
    match text.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {
            Ok(FallbackDest::Tcp(text))
        }
        _ => Err(format!(
            "dest: not a port, host:port or socket path: {text:?}"
        )),
    }
}

fn validate_timeouts(raw: [&Option<String>; 4], at: &str, errors: &mut Errors) -> Timeouts {
    let names = [
        "handshake_timeout",
        "idle_timeout",
        "uplink_only_timeout",
        "downlink_only_timeout",
    ];
    let defaults = Timeouts::default();
    let mut values = [
        defaults.handshake,
        defaults.idle,
        defaults.uplink_only,
        defaults.downlink_only,
    ];
    for ((text, name), value) in raw.iter().zip(names).zip(values.iter_mut()) {
        if let Some(text) = text
            && let Some(d) = errors.take(&format!("{at}.{name}"), parse_duration(text))
        {
            *value = d;
        }
    }
    let [handshake, idle, uplink_only, downlink_only] = values;
    Timeouts {
        handshake,
        idle,
        uplink_only,
        downlink_only,
    }
}

fn inbound_timeouts(raw: &RawInbound, at: &str, errors: &mut Errors) -> Timeouts {
    let fields = [
        &raw.handshake_timeout,
        &raw.idle_timeout,
        &raw.uplink_only_timeout,
        &raw.downlink_only_timeout,
    ];
    validate_timeouts(fields, at, errors)
}

fn max_connections(raw: Option<u32>, at: &str, errors: &mut Errors) -> usize {
    match raw {
        Some(0) => {
            errors.push(format!("{at}.max_connections"), "must be at least 1");
            0
        }
        Some(n) => n as usize,
        None => DEFAULT_MAX_CONNECTIONS,
    }
}
