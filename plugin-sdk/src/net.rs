//! IP literals, CIDR blocks and port lists, as route rules write them.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses an IP literal: `1.2.3.4`, `2001:db8::1` or `[2001:db8::1]`.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// True when `host` is an IP literal (brackets allowed).
pub fn is_ip_literal(host: &str) -> bool {
    parse_ip(host).is_some()
}

/// Splits `host[:port]` as found in an HTTP Host header or an authority: `example.com`,
/// `example.com:8080`, `1.2.3.4:80`, `[::1]:443`, `[::1]`. An IPv6 literal without
/// brackets (`::1`) is taken whole, without port. Returns the host (brackets removed)
/// and the port if one was given; `None` for an empty host, a bad port or a broken
/// bracket.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        if host.is_empty() {
            return None;
        }
        return match after {
            "" => Some((host, None)),
            _ => Some((host, Some(parse_port(after.strip_prefix(':')?)?))),
        };
    }
    match s.matches(':').count() {
        0 if !s.is_empty() => Some((s, None)),
        1 => {
            let (host, port) = s.split_once(':')?;
            if host.is_empty() {
                return None;
            }
            Some((host, Some(parse_port(port)?)))
        }
        // Bare IPv6 literal.
        n if n > 1 && s.parse::<Ipv6Addr>().is_ok() => Some((s, None)),
        _ => None,
    }
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// An IPv4 or IPv6 network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fd00::/8`, or a single address (`1.2.3.4` is `/32`, `::1` is
    /// `/128`). Host bits below the prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let t = s.trim();
        let (addr, prefix) = match t.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (t, None),
        };
        let addr = parse_ip(addr).ok_or_else(|| format!("invalid IP or CIDR {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.bytes().all(|b| b.is_ascii_digit()) => n,
                _ => return Err(format!("invalid prefix length in {s:?} (0..={max})")),
            },
        };
        Ok(Cidr {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// The network address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// True when `ip` is inside the network. An IPv4-mapped IPv6 address
    /// (`::ffff:1.2.3.4`) is treated as the IPv4 address it carries.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        if ip.is_ipv4() != self.addr.is_ipv4() {
            return false;
        }
        mask(ip, self.prefix) == self.addr
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask(ip: IpAddr, prefix: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(prefix))
            };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let m = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

/// A set of ports: `"53,443,1000-2000"` or a single number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortList {
    ranges: Vec<(u16, u16)>,
}

impl PortList {
    /// Parses a comma-separated list of ports and inclusive ranges (`"1-1024,8443"`).
    /// Spaces around items are allowed; an empty list, an empty item, a port above 65535
    /// or a reversed range is an error.
    pub fn parse(s: &str) -> Result<PortList, String> {
        let mut ranges = Vec::new();
        for item in s.split(',') {
            let item = item.trim();
            let bad = || format!("invalid port or range {item:?} in {s:?}");
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (
                    parse_port(a.trim()).ok_or_else(bad)?,
                    parse_port(b.trim()).ok_or_else(bad)?,
                ),
                None => {
                    let p = parse_port(item).ok_or_else(bad)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(format!("reversed port range {item:?} in {s:?}"));
            }
            ranges.push((lo, hi));
        }
        Ok(PortList { ranges })
    }

    /// A list holding one port.
    pub fn single(port: u16) -> PortList {
        PortList {
            ranges: vec![(port, port)],
        }
    }

    /// True when `port` is in the list.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges.iter().any(|&(lo, hi)| lo <= port && port <= hi)
    }

    /// Adds another list's ports to this one.
    pub fn extend(&mut self, other: PortList) {
        self.ranges.extend(other.ranges);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains(ip("10.255.1.2")));
        assert!(!c.contains(ip("11.0.0.1")));
        assert!(c.contains(ip("::ffff:10.1.2.3")));
        assert!(!c.contains(ip("fd00::1")));
        assert_eq!(Cidr::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        let one = Cidr::parse("1.2.3.4").unwrap();
        assert!(one.contains(ip("1.2.3.4")) && !one.contains(ip("1.2.3.5")));
        let v6 = Cidr::parse("fd00::/8").unwrap();
        assert!(
            v6.contains(ip("fdff::1"))
                && !v6.contains(ip("fe00::1"))
                && !v6.contains(ip("10.0.0.1"))
        );
        assert!(Cidr::parse("[::1]").unwrap().contains(ip("::1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
        assert!(Cidr::parse("::/0").unwrap().contains(ip("2001:db8::1")));
        for bad in [
            "",
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "example.com",
            "!1.2.3.4",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports() {
        let p = PortList::parse("1-1024, 8443").unwrap();
        assert!(p.contains(1) && p.contains(1024) && p.contains(8443));
        assert!(!p.contains(0) && !p.contains(1025) && !p.contains(8444));
        assert!(PortList::parse("0-65535").unwrap().contains(65535));
        assert!(PortList::single(53).contains(53));
        for bad in ["", "a", "1-", "-1", "70000", "10-5", "1,,2", "+5", "1 2"] {
            assert!(PortList::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("example.com"), Some(("example.com", None)));
        assert_eq!(
            split_host_port("example.com:8080"),
            Some(("example.com", Some(8080)))
        );
        assert_eq!(split_host_port("[::1]:443"), Some(("::1", Some(443))));
        assert_eq!(split_host_port("[::1]"), Some(("::1", None)));
        assert_eq!(split_host_port("::1"), Some(("::1", None)));
        for bad in [
            "", ":80", "a:", "a:b", "a:99999", "[::1", "[]:80", "[::1]x", "a:1:2",
        ] {
            assert_eq!(split_host_port(bad), None, "{bad}");
        }
        assert!(is_ip_literal("[::1]") && is_ip_literal("1.2.3.4") && !is_ip_literal("a.b"));
    }
}
