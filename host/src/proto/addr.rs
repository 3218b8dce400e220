//! The address form shared by VLESS, Mux.Cool and XUDP (spec 0.1).
//!
//! On the wire it is `[port u16 BE][ATYP][address]` (port **first**), with
//! ATYP `1` = IPv4 (4 bytes), `2` = domain (one length byte, then that many
//! bytes) and `3` = IPv6 (16 bytes). SOCKS5 numbers the same kinds 1/3/4 and
//! puts the port last, which is why this codec is separate from any SOCKS one.
//!
//! Decoding follows Xray's rules, because routing decisions depend on them:
//!
//! * a domain whose first byte is `[` or a digit and which parses as an IP
//!   literal (brackets stripped) *becomes* that IP address;
//! * otherwise only `[0-9A-Za-z-._]` is allowed, and an empty domain is refused;
//! * an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) becomes IPv4, as Xray's
//!   `net.IPAddress` does for both ATYP 3 and parsed literals.
//!
//! Encoding refuses what a peer could not decode: an empty domain or one
//! longer than 255 bytes (a 256-byte name would wrap the length byte to 0).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{BufMut, BytesMut};

use super::cursor::{Cursor, Stop, finish};

/// ATYP for a 4-byte IPv4 address.
pub const ATYP_IPV4: u8 = 1;
/// ATYP for a length-prefixed domain name.
pub const ATYP_DOMAIN: u8 = 2;
/// ATYP for a 16-byte IPv6 address.
pub const ATYP_IPV6: u8 = 3;
/// The longest domain name the one-byte length can carry.
pub const MAX_DOMAIN_LEN: usize = 255;

/// Errors of the VLESS-style address codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The ATYP byte is not 1, 2 or 3.
    #[error("unknown address type {0:#04x}")]
    UnknownType(u8),
    /// A domain with a zero length byte (decode) or an empty string (encode).
    #[error("empty domain name")]
    EmptyDomain,
    /// A domain with a byte outside `[0-9A-Za-z-._]` that is not an IP literal.
    #[error("invalid domain name {0:?}")]
    InvalidDomain(String),
    /// Encoding a domain longer than [`MAX_DOMAIN_LEN`] bytes.
    #[error("domain name of {0} bytes is longer than 255")]
    DomainTooLong(usize),
}

/// A host: an IP address or a domain name still to be resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    Domain(String),
}

/// A host and a port: where a session goes (or, in a UDP reply, where a
/// datagram came from). Xray calls this a `Destination`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub addr: Address,
    pub port: u16,
}

impl Address {
    /// Builds an address from an IP, turning IPv4-mapped IPv6 into IPv4.
    pub fn from_ip(ip: IpAddr) -> Address {
        match ip {
            IpAddr::V4(v4) => Address::Ipv4(v4),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Address::Ipv4(v4),
                None => Address::Ipv6(v6),
            },
        }
    }

    /// Applies the decoder's domain rules to raw domain bytes: an IP literal
    /// (first byte `[` or a digit) becomes an IP, anything else must be a
    /// non-empty run of `[0-9A-Za-z-._]`.
    pub fn parse_domain(raw: &[u8]) -> Result<Address, AddrError> {
        let Some(&first) = raw.first() else {
            return Err(AddrError::EmptyDomain);
        };
        if (first == b'[' || first.is_ascii_digit())
            && let Some(ip) = parse_ip_literal(raw)
        {
            return Ok(Address::from_ip(ip));
        }
        if raw.iter().all(|&b| is_domain_byte(b)) {
            // Every byte is ASCII, so this is a lossless conversion.
            Ok(Address::Domain(
                raw.iter().map(|&b| char::from(b)).collect(),
            ))
        } else {
            Err(AddrError::InvalidDomain(
                String::from_utf8_lossy(raw).into_owned(),
            ))
        }
    }

    /// The IP, if this is not a domain.
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Address::Ipv4(v4) => Some(IpAddr::V4(*v4)),
            Address::Ipv6(v6) => Some(IpAddr::V6(*v6)),
            Address::Domain(_) => None,
        }
    }

    /// Bytes of `[ATYP][address]` on the wire (port not included).
    pub fn encoded_len(&self) -> usize {
        1 + match self {
            Address::Ipv4(_) => 4,
            Address::Ipv6(_) => 16,
            Address::Domain(d) => 1 + d.len(),
        }
    }

    /// Checks that [`Address::encode_unchecked`] will produce decodable bytes.
    fn check_encodable(&self) -> Result<(), AddrError> {
        match self {
            Address::Domain(d) if d.is_empty() => Err(AddrError::EmptyDomain),
            Address::Domain(d) if d.len() > MAX_DOMAIN_LEN => {
                Err(AddrError::DomainTooLong(d.len()))
            }
            _ => Ok(()),
        }
    }

    /// Writes `[ATYP][address]`; the caller has run `check_encodable`.
    fn encode_unchecked(&self, dst: &mut BytesMut) {
        match self {
            Address::Ipv4(v4) => {
                dst.put_u8(ATYP_IPV4);
                dst.put_slice(&v4.octets());
            }
            Address::Ipv6(v6) => {
                dst.put_u8(ATYP_IPV6);
                dst.put_slice(&v6.octets());
            }
            Address::Domain(d) => {
                dst.put_u8(ATYP_DOMAIN);
                // check_encodable bounds the length to 1..=255.
                dst.put_u8(u8::try_from(d.len()).unwrap_or(u8::MAX));
                dst.put_slice(d.as_bytes());
            }
        }
    }
}

