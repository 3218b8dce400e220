//! Inbounds accept connections, authenticate them and hand sessions to `dispatch`.
//! They never route.

pub mod fallback;
pub mod http;
pub mod socks;
mod socks_udp;
pub mod vless;
