//! `route-rules`: Xray-style routing rules as a wasmray route-stage plugin.
//!
//! ```toml
//! [plugins.config.route-rules]
//! default = "direct"                 # no rule matched; absent: the daemon's first outbound
//! domain_strategy = "ip_if_non_match" # or "as_is" (default), "ip_on_demand"
//!
//! [[plugins.config.route-rules.rule]]
//! tag = "ads"                        # optional, names the rule in the access log
//! domain = ["suffix:ads.example", "keyword:tracker", "full:bad.example",
//!           "regex:^x[0-9]+\\.example$", "plain-means-keyword",
//!           "geosite:category-ads-all", "geosite:google@cn", "ext:my.dat:corp"]
//! rule_set = ["ads"]                 # [geodata.rule_sets] names
//! ip = ["10.0.0.0/8", "fd00::/8", "1.2.3.4", "geoip:private", "!geoip:cn"]
//! port = "1-1024,8443"               # or 443, or a list of either
//! source = ["127.0.0.0/8"]
//! source_port = "1024-65535"
//! network = "tcp"                    # "tcp", "udp", "tcp,udp"
//! user = ["alice@example.com", "regex:@corp\\.example$"]
//! inbound = ["vless-in"]
//! protocol = ["http", "tls"]         # prefix match: "http" matches "http1"
//! attrs = { "cache-control" = "no-cache" }
//! outbound = "block"
//! ```
//!
//! # Semantics (Xray's routing, `xray-wire.md` section 6)
//!
//! * Rules are tried in order; the first match wins and answers with its `outbound`.
//!   Nothing matched: `default`, or no-match without one (the daemon then uses its first
//!   outbound, as Xray does).
//! * Inside a rule every field given must match (AND); inside a field any value may
//!   match (OR). A rule with no match field, or with an empty list, is refused.
//! * `domain` looks at the sniffed domain if a sniffer found one, else at the target if it
//!   is a domain, lower-cased (never at an IP). Prefixes: `full:`, `domain:`/`suffix:`
//!   (the name or a subdomain, on a label boundary), `keyword:` or none (substring),
//!   `regex:`/`regexp:` (unanchored, on the lower-case name), `dotless:`, and
//!   `geosite:NAME` / `geosite:NAME@ATTR` (a list of the daemon's `[geodata] geosite`,
//!   entries with every attribute named), and Xray's `ext:FILE:NAME[@ATTR]` (a list of
//!   the geosite-format FILE in `[geodata] assets`).
//! * `ip` looks at the target when it is an IP literal, or at the addresses the daemon
//!   resolved for the domain (see `domain_strategy`); `source` at the client's IP. IPv4-mapped IPv6 addresses match IPv4 networks. Both take
//!   `geoip:CODE` (a list of `[geodata] geoip`), `ext:FILE:CODE` (of the geoip-format
//!   FILE in `[geodata] assets`) and their negations `!geoip:CODE`, `!ext:FILE:CODE`
//!   (Xray's `geoip:!CODE` too): every address not in the list.
//! * `rule_set`: sing-box rule-sets of `[geodata.rule_sets]`, by name; one matches when
//!   any of its rules does, asked with the domain, the target IP and the source IP.
//! * `port` / `source_port`: the target / source port, `"53,443,1000-2000"` or a number.
//! * `user`: the authenticated user's email, exact, or `regex:`.
//! * `inbound`: the inbound tag, exact. `network`: `tcp` and/or `udp`.
//! * `protocol`: the sniffed protocol starts with one of the values.
//! * `attrs`: every key (lower-cased) must exist and its value match the unanchored,
//!   case-sensitive regex.
//!
//! * `domain_strategy` (Xray's `domainStrategy`) says when a domain is resolved for
//!   the `ip` rules (with the daemon's `[dns]`, within its timeout; the answer is also
//!   what a `direct` outbound dials):
//!   - `as_is` (the default): never; `ip` rules match only IP targets.
//!   - `ip_if_non_match`: when no rule matched the domain, it is resolved and every
//!     rule is tried again with its addresses.
//!   - `ip_on_demand`: as soon as the first rule with `ip` or `rule_set` is reached.
//!
//!   A rule matches when any resolved address does. Resolution failed or timed out:
//!   the rules are tried with no address (so `default` decides, as in Xray).
//!
//! Everything is parsed and compiled at configure; an invalid domain regex, CIDR, port
//! list, network or attrs regex refuses the config with an error naming the place, e.g.
//! `rule[2].domain[0]: invalid regex "(": ...`. So does a list the daemon does not
//! have (`rule[0].domain[1]: no list "nope"`).
//!
//! The answer sets the outbound and the attribute `route.rule`: the rule's `tag`, its
//! index, or `default`.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;
use serde_json::Value;
use wasmray_plugin_sdk::domain::DomainMatcher;
use wasmray_plugin_sdk::geodata::{self, DomainList, IpList, RuleSet};
use wasmray_plugin_sdk::net::{Cidr, PortList};
use wasmray_plugin_sdk::pattern::{self, Regex};
use wasmray_plugin_sdk::{Config, Delta, Descriptor, Network, Plugin, Snapshot, Verdict};

