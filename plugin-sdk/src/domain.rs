//! Domain names: normalising, validating, and matching them as Xray's routing does.
//!
//! Matching always happens on a [`normalize`]d domain (ASCII lower-case, one trailing dot
//! removed), so `Example.COM.` and `example.com` are the same name.

use std::fmt;

use regex::Regex;

/// Lower-cases `domain` (ASCII) and removes one trailing dot.
pub fn normalize(domain: &str) -> String {
    let d = domain.strip_suffix('.').unwrap_or(domain);
    d.to_ascii_lowercase()
}

/// True when `s` looks like a domain name a daemon can dial: 1 to 253 bytes of
/// `[0-9A-Za-z-._]`, no empty label (a single trailing dot is allowed). This is the
/// character set Xray accepts in a VLESS domain address.
pub fn is_valid_domain(s: &str) -> bool {
    let body = s.strip_suffix('.').unwrap_or(s);
    !body.is_empty()
        && body.len() <= 253
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && body
            .split('.')
            .all(|label| !label.is_empty() && label.len() <= 63)
}

/// True when `domain` is `suffix` or a subdomain of it, on a label boundary:
/// `example.com` matches `example.com` and `a.example.com`, not `badexample.com`.
/// Both sides must already be normalised.
pub fn has_suffix_on_label(domain: &str, suffix: &str) -> bool {
    if suffix.is_empty() {
        return true;
    }
    match domain.strip_suffix(suffix) {
        Some("") => true,
        Some(rest) => rest.ends_with('.') || suffix.starts_with('.'),
        None => false,
    }
}

/// One domain condition of a rule.
///
/// | written as | meaning |
/// |---|---|
/// | `full:example.com` | exactly this name |
/// | `domain:example.com`, `suffix:example.com` | this name or a subdomain (label boundary) |
/// | `keyword:tracker`, or no prefix | the name contains this text |
/// | `regex:^x[0-9]+\.example$`, `regexp:...` | the regex (unanchored) matches the lower-case name |
/// | `dotless:abc` | the name has no dot and contains `abc` (`dotless:` alone: no dot) |
#[derive(Clone)]
pub enum DomainMatcher {
    /// `full:`
    Full(String),
    /// `domain:` / `suffix:`
    Suffix(String),
    /// `keyword:` or no prefix.
    Keyword(String),
    /// `regex:` / `regexp:`
    Regex(Regex),
    /// `dotless:`
    Dotless(String),
}

impl DomainMatcher {
    /// Parses one condition. Values are normalised (lower-cased) except regexes, which
    /// see the lower-case name as written. `geosite:` and `ext:` lists are refused here:
    /// open them with [`DomainList`](crate::geodata::DomainList).
    pub fn parse(spec: &str) -> Result<DomainMatcher, String> {
        let (kind, value) = match spec.split_once(':') {
            Some((k, v)) if KINDS.contains(&k) => (k, v),
            Some((k @ ("geosite" | "ext" | "ext-domain" | "ext-site"), _)) => {
                return Err(format!(
                    "{k}: is a list of the daemon's geodata, not a pattern (geodata::DomainList opens it): {spec:?}"
                ));
            }
            _ => ("keyword", spec),
        };
        let needs_value = |v: &str| {
            if v.is_empty() {
                Err(format!("empty {kind}: value in {spec:?}"))
            } else {
                Ok(normalize(v))
            }
        };
        Ok(match kind {
            "full" => DomainMatcher::Full(needs_value(value)?),
            "domain" | "suffix" => DomainMatcher::Suffix(needs_value(value)?),
            "keyword" => DomainMatcher::Keyword(needs_value(value)?),
            "dotless" => DomainMatcher::Dotless(value.to_ascii_lowercase()),
            _ => DomainMatcher::Regex(crate::pattern::compile(value)?),
        })
    }

    /// True when the (normalised) `domain` matches.
    pub fn matches(&self, domain: &str) -> bool {
        match self {
            DomainMatcher::Full(v) => domain == v,
            DomainMatcher::Suffix(v) => has_suffix_on_label(domain, v),
            DomainMatcher::Keyword(v) => domain.contains(v.as_str()),
            DomainMatcher::Regex(r) => r.is_match(domain),
            DomainMatcher::Dotless(v) => !domain.contains('.') && domain.contains(v.as_str()),
        }
    }
}

const KINDS: [&str; 7] = [
    "full", "domain", "suffix", "keyword", "regex", "regexp", "dotless",
];

impl fmt::Debug for DomainMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DomainMatcher::Full(v) => write!(f, "full:{v}"),
            DomainMatcher::Suffix(v) => write!(f, "domain:{v}"),
            DomainMatcher::Keyword(v) => write!(f, "keyword:{v}"),
            DomainMatcher::Regex(r) => write!(f, "regex:{}", r.as_str()),
            DomainMatcher::Dotless(v) => write!(f, "dotless:{v}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(spec: &str, d: &str) -> bool {
        DomainMatcher::parse(spec).unwrap().matches(&normalize(d))
    }

    #[test]
    fn kinds() {
        assert!(m("full:Example.com", "example.COM"));
        assert!(!m("full:example.com", "a.example.com"));
        for spec in [
            "domain:example.com",
            "suffix:example.com",
            "suffix:.example.com",
        ] {
            assert!(m(spec, "a.b.example.com"), "{spec}");
            assert!(!m(spec, "badexample.com"), "{spec}");
        }
        assert!(m("domain:example.com", "example.com"));
        assert!(m("domain:example.com", "example.com."));
        assert!(m("keyword:track", "a.tracker.net"));
        assert!(m("track", "a.tracker.net"));
        assert!(!m("track", "a.trac.net"));
        assert!(m(r"regex:^x[0-9]+\.example$", "X12.example"));
        assert!(!m(r"regexp:^x[0-9]+\.example$", "x.example"));
        assert!(m("dotless:loc", "localhost"));
        assert!(!m("dotless:loc", "localhost.lan"));
        assert!(m("dotless:", "intranet"));
    }

    #[test]
    fn refusals() {
        assert!(
            DomainMatcher::parse("regex:(")
                .unwrap_err()
                .starts_with("invalid regex \"(\"")
        );
        assert!(DomainMatcher::parse("geosite:cn").is_err());
        assert!(DomainMatcher::parse("full:").is_err());
        assert!(DomainMatcher::parse("").is_err());
        // An unknown prefix is part of a keyword, as in Xray.
        assert!(m("foo:bar", "x.foo:bar"));
    }

    #[test]
    fn validity() {
        for ok in [
            "example.com",
            "example.com.",
            "a_b.c-d.e",
            "localhost",
            "1.2.3.4",
        ] {
            assert!(is_valid_domain(ok), "{ok}");
        }
        let long_label = "a".repeat(64);
        for bad in [
            "",
            ".",
            "a..b",
            ".a",
            "a b",
            "a/b",
            "é.com",
            "a:1",
            long_label.as_str(),
        ] {
            assert!(!is_valid_domain(bad), "{bad}");
        }
    }
}
