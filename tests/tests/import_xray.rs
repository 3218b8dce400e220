//! `import-xray` end to end: an Xray server config in the shape of Xray-examples'
//! VLESS-TCP-TLS-Vision, imported, is served by a daemon: its users connect (the
//! short-string id as the UUID Xray derives from it) and a browser's request reaches
//! its fallback.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::config::Config;
use wasmray_tests::vless_client::{connect_tcp_as, dest, read_all, read_response, tls_connect};
use wasmray_tests::{CertDir, TestServer, servers};

const VISION_SERVER: &str = include_str!("../fixtures/xray/vision-server.json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_xray_server_serves_its_users_and_its_fallback() {
    let web = servers::http("the fallback's page").await;
    let json = VISION_SERVER
        .replace("/etc/ssl/private/fullchain.cer", "cert.pem")
        .replace("/etc/ssl/private/private.key", "key.pem")
        .replace("\"listen\": \"0.0.0.0\"", "\"listen\": \"127.0.0.1\"")
        .replace("\"port\": 443", "\"port\": 0")
        .replace("\"dest\": \"8001\"", &format!("\"dest\": \"{web}\""))
        .replace("\"dest\": 8002", &format!("\"dest\": \"{web}\""));
    let imported = wasmray::import_xray::import(&json).expect("imports");
    let certs = CertDir::new();
    // Its rules name geoip:cn and geosite:category-ads-all: Xray's files, beside it.
    use wasmray::geodata::dat::write;
    let site = write::geosite(&[("category-ads-all", vec![(2, "ads.example", &[][..])])]);
    std::fs::write(certs.path().join("geosite.dat"), site).unwrap();
    let cn = vec![("1.0.1.0".parse().unwrap(), 24)];
    std::fs::write(
        certs.path().join("geoip.dat"),
        write::geoip(&[("CN", cn, false)]),
    )
    .unwrap();
    let config = Config::parse(&imported.toml, certs.path())
        .unwrap_or_else(|e| panic!("{e}\n{}", imported.toml));
    let server = TestServer::start_with(config, certs).await;

    // bob's id was "bob": Xray's clients send the UUIDv5 of it, and so does this one.
    let bob = uuid::Uuid::new_v5(&uuid::Uuid::nil(), b"bob").to_string();
    let echo = servers::echo().await;
    let mut s = connect_tcp_as(
        &bob,
        server.addr,
        &server.certs.cert_der,
        dest(echo),
        b"ping",
    )
    .await
    .unwrap();
    read_response(&mut s).await.expect("bob is a user");
    let mut back = [0u8; 4];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");

    // Not VLESS: the fallback answers (with the PROXY header Xray's xver 1 sends).
    let mut browser = tls_connect(server.addr, &server.certs.cert_der, &["http/1.1"])
        .await
        .unwrap();
    browser
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let page = String::from_utf8_lossy(&read_all(&mut browser).await.unwrap()).to_string();
    assert!(
        page.starts_with("HTTP/1.1 200") && page.ends_with("the fallback's page"),
        "{page}"
    );
}
