//! v2fly/Xray `geosite.dat` and `geoip.dat`: a protobuf `GeoSiteList` / `GeoIPList`.
//!
//! ```text
//! GeoSiteList { repeated GeoSite entry = 1 }
//! GeoSite     { string country_code = 1; repeated Domain domain = 2 }
//! Domain      { Type type = 1 (Plain 0, Regex 1, Domain 2, Full 3); string value = 2;
//!               repeated Attribute attribute = 3 }
//! Attribute   { string key = 1; bool bool_value = 2 | int64 int_value = 3 }
//! GeoIPList   { repeated GeoIP entry = 1 }
//! GeoIP       { string country_code = 1; repeated CIDR cidr = 2; bool reverse_match = 3 }
//! CIDR        { bytes ip = 1 (4 or 16 bytes); uint32 prefix = 2 }
//! ```
//! (v2fly `app/router/routercommon/common.proto`; Xray's `app/router/config.proto`.)
//! Unknown fields are skipped, as protobuf readers do. An entry's attribute is present
//! whatever its value, as Xray's matcher reads it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::GeoError;
use super::domains::{Builder, Domains, Kind};
use super::ips::{IpBuilder, IpLists};
use super::wire::{self, Fields};

/// Reads a geosite file.
pub fn geosite(bytes: &[u8]) -> Result<Domains, GeoError> {
    let mut builder = Builder::default();
    for field in Fields::new(bytes, 0) {
        let field = field?;
        if field.number == 1 {
            site(&mut builder, wire::message(&field)?)?;
        }
    }
    builder.build()
}

fn site(builder: &mut Builder, fields: Fields<'_>) -> Result<(), GeoError> {
    // The code usually comes first; domains seen before it are held until it does.
    let mut list = None;
    let mut pending = Vec::new();
    for field in fields {
        let field = field?;
        match field.number {
            1 => list = Some(builder.list(wire::text(&field)?)),
            2 => pending.push(field),
            _ => {}
        }
    }
    let Some(list) = list else {
        return Err(GeoError::Malformed {
            offset: pending.first().map_or(0, |f| f.offset),
            why: "a GeoSite without a country_code",
        });
    };
    for field in pending {
        domain(builder, list, &field)?;
    }
    Ok(())
}

fn domain(builder: &mut Builder, list: u32, field: &wire::Field<'_>) -> Result<(), GeoError> {
    let (mut kind, mut value, mut attrs) = (0u64, None, Vec::new());
    for f in wire::message(field)? {
        let f = f?;
        match f.number {
            1 => kind = wire::varint(&f)?,
            2 => value = Some(wire::text(&f)?),
            3 => {
                for a in wire::message(&f)? {
                    let a = a?;
                    if a.number == 1 {
                        attrs.push(wire::text(&a)?);
                    }
                }
            }
            _ => {}
        }
    }
    let kind = match kind {
        0 => Kind::Keyword,
        1 => Kind::Regex,
        2 => Kind::Domain,
        3 => Kind::Full,
        _ => {
            return Err(GeoError::Malformed {
                offset: field.offset,
                why: "a domain type other than plain, regex, domain and full",
            });
        }
    };
    let attrs = builder.attrs(attrs);
    builder
        .add(list, kind, value.unwrap_or_default(), attrs)
        .map_err(|e| e.at(field.offset))
}

/// Reads a geoip file.
pub fn geoip(bytes: &[u8]) -> Result<IpLists, GeoError> {
    let mut lists = IpLists::default();
    for field in Fields::new(bytes, 0) {
        let field = field?;
        if field.number == 1 {
            ip_entry(&mut lists, wire::message(&field)?)?;
        }
    }
    Ok(lists)
}

fn ip_entry(lists: &mut IpLists, fields: Fields<'_>) -> Result<(), GeoError> {
    let start = fields.offset();
    let (mut name, mut reverse, mut builder) = (None, false, IpBuilder::default());
    for field in fields {
        let field = field?;
        match field.number {
            1 => name = Some(wire::text(&field)?),
            2 => cidr(&mut builder, &field)?,
            3 => reverse = wire::varint(&field)? != 0,
            _ => {}
        }
    }
    let Some(name) = name else {
        return Err(GeoError::Malformed {
            offset: start,
            why: "a GeoIP without a country_code",
        });
    };
    lists.insert(name, builder.build(reverse));
    Ok(())
}

