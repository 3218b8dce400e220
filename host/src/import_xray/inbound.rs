//! Inbounds: VLESS over TCP with TLS (users, fallbacks), SOCKS and HTTP; the policy's
//! level-0 timeouts; sniffing, which is per inbound in Xray and one `[plugins]` setting
//! in wasmray.

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::Notes;
use super::toml_out::{OutAccount, OutFallback, OutInbound, OutPlugins, OutTls, OutUser};
use super::xray::{self, Inbound, Policy};

/// The level-0 policy timeouts, as wasmray durations.
#[derive(Debug, Default, Clone)]
pub struct Timeouts {
    handshake: Option<String>,
    idle: Option<String>,
    uplink_only: Option<String>,
    downlink_only: Option<String>,
}

pub fn policy_timeouts(policy: &Policy, notes: &mut Notes) -> Timeouts {
    notes.unknown("policy", &policy.other);
    let mut timeouts = Timeouts::default();
    for (level, value) in &policy.levels {
        let at = format!("policy.levels.{level}");
        if level != "0" {
            notes.not_carried(
                &at,
                "wasmray has one policy: level 0's timeouts apply to every inbound",
            );
            continue;
        }
        let Some(l) = settings::<xray::Level>(Some(value), &at, notes) else {
            continue;
        };
        for key in l.other.keys() {
            // The per-level stats switches: wasmray counts everyone when [stats] is on.
            if !key.starts_with("stats") {
                notes.not_carried(&format!("{at}.{key}"), "not carried over");
            }
        }
        let secs = |s: Option<u64>| s.map(|s| format!("{s}s"));
        timeouts = Timeouts {
            handshake: secs(l.handshake),
            idle: secs(l.conn_idle),
            uplink_only: secs(l.uplink_only),
            downlink_only: secs(l.downlink_only),
        };
    }
    timeouts
}

/// Reads `value` as `T`, noting it under `at` if it is not one.
pub fn settings<T: DeserializeOwned + Default>(
    value: Option<&Value>,
    at: &str,
    notes: &mut Notes,
) -> Option<T> {
    let Some(value) = value else {
        return Some(T::default());
    };
    match serde_json::from_value(value.clone()) {
        Ok(v) => Some(v),
        Err(e) => {
            notes.not_carried(at, format!("unreadable: {e}"));
            None
        }
    }
}

