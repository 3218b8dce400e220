//! VLESS request/response headers, their addons and the address form.
//!
//! Besides "never panics": whatever decodes must re-encode and decode to the
//! same value, every prefix of it must be `Ok(None)`, and `peek_user` must
//! agree with `decode`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmray::proto::addr::Destination;
use wasmray::proto::vless::{Addons, RequestHeader, ResponseHeader};

fuzz_target!(|data: &[u8]| {
    request(data);
    response(data);
    address(data);
    let _ = Addons::from_protobuf(data);
});

fn request(data: &[u8]) {
    let decoded = RequestHeader::decode(data);
    match RequestHeader::peek_user(data) {
        Err(e) => assert_eq!(decoded.as_ref().err(), Some(&e)),
        Ok(None) => assert!(matches!(decoded, Ok(None))),
        Ok(Some(uuid)) => {
            if let Ok(Some((h, _))) = &decoded {
                assert_eq!(h.uuid, uuid);
            }
        }
    }
    let Ok(Some((header, used))) = decoded else {
        return;
    };
    assert!(used <= data.len());
    for n in 0..used {
        assert!(matches!(RequestHeader::decode(&data[..n]), Ok(None)));
    }
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf)
        .expect("a decoded header re-encodes");
    assert_eq!(buf.len(), header.encoded_len());
    assert_eq!(RequestHeader::decode(&buf), Ok(Some((header, buf.len()))));
}

fn response(data: &[u8]) {
    if let Ok(Some((_, used))) = ResponseHeader::decode(data) {
        assert_eq!(used, 2 + usize::from(data[1]));
    }
}

fn address(data: &[u8]) {
    let Ok(Some((dest, used))) = Destination::decode(data) else {
        return;
    };
    assert!(used <= data.len());
    for n in 0..used {
        assert!(matches!(Destination::decode(&data[..n]), Ok(None)));
    }
    let mut buf = BytesMut::new();
    dest.encode(&mut buf).expect("a decoded address re-encodes");
    assert_eq!(buf.len(), dest.encoded_len());
    assert!(!dest.to_string().is_empty());
    assert_eq!(Destination::decode(&buf), Ok(Some((dest, buf.len()))));
}
