//! The running daemon: the plugin registry, one accept loop per inbound, graceful
//! shutdown (stop accepting, let sessions drain up to a bound) and whole-config reloads.
//!
//! Each inbound has a semaphore of `max_connections` permits; the accept loop takes a
//! permit before it accepts, so excess connections wait in the kernel's backlog instead
//! of costing memory here, and a drain takes every permit back.
//!
//! A reload ([`Daemon::reload`]) builds everything the new config needs first (the
//! plugin pipeline, outbounds, TLS acceptors, user lists, the listeners of new
//! addresses) and changes nothing if any of it fails. Then it commits: an inbound
//! whose listen address stays keeps its listener and socket backlog and serves new
//! connections with its new settings (certificate, users, fallbacks, timeouts); new
//! addresses start accepting; inbounds that are gone stop accepting and drain for the
//! grace period before their last sessions are closed. Running sessions keep the
//! outbounds and pipeline they started with; only a removed user's sessions end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::Instrument;

use crate::config::DnsConfig;
use crate::config::{Config, InboundConfig, InboundKind};
use crate::dispatch::Dispatcher;
use crate::dns::Resolver;
use crate::inbound::http::HttpServer;
use crate::inbound::socks::SocksServer;
use crate::inbound::vless::VlessServer;
use crate::ledger::Ledger;
use crate::metrics::{Held, Metrics};
use crate::outbound::Outbounds;
use crate::plugin::Registry;
use crate::security::ServerSecurity;
use crate::stats::Stats;
use crate::vless::users::Users;

/// A started daemon. Dropping it stops nothing; call [`Daemon::shutdown`].
pub struct Daemon {
    pub registry: Arc<Registry>,
    /// Kept across reloads: counters are never unregistered, as in Xray.
    pub stats: Arc<Stats>,
    /// Kept across reloads, as the stats core.
    pub metrics: Arc<Metrics>,
    /// `[api] persist`, opened at start (fixed, like the rest of `[api]`).
    ledger: Option<Ledger>,
    outbounds: ArcSwap<Outbounds>,
    state: tokio::sync::Mutex<State>,
    /// `[dns]` and its resolver: a reload that leaves `[dns]` alone keeps the cache.
    dns: std::sync::Mutex<(DnsConfig, Resolver)>,
    watcher: std::sync::Mutex<Option<notify::RecommendedWatcher>>,
}

#[derive(Default)]
struct State {
    inbounds: Vec<Running>,
    /// Inbounds a reload removed, still draining.
    retiring: Vec<tokio::task::JoinHandle<()>>,
}

/// One inbound that accepts.
struct Running {
    tag: String,
    /// The configured address (`127.0.0.1:0` stays itself across reloads).
    listen: SocketAddr,
    /// The bound address.
    addr: SocketAddr,
    server: Arc<ArcSwap<Server>>,
    gate: Gate,
    accept_loop: tokio::task::JoinHandle<()>,
}

/// What one reload changed, for the log and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    pub inbounds_kept: usize,
    pub inbounds_added: usize,
    pub inbounds_removed: usize,
    pub users_revoked: usize,
}

