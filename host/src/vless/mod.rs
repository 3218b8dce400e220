//! The VLESS layer, over whatever stream the security layer hands up: the server's
//! handshake (user, fallback decision, request header), the client's request and
//! response header, the users a server knows, and the XTLS Vision flow over both.
//! Nothing here knows what the session carries; only Vision reaches under the security
//! layer (`security::Peel`), for its switch to the raw socket.

pub mod client;
pub mod flow;
pub mod server;
pub mod users;
pub mod vision;

pub use client::VlessStream;
pub use server::{Handshake, HandshakeError, RESPONSE};
pub use vision::VisionStream;
