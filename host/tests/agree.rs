//! The built-in plugins answer the same natively (the SDK harness, plain Rust) and
//! through the wasm runtime (as the daemon runs them), on captured inputs, every prefix
//! of them, and garbage.

use std::time::Duration;

use wasmray::plugin::{
    Answer, BUILTIN, LoadedPlugin, PluginEngine, RuntimeLimits, Source, load_plugin,
};
use wasmray::session::{Network, Snapshot, SnapshotFields, Target};
use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder};
use wasmray_plugin_sdk::{Plugin, Verdict};

const ROUTE_CONFIG: &str = r#"{"default": "direct", "rule": [
    {"attrs": {"cache-control": "no-cache"}, "outbound": "direct"},
    {"domain": ["suffix:ads.example", "keyword:tracker", "full:bad.example", "regex:^x[0-9]+\\.example$"], "outbound": "block"},
    {"ip": ["10.0.0.0/8", "fd00::/8"], "port": "1-1024", "network": "tcp", "outbound": "block"},
    {"protocol": ["tls"], "user": ["bob@example.com"], "outbound": "block"}
]}"#;

fn wasm(name: &str, config: &str) -> LoadedPlugin {
    let bytes = BUILTIN
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.wasm)
        .unwrap();
    let limits = RuntimeLimits {
        call_timeout: Duration::from_secs(1),
        memory_limit: 16 << 20,
    };
    let engine = PluginEngine::new(16 << 20).unwrap();
    let config = config.to_string();
    load_plugin(
        &engine,
        bytes,
        Source::Builtin,
        &move |_| config.clone(),
        limits,
        Default::default(),
    )
    .unwrap()
}

/// The native verdict in the host's terms (attributes sorted: order is not meaning).
fn native_answer(v: Verdict) -> Answer {
    match v {
        Verdict::NeedMore => Answer::NeedMore,
        Verdict::NoMatch => Answer::NoMatch,
        Verdict::Matched(d) => {
            let d = d.folded();
            Answer::Matched(wasmray::session::Delta {
                set: d.set,
                remove: d.remove,
                protocol: d.protocol,
                sniffed_domain: d.sniffed_domain,
                outbound: d.outbound,
            })
        }
    }
}

fn sorted(a: Answer) -> Answer {
    match a {
        Answer::Matched(mut d) => {
            d.set.sort();
            d.remove.sort();
            Answer::Matched(d)
        }
        other => other,
    }
}

fn host_snapshot(s: &wasmray_plugin_sdk::Snapshot) -> Snapshot {
    let network = if s.network == wasmray_plugin_sdk::Network::Udp {
        Network::Udp
    } else {
        Network::Tcp
    };
    let mut f = SnapshotFields::new(
        &s.inbound_tag,
        s.source.parse().unwrap(),
        network,
        Target::new(s.target_host.as_str(), s.target_port),
    );
    f.user = s.user.as_deref().map(Into::into);
    f.protocol = s.protocol.as_deref().map(Into::into);
    f.route_domain = s.sniffed_domain.as_deref().map(Into::into);
    for (k, v) in &s.attributes {
        f.attrs.insert(k.into(), v.into());
    }
    f.freeze()
}

fn agree<P: Plugin>(
    native: &Harness<P>,
    wasm: &LoadedPlugin,
    snapshot: &wasmray_plugin_sdk::Snapshot,
    payload: &[u8],
) {
    let n = sorted(native_answer(native.handle(snapshot, payload)));
    let w = sorted(wasm.handle(&host_snapshot(snapshot), payload).unwrap());
    assert_eq!(
        n,
        w,
        "native and wasm disagree on {:?} / {:?}",
        snapshot,
        String::from_utf8_lossy(payload)
    );
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn garbage() -> Vec<Vec<u8>> {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    (0..50)
        .map(|i| {
            (0..(i * 37 % 700))
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect()
        })
        .collect()
}

#[test]
fn sniffers_agree_on_every_prefix_of_real_inputs_and_on_garbage() {
    let http_native = Harness::<sniff_http::SniffHttp>::new("{}");
    let tls_native = Harness::<sniff_tls::SniffTls>::new("{}");
    let (http, tls) = (wasm("sniff-http", "{}"), wasm("sniff-tls", "{}"));
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/sniff-tls/tests/fixtures");
    let mut inputs: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n".to_vec(),
        b"POST /api?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 5\r\nCache-Control: no-cache\r\n\r\nhello".to_vec(),
        b"GET /a HTTP/1.1\r\nHost: a.example\r\n\r\nGET /b HTTP/1.1\r\nHost: b.example\r\n\r\n".to_vec(),
        b"get /lf HTTP/1.0\nHost: lf.example\n\n".to_vec(),
        wasmray_plugin_sdk::tls::build_client_hello(Some("www.example.com"), &["h2", "http/1.1"]),
    ];
    for f in std::fs::read_dir(fixtures).unwrap() {
        inputs.push(hex(&std::fs::read_to_string(f.unwrap().path()).unwrap()));
    }
    let snapshot = SnapshotBuilder::new().build();
    for input in &inputs {
        for end in 0..=input.len() {
            agree(&http_native, &http, &snapshot, &input[..end]);
            agree(&tls_native, &tls, &snapshot, &input[..end]);
        }
    }
    for g in garbage() {
        agree(&http_native, &http, &snapshot, &g);
        agree(&tls_native, &tls, &snapshot, &g);
    }
}

#[test]
fn the_router_agrees_on_a_table_of_sessions() {
    let native = Harness::<route_rules::RouteRules>::new(ROUTE_CONFIG);
    let wasm = wasm("route-rules", ROUTE_CONFIG);
    let cases = [
        SnapshotBuilder::new().target("example.com", 443).build(),
        SnapshotBuilder::new().target("x1.example", 443).build(),
        SnapshotBuilder::new().target("cdn.ads.example", 80).build(),
        SnapshotBuilder::new().target("10.1.2.3", 80).build(),
        SnapshotBuilder::new().target("10.1.2.3", 8080).build(),
        SnapshotBuilder::new().target("fd00::1", 22).build(),
        SnapshotBuilder::new()
            .target("1.1.1.1", 53)
            .attr("cache-control", "no-cache")
            .build(),
        SnapshotBuilder::new()
            .target("bad.example", 80)
            .attr("cache-control", "no-cache")
            .build(),
        SnapshotBuilder::new()
            .user("bob@example.com")
            .protocol("tls")
            .build(),
        SnapshotBuilder::new()
            .user("alice@example.com")
            .protocol("tls")
            .build(),
    ];
    for snapshot in &cases {
        agree(&native, &wasm, snapshot, b"");
    }
}
