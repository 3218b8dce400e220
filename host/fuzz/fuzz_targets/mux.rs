//! Mux.Cool / XUDP frames: a stream of frames decodes frame by frame; every
//! decoded frame re-encodes and decodes to the same value, and every prefix
//! of it is `Ok(None)`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmray::proto::mux::{self, Frame};

fuzz_target!(|data: &[u8]| {
    let _ = mux::is_first_frame_xudp(data);
    let mut rest = data;
    while let Ok(Some((frame, used))) = Frame::decode(rest) {
        assert!(used >= 6 && used <= rest.len());
        for n in 0..used {
            assert!(matches!(Frame::decode(&rest[..n]), Ok(None)));
        }
        let mut buf = BytesMut::new();
        frame.encode(&mut buf).expect("a decoded frame re-encodes");
        assert_eq!(buf.len(), frame.encoded_len());
        assert_eq!(Frame::decode(&buf), Ok(Some((frame, buf.len()))));
        rest = &rest[used..];
    }
});
