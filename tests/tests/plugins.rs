//! The plugin platform under attack and under load: hostile plugins are contained while
//! the daemon keeps routing; the router file is swapped 20 times under load with no
//! failed session; a corrupt file never replaces a working one.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use wasmray::plugin::{
    Answer, CONTRACT, PluginEngine, PluginError, RuntimeLimits, Source, load_plugin,
};
use wasmray::session::{Network, Snapshot, SnapshotFields, Target};
use wasmray_tests::vless_client::{connect_tcp, dest, read_all, read_response};
use wasmray_tests::{TestServer, logcapture, server_toml, servers};

const HOSTILE: &str = env!("WASM_HOSTILE");
const HOSTILE_WASI: &str = env!("WASM_HOSTILE_WASI");
const SWAP_A: &str = env!("WASM_SWAP_A");
const SWAP_B: &str = env!("WASM_SWAP_B");
const EXAMPLE: &str = env!("WASM_EXAMPLE");
const LEGACY_0_2: &str = env!("WASM_LEGACY_0_2");

fn limits() -> RuntimeLimits {
    // Generous for normal calls on a loaded CI machine; the loop still hits it.
    RuntimeLimits {
        call_timeout: Duration::from_millis(50),
        memory_limit: 16 << 20,
    }
}

fn load(bytes: &[u8], config: &str) -> Result<wasmray::plugin::LoadedPlugin, PluginError> {
    let engine = PluginEngine::new(16 << 20).unwrap();
    let config = config.to_string();
    load_plugin(
        &engine,
        bytes,
        Source::File("test.wasm".into()),
        &move |_| config.clone(),
        limits(),
        Default::default(),
    )
}

fn snapshot() -> Snapshot {
    let source: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    SnapshotFields::new(
        "test-in",
        source,
        Network::Tcp,
        Target::new("example.com", 80),
    )
    .freeze()
}

#[test]
fn hostile_plugins_are_contained_and_the_plugin_keeps_serving() {
    let plugin = load(&std::fs::read(HOSTILE).unwrap(), "{}").unwrap();
    let s = snapshot();
    type Check = fn(&PluginError) -> bool;
    let cases: [(&str, Check); 4] = [
        ("loop", |e| matches!(e, PluginError::Timeout(_))),
        ("bomb", |e| matches!(e, PluginError::MemoryLimit(_))),
        (
            "panic",
            |e| matches!(e, PluginError::Trap { panic: Some(p), .. } if p.contains("panics on purpose")),
        ),
        ("huge", |e| matches!(e, PluginError::Malformed(_))),
    ];
    for (mode, expected) in cases {
        let err = plugin
            .handle(&s, format!("HOSTILE {mode}\n").as_bytes())
            .unwrap_err();
        assert!(expected(&err), "{mode}: unexpected error {err}");
        assert_eq!(
            plugin.handle(&s, b"GET / HTTP/1.1\r\n").unwrap(),
            Answer::NoMatch,
            "after {mode}"
        );
    }
}

#[test]
fn a_wrong_contract_version_and_a_wasi_import_are_refused_by_name() {
    let mut bytes = std::fs::read(HOSTILE).unwrap();
    let from = format!("@{CONTRACT}");
    let (from, to) = (from.as_bytes(), b"@0.9.0");
    let mut patched = 0;
    for i in 0..bytes.len().saturating_sub(from.len()) {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            patched += 1;
        }
    }
    assert!(patched > 0, "the module names its contract version");
    let err = load(&bytes, "{}").unwrap_err();
    assert!(
        matches!(&err, PluginError::ContractVersion { found, .. } if found == "0.9.0"),
        "{err}"
    );
    assert!(
        err.to_string().contains("0.9.0") && err.to_string().contains(CONTRACT),
        "{err}"
    );

    let err = load(&std::fs::read(HOSTILE_WASI).unwrap(), "{}").unwrap_err();
    assert!(matches!(err, PluginError::ForbiddenImport(_)), "{err}");
    assert!(
        err.to_string()
            .contains("wasi_snapshot_preview1::proc_exit"),
        "{err}"
    );

    let err = load(b"\0asm garbage", "{}").unwrap_err();
    assert!(matches!(err, PluginError::NotWasm(_)), "{err}");
}

#[test]
fn a_plugin_built_against_contract_0_2_still_loads_and_routes() {
    let bytes = std::fs::read(LEGACY_0_2).unwrap();
    let plugin = load(&bytes, "{}").unwrap();
    assert_eq!(&*plugin.name, "legacy-router");
    let Answer::Matched(d) = plugin.handle(&snapshot(), b"").unwrap() else {
        panic!("no match")
    };
    assert_eq!(d.outbound.as_deref(), Some("legacy"));
    assert!(d.set.contains(&("legacy".into(), "yes".into())), "{d:?}");
    // The SDK's plugins speak the current contract.
    let current = std::fs::read(EXAMPLE).unwrap();
    assert!(
        current
            .windows(CONTRACT.len())
            .any(|w| w == CONTRACT.as_bytes())
    );
    assert!(
        !bytes
            .windows(CONTRACT.len())
            .any(|w| w == CONTRACT.as_bytes())
    );
}

