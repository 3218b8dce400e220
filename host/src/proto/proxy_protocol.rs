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
mod tests {
    use super::*;
    use crate::proto::test_support::assert_prefixes_incomplete;
    use proptest::prelude::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("socket address")
    }

    fn header(version: Version, src: &str, dst: &str) -> ProxyHeader {
        ProxyHeader::new(version, Some(ProxyAddrs::new(sa(src), sa(dst))))
    }

    fn encoded(h: &ProxyHeader) -> Vec<u8> {
        let mut b = BytesMut::new();
        h.encode(&mut b);
        assert_eq!(b.len(), h.encoded_len());
        b.to_vec()
    }

    fn v2(ver_cmd: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let len = u16::try_from(block.len())
            .expect("short block")
            .to_be_bytes();
        [&V2_SIGNATURE[..], &[ver_cmd, family], &len, block].concat()
    }

    /// Encodes, checks the exact bytes, decodes back and checks every prefix.
    fn check_exact(h: ProxyHeader, wire: &[u8]) {
        assert_eq!(encoded(&h), wire);
        let mut with_payload = wire.to_vec();
        with_payload.extend_from_slice(b"\x16\x03\x01");
        assert_eq!(
            ProxyHeader::decode(&with_payload),
            Ok(Some((h, wire.len())))
        );
        assert_prefixes_incomplete(wire, ProxyHeader::decode);
    }

    #[test]
    fn spec_v1_tcp4() {
        check_exact(
            header(Version::V1, "192.0.2.1:51234", "198.51.100.2:443"),
            b"PROXY TCP4 192.0.2.1 198.51.100.2 51234 443\r\n",
        );
    }

    #[test]
    fn spec_v1_tcp6() {
        check_exact(
            header(Version::V1, "[2001:db8::1]:51234", "[2001:db8::2]:443"),
            b"PROXY TCP6 2001:db8::1 2001:db8::2 51234 443\r\n",
        );
    }

    #[test]
    fn spec_v1_unknown() {
        check_exact(ProxyHeader::new(Version::V1, None), b"PROXY UNKNOWN\r\n");
    }

    #[test]
    fn spec_v2_ipv4() {
        let block = [192, 0, 2, 1, 198, 51, 100, 2, 0xC8, 0x22, 0x01, 0xBB];
        let wire = v2(0x21, 0x11, &block);
        assert_eq!(&wire[12..16], &[0x21, 0x11, 0x00, 0x0C]);
        check_exact(
            header(Version::V2, "192.0.2.1:51234", "198.51.100.2:443"),
            &wire,
        );
    }

    #[test]
    fn spec_v2_ipv6() {
        let src: Ipv6Addr = "2001:db8::1".parse().expect("ip");
        let dst: Ipv6Addr = "2001:db8::2".parse().expect("ip");
        let block = [&src.octets()[..], &dst.octets(), &[0xC8, 0x22, 0x01, 0xBB]].concat();
        let wire = v2(0x21, 0x21, &block);
        assert_eq!(&wire[12..16], &[0x21, 0x21, 0x00, 0x24]);
        check_exact(
            header(Version::V2, "[2001:db8::1]:51234", "[2001:db8::2]:443"),
            &wire,
        );
    }

    #[test]
    fn spec_v2_unknown() {
        let wire = [&V2_SIGNATURE[..], &[0x20, 0x00, 0x00, 0x00]].concat();
        check_exact(ProxyHeader::new(Version::V2, None), &wire);
    }

    #[test]
    fn mapped_addresses_are_sent_as_ipv4() {
        let h = header(
            Version::V1,
            "[::ffff:10.0.0.1]:1000",
            "[::ffff:10.0.0.2]:443",
        );
        assert_eq!(encoded(&h), b"PROXY TCP4 10.0.0.1 10.0.0.2 1000 443\r\n");
        let h = header(Version::V2, "[::ffff:10.0.0.1]:1000", "10.0.0.2:443");
        assert_eq!(&encoded(&h)[12..16], &[0x21, 0x11, 0x00, 0x0C]);
    }

    #[test]
    fn mixed_families_are_sent_as_ipv6() {
        let h = header(Version::V1, "10.0.0.1:1000", "[2001:db8::2]:443");
        assert_eq!(
            encoded(&h),
            b"PROXY TCP6 ::ffff:10.0.0.1 2001:db8::2 1000 443\r\n"
        );
        let (back, _) = ProxyHeader::decode(&encoded(&h))
            .expect("valid")
            .expect("complete");
        assert_eq!(
            back.addrs,
            Some(ProxyAddrs::new(
                sa("[::ffff:10.0.0.1]:1000"),
                sa("[2001:db8::2]:443")
            ))
        );
    }

    #[test]
    fn v1_longest_line_and_one_more() {
        let pad = |n: usize| format!("PROXY UNKNOWN {}\r\n", "x".repeat(n));
        let longest = pad(V1_MAX_LEN - 16);
        assert_eq!(longest.len(), V1_MAX_LEN);
        assert_eq!(
            ProxyHeader::decode(longest.as_bytes()),
            Ok(Some((ProxyHeader::new(Version::V1, None), V1_MAX_LEN)))
        );
        let too_long = pad(V1_MAX_LEN - 15);
        assert_eq!(
            ProxyHeader::decode(too_long.as_bytes()),
            Err(ProxyError::V1TooLong)
        );
        assert_eq!(
            ProxyHeader::decode(&[b'P'; 200][..]),
            Err(ProxyError::NotProxyProtocol)
        );
        let no_end = format!("PROXY {}", "1".repeat(101));
        assert_eq!(
            ProxyHeader::decode(no_end.as_bytes()),
            Err(ProxyError::V1TooLong)
        );
        assert_eq!(ProxyHeader::decode(&no_end.as_bytes()[..106]), Ok(None));
    }

    #[test]
    fn v1_malformed_lines() {
        let bad: [&[u8]; 14] = [
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
            b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
            b"PROXY TCP4 ::1 ::2 1 2\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 000001\r\n",
            b"PROXY TCP4\r\n",
            b"PROXY \xff\r\n",
            b"PROXY unknown\r\n",
        ];
        for line in bad {
            assert!(
                matches!(ProxyHeader::decode(line), Err(ProxyError::V1Malformed(_))),
                "{:?} must be rejected",
                String::from_utf8_lossy(line)
            );
        }
        assert_eq!(
            ProxyHeader::decode(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"),
            Ok(Some((ProxyHeader::new(Version::V1, None), 35)))
        );
    }

    #[test]
    fn not_proxy_protocol() {
        for buf in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"PROXX",
            b"\x16\x03\x01",
            b"\r\n\r\n\x00\r\nQUIT\r",
            b"\r\r",
        ] {
            assert_eq!(
                ProxyHeader::decode(buf),
                Err(ProxyError::NotProxyProtocol),
                "{buf:?}"
            );
        }
        assert_eq!(ProxyHeader::decode(b""), Ok(None));
        assert_eq!(ProxyHeader::decode(b"PROX"), Ok(None));
        assert_eq!(ProxyHeader::decode(b"\r\n\r\n\x00"), Ok(None));
    }

    #[test]
    fn v2_local_ignores_family_and_skips_block() {
        let wire = v2(0x20, 0x11, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
        assert_eq!(
            ProxyHeader::decode(&wire),
            Ok(Some((ProxyHeader::new(Version::V2, None), 29)))
        );
        // LOCAL with an unknown family is still fine.
        let wire = v2(0x20, 0xFF, &[]);
        assert_eq!(
            ProxyHeader::decode(&wire),
            Ok(Some((ProxyHeader::new(Version::V2, None), 16)))
        );
    }

    #[test]
    fn v2_tlvs_are_skipped() {
        let mut block = vec![10, 0, 0, 1, 10, 0, 0, 2, 0x04, 0xD2, 0x00, 0x50];
        block.extend_from_slice(&[0x02, 0x00, 0x04, b'a', b'.', b'i', b'o']); // PP2_TYPE_AUTHORITY
        block.extend_from_slice(&[0x04, 0x00, 0x00]); // PP2_TYPE_NOOP
        let wire = v2(0x21, 0x11, &block);
        let want = header(Version::V2, "10.0.0.1:1234", "10.0.0.2:80");
        assert_eq!(ProxyHeader::decode(&wire), Ok(Some((want, wire.len()))));
        assert_prefixes_incomplete(&wire, ProxyHeader::decode);
    }

    #[test]
    fn v2_udp_unspec_and_unix() {
        let udp = v2(0x21, 0x12, &[1, 1, 1, 1, 2, 2, 2, 2, 0, 53, 0, 53]);
        let want = header(Version::V2, "1.1.1.1:53", "2.2.2.2:53");
        assert_eq!(ProxyHeader::decode(&udp), Ok(Some((want, 28))));
        let unspec = v2(0x21, 0x00, &[9, 9]);
        assert_eq!(
            ProxyHeader::decode(&unspec),
            Ok(Some((ProxyHeader::new(Version::V2, None), 18)))
        );
        let unix = v2(0x21, 0x31, &[0; 216]);
        assert_eq!(
            ProxyHeader::decode(&unix),
            Ok(Some((ProxyHeader::new(Version::V2, None), 232)))
        );
    }

    #[test]
    fn v2_errors() {
        assert_eq!(
            ProxyHeader::decode(&v2(0x11, 0x11, &[0; 12])),
            Err(ProxyError::V2Version(0x11))
        );
        assert_eq!(
            ProxyHeader::decode(&v2(0x22, 0x11, &[0; 12])),
            Err(ProxyError::V2Command(0x22))
        );
        assert_eq!(
            ProxyHeader::decode(&v2(0x21, 0x13, &[0; 12])),
            Err(ProxyError::V2Family(0x13))
        );
        assert_eq!(
            ProxyHeader::decode(&v2(0x21, 0x41, &[0; 12])),
            Err(ProxyError::V2Family(0x41))
        );
        assert_eq!(
            ProxyHeader::decode(&v2(0x21, 0x11, &[0; 11])),
            Err(ProxyError::V2AddressTooShort {
                family: 0x11,
                len: 11
            })
        );
        assert_eq!(
            ProxyHeader::decode(&v2(0x21, 0x21, &[0; 12])),
            Err(ProxyError::V2AddressTooShort {
                family: 0x21,
                len: 12
            })
        );
        // Errors in the fixed part are reported before the block arrives.
        let early = v2(0x21, 0x11, &[0; 11]);
        assert_eq!(
            ProxyHeader::decode(&early[..16]),
            Err(ProxyError::V2AddressTooShort {
                family: 0x11,
                len: 11
            })
        );
    }

    fn arb_socket_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
            (any::<[u8; 16]>(), any::<u16>())
                .prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
        ]
    }

    fn arb_header() -> impl Strategy<Value = ProxyHeader> {
        (
            prop_oneof![Just(Version::V1), Just(Version::V2)],
            proptest::option::of((arb_socket_addr(), arb_socket_addr())),
        )
            .prop_map(|(v, a)| ProxyHeader::new(v, a.map(|(s, d)| ProxyAddrs::new(s, d))))
    }

    proptest! {
        #[test]
        fn round_trip(h in arb_header()) {
            let wire = encoded(&h);
            prop_assert!(h.version == Version::V2 || wire.len() <= V1_MAX_LEN);
            let want = ProxyHeader::new(h.version, h.addrs.map(|a| a.normalized()));
            prop_assert_eq!(ProxyHeader::decode(&wire), Ok(Some((want, wire.len()))));
        }

        #[test]
        fn prefixes_are_incomplete(h in arb_header()) {
            assert_prefixes_incomplete(&encoded(&h), ProxyHeader::decode);
        }

        #[test]
        fn arbitrary_bytes_never_panic(
            start in prop_oneof![Just(&b""[..]), Just(&b"PROXY "[..]), Just(&V2_SIGNATURE[..])],
            tail in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let buf = [start, &tail].concat();
            if let Ok(Some((_, used))) = ProxyHeader::decode(&buf) {
                prop_assert!(used <= buf.len());
            }
        }
    }
}
