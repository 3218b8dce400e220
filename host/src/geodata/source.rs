//! sing-box's source rule-set (`.json`, versions 1 to 4): the same rules as `.srs`,
//! written by hand. A field may be a string or a list of strings.

use std::net::IpAddr;

use serde_json::{Map, Value};

use super::GeoError;
use super::domains::{Builder, Kind, Selector};
use super::ips::IpBuilder;
use super::ruleset::{DefaultRule, MAX_DEPTH, Rule, RuleSet};
use super::srs::MAX_VERSION;

pub fn parse(text: &str) -> Result<RuleSet, GeoError> {
    let value: Value = serde_json::from_str(text).map_err(|e| GeoError::Json(e.to_string()))?;
    let Value::Object(top) = value else {
        return Err(json("the file is not a JSON object"));
    };
    match top.get("version").and_then(Value::as_u64) {
        Some(v) if (1..=u64::from(MAX_VERSION)).contains(&v) => {}
        Some(v) => return Err(GeoError::Version(u8::try_from(v).unwrap_or(u8::MAX))),
        None => return Err(json("`version` is missing or not a number")),
    }
    let Some(Value::Array(rules)) = top.get("rules") else {
        return Err(json("`rules` is missing or not a list"));
    };
    let rules = rules
        .iter()
        .enumerate()
        .map(|(i, r)| rule(r, 0).map_err(|e| e.in_rule(i)))
        .collect::<Result<_, _>>()?;
    Ok(RuleSet { rules })
}

fn json(why: &str) -> GeoError {
    GeoError::Json(why.to_string())
}

fn rule(value: &Value, depth: usize) -> Result<Rule, GeoError> {
    let Value::Object(map) = value else {
        return Err(json("a rule that is not an object"));
    };
    if depth > MAX_DEPTH {
        return Err(json("logical rules nested too deep"));
    }
    let invert = match map.get("invert") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(json("`invert` is not true or false")),
    };
    match map.get("type").and_then(Value::as_str).unwrap_or("default") {
        "default" => default_rule(map, invert).map(|d| Rule::Default(Box::new(d))),
        "logical" => {
            let and = match map.get("mode").and_then(Value::as_str) {
                Some("and") => true,
                Some("or") => false,
                _ => {
                    return Err(json(
                        "a logical rule's `mode` is neither \"and\" nor \"or\"",
                    ));
                }
            };
            let Some(Value::Array(list)) = map.get("rules") else {
                return Err(json("a logical rule without `rules`"));
            };
            let rules = list
                .iter()
                .map(|r| rule(r, depth + 1))
                .collect::<Result<_, _>>()?;
            Ok(Rule::Logical { and, rules, invert })
        }
        other => Err(json(&format!("a rule of type {other:?}"))),
    }
}

/// A string or a list of strings.
fn strings<'a>(key: &str, value: &'a Value) -> Result<Vec<&'a str>, GeoError> {
    match value {
        Value::String(s) => Ok(vec![s]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| json(&format!("`{key}` holds a non-string")))
            })
            .collect(),
        _ => Err(json(&format!("`{key}` is neither a string nor a list"))),
    }
}

fn default_rule(map: &Map<String, Value>, invert: bool) -> Result<DefaultRule, GeoError> {
    let mut domains: Option<Builder> = None;
    let (mut ip, mut source) = (None, None);
    for (key, value) in map {
        let kind = match key.as_str() {
            "type" | "invert" => continue,
            "domain" => Kind::Full,
            "domain_suffix" => Kind::Domain,
            "domain_keyword" => Kind::Keyword,
            "domain_regex" => Kind::Regex,
            "ip_cidr" => {
                ip = Some(cidrs(key, value)?);
                continue;
            }
            "source_ip_cidr" => {
                source = Some(cidrs(key, value)?);
                continue;
            }
            other => {
                return Err(GeoError::Item {
                    offset: 0,
                    item: other.to_string(),
                });
            }
        };
        let builder = domains.get_or_insert_with(Builder::single);
        for v in strings(key, value)? {
            builder.add(0, kind, v, 0)?;
        }
    }
    let domains = match domains {
        Some(b) => Some((b.build()?, Selector::whole(0))),
        None => None,
    };
    Ok(DefaultRule {
        domains,
        ip,
        source,
        invert,
    })
}

fn cidrs(key: &str, value: &Value) -> Result<super::ips::IpList, GeoError> {
    let mut builder = IpBuilder::default();
    for text in strings(key, value)? {
        let not_cidr = || json(&format!("`{key}` holds {text:?}, not a CIDR"));
        let (ip, prefix) = match text.split_once('/') {
            Some((ip, prefix)) => (ip, Some(prefix.parse::<u32>().map_err(|_| not_cidr())?)),
            None => (text, None),
        };
        let ip: IpAddr = ip.parse().map_err(|_| not_cidr())?;
        let prefix = prefix.unwrap_or(if ip.is_ipv4() { 32 } else { 128 });
        builder.add_cidr(ip, prefix)?;
    }
    Ok(builder.build(false))
}
