//! A connected TCP outbound as one type the relay takes: enum dispatch over the
//! three ways a session leaves the daemon, no `Box<dyn>` on the data path.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::vless::VlessStream;
use crate::mux::MuxStream;

pub enum Upstream {
    Direct(TcpStream),
    Vless(Box<VlessStream>),
    Mux(MuxStream),
}

impl AsyncRead for Upstream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Upstream::Direct(s) => Pin::new(s).poll_read(cx, buf),
            Upstream::Vless(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Upstream::Mux(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Upstream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Upstream::Direct(s) => Pin::new(s).poll_write(cx, data),
            Upstream::Vless(s) => Pin::new(s.as_mut()).poll_write(cx, data),
            Upstream::Mux(s) => Pin::new(s).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Upstream::Direct(s) => Pin::new(s).poll_flush(cx),
            Upstream::Vless(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Upstream::Mux(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Upstream::Direct(s) => Pin::new(s).poll_shutdown(cx),
            Upstream::Vless(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
            Upstream::Mux(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
