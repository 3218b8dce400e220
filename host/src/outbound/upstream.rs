//! A connected TCP outbound as one type the relay takes: enum dispatch over the
//! four ways a session leaves the daemon, no `Box<dyn>` on the data path.

use tokio::net::TcpStream;

use super::vless::{VisionConn, VlessConn};
use crate::mux::MuxStream;

pub enum Upstream {
    Direct(TcpStream),
    Vless(VlessConn),
    /// Boxed: its padding state would size every upstream.
    Vision(Box<VisionConn>),
    Mux(MuxStream),
}

crate::util::delegate_io!(Upstream {
    Direct,
    Vless,
    Vision,
    Mux
});

impl crate::relay::Sockets for Upstream {
    fn switches(&self) -> bool {
        matches!(self, Upstream::Vision(_))
    }

    fn read_socket(&mut self) -> Option<&TcpStream> {
        match self {
            Upstream::Direct(tcp) => Some(tcp),
            Upstream::Vision(v) => v.read_socket(),
            _ => None,
        }
    }

    fn write_socket(&mut self) -> Option<&TcpStream> {
        match self {
            Upstream::Direct(tcp) => Some(tcp),
            Upstream::Vision(v) => v.write_socket(),
            _ => None,
        }
    }
}