impl Daemon {
    /// Loads the plugins, binds every inbound and starts accepting.
    pub async fn start(config: &Config) -> anyhow::Result<Daemon> {
        let persist = config.api.as_ref().and_then(|a| a.persist.as_deref());
        let ledger = persist.map(Ledger::open).transpose()?;
        let stats = Arc::new(Stats::new(config.stats.enabled));
        let per_user = config.metrics.is_some_and(|m| m.per_user);
        let metrics = Arc::new(Metrics::new(stats.clone(), per_user));
        let plugins = config.plugins.clone();
        let plugin_metrics = metrics.plugins.clone();
        let registry =
            tokio::task::spawn_blocking(move || Registry::start_metered(plugins, plugin_metrics))
                .await??;
        let watcher = registry.watch()?;
        let outbounds = Arc::new(Outbounds::new(&config.outbounds)?);
        register_counters(&stats, config);
        let base = Dispatcher {
            registry: registry.clone(),
            outbounds: outbounds.clone(),
            stats: stats.clone(),
            metrics: metrics.clone(),
            timeouts: Default::default(),
            resolver: Resolver::new(&config.dns),
        };
        let mut state = State::default();
        for inbound in &config.inbounds {
            let server = server_for(inbound, &base, None, ledger.as_ref())?;
            let listener = bind(inbound).await?;
            state
                .inbounds
                .push(Running::start(inbound, listener, server, &metrics)?);
        }
        Ok(Daemon {
            registry,
            stats,
            metrics,
            ledger,
            outbounds: ArcSwap::new(outbounds),
            state: tokio::sync::Mutex::new(state),
            dns: std::sync::Mutex::new((config.dns.clone(), base.resolver.clone())),
            watcher: std::sync::Mutex::new(watcher),
        })
    }

    /// (inbound tag, bound address) of every inbound, in config order.
    pub async fn listeners(&self) -> Vec<(String, SocketAddr)> {
        let state = self.state.lock().await;
        state
            .inbounds
            .iter()
            .map(|r| (r.tag.clone(), r.addr))
            .collect()
    }

    /// The bound address of the inbound tagged `tag`.
    pub async fn addr(&self, tag: &str) -> Option<SocketAddr> {
        let listeners = self.listeners().await;
        listeners
            .into_iter()
            .find(|(t, _)| t == tag)
            .map(|(_, a)| a)
    }

    /// The inbound tagged `tag`, for the management API: `None` if there is none,
    /// `Some(None)` if it is not VLESS (no user list to manage).
    pub async fn vless_inbound(&self, tag: &str) -> Option<Option<Arc<VlessServer>>> {
        let state = self.state.lock().await;
        let running = state.inbounds.iter().find(|r| r.tag == tag)?;
        Some(match &**running.server.load() {
            Server::Vless(v) => Some(Arc::clone(v)),
            _ => None,
        })
    }

    /// Where the API's user changes are kept, if `[api] persist` is set.
    pub fn ledger(&self) -> Option<&Ledger> {
        self.ledger.as_ref()
    }

    /// The outbounds new sessions use.
    pub fn outbounds(&self) -> Arc<Outbounds> {
        self.outbounds.load_full()
    }

    /// Applies `config` whole, or nothing of it (see the module docs). Inbounds that
    /// are removed drain for up to `grace`.
    pub async fn reload(&self, config: &Config, grace: Duration) -> anyhow::Result<ReloadSummary> {
        let result = self.apply(config, grace).await;
        self.metrics.reloaded(result.is_ok());
        result
    }

    async fn apply(&self, config: &Config, grace: Duration) -> anyhow::Result<ReloadSummary> {
        let mut state = self.state.lock().await;
        let registry = self.registry.clone();
        let plugins = config.plugins.clone();
        let watched = registry.watched_dirs();
        let pipeline = tokio::task::spawn_blocking(move || registry.prepare(plugins)).await??;
        let outbounds = Arc::new(Outbounds::new(&config.outbounds)?);
        register_counters(&self.stats, config);
        let base = Dispatcher {
            registry: self.registry.clone(),
            outbounds: outbounds.clone(),
            stats: self.stats.clone(),
            metrics: self.metrics.clone(),
            timeouts: Default::default(),
            resolver: self.resolver_for(&config.dns),
        };
        let plan = plan(&state, config, &base, self.ledger.as_ref()).await?;

        // Nothing has failed: commit.
        self.registry.commit(pipeline);
        if self.registry.watched_dirs() != watched {
            self.rewatch();
        }
        self.outbounds.store(outbounds);
        let mut summary = ReloadSummary::default();
        let mut old: Vec<Option<Running>> = state.inbounds.drain(..).map(Some).collect();
        let mut next = Vec::new();
        for step in plan {
            match step {
                Step::Keep { index, tag, server } => {
                    let running = old
                        .get_mut(index)
                        .and_then(Option::take)
                        .expect("the plan keeps each running inbound once");
                    summary.users_revoked += revoke_missing(&running.server.load(), &server);
                    running.server.store(Arc::new(server));
                    next.push(Running { tag, ..running });
                    summary.inbounds_kept += 1;
                }
                Step::Add {
                    inbound,
                    listener,
                    server,
                } => {
                    next.push(Running::start(&inbound, listener, server, &self.metrics)?);
                    summary.inbounds_added += 1;
                }
            }
        }
        for running in old.into_iter().flatten() {
            tracing::info!(inbound = %running.tag, addr = %running.addr, "inbound removed by a reload; draining for up to {grace:?}");
            summary.inbounds_removed += 1;
            state.retiring.push(tokio::spawn(running.retire(grace)));
        }
        state.retiring.retain(|t| !t.is_finished());
        state.inbounds = next;
        crate::logging::set_level(&config.log.level);
        tracing::info!(?summary, "configuration reloaded");
        Ok(summary)
    }

