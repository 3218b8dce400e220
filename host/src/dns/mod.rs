//! The resolver routing asks: `[dns]` turned into one hickory-resolver shared by every
//! session, with its answer cache (bounded in entries, each answer kept for its TTL).
//!
//! A route plugin asks for a name with the attribute [`RESOLVE_ATTRIBUTE`]; the
//! dispatcher resolves it here within `[dns] timeout` and calls the route stage once
//! more with the answer in [`IPS_ATTRIBUTE`]. The name comes from a plugin, so it is
//! checked before it reaches the wire, and a failure is an empty answer, never an
//! error that ends the session: routing goes on without the addresses.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ProtocolConfig, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;

use crate::config::{DnsConfig, DnsServer};

#[cfg(test)]
mod tests;

/// Set by a route plugin: "resolve this name, then ask me again".
pub const RESOLVE_ATTRIBUTE: &str = "dns.resolve";
/// Set by the host for the second call: the name asked for.
pub const NAME_ATTRIBUTE: &str = "dns.name";
/// Set by the host for the second call: the addresses, comma-separated, IPv4 first;
/// empty when the name did not resolve in time.
pub const IPS_ATTRIBUTE: &str = "dns.ips";
/// Addresses kept from one answer.
pub const MAX_ADDRESSES: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("not a domain name: {0:?}")]
    BadName(String),
    #[error("{name}: no answer within {timeout:?}")]
    Timeout { name: String, timeout: Duration },
    #[error("{name}: {reason}")]
    Lookup { name: String, reason: String },
    #[error("no resolver: {0}")]
    Unavailable(Arc<str>),
}

/// One shared resolver; cheap to clone. Built at its first lookup, not at start: most
/// configs never resolve, and a daemon that does not should not read the system's
/// DNS configuration or build a TLS root store for nothing.
#[derive(Clone)]
pub struct Resolver {
    shared: Arc<Lazy>,
    timeout: Duration,
}

struct Lazy {
    config: DnsConfig,
    tls: std::sync::Mutex<Option<rustls::ClientConfig>>,
    built: std::sync::OnceLock<Result<TokioResolver, Arc<str>>>,
}

impl Resolver {
    /// The resolver `config` describes, trusting the web's roots for DNS over HTTPS.
    /// A system configuration that cannot be read leaves a resolver whose every lookup
    /// fails with the reason (logged once).
    pub fn new(config: &DnsConfig) -> Resolver {
        Self::build(config, None)
    }

    /// As [`Resolver::new`], DNS over HTTPS trusting `tls` instead (an internal CA).
    pub fn with_tls(config: &DnsConfig, tls: rustls::ClientConfig) -> Resolver {
        Self::build(config, Some(tls))
    }

    fn build(config: &DnsConfig, tls: Option<rustls::ClientConfig>) -> Resolver {
        let shared = Lazy {
            config: config.clone(),
            tls: std::sync::Mutex::new(tls),
            built: std::sync::OnceLock::new(),
        };
        Resolver {
            shared: Arc::new(shared),
            timeout: config.timeout,
        }
    }

    /// The resolver, built on first use, or why there is none.
    fn ready(&self) -> Result<&TokioResolver, DnsError> {
        let lazy = &*self.shared;
        let built = lazy.built.get_or_init(|| {
            let tls = crate::util::lock(&lazy.tls).take();
            builder(&lazy.config, tls).map_err(|e| {
                tracing::warn!("dns: {e}; routing that needs an address routes without one");
                Arc::<str>::from(e)
            })
        });
        built.as_ref().map_err(|e| DnsError::Unavailable(e.clone()))
    }

    /// How long [`Resolver::resolve`] waits at most.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The addresses of `name` (an IP literal is its own answer), IPv4 first, at
    /// most [`MAX_ADDRESSES`], within the configured timeout.
    pub async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, DnsError> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let fqdn = absolute(name)?;
        let resolver = self.ready()?;
        let lookup = tokio::time::timeout(self.timeout, resolver.lookup_ip(fqdn.as_str()));
        let answer = lookup
            .await
            .map_err(|_| DnsError::Timeout {
                name: name.to_string(),
                timeout: self.timeout,
            })?
            .map_err(|e| DnsError::Lookup {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
        let mut ips: Vec<IpAddr> = answer.iter().take(MAX_ADDRESSES).collect();
        ips.sort_by_key(|ip| ip.is_ipv6());
        Ok(ips)
    }
}

/// `name` as an absolute name (so no search domain is tried), or why it is not one.
fn absolute(name: &str) -> Result<String, DnsError> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let fine = !bare.is_empty()
        && bare.len() <= 253
        && bare.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !fine {
        return Err(DnsError::BadName(name.chars().take(64).collect()));
    }
    Ok(format!("{bare}."))
}

fn builder(config: &DnsConfig, tls: Option<rustls::ClientConfig>) -> Result<TokioResolver, String> {
    let (servers, mut opts) = servers(&config.servers)?;
    opts.cache_size = config.cache_size as u64;
    opts.timeout = config.timeout;
    opts.attempts = 1;
    opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    opts.ndots = 0;
    let mut builder = TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(servers),
        TokioRuntimeProvider::default(),
    )
    .with_options(opts);
    if let Some(tls) = tls {
        builder = builder.with_tls_config(tls);
    }
    builder
        .build()
        .map_err(|e| format!("cannot start the resolver: {e}"))
}

/// The name servers of the configured list, in order, and the options to start from
/// (the system's when it is the system's list).
fn servers(list: &[DnsServer]) -> Result<(Vec<NameServerConfig>, ResolverOpts), String> {
    let system = [DnsServer::System];
    let list = if list.is_empty() { &system[..] } else { list };
    let mut out = Vec::new();
    let mut opts = ResolverOpts::default();
    for server in list {
        let (addr, protocol) = match server {
            DnsServer::System => {
                let (conf, system_opts) = hickory_resolver::system_conf::read_system_conf()
                    .map_err(|e| format!("cannot read the system's DNS configuration: {e}"))?;
                out.extend(conf.name_servers().iter().cloned());
                opts = system_opts;
                continue;
            }
            DnsServer::Udp(addr) => (addr, ProtocolConfig::Udp),
            DnsServer::Tcp(addr) => (addr, ProtocolConfig::Tcp),
            DnsServer::Https { addr, path } => (
                addr,
                ProtocolConfig::Https {
                    server_name: addr.ip().to_string().into(),
                    path: path.as_str().into(),
                },
            ),
        };
        let mut connection = ConnectionConfig::new(protocol);
        connection.port = addr.port();
        out.push(NameServerConfig::new(addr.ip(), true, vec![connection]));
    }
    if out.is_empty() {
        return Err("the system's DNS configuration names no server".into());
    }
    Ok((out, opts))
}
