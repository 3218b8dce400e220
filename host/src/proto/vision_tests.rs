//! Vision padding: the spec's byte examples, every prefix and every split, round trips,
//! the padding lengths, the sniffer's decisions and random input.

use super::*;
use crate::proto::test_support::check_all_prefixes;
use proptest::prelude::*;

const UUID: [u8; 16] = [
    0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38, 0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6b,
];

fn frame(uuid: Option<&[u8; 16]>, command: Command, content: &[u8], padding: u16) -> Vec<u8> {
    let mut b = BytesMut::new();
    encode_frame(uuid, command, content, padding, &mut b).unwrap();
    b.to_vec()
}

/// Unpads `input` fed in pieces cut at `cuts`; returns the content, where raw bytes
/// began (input offset) and how padding ended.
fn unpad_in_pieces(input: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<(usize, Command)>) {
    let mut u = Unpadder::new(UUID);
    let mut out = BytesMut::new();
    let mut held = Vec::new();
    let mut offset = 0;
    let mut ended = None;
    let mut bounds: Vec<usize> = cuts.iter().copied().filter(|&c| c < input.len()).collect();
    bounds.push(input.len());
    let mut start = 0;
    for end in bounds {
        held.extend_from_slice(&input[start..end]);
        start = end;
        loop {
            let r = u.unpad(&held, &mut out).unwrap();
            held.drain(..r.used);
            offset += r.used;
            if let Some(c) = r.ended {
                ended.get_or_insert((offset, c));
                continue;
            }
            break;
        }
    }
    (out.to_vec(), ended)
}

#[test]
fn spec_frame_a_the_first_client_frame() {
    let hello: Vec<u8> = [&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..], &[0xab; 511]].concat();
    assert_eq!(hello.len(), 517);
    // padding_len = 100 + 900 - 517 = 483, for a random draw of 100.
    let padding = padding_len(hello.len(), true, &DEFAULT_SEED, |_| 100);
    assert_eq!(padding, 483);
    let wire = frame(Some(&UUID), Command::Continue, &hello, padding);
    assert_eq!(
        &wire[..21],
        &[&UUID[..], &[0x00, 0x02, 0x05, 0x01, 0xe3]].concat()[..]
    );
    assert_eq!(wire.len(), 1021);
    assert!(wire[21 + 517..].iter().all(|&b| b == 0));
    assert_eq!(unpad_in_pieces(&wire, &[]), (hello, None));
}

#[test]
fn spec_frame_b_a_direct_frame_then_raw_bytes() {
    let record: Vec<u8> = [&[0x17, 0x03, 0x03, 0x00, 0x20][..], &[7; 32]].concat();
    let padding = padding_len(record.len(), true, &DEFAULT_SEED, |_| 7);
    assert_eq!(padding, 870);
    let first = frame(Some(&UUID), Command::Continue, b"hi", 3);
    let direct = frame(None, Command::Direct, &record, padding);
    assert_eq!(&direct[..5], &[0x02, 0x00, 0x25, 0x03, 0x66]);
    let input = [first.clone(), direct.clone(), b"raw after".to_vec()].concat();
    let (content, ended) = unpad_in_pieces(&input, &[]);
    assert_eq!(ended, Some((first.len() + direct.len(), Command::Direct)));
    assert_eq!(content, [&b"hi"[..], &record, b"raw after"].concat());
}

#[test]
fn every_split_of_a_padded_stream_gives_the_same_content() {
    let input = [
        frame(Some(&UUID), Command::Continue, b"client hello", 40),
        frame(None, Command::Continue, b"", 7),
        frame(None, Command::End, b"last padded", 0),
        b"then raw".to_vec(),
    ]
    .concat();
    let whole = unpad_in_pieces(&input, &[]);
    assert_eq!(whole.0, b"client hellolast paddedthen raw");
    for a in 0..input.len() {
        assert_eq!(unpad_in_pieces(&input, &[a]), whole, "cut at {a}");
        // Byte by byte around the first header, where the 21-byte wait matters.
        if a < 30 {
            let cuts: Vec<usize> = (1..input.len()).collect();
            assert_eq!(unpad_in_pieces(&input, &cuts), whole);
        }
    }
}

