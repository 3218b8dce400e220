//! PROXY protocol v1/v2: whatever decodes re-encodes and decodes to the same
//! (normalized) value, and every prefix of it is `Ok(None)`.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmray::proto::proxy_protocol::ProxyHeader;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((header, used))) = ProxyHeader::decode(data) else {
        return;
    };
    assert!(used <= data.len());
    for n in 0..used {
        assert!(matches!(ProxyHeader::decode(&data[..n]), Ok(None)));
    }
    let mut buf = BytesMut::new();
    header.encode(&mut buf);
    assert_eq!(buf.len(), header.encoded_len());
    let want = ProxyHeader::new(header.version, header.addrs.map(|a| a.normalized()));
    assert_eq!(ProxyHeader::decode(&buf), Ok(Some((want, buf.len()))));
});
