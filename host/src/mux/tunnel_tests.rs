//! The tunnel core against a real byte pipe: frames out through the writer, frames in
//! through `next_frame` and `deliver`, back-pressure and ends.

use super::*;
use crate::mux::OUT_LIMIT;
use crate::proto::mux::MAX_STREAM_CHUNK;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Decodes every frame in `bytes` as (id, status, data).
fn frames(mut bytes: &[u8]) -> Vec<(u16, Status, Vec<u8>)> {
    let mut out = Vec::new();
    while let Ok(Some((f, used))) = Frame::decode(bytes) {
        out.push((
            f.session_id,
            f.status.clone(),
            f.data.unwrap_or_default().to_vec(),
        ));
        bytes = &bytes[used..];
    }
    assert!(bytes.is_empty(), "{} bytes left undecoded", bytes.len());
    out
}

/// A tunnel whose writer sends into a pipe; returns the far end.
fn tunnel_to_pipe(
    prefix: &'static [u8],
) -> (Arc<Tunnel>, DuplexStream, tokio::task::JoinHandle<()>) {
    let tunnel = Tunnel::new();
    let (near, far) = tokio::io::duplex(1 << 20);
    let writer = tokio::spawn(write_frames(tunnel.clone(), near, prefix));
    (tunnel, far, writer)
}

#[tokio::test]
async fn writes_become_keep_frames_and_shutdown_an_end() {
    let (tunnel, mut far, writer) = tunnel_to_pipe(b"\x00\x00");
    let mut stream = tunnel.open_stream(7);
    let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    stream.write_all(&data).await.unwrap();
    stream.shutdown().await.unwrap();
    drop(stream);
    tunnel.close();
    writer.await.unwrap();
    let mut sent = Vec::new();
    far.read_to_end(&mut sent).await.unwrap();
    assert_eq!(&sent[..2], b"\x00\x00", "the prefix goes first");
    let got = frames(&sent[2..]);
    let mut body = Vec::new();
    for (id, status, chunk) in &got[..got.len() - 1] {
        assert_eq!((*id, status), (7, &Status::Keep { udp_addr: None }));
        assert!(chunk.len() <= MAX_STREAM_CHUNK);
        body.extend_from_slice(chunk);
    }
    assert_eq!(body, data);
    assert_eq!(
        got.last().map(|f| &f.1),
        Some(&Status::End { error: false })
    );
}

#[tokio::test]
async fn a_stream_dropped_without_shutdown_ends_with_the_error_bit() {
    let (tunnel, mut far, writer) = tunnel_to_pipe(b"");
    drop(tunnel.open_stream(3));
    assert_eq!(tunnel.open_streams(), 0);
    tunnel.close();
    writer.await.unwrap();
    let mut sent = Vec::new();
    far.read_to_end(&mut sent).await.unwrap();
    assert_eq!(
        frames(&sent),
        vec![(3, Status::End { error: true }, vec![])]
    );
}

#[tokio::test]
async fn delivered_frames_read_back_in_order_then_end() {
    let tunnel = Tunnel::new();
    let mut stream = tunnel.open_stream(1);
    let mut wire = BytesMut::new();
    for chunk in [&b"hello "[..], b"mux", b" world"] {
        Frame::keep(1, chunk).encode(&mut wire).unwrap();
    }
    Frame::end(1, false).encode(&mut wire).unwrap();
    let mut reader = &wire[..];
    let mut buf = BytesMut::new();
    loop {
        match next_frame(&mut reader, &mut buf, None).await {
            Ok((id, Status::Keep { udp_addr }, Some(data))) => {
                assert_eq!(
                    tunnel.deliver(id, udp_addr, data).await,
                    Delivery::Delivered
                );
            }
            Ok((id, Status::End { .. }, _)) => tunnel.remove(id),
            Ok(other) => panic!("unexpected {:?}", other.1),
            Err(FrameError::Closed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    let mut got = String::new();
    stream.read_to_string(&mut got).await.unwrap();
    assert_eq!(got, "hello mux world");
    assert_eq!(
        tunnel.deliver(1, None, Bytes::from_static(b"late")).await,
        Delivery::Unknown
    );
}

#[tokio::test]
async fn a_full_inbox_stalls_only_its_own_stream() {
    let (tunnel, mut far, writer) = tunnel_to_pipe(b"");
    let slow = tunnel.open_stream(1);
    let mut quick = tunnel.open_stream(2);
    let chunk = Bytes::from(vec![0u8; 8192]);
    let mut delivered = 0;
    let stalled = loop {
        match tunnel.deliver(1, None, chunk.clone()).await {
            Delivery::Delivered => delivered += chunk.len(),
            other => break other,
        }
    };
    assert_eq!(stalled, Delivery::Stalled);
    assert!(delivered >= STREAM_WINDOW, "{delivered}");
    assert_eq!(
        tunnel.deliver(2, None, Bytes::from_static(b"ok")).await,
        Delivery::Delivered
    );
    let mut two = [0u8; 2];
    quick.read_exact(&mut two).await.unwrap();
    assert_eq!(&two, b"ok");
    drop((slow, quick));
    tunnel.close();
    writer.await.unwrap();
    let mut sent = Vec::new();
    far.read_to_end(&mut sent).await.unwrap();
    assert_eq!(frames(&sent)[0], (1, Status::End { error: true }, vec![]));
}

#[tokio::test]
async fn writers_wait_while_the_writer_is_behind_and_fail_once_closed() {
    let tunnel = Tunnel::new();
    let mut stream = tunnel.open_stream(1);
    // No writer task: the queue fills to its bound, then writes wait.
    let big = vec![1u8; OUT_LIMIT * 2];
    let pending = tokio::time::timeout(Duration::from_millis(50), stream.write_all(&big)).await;
    assert!(pending.is_err(), "a write past the bound must wait");
    tunnel.close();
    let err = stream.write_all(b"x").await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    let mut nothing = Vec::new();
    stream.read_to_end(&mut nothing).await.unwrap();
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn the_longest_legal_frame_decodes_and_eof_inside_one_is_an_error() {
    // metaLen 4, Keep, option D, dataLen 0xffff but only part of it: then a flood.
    let mut wire = vec![0, 4, 0, 1, 2, 1, 0xff, 0xff];
    wire.extend(std::iter::repeat_n(0u8, MAX_FRAME));
    let mut reader = &wire[..];
    let mut buf = BytesMut::new();
    let got = next_frame(&mut reader, &mut buf, None).await;
    assert!(
        matches!(got, Ok((1, Status::Keep { .. }, Some(ref d))) if d.len() == 0xffff),
        "{:?}",
        got.map(|f| f.0)
    );
    let mut truncated = &wire[..100];
    let mut buf = BytesMut::new();
    let got = next_frame(&mut truncated, &mut buf, None).await;
    assert!(matches!(got, Err(FrameError::Truncated(100))), "{got:?}");
}