#[test]
fn headers_and_their_prefixes() {
    let h = check_all_prefixes(&[0x01, 0x00, 0x03, 0x00, 0x10], Header::decode);
    assert_eq!(
        h,
        Header {
            command: Command::End,
            content_len: 3,
            padding_len: 16
        }
    );
    assert_eq!(
        Header::decode(&[0x03, 0, 0, 0, 0]),
        Err(VisionError::UnknownCommand(3))
    );
}

#[test]
fn a_peer_that_does_not_pad_passes_through_and_nothing_is_parsed_after_the_end() {
    let plain = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec();
    assert_eq!(unpad_in_pieces(&plain, &[3]), (plain.clone(), None));
    // After end, raw bytes that happen to start with the UUID stay raw (Xray would
    // parse them as a new first frame).
    let end = frame(Some(&UUID), Command::End, b"x", 0);
    let tricky = frame(Some(&UUID), Command::Continue, b"y", 0);
    let input = [end.clone(), tricky.clone()].concat();
    let (content, ended) = unpad_in_pieces(&input, &[]);
    assert_eq!(ended, Some((end.len(), Command::End)));
    assert_eq!(content, [&b"x"[..], &tricky].concat());
}

#[test]
fn an_unknown_command_is_an_error() {
    let mut bad = frame(Some(&UUID), Command::Continue, b"a", 0);
    bad[16] = 9;
    let mut u = Unpadder::new(UUID);
    assert_eq!(
        u.unpad(&bad, &mut BytesMut::new()),
        Err(VisionError::UnknownCommand(9))
    );
}

#[test]
fn padding_lengths_follow_the_seed_and_the_frame_cap() {
    // Short padding: 0..seed[3].
    assert_eq!(padding_len(100, false, &DEFAULT_SEED, |n| n - 1), 255);
    // Long padding only for content under seed[0].
    assert_eq!(padding_len(1000, true, &DEFAULT_SEED, |_| 0), 0);
    assert_eq!(padding_len(0, true, &DEFAULT_SEED, |n| n - 1), 1399);
    // Never past 8192 bytes with UUID and header.
    assert_eq!(padding_len(8000, false, &[1, 1, 1, 60000], |n| n - 1), 171);
    assert_eq!(padding_len(9000, false, &DEFAULT_SEED, |n| n - 1), 0);
    // A seed of zeros asks random(0), and the answer stays in range.
    assert_eq!(padding_len(10, true, &[100, 0, 0, 0], |_| 0), 0);
}

fn server_hello(cipher: u16, tls13: bool) -> Vec<u8> {
    let mut body = vec![0x02, 0x00, 0x00, 0x00, 0x03, 0x03];
    body.extend_from_slice(&[0x5a; 32]); // random
    body.push(32); // session id length
    body.extend_from_slice(&[0x11; 32]);
    body.extend_from_slice(&cipher.to_be_bytes());
    body.push(0); // compression
    let ext: &[u8] = if tls13 {
        &TLS13_SUPPORTED_VERSIONS
    } else {
        &[0x00, 0x0b, 0x00, 0x00]
    };
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(ext);
    let mut record = vec![0x16, 0x03, 0x03];
    record.extend_from_slice(&(body.len() as u16).to_be_bytes());
    record.extend_from_slice(&body);
    record
}

#[test]
fn the_sniffer_enables_direct_for_tls13_with_an_allowed_cipher_only() {
    let client_hello = [0x16, 0x03, 0x01, 0x00, 0x10, 0x01, 0, 0];
    for (cipher, tls13, direct) in [
        (0x1301, true, true),
        (0x1303, true, true),
        (0x1305, true, false),
        (0xc02f, false, false),
    ] {
        let mut s = TrafficState::default();
        s.filter(&client_hello);
        assert!(s.is_tls);
        s.filter(&server_hello(cipher, tls13));
        assert_eq!(
            (s.cipher, s.enable_xtls, s.packets_to_filter),
            (cipher, direct, 0),
            "{cipher:x}"
        );
        assert!(s.is_tls12_or_above);
    }
    let mut plain = TrafficState::default();
    for _ in 0..10 {
        plain.filter(b"GET / HTTP/1.1\r\n");
    }
    assert_eq!((plain.is_tls, plain.packets_to_filter), (false, 0));
}