/// The attribute naming the rule that decided.
pub const RULE_ATTRIBUTE: &str = "route.rule";

/// The configured router.
pub struct RouteRules {
    rules: Vec<Rule>,
    default: Option<String>,
    strategy: DomainStrategy,
}

/// When a domain is resolved for the `ip` rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
enum DomainStrategy {
    #[default]
    #[serde(rename = "as_is", alias = "AsIs")]
    AsIs,
    #[serde(rename = "ip_if_non_match", alias = "IPIfNonMatch")]
    IpIfNonMatch,
    #[serde(rename = "ip_on_demand", alias = "IPOnDemand")]
    IpOnDemand,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    rule: Vec<RawRule>,
    #[serde(default)]
    domain_strategy: DomainStrategy,
}

/// A rule as written. The match fields stay JSON values so that each gets an error
/// message naming the rule and the value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    tag: Option<String>,
    outbound: String,
    domain: Option<Value>,
    ip: Option<Value>,
    port: Option<Value>,
    source: Option<Value>,
    source_port: Option<Value>,
    network: Option<Value>,
    user: Option<Value>,
    inbound: Option<Value>,
    protocol: Option<Value>,
    attrs: Option<BTreeMap<String, String>>,
    rule_set: Option<Value>,
}

/// One value of `domain`.
enum DomainCond {
    Match(DomainMatcher),
    List(DomainList),
}

/// One value of `ip` or `source`.
enum IpCond {
    Cidr(Cidr),
    In(IpList),
    NotIn(IpList),
}

impl IpCond {
    fn contains(&self, ip: IpAddr) -> bool {
        match self {
            IpCond::Cidr(c) => c.contains(ip),
            IpCond::In(l) => l.contains(ip),
            IpCond::NotIn(l) => !l.contains(ip),
        }
    }
}

enum UserMatcher {
    Exact(String),
    Regex(Regex),
}

/// A compiled rule: `None` fields are absent (match anything).
struct Rule {
    name: String,
    outbound: String,
    domain: Option<Vec<DomainCond>>,
    ip: Option<Vec<IpCond>>,
    port: Option<PortList>,
    source: Option<Vec<IpCond>>,
    source_port: Option<PortList>,
    network: Option<Vec<Network>>,
    user: Option<Vec<UserMatcher>>,
    inbound: Option<Vec<String>>,
    protocol: Option<Vec<String>>,
    attrs: Option<Vec<(String, Regex)>>,
    rule_set: Option<Vec<RuleSet>>,
}

/// What the rules look at, computed once per session.
struct Facts<'a> {
    session: &'a Snapshot,
    domain: Option<String>,
    /// The target if it is an IP, else the addresses resolved for the domain.
    ips: &'a [IpAddr],
    source: Option<std::net::SocketAddr>,
}

impl Plugin for RouteRules {
    fn describe() -> Descriptor {
        Descriptor::route("route-rules", env!("CARGO_PKG_VERSION"))
    }

