//! A bounds-checked reader over untrusted bytes, shared by the decoders.
//!
//! Every read either returns the bytes or reports [`Incomplete`]; nothing here
//! indexes a slice directly, so a decoder written on top of it cannot panic on
//! short or hostile input. Whether "not enough bytes" means *wait for more*
//! (`Ok(None)` from a public `decode`) or *malformed* (a length-prefixed block
//! that ended too early) is decided by the caller, through [`Stop`].

/// The input ended before the value did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Incomplete;

/// Why a parse step stopped early.
#[derive(Debug)]
pub(crate) enum Stop<E> {
    /// More input is needed; not an error.
    Incomplete,
    /// The input can never become valid.
    Invalid(E),
}

impl<E> From<Incomplete> for Stop<E> {
    fn from(_: Incomplete) -> Self {
        Stop::Incomplete
    }
}

impl<E> Stop<E> {
    /// Converts the error type, keeping `Incomplete` as it is.
    pub(crate) fn map<F>(self, f: impl FnOnce(E) -> F) -> Stop<F> {
        match self {
            Stop::Incomplete => Stop::Incomplete,
            Stop::Invalid(e) => Stop::Invalid(f(e)),
        }
    }

    /// Treats running out of input as the error `truncated`: used inside a
    /// block whose length is already known to be fully buffered.
    pub(crate) fn or_truncated(self, truncated: E) -> E {
        match self {
            Stop::Incomplete => truncated,
            Stop::Invalid(e) => e,
        }
    }
}

/// Turns an internal parse result into the public `decode` shape:
/// `Ok(None)` for "read more", `Err` for invalid input.
pub(crate) fn finish<T, E>(r: Result<T, Stop<E>>) -> Result<Option<T>, E> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Stop::Incomplete) => Ok(None),
        Err(Stop::Invalid(e)) => Err(e),
    }
}

/// A forward-only, bounds-checked view of a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    rest: &'a [u8],
    total: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor {
            rest: buf,
            total: buf.len(),
        }
    }

    /// Bytes consumed so far.
    pub(crate) fn consumed(&self) -> usize {
        self.total - self.rest.len()
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Incomplete> {
        let (&b, rest) = self.rest.split_first().ok_or(Incomplete)?;
        self.rest = rest;
        Ok(b)
    }

    pub(crate) fn u16_be(&mut self) -> Result<u16, Incomplete> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Incomplete> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(Incomplete)?;
        self.rest = rest;
        Ok(*head)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Incomplete> {
        let (head, rest) = self.rest.split_at_checked(n).ok_or(Incomplete)?;
        self.rest = rest;
        Ok(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounds_checked() {
        let mut c = Cursor::new(&[1, 2, 3]);
        assert_eq!(c.u8(), Ok(1));
        assert_eq!(c.u16_be(), Ok(0x0203));
        assert_eq!(c.consumed(), 3);
        assert_eq!(c.u8(), Err(Incomplete));
        assert_eq!(c.take(1), Err(Incomplete));
        assert_eq!(c.take(0), Ok(&[][..]));
        assert_eq!(c.array::<1>(), Err(Incomplete));
    }

    #[test]
    fn failed_read_consumes_nothing() {
        let mut c = Cursor::new(&[9]);
        assert_eq!(c.u16_be(), Err(Incomplete));
        assert_eq!(c.remaining(), 1);
        assert_eq!(c.u8(), Ok(9));
    }
}
