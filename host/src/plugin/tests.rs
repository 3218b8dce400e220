//! The built-in plugins through the runtime, called again and again on reused
//! instances: each answer depends only on its own session.

use super::*;
use crate::session::{Network, SnapshotFields, Target};

fn builtin(name: &str) -> LoadedPlugin {
    let bytes = BUILTIN
        .iter()
        .find(|b| b.name == name)
        .map(|b| b.wasm)
        .unwrap();
    let engine = PluginEngine::new(16 << 20).unwrap();
    let rules = r#"{"default": "block", "rule": [{"attrs": {"cache-control": "no-cache"}, "outbound": "direct"}]}"#;
    let config = if name == "route-rules" { rules } else { "{}" };
    let limits = RuntimeLimits {
        call_timeout: std::time::Duration::from_millis(100),
        memory_limit: 16 << 20,
    };
    load_plugin(
        &engine,
        bytes,
        Source::Builtin,
        &|_| config.to_string(),
        limits,
        Default::default(),
    )
    .unwrap()
}

fn snapshot(attrs: &[(&str, &str)]) -> crate::session::Snapshot {
    let mut f = SnapshotFields::new(
        "in",
        "127.0.0.1:1000".parse().unwrap(),
        Network::Tcp,
        Target::new("example.com", 80),
    );
    for (k, v) in attrs {
        f.attrs.insert((*k).into(), (*v).into());
    }
    f.freeze()
}

#[test]
fn reused_instances_answer_each_session_on_its_own() {
    let http = builtin("sniff-http");
    let rules = builtin("route-rules");
    for i in 0..20 {
        let cache = if i % 2 == 0 { "no-cache" } else { "max-age=1" };
        let request =
            format!("GET /{i} HTTP/1.1\r\nHost: h{i}.example\r\nCache-Control: {cache}\r\n\r\n");
        let Answer::Matched(d) = http.handle(&snapshot(&[]), request.as_bytes()).unwrap() else {
            panic!("round {i}")
        };
        assert_eq!(
            d.sniffed_domain.as_deref(),
            Some(format!("h{i}.example").as_str()),
            "round {i}"
        );
        assert!(
            d.set.contains(&("cache-control".into(), cache.into())),
            "round {i}: {d:?}"
        );
        let expected = if i % 2 == 0 { "direct" } else { "block" };
        let Answer::Matched(r) = rules
            .handle(&snapshot(&[("cache-control", cache)]), b"")
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(r.outbound.as_deref(), Some(expected), "round {i}");
    }
}

/// The plugins config of `text` (a `[plugins]` table) with relative paths in `base`.
fn plugins_config(base: &std::path::Path, text: &str) -> crate::config::PluginsConfig {
    let text = format!("[[outbound]]\ntag = \"direct\"\ntype = \"direct\"\n{text}");
    crate::config::Config::parse(&text, base).unwrap().plugins
}

#[test]
fn the_built_ins_default_memory_limit_is_the_one_they_are_precompiled_for() {
    let dir = tempfile::tempdir().unwrap();
    let config = plugins_config(dir.path(), "");
    assert_eq!(config.memory_limit, engine_config::DEFAULT_MEMORY_LIMIT);
    let engine = PluginEngine::new(config.memory_limit).unwrap();
    for b in BUILTIN {
        assert!(!b.precompiled.is_empty(), "{} is precompiled", b.name);
        // SAFETY: the build script wrote these with wasmtime's serializer.
        let fits =
            unsafe { wasmtime::component::Component::deserialize(&engine.engine, b.precompiled) };
        assert!(fits.is_ok(), "{}: {:?}", b.name, fits.err());
    }
}

