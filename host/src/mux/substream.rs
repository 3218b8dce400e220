//! One sub-stream as a byte stream, so `dispatch` serves it exactly like a VLESS
//! connection: the session owns one end of an in-memory duplex pipe, and two pumps
//! move bytes between the other end and the tunnel (uplink: Keep data from the reader;
//! downlink: Keep frames to the writer). The pipe's capacity bounds what one
//! sub-stream may buffer.
//!
//! UDP sub-streams carry one datagram per frame; on the pipe they are length-framed
//! (`[u16 len][payload]`, as VLESS command 2), so `dispatch::udp_session` serves them.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use crate::proto::Destination;
use crate::proto::mux::{Frame, MAX_STREAM_CHUNK};
use crate::proto::udp;

/// What one sub-stream may buffer in its pipe, each way.
pub const PIPE_CAPACITY: usize = 64 * 1024;

/// Moves uplink data (from the tunnel reader) into the session's pipe until the client
/// ends the sub-stream, then half-closes the pipe.
pub async fn uplink(
    mut pipe: tokio::io::WriteHalf<DuplexStream>,
    mut data: mpsc::Receiver<Bytes>,
    udp_framing: bool,
) {
    while let Some(chunk) = data.recv().await {
        let ok = if udp_framing {
            let mut framed = BytesMut::with_capacity(chunk.len() + 2);
            udp::encode(&chunk, &mut framed).is_err() || pipe.write_all(&framed).await.is_ok()
        } else {
            pipe.write_all(&chunk).await.is_ok()
        };
        if !ok {
            break;
        }
    }
    let _ = pipe.shutdown().await;
}

/// Moves the session's downlink bytes to the tunnel as Keep frames, then sends End.
/// For UDP, each length-framed datagram becomes one Keep frame carrying `source`.
pub async fn downlink(
    mut pipe: tokio::io::ReadHalf<DuplexStream>,
    id: u16,
    frames: mpsc::Sender<BytesMut>,
    udp_source: Option<Destination>,
) {
    let mut buf = BytesMut::with_capacity(MAX_STREAM_CHUNK);
    let error = loop {
        buf.reserve(MAX_STREAM_CHUNK);
        match pipe.read_buf(&mut buf).await {
            Ok(0) => break false,
            Ok(_) => {}
            Err(_) => break true,
        }
        let sent = match &udp_source {
            Some(source) => send_datagrams(&mut buf, id, source, &frames).await,
            None => send_chunks(&mut buf, id, &frames).await,
        };
        if !sent {
            return;
        }
    };
    let mut end = BytesMut::new();
    let _ = Frame::end(id, error).encode(&mut end);
    let _ = frames.send(end).await;
}

async fn send_chunks(buf: &mut BytesMut, id: u16, frames: &mpsc::Sender<BytesMut>) -> bool {
    while !buf.is_empty() {
        let chunk = buf.split_to(buf.len().min(MAX_STREAM_CHUNK));
        let mut frame = BytesMut::with_capacity(chunk.len() + 8);
        if Frame::keep(id, &chunk).encode(&mut frame).is_err() || frames.send(frame).await.is_err()
        {
            return false;
        }
    }
    true
}

async fn send_datagrams(
    buf: &mut BytesMut,
    id: u16,
    source: &Destination,
    frames: &mpsc::Sender<BytesMut>,
) -> bool {
    while let Some((datagram, used)) = udp::decode(buf) {
        let mut frame = BytesMut::with_capacity(datagram.len() + 32);
        let ok = Frame::keep_udp(id, source.clone(), datagram)
            .encode(&mut frame)
            .is_ok();
        buf.advance(used);
        if ok && frames.send(frame).await.is_err() {
            return false;
        }
    }
    true
}
