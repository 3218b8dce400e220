//! One sub-stream as a byte stream, so `dispatch` serves it exactly like a VLESS
//! connection: the session owns one end of an in-memory duplex pipe, and two pumps
//! move bytes between the other end and the tunnel (uplink: Keep data from the reader;
//! downlink: Keep frames to the writer). The pipe's capacity bounds what one
//! sub-stream may buffer.
//! (UDP sub-streams do not use a pipe: see `xudp`.)

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;

use crate::bufpool;
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
/// Waits with no buffer (`bufpool`), so an idle sub-stream costs no relay memory.
pub async fn downlink(
    mut pipe: tokio::io::ReadHalf<DuplexStream>,
    id: u16,
    frames: mpsc::Sender<BytesMut>,
) {
    let error = loop {
        let filled = match bufpool::read(&mut pipe, 0).await {
            Ok(f) if f.data().is_empty() => break false,
            Ok(f) => f,
            Err(_) => break true,
        };
        if !send_chunks(filled.data(), id, &frames).await {
            return;
        }
    };
    let mut end = BytesMut::new();
    let _ = Frame::end(id, error).encode(&mut end);
    let _ = frames.send(end).await;
}

/// Sends `data` as Keep frames of at most [`MAX_STREAM_CHUNK`] bytes.
pub async fn send_chunks(data: &[u8], id: u16, frames: &mpsc::Sender<BytesMut>) -> bool {
    for chunk in data.chunks(MAX_STREAM_CHUNK) {
        let mut frame = BytesMut::with_capacity(chunk.len() + 8);
        if Frame::keep(id, chunk).encode(&mut frame).is_err() || frames.send(frame).await.is_err() {
            return false;
        }
    }
    true
}