/// A port as Xray writes it: a number or a numeric string (not a range or `env:`).
pub fn port(value: Option<&Value>) -> Option<u16> {
    match value? {
        Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn convert_all(
    inbounds: &[Inbound],
    api_tag: Option<&str>,
    timeouts: &Timeouts,
    notes: &mut Notes,
) -> Vec<OutInbound> {
    let mut out: Vec<OutInbound> = Vec::new();
    let mut tags = BTreeSet::new();
    for (i, inbound) in inbounds.iter().enumerate() {
        if api_tag.is_some() && inbound.tag.as_deref() == api_tag {
            continue; // The API's own inbound becomes [api].
        }
        let at = format!("inbounds[{i}]");
        let Some(mut converted) = convert(inbound, &at, notes) else {
            continue;
        };
        if !tags.insert(converted.tag.clone()) {
            converted.tag = format!("{}-{i}", converted.tag);
            tags.insert(converted.tag.clone());
        }
        converted.handshake_timeout = timeouts.handshake.clone();
        converted.idle_timeout = timeouts.idle.clone();
        converted.uplink_only_timeout = timeouts.uplink_only.clone();
        converted.downlink_only_timeout = timeouts.downlink_only.clone();
        out.push(converted);
    }
    out
}

fn convert(inbound: &Inbound, at: &str, notes: &mut Notes) -> Option<OutInbound> {
    let named = match &inbound.tag {
        Some(t) => format!("{at} ({t:?})"),
        None => at.to_string(),
    };
    let skip = |notes: &mut Notes, why: String| {
        notes.not_carried(&named, format!("left out: {why}"));
        None
    };
    let Some(port) = port(inbound.port.as_ref()) else {
        return skip(notes, format!("port {:?} is not one port", inbound.port));
    };
    let host = match &inbound.listen {
        None => "0.0.0.0".to_string(),
        Some(Value::String(h)) if h.is_empty() => "0.0.0.0".to_string(),
        Some(Value::String(h)) if h.parse::<std::net::IpAddr>().is_ok() => h.clone(),
        Some(other) => {
            return skip(
                notes,
                format!("listen {other} is not an IP address (unix sockets are not served)"),
            );
        }
    };
    let listen = crate::util::host_port(&host, port);
    let tag = inbound
        .tag
        .clone()
        .unwrap_or_else(|| format!("inbound-{port}"));
    let mut out = OutInbound {
        tag,
        listen,
        ..OutInbound::default()
    };
    let converted = match inbound.protocol.as_str() {
        "vless" => vless(inbound, &mut out, at, notes),
        "socks" | "mixed" => socks(inbound, &mut out, at, notes),
        "http" => http(inbound, &mut out, at, notes),
        other => Err(format!(
            "protocol {other:?} is not served (vless, socks and http are)"
        )),
    };
    if let Err(why) = converted {
        return skip(notes, why);
    }
    notes.unknown(at, &inbound.other);
    Some(out)
}

fn vless(
    inbound: &Inbound,
    out: &mut OutInbound,
    at: &str,
    notes: &mut Notes,
) -> Result<(), String> {
    let s: xray::VlessInSettings =
        settings(inbound.settings.as_ref(), &format!("{at}.settings"), notes)
            .ok_or("its settings are unreadable")?;
    if s.decryption.as_deref().is_some_and(|d| d != "none") {
        return Err(format!(
            "VLESS decryption {:?} is not supported",
            s.decryption
        ));
    }
    out.kind = "vless";
    out.tls = Some(vless_security(
        inbound.stream_settings.as_ref(),
        at,
        &out.tag,
        notes,
    )?);
    let mut bookkeeping = BTreeSet::new();
    for (j, c) in s.clients.iter().enumerate() {
        let cat = format!("{at}.settings.clients[{j}]");
        // 3x-ui's bookkeeping (limitIp, totalGB, expiryTime, enable, subId, ...) is the
        // panel's to enforce, not the core's: Xray ignores it too. One note for all.
        bookkeeping.extend(c.other.keys().cloned());
        let Some(id) = user_id(&c.id, &cat, notes) else {
            continue;
        };
        if let Err(e) = crate::config::Flow::parse(c.flow.as_deref().unwrap_or(""), false) {
            notes.not_carried(&cat, format!("left out: {e}"));
            continue;
        }
        out.users.push(OutUser {
            id,
            email: c.email.clone().unwrap_or_default(),
            flow: c.flow.clone().unwrap_or_default(),
        });
    }
    if !bookkeeping.is_empty() {
        let keys: Vec<String> = bookkeeping.into_iter().collect();
        notes.not_carried(
            &format!("{at}.settings.clients[*]"),
            format!(
                "{} are a panel's to enforce (Xray ignores them too)",
                keys.join(", ")
            ),
        );
    }
    for (j, f) in s.fallbacks.iter().enumerate() {
        let fat = format!("{at}.settings.fallbacks[{j}]");
        notes.unknown(&fat, &f.other);
        match fallback(f) {
            Ok(f) => out.fallback.push(f),
            Err(why) => notes.not_carried(&fat, format!("left out: {why}")),
        }
    }
    notes.unknown(&format!("{at}.settings"), &s.other);
    Ok(())
}

/// A user id as Xray reads one: a UUID, or a 1-30 byte string standing for the UUIDv5
/// of it under the nil namespace (what clients derive too, so it is written as that).
pub fn user_id(id: &str, at: &str, notes: &mut Notes) -> Option<String> {
    if let Some(uuid) = crate::util::parse_user_id(id) {
        return Some(uuid.to_string());
    }
    if (1..=30).contains(&id.len()) {
        let uuid = uuid::Uuid::new_v5(&uuid::Uuid::nil(), id.as_bytes());
        notes.not_carried(
            &format!("{at}.id"),
            format!("{id:?} is written as the UUID it stands for, {uuid}"),
        );
        return Some(uuid.to_string());
    }
    notes.not_carried(
        at,
        format!("left out: id {id:?} is neither a UUID nor a 1-30 byte string"),
    );
    None
}

fn fallback(f: &xray::Fallback) -> Result<OutFallback, String> {
    let dest = match &f.dest {
        Some(Value::Number(n)) => toml::Value::Integer(n.as_i64().ok_or("dest is not a port")?),
        Some(Value::String(s)) => match s.parse::<i64>() {
            Ok(p) => toml::Value::Integer(p),
            Err(_) => toml::Value::String(s.clone()),
        },
        other => return Err(format!("dest {other:?} is not a port, address or path")),
    };
    let proxy_protocol = match &f.xver {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|x| u8::try_from(x).ok())
                .filter(|x| *x <= 2)
                .ok_or(format!("xver {v} is not 0, 1 or 2"))?,
        ),
    };
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    Ok(OutFallback {
        dest,
        sni: nonempty(&f.name),
        alpn: nonempty(&f.alpn),
        path: nonempty(&f.path),
        proxy_protocol: proxy_protocol.filter(|x| *x > 0),
    })
}

