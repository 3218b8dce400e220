//! The `direct` outbound's UDP sockets (its TCP connects are the transport's).

use std::net::SocketAddr;

use tokio::net::UdpSocket;

/// A UDP socket for sending to `target`'s address family.
pub async fn udp_socket(target: &SocketAddr) -> std::io::Result<UdpSocket> {
    let bind: SocketAddr = if target.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    UdpSocket::bind(bind).await
}
