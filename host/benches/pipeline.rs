//! Cost per session of the built-in pipeline (sniff-http, sniff-tls, route-rules) on a
//! typical HTTP request: through the wasm runtime as the daemon runs it, and the same
//! plugin logic called natively. Run: `cargo bench -p wasmray --bench pipeline`.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use wasmray::config::Config;
use wasmray::plugin::Registry;
use wasmray::session::{Network, Snapshot, SnapshotFields, Target};
use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder};
use wasmray_plugin_sdk::{Plugin, Verdict};

const REQUEST: &[u8] = b"GET /index.html?q=1 HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: curl/8.5.0\r\n\
Accept: */*\r\nAccept-Language: en-US,en;q=0.9\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\n\r\n";

/// The route-rules table of `config/server.toml`, as JSON.
fn route_config() -> (Config, String) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/server.toml"),
    )
    .unwrap();
    // The example's cert files are irrelevant here: keep only what the plugins need.
    let plugins = &text[text.find("[plugins]").unwrap()..];
    let config = Config::parse(&format!("[[outbound]]\ntag = \"direct\"\ntype = \"direct\"\n[[outbound]]\ntag = \"block\"\ntype = \"block\"\n{plugins}"), Path::new(".")).unwrap();
    let json = config.plugins.config["route-rules"].to_string();
    // The deadline is wall-clock: over millions of calls a preempted one would miss
    // 5 ms and abort the run. This bench measures cost, not deadlines.
    let mut config = config;
    config.plugins.call_timeout = std::time::Duration::from_secs(1);
    (config, json)
}

/// A session as the VLESS inbound starts it: a client asking for an IP on port 80.
fn new_session() -> Snapshot {
    let source = "192.0.2.7:50000".parse().unwrap();
    SnapshotFields::new(
        "vless-in",
        source,
        Network::Tcp,
        Target::new("93.184.216.34", 80),
    )
    .freeze()
}

fn wasm_pipeline(c: &mut Criterion) {
    let (config, _) = route_config();
    let registry = Registry::start(config.plugins.clone()).unwrap();
    let pipeline = registry.pipeline();
    let snapshot = new_session();
    let mut check = pipeline.new_sniff_state();
    pipeline.sniff(&snapshot, REQUEST, &mut check).unwrap();
    let routed = pipeline
        .route(&pipeline.finish_sniff(&snapshot, &check))
        .unwrap();
    assert_eq!(
        routed.outbound.as_deref(),
        Some("direct"),
        "the attrs rule matched"
    );
    c.bench_function("pipeline/wasm (http request, 3 plugins)", |b| {
        b.iter(|| {
            let mut state = pipeline.new_sniff_state();
            pipeline
                .sniff(&snapshot, black_box(REQUEST), &mut state)
                .unwrap();
            let sniffed = pipeline.finish_sniff(&snapshot, &state);
            black_box(pipeline.route(&sniffed).unwrap())
        })
    });
}

fn native_pipeline(c: &mut Criterion) {
    let (_, route_json) = route_config();
    let http = Harness::<sniff_http::SniffHttp>::new("{}");
    let tls = Harness::<sniff_tls::SniffTls>::new("{}");
    let route = Harness::<route_rules::RouteRules>::new(&route_json);
    let snapshot = SnapshotBuilder::new()
        .inbound("vless-in")
        .target("93.184.216.34", 80)
        .build();
    c.bench_function("pipeline/native (http request, same logic)", |b| {
        b.iter(|| {
            let mut routed = snapshot.clone();
            // As the daemon's pipeline: the TLS sniffer runs only if HTTP did not
            // recognise the payload.
            let mut verdict = http.plugin().handle(&snapshot, black_box(REQUEST));
            if !matches!(&verdict, Verdict::Matched(d) if d.protocol.is_some()) {
                verdict = tls.plugin().handle(&snapshot, REQUEST);
            }
            if let Verdict::Matched(d) = verdict {
                routed.attributes.extend(d.set);
                routed.protocol = routed.protocol.or(d.protocol);
                routed.sniffed_domain = routed.sniffed_domain.or(d.sniffed_domain);
            }
            black_box(route.plugin().handle(&routed, &[]))
        })
    });
}

/// One guest call each, to attribute the pipeline's cost: the route call on a bare
/// snapshot and on the sniffed one (the sniffer's attributes are what grows the
/// snapshot), and the HTTP sniffer on the request.
fn wasm_calls(c: &mut Criterion) {
    let (config, _) = route_config();
    let registry = Registry::start(config.plugins.clone()).unwrap();
    let pipeline = registry.pipeline();
    let plugin = |name: &str| {
        pipeline
            .plugins
            .iter()
            .find(|p| &*p.name == name)
            .unwrap()
            .clone()
    };
    let (http, route) = (plugin("sniff-http"), plugin("route-rules"));
    let bare = new_session();
    let mut state = pipeline.new_sniff_state();
    pipeline.sniff(&bare, REQUEST, &mut state).unwrap();
    let sniffed = pipeline.finish_sniff(&bare, &state);
    c.bench_function("call/route-rules (bare snapshot)", |b| {
        b.iter(|| black_box(route.handle(&bare, &[]).unwrap()))
    });
    c.bench_function(
        &format!(
            "call/route-rules (sniffed snapshot, {} attributes)",
            sniffed.attrs.len()
        ),
        |b| b.iter(|| black_box(route.handle(&sniffed, &[]).unwrap())),
    );
    c.bench_function("call/sniff-http (http request)", |b| {
        b.iter(|| black_box(http.handle(&bare, black_box(REQUEST)).unwrap()))
    });
}

criterion_group!(benches, wasm_pipeline, native_pipeline, wasm_calls);
criterion_main!(benches);
