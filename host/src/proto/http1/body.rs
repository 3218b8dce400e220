//! Body passthrough: [`BodyReader`] tells how many bytes of a body (by length,
//! chunked with trailers, or until close) to pass on, byte by byte if need be.

use super::*;
use crate::proto::cursor::Cursor;

/// How far [`BodyReader::advance`] got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Bytes at the front of the input that belong to the body (forward
    /// them as they are).
    pub used: usize,
    /// Whether the body is complete after them.
    pub done: bool,
}

/// Finds the end of a body passed through verbatim. Feed it whatever bytes
/// arrive, split anyhow; it never looks past the body's end. After an error
/// the reader must not be used again (close the connection).
#[derive(Debug, Clone)]
pub struct BodyReader {
    state: BodyState,
}

#[derive(Debug, Clone, Copy)]
enum BodyState {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

#[derive(Debug, Clone, Copy)]
enum Chunk {
    Size(SizeLine),
    Data(u64),
    DataCr,
    DataLf,
    Trailer(TrailerLine),
}

impl BodyReader {
    /// A reader for a body framed so; `Length(0)` is done at once.
    pub fn new(framing: BodyFraming) -> Self {
        let state = match framing {
            BodyFraming::Length(0) => BodyState::Done,
            BodyFraming::Length(n) => BodyState::Length(n),
            BodyFraming::Chunked => BodyState::Chunked(Chunk::Size(SizeLine::default())),
            BodyFraming::UntilClose => BodyState::UntilClose,
        };
        BodyReader { state }
    }

    /// Consumes the body bytes at the front of `data`; bytes after the
    /// body's end are left alone (`used < data.len()`).
    pub fn advance(&mut self, data: &[u8]) -> Result<Progress, HttpError> {
        let mut cur = Cursor::new(data);
        while cur.remaining() > 0 && !self.is_done() {
            self.state = self.state.step(&mut cur)?;
        }
        Ok(Progress {
            used: cur.consumed(),
            done: self.is_done(),
        })
    }

    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        matches!(self.state, BodyState::Done)
    }

    /// Whether the peer closing now is a clean end of the body: only for a
    /// completed body or one delimited by close.
    pub fn finish_at_eof(&self) -> Result<(), HttpError> {
        match self.state {
            BodyState::Done | BodyState::UntilClose => Ok(()),
            _ => Err(HttpError::BodyTruncated),
        }
    }
}

impl BodyState {
    fn step(self, cur: &mut Cursor<'_>) -> Result<BodyState, HttpError> {
        match self {
            BodyState::Length(n) => Ok(after_bytes(
                n,
                take_upto(cur, n),
                BodyState::Length,
                BodyState::Done,
            )),
            BodyState::UntilClose => {
                take_upto(cur, u64::MAX);
                Ok(BodyState::UntilClose)
            }
            BodyState::Done => Ok(BodyState::Done),
            BodyState::Chunked(Chunk::Data(n)) => {
                let taken = take_upto(cur, n);
                let chunked = |n| BodyState::Chunked(Chunk::Data(n));
                Ok(after_bytes(
                    n,
                    taken,
                    chunked,
                    BodyState::Chunked(Chunk::DataCr),
                ))
            }
            BodyState::Chunked(chunk) => match cur.u8() {
                Ok(b) => chunk.byte(b),
                Err(_) => Ok(self),
            },
        }
    }
}

/// Consumes up to `n` bytes; returns how many.
fn take_upto(cur: &mut Cursor<'_>, n: u64) -> u64 {
    let k = usize::try_from(n).map_or(cur.remaining(), |n| n.min(cur.remaining()));
    match cur.take(k) {
        // Lossless: usize is at most 64 bits on every Rust target.
        Ok(taken) => taken.len() as u64,
        Err(_) => 0,
    }
}

/// The state after `taken` of `left` bytes: still `more(rest)`, or `then`.
fn after_bytes(
    left: u64,
    taken: u64,
    more: impl Fn(u64) -> BodyState,
    then: BodyState,
) -> BodyState {
    match left.saturating_sub(taken) {
        0 => then,
        rest => more(rest),
    }
}

