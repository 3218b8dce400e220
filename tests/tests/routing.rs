//! Routing by the built-in plugins, end to end over plain VLESS connections: an HTTP
//! request by its `Cache-Control` (an `attrs` rule), a TLS connection by its SNI.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use wasmray_tests::vless_client::{connect_tcp, dest, read_all};
use wasmray_tests::{TestServer, server_toml, servers};

const RULES: &str = r#"
[plugins]
call_timeout = "250ms"
route_only = true          # route by the sniffed domain, dial the address asked for

[plugins.config.route-rules]
default = "block"
[[plugins.config.route-rules.rule]]
attrs = { "cache-control" = "no-cache" }
outbound = "direct"
[[plugins.config.route-rules.rule]]
domain = ["full:allowed.test"]
outbound = "direct"
"#;

async fn session(server: &TestServer, target: std::net::SocketAddr, first: &[u8]) -> Vec<u8> {
    let mut s = connect_tcp(server.addr, &server.certs.cert_der, dest(target), first)
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), read_all(&mut s))
        .await
        .unwrap()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_attrs_rule_routes_by_cache_control() {
    let server = TestServer::start(&server_toml("", RULES)).await;
    let web = servers::http("the page").await;
    let fresh = session(
        &server,
        web,
        b"GET /f HTTP/1.1\r\nHost: 127.0.0.1\r\nCache-Control: no-cache\r\n\r\n",
    )
    .await;
    let text = String::from_utf8_lossy(&fresh);
    assert!(
        text.starts_with("\0\0HTTP/1.1 200 OK") && text.ends_with("the page"),
        "{text:?}"
    );
    let cached = session(
        &server,
        web,
        b"GET /c HTTP/1.1\r\nHost: 127.0.0.1\r\nCache-Control: max-age=60\r\n\r\n",
    )
    .await;
    assert!(cached.is_empty(), "max-age goes to block: {cached:?}");
}

#[tokio::test]
async fn a_tls_connection_is_routed_by_its_sni() {
    let server = TestServer::start(&server_toml("", RULES)).await;
    let echo = servers::echo().await;
    let allowed = wasmray_plugin_sdk::tls::build_client_hello(Some("allowed.test"), &["h2"]);
    let reply = session(&server, echo, &allowed).await;
    assert_eq!(
        reply.get(2..),
        Some(&allowed[..]),
        "allowed.test goes direct (the echo answers)"
    );
    let other = wasmray_plugin_sdk::tls::build_client_hello(Some("other.test"), &["h2"]);
    assert!(
        session(&server, echo, &other).await.is_empty(),
        "other.test goes to block"
    );
}
