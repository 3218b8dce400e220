//! Reading and writing `vless://` share links.
//!
//! The form is the de-facto standard of XTLS/Xray-core discussion #716 ("VMessAEAD /
//! VLESS 分享链接标准提案"), as v2rayN, Xray's exports, NekoBox and sing-box write it:
//!
//! ```text
//! vless://UUID@HOST:PORT?type=tcp&security=tls&sni=..&alpn=h2%2Chttp%2F1.1&fp=chrome
//!        &allowInsecure=1&flow=&encryption=none&headerType=none#REMARK
//! ```
//!
//! Accepted:
//! - scheme `vless://` in any letter case; surrounding whitespace is ignored;
//! - the user id as a hyphenated UUID or as 32 hex digits, percent-decoded;
//! - a host that is a DNS name or IPv4 address (letters, digits, `-`, `.`, `_`;
//!   IDNs must already be in `xn--` form, as the proposal requires) or a bracketed
//!   IPv6 address (`[2001:db8::1]`, stored without brackets); the port is required
//!   and must be 1..=65535;
//! - an empty path or `/` before the query (`host:443/?...` as some tools write);
//! - `sni`, or `peer` as older Shadowrocket-style links say (both may appear only if
//!   they agree); an empty value means "not given" (the daemon then uses the host);
//! - `alpn` as a comma-separated list (blank items dropped);
//! - `allowInsecure` (v2rayN, Xray) or `insecure`, as `1`/`true`/`0`/`false`;
//! - `type` or `network` = `tcp` (or `raw`, Xray's newer name for the same thing),
//!   `headerType` = `none`, `encryption` = `none`, `flow` empty - each may be absent;
//! - Shadowrocket-style `tls=1` when `security` is absent, `obfs=none`, and
//!   `remarks` as the name when there is no `#fragment`;
//! - any other parameter (`fp`, `host`, `path`, `spx`, ...) is ignored: none of them
//!   changes what a plain VLESS-over-TLS-over-TCP connection needs.
//!
//! Decoding: every value, the user id and the fragment are percent-decoded and must be
//! UTF-8. A `+` is kept as a literal `+`, in the query as in the fragment: the proposal
//! has values escaped with `encodeURIComponent`, which writes a space as `%20` and
//! never as `+` (the fragment is never form-encoded anyway). Malformed escapes such as
//! `%zz` are kept literally, as browsers do. An empty fragment means no name.
//! Parameter names are case-sensitive (as the proposal says); the constant values
//! (`tls`, `tcp`, `none`, ...) are compared ignoring ASCII case.
//!
//! Refused, each with an error naming the parameter and value:
//! - `security` absent or `none`: VLESS has no encryption of its own, and wasmray's
//!   vless outbound only speaks VLESS inside TLS;
//! - `security=reality` or `xtls`, `flow=xtls-rprx-vision` (or any flow),
//!   transports other than plain TCP (`ws`, `grpc`, `http`/`h2`, `httpupgrade`,
//!   `xhttp`/`splithttp`, `kcp`, `quic`), `headerType=http` and `obfs` other than
//!   `none`: wasmray does not implement them, and connecting without them would
//!   fail or silently talk a different protocol than the server expects;
//! - `encryption` other than `none` (e.g. Xray's newer post-quantum VLESS
//!   encryption, or `aes-128-gcm` from a VMess link): not implemented here;
//! - the same parameter twice (the proposal forbids it, and which one wins would
//!   differ between tools);
//! - links longer than 8 KiB, and Shadowrocket's base64 form without `@`.
//!
//! [`format_vless_link`] writes the form of the daemon's `share` module; the parser
//! reads it back unchanged.

use std::net::Ipv6Addr;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// Longest link accepted, in bytes.
pub const MAX_LINK_LEN: usize = 8 * 1024;

