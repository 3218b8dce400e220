//! The serial merge: deltas are applied one after another in pipeline order into a
//! new snapshot version. Conflicts resolve by that order, deterministically:
//! attributes are overwritten by later plugins (last writer wins), while the
//! protocol, the sniffed domain and the outbound are claimed by the first plugin that
//! sets them (as Xray takes the first sniffer that succeeds and the first rule that
//! matches). Every overruled claim is logged at debug level.

use std::sync::Arc;

use super::{Delta, Snapshot, SnapshotFields, Target};

/// One plugin's delta, named for the conflict log.
pub struct Merge<'a> {
    pub plugin: &'a str,
    pub delta: &'a Delta,
}

/// Applies `deltas` in order to `base`. Returns `base` itself (no copy) when every delta
/// is empty.
pub fn merge(base: &Snapshot, deltas: &[Merge<'_>]) -> Snapshot {
    if deltas.iter().all(|m| m.delta.is_empty()) {
        return base.clone();
    }
    let mut next = base.to_fields();
    let mut claims: [Option<&str>; 3] = [None; 3];
    for m in deltas.iter().filter(|m| !m.delta.is_empty()) {
        apply_attrs(&mut next, m);
        let d = m.delta;
        claim(
            &mut next.protocol,
            &d.protocol,
            &mut claims[0],
            m.plugin,
            "protocol",
        );
        claim(
            &mut next.sniffed_domain,
            &d.sniffed_domain,
            &mut claims[1],
            m.plugin,
            "sniffed domain",
        );
        claim(
            &mut next.outbound,
            &d.outbound,
            &mut claims[2],
            m.plugin,
            "outbound",
        );
        next.version += 1;
    }
    next.freeze()
}

fn apply_attrs(next: &mut SnapshotFields, m: &Merge<'_>) {
    for key in &m.delta.remove {
        next.attrs.remove(&*lower(key));
    }
    for (key, value) in &m.delta.set {
        let replaced = next.attrs.insert(lower(key).into(), value.as_str().into());
        if let Some(old) = replaced
            && *old != **value
        {
            tracing::debug!(plugin = m.plugin, %key, old = %old, new = %value, "attribute overwritten");
        }
    }
}

/// `key` lower-cased, copied only when it is not already (the SDK sends lower case).
fn lower(key: &str) -> std::borrow::Cow<'_, str> {
    if key.bytes().any(|b| b.is_ascii_uppercase()) {
        key.to_ascii_lowercase().into()
    } else {
        key.into()
    }
}

fn claim<'a>(
    field: &mut Option<Arc<str>>,
    value: &Option<String>,
    claimed_by: &mut Option<&'a str>,
    plugin: &'a str,
    what: &str,
) {
    let Some(value) = value else { return };
    match claimed_by {
        Some(first) => {
            tracing::debug!(plugin, first = *first, what, value = %value, "overruled by an earlier plugin")
        }
        None => {
            *field = Some(value.as_str().into());
            *claimed_by = Some(plugin);
        }
    }
}

