//! UDP over VLESS, command 2 (spec 1.4): every datagram, in each direction,
//! is `[len u16 BE][payload len bytes]`, with no per-packet address.
//!
//! The two directions of Xray are deliberately asymmetric, and so is this
//! codec:
//!
//! * the **reader** accepts any 16-bit length, and a 0-length frame is an
//!   empty datagram, not an error (sing-box sends `00 00` right after the
//!   header). Framing therefore cannot fail, so [`decode`] returns an
//!   `Option` only: `None` means "read more".
//! * the **writer** never emits an empty datagram or one larger than
//!   [`MAX_DATAGRAM`] (8190 = 8192 − 2) bytes; Xray drops such packets
//!   silently. [`encode`] reports them as [`UdpError`] and writes nothing, and
//!   the caller drops the packet (and may count or log it).

use bytes::{BufMut, BytesMut};

use super::cursor::Cursor;

/// The largest datagram the writer sends: Xray's 8192-byte buffer less the
/// 2-byte length.
pub const MAX_DATAGRAM: usize = 8190;

/// Why a datagram is not framed (the caller drops it, as Xray does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UdpError {
    #[error("empty datagram is not sent")]
    Empty,
    #[error("datagram of {0} bytes is larger than 8190 and is not sent")]
    TooLarge(usize),
}

/// Decodes one frame from the front of `buf`: the datagram (borrowed from
/// `buf`, possibly empty) and the bytes the frame used. `None` means the
/// buffer ends inside the frame.
pub fn decode(buf: &[u8]) -> Option<(&[u8], usize)> {
    let mut cur = Cursor::new(buf);
    let len = cur.u16_be().ok()?;
    let datagram = cur.take(usize::from(len)).ok()?;
    Some((datagram, cur.consumed()))
}

/// Checks whether [`encode`] would frame a datagram of `len` bytes.
pub fn check_len(len: usize) -> Result<(), UdpError> {
    match len {
        0 => Err(UdpError::Empty),
        n if n > MAX_DATAGRAM => Err(UdpError::TooLarge(n)),
        _ => Ok(()),
    }
}

/// Appends one frame, or refuses (writing nothing) as described in the
/// module docs.
pub fn encode(datagram: &[u8], dst: &mut BytesMut) -> Result<(), UdpError> {
    check_len(datagram.len())?;
    let len = u16::try_from(datagram.len()).map_err(|_| UdpError::TooLarge(datagram.len()))?;
    dst.reserve(encoded_len(datagram.len()));
    dst.put_u16(len);
    dst.put_slice(datagram);
    Ok(())
}

/// Bytes a frame of a `len`-byte datagram takes.
pub fn encoded_len(len: usize) -> usize {
    2 + len
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encoded(d: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode(d, &mut b).expect("sendable");
        b.to_vec()
    }

    /// The shared every-prefix and trailing-bytes check, for a decoder that cannot fail.
    fn assert_prefixes_incomplete(wire: &[u8]) {
        let owned = |b: &[u8]| Ok::<_, ()>(decode(b).map(|(d, used)| (d.to_vec(), used)));
        crate::proto::test_support::check_all_prefixes(wire, owned);
    }

    #[test]
    fn frame_bytes() {
        assert_eq!(encoded(b"abc"), [0, 3, b'a', b'b', b'c']);
        assert_eq!(
            decode(&[0, 3, b'a', b'b', b'c', 0xEE]),
            Some((&b"abc"[..], 5))
        );
        assert_prefixes_incomplete(&[0, 3, b'a', b'b', b'c']);
    }

    #[test]
    fn empty_frame_is_an_empty_datagram() {
        assert_eq!(decode(&[0, 0]), Some((&[][..], 2)));
        assert_eq!(decode(&[0, 0, 0, 1, 7]), Some((&[][..], 2)));
    }

    #[test]
    fn reader_accepts_any_length() {
        let mut big = vec![0xFF, 0xFF];
        big.resize(2 + 65535, 7);
        let (d, used) = decode(&big).expect("complete");
        assert_eq!((d.len(), used), (65535, 65537));
    }

    #[test]
    fn writer_drops_what_xray_drops() {
        let mut b = BytesMut::new();
        assert_eq!(encode(&[], &mut b), Err(UdpError::Empty));
        assert_eq!(
            encode(&[0; MAX_DATAGRAM + 1], &mut b),
            Err(UdpError::TooLarge(8191))
        );
        assert_eq!(encode(&[0; 70000], &mut b), Err(UdpError::TooLarge(70000)));
        assert!(b.is_empty());
        encode(&[0; MAX_DATAGRAM], &mut b).expect("8190 fits");
        assert_eq!(b.len(), 8192);
        assert_eq!(&b[..2], &[0x1F, 0xFE]);
    }

    #[test]
    fn a_stream_of_frames() {
        let mut b = BytesMut::new();
        for d in [&b"one"[..], b"two!", b"3"] {
            encode(d, &mut b).expect("sendable");
        }
        let mut rest = &b[..];
        let mut got = Vec::new();
        while let Some((d, used)) = decode(rest) {
            got.push(d.to_vec());
            rest = &rest[used..];
        }
        assert_eq!(got, [b"one".to_vec(), b"two!".to_vec(), b"3".to_vec()]);
        assert!(rest.is_empty());
    }

    proptest! {
        #[test]
        fn round_trip(d in proptest::collection::vec(any::<u8>(), 1..=MAX_DATAGRAM)) {
            let wire = encoded(&d);
            prop_assert_eq!(wire.len(), encoded_len(d.len()));
            prop_assert_eq!(decode(&wire), Some((&d[..], wire.len())));
        }

        #[test]
        fn prefixes_are_incomplete(d in proptest::collection::vec(any::<u8>(), 1..300)) {
            assert_prefixes_incomplete(&encoded(&d));
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Some((d, used)) = decode(&buf) {
                prop_assert_eq!(used, d.len() + 2);
                prop_assert!(used <= buf.len());
            }
        }
    }
}