/// Characters escaped in query values and the fragment (the same set as the daemon's
/// share links use).
const ESCAPE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b',')
    .add(b'/')
    .add(b':')
    .add(b';')
    .add(b'<')
    .add(b'=')
    .add(b'>')
    .add(b'?')
    .add(b'@')
    .add(b'[')
    .add(b'\\')
    .add(b']')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// What a `vless://` link says about a VLESS-over-TLS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlessLink {
    pub id: uuid::Uuid,
    /// A DNS name or an IP address; IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// From `sni` (or `peer`); `None` when absent or empty.
    pub sni: Option<String>,
    /// From the comma-separated `alpn`; empty when absent.
    pub alpn: Vec<String>,
    /// From `allowInsecure` or `insecure`: skip certificate verification.
    pub insecure: bool,
    /// From `flow`: "", "xtls-rprx-vision" or "xtls-rprx-vision-udp443".
    pub flow: String,
    /// The `#fragment` (or `remarks`), percent-decoded; `None` when absent or empty.
    pub name: Option<String>,
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    #[error("share link is {len} bytes long; at most {max} are accepted", max = MAX_LINK_LEN)]
    TooLong { len: usize },
    #[error("not a vless:// link: {0:?}")]
    NotVless(String),
    #[error(
        "vless link has no `id@` before the server; Shadowrocket's base64 form is not \
         supported, export the standard vless://UUID@host:port?... form"
    )]
    MissingId,
    #[error("vless link user id is not a UUID: {0:?}")]
    BadId(String),
    #[error("vless link server host is invalid: {0:?}")]
    BadHost(String),
    #[error("vless link has no port after the host {0:?} (write host:port)")]
    MissingPort(String),
    #[error("vless link port must be a number from 1 to 65535, not {0:?}")]
    BadPort(String),
    #[error("vless link has an unexpected path {0:?} (only `/` or nothing may precede `?`)")]
    UnexpectedPath(String),
    #[error("vless link {what} is not valid UTF-8 after percent-decoding: {raw:?}")]
    BadEncoding { what: String, raw: String },
    #[error("vless link parameter `{0}` appears more than once")]
    DuplicateParam(String),
    #[error("vless link parameter `{param}={value}` is invalid; expected {expected}")]
    BadValue {
        param: String,
        value: String,
        expected: &'static str,
    },
    #[error("vless link parameters `{a}` and `{b}` disagree")]
    Conflict { a: String, b: String },
    #[error(
        "vless link has `encryption={0}`, which is not supported: wasmray's VLESS has \
         no encryption layer of its own; use encryption=none (TLS protects the traffic)"
    )]
    Encryption(String),
    #[error(
        "wasmray's vless outbound needs TLS, but the link has {0}; VLESS itself is \
         unencrypted, so the server must use security=tls"
    )]
    NeedsTls(String),
    #[error("vless link parameter `{param}={value}` is not supported: {why}")]
    Unsupported {
        param: String,
        value: String,
        why: &'static str,
    },
}

/// Parses a `vless://` share link (see the module documentation for the forms).
pub fn parse_vless_link(text: &str) -> Result<VlessLink, LinkError> {
    if text.len() > MAX_LINK_LEN {
        return Err(LinkError::TooLong { len: text.len() });
    }
    let text = text.trim();
    let rest = match text.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("vless") => rest,
        _ => return Err(LinkError::NotVless(shorten(text))),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, q),
        None => (rest, ""),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if !path.is_empty() && path != "/" {
        return Err(LinkError::UnexpectedPath(path.to_string()));
    }
    let (userinfo, hostport) = authority.rsplit_once('@').ok_or(LinkError::MissingId)?;
    let id = parse_id(userinfo)?;
    let (host, port) = parse_hostport(hostport)?;
    let params = Params::parse(query)?;

    if let Some(enc) = params.get("encryption")
        && !enc.eq_ignore_ascii_case("none")
    {
        return Err(LinkError::Encryption(enc.to_string()));
    }
    check_security(&params)?;
    check_transport(&params)?;
    let flow = match params.get("flow").unwrap_or("") {
        "" | "none" => String::new(),
        f @ ("xtls-rprx-vision" | "xtls-rprx-vision-udp443") => f.to_string(),
        other => {
            return Err(unsupported(
                "flow",
                other,
                "the flows are xtls-rprx-vision (XTLS Vision) and none",
            ));
        }
    };

    let sni = match (non_empty(params.get("sni")), non_empty(params.get("peer"))) {
        (Some(a), Some(b)) if a != b => {
            return Err(LinkError::Conflict {
                a: format!("sni={a}"),
                b: format!("peer={b}"),
            });
        }
        (a, b) => a.or(b).map(str::to_string),
    };
    let alpn = params
        .get("alpn")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let insecure = match (
        params.bool_param("allowInsecure")?,
        params.bool_param("insecure")?,
    ) {
        (Some(a), Some(b)) if a != b => {
            return Err(LinkError::Conflict {
                a: "allowInsecure".into(),
                b: "insecure".into(),
            });
        }
        (a, b) => a.or(b).unwrap_or(false),
    };
    let name = match fragment {
        Some(f) => non_empty(Some(&decode(f, "name (#fragment)")?)).map(str::to_string),
        None => non_empty(params.get("remarks")).map(str::to_string),
    };
    Ok(VlessLink {
        id,
        host,
        port,
        sni,
        alpn,
        insecure,
        flow,
        name,
    })
}

