//! Mux.Cool frames: every status, XUDP addresses and GlobalIDs, the limits, every
//! prefix, captured frames from v2ray, and random input.

use super::*;
use crate::proto::addr::Address;
use crate::proto::addr::strategies::destination;
use crate::proto::test_support::{captured, check_all_prefixes};
use proptest::prelude::*;
use std::net::Ipv4Addr;

const G: [u8; 8] = [0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6, 0x07, 0x18];

fn example_com_443() -> Destination {
    Destination::new(Address::Domain("example.com".into()), 443)
}

fn dns() -> Destination {
    Destination::new(Address::Ipv4(Ipv4Addr::new(8, 8, 8, 8)), 53)
}

fn encoded(f: &Frame<'_>) -> Vec<u8> {
    let mut b = BytesMut::new();
    f.encode(&mut b).expect("encodable");
    assert_eq!(b.len(), f.encoded_len());
    b.to_vec()
}

/// `decode` with the frame rendered, so prefixes can be checked generically.
fn decode_dbg(buf: &[u8]) -> Result<Option<(String, usize)>, MuxError> {
    Frame::decode(buf).map(|o| o.map(|(f, n)| (format!("{f:?}"), n)))
}

/// Encodes, compares with the exact bytes, decodes back (with trailing
/// bytes of a next frame present) and checks every prefix.
fn check_exact(frame: Frame<'_>, wire: &[u8]) {
    assert_eq!(encoded(&frame), wire);
    let mut two = wire.to_vec();
    two.extend_from_slice(&[0x00, 0x04, 0x00, 0x09]);
    assert_eq!(Frame::decode(&two), Ok(Some((frame, wire.len()))));
    check_all_prefixes(wire, decode_dbg);
}

/// Decodes a buffer that holds exactly one valid frame.
fn decoded(wire: &[u8]) -> Frame<'_> {
    match Frame::decode(wire) {
        Ok(Some((f, used))) if used == wire.len() => f,
        other => panic!("expected one complete frame, got {other:?}"),
    }
}