    fn configure(config: &Config) -> Result<Self, String> {
        let raw: RawConfig = config.parse()?;
        if raw.default.as_deref() == Some("") {
            return Err("default: empty outbound tag".into());
        }
        let rules = raw
            .rule
            .into_iter()
            .enumerate()
            .map(|(i, r)| Rule::compile(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RouteRules {
            rules,
            default: raw.default,
            strategy: raw.domain_strategy,
        })
    }

    fn handle(&self, session: &Snapshot, _payload: &[u8]) -> Verdict {
        let resolved = session.resolved_ips();
        let target = session.target_ip().map(|ip| [ip]);
        let facts = Facts {
            session,
            domain: session.route_domain(),
            ips: match (&target, &resolved) {
                (Some(ip), _) => ip,
                (None, Some(ips)) => ips,
                (None, None) => &[],
            },
            source: session.source_addr(),
        };
        // A domain not resolved yet, which the strategy may resolve.
        let unresolved = match &facts.domain {
            Some(d) if resolved.is_none() && facts.ips.is_empty() => Some(d.as_str()),
            _ => None,
        };
        let mut decided = None;
        for rule in &self.rules {
            if self.strategy == DomainStrategy::IpOnDemand
                && rule.needs_ip()
                && let Some(name) = unresolved
            {
                return Verdict::Matched(Delta::new().resolve(name));
            }
            if rule.matches(&facts) {
                decided = Some(rule);
                break;
            }
        }
        if let Some(rule) = decided {
            return Verdict::Matched(
                Delta::new()
                    .outbound(&rule.outbound)
                    .set(RULE_ATTRIBUTE, &rule.name),
            );
        }
        if let (DomainStrategy::IpIfNonMatch, Some(name)) = (self.strategy, unresolved) {
            return Verdict::Matched(Delta::new().resolve(name));
        }
        match &self.default {
            Some(tag) => {
                Verdict::Matched(Delta::new().outbound(tag).set(RULE_ATTRIBUTE, "default"))
            }
            None => Verdict::NoMatch,
        }
    }
}

impl RouteRules {
    /// How many rules are configured.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True without rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    fn compile(index: usize, raw: RawRule) -> Result<Rule, String> {
        let at = |field: &str| format!("rule[{index}].{field}");
        if raw.outbound.is_empty() {
            return Err(format!("{}: empty outbound tag", at("outbound")));
        }
        let rule = Rule {
            name: raw.tag.unwrap_or_else(|| index.to_string()),
            outbound: raw.outbound,
            domain: each(raw.domain, &at("domain"), domain_cond)?,
            ip: each(raw.ip, &at("ip"), cidr)?,
            port: ports(raw.port, &at("port"))?,
            source: each(raw.source, &at("source"), cidr)?,
            source_port: ports(raw.source_port, &at("source_port"))?,
            network: networks(raw.network, &at("network"))?,
            user: each(raw.user, &at("user"), |s| {
                match s.strip_prefix("regex:").or(s.strip_prefix("regexp:")) {
                    Some(p) => pattern::compile(p).map(UserMatcher::Regex),
                    None if s.is_empty() => Err("empty user".into()),
                    None => Ok(UserMatcher::Exact(s.to_string())),
                }
            })?,
            inbound: each(raw.inbound, &at("inbound"), |s| {
                nonempty(s).map(str::to_string)
            })?,
            protocol: each(raw.protocol, &at("protocol"), |s| {
                nonempty(s).map(str::to_ascii_lowercase)
            })?,
            rule_set: each(raw.rule_set, &at("rule_set"), |name| {
                RuleSet::open(&format!("rule-set:{}", nonempty(name)?))
            })?,
            attrs: match raw.attrs {
                None => None,
                Some(map) if map.is_empty() => return Err(format!("{}: empty table", at("attrs"))),
                Some(map) => Some(
                    map.into_iter()
                        .map(|(k, v)| {
                            let re = pattern::compile(&v)
                                .map_err(|e| format!("{}.{k}: {e}", at("attrs")))?;
                            Ok((k.to_ascii_lowercase(), re))
                        })
                        .collect::<Result<_, String>>()?,
                ),
            },
        };
        if rule.domain.is_none()
            && rule.ip.is_none()
            && rule.port.is_none()
            && rule.source.is_none()
            && rule.source_port.is_none()
            && rule.network.is_none()
            && rule.user.is_none()
            && rule.inbound.is_none()
            && rule.protocol.is_none()
            && rule.attrs.is_none()
            && rule.rule_set.is_none()
        {
            return Err(format!(
                "rule[{index}]: no match field (domain, ip, port, source, source_port, network, user, inbound, protocol, attrs, rule_set)"
            ));
        }
        Ok(rule)
    }

    /// Whether the rule looks at the target's address.
    fn needs_ip(&self) -> bool {
        self.ip.is_some() || self.rule_set.is_some()
    }

    fn matches(&self, f: &Facts<'_>) -> bool {
        let s = f.session;
        field(&self.inbound, |t| *t == s.inbound_tag)
            && field(&self.network, |n| *n == s.network)
            && self.port.as_ref().is_none_or(|p| p.contains(s.target_port))
            && self
                .source_port
                .as_ref()
                .is_none_or(|p| f.source.is_some_and(|a| p.contains(a.port())))
            && field(&self.user, |u| {
                s.user.as_deref().is_some_and(|email| match u {
                    UserMatcher::Exact(e) => e == email,
                    UserMatcher::Regex(r) => r.is_match(email),
                })
            })
            && field(&self.protocol, |p| {
                s.protocol
                    .as_deref()
                    .is_some_and(|sp| sp.starts_with(p.as_str()))
            })
            && field(&self.source, |c| {
                f.source.is_some_and(|a| c.contains(a.ip()))
            })
            && field(&self.ip, |c| f.ips.iter().any(|ip| c.contains(*ip)))
            && field(&self.domain, |m| {
                f.domain.as_deref().is_some_and(|d| match m {
                    DomainCond::Match(m) => m.matches(d),
                    DomainCond::List(l) => l.contains(d),
                })
            })
            && field(&self.rule_set, |set| {
                let query = |ip| geodata::Query {
                    domain: f.domain.as_deref(),
                    ip,
                    source: f.source.map(|a| a.ip()),
                };
                match f.ips {
                    [] => set.matches(&query(None)),
                    ips => ips.iter().any(|ip| set.matches(&query(Some(*ip)))),
                }
            })
            && self.attrs.as_ref().is_none_or(|attrs| {
                attrs
                    .iter()
                    .all(|(k, re)| s.attr(k).is_some_and(|v| re.is_match(v)))
            })
    }
}

