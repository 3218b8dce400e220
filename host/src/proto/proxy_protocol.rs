//! PROXY protocol v1 and v2 headers (HAProxy's format; spec 3.5).
//!
//! The VLESS inbound writes one in front of the bytes it hands to a fallback
//! target (`xver` 1 or 2), so the target sees the real client address; an
//! inbound may also accept one from a load balancer. Both directions live
//! here so the two ends are tested against each other.
//!
//! Encoding follows Xray:
//!
//! * v1: `PROXY TCP4|TCP6 <src> <dst> <srcport> <dstport>\r\n`, or
//!   `PROXY UNKNOWN\r\n` when there are no IP addresses (e.g. a unix socket);
//! * v2: the 12-byte signature, then `21 11 00 0C` + IPv4 addresses, or
//!   `21 21 00 24` + IPv6 addresses, then both ports; `20 00 00 00` (LOCAL)
//!   when there are no addresses.
//!
//! Both addresses of a header must share one family. Xray picks the family
//! from the textual remote address, where Go prints IPv4-mapped IPv6 as plain
//! IPv4; this encoder does the equivalent with [`ProxyAddrs::normalized`]:
//! mapped addresses become IPv4, and a remaining IPv4/IPv6 mix is sent as
//! IPv6 with the IPv4 side mapped (Xray would emit a broken header there).
//!
//! Decoding accepts v1 lines of at most 107 bytes (CRLF included) and v2
//! headers with the LOCAL or PROXY command; TLVs after the addresses are
//! skipped. UNKNOWN, LOCAL, UNSPEC and AF_UNIX headers yield no addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use bytes::{BufMut, BytesMut};

use super::cursor::{Cursor, Stop, finish};

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The longest v1 line, CRLF included.
pub const V1_MAX_LEN: usize = 107;
/// The fixed part of a v2 header (signature, version/command, family, length).
pub const V2_FIXED_LEN: usize = 16;

const V1_PREFIX: &[u8] = b"PROXY ";
const V2_VERSION: u8 = 0x20;
const V2_CMD_LOCAL: u8 = 0x00;
const V2_CMD_PROXY: u8 = 0x01;
const V2_INET_STREAM: u8 = 0x11;
const V2_INET6_STREAM: u8 = 0x21;
/// Address block sizes: two addresses and two ports.
const V2_INET_LEN: u16 = 12;
const V2_INET6_LEN: u16 = 36;
const V2_UNIX_LEN: u16 = 216;

/// Errors of the PROXY protocol decoder.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("not a PROXY protocol header")]
    NotProxyProtocol,
    #[error("PROXY v1 line longer than 107 bytes")]
    V1TooLong,
    #[error("malformed PROXY v1 line: {0}")]
    V1Malformed(&'static str),
    #[error("unsupported PROXY v2 version in byte {0:#04x}")]
    V2Version(u8),
    #[error("unknown PROXY v2 command in byte {0:#04x}")]
    V2Command(u8),
    #[error("unknown PROXY v2 address family/protocol {0:#04x}")]
    V2Family(u8),
    #[error("PROXY v2 address block of {len} bytes is too short for family {family:#04x}")]
    V2AddressTooShort { family: u8, len: u16 },
}

/// Which header format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    V1,
    V2,
}

/// The connection's endpoints as the proxy saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyAddrs {
    /// The client (the original connection's remote address).
    pub source: SocketAddr,
    /// The address the client connected to (the proxy's local address).
    pub destination: SocketAddr,
}

/// A PROXY protocol header. `addrs` is `None` for v1 UNKNOWN and v2 LOCAL (and,
/// when decoding, for v2 UNSPEC or AF_UNIX addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyHeader {
    pub version: Version,
    pub addrs: Option<ProxyAddrs>,
}

/// Both endpoints in one family, as the header carries them.
enum Pair {
    V4(SocketAddrV4, SocketAddrV4),
    V6(SocketAddrV6, SocketAddrV6),
}

impl ProxyAddrs {
    pub fn new(source: SocketAddr, destination: SocketAddr) -> Self {
        ProxyAddrs {
            source,
            destination,
        }
    }

    /// The addresses as the encoder writes them (and a decoder returns them):
    /// both IPv4 if both are IPv4 or IPv4-mapped, otherwise both IPv6.
    pub fn normalized(&self) -> ProxyAddrs {
        match self.pair() {
            Pair::V4(s, d) => ProxyAddrs::new(s.into(), d.into()),
            Pair::V6(s, d) => ProxyAddrs::new(s.into(), d.into()),
        }
    }

    fn pair(&self) -> Pair {
        match (unmap(self.source), unmap(self.destination)) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => Pair::V4(s, d),
            (s, d) => Pair::V6(as_v6(s), as_v6(d)),
        }
    }
}

fn unmap(sa: SocketAddr) -> SocketAddr {
    match sa.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), sa.port()),
            None => SocketAddr::new(IpAddr::V6(v6), sa.port()),
        },
        IpAddr::V4(_) => sa,
    }
}

