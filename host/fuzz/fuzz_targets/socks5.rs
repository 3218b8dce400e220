//! SOCKS5 messages: greeting, credentials, request and UDP header decode or refuse
//! without panicking; every strict prefix of a decoded message asks for more; a
//! decoded UDP header re-encodes to the same bytes' meaning.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmray::proto::socks5::{Credentials, Greeting, Request, UdpHeader};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((_, used))) = Greeting::decode(data) {
        for n in 0..used {
            assert!(matches!(Greeting::decode(&data[..n]), Ok(None)));
        }
    }
    if let Ok(Some((_, used))) = Credentials::decode(data) {
        for n in 0..used {
            assert!(matches!(Credentials::decode(&data[..n]), Ok(None)));
        }
    }
    if let Ok(Some((_, used))) = Request::decode(data) {
        for n in 0..used {
            assert!(matches!(Request::decode(&data[..n]), Ok(None)));
        }
    }
    if let Ok((header, used)) = UdpHeader::decode(data) {
        let mut again = BytesMut::new();
        UdpHeader::encode(&header.addr, &mut again);
        let (decoded, n) = UdpHeader::decode(&again).expect("re-encoded header decodes");
        assert_eq!((decoded.addr, n <= used + 256), (header.addr, true));
    }
});
