//! A connected TCP outbound as one type the relay takes: enum dispatch over the
//! three ways a session leaves the daemon, no `Box<dyn>` on the data path.

use tokio::net::TcpStream;

use super::vless::VlessConn;
use crate::mux::MuxStream;

pub enum Upstream {
    Direct(TcpStream),
    Vless(VlessConn),
    Mux(MuxStream),
}

crate::util::delegate_io!(Upstream { Direct, Vless, Mux });