/// Writes `link` in the form the daemon's share links use:
/// `vless://ID@HOST:PORT?encryption=none&security=tls&sni=..&type=tcp&headerType=none
/// [&alpn=..][&allowInsecure=1]#NAME`. `sni` and the fragment are left out when `None`.
pub fn format_vless_link(link: &VlessLink) -> String {
    let enc = |s: &str| utf8_percent_encode(s, ESCAPE).to_string();
    let mut out = format!(
        "vless://{}@{}?encryption=none&security=tls",
        link.id.hyphenated(),
        crate::util::host_port(&link.host, link.port)
    );
    if let Some(sni) = &link.sni {
        out.push_str("&sni=");
        out.push_str(&enc(sni));
    }
    out.push_str("&type=tcp&headerType=none");
    if !link.flow.is_empty() {
        out.push_str("&flow=");
        out.push_str(&enc(&link.flow));
    }
    if !link.alpn.is_empty() {
        out.push_str("&alpn=");
        out.push_str(&enc(&link.alpn.join(",")));
    }
    if link.insecure {
        out.push_str("&allowInsecure=1");
    }
    if let Some(name) = &link.name {
        out.push('#');
        out.push_str(&enc(name));
    }
    out
}

/// The decoded query parameters, in order.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Result<Params, LinkError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let key = decode(key, "parameter name")?;
            let value = decode(value, &format!("parameter `{key}`"))?;
            if out.iter().any(|(k, _)| *k == key) {
                return Err(LinkError::DuplicateParam(key));
            }
            out.push((key, value));
        }
        Ok(Params(out))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn bool_param(&self, key: &str) -> Result<Option<bool>, LinkError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        if value == "1" || value.eq_ignore_ascii_case("true") {
            Ok(Some(true))
        } else if value.is_empty() || value == "0" || value.eq_ignore_ascii_case("false") {
            Ok(Some(false))
        } else {
            Err(bad_value(key, value, "1, true, 0 or false"))
        }
    }
}

fn check_security(params: &Params) -> Result<(), LinkError> {
    match params.get("security") {
        Some(s) if s.eq_ignore_ascii_case("tls") => Ok(()),
        Some(s) if s.is_empty() || s.eq_ignore_ascii_case("none") => {
            Err(LinkError::NeedsTls(format!("security={s}")))
        }
        Some(s) if s.eq_ignore_ascii_case("reality") => Err(unsupported(
            "security",
            s,
            "wasmray does not implement REALITY; only servers with a real TLS \
             certificate (security=tls) can be used",
        )),
        Some(s) if s.eq_ignore_ascii_case("xtls") => Err(unsupported(
            "security",
            s,
            "XTLS is obsolete and not implemented; use security=tls",
        )),
        Some(s) => Err(bad_value("security", s, "tls")),
        // Shadowrocket-style `tls=1` when `security` is absent.
        None => match params.bool_param("tls")? {
            Some(true) => Ok(()),
            Some(false) => Err(LinkError::NeedsTls(format!(
                "tls={}",
                params.get("tls").unwrap_or_default()
            ))),
            None => Err(LinkError::NeedsTls("no `security` parameter".into())),
        },
    }
}