/// Xray tries an IP parse only for names starting with `[` or a digit; a
/// bracketed form has its brackets removed first.
fn parse_ip_literal(raw: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(raw).ok()?;
    let inner = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    inner.parse().ok()
}

fn is_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ipv4(v4) => v4.fmt(f),
            Address::Ipv6(v6) => v6.fmt(f),
            Address::Domain(d) => f.write_str(d),
        }
    }
}

impl From<IpAddr> for Address {
    fn from(ip: IpAddr) -> Self {
        Address::from_ip(ip)
    }
}

impl Destination {
    pub fn new(addr: Address, port: u16) -> Self {
        Destination { addr, port }
    }

    /// Decodes `[port][ATYP][address]` from the front of `buf`.
    ///
    /// `Ok(None)` means the buffer ends inside the address; the `usize` is
    /// the number of bytes the address occupied.
    pub fn decode(buf: &[u8]) -> Result<Option<(Destination, usize)>, AddrError> {
        let mut cur = Cursor::new(buf);
        finish(Self::parse(&mut cur).map(|d| (d, cur.consumed())))
    }

    /// The decoder proper, for codecs that embed an address.
    pub(crate) fn parse(cur: &mut Cursor<'_>) -> Result<Destination, Stop<AddrError>> {
        let port = cur.u16_be()?;
        let addr = match cur.u8()? {
            ATYP_IPV4 => Address::Ipv4(Ipv4Addr::from(cur.array::<4>()?)),
            ATYP_IPV6 => Address::from_ip(IpAddr::V6(Ipv6Addr::from(cur.array::<16>()?))),
            ATYP_DOMAIN => {
                let len = cur.u8()?;
                let raw = cur.take(usize::from(len))?;
                Address::parse_domain(raw).map_err(Stop::Invalid)?
            }
            other => return Err(Stop::Invalid(AddrError::UnknownType(other))),
        };
        Ok(Destination { addr, port })
    }

    /// Checks what [`Destination::encode`] would refuse, without writing.
    pub fn check_encodable(&self) -> Result<(), AddrError> {
        self.addr.check_encodable()
    }

    /// Appends `[port][ATYP][address]`. On error nothing is written.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), AddrError> {
        self.check_encodable()?;
        self.encode_unchecked(dst);
        Ok(())
    }

    /// Writes the address; the caller has run `check_encodable`.
    pub(crate) fn encode_unchecked(&self, dst: &mut BytesMut) {
        dst.reserve(self.encoded_len());
        dst.put_u16(self.port);
        self.addr.encode_unchecked(dst);
    }

    /// Bytes [`Destination::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        2 + self.addr.encoded_len()
    }

    /// The socket address, if the host is an IP.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.addr.ip().map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl From<SocketAddr> for Destination {
    fn from(sa: SocketAddr) -> Self {
        Destination::new(Address::from_ip(sa.ip()), sa.port())
    }
}

/// `host:port`, with an IPv6 host in brackets.
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.addr {
            Address::Ipv6(v6) => write!(f, "[{v6}]:{}", self.port),
            other => write!(f, "{other}:{}", self.port),
        }
    }
}

/// Proptest strategies shared with the codecs that embed an address.
#[cfg(test)]
pub(crate) mod strategies {
    use super::*;
    use proptest::prelude::*;