    /// Watches the (new) plugin and geodata directories instead of the old ones.
    /// The running resolver if `dns` is what it was built from, else a new one, which
    /// the next reload compares with (even if this reload then fails: the sessions
    /// of the old config keep the old resolver, and a cache is all that is lost).
    fn resolver_for(&self, dns: &DnsConfig) -> Resolver {
        let mut current = self.dns.lock().unwrap_or_else(|e| e.into_inner());
        if current.0 != *dns {
            *current = (dns.clone(), Resolver::new(dns));
        }
        current.1.clone()
    }

    fn rewatch(&self) {
        let mut watcher = crate::util::lock(&self.watcher);
        *watcher = None;
        match self.registry.watch() {
            Ok(w) => *watcher = w,
            Err(e) => tracing::warn!("cannot watch the plugin directory: {e:#}"),
        }
    }

    /// Stops accepting, then waits up to `grace` for sessions in flight to end.
    /// Returns how many were still running when the grace period ended.
    pub async fn shutdown(&self, grace: Duration) -> usize {
        let state = std::mem::take(&mut *self.state.lock().await);
        for running in &state.inbounds {
            running.gate.stop_accepting();
        }
        let mut gates = Vec::new();
        for running in state.inbounds {
            let _ = running.accept_loop.await;
            gates.push(running.gate);
        }
        let drain = async {
            for gate in &gates {
                gate.drained().await;
            }
        };
        let left = match tokio::time::timeout(grace, drain).await {
            Ok(()) => 0,
            Err(_) => gates.iter().map(Gate::open_sessions).sum(),
        };
        for task in state.retiring {
            task.abort();
        }
        left
    }
}

/// What a reload does with each inbound of the new config, in config order.
enum Step {
    /// The running inbound at `index` has the same listen address: new settings.
    Keep {
        index: usize,
        tag: String,
        server: Server,
    },
    /// A new address: its listener is already bound.
    Add {
        inbound: Box<InboundConfig>,
        listener: TcpListener,
        server: Server,
    },
}

/// Builds every server and binds every new listener; any failure drops them all
/// (closing the new listeners) and leaves the daemon as it was.
async fn plan(
    state: &State,
    config: &Config,
    base: &Dispatcher,
    ledger: Option<&Ledger>,
) -> anyhow::Result<Vec<Step>> {
    let mut taken = vec![false; state.inbounds.len()];
    let mut steps = Vec::new();
    for inbound in &config.inbounds {
        let previous = state
            .inbounds
            .iter()
            .find(|r| r.tag == inbound.tag)
            .map(|r| r.server.load_full());
        let users = previous.as_deref().and_then(Server::users);
        let server = server_for(inbound, base, users.as_deref(), ledger)?;
        // The same address keeps its listener: the same tag's first, else any.
        let free = |i: usize, r: &Running| !taken[i] && r.listen == inbound.listen;
        let same_address = (state.inbounds.iter().enumerate())
            .position(|(i, r)| free(i, r) && r.tag == inbound.tag)
            .or_else(|| (state.inbounds.iter().enumerate()).position(|(i, r)| free(i, r)));
        match same_address {
            Some(index) => {
                taken[index] = true;
                steps.push(Step::Keep {
                    index,
                    tag: inbound.tag.clone(),
                    server,
                });
            }
            None => steps.push(Step::Add {
                inbound: Box::new(inbound.clone()),
                listener: bind(inbound).await?,
                server,
            }),
        }
    }
    Ok(steps)
}

