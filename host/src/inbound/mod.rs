//! Inbounds accept connections, authenticate them and hand sessions to `dispatch`.
//! They never route.

pub mod fallback;
pub mod socks;
pub mod users;
pub mod vless;
