//! VLESS request and response headers: addons, commands, limits, every prefix,
//! captured headers from v2ray, and random input.

use super::*;
use crate::proto::addr::strategies::destination;
use crate::proto::addr::{ATYP_DOMAIN, Address};
use crate::proto::test_support::{captured, check_all_prefixes};
use proptest::prelude::*;

const UUID: [u8; 16] = [
    0x27, 0x84, 0x86, 0x39, 0xE3, 0xF3, 0x4B, 0x2F, 0x9F, 0x29, 0x4C, 0x6A, 0x2B, 0x1D, 0x47, 0x0E,
];

fn example_com_443() -> Destination {
    Destination::new(Address::Domain("example.com".into()), 443)
}

fn encoded(h: &RequestHeader) -> Vec<u8> {
    let mut b = BytesMut::new();
    h.encode(&mut b).expect("encodable");
    assert_eq!(b.len(), h.encoded_len());
    b.to_vec()
}

fn wire(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// A request with the given raw addons and `Mux` command.
fn with_raw_addons(addons: &[u8]) -> Vec<u8> {
    let len = u8::try_from(addons.len()).expect("short addons");
    wire(&[&[VERSION], &UUID, &[len], addons, &[CMD_MUX]])
}

fn addons_of(addons: &[u8]) -> Result<Addons, VlessError> {
    let buf = with_raw_addons(addons);
    RequestHeader::decode(&buf).map(|r| r.expect("complete").0.addons)
}

#[test]
fn spec_example_tcp_no_flow() {
    let bytes = wire(&[
        &[0x00],
        &UUID,
        &[0x00, 0x01, 0x01, 0xBB, 0x02, 0x0B],
        b"example.com",
    ]);
    let header = RequestHeader {
        uuid: UUID,
        addons: Addons::default(),
        command: Command::Tcp(example_com_443()),
    };
    assert_eq!(encoded(&header), bytes);
    let mut with_payload = bytes.clone();
    with_payload.extend_from_slice(b"GET / HTTP/1.1\r\n");
    assert_eq!(
        RequestHeader::decode(&with_payload),
        Ok(Some((header, bytes.len())))
    );
    check_all_prefixes(&bytes, RequestHeader::decode);
}

#[test]
fn spec_example_mux_no_flow() {
    let bytes = wire(&[&[0x00], &UUID, &[0x00, 0x03]]);
    let header = RequestHeader {
        uuid: UUID,
        addons: Addons::default(),
        command: Command::Mux,
    };
    assert_eq!(encoded(&header), bytes);
    assert_eq!(RequestHeader::decode(&bytes), Ok(Some((header, 19))));
    check_all_prefixes(&bytes, RequestHeader::decode);
}

#[test]
fn spec_vision_addons_bytes() {
    let addons_wire = wire(&[&[0x0A, 0x10], b"xtls-rprx-vision"]);
    assert_eq!(addons_wire.len(), 0x12);
    let header = RequestHeader {
        uuid: UUID,
        addons: Addons::vision(),
        command: Command::Tcp(example_com_443()),
    };
    let bytes = encoded(&header);
    assert_eq!(bytes[17], 0x12);
    assert_eq!(&bytes[18..36], &addons_wire[..]);
    assert_eq!(bytes[36], CMD_TCP);
    assert_eq!(
        RequestHeader::decode(&bytes),
        Ok(Some((header, bytes.len())))
    );
    check_all_prefixes(&bytes, RequestHeader::decode);
}

#[test]
fn udp_and_reverse_commands() {
    let udp = RequestHeader {
        uuid: UUID,
        addons: Addons::default(),
        command: Command::Udp(Destination::new(Address::Ipv4([8, 8, 4, 4].into()), 53)),
    };
    let bytes = encoded(&udp);
    assert_eq!(&bytes[17..], &[0, CMD_UDP, 0, 53, 1, 8, 8, 4, 4]);
    assert_eq!(RequestHeader::decode(&bytes), Ok(Some((udp, bytes.len()))));

    let rvs = wire(&[&[0], &UUID, &[0, CMD_REVERSE]]);
    let (h, used) = RequestHeader::decode(&rvs)
        .expect("valid")
        .expect("complete");
    assert_eq!((h.command, used), (Command::Reverse, 19));
}

#[test]
fn bad_version_is_reported_first() {
    assert_eq!(RequestHeader::decode(&[1]), Err(VlessError::BadVersion(1)));
    assert_eq!(
        RequestHeader::decode(b"GET / HTTP/1.1"),
        Err(VlessError::BadVersion(b'G'))
    );
    assert_eq!(
        RequestHeader::peek_user(&[0x16, 3, 1]),
        Err(VlessError::BadVersion(0x16))
    );
}

#[test]
fn peek_user() {
    let bytes = wire(&[&[0], &UUID, &[0xFF]]); // bad addons follow; peek does not care
    assert_eq!(RequestHeader::peek_user(&bytes), Ok(Some(UUID)));
    assert_eq!(RequestHeader::peek_user(&bytes[..16]), Ok(None));
    assert_eq!(RequestHeader::peek_user(&[]), Ok(None));
}

#[test]
fn unknown_command() {
    for cmd in [0u8, 5, 0xFF] {
        let bytes = wire(&[&[0], &UUID, &[0, cmd, 1, 2, 3]]);
        assert_eq!(
            RequestHeader::decode(&bytes),
            Err(VlessError::UnknownCommand(cmd))
        );
    }
}

#[test]
fn bad_address() {
    let bad_type = wire(&[&[0], &UUID, &[0, CMD_TCP, 0, 80, 9]]);
    assert_eq!(
        RequestHeader::decode(&bad_type),
        Err(VlessError::Address(AddrError::UnknownType(9)))
    );
    let bad_name = wire(&[&[0], &UUID, &[0, CMD_UDP, 0, 80, ATYP_DOMAIN, 3], b"a b"]);
    assert!(matches!(
        RequestHeader::decode(&bad_name),
        Err(VlessError::Address(AddrError::InvalidDomain(_)))
    ));
    let empty = wire(&[&[0], &UUID, &[0, CMD_TCP, 0, 80, ATYP_DOMAIN, 0]]);
    assert_eq!(
        RequestHeader::decode(&empty),
        Err(VlessError::Address(AddrError::EmptyDomain))
    );
}

#[test]
fn addons_unknown_fields_are_skipped() {
    let msg = wire(&[
        &[0x18, 0x96, 0x01],                   // field 3 varint 150
        &[0x21, 1, 2, 3, 4, 5, 6, 7, 8],       // field 4 fixed64
        &[0x2D, 1, 2, 3, 4],                   // field 5 fixed32
        &[0x32, 0x02, 0xAA, 0xBB],             // field 6 bytes
        &[0x3B, 0x08, 0x01, 0x43, 0x44, 0x3C], // group 7 { varint; group 8 {} }
        &[0x08, 0x05],                         // field 1 as varint: unknown wire type for it
        &[0x0A, 0x03],
        b"abc",
        &[0x12, 0x02, 0x00, 0xFF],
    ]);
    let want = Addons {
        flow: "abc".into(),
        seed: vec![0x00, 0xFF],
    };
    assert_eq!(addons_of(&msg), Ok(want));
}

#[test]
fn addons_last_value_wins() {
    let msg = wire(&[&[0x0A, 0x01], b"a", &[0x0A, 0x01], b"b"]);
    assert_eq!(addons_of(&msg).map(|a| a.flow), Ok("b".into()));
}

#[test]
fn addons_multi_byte_length() {
    let flow = "f".repeat(200);
    let addons = Addons {
        flow: flow.clone(),
        seed: Vec::new(),
    };
    assert_eq!(addons.protobuf_len(), 203);
    let mut b = BytesMut::new();
    addons.write_protobuf(&mut b);
    assert_eq!(&b[..3], &[0x0A, 0xC8, 0x01]);
    assert_eq!(Addons::from_protobuf(&b), Ok(addons));
}

#[test]
fn malformed_addons() {
    let cases: &[(&[u8], &str)] = &[
        (&[0x0A], "truncated field"),
        (&[0x0A, 0x05, b'a'], "truncated field"),
        (&[0x0A, 0x80], "truncated field"),
        (
            &[
                0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01,
            ],
            "truncated field",
        ),
        (
            &[
                0x18, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02,
            ],
            "varint overflows 64 bits",
        ),
        (
            &[
                0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00,
            ],
            "varint overflows 64 bits",
        ),
        (&[0x02, 0x00], "invalid field number"),
        (&[0x80, 0x80, 0x80, 0x80, 0x20], "invalid field number"),
        (&[0x0E], "reserved wire type"),
        (&[0x0F], "reserved wire type"),
        (&[0x0C], "end-group without start-group"),
        (&[0x0B, 0x14], "mismatched end-group"),
        (&[0x0B, 0x08, 0x01], "truncated field"),
        (&[0x21, 1, 2, 3], "truncated field"),
        (&[0x25, 1, 2, 3], "truncated field"),
        (&[0x0A, 0x02, 0xC3, 0x28], "flow is not valid UTF-8"),
    ];
    for (msg, why) in cases {
        assert_eq!(
            addons_of(msg),
            Err(VlessError::InvalidAddons(why)),
            "{msg:02x?}"
        );
    }
}

#[test]
fn deeply_nested_groups_are_refused_not_overflowing() {
    let mut msg = vec![0x0B; 120];
    msg.extend(std::iter::repeat_n(0x0C, 120));
    assert_eq!(
        Addons::from_protobuf(&msg),
        Err(VlessError::InvalidAddons("groups nested too deeply"))
    );
    let mut shallow = vec![0x0B; 10];
    shallow.extend(std::iter::repeat_n(0x0C, 10));
    assert_eq!(Addons::from_protobuf(&shallow), Ok(Addons::default()));
}

#[test]
fn encoder_refuses_oversized_parts() {
    let mut b = BytesMut::new();
    let long_flow = RequestHeader {
        uuid: UUID,
        addons: Addons {
            flow: "x".repeat(253),
            seed: Vec::new(),
        },
        command: Command::Mux,
    };
    assert_eq!(
        long_flow.encode(&mut b),
        Err(VlessError::AddonsTooLong(256))
    );
    let long_name = RequestHeader {
        uuid: UUID,
        addons: Addons::default(),
        command: Command::Tcp(Destination::new(Address::Domain("a".repeat(300)), 1)),
    };
    assert_eq!(
        long_name.encode(&mut b),
        Err(VlessError::Address(AddrError::DomainTooLong(300)))
    );
    assert!(b.is_empty(), "nothing written on error");
}

#[test]
fn response_header() {
    let mut b = BytesMut::new();
    ResponseHeader.encode(&mut b);
    assert_eq!(&b[..], &[0x00, 0x00]);
    assert_eq!(ResponseHeader.encoded_len(), 2);
    assert_eq!(
        ResponseHeader::decode(&[0, 0, 0x16, 3]),
        Ok(Some((ResponseHeader, 2)))
    );
    // Addons are skipped unparsed, even if they are not valid protobuf.
    assert_eq!(
        ResponseHeader::decode(&[0, 3, 0xFF, 0xFF, 0xFF, 9]),
        Ok(Some((ResponseHeader, 5)))
    );
    assert_eq!(
        ResponseHeader::decode(&[1, 0]),
        Err(VlessError::BadResponseVersion(1))
    );
    check_all_prefixes(&[0, 3, 1, 2, 3], ResponseHeader::decode);
}

fn arb_addons() -> impl Strategy<Value = Addons> {
    // At most 4 * 40 + 60 bytes of values: always fits the one-byte length.
    (".{0,40}", proptest::collection::vec(any::<u8>(), 0..60))
        .prop_map(|(flow, seed)| Addons { flow, seed })
}

fn arb_command() -> impl Strategy<Value = Command> {
    prop_oneof![
        destination().prop_map(Command::Tcp),
        destination().prop_map(Command::Udp),
        Just(Command::Mux),
        Just(Command::Reverse),
    ]
}

fn arb_request() -> impl Strategy<Value = RequestHeader> {
    (any::<[u8; 16]>(), arb_addons(), arb_command()).prop_map(|(uuid, addons, command)| {
        RequestHeader {
            uuid,
            addons,
            command,
        }
    })
}

proptest! {
    #[test]
    fn request_round_trip(h in arb_request()) {
        let bytes = encoded(&h);
        prop_assert_eq!(RequestHeader::decode(&bytes), Ok(Some((h, bytes.len()))));
    }

    #[test]
    fn request_prefixes_are_incomplete(h in arb_request()) {
        check_all_prefixes(&encoded(&h), RequestHeader::decode);
    }

    #[test]
    fn arbitrary_request_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        // Start most inputs with a valid version to get past the first check.
        let buf = wire(&[&[0], &tail]);
        if let Ok(Some((_, used))) = RequestHeader::decode(&buf) {
            prop_assert!(used <= buf.len());
        }
        let _ = RequestHeader::decode(&tail);
        let _ = ResponseHeader::decode(&tail);
    }

    #[test]
    fn arbitrary_addons_never_panic(msg in proptest::collection::vec(any::<u8>(), 0..255)) {
        let _ = Addons::from_protobuf(&msg);
    }

    #[test]
    fn varint_len_matches_writer(v in any::<u64>()) {
        let mut b = BytesMut::new();
        write_varint(&mut b, v);
        prop_assert_eq!(b.len(), varint_len(v));
        prop_assert_eq!(read_varint(&mut Cursor::new(&b)), Ok(v));
    }
}

#[test]
fn captured_v2ray_headers() {
    let id = *uuid::Uuid::parse_str("27848739-7e62-4138-9fd3-098a63964b6b")
        .unwrap()
        .as_bytes();
    let tcp = captured("v2ray-4.34-vless-tcp.bin");
    let (header, used) = RequestHeader::decode(&tcp).unwrap().unwrap();
    assert_eq!(header.uuid, id);
    let example = Destination::new(Address::Domain("example.com".into()), 80);
    assert_eq!(header.command, Command::Tcp(example));
    assert!(tcp[used..].starts_with(b"GET /capture HTTP/1.1\r\n"));
    assert_eq!(
        check_all_prefixes(&tcp[..used], RequestHeader::decode),
        header
    );

    let mux = captured("v2ray-4.34-vless-mux.bin");
    let (header, used) = RequestHeader::decode(&mux).unwrap().unwrap();
    assert_eq!((header.uuid, &header.command), (id, &Command::Mux));
    assert_eq!(
        check_all_prefixes(&mux[..used], RequestHeader::decode),
        header
    );
}
