//! Vision padding: arbitrary input, cut at an arbitrary point, never panics, never
//! yields more content than input, and gives the same content however it is cut;
//! the sniffer and the record check take anything.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmray::proto::vision::{TrafficState, Unpadder, is_complete_record};

const UUID: [u8; 16] = [
    0x27, 0x84, 0x87, 0x39, 0x7e, 0x62, 0x41, 0x38, 0x9f, 0xd3, 0x09, 0x8a, 0x63, 0x96, 0x4b, 0x6b,
];

/// Content and whether the stream parsed, fed in two pieces cut at `cut`.
fn unpad(input: &[u8], cut: usize) -> (Vec<u8>, bool) {
    let mut u = Unpadder::new(UUID);
    let mut out = BytesMut::new();
    let mut held = Vec::new();
    for piece in [&input[..cut], &input[cut..]] {
        held.extend_from_slice(piece);
        loop {
            match u.unpad(&held, &mut out) {
                Ok(r) => {
                    held.drain(..r.used);
                    if r.ended.is_none() {
                        break;
                    }
                }
                Err(_) => return (out.to_vec(), false),
            }
        }
    }
    (out.to_vec(), true)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let input: Vec<u8> = if cut & 1 == 1 { [&UUID[..], rest].concat() } else { rest.to_vec() };
    let cut = usize::from(cut).min(input.len());
    let (whole, ok) = unpad(&input, input.len());
    assert!(whole.len() <= input.len());
    let (split, split_ok) = unpad(&input, cut);
    if ok && split_ok {
        assert_eq!(whole, split);
    }
    let mut state = TrafficState::default();
    state.filter(&input);
    state.filter(rest);
    let _ = is_complete_record(&input);
});
