//! `[dns]` end to end, against a DNS server the test starts on loopback: the resolver
//! over UDP, TCP and DNS over HTTPS with its cache and its timeout, and route-rules'
//! `domain_strategy` routing real VLESS sessions by the addresses of their domain,
//! dialed at the address the host resolved (the system could not resolve `.test`).

use std::time::Duration;

use wasmray::config::{Config, DnsConfig, DnsServer};
use wasmray::dns::{DnsError, Resolver};
use wasmray::proto::{Address, Destination};
use wasmray_tests::dns_server::{self, Zone};
use wasmray_tests::vless_client::echoes;
use wasmray_tests::{CertDir, TestServer, server_toml, servers};

fn config(server: DnsServer) -> DnsConfig {
    DnsConfig {
        servers: vec![server],
        timeout: Duration::from_millis(500),
        ..DnsConfig::default()
    }
}

async fn zone() -> dns_server::DnsServer {
    let zone = Zone::new()
        .with("both.test", &["192.0.2.7", "2001:db8::7", "192.0.2.8"])
        .with("v6.test", &["2001:db8::6"])
        .slow("slow.test", &["192.0.2.9"], Duration::from_secs(3));
    dns_server::DnsServer::start(zone).await
}

#[tokio::test]
async fn udp_tcp_and_https_servers_answer_and_the_cache_keeps_the_answer() {
    let dns = zone().await;
    let https = DnsServer::Https {
        addr: dns.https,
        path: "/dns-query".into(),
    };
    let resolvers = [
        ("udp", Resolver::new(&config(DnsServer::Udp(dns.udp)))),
        ("tcp", Resolver::new(&config(DnsServer::Tcp(dns.tcp)))),
        ("https", Resolver::with_tls(&config(https), dns.tls())),
    ];
    for (kind, resolver) in resolvers {
        let before = dns.questions();
        let ips = resolver.resolve("Both.Test").await.unwrap();
        let want: Vec<std::net::IpAddr> = ["192.0.2.7", "192.0.2.8", "2001:db8::7"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let mut sorted = ips.clone();
        sorted.sort();
        assert_eq!(sorted, want, "{kind}");
        assert!(
            ips[0].is_ipv4() && ips[2].is_ipv6(),
            "{kind}: IPv4 first: {ips:?}"
        );
        assert_eq!(
            dns.questions() - before,
            2,
            "{kind}: one A and one AAAA question"
        );
        // Cached for the answer's TTL: no second lookup.
        assert_eq!(resolver.resolve("both.test.").await.unwrap().len(), 3);
        assert_eq!(dns.questions() - before, 2, "{kind}: cached");
        let v6 = resolver.resolve("v6.test").await.unwrap();
        assert_eq!(
            v6,
            ["2001:db8::6".parse::<std::net::IpAddr>().unwrap()],
            "{kind}"
        );
        match resolver.resolve("missing.test").await {
            Err(DnsError::Lookup { name, .. }) => assert_eq!(name, "missing.test"),
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_slow_server_costs_at_most_the_timeout() {
    let dns = zone().await;
    let resolver = Resolver::new(&config(DnsServer::Udp(dns.udp)));
    let started = tokio::time::Instant::now();
    let result = resolver.resolve("slow.test").await;
    assert!(
        matches!(result, Err(DnsError::Timeout { .. })),
        "{result:?}"
    );
    // Bounded: the configured 500 ms, far below the server's 3 s.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

const ROUTES: &str = r#"
[dns]
servers = ["udp://DNS"]
timeout = "1s"

[plugins]
route_only = true

[plugins.config.route-rules]
default = "block"
domain_strategy = "ip_if_non_match"
[[plugins.config.route-rules.rule]]
domain = ["full:named.test"]
outbound = "block"
[[plugins.config.route-rules.rule]]
ip = ["127.0.0.0/8"]
outbound = "direct"
"#;

/// Whether a session to `host` at the echo's port is routed direct and dialed (the
/// echo answers) rather than blocked.
async fn echoed(server: &TestServer, host: &str, port: u16) -> bool {
    let dest = Destination::new(Address::Domain(host.into()), port);
    echoes(server.addr, &server.certs.cert_der, dest, b"ping").await
}

#[tokio::test]
async fn ip_if_non_match_routes_by_the_resolved_address_and_dials_it() {
    let dns = dns_server::DnsServer::start(
        Zone::new()
            .with("echo.test", &["127.0.0.1", "::1"])
            .with("named.test", &["127.0.0.1"])
            .with("far.test", &["192.0.2.1"]),
    )
    .await;
    let certs = CertDir::new();
    let routes = ROUTES.replace("DNS", &dns.udp.to_string());
    let config = Config::parse(&server_toml("", &routes), certs.path()).unwrap();
    let server = TestServer::start_with(config, certs).await;
    let echo = servers::echo().await;

    assert!(
        echoed(&server, "echo.test", echo.port()).await,
        "127.0.0.1 is direct"
    );
    let after_first = dns.questions();
    assert_eq!(after_first, 2, "A and AAAA: {:?}", dns.asked());
    assert!(echoed(&server, "ECHO.test", echo.port()).await);
    assert_eq!(
        dns.questions(),
        after_first,
        "the second session used the cache"
    );
    // A domain rule matched first: never resolved, and its outbound wins.
    assert!(!echoed(&server, "named.test", echo.port()).await);
    assert!(!dns.asked().contains(&"named.test".to_string()));
    // Resolved elsewhere, or not at all: the default (block).
    assert!(!echoed(&server, "far.test", echo.port()).await);
    assert!(!echoed(&server, "unknown.test", echo.port()).await);
    let page = server.daemon.metrics.encode();
    assert!(
        page.contains(r#"wasmray_dns_lookups_total{result="ok"} 3"#),
        "{page}"
    );
    assert!(
        page.contains(r#"wasmray_dns_lookups_total{result="failed"} 1"#),
        "{page}"
    );
}