#[test]
fn a_session_id_length_past_the_buffer_is_an_unknown_cipher() {
    let mut hello = server_hello(0x1301, true);
    hello[43] = 255;
    let mut s = TrafficState::default();
    s.filter(&hello);
    assert_eq!((s.cipher, s.enable_xtls), (0, false));
}

#[test]
fn complete_records() {
    let record = [0x17, 0x03, 0x03, 0x00, 0x02, 1, 2];
    assert!(is_complete_record(&[]));
    assert!(is_complete_record(&record));
    assert!(is_complete_record(&[record, record].concat()));
    assert!(!is_complete_record(&record[..6]));
    assert!(!is_complete_record(&[0x17, 0x03, 0x03, 0x00, 0x00]));
    assert!(!is_complete_record(&[0x16, 0x03, 0x03, 0x00, 0x01, 0]));
}

proptest! {
    #[test]
    fn round_trip(
        parts in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 0..300), 0u16..400), 1..6),
        raw in proptest::collection::vec(any::<u8>(), 0..50),
        cut in 0usize..4000,
    ) {
        let mut input = Vec::new();
        let mut content = Vec::new();
        for (i, (data, padding)) in parts.iter().enumerate() {
            let command = if i + 1 == parts.len() { Command::End } else { Command::Continue };
            input.extend(frame((i == 0).then_some(&UUID), command, data, *padding));
            content.extend_from_slice(data);
        }
        let frames_len = input.len();
        input.extend_from_slice(&raw);
        content.extend_from_slice(&raw);
        let got = unpad_in_pieces(&input, &[cut]);
        prop_assert_eq!(got, (content, Some((frames_len, Command::End))));
    }

    #[test]
    fn random_input_never_panics(data in proptest::collection::vec(any::<u8>(), 0..2048), uuid_first in any::<bool>()) {
        let input = if uuid_first { [&UUID[..], &data].concat() } else { data };
        let mut u = Unpadder::new(UUID);
        let mut out = BytesMut::new();
        let mut rest = &input[..];
        while let Ok(r) = u.unpad(rest, &mut out) {
            if r.used == 0 && r.ended.is_none() { break; }
            rest = &rest[r.used..];
            if rest.is_empty() { break; }
        }
        prop_assert!(out.len() <= input.len());
        let mut s = TrafficState::default();
        s.filter(&input);
        let _ = is_complete_record(&input);
    }
}

fn app_data(len: usize) -> Vec<u8> {
    let mut r = vec![0x17, 0x03, 0x03];
    r.extend_from_slice(&(len as u16).to_be_bytes());
    r.extend(std::iter::repeat_n(0x42, len));
    r
}

/// What a receiver makes of a padder's output: the content, and how padding ended.
fn receive(batches: &[PaddedBatch]) -> (Vec<u8>, Option<Command>) {
    let wire: Vec<u8> = batches
        .iter()
        .flat_map(|b| {
            b.frames
                .iter()
                .flat_map(|f| f.to_vec())
                .chain(b.raw.clone())
        })
        .collect();
    let (content, ended) = unpad_in_pieces(&wire, &[]);
    (content, ended.map(|(_, c)| c))
}

#[test]
fn inner_tls13_pads_the_handshake_and_goes_direct_on_the_first_whole_application_batch() {
    let mut traffic = TrafficState::default();
    let mut client = Padder::new(UUID, DEFAULT_SEED);
    let mut server = Padder::new(UUID, DEFAULT_SEED);
    let hello = [&[0x16, 0x03, 0x01, 0x00, 0x10, 0x01][..], &[0; 16]].concat();
    let first = client.pad(&mut traffic, &hello, |_| 100);
    assert_eq!(first.ended, None);
    assert!(first.frames[0].starts_with(&UUID));
    // Long padding brings the 22-byte hello to 900 + 100 bytes of content and padding.
    assert_eq!(first.frames[0].len(), 16 + 5 + 1000);
    // The server's hello and an incomplete record: still padding.
    let flight = [server_hello(0x1301, true), app_data(40)[..20].to_vec()].concat();
    let second = server.pad(&mut traffic, &flight, |_| 0);
    assert!(traffic.enable_xtls && server.is_padding() && second.ended.is_none());
    // Whole records: the last frame says direct.
    let records = [app_data(40), app_data(3000)].concat();
    let third = server.pad(&mut traffic, &records, |_| 7);
    assert_eq!(third.ended, Some(Command::Direct));
    assert!(!server.is_padding());
    let (content, ended) = receive(&[second, third]);
    assert_eq!(content, [flight, records].concat());
    assert_eq!(ended, Some(Command::Direct));
    assert_eq!(receive(&[first]).0, hello);
}