impl Chunk {
    fn byte(self, b: u8) -> Result<BodyState, HttpError> {
        let next = match self {
            Chunk::Size(line) => match line.push(b)? {
                LineStep::More(line) => Chunk::Size(line),
                LineStep::End(0) => Chunk::Trailer(TrailerLine::default()),
                LineStep::End(n) => Chunk::Data(n),
            },
            Chunk::Data(n) => {
                return Ok(after_bytes(
                    n,
                    1,
                    |n| BodyState::Chunked(Chunk::Data(n)),
                    BodyState::Chunked(Chunk::DataCr),
                ));
            }
            Chunk::DataCr if b == b'\r' => Chunk::DataLf,
            Chunk::DataLf if b == b'\n' => Chunk::Size(SizeLine::default()),
            Chunk::DataCr | Chunk::DataLf => return Err(HttpError::ChunkDataNotTerminated),
            Chunk::Trailer(line) => match line.push(b)? {
                Some(line) => Chunk::Trailer(line),
                None => return Ok(BodyState::Done),
            },
        };
        Ok(BodyState::Chunked(next))
    }
}

/// Where in `chunk-size [ BWS ";" ext ] CRLF` the reader is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum SizePhase {
    #[default]
    Digits,
    /// Whitespace after the digits; only `;` or CR may follow.
    Space,
    /// Inside chunk extensions, until CR.
    Ext,
    /// After CR; LF must follow.
    Lf,
}

#[derive(Debug, Clone, Copy, Default)]
struct SizeLine {
    value: u64,
    digits: u8,
    len: usize,
    phase: SizePhase,
}

enum LineStep {
    More(SizeLine),
    End(u64),
}

impl SizeLine {
    fn push(mut self, b: u8) -> Result<LineStep, HttpError> {
        self.len = self.len.saturating_add(1);
        if self.len > MAX_CHUNK_LINE {
            return Err(HttpError::ChunkLineTooLong);
        }
        let has_digits = self.digits > 0;
        match (self.phase, b) {
            (SizePhase::Lf, b'\n') => return Ok(LineStep::End(self.value)),
            (SizePhase::Lf, _) => return Err(HttpError::InvalidChunkSize),
            (SizePhase::Digits, b) if b.is_ascii_hexdigit() => self.push_digit(b)?,
            (_, b'\r') if has_digits => self.phase = SizePhase::Lf,
            (SizePhase::Digits | SizePhase::Space, b' ' | b'\t') if has_digits => {
                self.phase = SizePhase::Space
            }
            (SizePhase::Digits | SizePhase::Space, b';') if has_digits => {
                self.phase = SizePhase::Ext
            }
            (SizePhase::Ext, b) if is_text(b) => {}
            _ => return Err(HttpError::InvalidChunkSize),
        }
        Ok(LineStep::More(self))
    }

    fn push_digit(&mut self, b: u8) -> Result<(), HttpError> {
        self.digits = self.digits.saturating_add(1);
        let digit = (b as char)
            .to_digit(16)
            .ok_or(HttpError::InvalidChunkSize)?;
        if self.digits > MAX_CHUNK_DIGITS {
            return Err(HttpError::ChunkSizeOverflow);
        }
        self.value = self
            .value
            .checked_mul(16)
            .and_then(|v| v.checked_add(u64::from(digit)))
            .ok_or(HttpError::ChunkSizeOverflow)?;
        Ok(())
    }
}

/// Field-line text: HTAB, visible ASCII, space, obs-text; no CTLs.
fn is_text(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

/// Progress through the trailer section, which ends at an empty line.
#[derive(Debug, Clone, Copy, Default)]
struct TrailerLine {
    total: usize,
    line: usize,
    cr: bool,
}

impl TrailerLine {
    /// `None` when the empty line ending the section is complete.
    fn push(mut self, b: u8) -> Result<Option<Self>, HttpError> {
        self.total = self.total.saturating_add(1);
        if self.total > MAX_HEAD {
            return Err(HttpError::TrailersTooLarge);
        }
        if self.cr {
            if b != b'\n' {
                return Err(HttpError::InvalidTrailer);
            }
            if self.line == 0 {
                return Ok(None);
            }
            self.line = 0;
            self.cr = false;
        } else if b == b'\r' {
            self.cr = true;
        } else if is_text(b) {
            self.line = self.line.saturating_add(1);
        } else {
            return Err(HttpError::InvalidTrailer);
        }
        Ok(Some(self))
    }
}
