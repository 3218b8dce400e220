//! Request targets: authority form (CONNECT) and absolute form (`http://host[:port]/path`),
//! with hosts and ports checked.

use std::net::Ipv6Addr;

use super::*;

pub(super) fn parse_target(method: &str, raw: &str) -> Result<RequestTarget, HttpError> {
    if method == "CONNECT" {
        if raw.contains(['/', '@', '?', '#']) {
            return Err(HttpError::InvalidTarget);
        }
        let (host, port) = split_host_port(raw, None)?;
        return Ok(RequestTarget::Authority { host, port });
    }
    parse_absolute(raw)
}

pub(super) fn parse_absolute(raw: &str) -> Result<RequestTarget, HttpError> {
    if raw.starts_with('/') || raw == "*" {
        return Err(HttpError::NotAProxyRequest);
    }
    let rest = strip_prefix_ci(raw, "http://").ok_or_else(|| scheme_error(raw))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at_checked(end).ok_or(HttpError::InvalidTarget)?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = split_host_port(host_port, Some(80))?;
    Ok(RequestTarget::Absolute {
        host,
        port,
        path: origin_path(tail),
    })
}

/// The error for an absolute target that is not `http://`.
pub(super) fn scheme_error(raw: &str) -> HttpError {
    if strip_prefix_ci(raw, "https://").is_some() {
        return HttpError::HttpsNotSupported;
    }
    match raw.split_once("://") {
        Some((scheme, _)) if is_scheme(scheme) => HttpError::UnsupportedScheme,
        _ => HttpError::InvalidTarget,
    }
}

pub(super) fn is_scheme(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

pub(super) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// Path and query without the fragment; `/` when empty.
pub(super) fn origin_path(tail: &str) -> String {
    let tail = tail.split_once('#').map_or(tail, |(before, _)| before);
    if tail.starts_with('/') {
        tail.to_owned()
    } else {
        format!("/{tail}")
    }
}

/// Splits `host:port` / `[v6]:port`. An absent or empty port takes
/// `default_port`, or is an error when there is none (CONNECT).
pub(super) fn split_host_port(
    s: &str,
    default_port: Option<u16>,
) -> Result<(String, u16), HttpError> {
    let (host, port) = match s.strip_prefix('[') {
        Some(bracketed) => split_ipv6(bracketed)?,
        None => split_plain(s)?,
    };
    let port = match port {
        None | Some("") => default_port.ok_or(HttpError::InvalidPort)?,
        Some(digits) => parse_port(digits)?,
    };
    Ok((host.to_owned(), port))
}

/// `::1]:443` (after the `[`) into `::1` and `Some("443")`.
pub(super) fn split_ipv6(s: &str) -> Result<(&str, Option<&str>), HttpError> {
    let (host, after) = s.split_once(']').ok_or(HttpError::InvalidHost)?;
    if host.parse::<Ipv6Addr>().is_err() {
        return Err(HttpError::InvalidHost);
    }
    match after.strip_prefix(':') {
        Some(port) => Ok((host, Some(port))),
        None if after.is_empty() => Ok((host, None)),
        None => Err(HttpError::InvalidTarget),
    }
}

/// `example.com:80` into a validated host and optional port text.
pub(super) fn split_plain(s: &str) -> Result<(&str, Option<&str>), HttpError> {
    let (host, port) = match s.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (s, None),
    };
    let valid = !host.is_empty()
        && host.len() <= MAX_HOST_LEN
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if valid {
        Ok((host, port))
    } else {
        Err(HttpError::InvalidHost)
    }
}

pub(super) fn parse_port(s: &str) -> Result<u16, HttpError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HttpError::InvalidPort);
    }
    match s.parse::<u16>() {
        Ok(port) if port != 0 => Ok(port),
        _ => Err(HttpError::InvalidPort),
    }
}
