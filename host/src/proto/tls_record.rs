//! TLS record boundaries in a byte stream (RFC 8446 §5.1: type, version, a 16-bit
//! length, then that many bytes), for a reader under rustls that must never hand it
//! bytes past the record it is in.
//!
//! Why: a Vision peer switches a direction to raw bytes on the socket right after the
//! outer-TLS record that carries its direct frame (`shared/spec/xtls-vision.md` §6.1).
//! rustls reads ahead into its own buffer and would take those raw bytes for records;
//! fed one record at a time, it never sees them, and whatever the reader still holds is
//! exactly the raw bytes, in order.

/// The record header: content type, legacy version, length.
pub const HEADER_LEN: usize = 5;

/// Where a stream stands in its records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordGate {
    header: [u8; HEADER_LEN],
    /// Header bytes seen of the current record.
    have: usize,
    /// Body bytes of the current record still to come (once its header is whole).
    body: usize,
}

impl RecordGate {
    /// How many of the stream's next bytes `next` may go up without passing the end of
    /// the current record; the gate moves past them.
    pub fn pass(&mut self, next: &[u8]) -> usize {
        let mut used = 0;
        while let Some(rest) = next.get(used..).filter(|r| !r.is_empty()) {
            if self.have < HEADER_LEN {
                let take = (HEADER_LEN - self.have).min(rest.len());
                for (slot, b) in self.header.iter_mut().skip(self.have).zip(rest) {
                    *slot = *b;
                }
                self.have += take;
                used += take;
                if self.have == HEADER_LEN {
                    self.body = usize::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                    if self.body == 0 {
                        self.have = 0;
                        return used;
                    }
                }
            } else {
                let take = self.body.min(rest.len());
                used += take;
                self.body -= take;
                if self.body == 0 {
                    self.have = 0;
                    return used;
                }
            }
        }
        used
    }

    /// At a record boundary: nothing of a record has passed that is not whole.
    pub fn at_boundary(&self) -> bool {
        self.have == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(len: usize, fill: u8) -> Vec<u8> {
        let mut r = vec![0x17, 0x03, 0x03];
        r.extend_from_slice(&(len as u16).to_be_bytes());
        r.extend(std::iter::repeat_n(fill, len));
        r
    }

    /// Feeds `stream` in pieces of at most `piece` bytes; returns what each pass let
    /// through, joined per record.
    fn records_seen(stream: &[u8], piece: usize) -> Vec<Vec<u8>> {
        let mut gate = RecordGate::default();
        let mut out = vec![Vec::new()];
        let mut at = 0;
        while at < stream.len() {
            let end = (at + piece).min(stream.len());
            let n = gate.pass(&stream[at..end]);
            assert!(n > 0, "the gate stalled at {at}");
            out.last_mut()
                .unwrap()
                .extend_from_slice(&stream[at..at + n]);
            at += n;
            if gate.at_boundary() {
                out.push(Vec::new());
            }
        }
        out.pop();
        out
    }

    #[test]
    fn each_pass_stops_at_the_end_of_its_record_however_the_bytes_come() {
        let records = [record(3, 1), record(0, 0), record(300, 2), record(1, 3)];
        let stream = records.concat();
        for piece in 1..=stream.len() {
            assert_eq!(records_seen(&stream, piece), records, "pieces of {piece}");
        }
    }

    #[test]
    fn a_partial_record_is_not_a_boundary() {
        let mut gate = RecordGate::default();
        let r = record(10, 7);
        assert_eq!(gate.pass(&r[..3]), 3);
        assert!(!gate.at_boundary());
        assert_eq!(gate.pass(&r[3..]), 12);
        assert!(gate.at_boundary());
    }
}