#[test]
fn the_sdk_example_plugin_routes_by_header() {
    let config = r#"{"header": "x-route", "routes": {"eu": "proxy-eu"}, "default": "direct"}"#;
    let plugin = load(&std::fs::read(EXAMPLE).unwrap(), config).unwrap();
    let mut fields = snapshot().to_fields();
    fields.attrs.insert("x-route".into(), "eu".into());
    match plugin.handle(&fields.freeze(), b"").unwrap() {
        Answer::Matched(d) => assert_eq!(d.outbound.as_deref(), Some("proxy-eu")),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        load(&std::fs::read(EXAMPLE).unwrap(), "{}"),
        Err(PluginError::Configure(_))
    ));
}

fn plugin_dir_toml(dir: &Path, pipeline: &str, outbounds: &str) -> String {
    let plugins = format!(
        "{outbounds}\n[plugins]\ndir = \"{}\"\npipeline = {pipeline}\ncall_timeout = \"50ms\"\n",
        dir.display()
    );
    server_toml("", &plugins)
}

async fn echo_session(
    server: &TestServer,
    echo: SocketAddr,
    payload: &[u8],
) -> std::io::Result<(Vec<u8>, String)> {
    let mut s = connect_tcp(server.addr, &server.certs.cert_der, dest(echo), payload).await?;
    let source = s.get_ref().0.local_addr()?.to_string();
    s.shutdown().await?;
    read_response(&mut s).await?;
    Ok((read_all(&mut s).await?, source))
}

#[tokio::test]
async fn the_daemon_keeps_routing_while_a_plugin_misbehaves() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(HOSTILE, dir.path().join("hostile.wasm")).unwrap();
    let toml = plugin_dir_toml(
        dir.path(),
        r#"["hostile", "sniff-http", "sniff-tls", "route-rules"]"#,
        "",
    );
    let server = TestServer::start(&toml).await;
    let echo = servers::echo().await;
    for mode in ["loop", "bomb", "panic", "huge", "loop"] {
        let payload = format!("HOSTILE {mode}\n");
        let (reply, _) = tokio::time::timeout(
            Duration::from_secs(30),
            echo_session(&server, echo, payload.as_bytes()),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            reply,
            payload.as_bytes(),
            "{mode}: the session was routed despite the plugin"
        );
    }
}

/// Replaces `dir/swap-router.wasm` atomically (write aside, then rename).
fn replace(dir: &Path, bytes: &[u8]) {
    let aside = dir
        .parent()
        .unwrap()
        .join(format!("swap-{}.tmp", std::process::id()));
    std::fs::write(&aside, bytes).unwrap();
    std::fs::rename(&aside, dir.join("swap-router.wasm")).unwrap();
}

fn router_version(server: &TestServer) -> (u64, String) {
    let pipeline = server.daemon.registry.pipeline();
    let router = pipeline
        .plugins
        .iter()
        .find(|p| &*p.name == "swap-router")
        .expect("in the pipeline");
    (pipeline.generation, router.version.clone())
}

