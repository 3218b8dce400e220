//! A sniff plugin that misbehaves on demand, for the containment tests. It behaves
//! (no match) unless the payload starts with `HOSTILE <mode>`, so it passes the
//! host's smoke test and can be loaded; then each mode attacks the host:
//! `loop` (never returns), `bomb` (grows memory without bound), `panic`, `huge`
//! (a delta far beyond the output bound). With the `wasi` feature the module imports
//! a WASI function and must be refused at load.

use wasmray_plugin_sdk::{Config, Delta, Descriptor, Plugin, Snapshot, Verdict};

pub struct Hostile;

impl Plugin for Hostile {
    fn describe() -> Descriptor {
        Descriptor::sniff("hostile", env!("CARGO_PKG_VERSION"), 64)
    }

    fn configure(_config: &Config) -> Result<Self, String> {
        Ok(Hostile)
    }

    fn handle(&self, _session: &Snapshot, payload: &[u8]) -> Verdict {
        let Some(mode) = payload.strip_prefix(b"HOSTILE ") else {
            return Verdict::NoMatch;
        };
        match mode.split(|b| *b == b'\n').next().unwrap_or_default() {
            b"loop" => spin(),
            b"bomb" => bomb(),
            b"panic" => panic!("hostile plugin panics on purpose"),
            b"huge" => huge(),
            b"wasi" => wasi(),
            _ => Verdict::NoMatch,
        }
    }
}

fn spin() -> Verdict {
    let mut x: u64 = 1;
    loop {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}

fn bomb() -> Verdict {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        hoard.push(vec![1u8; 1 << 20]);
        std::hint::black_box(&hoard);
    }
}

fn huge() -> Verdict {
    let mut delta = Delta::new();
    for i in 0..5_000 {
        delta.insert(format!("key-{i}"), "v".repeat(64));
    }
    Verdict::Matched(delta)
}

#[cfg(all(feature = "wasi", target_arch = "wasm32"))]
fn wasi() -> Verdict {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        fn proc_exit(code: i32);
    }
    // SAFETY: never reached in a loaded plugin; the host refuses the import.
    unsafe { proc_exit(1) };
    Verdict::NoMatch
}

#[cfg(not(all(feature = "wasi", target_arch = "wasm32")))]
fn wasi() -> Verdict {
    Verdict::NoMatch
}

wasmray_plugin_sdk::export_plugin!(Hostile);
