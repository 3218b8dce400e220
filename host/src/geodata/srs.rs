//! sing-box's binary rule-set (`.srs`, versions 1 to 4), sans-IO over the decompressed
//! bytes.
//!
//! ```text
//! file  = "SRS" version:u8 zlib(body)
//! body  = uvarint(rule count) rule*
//! rule  = 0:u8 item* 0xFF invert:u8          (default)
//!       | 1:u8 mode:u8 uvarint(n) rule{n} invert:u8   (logical; mode 0 and, 1 or)
//! item  = 2 succinct-set (domain, domain_suffix)  | 3 strings (domain_keyword)
//!       | 4 strings (domain_regex) | 5 ip-set (source_ip_cidr) | 6 ip-set (ip_cidr)
//! strings = uvarint(n) (uvarint(len) bytes){n}
//! ip-set  = 1:u8 n:u64be (uvarint(len) from uvarint(len) to){n}
//! succinct-set = u8 uvarint(n) u64be{n} (leaves) uvarint(n) u64be{n} (label bitmap)
//!                uvarint(n) bytes (labels)
//! ```
//! (sing-box `common/srs/binary.go`, `ip_set.go`; sing `common/domain/matcher.go`,
//! `set.go`.) The domain set is a LOUDS trie of the reversed names built breadth first:
//! label `j` leads to node `j + 1`, each node's labels are a run of 0 bits closed by a 1,
//! and node `n` ends a key when bit `n` of `leaves` is set. A key starting with `\r` is a
//! suffix that must follow a dot, one starting with `\n` a domain and its subdomains,
//! any other a full name. The trie is decoded into the domain tables, never queried in
//! place.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::GeoError;
use super::domains::{Builder, Kind, Selector};
use super::ips::{IpBuilder, IpList};
use super::ruleset::{DefaultRule, MAX_DEPTH, Rule, RuleSet};

/// The newest version read (sing-box 1.14 writes 4; 4 added no item wasmray reads).
pub const MAX_VERSION: u8 = 4;
/// A rule-set decompresses to at most this many bytes (untrusted files).
pub const MAX_BODY: u64 = 256 << 20;
/// A key of the domain trie is at most this long (a DNS name is 253 bytes).
const MAX_KEY: usize = 1024;

/// Reads a `.srs` file.
pub fn parse(file: &[u8]) -> Result<RuleSet, GeoError> {
    let Some(rest) = file.strip_prefix(b"SRS") else {
        return Err(GeoError::Malformed {
            offset: 0,
            why: "no SRS magic: not a sing-box binary rule-set",
        });
    };
    let Some((&version, compressed)) = rest.split_first() else {
        return Err(GeoError::Truncated { offset: 3 });
    };
    if version == 0 || version > MAX_VERSION {
        return Err(GeoError::Version(version));
    }
    let mut body = Vec::new();
    flate2::read::ZlibDecoder::new(compressed)
        .take(MAX_BODY + 1)
        .read_to_end(&mut body)
        .map_err(|e| GeoError::Compressed(e.to_string()))?;
    if body.len() as u64 > MAX_BODY {
        return Err(GeoError::TooLarge);
    }
    body_rules(&body).map_err(GeoError::in_body)
}

