//! SOCKS5 UDP ASSOCIATE (RFC 1928 §7): a UDP relay socket per association, alive as
//! long as the client's TCP connection.
//!
//! Each datagram from the client carries `[RSV 2][FRAG][ATYP addr port]` and is sent
//! on to that address. Every destination is a flow of its own: a session that is
//! routed like any other (so private ranges can go direct and the rest through a
//! vless outbound, where it becomes VLESS command 2 or a Mux.Cool UDP sub-stream),
//! with its own access-log line. Replies come back with the flow's destination as
//! their source. Only the client's address may use the relay; fragments (FRAG != 0)
//! are dropped, as Xray and sing-box drop them. At most [`MAX_FLOWS`] destinations
//! are open per association.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use super::socks::{SocksError, SocksServer};
use super::vless::target_of;
use crate::dispatch::{Context, Outcome, access_log, route_without_payload};
use crate::outbound::Packets;
use crate::proto::Destination;
use crate::proto::socks5::{self, UdpHeader};
use crate::relay::Traffic;
use crate::session::{Network, SnapshotFields};

/// Destinations open at once in one association.
pub const MAX_FLOWS: usize = 256;
/// Datagrams queued toward one destination.
const FLOW_QUEUE: usize = 32;

/// Answers UDP ASSOCIATE and relays until the TCP connection closes.
pub(super) async fn associate(
    server: &SocksServer,
    mut tcp: TcpStream,
    peer: SocketAddr,
    user: Option<Arc<str>>,
) -> Result<(), SocksError> {
    let local = tcp.local_addr()?;
    let socket = Arc::new(UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?);
    let mut reply = BytesMut::new();
    socks5::encode_reply(socks5::SUCCEEDED, socket.local_addr()?, &mut reply);
    tcp.write_all(&reply).await?;
    let relay = Relay {
        ctx: server.ctx.clone(),
        tag: server.tag.clone(),
        user,
        peer,
        socket,
        idle: server.timeouts.idle,
    };
    tokio::select! {
        _ = wait_closed(&mut tcp) => {}
        r = relay.run() => r?,
    }
    Ok(())
}

/// The association ends when the client closes its TCP connection.
async fn wait_closed(tcp: &mut TcpStream) {
    let mut buf = [0u8; 64];
    while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
}

struct Relay {
    ctx: Context,
    tag: Arc<str>,
    user: Option<Arc<str>>,
    peer: SocketAddr,
    socket: Arc<UdpSocket>,
    idle: Duration,
}

impl Relay {
    async fn run(&self) -> std::io::Result<()> {
        let mut flows: HashMap<Destination, mpsc::Sender<Bytes>> = HashMap::new();
        let mut client: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (n, from) = self.socket.recv_from(&mut buf).await?;
            // The client's first datagram fixes its UDP address; nobody else may use it.
            if from.ip() != self.peer.ip() || client.is_some_and(|c| c != from) {
                continue;
            }
            client = Some(from);
            let datagram = buf.get(..n).unwrap_or_default();
            let (header, used) = match UdpHeader::decode(datagram) {
                Ok(h) if h.0.frag == 0 => h,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(%from, "socks udp: {e}");
                    continue;
                }
            };
            let payload = Bytes::copy_from_slice(datagram.get(used..).unwrap_or_default());
            self.send(&mut flows, header.addr, payload, from);
        }
    }

    /// Queues `payload` on the flow to `dest`, starting the flow if it has none.
    fn send(
        &self,
        flows: &mut HashMap<Destination, mpsc::Sender<Bytes>>,
        dest: Destination,
        payload: Bytes,
        client: SocketAddr,
    ) {
        if flows.get(&dest).is_none_or(|tx| tx.is_closed()) {
            flows.retain(|_, tx| !tx.is_closed());
            if flows.len() >= MAX_FLOWS {
                tracing::debug!(%dest, "socks udp: more than {MAX_FLOWS} destinations; dropped");
                return;
            }
            let (tx, rx) = mpsc::channel(FLOW_QUEUE);
            flows.insert(dest.clone(), tx);
            tokio::spawn(self.flow(dest.clone(), rx, client));
        }
        if let Some(tx) = flows.get(&dest) {
            // A full queue drops the datagram, as a full socket buffer would.
            let _ = tx.try_send(payload);
        }
    }

    fn flow(
        &self,
        dest: Destination,
        uplink: mpsc::Receiver<Bytes>,
        client: SocketAddr,
    ) -> impl Future<Output = ()> + use<> {
        let mut fields = SnapshotFields::new(&self.tag, self.peer, Network::Udp, target_of(&dest));
        fields.user = self.user.clone();
        let flow = Flow {
            ctx: self.ctx.clone(),
            socket: self.socket.clone(),
            client,
            dest,
            idle: self.idle,
        };
        let snapshot = fields.freeze();
        async move { flow.run(snapshot, uplink).await }
    }
}

/// One destination of an association.
struct Flow {
    ctx: Context,
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    dest: Destination,
    idle: Duration,
}

impl Flow {
    async fn run(self, snapshot: crate::session::Snapshot, uplink: mpsc::Receiver<Bytes>) {
        let started = Instant::now();
        let Some((decided, outbound)) = route_without_payload(&self.ctx, &snapshot, started) else {
            return;
        };
        let (traffic, outcome) = match outbound.open_packets(&decided.dial_target).await {
            Ok(packets) => (self.pump(packets, uplink).await, Outcome::Ok),
            Err(e) => {
                tracing::debug!("socks udp: {e}");
                (Traffic::default(), Outcome::of_failed_dial(&e))
            }
        };
        access_log(&decided, Some(&outbound.tag), traffic, started, outcome);
    }

    /// Moves datagrams both ways until either side closes or `idle` passes quietly.
    async fn pump(&self, packets: Packets, mut uplink: mpsc::Receiver<Bytes>) -> Traffic {
        let Packets { mut tx, mut rx } = packets;
        let mut traffic = Traffic::default();
        let mut header = BytesMut::new();
        UdpHeader::encode(&self.dest, &mut header);
        let mut out = BytesMut::new();
        loop {
            tokio::select! {
                datagram = uplink.recv() => {
                    let Some(datagram) = datagram else { break };
                    if tx.send(&datagram).await.is_err() {
                        break;
                    }
                    traffic.up += datagram.len() as u64;
                }
                reply = rx.recv() => {
                    let Ok(Some(reply)) = reply else { break };
                    out.clear();
                    out.extend_from_slice(&header);
                    out.extend_from_slice(&reply);
                    if self.socket.send_to(&out, self.client).await.is_err() {
                        break;
                    }
                    traffic.down += reply.len() as u64;
                }
                _ = tokio::time::sleep(self.idle) => break,
            }
        }
        traffic
    }
}
