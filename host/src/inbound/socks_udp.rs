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

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;

use crate::dispatch::{ClientPackets, Dispatcher};
use crate::proto::Destination;
use crate::proto::socks5::{self, UdpHeader};
use crate::session::{Network, SnapshotFields, Target};

/// Destinations open at once in one association.
pub const MAX_FLOWS: usize = 256;
/// Datagrams queued toward one destination.
const FLOW_QUEUE: usize = 32;

/// One UDP ASSOCIATE of a SOCKS5 client.
pub struct Association {
    pub dispatcher: Dispatcher,
    pub tag: Arc<str>,
    /// The client's TCP address: only its IP may use the relay.
    pub peer: SocketAddr,
    pub user: Option<Arc<str>>,
}

impl Association {
    /// Answers UDP ASSOCIATE and relays until the TCP connection closes.
    pub async fn run(self, mut tcp: TcpStream) -> std::io::Result<()> {
        let local = tcp.local_addr()?;
        let socket = Arc::new(UdpSocket::bind(SocketAddr::new(local.ip(), 0)).await?);
        let mut reply = BytesMut::new();
        socks5::encode_reply(socks5::SUCCEEDED, socket.local_addr()?, &mut reply);
        tcp.write_all(&reply).await?;
        tokio::select! {
            () = wait_closed(&mut tcp) => Ok(()),
            r = self.relay(socket) => r,
        }
    }

    async fn relay(&self, socket: Arc<UdpSocket>) -> std::io::Result<()> {
        let mut flows: HashMap<Destination, mpsc::Sender<Bytes>> = HashMap::new();
        let mut client: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let (n, from) = socket.recv_from(&mut buf).await?;
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
            self.send(&mut flows, header.addr, payload, (&socket, from));
        }
    }

    /// Queues `payload` on the flow to `dest`, starting a flow that answers through
    /// `socket` to `client` if it has none.
    fn send(
        &self,
        flows: &mut HashMap<Destination, mpsc::Sender<Bytes>>,
        dest: Destination,
        payload: Bytes,
        (socket, client): (&Arc<UdpSocket>, SocketAddr),
    ) {
        if flows.get(&dest).is_none_or(|tx| tx.is_closed()) {
            flows.retain(|_, tx| !tx.is_closed());
            if flows.len() >= MAX_FLOWS {
                tracing::debug!(%dest, "socks udp: more than {MAX_FLOWS} destinations; dropped");
                return;
            }
            let (tx, rx) = mpsc::channel(FLOW_QUEUE);
            flows.insert(dest.clone(), tx);
            let flow = Flow {
                socket: socket.clone(),
                client,
                uplink: rx,
            };
            let mut fields =
                SnapshotFields::new(&self.tag, self.peer, Network::Udp, Target::from(&dest));
            fields.user = self.user.clone();
            let snapshot = fields.freeze();
            let dispatcher = self.dispatcher.clone();
            tokio::spawn(async move { dispatcher.udp(snapshot, flow).await });
        }
        if let Some(tx) = flows.get(&dest) {
            // A full queue drops the datagram, as a full socket buffer would.
            let _ = tx.try_send(payload);
        }
    }
}

/// The association ends when the client closes its TCP connection.
async fn wait_closed(tcp: &mut TcpStream) {
    let mut buf = [0u8; 64];
    while matches!(tcp.read(&mut buf).await, Ok(n) if n > 0) {}
}

/// One destination of an association, as its session's client side: datagrams from
/// the relay socket's reader, replies sent from the relay socket with the SOCKS5 UDP
/// header naming their source.
struct Flow {
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    uplink: mpsc::Receiver<Bytes>,
}

impl ClientPackets for Flow {
    async fn recv(&mut self) -> std::io::Result<Option<(Option<Destination>, Bytes)>> {
        Ok(self.uplink.recv().await.map(|d| (None, d)))
    }

    async fn send(&mut self, source: &Destination, data: &[u8]) -> std::io::Result<()> {
        let mut out = BytesMut::with_capacity(data.len() + 32);
        UdpHeader::encode(source, &mut out);
        out.extend_from_slice(data);
        self.socket.send_to(&out, self.client).await.map(drop)
    }
}
