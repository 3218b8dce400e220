//! UDP over VLESS (command 2): `[u16 len][payload]` datagrams in both directions,
//! relayed through one outbound datagram flow (a connected socket, or a VLESS or
//! Mux.Cool flow further on), until the client closes or nothing moves for the idle
//! timeout. Empty datagrams are skipped; replies larger
//! than 8190 bytes cannot be framed and are dropped, as Xray's writer drops them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::outbound::{PacketRx, PacketTx, Packets};
use crate::proto::udp;
use crate::relay::{Traffic, watch_idle};
use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Relays until the client closes, an error, or `idle` without traffic.
pub async fn relay_udp<S>(
    client: S,
    held: BytesMut,
    packets: Packets,
    prefix: &[u8],
    idle: Duration,
) -> std::io::Result<Traffic>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut reader, mut writer) = tokio::io::split(client);
    let start = Instant::now();
    let activity = AtomicU64::new(0);
    let up = AtomicU64::new(0);
    let down = AtomicU64::new(0);
    let Packets { mut tx, mut rx } = packets;
    let uplink = uplink(&mut reader, held, &mut tx, &up, &activity, start);
    let downlink = downlink(&mut writer, &mut rx, prefix, &down, &activity, start);
    let result = tokio::select! {
        r = uplink => r,
        r = downlink => r,
        _ = watch_idle(&activity, start, idle) => Ok(()),
    };
    let _ = writer.shutdown().await;
    result.map(|()| Traffic {
        up: up.load(Ordering::Relaxed),
        down: down.load(Ordering::Relaxed),
    })
}

async fn uplink<R: AsyncRead + Unpin>(
    reader: &mut R,
    mut buf: BytesMut,
    tx: &mut PacketTx,
    counter: &AtomicU64,
    activity: &AtomicU64,
    start: Instant,
) -> std::io::Result<()> {
    loop {
        while let Some((datagram, used)) = udp::decode(&buf) {
            if !datagram.is_empty() {
                tx.send(datagram).await?;
                counter.fetch_add(datagram.len() as u64, Ordering::Relaxed);
                activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
            }
            buf.advance(used);
        }
        buf.reserve(udp::encoded_len(udp::MAX_DATAGRAM));
        if reader.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}

async fn downlink<W: AsyncWrite + Unpin>(
    writer: &mut W,
    rx: &mut PacketRx,
    prefix: &[u8],
    counter: &AtomicU64,
    activity: &AtomicU64,
    start: Instant,
) -> std::io::Result<()> {
    let mut out = BytesMut::with_capacity(prefix.len() + udp::encoded_len(udp::MAX_DATAGRAM));
    out.extend_from_slice(prefix);
    loop {
        let Some(data) = rx.recv().await? else {
            return Ok(());
        };
        let n = data.len();
        if udp::encode(&data, &mut out).is_err() {
            tracing::debug!(
                len = n,
                "UDP reply dropped: empty or larger than a VLESS frame holds"
            );
            continue;
        }
        writer.write_all(&out).await?;
        writer.flush().await?;
        out.clear();
        counter.fetch_add(n as u64, Ordering::Relaxed);
        activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}
