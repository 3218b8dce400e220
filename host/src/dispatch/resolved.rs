//! The second routing call of a session whose route plugin asked for a name's
//! addresses, and the dial that follows it: the host's own answer is what a `direct`
//! outbound dials (no second lookup), never an address a plugin wrote into the
//! snapshot.

use std::fmt::Write;
use std::net::IpAddr;

use crate::dns::{IPS_ATTRIBUTE, NAME_ATTRIBUTE};
use crate::session::{Snapshot, Target};

/// `sniffed` with the answer in its attributes, for the route stage's second call.
pub fn with_answer(sniffed: &Snapshot, name: &str, ips: &[IpAddr]) -> Snapshot {
    let mut list = String::new();
    for ip in ips {
        if !list.is_empty() {
            list.push(',');
        }
        let _ = write!(list, "{ip}");
    }
    let mut fields = sniffed.to_fields();
    fields.attrs.insert(NAME_ATTRIBUTE.into(), name.into());
    fields.attrs.insert(IPS_ATTRIBUTE.into(), list.into());
    fields.freeze()
}

/// `decided` dialing the first address of the answer when the answer is for the host
/// it would dial; unchanged otherwise.
pub fn dial_answer(decided: Snapshot, name: &str, ips: &[IpAddr]) -> Snapshot {
    let host = decided.dial_target.host.trim_end_matches('.');
    let Some(ip) = ips.first() else {
        return decided;
    };
    if !host.eq_ignore_ascii_case(name.trim_end_matches('.')) {
        return decided;
    }
    let mut fields = decided.to_fields();
    fields.dial_target = Target::new(ip.to_string(), decided.dial_target.port);
    fields.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Network, SnapshotFields};

    fn session(host: &str) -> Snapshot {
        let source = "127.0.0.1:5000".parse().unwrap();
        SnapshotFields::new("in", source, Network::Tcp, Target::new(host, 443)).freeze()
    }

    #[test]
    fn the_answer_goes_into_the_attributes() {
        let ips: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap(), "::1".parse().unwrap()];
        let s = with_answer(&session("a.example"), "a.example", &ips);
        assert_eq!(s.attr(NAME_ATTRIBUTE), Some("a.example"));
        assert_eq!(s.attr(IPS_ATTRIBUTE), Some("10.0.0.1,::1"));
        let none = with_answer(&session("a.example"), "a.example", &[]);
        assert_eq!(none.attr(IPS_ATTRIBUTE), Some(""));
    }

    #[test]
    fn only_the_host_asked_about_dials_the_answer() {
        let ips: Vec<IpAddr> = vec!["10.0.0.1".parse().unwrap()];
        let dialed = dial_answer(session("A.Example."), "a.example", &ips);
        assert_eq!(dialed.dial_target, Target::new("10.0.0.1", 443));
        let other = dial_answer(session("b.example"), "a.example", &ips);
        assert_eq!(other.dial_target, Target::new("b.example", 443));
        let empty = dial_answer(session("a.example"), "a.example", &[]);
        assert_eq!(empty.dial_target, Target::new("a.example", 443));
    }
}
