//! Assertions shared by the codec tests, after linkerd2-proxy's `check_all_prefixes`:
//! a codec fed a stream in pieces must give the same answer however the bytes arrive.

use std::fmt::Debug;
use std::path::PathBuf;

/// Every strict prefix of a valid encoding must ask for more input: a codec
/// fed a stream in small pieces may never report an error, nor a value.
pub(crate) fn assert_prefixes_incomplete<T: Debug, E: Debug>(
    wire: &[u8],
    decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>,
) {
    for n in 0..wire.len() {
        let prefix = wire.get(..n).expect("n < len");
        match decode(prefix) {
            Ok(None) => {}
            Ok(Some(v)) => panic!("prefix {n}/{}: expected Ok(None), got {v:?}", wire.len()),
            Err(e) => panic!(
                "prefix {n}/{}: expected Ok(None), got error {e:?}",
                wire.len()
            ),
        }
    }
}

/// `wire` is exactly one message: every strict prefix is incomplete, the whole decodes
/// using all of it, and with any bytes after it the answer is the same (the codec does
/// not read past its message, whatever follows: the next message, or garbage).
pub(crate) fn check_all_prefixes<T: Debug + PartialEq, E: Debug>(
    wire: &[u8],
    decode: impl Fn(&[u8]) -> Result<Option<(T, usize)>, E>,
) -> T {
    assert_prefixes_incomplete(wire, &decode);
    let whole = match decode(wire) {
        Ok(Some((v, used))) => {
            assert_eq!(used, wire.len(), "the message uses all of its bytes");
            v
        }
        other => panic!("the whole message: expected a value, got {other:?}"),
    };
    for trailing in [
        &b"\x00"[..],
        b"\xff\xff\xff\xff",
        b"GET / HTTP/1.1\r\n\r\n",
        wire,
    ] {
        let mut longer = wire.to_vec();
        longer.extend_from_slice(trailing);
        match decode(&longer) {
            Ok(Some((v, used))) => {
                assert_eq!(used, wire.len(), "with {} trailing bytes", trailing.len());
                assert_eq!(v, whole, "with {} trailing bytes", trailing.len());
            }
            other => panic!("with {} trailing bytes: got {other:?}", trailing.len()),
        }
    }
    whole
}

/// A captured input from `host/testdata/` (bytes seen on the wire from a real client or
/// server; the file names say whose).
pub(crate) fn captured(name: &str) -> Vec<u8> {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "testdata", name]
        .iter()
        .collect();
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
