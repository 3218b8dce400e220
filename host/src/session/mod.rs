//! Sessions as immutable, copy-on-write snapshots.
//!
//! Xray-core 24.9.30 crashed with "concurrent map writes" because every Mux.Cool
//! sub-stream's sniffer wrote into one attribute map shared by the whole connection.
//! Here that cannot be written: a [`Snapshot`] is immutable and cloning it is an `Arc`
//! clone. Plugins never mutate it; they return a [`Delta`], and the host merges deltas
//! serially, in pipeline order, into the next version ([`merge`]). A Mux.Cool
//! sub-stream starts from its tunnel's snapshot and grows its own versions, which its
//! parent and siblings never see.

mod delta;
mod end;
mod merge;
mod snapshot;
mod target;

pub use delta::{Delta, DeltaError, DeltaLimits};
pub use end::{Failure, Outcome};
pub use merge::{Merge, apply_sniffed, merge};
pub use snapshot::{Snapshot, SnapshotFields};
pub use target::{Network, Target};