/// The rules of a decompressed body (offsets are into it).
pub fn body_rules(body: &[u8]) -> Result<RuleSet, GeoError> {
    let mut r = Reader {
        bytes: body,
        pos: 0,
    };
    let count = r.uvarint()?;
    let mut rules = Vec::new();
    for _ in 0..count {
        rules.push(rule(&mut r, 0)?);
    }
    if r.pos != body.len() {
        return Err(r.malformed("bytes after the last rule"));
    }
    Ok(RuleSet { rules })
}

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, GeoError> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or(GeoError::Truncated { offset: self.pos })?;
        self.pos += 1;
        Ok(b)
    }

    fn uvarint(&mut self) -> Result<u64, GeoError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.malformed("a varint longer than 10 bytes"))
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], GeoError> {
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| self.pos.checked_add(l))
            .filter(|end| *end <= self.bytes.len())
            .ok_or(GeoError::Truncated {
                offset: self.bytes.len(),
            })?;
        let out = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// A length that must fit in what is left, at `each` bytes per element at least.
    fn count(&mut self, each: u64) -> Result<u64, GeoError> {
        let n = self.uvarint()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(each) > left {
            return Err(GeoError::Truncated {
                offset: self.bytes.len(),
            });
        }
        Ok(n)
    }

    fn words(&mut self) -> Result<Vec<u64>, GeoError> {
        let n = self.count(8)?;
        let bytes = self.take(n * 8)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()))
            .collect())
    }

    fn strings(&mut self) -> Result<Vec<&'a str>, GeoError> {
        let n = self.count(1)?;
        let mut out = Vec::new();
        for _ in 0..n {
            let len = self.uvarint()?;
            let at = self.pos;
            let text = std::str::from_utf8(self.take(len)?).map_err(|_| GeoError::Malformed {
                offset: at,
                why: "a string that is not UTF-8",
            })?;
            out.push(text);
        }
        Ok(out)
    }

    fn malformed(&self, why: &'static str) -> GeoError {
        GeoError::Malformed {
            offset: self.pos,
            why,
        }
    }
}

fn rule(r: &mut Reader<'_>, depth: usize) -> Result<Rule, GeoError> {
    if depth > MAX_DEPTH {
        return Err(r.malformed("logical rules nested too deep"));
    }
    match r.byte()? {
        0 => default_rule(r).map(|d| Rule::Default(Box::new(d))),
        1 => {
            let and = match r.byte()? {
                0 => true,
                1 => false,
                _ => return Err(r.malformed("a logical mode other than and/or")),
            };
            let n = r.count(1)?;
            let mut rules = Vec::new();
            for _ in 0..n {
                rules.push(rule(r, depth + 1)?);
            }
            let invert = r.byte()? != 0;
            Ok(Rule::Logical { and, rules, invert })
        }
        _ => Err(r.malformed("a rule type other than default and logical")),
    }
}

/// sing-box's item numbers, for the names of the ones wasmray refuses.
const ITEM_NAMES: [&str; 23] = [
    "query_type",
    "network",
    "domain",
    "domain_keyword",
    "domain_regex",
    "source_ip_cidr",
    "ip_cidr",
    "source_port",
    "source_port_range",
    "port",
    "port_range",
    "process_name",
    "process_path",
    "package_name",
    "wifi_ssid",
    "wifi_bssid",
    "adguard_domain",
    "process_path_regex",
    "network_type",
    "network_is_expensive",
    "network_is_constrained",
    "network_interface_address",
    "default_interface_address",
];

fn default_rule(r: &mut Reader<'_>) -> Result<DefaultRule, GeoError> {
    let mut domains: Option<Builder> = None;
    let (mut ip, mut source) = (None, None);
    loop {
        let at = r.pos;
        let item = r.byte()?;
        match item {
            2 => domain_set(r, domains.get_or_insert_with(Builder::single))?,
            3 | 4 => {
                let kind = if item == 3 {
                    Kind::Keyword
                } else {
                    Kind::Regex
                };
                let b = domains.get_or_insert_with(Builder::single);
                for value in r.strings()? {
                    b.add(0, kind, value, 0).map_err(|e| e.at(at))?;
                }
            }
            5 => source = Some(ip_set(r)?),
            6 => ip = Some(ip_set(r)?),
            0xFF => {
                let invert = r.byte()? != 0;
                let domains = match domains {
                    Some(b) => Some((b.build().map_err(|e| e.at(at))?, Selector::whole(0))),
                    None => None,
                };
                return Ok(DefaultRule {
                    domains,
                    ip,
                    source,
                    invert,
                });
            }
            other => {
                let name = ITEM_NAMES.get(other as usize).copied().unwrap_or("unknown");
                return Err(GeoError::Item {
                    offset: at,
                    item: format!("{name} ({other})"),
                });
            }
        }
    }
}