#[test]
fn inner_tls12_and_ccm8_end_padding_inside_the_outer_tls() {
    for hello in [server_hello(0xc02f, false), server_hello(0x1305, true)] {
        let mut traffic = TrafficState::default();
        traffic.filter(&[0x16, 0x03, 0x01, 0x00, 0x10, 0x01]);
        let mut p = Padder::new(UUID, DEFAULT_SEED);
        let a = p.pad(&mut traffic, &hello, |_| 0);
        let b = p.pad(&mut traffic, &app_data(100), |_| 0);
        assert_eq!(b.ended, Some(Command::End));
        assert_eq!(receive(&[a, b]).0, [hello, app_data(100)].concat());
    }
}

#[test]
fn plain_inner_traffic_ends_padding_once_the_filter_budget_is_spent() {
    let mut traffic = TrafficState::default();
    let mut p = Padder::new(UUID, DEFAULT_SEED);
    let mut batches = Vec::new();
    let mut sent = Vec::new();
    for i in 0..10u8 {
        let data = vec![b'a' + i; 50];
        sent.extend_from_slice(&data);
        if p.is_padding() {
            batches.push(p.pad(&mut traffic, &data, |n| n / 2));
        } else {
            batches.push(PaddedBatch {
                frames: Vec::new(),
                raw: data,
                ended: None,
            });
        }
    }
    let ends: Vec<_> = batches.iter().filter_map(|b| b.ended).collect();
    assert_eq!(ends, [Command::End]);
    // Short padding only: no frame past 16 + 5 + 50 + 255 bytes.
    assert!(
        batches
            .iter()
            .flat_map(|b| &b.frames)
            .all(|f| f.len() <= 326)
    );
    assert_eq!(receive(&batches).0, sent);
}

#[test]
fn long_buffers_are_reshaped_so_every_frame_fits_xrays_buffer() {
    // A batch of big records: split at a record start, or in the middle.
    let batch = [app_data(9000), app_data(20000), vec![0x55; 8191]].concat();
    let mut traffic = TrafficState::default();
    let mut p = Padder::new(UUID, DEFAULT_SEED);
    let out = p.pad(&mut traffic, &batch, |n| n - 1);
    assert!(
        out.frames.iter().all(|f| f.len() <= MAX_FRAME),
        "a frame past 8192"
    );
    assert_eq!(receive(&[out]).0, batch);
    for piece in reshape(&batch) {
        assert!(piece.len() < RESHAPE_AT);
    }
}

#[test]
fn the_camouflage_frame_is_empty_and_long() {
    let mut p = Padder::new(UUID, DEFAULT_SEED);
    let f = p.camouflage(|_| 10);
    assert_eq!(&f[..21], &[&UUID[..], &[0, 0, 0, 0x03, 0x8e]].concat()[..]);
    assert_eq!(f.len(), 21 + 910);
    // The UUID goes once per direction.
    let next = p.pad(&mut TrafficState::default(), b"x", |_| 0);
    assert!(!next.frames[0].starts_with(&UUID));
}

proptest! {
    #[test]
    fn padded_batches_unpad_to_what_went_in(
        batches in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20000), 1..8),
        tls in any::<bool>(),
    ) {
        let mut traffic = TrafficState::default();
        if tls {
            traffic.filter(&[0x16, 0x03, 0x01, 0x00, 0x10, 0x01]);
        }
        let mut p = Padder::new(UUID, DEFAULT_SEED);
        let mut out = Vec::new();
        for b in &batches {
            if p.is_padding() {
                let padded = p.pad(&mut traffic, b, |n| n.saturating_sub(1));
                prop_assert!(padded.frames.iter().all(|f| f.len() <= MAX_FRAME));
                out.push(padded);
            } else {
                out.push(PaddedBatch { frames: Vec::new(), raw: b.clone(), ended: None });
            }
        }
        prop_assert_eq!(receive(&out).0, batches.concat());
    }
}