/// An absent field matches; a present one when any of its values does.
fn field<T>(values: &Option<Vec<T>>, mut one: impl FnMut(&T) -> bool) -> bool {
    values.as_ref().is_none_or(|vs| vs.iter().any(&mut one))
}

fn nonempty(s: &str) -> Result<&str, String> {
    if s.is_empty() {
        Err("empty value".into())
    } else {
        Ok(s)
    }
}

fn domain_cond(s: &str) -> Result<DomainCond, String> {
    if s.starts_with("geosite:") || s.starts_with("ext:") {
        return DomainList::open(s).map(DomainCond::List);
    }
    DomainMatcher::parse(s).map(DomainCond::Match)
}

/// A CIDR, an address, `geoip:CODE`, or its negation `!geoip:CODE` / `geoip:!CODE`.
fn cidr(s: &str) -> Result<IpCond, String> {
    let (negated, list) = match (s.strip_prefix('!'), s.strip_prefix("geoip:!")) {
        (Some(rest), _) => (true, rest.to_string()),
        (None, Some(code)) => (true, format!("geoip:{code}")),
        (None, None) => (false, s.to_string()),
    };
    if list.starts_with("geoip:") || list.starts_with("ext:") {
        let l = IpList::open(&list)?;
        return Ok(if negated {
            IpCond::NotIn(l)
        } else {
            IpCond::In(l)
        });
    }
    if negated {
        return Err(format!("only geoip: and ext: lists can be negated: {s:?}"));
    }
    Cidr::parse(s).map(IpCond::Cidr)
}

/// A string or a list of strings, each compiled by `f`; errors say `path[i]: ...`.
fn each<T>(
    value: Option<Value>,
    path: &str,
    f: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<Vec<T>>, String> {
    let Some(value) = value else { return Ok(None) };
    let items = match value {
        Value::String(s) => {
            return f(&s)
                .map(|t| Some(vec![t]))
                .map_err(|e| format!("{path}: {e}"));
        }
        Value::Array(items) => items,
        other => {
            return Err(format!(
                "{path}: expected a string or a list of strings, got {other}"
            ));
        }
    };
    if items.is_empty() {
        return Err(format!("{path}: empty list"));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            Value::String(s) => f(s).map_err(|e| format!("{path}[{i}]: {e}")),
            other => Err(format!("{path}[{i}]: expected a string, got {other}")),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `443`, `"1-1024,8443"`, or a list of either.
fn ports(value: Option<Value>, path: &str) -> Result<Option<PortList>, String> {
    fn one(v: &Value) -> Result<PortList, String> {
        match v {
            Value::Number(n) => match n.as_u64().and_then(|p| u16::try_from(p).ok()) {
                Some(p) => Ok(PortList::single(p)),
                None => Err(format!("invalid port {n}")),
            },
            Value::String(s) => PortList::parse(s),
            other => Err(format!(
                "expected a port number or a string like \"1-1024,8443\", got {other}"
            )),
        }
    }
    match value {
        None => Ok(None),
        Some(Value::Array(items)) => {
            let mut iter = items.iter().enumerate();
            let Some((_, first)) = iter.next() else {
                return Err(format!("{path}: empty list"));
            };
            let mut list = one(first).map_err(|e| format!("{path}[0]: {e}"))?;
            for (i, item) in iter {
                list.extend(one(item).map_err(|e| format!("{path}[{i}]: {e}"))?);
            }
            Ok(Some(list))
        }
        Some(v) => one(&v).map(Some).map_err(|e| format!("{path}: {e}")),
    }
}

/// `"tcp"`, `"udp"`, `"tcp,udp"`, or a list of those.
fn networks(value: Option<Value>, path: &str) -> Result<Option<Vec<Network>>, String> {
    let Some(lists) = each(value, path, |s| {
        s.split(',')
            .map(|n| match n.trim().to_ascii_lowercase().as_str() {
                "tcp" => Ok(Network::Tcp),
                "udp" => Ok(Network::Udp),
                other => Err(format!("unknown network {other:?} (tcp, udp)")),
            })
            .collect::<Result<Vec<_>, _>>()
    })?
    else {
        return Ok(None);
    };
    Ok(Some(lists.into_iter().flatten().collect()))
}

wasmray_plugin_sdk::export_plugin!(RouteRules);
