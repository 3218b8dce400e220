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

/// Moves what a session writes into its pipe to the tunnel as Keep frames, then sends
/// End: the server's downlink and the client's uplink. Waits with no buffer
/// (`bufpool`), so an idle sub-stream costs no relay memory.
pub async fn pipe_to_frames(
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
    let _ = send_frame(&frames, &Frame::end(id, error)).await;
}

/// Encodes `frame` and queues it for the tunnel's writer; fails once the tunnel is gone.
pub async fn send_frame(frames: &mpsc::Sender<BytesMut>, frame: &Frame<'_>) -> std::io::Result<()> {
    let mut bytes = BytesMut::with_capacity(frame.encoded_len());
    frame.encode(&mut bytes).map_err(std::io::Error::other)?;
    frames
        .send(bytes)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "mux tunnel closed"))
}

/// Sends `data` as Keep frames of at most [`MAX_STREAM_CHUNK`] bytes.
async fn send_chunks(data: &[u8], id: u16, frames: &mpsc::Sender<BytesMut>) -> bool {
    for chunk in data.chunks(MAX_STREAM_CHUNK) {
        if send_frame(frames, &Frame::keep(id, chunk)).await.is_err() {
            return false;
        }
    }
    true
}