fn frame_of(meta: &[u8], data: Option<&[u8]>) -> Vec<u8> {
    let mut v = u16::try_from(meta.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    v.extend_from_slice(meta);
    if let Some(d) = data {
        v.extend_from_slice(&u16::try_from(d.len()).expect("short").to_be_bytes());
        v.extend_from_slice(d);
    }
    v
}

#[test]
fn spec_new_tcp_with_data() {
    let wire = [
        &[
            0x00, 0x14, 0x00, 0x01, 0x01, 0x01, 0x01, 0x01, 0xBB, 0x02, 0x0B,
        ][..],
        b"example.com",
        &[0x00, 0x05],
        b"hello",
    ]
    .concat();
    let f = Frame::new_session(1, MuxNetwork::Tcp, example_com_443(), Some(b"hello"));
    check_exact(f, &wire);
}

#[test]
fn spec_keep_with_data() {
    let wire = [
        0x00, 0x04, 0x00, 0x01, 0x02, 0x01, 0x00, 0x03, b'a', b'b', b'c',
    ];
    check_exact(Frame::keep(1, b"abc"), &wire);
}

#[test]
fn spec_end_with_and_without_error() {
    check_exact(Frame::end(1, false), &[0x00, 0x04, 0x00, 0x01, 0x03, 0x00]);
    check_exact(Frame::end(1, true), &[0x00, 0x04, 0x00, 0x01, 0x03, 0x02]);
}

#[test]
fn spec_xudp_new_with_global_id() {
    let query = b"\x12\x34\x01\x00";
    let wire = [
        &[
            0x00, 0x14, 0x00, 0x00, 0x01, 0x01, 0x02, 0x00, 0x35, 0x01, 8, 8, 8, 8,
        ][..],
        &G,
        &[0x00, 0x04],
        query,
    ]
    .concat();
    let f =
        Frame::new_session(XUDP_SESSION_ID, MuxNetwork::Udp, dns(), Some(query)).with_global_id(G);
    assert_eq!(f.global_id(), Some(G));
    check_exact(f, &wire);
}

#[test]
fn spec_xudp_keep_from_server() {
    let reply = b"\x12\x34\x81\x80";
    let wire = [
        &[
            0x00, 0x0C, 0x00, 0x00, 0x02, 0x01, 0x02, 0x00, 0x35, 0x01, 8, 8, 8, 8,
        ][..],
        &[0x00, 0x04],
        reply,
    ]
    .concat();
    let f = Frame::keep_udp(XUDP_SESSION_ID, dns(), reply);
    assert!(f.is_udp());
    check_exact(f, &wire);
}

#[test]
fn keep_alive_and_new_without_data() {
    check_exact(Frame::keep_alive(7), &[0x00, 0x04, 0x00, 0x07, 0x04, 0x00]);
    let f = Frame::new_session(2, MuxNetwork::Tcp, dns(), None);
    check_exact(
        f,
        &[
            0x00, 0x0C, 0x00, 0x02, 0x01, 0x00, 0x01, 0x00, 0x35, 0x01, 8, 8, 8, 8,
        ],
    );
}

#[test]
fn metadata_length_limits() {
    assert_eq!(
        Frame::decode(&[0x02, 0x01]),
        Err(MuxError::MetadataTooLong(513))
    );
    assert_eq!(
        Frame::decode(&[0xFF, 0xFF]),
        Err(MuxError::MetadataTooLong(65535))
    );
    for n in 0u8..4 {
        assert_eq!(
            Frame::decode(&[0x00, n]),
            Err(MuxError::MetadataTooShort(n.into()))
        );
    }
    // 512 is allowed; the trailing metadata of an End frame is ignored.
    let mut meta = vec![0x00, 0x01, STATUS_END, 0x00];
    meta.resize(512, 0xEE);
    let wire = frame_of(&meta, None);
    assert_eq!(Frame::decode(&wire), Ok(Some((Frame::end(1, false), 514))));
}

#[test]
fn unknown_status() {
    for status in [0u8, 5, 0xFF] {
        let wire = frame_of(&[0x00, 0x01, status, 0x00], None);
        assert_eq!(Frame::decode(&wire), Err(MuxError::UnknownStatus(status)));
    }
}

#[test]
fn new_frame_errors() {
    let short = frame_of(&[0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50], None);
    assert_eq!(Frame::decode(&short), Err(MuxError::NewTooShort(7)));
    let bad_net = frame_of(
        &[
            0x00, 0x01, STATUS_NEW, 0x00, 0x03, 0x00, 0x50, 0x01, 1, 1, 1, 1,
        ],
        None,
    );
    assert_eq!(Frame::decode(&bad_net), Err(MuxError::UnknownNetwork(3)));
    let bad_atyp = frame_of(
        &[
            0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50, 0x04, 1, 1, 1, 1,
        ],
        None,
    );
    assert_eq!(
        Frame::decode(&bad_atyp),
        Err(MuxError::Address(AddrError::UnknownType(4)))
    );
    let truncated = frame_of(
        &[
            0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50, 0x02, 0x0B, b'e', b'x',
        ],
        None,
    );
    assert_eq!(Frame::decode(&truncated), Err(MuxError::TruncatedMetadata));
    let empty_domain = frame_of(
        &[
            0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50, 0x02, 0x00,
        ],
        None,
    );
    assert_eq!(
        Frame::decode(&empty_domain),
        Err(MuxError::Address(AddrError::EmptyDomain))
    );
    let bad_domain = frame_of(
        &[
            0x00, 0x01, STATUS_NEW, 0x00, NET_TCP, 0x00, 0x50, 0x02, 0x02, b'a', b'*',
        ],
        None,
    );
    assert!(matches!(
        Frame::decode(&bad_domain),
        Err(MuxError::Address(AddrError::InvalidDomain(_)))
    ));
}

#[test]
fn keep_address_only_with_udp_flag() {
    // byte[4] = 1: not an address; the rest is ignored.
    let wire = frame_of(
        &[0x00, 0x03, STATUS_KEEP, OPTION_DATA, 0x01, 0xFF, 0xFF],
        Some(b"x"),
    );
    assert_eq!(
        Frame::decode(&wire),
        Ok(Some((Frame::keep(3, b"x"), wire.len())))
    );
    // byte[4] = 2 with a truncated address is an error.
    let wire = frame_of(
        &[0x00, 0x03, STATUS_KEEP, OPTION_DATA, 0x02, 0x00],
        Some(b"x"),
    );
    assert_eq!(Frame::decode(&wire), Err(MuxError::TruncatedMetadata));
}

#[test]
fn global_id_only_on_new_udp_with_data() {
    let meta_udp = [
        &[
            0x00,
            0x00,
            STATUS_NEW,
            OPTION_DATA,
            NET_UDP,
            0x00,
            0x35,
            0x01,
            8,
            8,
            8,
            8,
        ][..],
        &G,
    ]
    .concat();
    // Without D the id is trailing metadata.
    let mut no_data = meta_udp.clone();
    no_data[3] = 0x00;
    let wire = frame_of(&no_data, None);
    assert_eq!(
        decoded(&wire),
        Frame::new_session(0, MuxNetwork::Udp, dns(), None)
    );
    // TCP never carries one.
    let mut tcp = meta_udp.clone();
    tcp[4] = NET_TCP;
    let wire = frame_of(&tcp, Some(b"q"));
    assert_eq!(
        decoded(&wire),
        Frame::new_session(0, MuxNetwork::Tcp, dns(), Some(b"q"))
    );
    // Fewer than 8 remaining bytes: no id.
    let wire = frame_of(&meta_udp[..19], Some(b"q"));
    assert_eq!(
        decoded(&wire).status,
        Status::New {
            network: MuxNetwork::Udp,
            target: dns(),
            global_id: None
        }
    );
    // An all-zero id is kept on the wire but means "none".
    let f = Frame::new_session(0, MuxNetwork::Udp, dns(), Some(b"q")).with_global_id([0; 8]);
    let wire = encoded(&f);
    let back = decoded(&wire);
    assert_eq!(back, f);
    assert_eq!(back.global_id(), None);
}

#[test]
fn udp_data_limit() {
    let meta = [
        0x00,
        0x00,
        STATUS_NEW,
        OPTION_DATA,
        NET_UDP,
        0x00,
        0x35,
        0x01,
        8,
        8,
        8,
        8,
    ];
    let mut wire = frame_of(&meta, None);
    wire.extend_from_slice(&[0x20, 0x01]); // 8193, refused before the data arrives
    assert_eq!(Frame::decode(&wire), Err(MuxError::UdpDataTooLarge(8193)));
    let ok = vec![0u8; MAX_UDP_DATA];
    let wire = frame_of(&meta, Some(&ok));
    assert!(matches!(Frame::decode(&wire), Ok(Some((_, n))) if n == wire.len()));
    // TCP and plain Keep frames accept up to 65535.
    let big = vec![1u8; 65535];
    let wire = encoded(&Frame::keep(4, &big));
    assert_eq!(
        Frame::decode(&wire),
        Ok(Some((Frame::keep(4, &big), 65535 + 8)))
    );
}

#[test]
fn unknown_option_bits_are_ignored() {
    let wire = frame_of(&[0x00, 0x01, STATUS_KEEP, 0xFC | OPTION_DATA], Some(b"z"));
    assert_eq!(
        Frame::decode(&wire),
        Ok(Some((Frame::keep(1, b"z"), wire.len())))
    );
    let wire = frame_of(&[0x00, 0x01, STATUS_END, 0xF0 | OPTION_ERROR], None);
    assert_eq!(Frame::decode(&wire), Ok(Some((Frame::end(1, true), 6))));
}

#[test]
fn end_and_keep_alive_may_carry_data() {
    let wire = frame_of(&[0x00, 0x01, STATUS_KEEP_ALIVE, OPTION_DATA], Some(b"pad"));
    let f = decoded(&wire);
    assert_eq!((f.status, f.data), (Status::KeepAlive, Some(&b"pad"[..])));
    let empty_tcp = frame_of(&[0x00, 0x01, STATUS_KEEP, OPTION_DATA], Some(b""));
    assert_eq!(
        Frame::decode(&empty_tcp),
        Ok(Some((Frame::keep(1, b""), 8)))
    );
}

#[test]
fn encoder_refusals() {
    let mut b = BytesMut::new();
    let tcp_id = Frame::new_session(1, MuxNetwork::Tcp, dns(), Some(b"x")).with_global_id(G);
    assert_eq!(tcp_id.encode(&mut b), Err(MuxError::MisplacedGlobalId));
    let no_data_id = Frame::new_session(1, MuxNetwork::Udp, dns(), None).with_global_id(G);
    assert_eq!(no_data_id.encode(&mut b), Err(MuxError::MisplacedGlobalId));
    let big_udp = vec![0u8; MAX_UDP_DATA + 1];
    assert_eq!(
        Frame::keep_udp(0, dns(), &big_udp).encode(&mut b),
        Err(MuxError::UdpDataTooLarge(8193))
    );
    let huge = vec![0u8; 65536];
    assert_eq!(
        Frame::keep(1, &huge).encode(&mut b),
        Err(MuxError::DataTooLarge(65536))
    );
    let long_name = Destination::new(Address::Domain("a".repeat(256)), 1);
    assert_eq!(
        Frame::new_session(1, MuxNetwork::Tcp, long_name, None).encode(&mut b),
        Err(MuxError::Address(AddrError::DomainTooLong(256)))
    );
    assert!(b.is_empty(), "nothing written on error");
    assert_eq!(Frame::end(1, false).with_global_id(G), Frame::end(1, false));
}

#[test]
fn first_frame_xudp_detection() {
    let xudp = encoded(&Frame::new_session(0, MuxNetwork::Udp, dns(), Some(b"q")));
    assert!(is_first_frame_xudp(&xudp));
    assert!(is_first_frame_xudp(&xudp[..7]));
    assert!(!is_first_frame_xudp(&xudp[..6]));
    let tcp = encoded(&Frame::new_session(1, MuxNetwork::Tcp, dns(), None));
    assert!(!is_first_frame_xudp(&tcp));
    let udp_session_1 = encoded(&Frame::new_session(1, MuxNetwork::Udp, dns(), None));
    assert!(!is_first_frame_xudp(&udp_session_1));
}

fn arb_status() -> impl Strategy<Value = Status> {
    prop_oneof![
        (
            any::<bool>(),
            destination(),
            proptest::option::of(any::<[u8; 8]>())
        )
            .prop_map(|(udp, target, global_id)| Status::New {
                network: if udp {
                    MuxNetwork::Udp
                } else {
                    MuxNetwork::Tcp
                },
                target,
                global_id,
            }),
        proptest::option::of(destination()).prop_map(|udp_addr| Status::Keep { udp_addr }),
        any::<bool>().prop_map(|error| Status::End { error }),
        Just(Status::KeepAlive),
    ]
}

/// Encodable frames: a GlobalID only where it is sent.
fn arb_frame_parts() -> impl Strategy<Value = (u16, Status, Option<Vec<u8>>)> {
    (
        any::<u16>(),
        arb_status(),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..600)),
    )
        .prop_map(|(id, mut status, data)| {
            if let Status::New {
                network, global_id, ..
            } = &mut status
                && (*network == MuxNetwork::Tcp || data.is_none())
            {
                *global_id = None;
            }
            (id, status, data)
        })
}