    /// Domains that decode back to themselves: they start with a letter, so
    /// they are never taken for an IP literal.
    pub(crate) fn domain() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z0-9._-]{0,254}"
    }

    /// Addresses in the form the decoder returns (no IPv4-mapped IPv6).
    pub(crate) fn address() -> impl Strategy<Value = Address> {
        prop_oneof![
            any::<[u8; 4]>().prop_map(|o| Address::Ipv4(o.into())),
            any::<[u8; 16]>().prop_map(|o| Address::from_ip(IpAddr::V6(o.into()))),
            domain().prop_map(Address::Domain),
        ]
    }

    pub(crate) fn destination() -> impl Strategy<Value = Destination> {
        (address(), any::<u16>()).prop_map(|(a, p)| Destination::new(a, p))
    }
}

#[cfg(test)]
mod tests {
    use super::strategies::destination;
    use super::*;
    use crate::proto::test_support::check_all_prefixes;
    use proptest::prelude::*;

    fn encoded(d: &Destination) -> Vec<u8> {
        let mut b = BytesMut::new();
        d.encode(&mut b).expect("encodable");
        b.to_vec()
    }

    fn domain_wire(port: u16, name: &[u8]) -> Vec<u8> {
        let mut v = port.to_be_bytes().to_vec();
        v.push(ATYP_DOMAIN);
        v.push(u8::try_from(name.len()).expect("short name"));
        v.extend_from_slice(name);
        v
    }

    fn decode_all(buf: &[u8]) -> Result<Destination, AddrError> {
        match Destination::decode(buf)? {
            Some((d, used)) if used == buf.len() => Ok(d),
            other => panic!("expected a complete decode, got {other:?}"),
        }
    }

    #[test]
    fn spec_example_domain() {
        // spec 1.1: port 443, ATYP 2, "example.com"
        let wire = b"\x01\xBB\x02\x0Bexample.com";
        let d = Destination::new(Address::Domain("example.com".into()), 443);
        assert_eq!(decode_all(wire), Ok(d.clone()));
        assert_eq!(encoded(&d), wire);
        check_all_prefixes(wire, Destination::decode);
    }

    #[test]
    fn spec_example_ipv4() {
        // spec 2.1 XUDP: 8.8.8.8:53
        let wire = [0x00, 0x35, 0x01, 8, 8, 8, 8];
        let d = Destination::new(Address::Ipv4(Ipv4Addr::new(8, 8, 8, 8)), 53);
        assert_eq!(decode_all(&wire), Ok(d.clone()));
        assert_eq!(encoded(&d), wire);
        check_all_prefixes(&wire, Destination::decode);
    }

    #[test]
    fn ipv6_round_trip_and_bytes() {
        let d = Destination::new(Address::Ipv6(Ipv6Addr::LOCALHOST), 8443);
        let wire = encoded(&d);
        assert_eq!(&wire[..3], &[0x20, 0xFB, ATYP_IPV6]);
        assert_eq!(wire.len(), 19);
        assert_eq!(d.encoded_len(), 19);
        assert_eq!(decode_all(&wire), Ok(d));
        check_all_prefixes(&wire, Destination::decode);
    }

    #[test]
    fn ipv4_mapped_ipv6_becomes_ipv4() {
        let mut wire = vec![0, 80, ATYP_IPV6];
        wire.extend_from_slice(&Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped().octets());
        let d = decode_all(&wire).expect("valid");
        assert_eq!(d.addr, Address::Ipv4(Ipv4Addr::new(1, 2, 3, 4)));
    }

    #[test]
    fn unknown_address_type() {
        for atyp in [0u8, 4, 5, 16, 255] {
            assert_eq!(
                Destination::decode(&[0, 80, atyp, 1, 2, 3, 4]),
                Err(AddrError::UnknownType(atyp))
            );
            // Known as soon as the ATYP byte arrives.
            assert_eq!(
                Destination::decode(&[0, 80, atyp]),
                Err(AddrError::UnknownType(atyp))
            );
        }
    }

    #[test]
    fn domain_that_is_an_ip_literal_becomes_an_ip() {
        let cases: [(&[u8], Address); 5] = [
            (b"1.2.3.4", Address::Ipv4(Ipv4Addr::new(1, 2, 3, 4))),
            (b"[1.2.3.4]", Address::Ipv4(Ipv4Addr::new(1, 2, 3, 4))),
            (b"[::1]", Address::Ipv6(Ipv6Addr::LOCALHOST)),
            (
                b"[::ffff:10.0.0.1]",
                Address::Ipv4(Ipv4Addr::new(10, 0, 0, 1)),
            ),
            (
                b"2001:db8::1",
                Address::Ipv6("2001:db8::1".parse().expect("ip")),
            ),
        ];
        for (name, want) in cases {
            assert_eq!(decode_all(&domain_wire(80, name)).map(|d| d.addr), Ok(want));
        }
    }

