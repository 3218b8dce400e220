//! The body reader: lengths, chunked bodies however they are split, until close;
//! and the decoders under random input.

use super::*;
use proptest::prelude::*;

const CHUNKED: &[u8] =
    b"4;name=value;x=\"q\"\r\nWiki\r\n5 ; ext\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n\
                         000;last\r\nExpires: never\r\nX-T: 1\r\n\r\n";
const NEXT: &[u8] = b"GET http://a/ HTTP/1.1\r\n\r\n";

/// Feeds `input` in pieces ending at `cuts`; returns total used and done.
fn feed(reader: &mut BodyReader, input: &[u8], cuts: &[usize]) -> Result<(usize, bool), HttpError> {
    let mut at = 0;
    let mut done = false;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let mut piece = &input[at..cut.max(at)];
        while !piece.is_empty() && !done {
            let p = reader.advance(piece)?;
            at += p.used;
            piece = &piece[p.used..];
            done = p.done;
            if p.used == 0 {
                break;
            }
        }
        if done {
            break;
        }
    }
    Ok((at, done))
}

fn chunked_result(input: &[u8], cuts: &[usize]) -> Result<(usize, bool), HttpError> {
    feed(&mut BodyReader::new(BodyFraming::Chunked), input, cuts)
}

#[test]
fn chunked_whole_and_followed_by_next_message() {
    let mut input = CHUNKED.to_vec();
    input.extend_from_slice(NEXT);
    let mut r = BodyReader::new(BodyFraming::Chunked);
    let p = r.advance(&input).unwrap();
    assert_eq!(
        p,
        Progress {
            used: CHUNKED.len(),
            done: true
        }
    );
    assert!(r.is_done());
    assert_eq!(r.finish_at_eof(), Ok(()));
    assert_eq!(
        r.advance(NEXT).unwrap(),
        Progress {
            used: 0,
            done: true
        }
    );
}

#[test]
fn chunked_byte_by_byte() {
    let mut r = BodyReader::new(BodyFraming::Chunked);
    for (i, b) in CHUNKED.iter().enumerate() {
        assert!(!r.is_done());
        assert_eq!(r.finish_at_eof(), Err(HttpError::BodyTruncated));
        let p = r.advance(std::slice::from_ref(b)).unwrap();
        assert_eq!(p.used, 1);
        assert_eq!(p.done, i + 1 == CHUNKED.len());
    }
    assert_eq!(
        r.advance(b"G").unwrap(),
        Progress {
            used: 0,
            done: true
        }
    );
}

#[test]
fn chunked_every_split_point() {
    let mut input = CHUNKED.to_vec();
    input.extend_from_slice(NEXT);
    for a in 0..=input.len() {
        assert_eq!(
            chunked_result(&input, &[a]),
            Ok((CHUNKED.len(), true)),
            "split {a}"
        );
        for b in (a..=CHUNKED.len()).step_by(7) {
            assert_eq!(
                chunked_result(&input, &[a, b]),
                Ok((CHUNKED.len(), true)),
                "{a},{b}"
            );
        }
    }
}

#[test]
fn chunked_minimal_and_empty_trailers() {
    assert_eq!(chunked_result(b"0\r\n\r\nX", &[]), Ok((5, true)));
    assert_eq!(chunked_result(b"1\r\na\r\n0\r\n\r\n", &[]), Ok((11, true)));
    assert_eq!(chunked_result(b"0\r\n\r", &[]), Ok((4, false)));
    assert_eq!(
        chunked_result(b"ffffffffffffffff\r\n", &[]),
        Ok((18, false))
    );
}

