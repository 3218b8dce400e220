//! VLESS UDP length framing: a stream of frames decodes frame by frame, and
//! every frame the writer would send re-encodes to the same bytes.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmray::proto::udp::{self, MAX_DATAGRAM};

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    while let Some((datagram, used)) = udp::decode(rest) {
        assert_eq!(used, datagram.len() + 2);
        let mut buf = BytesMut::new();
        match udp::encode(datagram, &mut buf) {
            Ok(()) => assert_eq!(&buf[..], &rest[..used]),
            Err(_) => assert!(datagram.is_empty() || datagram.len() > MAX_DATAGRAM),
        }
        rest = &rest[used..];
    }
});
