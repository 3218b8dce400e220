//! Assertions shared by the codec tests.

use std::fmt::Debug;

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