fn cidr(builder: &mut IpBuilder, field: &wire::Field<'_>) -> Result<(), GeoError> {
    let (mut ip, mut prefix) = (None, 0u64);
    for f in wire::message(field)? {
        let f = f?;
        match f.number {
            1 => match f.value {
                wire::Value::Bytes(b) => ip = Some(b),
                _ => {
                    return Err(GeoError::Malformed {
                        offset: f.offset,
                        why: "a CIDR ip that is not bytes",
                    });
                }
            },
            2 => prefix = wire::varint(&f)?,
            _ => {}
        }
    }
    let ip = match ip.map(<[u8]>::len) {
        Some(4) => ip
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| IpAddr::V4(Ipv4Addr::from(b))),
        Some(16) => ip
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(|b| IpAddr::V6(Ipv6Addr::from(b))),
        _ => None,
    };
    let Some(ip) = ip else {
        return Err(GeoError::Malformed {
            offset: field.offset,
            why: "a CIDR whose ip is neither 4 nor 16 bytes",
        });
    };
    let prefix = u32::try_from(prefix).unwrap_or(u32::MAX);
    builder.add_cidr(ip, prefix).map_err(|e| e.at(field.offset))
}

/// Writing both formats: the tests' and the benchmark's files are generated from the
/// schema above with these.
pub mod write {
    use super::wire::write::{bytes, number};
    use std::net::IpAddr;

    /// One geosite entry: (type, value, attributes).
    pub type Domain<'a> = (u64, &'a str, &'a [&'a str]);

    pub fn geosite(lists: &[(&str, Vec<Domain<'_>>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (code, domains) in lists {
            let mut site = Vec::new();
            bytes(&mut site, 1, code.as_bytes());
            for (kind, value, attrs) in domains {
                let mut d = Vec::new();
                if *kind != 0 {
                    number(&mut d, 1, *kind);
                }
                bytes(&mut d, 2, value.as_bytes());
                for attr in *attrs {
                    let mut a = Vec::new();
                    bytes(&mut a, 1, attr.as_bytes());
                    number(&mut a, 2, 1);
                    bytes(&mut d, 3, &a);
                }
                bytes(&mut site, 2, &d);
            }
            bytes(&mut out, 1, &site);
        }
        out
    }

    /// One geoip entry: (code, CIDRs, reverse_match).
    pub type Ips<'a> = (&'a str, Vec<(IpAddr, u32)>, bool);

    pub fn geoip(lists: &[Ips<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for (code, cidrs, reverse) in lists {
            let mut entry = Vec::new();
            bytes(&mut entry, 1, code.as_bytes());
            for (ip, prefix) in cidrs {
                let mut c = Vec::new();
                match ip {
                    IpAddr::V4(v4) => bytes(&mut c, 1, &v4.octets()),
                    IpAddr::V6(v6) => bytes(&mut c, 1, &v6.octets()),
                }
                number(&mut c, 2, u64::from(*prefix));
                bytes(&mut entry, 2, &c);
            }
            if *reverse {
                number(&mut entry, 3, 1);
            }
            bytes(&mut out, 1, &entry);
        }
        out
    }

    /// The benchmarks' list of `n` domains, shaped like real lists: mostly `domain`
    /// entries, a quarter `full`, 2% keywords (`plain`) and 0.1% regexes. (type, value)
    /// pairs, for writing as a geosite or as a sing-box rule-set.
    pub fn synthetic_domains(n: usize) -> Vec<(u64, String)> {
        (0..n)
            .map(|i| {
                let name = format!("host{i}.site{}.example", i % 5000);
                match i % 1000 {
                    0 => (1, "^ad[0-9]+\\.tracker[0-9]*\\.example$".to_string()),
                    1..=20 => (0, format!("host{i}")),
                    21..=270 => (3, name),
                    _ => (2, name),
                }
            })
            .collect()
    }

    /// The benchmarks' `n` CIDRs: 90% IPv4 /24s with gaps (so they do not merge), 10%
    /// IPv6 /64s.
    pub fn synthetic_cidrs(n: u32) -> Vec<(IpAddr, u32)> {
        use std::net::{Ipv4Addr, Ipv6Addr};
        (0..n)
            .map(|i| match i % 10 {
                0 => (
                    IpAddr::V6(Ipv6Addr::from(0x2001_0db8_u128 << 96 | u128::from(i) << 64)),
                    64,
                ),
                _ => (IpAddr::V4(Ipv4Addr::from((i * 3) << 8 | 0x0100_0000)), 24),
            })
            .collect()
    }

    /// A geosite with the synthetic list `bench` of `n` domains (and a small `other`).
    pub fn synthetic_geosite(n: usize) -> Vec<u8> {
        let domains = synthetic_domains(n);
        let entries = domains
            .iter()
            .map(|(t, v)| (*t, v.as_str(), &[][..]))
            .collect();
        geosite(&[
            ("bench", entries),
            ("other", vec![(2, "other.example", &[][..])]),
        ])
    }

    /// A geoip with the synthetic list `bench` of `n` CIDRs.
    pub fn synthetic_geoip(n: u32) -> Vec<u8> {
        geoip(&[("bench", synthetic_cidrs(n), false)])
    }
}
