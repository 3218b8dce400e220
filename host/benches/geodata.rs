//! Routing data at the scale of real files: a geosite of 100,000 domains and a geoip of
//! 100,000 CIDRs. How long loading both takes, what a lookup costs natively and from a
//! wasm plugin (route-rules asking the host through the contract), and how much the
//! loaded data adds to the heap. Run: `cargo bench -p wasmray --bench geodata`.

use std::hint::black_box;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmray::geodata::dat::write;
use wasmray::geodata::{GeoData, Sources};
use wasmray::plugin::{BUILTIN, LoadedPlugin, PluginEngine, RuntimeLimits, Source, load_plugin};
use wasmray::session::{Network, SnapshotFields, Target};

pub const DOMAINS: usize = 100_000;
pub const CIDRS: usize = 100_000;

fn geosite() -> Vec<u8> {
    write::synthetic_geosite(DOMAINS)
}

fn geoip() -> Vec<u8> {
    write::synthetic_geoip(CIDRS as u32)
}

fn sources(dir: &Path) -> Sources {
    std::fs::write(dir.join("geosite.dat"), geosite()).unwrap();
    std::fs::write(dir.join("geoip.dat"), geoip()).unwrap();
    Sources {
        geosite: Some(dir.join("geosite.dat")),
        geoip: Some(dir.join("geoip.dat")),
        ..Sources::default()
    }
}

/// The process's resident set in KiB, after returning freed heap to the kernel.
fn rss_kib() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of the allocator to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn load(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let sources = sources(dir.path());
    let before = rss_kib();
    let data = GeoData::load(&sources).unwrap();
    let after = rss_kib();
    eprintln!(
        "geodata: {} ; RSS grew by {:.1} MiB for {DOMAINS} domains and {CIDRS} CIDRs",
        data.summary(),
        (after.saturating_sub(before)) as f64 / 1024.0
    );
    drop(data);
    let mut group = c.benchmark_group("geodata");
    group.sample_size(10);
    group.bench_function("load geosite + geoip (100k + 100k)", |b| {
        b.iter(|| black_box(GeoData::load(&sources).unwrap()))
    });
    group.finish();
}

fn native(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let data = GeoData::load(&sources(dir.path())).unwrap();
    let site = data.domain_list("geosite:bench").unwrap();
    let ips = data.ip_list("geoip:bench").unwrap();
    assert!(data.domain_in(&site, "www.host777.site777.example"));
    assert!(data.ip_in(&ips, "1.0.3.7".parse().unwrap()));
    c.bench_function("geodata/native domain lookup (hit, 4 labels)", |b| {
        b.iter(|| black_box(data.domain_in(&site, black_box("www.host777.site777.example"))))
    });
    c.bench_function("geodata/native domain lookup (miss, 4 labels)", |b| {
        b.iter(|| black_box(data.domain_in(&site, black_box("www.nothing.here.test"))))
    });
    let ip: IpAddr = "1.2.3.4".parse().unwrap();
    c.bench_function("geodata/native ip lookup", |b| {
        b.iter(|| black_box(data.ip_in(&ips, black_box(ip))))
    });
}

fn route_rules(config: &str, data: Arc<GeoData>) -> LoadedPlugin {
    let builtin = BUILTIN.iter().find(|b| b.name == "route-rules").unwrap();
    let engine = PluginEngine::new(16 << 20).unwrap();
    let limits = RuntimeLimits {
        call_timeout: std::time::Duration::from_secs(1),
        memory_limit: 16 << 20,
    };
    let config = config.to_string();
    load_plugin(
        &engine,
        builtin,
        Source::Builtin,
        &move |_| config.clone(),
        limits,
        data,
    )
    .unwrap()
}

/// route-rules with one rule of `lookups` geosite lists against the same rule with
/// as many `full:` patterns: the difference per list is what a lookup from a plugin
/// costs, the host call included.
fn from_wasm(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let data = Arc::new(GeoData::load(&sources(dir.path())).unwrap());
    let lookups = 8;
    let lists = vec!["\"geosite:bench\""; lookups].join(",");
    let patterns = vec!["\"full:nothing.test\""; lookups].join(",");
    let rule = |domains: &str| {
        format!(
            r#"{{"default": "direct", "rule": [{{"domain": [{domains}], "outbound": "block"}}]}}"#
        )
    };
    let with_lists = route_rules(&rule(&lists), data.clone());
    let with_patterns = route_rules(&rule(&patterns), data);
    let session = SnapshotFields::new(
        "in",
        "192.0.2.7:50000".parse().unwrap(),
        Network::Tcp,
        Target::new("www.nothing.here.test", 443),
    )
    .freeze();
    c.bench_function(
        &format!("geodata/route-rules in wasm, {lookups} geosite lookups (miss)"),
        |b| b.iter(|| black_box(with_lists.handle(&session, &[]).unwrap())),
    );
    c.bench_function(
        &format!("geodata/route-rules in wasm, {lookups} full: patterns (miss)"),
        |b| b.iter(|| black_box(with_patterns.handle(&session, &[]).unwrap())),
    );
}

criterion_group!(benches, load, native, from_wasm);
criterion_main!(benches);