/// The layers wasmray serves and dials: TCP (`tcp`/`raw`) with TLS.
pub fn tcp_with_tls(stream: Option<&xray::Stream>) -> Result<&xray::Stream, String> {
    let stream = stream.ok_or("no streamSettings: VLESS without TLS is not supported")?;
    if !matches!(stream.network.as_deref(), None | Some("tcp" | "raw")) {
        return Err(format!(
            "transport {:?} is not supported (tcp is)",
            stream.network
        ));
    }
    match stream.security.as_deref() {
        Some("tls") => Ok(stream),
        Some("reality") => Err("REALITY is not supported yet".into()),
        other => Err(format!("security {other:?} is not supported (tls is)")),
    }
}

/// The transport and security layers: TCP (`tcp`/`raw`) with TLS from files or inline.
fn vless_security(
    stream: Option<&xray::Stream>,
    at: &str,
    tag: &str,
    notes: &mut Notes,
) -> Result<OutTls, String> {
    let stream = tcp_with_tls(stream)?;
    let sat = format!("{at}.streamSettings");
    for (key, v) in [
        ("tcpSettings", &stream.tcp_settings),
        ("rawSettings", &stream.raw_settings),
    ] {
        let header = v
            .as_ref()
            .and_then(|v| v.pointer("/header/type"))
            .and_then(Value::as_str);
        if header.is_some_and(|h| h != "none") {
            return Err(format!("{key}.header {header:?} is not supported"));
        }
    }
    notes.unknown(&sat, &stream.other);
    let tls = stream
        .tls_settings
        .as_ref()
        .ok_or("security tls without tlsSettings")?;
    let tat = format!("{sat}.tlsSettings");
    notes.unknown(&tat, &tls.other);
    if tls.server_name.is_some() {
        notes.not_carried(
            &format!("{tat}.serverName"),
            "a server answers every SNI with its certificate",
        );
    }
    let cert = tls
        .certificates
        .first()
        .ok_or("tlsSettings has no certificate")?;
    if tls.certificates.len() > 1 {
        notes.not_carried(
            &format!("{tat}.certificates[1..]"),
            "wasmray serves one certificate per inbound (the first)",
        );
    }
    notes.unknown(&format!("{tat}.certificates[0]"), &cert.other);
    let (cert_file, key_file) = certificate_files(cert, tag, notes)?;
    Ok(OutTls {
        cert: cert_file,
        key: key_file,
        alpn: tls.alpn.clone().unwrap_or_default(),
    })
}

/// The certificate's files; inline PEM becomes files the CLI writes.
fn certificate_files(
    cert: &xray::Certificate,
    tag: &str,
    notes: &mut Notes,
) -> Result<(String, String), String> {
    if let (Some(c), Some(k)) = (&cert.certificate_file, &cert.key_file) {
        return Ok((c.clone(), k.clone()));
    }
    let pem = |v: &Option<Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Array(lines)) => lines
            .iter()
            .map(|l| l.as_str().map(String::from))
            .collect::<Option<Vec<_>>>()
            .map(|l| l.join("\n")),
        _ => None,
    };
    let (Some(c), Some(k)) = (pem(&cert.certificate), pem(&cert.key)) else {
        return Err("the certificate has neither files nor inline PEM".into());
    };
    let (cname, kname) = (format!("{tag}-cert.pem"), format!("{tag}-key.pem"));
    notes.files.push((cname.clone(), format!("{c}\n")));
    notes.files.push((kname.clone(), format!("{k}\n")));
    Ok((cname, kname))
}

