//! UDP outbounds: datagram flows over a connected UDP socket (direct), a full-cone
//! socket (direct, for XUDP: `cone`), VLESS command 2 (`[u16 len][datagram]` both ways)
//! or a Mux.Cool UDP sub-stream (one datagram per frame). Split into a sending and a
//! receiving half so the two directions run at once.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::cone::{ConeRx, ConeTx};
use super::vless::VlessConn;
use crate::framed::{FrameError, Limits, read_frame};
use crate::mux::{Packet, PacketWriter};
use crate::proto::{Destination, udp};

/// A datagram flow.
pub struct Packets {
    pub tx: PacketTx,
    pub rx: PacketRx,
}

pub enum PacketTx {
    Socket(Arc<UdpSocket>),
    Cone(ConeTx),
    Vless(WriteHalf<VlessConn>),
    Mux(PacketWriter),
}

pub enum PacketRx {
    /// The socket and a receive buffer as large as a datagram can be.
    Socket(Arc<UdpSocket>, Vec<u8>),
    Cone(ConeRx),
    Vless(ReadHalf<VlessConn>, BytesMut),
    Mux(mpsc::Receiver<Packet>),
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
    pub fn vless(stream: VlessConn) -> Self {
        let (reader, writer) = tokio::io::split(stream);
        Self {
            tx: PacketTx::Vless(writer),
            rx: PacketRx::Vless(reader, BytesMut::new()),
        }
    }
}

impl PacketTx {
    /// Sends one datagram, to `dest` on a full-cone flow (`None`: the flow's target);
    /// other flows go to their one target. Empty datagrams, and ones a VLESS frame
    /// cannot hold (over 8190 bytes), are dropped, as Xray's writers drop them.
    pub async fn send(
        &mut self,
        dest: Option<&Destination>,
        datagram: &[u8],
    ) -> std::io::Result<()> {
        match self {
            PacketTx::Socket(s) => s.send(datagram).await.map(drop),
            PacketTx::Cone(c) => c.send(dest, datagram).await,
            PacketTx::Vless(w) => {
                let mut framed = BytesMut::with_capacity(udp::encoded_len(datagram.len()));
                if udp::encode(datagram, &mut framed).is_err() {
                    return Ok(());
                }
                w.write_all(&framed).await?;
                w.flush().await
            }
            PacketTx::Mux(_) if datagram.is_empty() => Ok(()),
            PacketTx::Mux(m) => m.send(None, datagram).await,
        }
    }
}

impl PacketRx {
    /// The next datagram and, on a full-cone flow, its source; `None` once the flow is
    /// closed. Cancel-safe.
    pub async fn recv(&mut self) -> std::io::Result<Option<(Option<SocketAddr>, Bytes)>> {
        match self {
            PacketRx::Socket(s, buf) => {
                let n = s.recv(buf).await?;
                let data = Bytes::copy_from_slice(buf.get(..n).unwrap_or_default());
                Ok(Some((None, data)))
            }
            PacketRx::Cone(c) => c.recv().await,
            PacketRx::Vless(r, buf) => Ok(read_datagram(r, buf).await?.map(|d| (None, d))),
            PacketRx::Mux(rx) => Ok(rx.recv().await.map(|(_, data)| (None, data))),
        }
    }
}

/// Reads the next non-empty `[u16 len][datagram]` of UDP over a VLESS stream; `None`
/// when the stream ends between datagrams. Cancel-safe: what was read stays in `buf`.
pub async fn read_datagram<R>(reader: &mut R, buf: &mut BytesMut) -> std::io::Result<Option<Bytes>>
where
    R: tokio::io::AsyncRead + Unpin,
{
    let size = udp::encoded_len(udp::MAX_DATAGRAM);
    let limits = Limits::new(size).reading(size);
    loop {
        let decode = |b: &[u8]| {
            let found = udp::decode(b).map(|(d, used)| (Bytes::copy_from_slice(d), used));
            Ok::<_, std::convert::Infallible>(found)
        };
        match read_frame(reader, buf, limits, decode).await {
            Ok(d) if d.is_empty() => continue,
            Ok(d) => return Ok(Some(d)),
            Err(FrameError::Closed) => return Ok(None),
            Err(FrameError::Io(e)) => return Err(e),
            Err(e) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    e.to_string(),
                ));
            }
        }
    }
}