#[test]
fn chunked_errors() {
    let err = |input: &[u8]| chunked_result(input, &[]).unwrap_err();
    assert_eq!(err(b"g\r\n"), HttpError::InvalidChunkSize);
    assert_eq!(err(b"\r\n"), HttpError::InvalidChunkSize);
    assert_eq!(err(b";x\r\n"), HttpError::InvalidChunkSize);
    assert_eq!(err(b"1 2\r\n"), HttpError::InvalidChunkSize);
    assert_eq!(err(b"-1\r\n"), HttpError::InvalidChunkSize);
    assert_eq!(err(b"1\n"), HttpError::InvalidChunkSize);
    assert_eq!(err(b"1\rx"), HttpError::InvalidChunkSize);
    assert_eq!(err(b"1;a\0\r\n"), HttpError::InvalidChunkSize);
    assert_eq!(err(b"3\r\nabcX\r\n"), HttpError::ChunkDataNotTerminated);
    assert_eq!(err(b"3\r\nabc\rX"), HttpError::ChunkDataNotTerminated);
    assert_eq!(err(b"3\r\nabc\n"), HttpError::ChunkDataNotTerminated);
    assert_eq!(err(b"10000000000000000\r\n"), HttpError::ChunkSizeOverflow);
    assert_eq!(err(b"00000000000000001\r\n"), HttpError::ChunkSizeOverflow);
    let long = [b"1;".as_slice(), &[b'x'; MAX_CHUNK_LINE]].concat();
    assert_eq!(err(&long), HttpError::ChunkLineTooLong);
    assert_eq!(err(b"0\r\nX: 1\n"), HttpError::InvalidTrailer);
    assert_eq!(err(b"0\r\nX\0: 1\r\n"), HttpError::InvalidTrailer);
    assert_eq!(err(b"0\r\n\rX"), HttpError::InvalidTrailer);
    let big = [b"0\r\nX: ".as_slice(), &[b'v'; MAX_HEAD]].concat();
    assert_eq!(err(&big), HttpError::TrailersTooLarge);
}

#[test]
fn length_reader() {
    let mut r = BodyReader::new(BodyFraming::Length(0));
    assert!(r.is_done());
    assert_eq!(r.finish_at_eof(), Ok(()));
    assert_eq!(
        r.advance(b"abc").unwrap(),
        Progress {
            used: 0,
            done: true
        }
    );

    let mut r = BodyReader::new(BodyFraming::Length(5));
    assert_eq!(
        r.advance(b"").unwrap(),
        Progress {
            used: 0,
            done: false
        }
    );
    assert_eq!(
        r.advance(b"abc").unwrap(),
        Progress {
            used: 3,
            done: false
        }
    );
    assert_eq!(r.finish_at_eof(), Err(HttpError::BodyTruncated));
    assert_eq!(
        r.advance(b"defgh").unwrap(),
        Progress {
            used: 2,
            done: true
        }
    );
    assert_eq!(r.finish_at_eof(), Ok(()));

    let mut r = BodyReader::new(BodyFraming::Length(u64::MAX));
    assert_eq!(
        r.advance(&[0; 100]).unwrap(),
        Progress {
            used: 100,
            done: false
        }
    );
}

#[test]
fn until_close_reader() {
    let mut r = BodyReader::new(BodyFraming::UntilClose);
    assert_eq!(
        r.advance(b"abc").unwrap(),
        Progress {
            used: 3,
            done: false
        }
    );
    assert!(!r.is_done());
    assert_eq!(r.finish_at_eof(), Ok(()));
}

proptest! {
    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = RequestHead::decode(&data);
        let _ = ResponseHead::decode(&data);
        if let Ok(Some((h, _))) = RequestHead::decode(&data) {
            let _ = h.keep_alive();
            let _ = h.body();
            h.encode_origin(&mut BytesMut::new());
        }
        if let Ok(Some((h, _))) = ResponseHead::decode(&data) {
            let _ = h.body("GET");
            h.encode_for_client(true, &mut BytesMut::new());
        }
    }

    #[test]
    fn heads_with_random_text_never_panic(line in "[ -~]{0,200}", fields in "[ -~\r\n]{0,400}") {
        let text = format!("{line}\r\n{fields}\r\n\r\n");
        if let Ok(Some((h, _))) = RequestHead::decode(text.as_bytes()) {
            let _ = h.body();
            h.encode_origin(&mut BytesMut::new());
        }
        let _ = ResponseHead::decode(text.as_bytes());
    }

    #[test]
    fn chunked_reader_never_panics(
        data in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'a'), Just(b';')],
            0..2048,
        ),
        cuts in proptest::collection::vec(0usize..2048, 0..8),
    ) {
        let mut cuts = cuts;
        cuts.sort_unstable();
        cuts.retain(|&c| c <= data.len());
        let mut r = BodyReader::new(BodyFraming::Chunked);
        let mut at = 0;
        for cut in cuts.into_iter().chain(std::iter::once(data.len())) {
            let Ok(p) = r.advance(data.get(at..cut.max(at)).unwrap_or(&[])) else { break };
            prop_assert!(p.used <= cut.max(at) - at);
            at += p.used;
            if p.done { break; }
        }
        let _ = r.finish_at_eof();
    }
}
