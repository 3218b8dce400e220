use std::sync::Arc;
use std::time::Duration;

use super::*;

fn lines(page: &str) -> Vec<&str> {
    page.lines().filter(|l| !l.starts_with('#')).collect()
}

/// Metrics with one of every event recorded, and the guard of one open session.
fn populated(per_user: bool) -> (Metrics, Held) {
    let stats = Arc::new(Stats::new(true));
    stats.meter(Some("a@b"), "vless-in", "direct").up(10);
    let metrics = Metrics::new(stats.clone(), per_user);
    let inbound: Arc<str> = "vless-in".into();
    let outbound: Arc<str> = "direct".into();
    let open = metrics.session_open(&inbound);
    metrics.session_ended(&SessionEnd {
        inbound: &inbound,
        outbound: Some(&outbound),
        network: Network::Tcp,
        outcome: Outcome::Ok,
        up: 3,
        down: 0,
    });
    metrics.handshake_failed(&inbound, "auth");
    metrics.fallback(&inbound);
    metrics.sniff_waited(0.002, true);
    metrics.reloaded(false);
    metrics.dns_looked_up("timeout");
    drop(metrics.connections("vless-in"));
    metrics
        .plugins
        .for_plugin(&"sniff-http".into())
        .call(Duration::from_micros(20), Some("trap"));
    (metrics, open)
}

#[test]
fn sessions_handshakes_and_plugins_are_counted_under_their_labels() {
    let (metrics, open) = populated(false);
    let page = metrics.encode();
    let got = lines(&page);
    let build = format!(
        r#"wasmray_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(got.contains(&build.as_str()), "{page}");
    for want in [
        r#"wasmray_sessions_total{inbound="vless-in",outbound="direct",network="tcp",outcome="ok"} 1"#,
        r#"wasmray_session_bytes_total{inbound="vless-in",outbound="direct",outcome="ok",direction="uplink"} 3"#,
        r#"wasmray_active_sessions{inbound="vless-in"} 1"#,
        r#"wasmray_handshake_failures_total{inbound="vless-in",reason="auth"} 1"#,
        r#"wasmray_fallbacks_total{inbound="vless-in"} 1"#,
        r#"wasmray_connections{inbound="vless-in"} 0"#,
        r#"wasmray_sniff_wait_seconds_count 1"#,
        r#"wasmray_sniff_window_expired_total 1"#,
        r#"wasmray_reloads_total{result="failed"} 1"#,
        r#"wasmray_dns_lookups_total{result="timeout"} 1"#,
        r#"wasmray_plugin_calls_total{plugin="sniff-http"} 1"#,
        r#"wasmray_plugin_errors_total{plugin="sniff-http",kind="trap"} 1"#,
        r#"wasmray_plugin_call_seconds_count{plugin="sniff-http"} 1"#,
        r#"wasmray_inbound_bytes_total{inbound="vless-in",direction="uplink"} 10"#,
        r#"wasmray_outbound_bytes_total{outbound="direct",direction="downlink"} 0"#,
    ] {
        assert!(got.contains(&want), "missing {want} in\n{page}");
    }
    assert!(!page.contains("user_bytes"), "per-user bytes are opt-in");
    // A direction that moved nothing makes no session-bytes series.
    assert!(
        !page.contains(r#"outcome="ok",direction="downlink""#),
        "{page}"
    );
    drop(open);
    assert!(lines(&metrics.encode()).contains(&r#"wasmray_active_sessions{inbound="vless-in"} 0"#));
}

#[test]
fn per_user_bytes_appear_only_when_asked_for() {
    let stats = Arc::new(Stats::new(true));
    stats.meter(Some("a@b"), "in", "out").down(7);
    let page = Metrics::new(stats, true).encode();
    assert!(
        lines(&page).contains(&r#"wasmray_user_bytes_total{user="a@b",direction="downlink"} 7"#),
        "{page}"
    );
}

#[test]
fn every_metric_has_help_and_type_and_the_readme_names_it() {
    let (metrics, _open) = populated(true);
    let page = metrics.encode();
    let readme = include_str!("../../../README.md");
    let mut families = 0;
    for line in page.lines().filter(|l| l.starts_with("# TYPE ")) {
        let name = line.split(' ').nth(2).unwrap_or_default();
        assert!(
            page.contains(&format!("# HELP {name} ")),
            "{name} has no help"
        );
        assert!(
            readme.contains(&format!("`{name}`")),
            "README does not document `{name}`"
        );
        families += 1;
    }
    assert!(families >= 13, "{page}");
}
