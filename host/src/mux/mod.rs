//! Mux.Cool: one VLESS connection (command 3) carries many sub-streams. `tunnel` is
//! what both ends share (the sub-stream table, a sub-stream as a byte stream, the
//! inbound queues and their bounds), `outgoing` how its frames are sent; `server`
//! serves a client's tunnel. The client's pool
//! is on the outbound side (`outbound::mux_pool`), over the same tunnel.
//!
//! This is where Xray-core 24.9.30 crashed: every sub-stream's sniffer wrote into one
//! attribute map shared by the connection. Here every New frame starts a session of
//! its own, from a snapshot derived from the tunnel's (user, source, SNI, ALPN) with
//! none of its attributes, and goes through the same dispatcher (sniff window,
//! plugins, outbound, access log) as a plain VLESS connection.

mod outgoing;
mod server;
mod tunnel;

pub use crate::proto::mux::MuxNetwork;
pub use outgoing::{OUT_LIMIT, TLS_BUFFER};
pub use server::{MAX_STREAMS, SubPackets, SubSessions, serve};
pub use tunnel::{
    Delivery, MuxStream, PACKET_QUEUE, Packet, PacketWriter, STALL, STREAM_WINDOW, Tunnel,
    next_frame, write_frames,
};
