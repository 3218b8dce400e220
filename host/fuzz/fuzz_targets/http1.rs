//! HTTP/1 proxy messages: request and response heads decode or refuse without
//! panicking, every strict prefix of a decoded head asks for more, a decoded head's
//! framing and re-encodings never panic, and a chunked body reader gives the same
//! verdict however the input is split.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wasmray::proto::http1::{BodyFraming, BodyReader, RequestHead, ResponseHead};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((head, used))) = RequestHead::decode(data) {
        assert!(used <= data.len());
        for n in 0..used {
            assert!(matches!(RequestHead::decode(&data[..n]), Ok(None)));
        }
        let _ = head.body();
        let _ = head.keep_alive();
        head.encode_origin(&mut BytesMut::new());
    }
    if let Ok(Some((head, _))) = ResponseHead::decode(data) {
        let _ = head.body("GET");
        let _ = head.body("HEAD");
        head.encode_for_client(true, &mut BytesMut::new());
    }
    let whole = feed(&[data]);
    let split = data.first().map_or(0, |b| *b as usize).min(data.len());
    assert_eq!(whole, feed(&[&data[..split], &data[split..]]));
});

/// Feeds a chunked body reader; (bytes used, done) or None on an error.
fn feed(parts: &[&[u8]]) -> Option<(usize, bool)> {
    let mut reader = BodyReader::new(BodyFraming::Chunked);
    let mut used = 0;
    for part in parts {
        let mut rest = *part;
        while !rest.is_empty() {
            let progress = reader.advance(rest).ok()?;
            used += progress.used;
            if progress.done {
                return Some((used, true));
            }
            if progress.used == 0 {
                break;
            }
            rest = &rest[progress.used..];
        }
    }
    Some((used, false))
}
