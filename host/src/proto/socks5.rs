//! SOCKS5 (RFC 1928), the server side: the greeting, username/password
//! authentication (RFC 1929), the request, the reply and the UDP datagram header.
//! Addresses are address-then-port with ATYP 1 (IPv4), 3 (domain), 4 (IPv6): a
//! different layout from VLESS's (see `addr`), so a codec of its own.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::BytesMut;

use super::cursor::{Cursor, Stop, finish};
use super::{Address, Destination};

pub const VERSION: u8 = 5;
pub const NO_AUTH: u8 = 0x00;
pub const USER_PASS: u8 = 0x02;
/// The version byte of the RFC 1929 sub-negotiation.
pub const AUTH_VERSION: u8 = 1;
pub const AUTH_OK: u8 = 0;
pub const AUTH_FAILED: u8 = 1;
pub const NO_ACCEPTABLE: u8 = 0xff;
pub const CMD_CONNECT: u8 = 1;
pub const CMD_UDP_ASSOCIATE: u8 = 3;

/// Reply codes.
pub const SUCCEEDED: u8 = 0x00;
pub const GENERAL_FAILURE: u8 = 0x01;
pub const NOT_ALLOWED: u8 = 0x02;
pub const NETWORK_UNREACHABLE: u8 = 0x03;
pub const HOST_UNREACHABLE: u8 = 0x04;
pub const CONNECTION_REFUSED: u8 = 0x05;
pub const TTL_EXPIRED: u8 = 0x06;
pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
pub const ADDRESS_NOT_SUPPORTED: u8 = 0x08;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Socks5Error {
    #[error("datagram shorter than its SOCKS5 header")]
    Truncated,
    #[error("not SOCKS5 (version {0})")]
    Version(u8),
    #[error("no authentication methods offered")]
    NoMethods,
    #[error("unknown address type {0}")]
    AddressType(u8),
    #[error("invalid domain name")]
    Domain,
    #[error("not a username/password sub-negotiation (version {0})")]
    AuthVersion(u8),
}

/// Username and password (RFC 1929), as sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: Vec<u8>,
    pub pass: Vec<u8>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credentials({}, ***)",
            String::from_utf8_lossy(&self.user)
        )
    }
}

impl Credentials {
    pub fn decode(buf: &[u8]) -> Result<Option<(Credentials, usize)>, Socks5Error> {
        let mut cur = Cursor::new(buf);
        finish(Self::parse(&mut cur).map(|c| (c, cur.consumed())))
    }

    fn parse(cur: &mut Cursor<'_>) -> Result<Credentials, Stop<Socks5Error>> {
        let version = cur.u8()?;
        if version != AUTH_VERSION {
            return Err(Stop::Invalid(Socks5Error::AuthVersion(version)));
        }
        let len = cur.u8()? as usize;
        let user = cur.take(len)?.to_vec();
        let len = cur.u8()? as usize;
        let pass = cur.take(len)?.to_vec();
        Ok(Credentials { user, pass })
    }
}

/// A UDP ASSOCIATE datagram's header: fragment number and the peer's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdpHeader {
    pub frag: u8,
    pub addr: Destination,
}

impl UdpHeader {
    /// Decodes the header at the front of a whole datagram; returns it and its length.
    /// A datagram too short for its header is invalid (there is no "more" to wait for).
    pub fn decode(datagram: &[u8]) -> Result<(UdpHeader, usize), Socks5Error> {
        let mut cur = Cursor::new(datagram);
        let parsed = (|| {
            let _reserved = cur.take(2)?;
            let frag = cur.u8()?;
            let addr = parse_addr(&mut cur)?;
            Ok(UdpHeader { frag, addr })
        })();
        match parsed {
            Ok(h) => Ok((h, cur.consumed())),
            Err(Stop::Incomplete) => Err(Socks5Error::Truncated),
            Err(Stop::Invalid(e)) => Err(e),
        }
    }

