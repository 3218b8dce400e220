//! Routing rules into the `route-rules` plugin, whose matching is Xray's (domain
//! prefixes, geosite, geoip and ext lists, CIDRs, port lists, users, inbound tags,
//! protocols, attrs, `domainStrategy`). What it lacks (balancers, other conditions) is
//! named, and a rule that loses any of its conditions is left out whole: a narrower
//! condition dropped would make the rule match more than it did. Rules naming geosite
//! or geoip lists bring a `[geodata]` section naming Xray's files.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Notes;
use super::toml_out::{OutGeodata, OutOutbound, OutRouteRules, OutRule};
use super::xray::{Routing, Rule};

/// `geoip:private`: the networks Xray's geoip.dat lists under "private".
const PRIVATE: &[&str] = &[
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
    "255.255.255.255/32",
    "::/128",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
    "ff00::/8",
];

pub fn convert(
    routing: Option<&Routing>,
    outbounds: &[OutOutbound],
    api_tag: Option<&str>,
    notes: &mut Notes,
) -> BTreeMap<&'static str, OutRouteRules> {
    let mut table = OutRouteRules {
        default: outbounds.first().map(|o| o.tag.clone()),
        ..OutRouteRules::default()
    };
    if let Some(routing) = routing {
        notes.unknown("routing", &routing.other);
        table.domain_strategy = match routing.domain_strategy.as_deref() {
            None | Some("AsIs") => None,
            Some("IPIfNonMatch") => Some("ip_if_non_match"),
            Some("IPOnDemand") => Some("ip_on_demand"),
            Some(other) => {
                notes.not_carried(
                    "routing.domainStrategy",
                    format!("unknown strategy {other:?} (AsIs, IPIfNonMatch, IPOnDemand)"),
                );
                None
            }
        };
        for (i, rule) in routing.rules.iter().enumerate() {
            let at = format!("routing.rules[{i}]");
            let is_api = api_tag.is_some() && rule.outbound_tag.as_deref() == api_tag;
            if is_api {
                continue; // The API's wiring: [api] serves it directly.
            }
            match convert_rule(rule, outbounds, &at, notes) {
                Ok(r) => table.rule.push(r),
                Err(why) => notes.not_carried(&at, format!("left out: {why}")),
            }
        }
    }
    BTreeMap::from([("route-rules", table)])
}

fn convert_rule(
    rule: &Rule,
    outbounds: &[OutOutbound],
    at: &str,
    notes: &mut Notes,
) -> Result<OutRule, String> {
    if let Some(key) = rule.other.keys().next() {
        return Err(format!("condition {key:?} is not supported"));
    }
    if rule.balancer_tag.is_some() {
        return Err("balancers are not supported".into());
    }
    let outbound = rule.outbound_tag.clone().ok_or("no outboundTag")?;
    if !outbounds.iter().any(|o| o.tag == outbound) {
        return Err(format!("its outbound {outbound:?} was not carried over"));
    }
    let out = OutRule {
        tag: rule.rule_tag.clone(),
        outbound,
        domain: rule.domain.clone(),
        ip: ips(rule.ip.as_deref(), "ip")?,
        port: ports(rule.port.as_ref(), "port")?,
        source: ips(rule.source.as_deref(), "source")?,
        source_port: ports(rule.source_port.as_ref(), "sourcePort")?,
        network: rule.network.clone(),
        user: rule.user.clone(),
        inbound: rule.inbound_tag.clone(),
        protocol: rule.protocol.clone(),
        attrs: attrs(rule.attrs.as_ref())?,
    };
    let conditions = [
        out.domain.is_some(),
        out.ip.is_some(),
        out.port.is_some(),
        out.source.is_some(),
        out.source_port.is_some(),
        out.network.is_some(),
        out.user.is_some(),
        out.inbound.is_some(),
        out.protocol.is_some(),
        out.attrs.is_some(),
    ];
    if !conditions.contains(&true) {
        return Err("it has no condition".into());
    }
    let _ = (at, notes);
    Ok(out)
}

/// Each entry mapped by `f`; any entry it refuses refuses the rule.
fn list(
    values: Option<&[String]>,
    field: &str,
    f: fn(&str) -> Result<Vec<String>, String>,
) -> Result<Option<Vec<String>>, String> {
    let Some(values) = values else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for v in values {
        out.extend(f(v).map_err(|why| format!("{field} {v:?}: {why}"))?);
    }
    Ok(Some(out))
}

/// `geoip:private` becomes its networks (no file needed); other lists and their
/// negations are route-rules' own syntax.
fn ips(values: Option<&[String]>, field: &str) -> Result<Option<Vec<String>>, String> {
    list(values, field, |ip| match ip {
        "geoip:private" => Ok(PRIVATE.iter().map(|s| s.to_string()).collect()),
        g if g.starts_with("!geoip:") || g.starts_with("!ext:") => Ok(vec![g.to_string()]),
        g if g.starts_with('!') => Err("negation is not supported".into()),
        cidr => Ok(vec![cidr.to_string()]),
    })
}

/// `[geodata]` for the lists the rules name: Xray's file names, beside the config.
pub fn geodata(rules: &OutRouteRules, notes: &mut Notes) -> Option<OutGeodata> {
    let values = rules.rule.iter().flat_map(|r| {
        let lists = [&r.domain, &r.ip, &r.source];
        lists.into_iter().flatten().flatten()
    });
    let (mut site, mut ip) = (false, false);
    for v in values {
        let v = v.trim_start_matches('!');
        site |= v.starts_with("geosite:");
        ip |= v.starts_with("geoip:");
    }
    if !site && !ip {
        return None;
    }
    notes.not_carried(
        "routing.rules",
        "the geosite/geoip lists are read from geosite.dat and geoip.dat beside this config \
         (copy them from Xray's asset directory, e.g. /usr/local/share/xray)",
    );
    Some(OutGeodata {
        geosite: site.then(|| "geosite.dat".to_string()),
        geoip: ip.then(|| "geoip.dat".to_string()),
    })
}

fn ports(value: Option<&Value>, field: &str) -> Result<Option<String>, String> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::String(s)) => Ok(Some(s.replace(' ', ""))),
        Some(other) => Err(format!("{field} {other} is not a port list")),
    }
}

fn attrs(value: Option<&Value>) -> Result<Option<BTreeMap<String, String>>, String> {
    let Some(value) = value else { return Ok(None) };
    let map = value
        .as_object()
        .ok_or("attrs as a script (old Xray) is not supported")?;
    map.iter()
        .map(|(k, v)| {
            Ok((
                k.to_ascii_lowercase(),
                v.as_str()
                    .ok_or(format!("attrs {k:?} is not a string"))?
                    .to_string(),
            ))
        })
        .collect::<Result<_, String>>()
        .map(Some)
}