fn check_transport(params: &Params) -> Result<(), LinkError> {
    for key in ["type", "network"] {
        let Some(t) = params.get(key) else { continue };
        if t.eq_ignore_ascii_case("tcp") || t.eq_ignore_ascii_case("raw") {
            continue;
        }
        let known = [
            "ws",
            "grpc",
            "gun",
            "http",
            "h2",
            "httpupgrade",
            "xhttp",
            "splithttp",
            "kcp",
            "mkcp",
            "quic",
        ];
        if known.iter().any(|k| t.eq_ignore_ascii_case(k)) {
            return Err(unsupported(
                key,
                t,
                "wasmray's vless outbound only speaks VLESS over TLS over plain TCP \
                 (type=tcp), not this transport",
            ));
        }
        return Err(bad_value(key, t, "tcp"));
    }
    if let Some(h) = params.get("headerType")
        && !h.is_empty()
        && !h.eq_ignore_ascii_case("none")
    {
        return Err(unsupported(
            "headerType",
            h,
            "header obfuscation is not implemented; use headerType=none",
        ));
    }
    if let Some(o) = params.get("obfs")
        && !o.is_empty()
        && !o.eq_ignore_ascii_case("none")
    {
        return Err(unsupported(
            "obfs",
            o,
            "wasmray's vless outbound only speaks VLESS over TLS over plain TCP",
        ));
    }
    Ok(())
}

/// The user id (`util::parse_user_id`), possibly percent-encoded.
fn parse_id(userinfo: &str) -> Result<uuid::Uuid, LinkError> {
    let id = decode(userinfo, "user id")?;
    crate::util::parse_user_id(&id).ok_or_else(|| LinkError::BadId(shorten(&id)))
}

/// `host:port` or `[v6]:port`.
fn parse_hostport(text: &str) -> Result<(String, u16), LinkError> {
    let (host, port) = if let Some(inner) = text.strip_prefix('[') {
        let (v6, after) = inner
            .split_once(']')
            .ok_or_else(|| LinkError::BadHost(shorten(text)))?;
        if v6.parse::<Ipv6Addr>().is_err() {
            return Err(LinkError::BadHost(shorten(v6)));
        }
        let port = match after.strip_prefix(':') {
            Some(p) => p,
            None if after.is_empty() => return Err(LinkError::MissingPort(shorten(v6))),
            None => return Err(LinkError::BadHost(shorten(text))),
        };
        (v6, port)
    } else {
        let (host, port) = text
            .rsplit_once(':')
            .ok_or_else(|| LinkError::MissingPort(shorten(text)))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if host.is_empty() || host.len() > 253 || !host.chars().all(valid) {
            return Err(LinkError::BadHost(shorten(host)));
        }
        (host, port)
    };
    if port.is_empty() {
        return Err(LinkError::MissingPort(shorten(host)));
    }
    let bad_port = || LinkError::BadPort(shorten(port));
    // `u16::from_str` would also take a leading `+`; insist on digits.
    if port.len() > 5 || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad_port());
    }
    match port.parse::<u16>() {
        Ok(p) if p != 0 => Ok((host.to_string(), p)),
        _ => Err(bad_port()),
    }
}

/// Percent-decodes `raw` (`+` stays `+`); `what` names the part for the error.
fn decode(raw: &str, what: &str) -> Result<String, LinkError> {
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| LinkError::BadEncoding {
            what: what.to_string(),
            raw: shorten(raw),
        })
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.filter(|s| !s.is_empty())
}

fn unsupported(param: &str, value: &str, why: &'static str) -> LinkError {
    LinkError::Unsupported {
        param: param.to_string(),
        value: shorten(value),
        why,
    }
}

fn bad_value(param: &str, value: &str, expected: &'static str) -> LinkError {
    LinkError::BadValue {
        param: param.to_string(),
        value: shorten(value),
        expected,
    }
}

/// Keeps error messages readable when the input is huge.
fn shorten(s: &str) -> String {
    const MAX: usize = 100;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(MAX).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
#[path = "link_tests.rs"]
mod tests;