/// After the sniff stage: decides what the sniffed domain is used for, as Xray's
/// `destOverride` and `routeOnly` do. When the sniffed protocol matches an entry of
/// `dest_override` (prefix match either way), the domain is used for routing, and also
/// dialed unless `route_only`.
pub fn apply_sniffed(base: &Snapshot, dest_override: &[String], route_only: bool) -> Snapshot {
    let (Some(protocol), Some(domain)) = (&base.protocol, &base.sniffed_domain) else {
        return base.clone();
    };
    let applies = dest_override
        .iter()
        .any(|p| protocol.starts_with(p.as_str()) || p.starts_with(&**protocol));
    if !applies {
        return base.clone();
    }
    let mut next = base.to_fields();
    next.route_domain = Some(domain.clone());
    if !route_only {
        next.dial_target = Target::new(domain.clone(), base.target.port);
    }
    next.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::{Network, SnapshotFields};

    fn base() -> Snapshot {
        let target = Target::new("example.com", 443);
        SnapshotFields::new(
            "in",
            "127.0.0.1:5000".parse().unwrap(),
            Network::Tcp,
            target,
        )
        .freeze()
    }

    fn set(k: &str, v: &str) -> Delta {
        Delta {
            set: vec![(k.into(), v.into())],
            ..Delta::default()
        }
    }

    #[test]
    fn empty_deltas_copy_nothing() {
        let b = base();
        let d = Delta::default();
        assert!(
            merge(
                &b,
                &[Merge {
                    plugin: "p",
                    delta: &d
                }]
            )
            .ptr_eq(&b)
        );
    }

    #[test]
    fn later_attributes_win_and_keys_are_lower_cased() {
        let (a, b) = (set("Host", "a"), set("host", "b"));
        let s = merge(
            &base(),
            &[
                Merge {
                    plugin: "1",
                    delta: &a,
                },
                Merge {
                    plugin: "2",
                    delta: &b,
                },
            ],
        );
        assert_eq!(s.attr("host"), Some("b"));
        assert_eq!(s.version, 2);
    }

    #[test]
    fn the_first_claim_on_fixed_fields_wins() {
        let a = Delta {
            protocol: Some("http1".into()),
            outbound: Some("direct".into()),
            ..Delta::default()
        };
        let b = Delta {
            protocol: Some("tls".into()),
            outbound: Some("block".into()),
            ..Delta::default()
        };
        let s = merge(
            &base(),
            &[
                Merge {
                    plugin: "1",
                    delta: &a,
                },
                Merge {
                    plugin: "2",
                    delta: &b,
                },
            ],
        );
        assert_eq!(s.protocol.as_deref(), Some("http1"));
        assert_eq!(s.outbound.as_deref(), Some("direct"));
    }

    #[test]
    fn a_child_never_sees_its_parent_or_siblings_deltas() {
        let parent = merge(
            &base(),
            &[Merge {
                plugin: "p",
                delta: &set("cache-control", "max-age=0"),
            }],
        );
        let c1 = parent.child(Network::Tcp, Target::new("a.example", 80));
        let c2 = parent.child(Network::Tcp, Target::new("b.example", 80));
        assert_eq!(
            c1.attr("cache-control"),
            None,
            "a child starts without the tunnel's attributes"
        );
        let c1 = merge(
            &c1,
            &[Merge {
                plugin: "p",
                delta: &set("cache-control", "no-cache"),
            }],
        );
        let c2 = merge(
            &c2,
            &[Merge {
                plugin: "p",
                delta: &set("path", "/two"),
            }],
        );
        assert_eq!(c1.attr("cache-control"), Some("no-cache"));
        assert_eq!(c1.attr("path"), None);
        assert_eq!(c2.attr("cache-control"), None);
        assert_eq!(c2.attr("path"), Some("/two"));
        assert_eq!(parent.attr("cache-control"), Some("max-age=0"));
        assert_eq!(parent.attr("path"), None);
    }

    #[test]
    fn removes_apply_before_sets() {
        let s = merge(
            &base(),
            &[Merge {
                plugin: "p",
                delta: &set("k", "v"),
            }],
        );
        let d = Delta {
            set: vec![("k".into(), "w".into())],
            remove: vec!["K".into()],
            ..Delta::default()
        };
        let s2 = merge(
            &s,
            &[Merge {
                plugin: "q",
                delta: &d,
            }],
        );
        assert_eq!(s2.attr("k"), Some("w"));
        let d = Delta {
            remove: vec!["k".into()],
            ..Delta::default()
        };
        assert_eq!(
            merge(
                &s,
                &[Merge {
                    plugin: "q",
                    delta: &d
                }]
            )
            .attr("k"),
            None
        );
        assert_eq!(s.attr("k"), Some("v"), "the old version is untouched");
    }

    #[test]
    fn dest_override_and_route_only() {
        let d = Delta {
            protocol: Some("http1".into()),
            sniffed_domain: Some("sniffed.example".into()),
            ..Delta::default()
        };
        let s = merge(
            &base(),
            &[Merge {
                plugin: "p",
                delta: &d,
            }],
        );
        let full = apply_sniffed(&s, &["http".into()], false);
        assert_eq!(&*full.dial_target.host, "sniffed.example");
        assert_eq!(full.route_domain.as_deref(), Some("sniffed.example"));
        let route_only = apply_sniffed(&s, &["http".into()], true);
        assert_eq!(&*route_only.dial_target.host, "example.com");
        assert_eq!(route_only.route_domain.as_deref(), Some("sniffed.example"));
        let none = apply_sniffed(&s, &["tls".into()], false);
        assert!(none.ptr_eq(&s));
    }

    #[test]
    fn delta_limits() {
        let limits = crate::session::DeltaLimits::default();
        assert!(set("k", "v").check(&limits).is_ok());
        assert!(set("", "v").check(&limits).is_err());
        assert!(set("k", &"v".repeat(9000)).check(&limits).is_err());
        let many = Delta {
            remove: (0..300).map(|i| i.to_string()).collect(),
            ..Delta::default()
        };
        assert!(many.check(&limits).is_err());
    }
}