fn as_v6(sa: SocketAddr) -> SocketAddrV6 {
    match sa {
        SocketAddr::V4(v4) => SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0),
        SocketAddr::V6(v6) => SocketAddrV6::new(*v6.ip(), v6.port(), 0, 0),
    }
}

impl ProxyHeader {
    pub fn new(version: Version, addrs: Option<ProxyAddrs>) -> Self {
        ProxyHeader { version, addrs }
    }

    /// Appends the header.
    pub fn encode(&self, dst: &mut BytesMut) {
        match self.version {
            Version::V1 => dst.put_slice(self.v1_line().as_bytes()),
            Version::V2 => self.encode_v2(dst),
        }
    }

    /// Bytes [`ProxyHeader::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        match (self.version, self.addrs.as_ref().map(ProxyAddrs::pair)) {
            (Version::V1, _) => self.v1_line().len(),
            (Version::V2, None) => V2_FIXED_LEN,
            (Version::V2, Some(Pair::V4(..))) => V2_FIXED_LEN + usize::from(V2_INET_LEN),
            (Version::V2, Some(Pair::V6(..))) => V2_FIXED_LEN + usize::from(V2_INET6_LEN),
        }
    }

    fn v1_line(&self) -> String {
        match self.addrs.as_ref().map(ProxyAddrs::pair) {
            None => "PROXY UNKNOWN\r\n".to_owned(),
            Some(Pair::V4(s, d)) => v1_tcp_line("TCP4", s.ip(), d.ip(), s.port(), d.port()),
            Some(Pair::V6(s, d)) => v1_tcp_line("TCP6", s.ip(), d.ip(), s.port(), d.port()),
        }
    }

    fn encode_v2(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_slice(&V2_SIGNATURE);
        match self.addrs.as_ref().map(ProxyAddrs::pair) {
            None => dst.put_slice(&[V2_VERSION | V2_CMD_LOCAL, 0x00, 0x00, 0x00]),
            Some(Pair::V4(s, d)) => {
                dst.put_slice(&[V2_VERSION | V2_CMD_PROXY, V2_INET_STREAM]);
                dst.put_u16(V2_INET_LEN);
                dst.put_slice(&s.ip().octets());
                dst.put_slice(&d.ip().octets());
                dst.put_u16(s.port());
                dst.put_u16(d.port());
            }
            Some(Pair::V6(s, d)) => {
                dst.put_slice(&[V2_VERSION | V2_CMD_PROXY, V2_INET6_STREAM]);
                dst.put_u16(V2_INET6_LEN);
                dst.put_slice(&s.ip().octets());
                dst.put_slice(&d.ip().octets());
                dst.put_u16(s.port());
                dst.put_u16(d.port());
            }
        }
    }

    /// Decodes a v1 or v2 header from the front of `buf`; the `usize` is
    /// where the proxied stream starts.
    pub fn decode(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
        match buf.first() {
            None => Ok(None),
            Some(b'P') => decode_v1(buf),
            Some(0x0D) => decode_v2(buf),
            Some(_) => Err(ProxyError::NotProxyProtocol),
        }
    }
}

fn v1_tcp_line<A: std::fmt::Display>(
    proto: &str,
    src: A,
    dst: A,
    sport: u16,
    dport: u16,
) -> String {
    format!("PROXY {proto} {src} {dst} {sport} {dport}\r\n")
}

/// Fails unless `buf` and `expected` agree on their common length.
fn check_magic(buf: &[u8], expected: &[u8]) -> Result<(), ProxyError> {
    let n = buf.len().min(expected.len());
    if buf.get(..n) == expected.get(..n) {
        Ok(())
    } else {
        Err(ProxyError::NotProxyProtocol)
    }
}

fn decode_v1(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    check_magic(buf, V1_PREFIX)?;
    let window = buf.get(..V1_MAX_LEN).unwrap_or(buf);
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if buf.len() >= V1_MAX_LEN {
            Err(ProxyError::V1TooLong)
        } else {
            Ok(None)
        };
    };
    let line = match lf.checked_sub(1).and_then(|cr| window.get(..=cr)) {
        Some([line @ .., b'\r']) => line,
        _ => return Err(ProxyError::V1Malformed("line does not end in CRLF")),
    };
    let addrs = parse_v1_line(line)?;
    Ok(Some((ProxyHeader::new(Version::V1, addrs), lf + 1)))
}

