//! The client side of VLESS over any stream: the request header goes out glued to
//! the first payload bytes (the bytes the sniff window held), as Xray's client
//! coalesces them. The server's response header (`00`, addons length, addons) arrives
//! with its first downlink bytes and is stripped on the way up without waiting for it,
//! so the uplink never stalls behind it.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::proto::vless::{Addons, Command, RequestHeader};
use crate::security::Peel;

/// Sends the request header for `command` as user `id`, glued to `first`, on `stream`.
pub async fn open<S>(
    mut stream: S,
    id: &uuid::Uuid,
    command: Command,
    first: &[u8],
) -> std::io::Result<VlessStream<S>>
where
    S: AsyncWrite + Unpin,
{
    let header = RequestHeader {
        uuid: *id.as_bytes(),
        addons: Addons::default(),
        command,
    };
    let mut out = BytesMut::with_capacity(header.encoded_len() + first.len());
    header.encode(&mut out).map_err(std::io::Error::other)?;
    out.extend_from_slice(first);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(VlessStream {
        inner: stream,
        header: Header::Version,
        unsent: BytesMut::new(),
        glue: false,
    })
}

/// The request header for `command` with `addons`, sent glued to the first write on
/// the stream (the Vision layer above pads that write).
pub fn open_with_first_write<S>(
    stream: S,
    id: &uuid::Uuid,
    addons: Addons,
    command: Command,
) -> std::io::Result<VlessStream<S>> {
    let header = RequestHeader {
        uuid: *id.as_bytes(),
        addons,
        command,
    };
    let mut unsent = BytesMut::with_capacity(header.encoded_len());
    header.encode(&mut unsent).map_err(std::io::Error::other)?;
    Ok(VlessStream {
        inner: stream,
        header: Header::Version,
        unsent,
        glue: true,
    })
}

/// Where the response header stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Header {
    Version,
    AddonsLen,
    Addons(u8),
    Done,
}

/// A VLESS client stream: writes pass through, reads skip the response header.
pub struct VlessStream<S> {
    inner: S,
    header: Header,
    /// The request header glued to the first write, until it is on the stream.
    unsent: BytesMut,
    /// The header waits for the first write.
    glue: bool,
}

impl<S> VlessStream<S> {
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
}

/// Consumes response-header bytes from the front of `data`; returns how many.
fn strip_header(state: &mut Header, data: &[u8]) -> std::io::Result<usize> {
    let mut used = 0;
    while *state != Header::Done {
        let Some(&b) = data.get(used) else { break };
        *state = match *state {
            Header::Version if b != 0 => {
                return Err(std::io::Error::other(format!("VLESS response version {b}")));
            }
            Header::Version => Header::AddonsLen,
            Header::AddonsLen if b == 0 => Header::Done,
            Header::AddonsLen => Header::Addons(b),
            Header::Addons(1) | Header::Done => Header::Done,
            Header::Addons(n) => Header::Addons(n - 1),
        };
        used += 1;
    }
    Ok(used)
}

impl<S> VlessStream<S> {
    /// Reads with `read` and strips the response header from what it gives.
    fn poll_stripped(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
        read: fn(&mut S, &mut Context<'_>, &mut ReadBuf<'_>) -> Poll<std::io::Result<()>>,
    ) -> Poll<std::io::Result<()>> {
        loop {
            let before = buf.filled().len();
            ready!(read(&mut self.inner, cx, buf))?;
            let filled = buf.filled().len();
            if self.header == Header::Done || filled == before {
                return Poll::Ready(Ok(()));
            }
            let used = {
                let new = buf.filled().get(before..).unwrap_or_default().to_vec();
                strip_header(&mut self.header, &new)?
            };
            let data = buf.filled_mut();
            data.copy_within(before + used..filled, before);
            buf.set_filled(filled - used);
            if buf.filled().len() > before {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for VlessStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.poll_stripped(cx, buf, |s, cx, buf| Pin::new(s).poll_read(cx, buf))
    }
}

impl<S: AsyncWrite + Unpin> VlessStream<S> {
    /// Writes what is left of the glued header and first write.
    fn poll_unsent(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        crate::util::poll_write_all(&mut self.inner, cx, &mut self.unsent)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for VlessStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if this.glue && !data.is_empty() {
            // The first write: the header and it go out as one.
            this.glue = false;
            this.unsent.extend_from_slice(data);
            if let Poll::Ready(Err(e)) = this.poll_unsent(cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(data.len()));
        }
        ready!(this.poll_unsent(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // A header still waiting for its first write keeps waiting: a flush ahead of
        // that write must not send it alone.
        if !self.glue {
            ready!(self.poll_unsent(cx))?;
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.glue = false;
        ready!(self.poll_unsent(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Peel> Peel for VlessStream<S> {
    fn raw(&mut self) -> &mut crate::transport::Stream {
        self.inner.raw()
    }

    fn take_plaintext(&mut self, out: &mut BytesMut) {
        self.inner.take_plaintext(out);
    }

    fn outer_version(&self) -> Option<u16> {
        self.inner.outer_version()
    }

    fn poll_read_record(
        &mut self,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.poll_stripped(cx, buf, S::poll_read_record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip_all(chunks: &[&[u8]]) -> std::io::Result<Vec<u8>> {
        let mut state = Header::Version;
        let mut out = Vec::new();
        for chunk in chunks {
            let used = strip_header(&mut state, chunk)?;
            out.extend_from_slice(&chunk[used..]);
        }
        Ok(out)
    }

    #[test]
    fn the_response_header_is_stripped_however_it_is_split() {
        assert_eq!(strip_all(&[b"\0\0hello"]).unwrap(), b"hello");
        assert_eq!(strip_all(&[b"\0", b"\0", b"hi"]).unwrap(), b"hi");
        assert_eq!(strip_all(&[b"\0\x02ab", b"c"]).unwrap(), b"c");
        assert_eq!(strip_all(&[b"\0\x02a", b"bcd"]).unwrap(), b"cd");
        assert!(strip_all(&[b"\x01\0"]).is_err());
    }
}
