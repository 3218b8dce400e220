//! Full-cone UDP from the `direct` outbound, for XUDP clients: one unconnected socket
//! serves every destination of a sub-session, so each sees the same source port, and
//! replies come back tagged with their source.
//!
//! GlobalID reuse: a flow opened with a non-zero GlobalID that was seen before takes
//! over the earlier flow's socket (the earlier one, if still open, is told to stop), so
//! the external port survives a client reconnect. A closed flow's socket is kept for
//! [`REUSE_FOR`] for that.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::sync::Notify;

use crate::proto::Destination;
use crate::session::Target;
use crate::transport::resolve;

/// How long a closed flow's socket waits for its GlobalID to come back.
pub const REUSE_FOR: Duration = Duration::from_secs(60);

struct Entry {
    socket: Arc<UdpSocket>,
    /// Wakes the flow that owns the socket now, to hand it over.
    owner: Arc<Notify>,
    /// When the socket may be dropped (set when its flow closed).
    expires: Option<Instant>,
}

fn registry() -> &'static Mutex<HashMap<[u8; 8], Entry>> {
    static IDS: OnceLock<Mutex<HashMap<[u8; 8], Entry>>> = OnceLock::new();
    IDS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The sending half: to each datagram's own destination.
pub struct ConeTx {
    socket: Arc<UdpSocket>,
    target: Destination,
}

/// The receiving half; dropping it releases the socket for reuse.
pub struct ConeRx {
    socket: Arc<UdpSocket>,
    buf: Vec<u8>,
    owner: Arc<Notify>,
    global_id: Option<[u8; 8]>,
}

/// Opens a full-cone flow whose datagrams without an address go to `target`.
pub async fn open(
    target: &Target,
    global_id: Option<[u8; 8]>,
) -> std::io::Result<(ConeTx, ConeRx)> {
    let owner = Arc::new(Notify::new());
    let socket = socket_for(global_id, &owner).await?;
    let tx = ConeTx {
        socket: socket.clone(),
        target: target.destination(),
    };
    let rx = ConeRx {
        socket,
        buf: vec![0; 64 * 1024],
        owner,
        global_id,
    };
    Ok((tx, rx))
}

/// The socket for `global_id`: the earlier one (taken over) or a new one.
async fn socket_for(
    global_id: Option<[u8; 8]>,
    owner: &Arc<Notify>,
) -> std::io::Result<Arc<UdpSocket>> {
    if let Some(id) = global_id {
        let mut ids = crate::util::lock(registry());
        ids.retain(|_, e| e.expires.is_none_or(|t| t > Instant::now()));
        if let Some(entry) = ids.get_mut(&id) {
            entry.owner.notify_one();
            entry.owner = owner.clone();
            entry.expires = None;
            return Ok(entry.socket.clone());
        }
    }
    let socket = Arc::new(UdpSocket::bind((std::net::Ipv6Addr::UNSPECIFIED, 0)).await?);
    if let Some(id) = global_id {
        let entry = Entry {
            socket: socket.clone(),
            owner: owner.clone(),
            expires: None,
        };
        crate::util::lock(registry()).insert(id, entry);
    }
    Ok(socket)
}

impl ConeTx {
    /// Sends to `dest` (or the flow's target); a name that does not resolve drops the
    /// datagram, as an unroutable UDP packet is dropped.
    pub async fn send(&self, dest: Option<&Destination>, datagram: &[u8]) -> std::io::Result<()> {
        let dest = dest.unwrap_or(&self.target);
        if let Some(addr) = dual_stack(dest).await {
            self.socket.send_to(datagram, addr).await?;
        }
        Ok(())
    }
}

impl ConeRx {
    /// The next datagram and its source; `None` once another flow took the socket over.
    pub async fn recv(&mut self) -> std::io::Result<Option<(Option<SocketAddr>, Bytes)>> {
        tokio::select! {
            r = self.socket.recv_from(&mut self.buf) => {
                let (n, from) = r?;
                let from = SocketAddr::new(from.ip().to_canonical(), from.port());
                Ok(Some((Some(from), Bytes::copy_from_slice(self.buf.get(..n).unwrap_or_default()))))
            }
            () = self.owner.notified() => Ok(None),
        }
    }
}

impl Drop for ConeRx {
    /// Marks the socket of the GlobalID for reuse, if this flow still owns it.
    fn drop(&mut self) {
        let Some(id) = self.global_id else { return };
        let mut ids = crate::util::lock(registry());
        if let Some(entry) = ids.get_mut(&id)
            && Arc::ptr_eq(&entry.owner, &self.owner)
        {
            entry.expires = Some(Instant::now() + REUSE_FOR);
        }
    }
}

/// The destination as an address the dual-stack socket can send to.
async fn dual_stack(dest: &Destination) -> Option<SocketAddr> {
    let addr = *resolve(&Target::from(dest)).await.ok()?.first()?;
    Some(match addr.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    })
}