fn socks(
    inbound: &Inbound,
    out: &mut OutInbound,
    at: &str,
    notes: &mut Notes,
) -> Result<(), String> {
    let s: xray::SocksSettings =
        settings(inbound.settings.as_ref(), &format!("{at}.settings"), notes)
            .ok_or("its settings are unreadable")?;
    out.kind = "socks";
    out.udp = s.udp;
    if s.auth.as_deref() == Some("password") {
        if s.accounts.is_empty() {
            return Err("auth password without accounts".into());
        }
        out.accounts = s
            .accounts
            .iter()
            .map(|a| OutAccount {
                user: a.user.clone(),
                pass: a.pass.clone(),
            })
            .collect();
    }
    notes.unknown(&format!("{at}.settings"), &s.other);
    no_stream(inbound, at)
}

fn http(
    inbound: &Inbound,
    out: &mut OutInbound,
    at: &str,
    notes: &mut Notes,
) -> Result<(), String> {
    let s = inbound.settings.as_ref().and_then(Value::as_object);
    if s.and_then(|s| s.get("accounts"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        return Err("accounts: wasmray's HTTP proxy inbound has no authentication, and an open proxy is not what was meant".into());
    }
    out.kind = "http";
    if let Some(s) = s {
        for key in s.keys().filter(|k| *k != "accounts") {
            notes.not_carried(&format!("{at}.settings.{key}"), "not carried over");
        }
    }
    no_stream(inbound, at)
}

/// The client-side inbounds are plain TCP.
fn no_stream(inbound: &Inbound, _at: &str) -> Result<(), String> {
    match inbound
        .stream_settings
        .as_ref()
        .and_then(|s| s.security.as_deref())
    {
        None | Some("none" | "") => Ok(()),
        Some(other) => Err(format!(
            "security {other:?} on a proxy inbound is not supported"
        )),
    }
}

/// `[plugins]` sniffing from the inbounds' (the first enabled one decides).
pub fn sniffing(inbounds: &[Inbound], api_tag: Option<&str>, notes: &mut Notes) -> OutPlugins {
    let mut chosen: Option<(usize, &xray::Sniffing)> = None;
    for (i, inbound) in inbounds.iter().enumerate() {
        if api_tag.is_some() && inbound.tag.as_deref() == api_tag {
            continue;
        }
        let Some(s) = &inbound.sniffing else { continue };
        let at = format!("inbounds[{i}].sniffing");
        notes.unknown(&at, &s.other);
        if s.metadata_only == Some(true) {
            notes.not_carried(
                &format!("{at}.metadataOnly"),
                "wasmray's sniffers always read the first bytes",
            );
        }
        if s.enabled != Some(true) {
            continue;
        }
        match chosen {
            None => chosen = Some((i, s)),
            Some((first, c))
                if c.dest_override != s.dest_override || c.route_only != s.route_only =>
            {
                notes.not_carried(
                    &at,
                    format!(
                        "sniffing is one setting in wasmray: inbounds[{first}]'s applies to all"
                    ),
                );
            }
            Some(_) => {}
        }
    }
    let Some((i, s)) = chosen else {
        return OutPlugins::default();
    };
    let mut dest_override = Vec::new();
    for (j, d) in s.dest_override.iter().enumerate() {
        match d.as_str() {
            "http" | "tls" => dest_override.push(d.clone()),
            other => notes.not_carried(
                &format!("inbounds[{i}].sniffing.destOverride[{j}]"),
                format!("{other:?} is not sniffed (http and tls are)"),
            ),
        }
    }
    OutPlugins {
        dest_override,
        route_only: s.route_only.unwrap_or(false),
        ..OutPlugins::default()
    }
}
