//! Mux.Cool: one VLESS connection (command 3) carries many sub-streams. The server
//! side (`server`, `substream`, `xudp`) and the client's pool (`client`).
//!
//! This is where Xray-core 24.9.30 crashed: every sub-stream's sniffer wrote into one
//! attribute map shared by the connection. Here every New frame starts a session of
//! its own, from a snapshot derived from the tunnel's (user, source, SNI, ALPN) with
//! none of its attributes, and goes through the same sniff window, plugin pipeline,
//! outbound and access log as a plain VLESS connection (`dispatch`).

mod client;
mod server;
mod substream;
pub mod xudp;

pub use client::{MAX_SESSIONS, MuxClient, MuxPacketTx, MuxPackets, MuxStream};
pub use server::{MAX_STREAMS, serve};
