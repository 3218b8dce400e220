//! The immutable session snapshot.

use std::net::SocketAddr;
use std::sync::Arc;

use super::target::{Network, Target};

/// Attribute map: a persistent (structurally shared) ordered map, so that deriving a
/// new version copies only the changed path and cloning is O(1).
pub type Attrs = imbl::OrdMap<Arc<str>, Arc<str>>;

/// Every field of a session version. Build one for a new connection, then freeze it
/// into a [`Snapshot`].
#[derive(Debug, Clone)]
pub struct SnapshotFields {
    pub inbound_tag: Arc<str>,
    pub user: Option<Arc<str>>,
    pub source: SocketAddr,
    pub network: Network,
    /// The target the client asked for.
    pub target: Target,
    pub sni: Option<Arc<str>>,
    pub alpn: Option<Arc<str>>,
    pub protocol: Option<Arc<str>>,
    pub sniffed_domain: Option<Arc<str>>,
    /// The sniffed domain used for routing (set when `dest_override` applies).
    pub route_domain: Option<Arc<str>>,
    /// The target to dial: `target`, or the sniffed domain when overriding.
    pub dial_target: Target,
    pub outbound: Option<Arc<str>>,
    pub attrs: Attrs,
    /// How many deltas have been merged into this version.
    pub version: u32,
}

impl SnapshotFields {
    /// The facts of a new session, before any plugin ran.
    pub fn new(inbound_tag: &str, source: SocketAddr, network: Network, target: Target) -> Self {
        Self {
            inbound_tag: inbound_tag.into(),
            user: None,
            source,
            network,
            dial_target: target.clone(),
            target,
            sni: None,
            alpn: None,
            protocol: None,
            sniffed_domain: None,
            route_domain: None,
            outbound: None,
            attrs: Attrs::new(),
            version: 0,
        }
    }

    pub fn freeze(self) -> Snapshot {
        Snapshot(Arc::new(self))
    }
}

/// An immutable session version; `clone` is O(1) and shares everything.
#[derive(Debug, Clone)]
pub struct Snapshot(Arc<SnapshotFields>);

impl Snapshot {
    /// A copy of the fields to derive the next version from (O(1) for the attributes).
    pub fn to_fields(&self) -> SnapshotFields {
        (*self.0).clone()
    }

    /// The same session for another target: a Mux.Cool sub-stream starts here from its
    /// tunnel's snapshot, keeping the connection facts and none of its attributes.
    pub fn child(&self, network: Network, target: Target) -> Snapshot {
        let mut f = SnapshotFields::new(&self.0.inbound_tag, self.0.source, network, target);
        f.user = self.0.user.clone();
        f.sni = self.0.sni.clone();
        f.alpn = self.0.alpn.clone();
        f.freeze()
    }

    pub fn attr(&self, key: &str) -> Option<&str> {
        self.0.attrs.get(key).map(|v| &**v)
    }

    /// True when both are the very same version (no copy happened).
    pub fn ptr_eq(&self, other: &Snapshot) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl std::ops::Deref for Snapshot {
    type Target = SnapshotFields;

    fn deref(&self) -> &SnapshotFields {
        &self.0
    }
}
