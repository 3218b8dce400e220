//! The SOCKS5 inbound: the client side's entry point. No authentication or
//! username/password (RFC 1929, checked in constant time); CONNECT and UDP ASSOCIATE
//! (`socks_udp`); other commands are answered "command not supported".
//!
//! CONNECT sessions go to `dispatch`, which sniffs, routes (so private ranges can go
//! direct and the rest through a vless outbound) and relays. When the pipeline sniffs,
//! success is answered before the sniff window (the client sends nothing until it is
//! answered; Xray always answers first); without sniffers the outbound is connected
//! first and a failure gets its code (refused, unreachable, not allowed, TTL expired).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use subtle::ConstantTimeEq;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::vless::target_of;
use crate::config::{Account, Timeouts};
use crate::dispatch::{self, Context, Reply};
use crate::outbound::Failure;
use crate::proto::socks5::{self, Credentials, Greeting, Request, Socks5Error};
use crate::session::{Network, SnapshotFields};

pub struct SocksServer {
    pub tag: Arc<str>,
    pub timeouts: Timeouts,
    /// Connections served at once (the accept loop's permits).
    pub max_connections: usize,
    pub ctx: Context,
    /// Empty: no authentication.
    pub accounts: Vec<Account>,
    /// Answer UDP ASSOCIATE.
    pub udp: bool,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum SocksError {
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
    #[error("wrong username or password")]
    Credentials,
    #[error("command {0} not supported")]
    Command(u8),
}

/// The success reply to CONNECT (the bound address is not meaningful here; v2ray and
/// sing-box send zeros too).
const CONNECTED: [u8; 10] = [socks5::VERSION, socks5::SUCCEEDED, 0, 1, 0, 0, 0, 0, 0, 0];

fn failure_reply(failure: Failure) -> Vec<u8> {
    let code = match failure {
        Failure::Blocked => socks5::NOT_ALLOWED,
        Failure::UnknownHost | Failure::Unreachable => socks5::HOST_UNREACHABLE,
        Failure::Refused => socks5::CONNECTION_REFUSED,
        Failure::TimedOut => socks5::TTL_EXPIRED,
        Failure::Other => socks5::GENERAL_FAILURE,
    };
    let mut reply = BytesMut::new();
    socks5::encode_reply(code, SocketAddr::from(([0, 0, 0, 0], 0)), &mut reply);
    reply.to_vec()
}

/// What the handshake settled.
struct Handshake {
    request: Request,
    user: Option<Arc<str>>,
    held: BytesMut,
}

impl SocksServer {
    pub async fn serve(self: Arc<Self>, mut tcp: TcpStream, peer: SocketAddr) {
        let started = Instant::now();
        let _ = tcp.set_nodelay(true);
        let handshake = tokio::time::timeout(self.timeouts.handshake, self.handshake(&mut tcp));
        let hs = match handshake.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return self.rejected(peer, started, e),
            Err(_) => return self.rejected(peer, started, SocksError::Timeout),
        };
        match hs.request.command {
            socks5::CMD_CONNECT => {
                let target = target_of(&hs.request.target);
                let mut fields = SnapshotFields::new(&self.tag, peer, Network::Tcp, target);
                fields.user = hs.user;
                let reply = Reply {
                    success: &CONNECTED,
                    client_waits: true,
                    failure: failure_reply,
                };
                dispatch::tcp_session(&self.ctx, fields.freeze(), tcp, hs.held, &reply).await;
            }
            socks5::CMD_UDP_ASSOCIATE if self.udp => {
                if let Err(e) = super::socks_udp::associate(&self, tcp, peer, hs.user).await {
                    self.rejected(peer, started, e);
                }
            }
            other => {
                let mut reply = BytesMut::new();
                let bound = SocketAddr::from(([0, 0, 0, 0], 0));
                socks5::encode_reply(socks5::COMMAND_NOT_SUPPORTED, bound, &mut reply);
                let _ = tcp.write_all(&reply).await;
                self.rejected(peer, started, SocksError::Command(other));
            }
        }
    }

    fn rejected(&self, peer: SocketAddr, started: Instant, why: SocksError) {
        dispatch::log_rejected(&self.tag, peer, started, &why);
    }

    /// Greeting, method choice, authentication and the request (not yet answered).
    async fn handshake(&self, tcp: &mut TcpStream) -> Result<Handshake, SocksError> {
        let mut buf = BytesMut::with_capacity(512);
        let greeting = read_until(tcp, &mut buf, Greeting::decode).await?;
        let method = if self.accounts.is_empty() {
            socks5::NO_AUTH
        } else {
            socks5::USER_PASS
        };
        if !greeting.methods.contains(&method) {
            tcp.write_all(&[socks5::VERSION, socks5::NO_ACCEPTABLE])
                .await?;
            return Err(SocksError::NoMethod);
        }
        tcp.write_all(&[socks5::VERSION, method]).await?;
        let user = if method == socks5::USER_PASS {
            let credentials = read_until(tcp, &mut buf, Credentials::decode).await?;
            let Some(user) = self.authenticate(&credentials) else {
                tcp.write_all(&[socks5::AUTH_VERSION, socks5::AUTH_FAILED])
                    .await?;
                return Err(SocksError::Credentials);
            };
            tcp.write_all(&[socks5::AUTH_VERSION, socks5::AUTH_OK])
                .await?;
            Some(user)
        } else {
            None
        };
        let request = read_until(tcp, &mut buf, Request::decode).await?;
        Ok(Handshake {
            request,
            user,
            held: buf,
        })
    }

    /// The account matching `c`, comparing every account's name and password in
    /// constant time.
    fn authenticate(&self, c: &Credentials) -> Option<Arc<str>> {
        let mut found = None;
        for account in &self.accounts {
            let user = account.user.as_bytes().ct_eq(&c.user);
            let pass = account.pass.as_bytes().ct_eq(&c.pass);
            if bool::from(user & pass) {
                found = Some(Arc::from(account.user.as_str()));
            }
        }
        found
    }
}

/// A sans-IO SOCKS5 decoder (`Greeting::decode`, `Request::decode`, ...).
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