proptest! {
    #[test]
    fn round_trip((session_id, status, data) in arb_frame_parts()) {
        let f = Frame { session_id, status, data: data.as_deref() };
        let wire = encoded(&f);
        prop_assert_eq!(Frame::decode(&wire), Ok(Some((f, wire.len()))));
    }

    #[test]
    fn prefixes_are_incomplete((session_id, status, data) in arb_frame_parts()) {
        let f = Frame { session_id, status, data: data.as_deref() };
        check_all_prefixes(&encoded(&f), decode_dbg);
    }

    #[test]
    fn a_stream_of_frames(frames in proptest::collection::vec(arb_frame_parts(), 1..6)) {
        let mut b = BytesMut::new();
        for (session_id, status, data) in &frames {
            let f = Frame { session_id: *session_id, status: status.clone(), data: data.as_deref() };
            f.encode(&mut b).expect("encodable");
        }
        let mut rest = &b[..];
        for (session_id, status, data) in &frames {
            let (f, used) = Frame::decode(rest).expect("valid").expect("complete");
            prop_assert_eq!(f, Frame { session_id: *session_id, status: status.clone(), data: data.as_deref() });
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..700)) {
        if let Ok(Some((_, used))) = Frame::decode(&buf) {
            prop_assert!(used <= buf.len());
        }
        let _ = is_first_frame_xudp(&buf);
    }

    #[test]
    fn plausible_metadata_never_panics(
        meta_len in 0u16..40,
        status in 0u8..6,
        option in any::<u8>(),
        tail in proptest::collection::vec(any::<u8>(), 0..60),
    ) {
        // Steer random input past the length and status checks.
        let buf = [&meta_len.to_be_bytes()[..], &[0, 1, status, option], &tail].concat();
        let _ = Frame::decode(&buf);
    }
}

#[test]
fn captured_v2ray_new_frame() {
    let mux = captured("v2ray-4.34-vless-mux.bin");
    // Version, user id, no addons, command 3: then the frames.
    let frames = &mux[19..];
    let (frame, used) = Frame::decode(frames).unwrap().unwrap();
    assert_eq!(frame.session_id, 1);
    let example = Destination::new(Address::Domain("example.com".into()), 80);
    assert_eq!(
        frame.status,
        Status::New {
            network: MuxNetwork::Tcp,
            target: example,
            global_id: None
        }
    );
    assert!(
        frame
            .data
            .unwrap()
            .starts_with(b"GET /capture HTTP/1.1\r\n")
    );
    check_all_prefixes(&frames[..used], decode_dbg);
}
