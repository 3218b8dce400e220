//! sniff-tls through the native harness, on real ClientHellos (rustls, OpenSSL).

use std::sync::Arc;

use proptest::prelude::*;
use sniff_tls::{ALPN_ATTRIBUTE, PAYLOAD_BYTES, SniffTls};
use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder, configure_error};
use wasmray_plugin_sdk::tls::{build_client_hello, fragment_records};
use wasmray_plugin_sdk::{Delta, Network, Snapshot, Verdict};

/// `openssl s_client -connect 127.0.0.1:PORT -servername Www.Example.COM -alpn h2,http/1.1`
/// (OpenSSL 3.0.19), captured on loopback.
const OPENSSL_SNI_ALPN: &str = include_str!("fixtures/openssl-s_client-sni-alpn.hex");
/// `openssl s_client -connect 127.0.0.1:PORT -noservername -tls1_2` (OpenSSL 3.0.19).
const OPENSSL_NO_SNI: &str = include_str!("fixtures/openssl-s_client-tls12-no-sni.hex");

fn unhex(s: &str) -> Vec<u8> {
    let s = s.trim();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// The first flight of a rustls client: its ClientHello record(s).
fn rustls_hello(server_name: &str, alpn: &[&str], enable_sni: bool) -> Vec<u8> {
    let mut config = rustls::ClientConfig::builder()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config.enable_sni = enable_sni;
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

fn h() -> Harness<SniffTls> {
    Harness::new("{}")
}

fn tcp() -> Snapshot {
    SnapshotBuilder::new().target("93.184.215.14", 443).build()
}

fn matched(payload: &[u8]) -> Delta {
    h().handle(&tcp(), payload).expect_matched()
}

#[test]
fn describes_itself() {
    assert_eq!(h().descriptor().name, "sniff-tls");
    assert_eq!(h().descriptor().payload_bytes, 16389);
    assert!(configure_error::<SniffTls>(r#"{"x":1}"#).contains("unknown field"));
}

#[test]
fn rustls_hello_with_sni_and_alpn() {
    let hello = rustls_hello("Video.Example.COM", &["h2", "http/1.1"], true);
    let d = matched(&hello);
    assert_eq!(d.protocol.as_deref(), Some("tls"));
    assert_eq!(d.sniffed_domain.as_deref(), Some("video.example.com"));
    assert_eq!(d.get(ALPN_ATTRIBUTE), Some("h2,http/1.1"));
    assert_eq!(d.set.len(), 1);
}

#[test]
fn rustls_hello_without_alpn_or_sni() {
    let d = matched(&rustls_hello("a.example", &[], true));
    assert_eq!(d.sniffed_domain.as_deref(), Some("a.example"));
    assert_eq!(d.get(ALPN_ATTRIBUTE), None);
    assert!(d.set.is_empty());
    // SNI turned off, or an IP server name (rustls sends no SNI for IPs): no match.
    assert!(
        h().handle(&tcp(), &rustls_hello("a.example", &["h2"], false))
            .is_no_match()
    );
    assert!(
        h().handle(&tcp(), &rustls_hello("192.0.2.1", &["h2"], true))
            .is_no_match()
    );
}

#[test]
fn openssl_hellos() {
    let d = matched(&unhex(OPENSSL_SNI_ALPN));
    assert_eq!(d.sniffed_domain.as_deref(), Some("www.example.com"));
    assert_eq!(d.get(ALPN_ATTRIBUTE), Some("h2,http/1.1"));
    assert!(h().handle(&tcp(), &unhex(OPENSSL_NO_SNI)).is_no_match());
}

#[test]
fn every_prefix_needs_more() {
    let h = h();
    let hellos = [
        rustls_hello("prefix.example", &["h2", "http/1.1"], true),
        unhex(OPENSSL_SNI_ALPN),
        unhex(OPENSSL_NO_SNI),
        fragment_records(&unhex(OPENSSL_SNI_ALPN), 40),
    ];
    for hello in &hellos {
        for n in 0..hello.len() {
            assert_eq!(
                h.handle(&tcp(), &hello[..n]),
                Verdict::NeedMore,
                "prefix {n} of {}",
                hello.len()
            );
        }
        // Application data after the hello does not change the answer.
        let mut more = hello.clone();
        more.extend_from_slice(&[0x17, 3, 3, 0, 4, 1, 2, 3, 4]);
        assert_eq!(h.handle(&tcp(), &more), h.handle(&tcp(), hello));
    }
}

#[test]
fn fragmented_hello_is_reassembled() {
    let hello = rustls_hello("frag.example", &["h2"], true);
    for chunk in [1, 5, 64, 300] {
        let d = matched(&fragment_records(&hello, chunk));
        assert_eq!(
            d.sniffed_domain.as_deref(),
            Some("frag.example"),
            "chunk {chunk}"
        );
        assert_eq!(d.get(ALPN_ATTRIBUTE), Some("h2"));
    }
}

#[test]
fn server_name_rules() {
    let h = h();
    // A byte <= 0x20: need more (Xray's QUIC guard), and no-match once the bound is hit.
    let spaced = build_client_hello(Some("a b.example"), &[]);
    assert!(h.handle(&tcp(), &spaced).is_need_more());
    let mut at_bound = spaced.clone();
    at_bound.resize(PAYLOAD_BYTES as usize, 0);
    assert!(h.handle(&tcp(), &at_bound).is_no_match());
    // Trailing dot, empty name, non-domain characters: no match.
    for name in ["a.example.", "", "a/b.example", "é.example", "a..example"] {
        assert!(
            h.handle(&tcp(), &build_client_hello(Some(name), &["h2"]))
                .is_no_match(),
            "{name:?}"
        );
    }
    assert!(
        h.handle(&tcp(), &build_client_hello(None, &["h2"]))
            .is_no_match()
    );
    assert_eq!(
        matched(&build_client_hello(Some("UP.Example"), &[]))
            .sniffed_domain
            .as_deref(),
        Some("up.example")
    );
}

#[test]
fn not_tls() {
    let h = h();
    for payload in [
        &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"\x16\x02\x01\x00\x05hello",            // version major 2
        b"\x17\x03\x03\x00\x05hello",            // application data
        b"\x16\x03\x01\x00\x00",                 // empty record
        b"\x16\x03\x01\x00\x04\x02\x00\x00\x00", // ServerHello type
        b"\x16\x03\x01\x00\x04\x01\x00\x00\x00", // empty ClientHello
    ] {
        assert!(h.handle(&tcp(), payload).is_no_match(), "{payload:?}");
    }
    let s = SnapshotBuilder::new().network(Network::Udp).build();
    assert!(
        h.handle(&s, &rustls_hello("a.example", &[], true))
            .is_no_match()
    );
}

#[test]
fn structural_checks() {
    let h = h();
    let good = build_client_hello(Some("s.example"), &["h2"]);
    assert!(h.handle(&tcp(), &good).delta().is_some());
    // Offsets in the record: 5 record header, 4 handshake header, 2 version, 32 random.
    let sid = 5 + 38;
    let mut r = good.clone();
    r[sid] = 33; // session id > 32
    assert!(h.handle(&tcp(), &r).is_no_match());
    let suites = sid + 1 + 32;
    let mut r = good.clone();
    r[suites + 1] = 3; // odd cipher suite length
    assert!(h.handle(&tcp(), &r).is_no_match());
    // Extensions length one short / one long of the message.
    let ext_len_at = suites + 2 + 2 + 2;
    for delta in [-1i32, 1] {
        let mut r = good.clone();
        let n = u16::from_be_bytes([r[ext_len_at], r[ext_len_at + 1]]) as i32 + delta;
        r[ext_len_at..ext_len_at + 2].copy_from_slice(&(n as u16).to_be_bytes());
        assert!(h.handle(&tcp(), &r).is_no_match(), "{delta}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_garbage(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = h().handle(&tcp(), &payload);
    }

    #[test]
    fn never_panics_on_record_shaped_garbage(len in 0u16..700, body in proptest::collection::vec(any::<u8>(), 0..700)) {
        let mut payload = vec![0x16, 3, 1];
        payload.extend_from_slice(&len.to_be_bytes());
        payload.push(1);
        payload.extend_from_slice(&body);
        let _ = h().handle(&tcp(), &payload);
    }

    /// Corrupting bytes of a real hello never panics, and any match is a sane domain.
    #[test]
    fn mutated_hellos(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
        let mut hello = unhex(OPENSSL_SNI_ALPN);
        for (i, b) in flips {
            let i = i.index(hello.len());
            hello[i] = b;
        }
        if let Verdict::Matched(d) = h().handle(&tcp(), &hello) {
            let dom = d.sniffed_domain.unwrap();
            prop_assert!(wasmray_plugin_sdk::domain::is_valid_domain(&dom));
            prop_assert_eq!(dom.to_ascii_lowercase(), dom);
        }
    }
}
