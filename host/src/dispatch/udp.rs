//! A UDP session: routed like any other (the sniff stage sees no payload), then
//! datagrams both ways between the inbound's [`ClientPackets`] and the outbound's
//! `Packets`, until either side closes or nothing moves for the idle timeout.
//!
//! The client side is VLESS command 2 ([`FramedPackets`]), a Mux.Cool UDP sub-stream
//! (`SubPackets`, XUDP) or a SOCKS5 UDP flow. A client that wants full cone (XUDP: one
//! socket for every destination, replies tagged with their source) gets it only from
//! an outbound that offers it (`direct`); elsewhere the session is blocked.

use std::future::Future;
use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::{Dispatcher, SessionLog};
use crate::mux::SubPackets;
use crate::outbound::{OutboundError, Packets, read_datagram};
use crate::proto::{Address, Destination, udp};
use crate::relay::Traffic;
use crate::session::{Outcome, Snapshot};
use crate::stats::Meter;

/// The inbound's side of a UDP session.
pub trait ClientPackets: Send {
    /// The next datagram from the client and the destination it names (`None`: the
    /// session's target); `None` once the client is done. Cancel-safe.
    fn recv(
        &mut self,
    ) -> impl Future<Output = std::io::Result<Option<(Option<Destination>, Bytes)>>> + Send;
    /// A datagram back to the client from `source`.
    fn send(
        &mut self,
        source: &Destination,
        data: &[u8],
    ) -> impl Future<Output = std::io::Result<()>> + Send;
    /// Full cone wanted, with the XUDP GlobalID that lets a reconnect keep its port.
    fn full_cone(&self) -> Option<Option<[u8; 8]>> {
        None
    }
    /// The session is over: close what needs closing.
    fn finish(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

impl Dispatcher {
    /// Serves one UDP session to its end.
    pub async fn udp<C: ClientPackets>(&self, snapshot: Snapshot, mut client: C) {
        let mut log = SessionLog::start(&snapshot, &self.metrics);
        let mut nothing = tokio::io::empty();
        let mut no_payload = BytesMut::new();
        let Ok((decided, outbound)) = self
            .route(&snapshot, &mut nothing, &mut no_payload, &mut log)
            .await
        else {
            return;
        };
        let target = decided.dial_target.clone();
        let opened = match client.full_cone() {
            Some(global_id) => outbound.open_cone(&target, global_id).await,
            None => outbound.open_packets(&target).await,
        };
        let packets = match opened {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("udp: {e}");
                log.end(OutboundError::failure(&e).outcome());
                return;
            }
        };
        // Replies on a connected flow come from the target the client asked for.
        let asked = snapshot.target.destination();
        let idle = self.timeouts.idle;
        let (traffic, outcome) = pump(&mut client, packets, asked, idle, log.meter()).await;
        client.finish().await;
        log.traffic(traffic);
        log.end(outcome);
    }
}

enum Event {
    Up(std::io::Result<Option<(Option<Destination>, Bytes)>>),
    Down(std::io::Result<Option<(Option<SocketAddr>, Bytes)>>),
    Idle,
}

/// Moves datagrams both ways until either side closes, an error, or `idle` passes
/// without a datagram.
async fn pump<C: ClientPackets>(
    client: &mut C,
    packets: Packets,
    asked: Destination,
    idle: std::time::Duration,
    meter: &Meter,
) -> (Traffic, Outcome) {
    let Packets { mut tx, mut rx } = packets;
    let mut traffic = Traffic::default();
    let timer = tokio::time::sleep(idle);
    tokio::pin!(timer);
    loop {
        let event = tokio::select! {
            r = client.recv() => Event::Up(r),
            r = rx.recv() => Event::Down(r),
            () = &mut timer => Event::Idle,
        };
        let moved = match event {
            Event::Idle => return (traffic, Outcome::Ok),
            Event::Up(Ok(None)) | Event::Down(Ok(None)) => return (traffic, Outcome::Ok),
            Event::Up(Err(e)) | Event::Down(Err(e)) => {
                tracing::debug!("udp: {e}");
                return (traffic, Outcome::Error);
            }
            Event::Up(Ok(Some((dest, data)))) => {
                if let Err(e) = tx.send(dest.as_ref(), &data).await {
                    tracing::debug!("udp: {e}");
                    return (traffic, Outcome::Error);
                }
                traffic.up += data.len() as u64;
                meter.up(data.len() as u64);
                !data.is_empty()
            }
            Event::Down(Ok(Some((from, data)))) => {
                let source = from.map_or_else(
                    || asked.clone(),
                    |a| Destination::new(Address::from_ip(a.ip()), a.port()),
                );
                if client.send(&source, &data).await.is_err() {
                    return (traffic, Outcome::Ok);
                }
                traffic.down += data.len() as u64;
                meter.down(data.len() as u64);
                true
            }
        };
        if moved {
            timer.as_mut().reset(tokio::time::Instant::now() + idle);
        }
    }
}

/// UDP over a VLESS stream (command 2): `[u16 len][payload]` datagrams both ways, to
/// the session's target. Empty datagrams are skipped; replies larger than 8190 bytes
/// cannot be framed and are dropped, as Xray's writer drops them. `prefix` (the VLESS
/// response header) goes out with the first reply.
pub struct FramedPackets<S> {
    stream: S,
    buf: BytesMut,
    prefix: &'static [u8],
    out: BytesMut,
}

impl<S> FramedPackets<S> {
    pub fn new(stream: S, held: BytesMut, prefix: &'static [u8]) -> Self {
        FramedPackets {
            stream,
            buf: held,
            prefix,
            out: BytesMut::new(),
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Send + Unpin> ClientPackets for FramedPackets<S> {
    async fn recv(&mut self) -> std::io::Result<Option<(Option<Destination>, Bytes)>> {
        let datagram = read_datagram(&mut self.stream, &mut self.buf).await?;
        Ok(datagram.map(|d| (None, d)))
    }

    async fn send(&mut self, _source: &Destination, data: &[u8]) -> std::io::Result<()> {
        self.out.clear();
        self.out.extend_from_slice(std::mem::take(&mut self.prefix));
        if udp::encode(data, &mut self.out).is_err() {
            tracing::debug!(
                len = data.len(),
                "UDP reply dropped: empty or larger than a VLESS frame holds"
            );
            return Ok(());
        }
        self.stream.write_all(&self.out).await?;
        self.stream.flush().await
    }

    async fn finish(&mut self) {
        let _ = self.stream.shutdown().await;
    }
}

impl ClientPackets for SubPackets {
    async fn recv(&mut self) -> std::io::Result<Option<(Option<Destination>, Bytes)>> {
        Ok(self.uplink.recv().await)
    }

    async fn send(&mut self, source: &Destination, data: &[u8]) -> std::io::Result<()> {
        self.downlink.send(Some(source.clone()), data).await
    }

    fn full_cone(&self) -> Option<Option<[u8; 8]>> {
        Some(self.global_id)
    }
}
