//! `[dns]`: the resolver route plugins ask when a rule needs a domain's addresses
//! (route-rules' `domain_strategy`, or any plugin answering "resolve this first").
//! Servers are written as Xray writes them; DNS over HTTPS names its server by IP so
//! that finding the resolver never needs a resolver.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::error::Errors;
use super::raw::RawDns;
use super::units::parse_positive_duration;

/// Most entries the answer cache may hold (each is one name's A and AAAA answers).
pub const MAX_CACHE: usize = 1_000_000;
/// The longest a routing decision may wait for an answer.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);

/// A validated `[dns]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Asked in order; empty means the system's (`/etc/resolv.conf`, `/etc/hosts`).
    pub servers: Vec<DnsServer>,
    /// Answers kept (for their TTL) at most.
    pub cache_size: usize,
    /// How long one routing decision waits for an answer before it routes without.
    pub timeout: Duration,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            cache_size: 4096,
            timeout: Duration::from_secs(2),
        }
    }
}

/// One upstream server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsServer {
    /// `"system"` or `"localhost"` (Xray's word): the system's own configuration.
    System,
    /// `"1.1.1.1"`, `"1.1.1.1:53"`, `"udp://[2606:4700::1111]:53"`.
    Udp(SocketAddr),
    /// `"tcp://1.1.1.1"`.
    Tcp(SocketAddr),
    /// `"https://1.1.1.1/dns-query"`: DNS over HTTPS (HTTP/2), the certificate checked
    /// against the IP.
    Https { addr: SocketAddr, path: String },
}

pub fn validate(raw: RawDns, errors: &mut Errors) -> DnsConfig {
    let mut config = DnsConfig::default();
    for (i, s) in raw.servers.iter().enumerate() {
        if let Some(server) = errors.take(&format!("dns.servers[{i}]"), DnsServer::parse(s)) {
            config.servers.push(server);
        }
    }
    if let Some(n) = raw.cache_size {
        match usize::try_from(n) {
            Ok(n) if n <= MAX_CACHE => config.cache_size = n,
            _ => errors.push("dns.cache_size", format!("at most {MAX_CACHE} entries")),
        }
    }
    if let Some(t) = raw.timeout {
        let parsed = parse_positive_duration(&t).and_then(|d| match d {
            d if d > MAX_TIMEOUT => Err(format!("at most {}s", MAX_TIMEOUT.as_secs())),
            d => Ok(d),
        });
        if let Some(d) = errors.take("dns.timeout", parsed) {
            config.timeout = d;
        }
    }
    config
}

impl DnsServer {
    pub fn parse(text: &str) -> Result<DnsServer, String> {
        let text = text.trim();
        if text == "system" || text == "localhost" {
            return Ok(DnsServer::System);
        }
        if let Some(rest) = text.strip_prefix("https://") {
            let (host, path) = match rest.find('/') {
                Some(at) => rest.split_at(at),
                None => (rest, "/dns-query"),
            };
            let addr = address(host, 443).map_err(|e| {
                format!(
                    "{e}: DNS over HTTPS names its server by IP, e.g. https://1.1.1.1/dns-query"
                )
            })?;
            let path = if path == "/" { "/dns-query" } else { path };
            return Ok(DnsServer::Https {
                addr,
                path: path.to_string(),
            });
        }
        if let Some(rest) = text.strip_prefix("tcp://") {
            return address(rest, 53).map(DnsServer::Tcp);
        }
        let rest = text.strip_prefix("udp://").unwrap_or(text);
        if rest.contains("://") {
            return Err(format!(
                "unknown DNS server {text:?} (system, IP[:port], udp://, tcp://, https://IP/path)"
            ));
        }
        address(rest, 53).map(DnsServer::Udp)
    }
}

/// `IP`, `IP:port`, `[v6]` or `[v6]:port`.
fn address(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let bare = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    bare.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, default_port))
        .map_err(|_| format!("not an IP address or IP:port: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_as_xray_writes_them() {
        let p = |s| DnsServer::parse(s).unwrap();
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(p("localhost"), DnsServer::System);
        assert_eq!(p("8.8.8.8"), DnsServer::Udp(a("8.8.8.8:53")));
        assert_eq!(
            p("udp://127.0.0.1:5353"),
            DnsServer::Udp(a("127.0.0.1:5353"))
        );
        assert_eq!(p("2001:db8::1"), DnsServer::Udp(a("[2001:db8::1]:53")));
        assert_eq!(
            p("tcp://[2001:db8::1]"),
            DnsServer::Tcp(a("[2001:db8::1]:53"))
        );
        assert_eq!(
            p("https://1.1.1.1/dns-query"),
            DnsServer::Https {
                addr: a("1.1.1.1:443"),
                path: "/dns-query".into()
            }
        );
        assert_eq!(
            p("https://127.0.0.1:8443"),
            DnsServer::Https {
                addr: a("127.0.0.1:8443"),
                path: "/dns-query".into()
            }
        );
        for bad in [
            "https://dns.google/dns-query",
            "quic://1.1.1.1",
            "dns.example",
            "tcp://",
        ] {
            assert!(DnsServer::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bounds() {
        let mut errors = Errors::default();
        let raw = RawDns {
            servers: vec!["1.1.1.1".into(), "nope".into()],
            cache_size: Some(2_000_000),
            timeout: Some("1m".into()),
        };
        let config = validate(raw, &mut errors);
        assert_eq!(config.servers.len(), 1);
        let paths: Vec<_> = errors.0.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["dns.servers[1]", "dns.cache_size", "dns.timeout"]);
    }
}