/// Revokes the users `old` has and `new` lacks (both VLESS; else nothing).
fn revoke_missing(old: &Server, new: &Server) -> usize {
    match (old.users(), new.users()) {
        (Some(old), Some(new)) => old.revoke_missing(&new),
        (Some(old), None) => old.revoke_missing(&Users::default()),
        _ => 0,
    }
}

async fn bind(inbound: &InboundConfig) -> anyhow::Result<TcpListener> {
    TcpListener::bind(inbound.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "inbound {}: cannot listen on {}: {e}",
            inbound.tag,
            inbound.listen
        )
    })
}

impl Running {
    fn start(
        inbound: &InboundConfig,
        listener: TcpListener,
        server: Server,
        metrics: &Metrics,
    ) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let gate = Gate::new(server.max_connections());
        tracing::info!(inbound = %inbound.tag, %addr, kind = server.kind(), "listening");
        let server = Arc::new(ArcSwap::from_pointee(server));
        let open = metrics.connections(&inbound.tag);
        let accept_loop = tokio::spawn(accept_loop(listener, server.clone(), gate.clone(), open));
        Ok(Running {
            tag: inbound.tag.clone(),
            listen: inbound.listen,
            addr,
            server,
            gate,
            accept_loop,
        })
    }

    /// Stops accepting, lets sessions drain for up to `grace`, then closes the rest.
    async fn retire(self, grace: Duration) {
        self.gate.stop_accepting();
        let _ = self.accept_loop.await;
        if tokio::time::timeout(grace, self.gate.drained())
            .await
            .is_err()
        {
            let left = self.gate.open_sessions();
            tracing::info!(inbound = %self.tag, "closing {left} sessions of a removed inbound after {grace:?}");
            self.gate.close_sessions();
        }
    }
}

/// An inbound's permits and its two signals: stop accepting, and close the sessions.
#[derive(Clone)]
struct Gate {
    permits: Arc<Semaphore>,
    total: u32,
    stop: Arc<watch::Sender<bool>>,
    close: Arc<watch::Sender<bool>>,
}

impl Gate {
    fn new(max_connections: usize) -> Self {
        let total = u32::try_from(max_connections)
            .unwrap_or(u32::MAX >> 3)
            .min(Semaphore::MAX_PERMITS as u32);
        Gate {
            permits: Arc::new(Semaphore::new(total as usize)),
            total,
            stop: Arc::new(watch::Sender::new(false)),
            close: Arc::new(watch::Sender::new(false)),
        }
    }

    fn stop_accepting(&self) {
        self.stop.send_replace(true);
    }

    fn close_sessions(&self) {
        self.close.send_replace(true);
    }

    async fn drained(&self) {
        let _ = self.permits.acquire_many(self.total).await;
    }

    fn open_sessions(&self) -> usize {
        (self.total as usize).saturating_sub(self.permits.available_permits())
    }
}

/// Resolves once `flag` is raised.
async fn raised(mut flag: watch::Receiver<bool>) {
    let _ = flag.wait_for(|v| *v).await;
}

