//! UDP outbounds: one flow of datagrams to one destination, over a UDP socket
//! (direct), VLESS command 2 (`[u16 len][datagram]` both ways) or a Mux.Cool UDP
//! sub-stream (one datagram per frame). Split into a sending and a receiving half so
//! the two directions run at once.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::vless::VlessStream;
use crate::mux::MuxPacketTx;
use crate::proto::udp;

/// A datagram flow to one destination.
pub struct Packets {
    pub tx: PacketTx,
    pub rx: PacketRx,
}

pub enum PacketTx {
    Socket(Arc<UdpSocket>),
    Vless(WriteHalf<VlessStream>),
    Mux(MuxPacketTx),
}

pub enum PacketRx {
    /// The socket and a receive buffer as large as a datagram can be.
    Socket(Arc<UdpSocket>, Vec<u8>),
    Vless(ReadHalf<VlessStream>, BytesMut),
    Mux(mpsc::Receiver<Bytes>),
}

impl Packets {
    /// A connected UDP socket (direct).
    pub fn socket(socket: UdpSocket) -> Self {
        let socket = Arc::new(socket);
        Self {
            tx: PacketTx::Socket(socket.clone()),
            rx: PacketRx::Socket(socket, vec![0; 64 * 1024]),
        }
    }

    /// A VLESS command-2 stream whose header is already sent.
    pub fn vless(stream: VlessStream) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Self {
            tx: PacketTx::Vless(writer),
            rx: PacketRx::Vless(reader, BytesMut::new()),
        }
    }
}

impl PacketTx {
    /// Sends one datagram. Empty ones, and ones a VLESS frame cannot hold (over 8190
    /// bytes), are dropped, as Xray's writers drop them.
    pub async fn send(&mut self, datagram: &[u8]) -> std::io::Result<()> {
        match self {
            PacketTx::Socket(s) => s.send(datagram).await.map(drop),
            PacketTx::Vless(w) => {
                let mut framed = BytesMut::with_capacity(udp::encoded_len(datagram.len()));
                if udp::encode(datagram, &mut framed).is_err() {
                    return Ok(());
                }
                w.write_all(&framed).await?;
                w.flush().await
            }
            PacketTx::Mux(_) if datagram.is_empty() => Ok(()),
            PacketTx::Mux(m) => m.send(datagram).await,
        }
    }
}

impl PacketRx {
    /// The next datagram, or `None` once the flow is closed.
    pub async fn recv(&mut self) -> std::io::Result<Option<Bytes>> {
        match self {
            PacketRx::Socket(s, buf) => {
                let n = s.recv(buf).await?;
                Ok(Some(Bytes::copy_from_slice(
                    buf.get(..n).unwrap_or_default(),
                )))
            }
            PacketRx::Vless(r, buf) => loop {
                if let Some((datagram, used)) = udp::decode(buf) {
                    let datagram = Bytes::copy_from_slice(datagram);
                    buf.advance(used);
                    if datagram.is_empty() {
                        continue;
                    }
                    return Ok(Some(datagram));
                }
                buf.reserve(udp::encoded_len(udp::MAX_DATAGRAM));
                if r.read_buf(buf).await? == 0 {
                    return Ok(None);
                }
            },
            PacketRx::Mux(rx) => Ok(rx.recv().await),
        }
    }
}
