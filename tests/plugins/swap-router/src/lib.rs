//! A route plugin with two versions: A routes every session to outbound `a`, B (the
//! `b` feature) to `b`. The hot-swap tests replace one with the other under load.

use wasmray_plugin_sdk::{Config, Delta, Descriptor, Plugin, Snapshot, Verdict};

#[cfg(not(feature = "b"))]
const OUTBOUND: &str = "a";
#[cfg(feature = "b")]
const OUTBOUND: &str = "b";

pub struct SwapRouter;

impl Plugin for SwapRouter {
    fn describe() -> Descriptor {
        Descriptor::route("swap-router", OUTBOUND)
    }

    fn configure(_config: &Config) -> Result<Self, String> {
        Ok(SwapRouter)
    }

    fn handle(&self, _session: &Snapshot, _payload: &[u8]) -> Verdict {
        Verdict::Matched(
            Delta::new()
                .outbound(OUTBOUND)
                .set("swap.version", OUTBOUND),
        )
    }
}

wasmray_plugin_sdk::export_plugin!(SwapRouter);