fn ip_set(r: &mut Reader<'_>) -> Result<IpList, GeoError> {
    if r.byte()? != 1 {
        return Err(r.malformed("an IP set version other than 1"));
    }
    let raw = r.take(8)?;
    let n = u64::from_be_bytes(raw.try_into().unwrap_or_default());
    if n.saturating_mul(4) > (r.bytes.len() - r.pos) as u64 {
        return Err(GeoError::Truncated {
            offset: r.bytes.len(),
        });
    }
    let mut builder = IpBuilder::default();
    for _ in 0..n {
        let at = r.pos;
        let from = address(r)?;
        let to = address(r)?;
        builder.add_range(from, to).map_err(|e| e.at(at))?;
    }
    Ok(builder.build(false))
}

fn address(r: &mut Reader<'_>) -> Result<IpAddr, GeoError> {
    let len = r.uvarint()?;
    let bytes = r.take(len)?;
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        return Ok(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    match <[u8; 16]>::try_from(bytes) {
        Ok(v6) => Ok(IpAddr::V6(Ipv6Addr::from(v6))),
        Err(_) => Err(r.malformed("an address neither 4 nor 16 bytes long")),
    }
}

fn bit(words: &[u64], i: usize) -> bool {
    words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
}

/// Decodes the succinct domain trie into `builder`'s list 0.
fn domain_set(r: &mut Reader<'_>, builder: &mut Builder) -> Result<(), GeoError> {
    let at = r.pos;
    r.byte()?;
    let leaves = r.words()?;
    let bitmap = r.words()?;
    let n = r.count(1)?;
    let labels = r.take(n)?;
    let bad = |why| GeoError::Malformed { offset: at, why };
    // parent[c] for node c > 0; node c is reached by labels[c - 1].
    let nodes = labels.len() + 1;
    let mut parent = vec![0u32; nodes];
    let (mut idx, mut next) = (0usize, 0usize);
    for node in 0..nodes {
        while !bit(&bitmap, idx) {
            if idx >= bitmap.len() * 64 || next >= labels.len() {
                return Err(bad("a domain trie whose bitmap and labels disagree"));
            }
            if node > next {
                return Err(bad("a domain trie with a label pointing backwards"));
            }
            parent[next + 1] = node as u32;
            next += 1;
            idx += 1;
        }
        idx += 1;
    }
    if next != labels.len() {
        return Err(bad("a domain trie with labels no node holds"));
    }
    let mut key = Vec::new();
    for node in (0..nodes).filter(|n| bit(&leaves, *n)) {
        key.clear();
        let mut c = node;
        while c > 0 {
            key.push(labels[c - 1]);
            if key.len() > MAX_KEY {
                return Err(bad("a domain trie key longer than 1024 bytes"));
            }
            c = parent[c] as usize;
        }
        // Leaf to root, reversed: the key as stored, which is the name reversed by
        // characters (sing's `reverseDomain`); reversing by characters undoes it.
        key.reverse();
        let reversed = std::str::from_utf8(&key).map_err(|_| bad("a domain that is not UTF-8"))?;
        let name: String = reversed.chars().rev().collect();
        let (kind, value) = match name.as_bytes().first() {
            Some(b'\r') => match name[1..].strip_prefix('.') {
                Some(rest) => (Kind::Subdomain, rest),
                None => return Err(bad("a domain suffix that does not start with a dot")),
            },
            Some(b'\n') => (Kind::Domain, &name[1..]),
            _ => (Kind::Full, name.as_str()),
        };
        builder.add(0, kind, value, 0).map_err(|e| e.at(at))?;
    }
    Ok(())
}
