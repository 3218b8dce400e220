//! PROXY protocol v1 and v2: both families, TLVs, LOCAL, limits, every prefix.

use super::*;
use crate::proto::test_support::check_all_prefixes;
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
    check_all_prefixes(wire, ProxyHeader::decode);
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
    check_all_prefixes(&wire, ProxyHeader::decode);
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
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::new(IpAddr::from(ip), p)),
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
        check_all_prefixes(&encoded(&h), ProxyHeader::decode);
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
