//! Reading one frame of a sans-IO codec from a stream: check what is buffered, decode,
//! read more, within a size limit and an optional deadline. Every handshake and every
//! framed stream in the host (VLESS, SOCKS5, HTTP heads, Mux.Cool, UDP over VLESS) reads
//! through here, so "the peer closed", "the frame is too long", "too slow" and "not
//! valid" are told apart the same way everywhere, and EOF inside a frame is an error,
//! never a clean end.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError<E> {
    /// The peer closed the stream between frames.
    #[error("closed")]
    Closed,
    /// The peer closed the stream inside a frame.
    #[error("closed inside a frame ({0} bytes buffered)")]
    Truncated(usize),
    /// More than the limit was buffered and no frame decoded.
    #[error("frame longer than {0} bytes")]
    TooLong(usize),
    #[error("timed out")]
    TimedOut,
    /// The codec rejected the bytes.
    #[error("{0}")]
    Invalid(E),
    #[error("read: {0}")]
    Io(#[from] std::io::Error),
}

/// How much to read and until when.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A frame is at most this long (what is buffered when it does not decode).
    pub max: usize,
    /// Give up at this instant (`None`: wait as long as the peer does).
    pub deadline: Option<Instant>,
    /// How much room to make before each read.
    pub read_size: usize,
}

impl Limits {
    pub const fn new(max: usize) -> Self {
        Limits {
            max,
            deadline: None,
            read_size: 4096,
        }
    }

    pub const fn until(mut self, deadline: Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub const fn reading(mut self, read_size: usize) -> Self {
        self.read_size = read_size;
        self
    }
}

/// A sans-IO decoder: `Ok(None)` asks for more bytes, `Ok(Some((value, used)))` is a
/// frame of `used` bytes.
pub trait Decode<T, E>: FnMut(&[u8]) -> Result<Option<(T, usize)>, E> {}
impl<T, E, F: FnMut(&[u8]) -> Result<Option<(T, usize)>, E>> Decode<T, E> for F {}

/// Reads until `decode` gives a frame, and removes that frame's bytes from `buf`;
/// bytes after it stay in `buf` for the next call.
pub async fn read_frame<R, T, E>(
    reader: &mut R,
    buf: &mut BytesMut,
    limits: Limits,
    decode: impl Decode<T, E>,
) -> Result<T, FrameError<E>>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let (value, used) = read_frame_in_place(reader, buf, limits, decode).await?;
    let _ = buf.split_to(used.min(buf.len()));
    Ok(value)
}

/// Like [`read_frame`], but the frame's bytes are split off and returned with it (for
/// codecs whose payload is passed on without a copy).
pub async fn read_frame_split<R, T, E>(
    reader: &mut R,
    buf: &mut BytesMut,
    limits: Limits,
    decode: impl Decode<T, E>,
) -> Result<(T, BytesMut), FrameError<E>>
where
    R: AsyncRead + Unpin + ?Sized,
{
    let (value, used) = read_frame_in_place(reader, buf, limits, decode).await?;
    Ok((value, buf.split_to(used.min(buf.len()))))
}

async fn read_frame_in_place<R, T, E>(
    reader: &mut R,
    buf: &mut BytesMut,
    limits: Limits,
    mut decode: impl Decode<T, E>,
) -> Result<(T, usize), FrameError<E>>
where
    R: AsyncRead + Unpin + ?Sized,
{
    loop {
        if !buf.is_empty() {
            match decode(buf) {
                Ok(Some(found)) => return Ok(found),
                Ok(None) => {}
                Err(e) => return Err(FrameError::Invalid(e)),
            }
        }
        if buf.len() >= limits.max {
            return Err(FrameError::TooLong(limits.max));
        }
        buf.reserve(limits.read_size.max(1));
        let read = reader.read_buf(buf);
        let n = match limits.deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, read).await {
                Ok(r) => r?,
                Err(_) => return Err(FrameError::TimedOut),
            },
            None => read.await?,
        };
        if n == 0 {
            return Err(match buf.len() {
                0 => FrameError::Closed,
                held => FrameError::Truncated(held),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    /// A frame of `[len][len bytes]`.
    fn byte_len(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, &'static str> {
        let Some(&len) = buf.first() else {
            return Ok(None);
        };
        if len == 0xff {
            return Err("invalid length");
        }
        let end = 1 + usize::from(len);
        Ok(buf.get(1..end).map(|b| (b.to_vec(), end)))
    }

    async fn read_all(input: &[u8], max: usize) -> Vec<Result<Vec<u8>, String>> {
        let (mut w, mut r) = tokio::io::duplex(1024);
        w.write_all(input).await.unwrap();
        drop(w);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        loop {
            match read_frame(&mut r, &mut buf, Limits::new(max), byte_len).await {
                Ok(v) => out.push(Ok(v)),
                Err(FrameError::Closed) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[tokio::test]
    async fn frames_then_a_clean_close() {
        assert_eq!(
            read_all(b"\x02ab\x00\x01c", 16).await,
            vec![Ok(b"ab".to_vec()), Ok(vec![]), Ok(b"c".to_vec())]
        );
    }

    #[tokio::test]
    async fn each_way_of_failing_has_its_own_error() {
        let truncated = read_all(b"\x01a\x05ab", 16).await;
        assert_eq!(
            truncated.last(),
            Some(&Err("closed inside a frame (3 bytes buffered)".into()))
        );
        let long = read_all(b"\x20abcdefgh", 4).await;
        assert_eq!(long, vec![Err("frame longer than 4 bytes".to_string())]);
        let invalid = read_all(b"\xff", 4).await;
        assert_eq!(invalid, vec![Err("invalid length".to_string())]);

        let (_w, mut r) = tokio::io::duplex(16);
        let mut buf = BytesMut::new();
        let soon = Instant::now() + Duration::from_millis(20);
        let got = read_frame(&mut r, &mut buf, Limits::new(8).until(soon), byte_len).await;
        assert!(matches!(got, Err(FrameError::TimedOut)), "{got:?}");
    }

    #[tokio::test]
    async fn a_split_frame_keeps_its_bytes_and_leaves_the_rest() {
        let (mut w, mut r) = tokio::io::duplex(64);
        w.write_all(b"\x02ab\x01c").await.unwrap();
        let mut buf = BytesMut::new();
        let (v, bytes) = read_frame_split(&mut r, &mut buf, Limits::new(8), byte_len)
            .await
            .unwrap();
        assert_eq!(v, b"ab");
        assert_eq!(&bytes[..], b"\x02ab");
        assert!(buf.starts_with(b"\x01"));
    }
}
