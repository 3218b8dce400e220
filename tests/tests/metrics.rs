//! Prometheus metrics of a daemon that served traffic, read as a scraper reads them:
//! `curl` fetches `/metrics` and the page is parsed sample by sample.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::config::Config;
use wasmray::daemon::Daemon;
use wasmray_tests::vless_client::{connect_tcp, dest, header, read_response, tls_connect};
use wasmray_tests::{CertDir, servers};

/// `name{labels}` -> value, for every sample line of a text-format page.
fn parse(page: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in page
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("not a value in {line:?}"));
        assert!(
            series.starts_with("wasmray_"),
            "a series outside wasmray_: {line:?}"
        );
        assert!(
            samples.insert(series.to_string(), value).is_none(),
            "{series} twice"
        );
    }
    samples
}

fn scrape(url: &str) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", url])
        .output()
        .expect("curl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n");
    let (head, body) = text.split_once("\n\n").expect("a head and a body");
    (head.to_string(), body.to_string())
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples
        .get(series)
        .unwrap_or_else(|| panic!("no {series} in {samples:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrape_shows_sessions_bytes_failures_and_plugin_calls() {
    let certs = CertDir::new();
    let toml =
        wasmray_tests::server_toml("", "[metrics]\nlisten = \"127.0.0.1:0\"\nper_user = true\n");
    let config = Config::parse(&toml, certs.path()).expect("config");
    assert!(config.metrics.is_some_and(|m| m.per_user));
    let daemon = Arc::new(Daemon::start(&config).await.expect("daemon"));
    let vless = daemon.listeners().await[0].1;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(wasmray::metrics::serve(
        listener,
        Arc::clone(&daemon.metrics),
        std::future::pending(),
    ));

    // One HTTP request echoed through a VLESS session (so sniff-http is called).
    let echo = servers::echo().await;
    let request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut s = connect_tcp(vless, &certs.cert_der, dest(echo), request)
        .await
        .unwrap();
    read_response(&mut s).await.unwrap();
    let mut back = vec![0; request.len()];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(back, request);
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest).await;
    drop(s);

    // An unknown user, refused (no fallbacks).
    let mut bad = tls_connect(vless, &certs.cert_der, &["http/1.1"])
        .await
        .unwrap();
    let nobody = "00000000-0000-4000-8000-000000000000";
    let head = header(nobody, wasmray::proto::vless::Command::Tcp(dest(echo)));
    bad.write_all(&head).await.unwrap();
    bad.flush().await.unwrap();
    assert!(
        read_response(&mut bad).await.is_err(),
        "an unknown user is refused"
    );
    drop(bad);

    let n = request.len() as f64;
    let samples = tokio::task::spawn_blocking(move || {
        // The session's end and the refusal are counted when their tasks finish:
        // scrape until both are in (bounded).
        let want = r#"wasmray_handshake_failures_total{inbound="vless-in",reason="auth"}"#;
        let ended = r#"wasmray_sessions_total{inbound="vless-in",outbound="direct",network="tcp",outcome="ok"}"#;
        for _ in 0..200 {
            let (head, body) = scrape(&url);
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: text/plain; version=0.0.4"),
                "{head}"
            );
            let samples = parse(&body);
            if samples.contains_key(want) && samples.contains_key(ended) {
                return samples;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the session and the refusal were never counted: {}", scrape(&url).1);
    })
    .await
    .unwrap();

    assert_eq!(
        value(
            &samples,
            r#"wasmray_handshake_failures_total{inbound="vless-in",reason="auth"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            r#"wasmray_sessions_total{inbound="vless-in",outbound="",network="tcp",outcome="rejected"}"#
        ),
        1.0
    );
    let ok = r#"wasmray_sessions_total{inbound="vless-in",outbound="direct",network="tcp",outcome="ok"}"#;
    assert_eq!(value(&samples, ok), 1.0);
    for direction in ["uplink", "downlink"] {
        let ended = format!(
            r#"wasmray_session_bytes_total{{inbound="vless-in",outbound="direct",outcome="ok",direction="{direction}"}}"#
        );
        assert_eq!(value(&samples, &ended), n);
        let live =
            format!(r#"wasmray_inbound_bytes_total{{inbound="vless-in",direction="{direction}"}}"#);
        assert_eq!(value(&samples, &live), n);
        let user = format!(
            r#"wasmray_user_bytes_total{{user="alice@example.com",direction="{direction}"}}"#
        );
        assert_eq!(value(&samples, &user), n);
    }
    assert_eq!(
        value(&samples, r#"wasmray_active_sessions{inbound="vless-in"}"#),
        0.0
    );
    assert_eq!(
        value(&samples, r#"wasmray_connections{inbound="vless-in"}"#),
        0.0
    );
    // sniff-http recognised the request at once: one call, and no error.
    assert!(
        value(
            &samples,
            r#"wasmray_plugin_calls_total{plugin="sniff-http"}"#
        ) >= 1.0
    );
    assert!(
        value(
            &samples,
            r#"wasmray_plugin_call_seconds_count{plugin="sniff-http"}"#
        ) >= 1.0
    );
    assert!(
        !samples
            .keys()
            .any(|k| k.starts_with("wasmray_plugin_errors_total")),
        "{samples:#?}"
    );
    let build = format!(
        r#"wasmray_build_info{{version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(value(&samples, &build), 1.0);
    drop(daemon);
}

#[tokio::test]
async fn metrics_bind_loopback_unless_allowed_and_other_paths_are_not_found() {
    let certs = CertDir::new();
    let remote = wasmray_tests::server_toml("", "[metrics]\nlisten = \"0.0.0.0:9100\"\n");
    let err = Config::parse(&remote, certs.path())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("metrics.listen") && err.contains("allow_remote"),
        "{err}"
    );
    let allowed = wasmray_tests::server_toml(
        "",
        "[metrics]\nlisten = \"0.0.0.0:9100\"\nallow_remote = true\n",
    );
    let listen: SocketAddr = "0.0.0.0:9100".parse().unwrap();
    assert_eq!(
        Config::parse(&allowed, certs.path())
            .unwrap()
            .metrics
            .map(|m| m.listen),
        Some(listen)
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(wasmray::metrics::serve(
        listener,
        Arc::new(wasmray::metrics::Metrics::default()),
        std::future::pending(),
    ));
    tokio::task::spawn_blocking(move || {
        let code = |args: &[&str]| {
            let out = Command::new("curl")
                .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
                .args(args)
                .output()
                .unwrap();
            String::from_utf8_lossy(&out.stdout).to_string()
        };
        assert_eq!(code(&[&format!("{base}/")]), "404");
        assert_eq!(code(&["-X", "POST", &format!("{base}/metrics")]), "405");
        assert_eq!(code(&["-I", &format!("{base}/metrics")]), "200");
    })
    .await
    .unwrap();
}
