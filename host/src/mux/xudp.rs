//! XUDP: full-cone UDP over Mux.Cool, as Xray's and sing-box's clients send it (spec
//! 2.5). One sub-session (usually id 0) carries datagrams to many destinations: Keep
//! frames name each packet's destination, and replies come back tagged with their
//! source. One unconnected UDP socket serves the sub-session, so every destination
//! sees the same source port.
//!
//! GlobalID reuse: a New frame with a non-zero GlobalID that was seen before takes over
//! that earlier sub-session's socket (the earlier one, if still open, is told to stop),
//! so the external port survives a client reconnect. A closed sub-session's socket is
//! kept for one minute for that. An all-zero GlobalID means no reuse.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc};

use super::substream::send_frame;
use crate::dispatch::{Context, Outcome, access_log, route_without_payload};
use crate::inbound::vless::target_of;
use crate::proto::mux::Frame;
use crate::proto::{Address, Destination};
use crate::relay::Traffic;
use crate::session::Snapshot;

/// How long a closed sub-session's socket waits for its GlobalID to come back.
pub const REUSE_FOR: Duration = Duration::from_secs(60);

/// A packet from the client: its destination (None: the New frame's) and payload.
pub type Packet = (Option<Destination>, Bytes);

struct Entry {
    socket: Arc<UdpSocket>,
    /// Wakes the sub-session that owns the socket now, to hand it over.
    owner: Arc<Notify>,
    /// When the socket may be dropped (set when its sub-session closed).
    expires: Option<Instant>,
}

fn registry() -> &'static Mutex<HashMap<[u8; 8], Entry>> {
    static IDS: OnceLock<Mutex<HashMap<[u8; 8], Entry>>> = OnceLock::new();
    IDS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The socket for `global_id`: the earlier one (taken over) or a new one.
async fn socket_for(
    global_id: Option<[u8; 8]>,
    owner: &Arc<Notify>,
) -> std::io::Result<Arc<UdpSocket>> {
    if let Some(id) = global_id {
        let mut ids = registry().lock().unwrap_or_else(|p| p.into_inner());
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
        registry()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, entry);
    }
    Ok(socket)
}

/// Marks the socket of `global_id` for reuse, if this sub-session still owns it.
fn release(global_id: Option<[u8; 8]>, owner: &Arc<Notify>) {
    let Some(id) = global_id else { return };
    let mut ids = registry().lock().unwrap_or_else(|p| p.into_inner());
    if let Some(entry) = ids.get_mut(&id)
        && Arc::ptr_eq(&entry.owner, owner)
    {
        entry.expires = Some(Instant::now() + REUSE_FOR);
    }
}

/// Serves one XUDP sub-session until the client ends it, the socket is taken over, or
/// it is idle for the idle timeout; then sends End.
pub async fn session(
    ctx: Context,
    snapshot: Snapshot,
    target: Destination,
    global_id: Option<[u8; 8]>,
    mut uplink: mpsc::Receiver<Packet>,
    id: u16,
    frames: mpsc::Sender<BytesMut>,
) {
    let started = Instant::now();
    let Some((decided, outbound)) = route_without_payload(&ctx, &snapshot, started) else {
        let _ = send_frame(&frames, &Frame::end(id, false)).await;
        return;
    };
    let tag = Some(outbound.tag.clone());
    // Full cone needs one unconnected socket here: only `direct` can give it.
    let blocked = !matches!(outbound.kind, crate::config::OutboundKind::Direct { .. });
    let owner = Arc::new(Notify::new());
    let (traffic, outcome) = if blocked {
        (Traffic::default(), Outcome::Blocked)
    } else {
        match socket_for(global_id, &owner).await {
            Ok(socket) => {
                let t = pump(
                    &socket,
                    &mut uplink,
                    &target,
                    id,
                    &frames,
                    &owner,
                    ctx.timeouts.idle,
                )
                .await;
                release(global_id, &owner);
                (t, Outcome::Ok)
            }
            Err(_) => (Traffic::default(), Outcome::Error),
        }
    };
    let _ = send_frame(&frames, &Frame::end(id, outcome == Outcome::Error)).await;
    access_log(&decided, tag.as_deref(), traffic, started, outcome);
}

async fn pump(
    socket: &UdpSocket,
    uplink: &mut mpsc::Receiver<Packet>,
    first: &Destination,
    id: u16,
    frames: &mpsc::Sender<BytesMut>,
    owner: &Notify,
    idle: Duration,
) -> Traffic {
    let mut traffic = Traffic::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        tokio::select! {
            packet = uplink.recv() => {
                let Some((dest, data)) = packet else { return traffic };
                let dest = dest.as_ref().unwrap_or(first);
                if let Some(addr) = resolve(dest).await
                    && socket.send_to(&data, addr).await.is_ok()
                {
                    traffic.up += data.len() as u64;
                }
            }
            received = socket.recv_from(&mut buf) => {
                let Ok((n, from)) = received else { return traffic };
                let source = Destination::new(Address::from_ip(from.ip()), from.port());
                let mut frame = BytesMut::with_capacity(n + 32);
                let data = buf.get(..n).unwrap_or_default();
                if Frame::keep_udp(id, source, data).encode(&mut frame).is_ok() {
                    if frames.send(frame).await.is_err() {
                        return traffic;
                    }
                    traffic.down += n as u64;
                }
            }
            _ = owner.notified() => return traffic,
            _ = tokio::time::sleep(idle) => return traffic,
        }
    }
}

/// The destination as an address the dual-stack socket can send to.
async fn resolve(dest: &Destination) -> Option<SocketAddr> {
    let target = target_of(dest);
    let addr = *crate::outbound::resolve(&target).await.ok()?.first()?;
    Some(match addr.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), addr.port()),
        IpAddr::V6(_) => addr,
    })
}
