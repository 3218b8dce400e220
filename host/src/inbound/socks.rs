//! The SOCKS5 inbound (no authentication; CONNECT): the client side's entry point.
//! Replies success before dialing (as v2ray does), then hands the session to
//! `dispatch`, which sniffs, routes (so private ranges can go direct and the rest
//! through a vless outbound) and relays. UDP ASSOCIATE is answered "command not
//! supported" for now.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::vless::target_of;
use crate::config::Timeouts;
use crate::dispatch::{self, Context};
use crate::proto::socks5::{self, Greeting, Request, Socks5Error};
use crate::session::{Network, SnapshotFields};

pub struct SocksServer {
    pub tag: Arc<str>,
    pub timeouts: Timeouts,
    pub ctx: Context,
}

#[derive(Debug, thiserror::Error)]
enum SocksError {
    #[error("{0}")]
    Protocol(#[from] Socks5Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("closed during the handshake")]
    Closed,
    #[error("handshake timed out")]
    Timeout,
    #[error("no acceptable authentication method")]
    NoMethod,
    #[error("command {0} not supported")]
    Command(u8),
}

impl SocksServer {
    pub async fn serve(self: Arc<Self>, mut tcp: TcpStream, peer: SocketAddr) {
        let started = Instant::now();
        let _ = tcp.set_nodelay(true);
        let handshake = tokio::time::timeout(self.timeouts.handshake, handshake(&mut tcp));
        let (request, held) = match handshake.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return self.rejected(peer, started, e),
            Err(_) => return self.rejected(peer, started, SocksError::Timeout),
        };
        let snapshot =
            SnapshotFields::new(&self.tag, peer, Network::Tcp, target_of(&request.target)).freeze();
        dispatch::tcp_session(&self.ctx, snapshot, tcp, held, &[]).await;
    }

    fn rejected(&self, peer: SocketAddr, started: Instant, why: SocksError) {
        dispatch::log_rejected(&self.tag, peer, started, &why);
    }
}

/// Greeting, method choice, request and reply; returns the request and any bytes the
/// client sent after it.
async fn handshake(tcp: &mut TcpStream) -> Result<(Request, BytesMut), SocksError> {
    let mut buf = BytesMut::with_capacity(512);
    let greeting = read_until(tcp, &mut buf, Greeting::decode).await?;
    if !greeting.methods.contains(&socks5::NO_AUTH) {
        tcp.write_all(&[socks5::VERSION, socks5::NO_ACCEPTABLE])
            .await?;
        return Err(SocksError::NoMethod);
    }
    tcp.write_all(&[socks5::VERSION, socks5::NO_AUTH]).await?;
    let request = read_until(tcp, &mut buf, Request::decode).await?;
    let mut reply = BytesMut::new();
    let bound = SocketAddr::from(([0, 0, 0, 0], 0));
    if request.command != socks5::CMD_CONNECT {
        socks5::encode_reply(socks5::COMMAND_NOT_SUPPORTED, bound, &mut reply);
        tcp.write_all(&reply).await?;
        return Err(SocksError::Command(request.command));
    }
    socks5::encode_reply(socks5::SUCCEEDED, bound, &mut reply);
    tcp.write_all(&reply).await?;
    Ok((request, buf))
}

/// A sans-IO SOCKS5 decoder (`Greeting::decode`, `Request::decode`).
type Decoder<T> = fn(&[u8]) -> Result<Option<(T, usize)>, Socks5Error>;

/// Reads until `decode` gives a value (at most 600 bytes: a SOCKS5 message is shorter).
async fn read_until<T>(
    tcp: &mut TcpStream,
    buf: &mut BytesMut,
    decode: Decoder<T>,
) -> Result<T, SocksError> {
    loop {
        if let Some((value, used)) = decode(buf)? {
            buf.advance(used);
            return Ok(value);
        }
        if buf.len() > 600 || tcp.read_buf(buf).await? == 0 {
            return Err(SocksError::Closed);
        }
    }
}