#[test]
fn a_directory_plugin_is_compiled_once_and_loaded_from_the_cache_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    let wasm = BUILTIN.iter().find(|b| b.name == "sniff-tls").unwrap().wasm;
    std::fs::write(plugins.join("tls.wasm"), wasm).unwrap();
    let config = plugins_config(
        dir.path(),
        "[plugins]\ndir = \"plugins\"\ncache = \"cache\"\n",
    );
    let entries = || {
        let mut e: Vec<_> = std::fs::read_dir(dir.path().join("cache"))
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), e.metadata().unwrap().modified().unwrap())
            })
            .collect();
        e.sort();
        e
    };
    let first = Registry::start(config.clone()).unwrap();
    let source = |r: &Registry| {
        let pipeline = r.pipeline();
        let p = pipeline
            .plugins
            .iter()
            .find(|p| &*p.name == "sniff-tls")
            .unwrap();
        p.source.clone()
    };
    assert_eq!(source(&first), Source::File(plugins.join("tls.wasm")));
    drop(first);
    let written = entries();
    assert_eq!(written.len(), 1, "one compiled file: {written:?}");
    let second = Registry::start(config).unwrap();
    assert_eq!(source(&second), Source::File(plugins.join("tls.wasm")));
    assert_eq!(
        entries(),
        written,
        "loaded from the cache, not compiled and written again"
    );
}

/// route-rules built to wasm, asking the shared geodata through the 0.3 contract.
#[test]
fn route_rules_in_wasm_route_on_geosite_geoip_and_rule_sets() {
    use crate::geodata::{GeoData, dat::write, source};
    let geosite = write::geosite(&[
        (
            "ADS",
            vec![(2, "ads.example", &[][..]), (0, "tracker", &[][..])],
        ),
        (
            "google",
            vec![
                (2, "google.com", &[][..]),
                (3, "www.google.cn", &["cn"][..]),
            ],
        ),
    ]);
    let ip = |s: &str| s.parse().unwrap();
    let geoip = write::geoip(&[
        ("private", vec![(ip("10.0.0.0"), 8)], false),
        ("cn", vec![(ip("1.0.1.0"), 24)], false),
    ]);
    let mut data = GeoData {
        geosite: Some(crate::geodata::dat::geosite(&geosite).unwrap()),
        geoip: Some(crate::geodata::dat::geoip(&geoip).unwrap()),
        ..GeoData::default()
    };
    let set = r#"{"version": 3, "rules": [{"domain_suffix": "video.example", "source_ip_cidr": "127.0.0.0/8"}]}"#;
    data.rule_sets
        .insert("media".into(), source::parse(set).unwrap());
    let rules = r#"{"default": "proxy", "rule": [
        {"domain": "geosite:ads", "outbound": "block"},
        {"domain": "geosite:google@cn", "outbound": "direct"},
        {"ip": ["geoip:private", "geoip:cn"], "outbound": "direct"},
        {"rule_set": "media", "outbound": "media"}]}"#;
    let bytes = BUILTIN.iter().find(|b| b.name == "route-rules").unwrap();
    let engine = PluginEngine::new(16 << 20).unwrap();
    let limits = RuntimeLimits {
        call_timeout: std::time::Duration::from_millis(100),
        memory_limit: 16 << 20,
    };
    let data = std::sync::Arc::new(data);
    let plugin = load_plugin(
        &engine,
        bytes,
        Source::Builtin,
        &|_| rules.to_string(),
        limits.clone(),
        data.clone(),
    )
    .unwrap();
    let route = |host: &str| {
        let f = SnapshotFields::new(
            "in",
            "127.0.0.1:1000".parse().unwrap(),
            Network::Tcp,
            Target::new(host, 443),
        );
        match plugin.handle(&f.freeze(), b"").unwrap() {
            Answer::Matched(d) => d.outbound.unwrap(),
            other => panic!("{host}: {other:?}"),
        }
    };
    for (host, outbound) in [
        ("x.ADS.example", "block"),
        ("my-tracker.net", "block"),
        ("www.google.cn", "direct"),
        ("mail.google.com", "proxy"),
        ("10.9.8.7", "direct"),
        ("1.0.1.1", "direct"),
        ("8.8.8.8", "proxy"),
        ("a.video.example", "media"),
    ] {
        assert_eq!(route(host), outbound, "{host}");
    }
    // A list the data does not have refuses the config, by name.
    let missing = r#"{"rule": [{"domain": "geosite:nope", "outbound": "x"}]}"#;
    let err = load_plugin(
        &engine,
        bytes,
        Source::Builtin,
        &|_| missing.to_string(),
        limits,
        data,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("no list \"geosite:nope\""),
        "{err}"
    );
}
