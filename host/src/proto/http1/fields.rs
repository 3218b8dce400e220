//! Header fields: lookups, `Connection` tokens, hop-by-hop rules, and the framing
//! fields (`Transfer-Encoding`, `Content-Length`).

use super::*;

pub(super) fn values<'a>(
    headers: &'a [(String, Vec<u8>)],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

/// The non-empty, trimmed elements of the comma lists in all `name` fields.
pub(super) fn tokens<'a>(
    headers: &'a [(String, Vec<u8>)],
    name: &'a str,
) -> impl Iterator<Item = &'a [u8]> {
    values(headers, name)
        .flat_map(|v| v.split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|t| !t.is_empty())
}

pub(super) fn has_header(headers: &[(String, Vec<u8>)], name: &str) -> bool {
    values(headers, name).next().is_some()
}

/// Whether `Connection` or `Proxy-Connection` carries `token`.
pub(super) fn connection_says(headers: &[(String, Vec<u8>)], token: &[u8]) -> bool {
    ["connection", "proxy-connection"]
        .iter()
        .any(|name| tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token)))
}

/// Whether `name` is hop-by-hop: in the fixed list, or named by a
/// `Connection` field (unless it is a framing field or `Host`).
pub(super) fn is_hop(headers: &[(String, Vec<u8>)], name: &str) -> bool {
    let is = |list: &[&str]| list.iter().any(|h| name.eq_ignore_ascii_case(h));
    if is(&HOP_BY_HOP) {
        return true;
    }
    !is(&PROTECTED)
        && tokens(headers, "connection").any(|t| t.eq_ignore_ascii_case(name.as_bytes()))
}

/// Whether the transfer codings end in `chunked`, applied exactly once.
pub(super) fn chunked_is_final(headers: &[(String, Vec<u8>)]) -> bool {
    let mut chunked_seen = 0usize;
    let mut last_is_chunked = false;
    for coding in tokens(headers, "transfer-encoding") {
        last_is_chunked = coding.eq_ignore_ascii_case(b"chunked");
        if last_is_chunked {
            chunked_seen = chunked_seen.saturating_add(1);
        }
    }
    last_is_chunked && chunked_seen == 1
}

/// The `Content-Length`, if any: every element of every field must be a
/// decimal number, and all must agree.
pub(super) fn content_length(headers: &[(String, Vec<u8>)]) -> Result<Option<u64>, HttpError> {
    let mut found = None;
    for element in values(headers, "content-length").flat_map(|v| v.split(|&b| b == b',')) {
        let n = parse_decimal(element.trim_ascii())?;
        if found.is_some_and(|prev| prev != n) {
            return Err(HttpError::ConflictingContentLength);
        }
        found = Some(n);
    }
    Ok(found)
}

pub(super) fn parse_decimal(s: &[u8]) -> Result<u64, HttpError> {
    if s.is_empty() {
        return Err(HttpError::InvalidContentLength);
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let digit = (b as char)
            .to_digit(10)
            .ok_or(HttpError::InvalidContentLength)?;
        acc.checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(HttpError::InvalidContentLength)
    })
}
