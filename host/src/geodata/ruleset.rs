//! sing-box rule-sets: the headless rules of a `.srs` or source `.json` file, with the
//! items wasmray routes on (domain, domain_suffix, domain_keyword, domain_regex,
//! ip_cidr, source_ip_cidr), default and logical rules, and `invert`.
//!
//! A rule-set matches when any of its rules does. A default rule matches, as sing-box
//! defines it, when each group it has matches: the destination group (domains and
//! `ip_cidr`) and the source group (`source_ip_cidr`). Items wasmray cannot evaluate
//! (ports, processes, networks, ...) refuse the file by name: dropping them would widen
//! the rule.

use std::net::IpAddr;

use super::domains::{Domains, Selector};
use super::ips::IpList;

/// Logical rules nest at most this deep (untrusted files).
pub const MAX_DEPTH: usize = 16;

/// What a rule is asked about; an absent fact matches no item that needs it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    /// Lower-case, without a trailing dot.
    pub domain: Option<&'a str>,
    pub ip: Option<IpAddr>,
    pub source: Option<IpAddr>,
}

pub struct DefaultRule {
    /// The rule's domain items as list 0 of their own structure.
    pub domains: Option<(Domains, Selector)>,
    pub ip: Option<IpList>,
    pub source: Option<IpList>,
    pub invert: bool,
}

pub enum Rule {
    Default(Box<DefaultRule>),
    Logical {
        and: bool,
        rules: Vec<Rule>,
        invert: bool,
    },
}

/// One rule-set file.
pub struct RuleSet {
    pub rules: Vec<Rule>,
}

impl DefaultRule {
    fn matches(&self, q: &Query<'_>) -> bool {
        let has_destination = self.domains.is_some() || self.ip.is_some();
        let destination = !has_destination
            || self
                .domains
                .as_ref()
                .zip(q.domain)
                .is_some_and(|((d, sel), name)| d.contains(sel, name))
            || self
                .ip
                .as_ref()
                .zip(q.ip)
                .is_some_and(|(l, ip)| l.contains(ip));
        let source = self
            .source
            .as_ref()
            .is_none_or(|l| q.source.is_some_and(|ip| l.contains(ip)));
        (destination && source) != self.invert
    }
}

impl Rule {
    pub fn matches(&self, q: &Query<'_>) -> bool {
        match self {
            Rule::Default(rule) => rule.matches(q),
            Rule::Logical { and, rules, invert } => {
                let hit = if *and {
                    rules.iter().all(|r| r.matches(q))
                } else {
                    rules.iter().any(|r| r.matches(q))
                };
                hit != *invert
            }
        }
    }

    /// Entries held, for the load log.
    fn size(&self) -> usize {
        match self {
            Rule::Default(r) => {
                r.domains.as_ref().map_or(0, |(d, _)| d.len())
                    + r.ip.as_ref().map_or(0, IpList::len)
                    + r.source.as_ref().map_or(0, IpList::len)
            }
            Rule::Logical { rules, .. } => rules.iter().map(Rule::size).sum(),
        }
    }
}

impl RuleSet {
    pub fn matches(&self, q: &Query<'_>) -> bool {
        self.rules.iter().any(|r| r.matches(q))
    }

    /// Domain entries and IP ranges held.
    pub fn size(&self) -> usize {
        self.rules.iter().map(Rule::size).sum()
    }
}
