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