    /// Writes the header for a datagram from (or to) `addr`.
    pub fn encode(addr: &Destination, dst: &mut BytesMut) {
        dst.extend_from_slice(&[0, 0, 0]);
        encode_addr(addr, dst);
    }
}

/// The client's greeting: the authentication methods it offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    pub methods: Vec<u8>,
}

/// A request: the command and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub command: u8,
    pub target: Destination,
}

impl Greeting {
    pub fn decode(buf: &[u8]) -> Result<Option<(Greeting, usize)>, Socks5Error> {
        let mut cur = Cursor::new(buf);
        finish(Self::parse(&mut cur).map(|g| (g, cur.consumed())))
    }

    fn parse(cur: &mut Cursor<'_>) -> Result<Greeting, Stop<Socks5Error>> {
        let version = cur.u8()?;
        if version != VERSION {
            return Err(Stop::Invalid(Socks5Error::Version(version)));
        }
        let count = cur.u8()? as usize;
        if count == 0 {
            return Err(Stop::Invalid(Socks5Error::NoMethods));
        }
        Ok(Greeting {
            methods: cur.take(count)?.to_vec(),
        })
    }
}

impl Request {
    pub fn decode(buf: &[u8]) -> Result<Option<(Request, usize)>, Socks5Error> {
        let mut cur = Cursor::new(buf);
        finish(Self::parse(&mut cur).map(|r| (r, cur.consumed())))
    }

    fn parse(cur: &mut Cursor<'_>) -> Result<Request, Stop<Socks5Error>> {
        let version = cur.u8()?;
        if version != VERSION {
            return Err(Stop::Invalid(Socks5Error::Version(version)));
        }
        let command = cur.u8()?;
        let _reserved = cur.u8()?;
        let target = parse_addr(cur)?;
        Ok(Request { command, target })
    }
}

/// ATYP, address, port.
fn parse_addr(cur: &mut Cursor<'_>) -> Result<Destination, Stop<Socks5Error>> {
    let addr = match cur.u8()? {
        1 => Address::from_ip(IpAddr::V4(Ipv4Addr::from(cur.array::<4>()?))),
        3 => {
            let len = cur.u8()? as usize;
            let raw = cur.take(len)?;
            Address::parse_domain(raw).map_err(|_| Stop::Invalid(Socks5Error::Domain))?
        }
        4 => Address::from_ip(IpAddr::V6(Ipv6Addr::from(cur.array::<16>()?))),
        other => return Err(Stop::Invalid(Socks5Error::AddressType(other))),
    };
    let port = cur.u16_be()?;
    Ok(Destination::new(addr, port))
}

fn encode_addr(addr: &Destination, dst: &mut BytesMut) {
    match &addr.addr {
        Address::Ipv4(ip) => {
            dst.extend_from_slice(&[1]);
            dst.extend_from_slice(&ip.octets());
        }
        Address::Ipv6(ip) => {
            dst.extend_from_slice(&[4]);
            dst.extend_from_slice(&ip.octets());
        }
        Address::Domain(d) => {
            // A domain is at most 255 bytes by construction (`Address::parse_domain`).
            dst.extend_from_slice(&[3, d.len().min(255) as u8]);
            dst.extend_from_slice(d.as_bytes().get(..255).unwrap_or(d.as_bytes()));
        }
    }
    dst.extend_from_slice(&addr.port.to_be_bytes());
}