    #[test]
    fn digit_led_names_that_are_not_ips_stay_domains() {
        for name in ["1password.com", "12345", "0.0.0.0.nip.io", "3com"] {
            let d = decode_all(&domain_wire(1, name.as_bytes())).expect("valid domain");
            assert_eq!(d.addr, Address::Domain(name.to_owned()));
        }
    }

    #[test]
    fn invalid_domain_characters() {
        let bad: [&[u8]; 9] = [
            b"exa mple.com",
            b"a*b",
            b"a:b",
            b"[::1",
            b"[]",
            b"x/y",
            "bücher.de".as_bytes(),
            b"\xff\xfe",
            b"a\0b",
        ];
        for name in bad {
            assert!(
                matches!(
                    Destination::decode(&domain_wire(80, name)),
                    Err(AddrError::InvalidDomain(_))
                ),
                "{name:?} must be rejected"
            );
        }
        // Upstream trims spaces around IP literals; this codec is stricter.
        assert!(Destination::decode(&domain_wire(80, b"1.2.3.4 ")).is_err());
    }

    #[test]
    fn allowed_domain_characters() {
        let name = "Az09-._.example";
        let d = decode_all(&domain_wire(1, name.as_bytes())).expect("valid");
        assert_eq!(d.addr, Address::Domain(name.into()));
    }

    #[test]
    fn zero_length_domain_is_rejected() {
        assert_eq!(
            Destination::decode(&[0, 80, ATYP_DOMAIN, 0]),
            Err(AddrError::EmptyDomain)
        );
        assert_eq!(Destination::decode(&[0, 80, ATYP_DOMAIN]), Ok(None));
    }

    #[test]
    fn encoder_refuses_unencodable_domains() {
        let mut b = BytesMut::new();
        let long = Destination::new(Address::Domain("a".repeat(256)), 1);
        assert_eq!(long.encode(&mut b), Err(AddrError::DomainTooLong(256)));
        let empty = Destination::new(Address::Domain(String::new()), 1);
        assert_eq!(empty.encode(&mut b), Err(AddrError::EmptyDomain));
        assert!(b.is_empty(), "nothing written on error");

        let max = Destination::new(Address::Domain("a".repeat(255)), 1);
        max.encode(&mut b).expect("255 bytes fit");
        assert_eq!(b.len(), 2 + 1 + 1 + 255);
        assert_eq!(b[3], 255);
        assert_eq!(decode_all(&b), Ok(max));
    }

    #[test]
    fn display() {
        let v4 = Destination::new(Address::Ipv4(Ipv4Addr::new(1, 2, 3, 4)), 80);
        let v6 = Destination::new(Address::Ipv6(Ipv6Addr::LOCALHOST), 443);
        let dn = Destination::new(Address::Domain("example.com".into()), 8080);
        assert_eq!(v4.to_string(), "1.2.3.4:80");
        assert_eq!(v6.to_string(), "[::1]:443");
        assert_eq!(dn.to_string(), "example.com:8080");
        assert_eq!(Address::Ipv6(Ipv6Addr::LOCALHOST).to_string(), "::1");
    }

    #[test]
    fn socket_addr_conversions() {
        let sa: SocketAddr = "[::ffff:1.2.3.4]:99".parse().expect("addr");
        let d = Destination::from(sa);
        assert_eq!(d.to_string(), "1.2.3.4:99");
        assert_eq!(d.socket_addr(), Some("1.2.3.4:99".parse().expect("addr")));
        assert_eq!(
            Destination::new(Address::Domain("x".into()), 1).socket_addr(),
            None
        );
    }

    proptest! {
        #[test]
        fn round_trip(d in destination()) {
            let wire = encoded(&d);
            prop_assert_eq!(wire.len(), d.encoded_len());
            prop_assert_eq!(Destination::decode(&wire), Ok(Some((d, wire.len()))));
        }

        #[test]
        fn prefixes_are_incomplete(d in destination()) {
            check_all_prefixes(&encoded(&d), Destination::decode);
        }

        #[test]
        fn trailing_bytes_are_left_alone(d in destination(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut wire = encoded(&d);
            let len = wire.len();
            wire.extend_from_slice(&tail);
            prop_assert_eq!(Destination::decode(&wire), Ok(Some((d, len))));
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(Some((_, used))) = Destination::decode(&buf) {
                prop_assert!(used <= buf.len());
            }
        }
    }
}
