//! Routing lists the daemon holds once for every plugin: geosite and geoip lists and
//! sing-box rule-sets, from the daemon's `[geodata]`.
//!
//! Open the lists in [`Plugin::configure`](crate::Plugin::configure) and keep the
//! handles; ask them per session. Nothing is copied into the plugin: each question is
//! one call into the host, answered from the one shared structure.
//!
//! ```
//! use wasmray_plugin_sdk::geodata::DomainList;
//! # wasmray_plugin_sdk::harness::geodata::domains("geosite:cn", &["domain:cn"]);
//! let cn = DomainList::open("geosite:cn")?;   // in configure: an unknown list is an error
//! assert!(cn.contains("www.example.cn"));    // in handle
//! # Ok::<(), String>(())
//! ```
//!
//! Natively (`cargo test`) the lists are the ones a test defines with
//! [`harness::geodata`](crate::harness::geodata).

use std::net::IpAddr;

/// A domain list: `geosite:NAME`, `geosite:NAME@ATTR` or `rule-set:NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DomainList(u32);

/// An IP list: `geoip:CODE` or `rule-set:NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpList(u32);

/// A sing-box rule-set asked with every fact at once (its rules may combine a
/// domain with a source address): `rule-set:NAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RuleSet(u32);

/// What a [`RuleSet`] is asked about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<'a> {
    /// The domain (any case).
    pub domain: Option<&'a str>,
    /// The destination address.
    pub ip: Option<IpAddr>,
    /// The client's address.
    pub source: Option<IpAddr>,
}

impl DomainList {
    /// Opens a list by name (during `configure`); the error names what is missing.
    pub fn open(name: &str) -> Result<DomainList, String> {
        imp::open_domains(name).map(DomainList)
    }

    /// Whether `domain` (any case, trailing dot or not) is in the list.
    pub fn contains(&self, domain: &str) -> bool {
        imp::domain_in(self.0, domain)
    }

    /// The handle's number, as [`matching`] returns it.
    pub fn id(&self) -> u32 {
        self.0
    }
}

impl IpList {
    /// Opens a list by name (during `configure`); the error names what is missing.
    pub fn open(name: &str) -> Result<IpList, String> {
        imp::open_ips(name).map(IpList)
    }

    /// Whether `ip` is in the list (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        imp::ip_in(self.0, ip)
    }
}

impl RuleSet {
    /// Opens `rule-set:NAME` (during `configure`).
    pub fn open(name: &str) -> Result<RuleSet, String> {
        imp::open_rule_set(name).map(RuleSet)
    }

    /// Whether any rule of the set matches.
    pub fn matches(&self, query: &Query<'_>) -> bool {
        imp::rule_set_matches(self.0, query)
    }
}

/// The ids of the domain lists this instance opened that `domain` is in.
pub fn matching(domain: &str) -> Vec<u32> {
    imp::domain_lists(domain)
}

#[cfg(target_arch = "wasm32")]
mod imp {
    use std::net::IpAddr;

    use crate::bindings::wasmray::plugin::geodata as host;

    fn address(ip: IpAddr) -> host::IpAddress {
        match ip {
            IpAddr::V4(v4) => host::IpAddress::V4(u32::from(v4)),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                host::IpAddress::V6(((bits >> 64) as u64, bits as u64))
            }
        }
    }

    pub fn open_domains(name: &str) -> Result<u32, String> {
        host::open_domains(name)
    }
    pub fn open_ips(name: &str) -> Result<u32, String> {
        host::open_ips(name)
    }
    pub fn open_rule_set(name: &str) -> Result<u32, String> {
        host::open_rule_set(name)
    }
    pub fn domain_in(list: u32, domain: &str) -> bool {
        host::domain_in(list, domain)
    }
    pub fn ip_in(list: u32, ip: IpAddr) -> bool {
        host::ip_in(list, address(ip))
    }
    pub fn rule_set_matches(list: u32, q: &super::Query<'_>) -> bool {
        let query = host::Query {
            domain: q.domain.map(str::to_string),
            ip: q.ip.map(address),
            source: q.source.map(address),
        };
        host::rule_set_matches(list, &query)
    }
    pub fn domain_lists(domain: &str) -> Vec<u32> {
        host::domain_lists(domain)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod imp {
    //! The native stand-in: lists a test defined with `harness::geodata`, per thread.
    //! A rule-set here is the domain and IP lists defined under its name.
    use std::cell::RefCell;
    use std::net::IpAddr;

    use crate::domain::DomainMatcher;
    use crate::net::Cidr;

    pub(crate) enum Defined {
        Domains(Vec<DomainMatcher>),
        Ips(Vec<Cidr>),
    }

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Kind {
        Domains,
        Ips,
        RuleSet,
    }

    #[derive(Default)]
    pub(crate) struct Lists {
        pub defined: Vec<(String, Defined)>,
        opened: Vec<(String, Kind)>,
    }

    thread_local! {
        pub(crate) static LISTS: RefCell<Lists> = RefCell::new(Lists::default());
    }

    fn open(name: &str, kind: Kind) -> Result<u32, String> {
        LISTS.with(|l| {
            let mut l = l.borrow_mut();
            let name = name.to_ascii_lowercase();
            let found = l.defined.iter().any(|(n, d)| {
                *n == name
                    && match d {
                        Defined::Domains(_) => kind != Kind::Ips,
                        Defined::Ips(_) => kind != Kind::Domains,
                    }
            });
            if !found {
                return Err(format!("no list {name:?}"));
            }
            l.opened.push((name, kind));
            Ok(l.opened.len() as u32 - 1)
        })
    }

    pub fn open_domains(name: &str) -> Result<u32, String> {
        open(name, Kind::Domains)
    }
    pub fn open_ips(name: &str) -> Result<u32, String> {
        open(name, Kind::Ips)
    }
    pub fn open_rule_set(name: &str) -> Result<u32, String> {
        open(name, Kind::RuleSet)
    }

    /// Whether any list defined under handle `list`'s name, of a kind `kind` accepts,
    /// answers `f`.
    fn any(list: u32, kind: Kind, f: impl Fn(&Defined) -> bool) -> bool {
        LISTS.with(|l| {
            let l = l.borrow();
            let Some((name, opened)) = l.opened.get(list as usize) else {
                return false;
            };
            *opened == kind && l.defined.iter().any(|(n, d)| n == name && f(d))
        })
    }

    fn domain_hit(d: &Defined, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        matches!(d, Defined::Domains(ms) if ms.iter().any(|m| m.matches(&domain)))
    }

    fn ip_hit(d: &Defined, ip: IpAddr) -> bool {
        matches!(d, Defined::Ips(cs) if cs.iter().any(|c| c.contains(ip)))
    }

    pub fn domain_in(list: u32, domain: &str) -> bool {
        any(list, Kind::Domains, |d| domain_hit(d, domain))
    }
    pub fn ip_in(list: u32, ip: IpAddr) -> bool {
        any(list, Kind::Ips, |d| ip_hit(d, ip))
    }
    pub fn rule_set_matches(list: u32, q: &super::Query<'_>) -> bool {
        any(list, Kind::RuleSet, |d| {
            q.domain.is_some_and(|dom| domain_hit(d, dom)) || q.ip.is_some_and(|ip| ip_hit(d, ip))
        })
    }
    pub fn domain_lists(domain: &str) -> Vec<u32> {
        let count = LISTS.with(|l| l.borrow().opened.len() as u32);
        (0..count).filter(|id| domain_in(*id, domain)).collect()
    }
}
