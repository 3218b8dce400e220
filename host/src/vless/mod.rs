//! The VLESS layer, over whatever stream the security layer hands up: the server's
//! handshake (user, fallback decision, request header), the client's request and
//! response header, and the users a server knows. The flow of XTLS Vision belongs here
//! too. Nothing here knows TLS, TCP or what the session carries.

pub mod client;
pub mod server;
pub mod users;

pub use client::VlessStream;
pub use server::{Handshake, HandshakeError, RESPONSE};
