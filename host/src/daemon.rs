//! The running daemon: the plugin registry, one accept loop per inbound, graceful
//! shutdown (stop accepting, let sessions drain up to a bound) and plugin reloads.
//!
//! Each inbound has a semaphore of `max_connections` permits; the accept loop takes a
//! permit before it accepts, so excess connections wait in the kernel's backlog instead
//! of costing memory here, and shutdown drains by taking every permit back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use crate::config::{Config, InboundKind};
use crate::dispatch::Context;
use crate::inbound::http::HttpServer;
use crate::inbound::socks::SocksServer;
use crate::inbound::users::Users;
use crate::inbound::vless::{VlessServer, acceptor};
use crate::outbound::Outbounds;
use crate::plugin::Registry;

/// A started daemon. Dropping it stops nothing; call [`Daemon::shutdown`].
pub struct Daemon {
    /// (inbound tag, bound address), in config order.
    pub listeners: Vec<(String, SocketAddr)>,
    pub registry: Arc<Registry>,
    pub outbounds: Arc<Outbounds>,
    stop: watch::Sender<bool>,
    inbounds: Vec<(Arc<Semaphore>, u32)>,
    accept_loops: Vec<tokio::task::JoinHandle<()>>,
    _watcher: Option<notify::RecommendedWatcher>,
}

impl Daemon {
    /// Loads the plugins, binds every inbound and starts accepting.
    pub async fn start(config: &Config) -> anyhow::Result<Daemon> {
        let plugins = config.plugins.clone();
        let registry = tokio::task::spawn_blocking(move || Registry::start(plugins)).await??;
        let watcher = registry.watch()?;
        let outbounds = Arc::new(Outbounds::new(&config.outbounds));
        let (stop, stopped) = watch::channel(false);
        let mut daemon = Daemon {
            listeners: Vec::new(),
            registry: registry.clone(),
            outbounds: outbounds.clone(),
            stop,
            inbounds: Vec::new(),
            accept_loops: Vec::new(),
            _watcher: watcher,
        };
        for inbound in &config.inbounds {
            let listener = TcpListener::bind(inbound.listen).await.map_err(|e| {
                anyhow::anyhow!(
                    "inbound {}: cannot listen on {}: {e}",
                    inbound.tag,
                    inbound.listen
                )
            })?;
            let addr = listener.local_addr()?;
            let (server, max_connections) = server_for(inbound, &registry, &outbounds)?;
            let permits = u32::try_from(max_connections)
                .unwrap_or(u32::MAX >> 3)
                .min(Semaphore::MAX_PERMITS as u32);
            let semaphore = Arc::new(Semaphore::new(permits as usize));
            tracing::info!(inbound = %inbound.tag, %addr, kind = server.kind(), "listening");
            let task = tokio::spawn(accept_loop(
                listener,
                server,
                semaphore.clone(),
                stopped.clone(),
            ));
            daemon.listeners.push((inbound.tag.clone(), addr));
            daemon.inbounds.push((semaphore, permits));
            daemon.accept_loops.push(task);
        }
        Ok(daemon)
    }

    /// The bound address of the inbound tagged `tag`.
    pub fn addr(&self, tag: &str) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(t, _)| t == tag)
            .map(|(_, a)| *a)
    }

    /// Stops accepting, then waits up to `grace` for sessions in flight to end.
    /// Returns how many were still running when the grace period ended.
    pub async fn shutdown(self, grace: Duration) -> usize {
        let _ = self.stop.send(true);
        for task in self.accept_loops {
            let _ = task.await;
        }
        let drain = async {
            for (semaphore, permits) in &self.inbounds {
                let _ = semaphore.acquire_many(*permits).await;
            }
        };
        if tokio::time::timeout(grace, drain).await.is_ok() {
            return 0;
        }
        self.inbounds
            .iter()
            .map(|(s, p)| (*p as usize).saturating_sub(s.available_permits()))
            .sum()
    }
}

/// One inbound's server, by kind (enum dispatch on the accept path).
#[derive(Clone)]
enum Server {
    Vless(Arc<VlessServer>),
    Socks(Arc<SocksServer>),
    Http(Arc<HttpServer>),
}

impl Server {
    fn kind(&self) -> &'static str {
        match self {
            Server::Vless(_) => "vless over tls",
            Server::Socks(_) => "socks5",
            Server::Http(_) => "http proxy",
        }
    }

    /// A connection's task is as large as the largest future it may hold, so only the
    /// VLESS server (the hot path on a server) is inline; the client-side inbounds are
    /// boxed, so they do not size every VLESS connection's task.
    async fn serve(self, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        match self {
            Server::Vless(s) => s.serve(tcp, peer).await,
            Server::Socks(s) => Box::pin(s.serve(tcp, peer)).await,
            Server::Http(s) => Box::pin(s.serve(tcp, peer)).await,
        }
    }
}

fn server_for(
    inbound: &crate::config::InboundConfig,
    registry: &Arc<Registry>,
    outbounds: &Arc<Outbounds>,
) -> anyhow::Result<(Server, usize)> {
    let ctx = |timeouts| Context {
        registry: registry.clone(),
        outbounds: outbounds.clone(),
        timeouts,
    };
    Ok(match &inbound.kind {
        InboundKind::Vless(v) => {
            let server = VlessServer {
                tag: inbound.tag.as_str().into(),
                acceptor: acceptor(v)?,
                users: Users::new(&v.users),
                fallbacks: v.fallbacks.clone(),
                timeouts: v.timeouts,
                ctx: ctx(v.timeouts),
            };
            (Server::Vless(Arc::new(server)), v.max_connections)
        }
        InboundKind::Socks(s) => {
            let server = SocksServer {
                tag: inbound.tag.as_str().into(),
                timeouts: s.timeouts,
                ctx: ctx(s.timeouts),
                accounts: s.accounts.clone(),
                udp: s.udp,
            };
            (Server::Socks(Arc::new(server)), s.max_connections)
        }
        InboundKind::Http(h) => {
            let server = HttpServer {
                tag: inbound.tag.as_str().into(),
                timeouts: h.timeouts,
                ctx: ctx(h.timeouts),
            };
            (Server::Http(Arc::new(server)), h.max_connections)
        }
    })
}

async fn accept_loop(
    listener: TcpListener,
    server: Server,
    permits: Arc<Semaphore>,
    mut stop: watch::Receiver<bool>,
) {
    let mut next_id: u64 = 0;
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        next_id += 1;
        let span = tracing::info_span!("conn", id = next_id, source = %peer);
        let server = server.clone();
        tokio::spawn(
            async move {
                server.serve(tcp, peer).await;
                drop(permit);
            }
            .instrument(span),
        );
    }
}