/// Parses the line without its CRLF.
fn parse_v1_line(line: &[u8]) -> Result<Option<ProxyAddrs>, ProxyError> {
    let malformed = ProxyError::V1Malformed;
    let text = std::str::from_utf8(line).map_err(|_| malformed("not ASCII"))?;
    let rest = text
        .strip_prefix("PROXY ")
        .ok_or(malformed("missing PROXY"))?;
    if rest == "UNKNOWN" || rest.starts_with("UNKNOWN ") {
        // Anything after UNKNOWN is to be ignored.
        return Ok(None);
    }
    let (proto, fields) = rest.split_once(' ').ok_or(malformed("missing addresses"))?;
    let mut fields = fields.split(' ');
    let (Some(src), Some(dst), Some(sport), Some(dport), None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err(malformed("expected 4 fields after the protocol"));
    };
    let (src_ip, dst_ip) = match proto {
        "TCP4" => (
            IpAddr::V4(parse_ip::<Ipv4Addr>(src)?),
            IpAddr::V4(parse_ip::<Ipv4Addr>(dst)?),
        ),
        "TCP6" => (
            IpAddr::V6(parse_ip::<Ipv6Addr>(src)?),
            IpAddr::V6(parse_ip::<Ipv6Addr>(dst)?),
        ),
        _ => return Err(malformed("unknown protocol")),
    };
    Ok(Some(ProxyAddrs::new(
        SocketAddr::new(src_ip, parse_port(sport)?),
        SocketAddr::new(dst_ip, parse_port(dport)?),
    )))
}

fn parse_ip<T: std::str::FromStr>(s: &str) -> Result<T, ProxyError> {
    s.parse()
        .map_err(|_| ProxyError::V1Malformed("bad address"))
}

/// 1 to 5 decimal digits, at most 65535 (no sign, unlike `u16::from_str`).
fn parse_port(s: &str) -> Result<u16, ProxyError> {
    let digits_only = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    digits_only
        .then(|| s.parse().ok())
        .flatten()
        .ok_or(ProxyError::V1Malformed("bad port"))
}

fn decode_v2(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    check_magic(buf, &V2_SIGNATURE)?;
    let mut cur = Cursor::new(buf);
    finish(parse_v2(&mut cur).map(|h| (h, cur.consumed())))
}

fn parse_v2(cur: &mut Cursor<'_>) -> Result<ProxyHeader, Stop<ProxyError>> {
    cur.array::<12>()?; // the signature, already checked
    let ver_cmd = cur.u8()?;
    if ver_cmd & 0xF0 != V2_VERSION {
        return Err(Stop::Invalid(ProxyError::V2Version(ver_cmd)));
    }
    let command = ver_cmd & 0x0F;
    if command != V2_CMD_LOCAL && command != V2_CMD_PROXY {
        return Err(Stop::Invalid(ProxyError::V2Command(ver_cmd)));
    }
    let family = cur.u8()?;
    let len = cur.u16_be()?;
    let needed = if command == V2_CMD_PROXY {
        v2_address_len(family)?
    } else {
        0 // LOCAL: the family is ignored
    };
    if len < needed {
        return Err(Stop::Invalid(ProxyError::V2AddressTooShort { family, len }));
    }
    let block = cur.take(usize::from(len))?;
    let addrs = if command == V2_CMD_PROXY {
        parse_v2_addrs(family, block)
    } else {
        None
    };
    Ok(ProxyHeader::new(Version::V2, addrs))
}

/// The address block size the family needs; unknown families are invalid.
fn v2_address_len(family: u8) -> Result<u16, Stop<ProxyError>> {
    match family {
        0x00 => Ok(0),
        0x11 | 0x12 => Ok(V2_INET_LEN),
        0x21 | 0x22 => Ok(V2_INET6_LEN),
        0x31 | 0x32 => Ok(V2_UNIX_LEN),
        other => Err(Stop::Invalid(ProxyError::V2Family(other))),
    }
}

/// Reads the addresses of a PROXY block already checked to be long enough;
/// TLVs after them are skipped.
fn parse_v2_addrs(family: u8, block: &[u8]) -> Option<ProxyAddrs> {
    let mut cur = Cursor::new(block);
    match family >> 4 {
        1 => {
            let src = Ipv4Addr::from(cur.array::<4>().ok()?);
            let dst = Ipv4Addr::from(cur.array::<4>().ok()?);
            ports(&mut cur, IpAddr::V4(src), IpAddr::V4(dst))
        }
        2 => {
            let src = Ipv6Addr::from(cur.array::<16>().ok()?);
            let dst = Ipv6Addr::from(cur.array::<16>().ok()?);
            ports(&mut cur, IpAddr::V6(src), IpAddr::V6(dst))
        }
        _ => None, // UNSPEC, or AF_UNIX paths that a SocketAddr cannot hold
    }
}

fn ports(cur: &mut Cursor<'_>, src: IpAddr, dst: IpAddr) -> Option<ProxyAddrs> {
    let sport = cur.u16_be().ok()?;
    let dport = cur.u16_be().ok()?;
    Some(ProxyAddrs::new(
        SocketAddr::new(src, sport),
        SocketAddr::new(dst, dport),
    ))
}

#[cfg(test)]
#[path = "proxy_protocol_tests.rs"]
mod tests;