/// One inbound's server, by kind (enum dispatch on the accept path).
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

    fn max_connections(&self) -> usize {
        match self {
            Server::Vless(s) => s.max_connections,
            Server::Socks(s) => s.max_connections,
            Server::Http(s) => s.max_connections,
        }
    }

    fn users(&self) -> Option<Arc<Users>> {
        match self {
            Server::Vless(s) => Some(s.users.load_full()),
            _ => None,
        }
    }

    /// A connection's task is as large as the largest future it may hold, so only the
    /// VLESS server (the hot path on a server) is inline; the client-side inbounds are
    /// boxed, so they do not size every VLESS connection's task.
    async fn serve(&self, tcp: tokio::net::TcpStream, peer: SocketAddr) {
        match self {
            Server::Vless(s) => s.clone().serve(tcp, peer).await,
            Server::Socks(s) => Box::pin(s.clone().serve(tcp, peer)).await,
            Server::Http(s) => Box::pin(s.clone().serve(tcp, peer)).await,
        }
    }
}

/// Every inbound's and outbound's counters exist from load, as in Xray (users' are
/// made at their first session).
fn register_counters(stats: &Stats, config: &Config) {
    for inbound in &config.inbounds {
        stats.register("inbound", &inbound.tag);
    }
    for outbound in &config.outbounds {
        stats.register("outbound", &outbound.tag);
    }
}

/// The server of `inbound`; its dispatcher is `base` with the inbound's timeouts, its
/// users the config's with the API's persisted changes.
fn server_for(
    inbound: &InboundConfig,
    base: &Dispatcher,
    previous_users: Option<&Users>,
    ledger: Option<&Ledger>,
) -> anyhow::Result<Server> {
    let dispatcher = |timeouts| Dispatcher {
        timeouts,
        ..base.clone()
    };
    let tag: Arc<str> = inbound.tag.as_str().into();
    Ok(match &inbound.kind {
        InboundKind::Vless(v) => Server::Vless(Arc::new(VlessServer {
            tag,
            transport: v.transport,
            security: ServerSecurity::new(v.security, &v.tls)
                .map_err(|e| anyhow::anyhow!("inbound {}: {e}", inbound.tag))?,
            users: ArcSwap::from_pointee(Users::carry_over(
                previous_users.unwrap_or(&Users::default()),
                &ledger.map_or_else(|| v.users.clone(), |l| l.apply(&inbound.tag, &v.users)),
            )),
            users_write: Default::default(),
            fallbacks: v.fallbacks.clone(),
            timeouts: v.timeouts,
            max_connections: v.max_connections,
            dispatcher: dispatcher(v.timeouts),
        })),
        InboundKind::Socks(s) => Server::Socks(Arc::new(SocksServer {
            tag,
            timeouts: s.timeouts,
            max_connections: s.max_connections,
            dispatcher: dispatcher(s.timeouts),
            accounts: s.accounts.clone(),
            udp: s.udp,
        })),
        InboundKind::Http(h) => Server::Http(Arc::new(HttpServer {
            tag,
            timeouts: h.timeouts,
            max_connections: h.max_connections,
            dispatcher: dispatcher(h.timeouts),
        })),
    })
}

async fn accept_loop(
    listener: TcpListener,
    server: Arc<ArcSwap<Server>>,
    gate: Gate,
    open: prometheus_client::metrics::gauge::Gauge,
) {
    let stopped = raised(gate.stop.subscribe());
    tokio::pin!(stopped);
    let mut next_id: u64 = 0;
    loop {
        let permit = tokio::select! {
            p = gate.permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            () = &mut stopped => return,
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
            () = &mut stopped => return,
        };
        next_id += 1;
        let span = tracing::info_span!("conn", id = next_id, source = %peer);
        // The server as of this accept: a reload changes it for later connections only.
        let server = server.load_full();
        let close = gate.close.subscribe();
        let held = Held::raise(open.clone());
        tokio::spawn(
            async move {
                tokio::select! {
                    () = server.serve(tcp, peer) => {}
                    () = raised(close) => {}
                }
                drop(permit);
                drop(held);
            }
            .instrument(span),
        );
    }
}
