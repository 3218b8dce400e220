//! The `geodata` import: a plugin's questions about the routing lists, answered from
//! the one shared [`GeoData`](crate::geodata::GeoData) its store holds an `Arc` of.
//!
//! A handle is an index into the store's `opened` list, filled while `configure` runs;
//! an instance never sees the data itself, only booleans and list numbers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::bindings::geodata::{self, IpAddress, Query};
use super::state::{HostState, Opened};
use crate::geodata::{lower, ruleset};

/// Lists one instance may open (a config naming thousands is a mistake, not a need).
const MAX_OPENED: usize = 4096;

fn address(ip: IpAddress) -> IpAddr {
    match ip {
        IpAddress::V4(v4) => IpAddr::V4(Ipv4Addr::from(v4)),
        IpAddress::V6((hi, lo)) => {
            IpAddr::V6(Ipv6Addr::from(u128::from(hi) << 64 | u128::from(lo)))
        }
    }
}

impl HostState {
    fn open(
        &mut self,
        name: &str,
        resolve: impl FnOnce(&crate::geodata::GeoData) -> Result<Opened, String>,
    ) -> Result<u32, String> {
        if !self.configuring {
            return Err(format!("{name:?}: lists are opened in configure"));
        }
        if self.opened.len() >= MAX_OPENED {
            return Err(format!("{name:?}: more than {MAX_OPENED} lists opened"));
        }
        let opened = resolve(&self.geodata)?;
        self.opened.push(opened);
        Ok(self.opened.len() as u32 - 1)
    }

    fn opened(&self, list: u32) -> Option<&Opened> {
        self.opened.get(list as usize)
    }
}

impl geodata::Host for HostState {
    fn open_domains(&mut self, name: String) -> Result<u32, String> {
        self.open(&name, |g| {
            g.domain_list(&name)
                .map(Opened::Domains)
                .map_err(|e| e.to_string())
        })
    }

    fn open_ips(&mut self, name: String) -> Result<u32, String> {
        self.open(&name, |g| {
            g.ip_list(&name).map(Opened::Ips).map_err(|e| e.to_string())
        })
    }

    fn open_rule_set(&mut self, name: String) -> Result<u32, String> {
        self.open(&name, |g| match g.rule_set(&name) {
            Some(set) => set.map(Opened::RuleSet).map_err(|e| e.to_string()),
            None => Err(format!("{name:?}: a rule-set is rule-set:NAME")),
        })
    }

    fn domain_in(&mut self, list: u32, domain: String) -> bool {
        match self.opened(list) {
            Some(Opened::Domains(l)) => self.geodata.domain_in(l, &domain),
            _ => false,
        }
    }

    fn ip_in(&mut self, list: u32, ip: IpAddress) -> bool {
        match self.opened(list) {
            Some(Opened::Ips(l)) => self.geodata.ip_in(l, address(ip)),
            _ => false,
        }
    }

    fn rule_set_matches(&mut self, list: u32, q: Query) -> bool {
        let Some(Opened::RuleSet(name)) = self.opened(list) else {
            return false;
        };
        let Some(set) = self.geodata.rule_sets.get(name) else {
            return false;
        };
        let mut buf = [0u8; 256];
        let domain = q.domain.as_deref().and_then(|d| lower(d, &mut buf));
        set.matches(&ruleset::Query {
            domain: domain.as_deref(),
            ip: q.ip.map(address),
            source: q.source.map(address),
        })
    }

    fn domain_lists(&mut self, domain: String) -> Vec<u32> {
        (0..self.opened.len() as u32)
            .filter(|id| match self.opened(*id) {
                Some(Opened::Domains(l)) => self.geodata.domain_in(l, &domain),
                _ => false,
            })
            .collect()
    }
}
