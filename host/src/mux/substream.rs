//! One sub-stream as a byte stream, so `dispatch` serves it exactly like a VLESS
//! connection: the session owns one end of an in-memory duplex pipe, and two pumps
//! move bytes between the other end and the tunnel (uplink: Keep data from the reader;
//! downlink: Keep frames to the writer). The pipe's capacity bounds what one
//! sub-stream may buffer.
//! (UDP sub-streams do not use a pipe: see `xudp`.)

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use crate::proto::mux::{Frame, MAX_STREAM_CHUNK};

/// What one sub-stream may buffer in its pipe, each way.
pub const PIPE_CAPACITY: usize = 64 * 1024;

/// Moves uplink data (from the tunnel reader) into the session's pipe until the client
/// ends the sub-stream, then half-closes the pipe.
pub async fn uplink(mut pipe: tokio::io::WriteHalf<DuplexStream>, mut data: mpsc::Receiver<Bytes>) {
    while let Some(chunk) = data.recv().await {
        if pipe.write_all(&chunk).await.is_err() {
            break;
        }
    }
    let _ = pipe.shutdown().await;
}

/// Moves the session's downlink bytes to the tunnel as Keep frames, then sends End.
pub async fn downlink(
    mut pipe: tokio::io::ReadHalf<DuplexStream>,
    id: u16,
    frames: mpsc::Sender<BytesMut>,
) {
    let mut buf = BytesMut::with_capacity(MAX_STREAM_CHUNK);
    let error = loop {
        buf.reserve(MAX_STREAM_CHUNK);
        match pipe.read_buf(&mut buf).await {
            Ok(0) => break false,
            Ok(_) => {}
            Err(_) => break true,
        }
        if !send_chunks(&mut buf, id, &frames).await {
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