async fn wait_for(server: &TestServer, what: impl Fn(u64, &str) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (generation, version) = router_version(server);
        if what(generation, &version) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no swap seen (generation {generation}, version {version})"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_is_swapped_20_times_under_load_without_a_failed_session() {
    logcapture::install();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("plugins");
    std::fs::create_dir(&dir).unwrap();
    let (a, b) = (
        std::fs::read(SWAP_A).unwrap(),
        std::fs::read(SWAP_B).unwrap(),
    );
    replace(&dir, &a);
    let outbounds = "[[outbound]]\ntag = \"a\"\ntype = \"direct\"\n[[outbound]]\ntag = \"b\"\ntype = \"direct\"\n";
    let server = Arc::new(
        TestServer::start(&plugin_dir_toml(
            &dir,
            r#"["sniff-http", "swap-router"]"#,
            outbounds,
        ))
        .await,
    );
    let echo = servers::echo().await;
    assert_eq!(router_version(&server).1, "a");

    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (server, stop, done, failed) =
            (server.clone(), stop.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match echo_session(&server, echo, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    .await
                {
                    Ok((reply, _)) if reply.starts_with(b"GET / ") => {
                        done.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    for round in 0..20 {
        let (expected, bytes) = if round % 2 == 0 { ("b", &b) } else { ("a", &a) };
        replace(&dir, bytes);
        wait_for(&server, |_, v| v == expected).await;
        // A session started after the swap follows the new logic.
        let mark = logcapture::mark();
        let check = echo_session(
            &server,
            echo,
            b"GET /check HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        )
        .await;
        let (_, source) =
            check.unwrap_or_else(|e| panic!("round {round}: {e}; log:\n{}", logcapture::all()));
        let line = logcapture::wait_access_line(mark, &source)
            .await
            .expect("an access-log line for the session");
        assert_eq!(
            logcapture::outbound_of(&line),
            Some(expected),
            "round {round}: {line}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed sessions during the swaps"
    );
    assert!(
        done.load(Ordering::Relaxed) >= 20,
        "the load ran: {} sessions",
        done.load(Ordering::Relaxed)
    );

    // A corrupt file is refused; the working version keeps serving.
    let (generation, version) = router_version(&server);
    replace(&dir, b"\0asm\x01\0\0\0 this is not a plugin");
    wait_for(&server, |g, _| g > generation).await;
    assert_eq!(
        router_version(&server).1,
        version,
        "the corrupt file did not replace the working plugin"
    );
    let mark = logcapture::mark();
    let after = echo_session(
        &server,
        echo,
        b"GET /after HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    )
    .await;
    let (reply, source) = after.unwrap_or_else(|e| panic!("{e}; log:\n{}", logcapture::all()));
    assert!(reply.starts_with(b"GET /after"));
    let line = logcapture::wait_access_line(mark, &source).await.unwrap();
    assert_eq!(
        logcapture::outbound_of(&line),
        Some(version.as_str()),
        "{line}"
    );
}

#[tokio::test]
async fn the_sdk_example_plugin_routes_in_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(EXAMPLE, dir.path().join("example-header-router.wasm")).unwrap();
    let mut toml = plugin_dir_toml(
        dir.path(),
        r#"["sniff-http", "example-header-router", "route-rules"]"#,
        "",
    );
    toml.push_str("[plugins.config.example-header-router]\nheader = \"x-route\"\n[plugins.config.example-header-router.routes]\nnope = \"block\"\n");
    let server = TestServer::start(&toml).await;
    let echo = servers::echo().await;
    let plain = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_eq!(echo_session(&server, echo, plain).await.unwrap().0, plain);
    let routed = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Route: nope\r\n\r\n";
    let reply = echo_session(&server, echo, routed)
        .await
        .map(|r| r.0)
        .unwrap_or_default();
    assert!(
        reply.is_empty(),
        "the example plugin sent the session to block: {reply:?}"
    );
}

/// A file that describes itself with a built-in's name overrides it; removing the file
/// brings the built-in back.
#[tokio::test]
async fn a_file_overrides_a_builtin_until_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let toml = plugin_dir_toml(
        dir.path(),
        r#"["sniff-http", "sniff-tls", "route-rules"]"#,
        "",
    );
    let server = TestServer::start(&toml).await;
    let source = || {
        let pipeline = server.daemon.registry.pipeline();
        let rules = pipeline
            .plugins
            .iter()
            .find(|p| &*p.name == "route-rules")
            .unwrap();
        (pipeline.generation, rules.source.clone())
    };
    assert_eq!(source().1, Source::Builtin);
    let bytes = wasmray::plugin::BUILTIN
        .iter()
        .find(|b| b.name == "route-rules")
        .unwrap()
        .wasm;
    let file = dir.path().join("my-rules.wasm");
    std::fs::write(&file, bytes).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while source().1 != Source::File(file.clone()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the file never took over"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    std::fs::remove_file(&file).unwrap();
    while source().1 != Source::Builtin {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the built-in never came back"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_plugin_that_keeps_failing_is_quarantined_per_its_policy_and_comes_back() {
    use std::collections::BTreeMap;
    use wasmray::config::{OnError, Quarantine};
    use wasmray::plugin::{Pipeline, PipelineSettings};
    logcapture::install();
    let hostile = Arc::new(load(&std::fs::read(HOSTILE).unwrap(), "{}").unwrap());
    let pipeline = Pipeline {
        generation: 1,
        plugins: vec![hostile],
        settings: PipelineSettings {
            sniff_window: Duration::from_millis(200),
            // Skip for the others; this one closes the session when it fails.
            on_error: OnError::Skip,
            policies: BTreeMap::from([("hostile".to_string(), OnError::Block)]),
            quarantine: Quarantine {
                failures: 3,
                window: Duration::from_secs(30),
                backoff: Duration::from_millis(200),
                max_backoff: Duration::from_secs(1),
            },
            dest_override: Vec::new(),
            route_only: false,
        },
    };
    let s = snapshot();
    let sniff = |payload: &[u8]| {
        let mut state = pipeline.new_sniff_state();
        pipeline.sniff(&s, payload, &mut state).is_ok()
    };
    assert!(sniff(b"GET / HTTP/1.1\r\n"), "a call that succeeds");
    for _ in 0..3 {
        assert!(!sniff(b"HOSTILE panic\n"), "block: the session is closed");
    }
    // Quarantined: not called, so even a benign session follows its policy.
    assert!(!sniff(b"GET / HTTP/1.1\r\n"), "skipped while quarantined");
    assert!(logcapture::all().contains("plugin quarantined for 0.2s"));
    // After the backoff one trial call runs; it succeeds and the plugin is back.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !sniff(b"GET / HTTP/1.1\r\n") {
        assert!(std::time::Instant::now() < deadline, "never tried again");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(logcapture::all().contains("plugin back in the pipeline"));
    assert!(sniff(b"GET / HTTP/1.1\r\n"));
}
