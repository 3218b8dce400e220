//! Where a session goes: its network and its target, and the one place a target is
//! converted to and from the wire's address form (`proto::Destination`).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use crate::proto::{Address, Destination};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    Tcp,
    Udp,
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Network::Tcp => "tcp",
            Network::Udp => "udp",
        })
    }
}

/// Where a session wants to go: a domain or an IP literal, and a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: Arc<str>,
    pub port: u16,
}

impl Target {
    pub fn new(host: impl Into<Arc<str>>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .ok()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl From<&Destination> for Target {
    fn from(dest: &Destination) -> Self {
        let host = match &dest.addr {
            Address::Ipv4(ip) => ip.to_string(),
            Address::Ipv6(ip) => ip.to_string(),
            Address::Domain(d) => d.clone(),
        };
        Target::new(host, dest.port)
    }
}

impl Target {
    /// The target in the wire's address form (an IP literal stays an IP).
    pub fn destination(&self) -> Destination {
        let addr = match self.ip() {
            Some(ip) => Address::from_ip(ip),
            None => Address::Domain(self.host.to_string()),
        };
        Destination::new(addr, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_and_destinations_convert_both_ways() {
        for (host, port) in [
            ("example.com", 443),
            ("192.0.2.1", 53),
            ("2001:db8::1", 8443),
        ] {
            let target = Target::new(host, port);
            let back = Target::from(&target.destination());
            assert_eq!(back, target);
        }
        assert_eq!(
            Target::new("[2001:db8::1]", 1).destination().addr,
            Address::Ipv6("2001:db8::1".parse().unwrap())
        );
    }
}
