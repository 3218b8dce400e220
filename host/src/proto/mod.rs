//! Sans-IO codecs for the wire formats wasmray speaks: VLESS headers, the
//! VLESS address form, UDP length framing, Mux.Cool/XUDP frames, PROXY
//! protocol headers, SOCKS5 and the HTTP/1 proxy messages.
//!
//! # Why sans-IO
//!
//! Everything that touches untrusted bytes lives here, and nothing here
//! touches a socket. Each codec is a pair of plain functions over buffers:
//!
//! * `decode(&[u8]) -> Result<Option<(T, usize)>, Error>`: `Ok(None)` means
//!   "incomplete, read more" and is never an error; the `usize` is how many
//!   bytes the value used, so the caller advances its buffer and keeps the
//!   rest (the first payload bytes that share a read with a header);
//! * `encode(&T, &mut BytesMut)`, returning `Result` where the peer could not
//!   decode the value, and `encoded_len` for reserving space.
//!
//! That split keeps the protocol logic deterministic and synchronous: the
//! same code serves the server and the client, the inbound's "one first
//! read" fallback decision and a streaming mux reader; tests feed captured
//! bytes, every prefix of every encoding, and random input; fuzzers run it
//! without a runtime. The async layers (`inbound/`, `mux/`, `outbound/`)
//! own buffering, deadlines and back-pressure.
//!
//! Decoders never panic and never index unchecked: all reads go through a
//! bounds-checked cursor, and no allocation is larger than the input that
//! caused it (a domain of at most 255 bytes, addons of at most 255 bytes).
//! Errors are one `thiserror` enum per module, converted to `io::Error` at the
//! edge by the caller.

mod cursor;
pub mod http1;
#[cfg(test)]
mod test_support;

pub mod addr;
pub mod mux;
pub mod proxy_protocol;
pub mod socks5;
pub mod tls_record;
pub mod udp;
pub mod vision;
pub mod vless;

pub use addr::{AddrError, Address, Destination};
pub use mux::{Frame as MuxFrame, MuxError, MuxNetwork, Status as MuxStatus};
pub use proxy_protocol::{ProxyAddrs, ProxyError, ProxyHeader, Version as ProxyVersion};
pub use udp::UdpError;
pub use vless::{Addons, Command, RequestHeader, ResponseHeader, VlessError};