/// Writes a reply with `code` and the bound address.
pub fn encode_reply(code: u8, bound: SocketAddr, dst: &mut BytesMut) {
    dst.extend_from_slice(&[VERSION, code, 0]);
    let bound = Destination::new(Address::from_ip(bound.ip()), bound.port());
    encode_addr(&bound, dst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::test_support::{captured, check_all_prefixes};

    #[test]
    fn captured_curl_greeting_and_request() {
        let wire = captured("curl-socks5.bin");
        let (greeting, used) = Greeting::decode(&wire).unwrap().unwrap();
        assert_eq!(greeting.methods, vec![NO_AUTH, 1]);
        let request = &wire[used..];
        let decoded = check_all_prefixes(request, Request::decode);
        assert_eq!(decoded.command, CMD_CONNECT);
        assert_eq!(
            decoded.target,
            Destination::new(Address::Domain("example.com".into()), 80)
        );
        assert!(matches!(Greeting::decode(&wire[..used - 1]), Ok(None)));
    }

    const CONNECT_DOMAIN: &[u8] = b"\x05\x01\x00\x03\x0bexample.com\x01\xbb";
    const CONNECT_V4: &[u8] = &[5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];

    #[test]
    fn requests_and_their_prefixes() {
        let (r, used) = Request::decode(CONNECT_DOMAIN).unwrap().unwrap();
        assert_eq!(used, CONNECT_DOMAIN.len());
        assert_eq!(r.command, CMD_CONNECT);
        assert_eq!(r.target.to_string(), "example.com:443");
        let (r, _) = Request::decode(CONNECT_V4).unwrap().unwrap();
        assert_eq!(r.target.to_string(), "127.0.0.1:8080");
        for input in [CONNECT_DOMAIN, CONNECT_V4] {
            check_all_prefixes(input, Request::decode);
        }
    }

    #[test]
    fn greetings() {
        assert_eq!(
            Greeting::decode(&[5, 2, 0, 2]).unwrap().unwrap().0.methods,
            vec![0, 2]
        );
        assert_eq!(Greeting::decode(&[5, 2, 0]), Ok(None));
        assert_eq!(Greeting::decode(&[4, 1, 0]), Err(Socks5Error::Version(4)));
        assert_eq!(Greeting::decode(&[5, 0]), Err(Socks5Error::NoMethods));
    }

    #[test]
    fn bad_requests() {
        assert_eq!(
            Request::decode(&[5, 1, 0, 9, 0]),
            Err(Socks5Error::AddressType(9))
        );
        assert_eq!(
            Request::decode(b"\x05\x01\x00\x03\x02a*\x00\x50"),
            Err(Socks5Error::Domain)
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut x: u32 = 7;
        for len in 0..300 {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (x >> 16) as u8
                })
                .collect();
            let _ = Request::decode(&buf);
            let _ = Greeting::decode(&buf);
            let _ = Credentials::decode(&buf);
            let _ = UdpHeader::decode(&buf);
        }
    }

    #[test]
    fn credentials_and_their_prefixes() {
        let input = b"\x01\x05alice\x06secret";
        let (c, used) = Credentials::decode(input).unwrap().unwrap();
        assert_eq!(
            (c.user.as_slice(), c.pass.as_slice(), used),
            (&b"alice"[..], &b"secret"[..], input.len())
        );
        check_all_prefixes(input, Credentials::decode);
        assert_eq!(
            Credentials::decode(b"\x05\x00"),
            Err(Socks5Error::AuthVersion(5))
        );
        assert!(!format!("{c:?}").contains("secret"));
    }

    #[test]
    fn udp_headers_round_trip_and_short_ones_are_refused() {
        let dests = [
            Destination::new(Address::from_ip("127.0.0.1".parse().unwrap()), 53),
            Destination::new(Address::from_ip("::1".parse().unwrap()), 5353),
            Destination::new(Address::Domain("example.com".into()), 443),
        ];
        for dest in dests {
            let mut out = BytesMut::new();
            UdpHeader::encode(&dest, &mut out);
            out.extend_from_slice(b"payload");
            let (h, used) = UdpHeader::decode(&out).unwrap();
            assert_eq!((h.frag, &h.addr, &out[used..]), (0, &dest, &b"payload"[..]));
            for end in 0..used {
                assert!(UdpHeader::decode(&out[..end]).is_err(), "prefix {end}");
            }
        }
        assert_eq!(
            UdpHeader::decode(&[0, 0, 1, 7, 0]),
            Err(Socks5Error::AddressType(7))
        );
    }

    #[test]
    fn replies() {
        let mut out = BytesMut::new();
        encode_reply(SUCCEEDED, "0.0.0.0:0".parse().unwrap(), &mut out);
        assert_eq!(&out[..], &[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    }
}
