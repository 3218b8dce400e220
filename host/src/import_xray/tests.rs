use std::path::Path;

use super::*;
use crate::config::{Config, InboundKind, OutboundKind};

const THREE_X_UI: &str = include_str!("../../../tests/fixtures/xray/3x-ui.json");
const VISION_SERVER: &str = include_str!("../../../tests/fixtures/xray/vision-server.json");
const CLIENT: &str = include_str!("../../../tests/fixtures/xray/client.json");

/// A directory with cert.pem and key.pem, which the fixtures' certificate paths are
/// pointed at.
fn certs() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    dir
}

fn local_certs(json: &str) -> String {
    json.replace("/root/cert/example.com/fullchain.pem", "cert.pem")
        .replace("/root/cert/example.com/privkey.pem", "key.pem")
        .replace("/etc/ssl/private/fullchain.cer", "cert.pem")
        .replace("/etc/ssl/private/private.key", "key.pem")
}

/// Imports `json` and loads the TOML as the daemon would: config and plugins.
fn round_trip(json: &str, dir: &Path) -> (Imported, Config) {
    let imported = import(&local_certs(json)).unwrap();
    let config = Config::parse(&imported.toml, dir)
        .unwrap_or_else(|e| panic!("the TOML does not load: {e}\n{}", imported.toml));
    crate::plugin::Registry::start(config.plugins.clone())
        .unwrap_or_else(|e| panic!("the plugins refuse it: {e:#}\n{}", imported.toml));
    (imported, config)
}

fn noted(imported: &Imported, path: &str, says: &str) {
    assert!(
        imported
            .notes
            .iter()
            .any(|n| n.starts_with(path) && n.contains(says)),
        "no note {path} ... {says} in {:#?}",
        imported.notes
    );
}

#[test]
fn a_3x_ui_config_carries_users_tls_api_stats_and_rules() {
    let dir = certs();
    let (imported, config) = round_trip(THREE_X_UI, dir.path());
    assert_eq!(
        config.api.as_ref().map(|a| a.listen.to_string()),
        Some("127.0.0.1:62789".into())
    );
    assert!(config.stats.enabled);
    assert_eq!(config.inbounds.len(), 1, "{}", imported.toml);
    let inbound = &config.inbounds[0];
    assert_eq!(inbound.tag, "inbound-8443");
    assert_eq!(inbound.listen.to_string(), "0.0.0.0:8443");
    let InboundKind::Vless(v) = &inbound.kind else {
        panic!("not vless")
    };
    let users: Vec<(&str, bool)> = v
        .users
        .iter()
        .map(|u| (u.email.as_str(), u.flow.is_vision()))
        .collect();
    assert_eq!(users, [("alice", true), ("bob", false)]);
    assert_eq!(v.tls.alpn, ["h2", "http/1.1"]);
    assert_eq!(
        config
            .outbounds
            .iter()
            .map(|o| o.tag.as_str())
            .collect::<Vec<_>>(),
        ["direct", "blocked"]
    );
    assert_eq!(config.plugins.dest_override, ["http", "tls"]);
    let rules = &config.plugins.config["route-rules"];
    assert_eq!(rules["default"], "direct");
    assert_eq!(rules["rule"].as_array().map(Vec::len), Some(2), "{rules}");
    assert!(
        imported.toml.contains("\"10.0.0.0/8\""),
        "geoip:private becomes its networks"
    );
    // Named, not carried: REALITY, the panel's bookkeeping, the services not served.
    noted(
        &imported,
        "inbounds[2] (\"inbound-443\")",
        "REALITY is not supported yet",
    );
    noted(
        &imported,
        "inbounds[1].settings.clients[*]",
        "limitIp, reset, subId, tgId, totalGB are a panel's",
    );
    noted(&imported, "api.services[1]", "LoggerService");
    noted(&imported, "inbounds[1].sniffing.destOverride[2]", "quic");
    noted(
        &imported,
        "inbounds[1].streamSettings.tlsSettings.minVersion",
        "not carried",
    );
    noted(&imported, "policy.system", "not carried");
    assert!(
        imported
            .toml
            .starts_with("# Imported from an Xray JSON config")
    );
    assert!(
        imported
            .toml
            .contains("#   - inbounds[2] (\"inbound-443\"): left out")
    );
}

#[test]
fn a_vision_server_with_fallbacks_and_comments_carries_over() {
    let dir = certs();
    // The lists its rules name, as Xray's asset directory would hold them.
    use crate::geodata::dat::write;
    let site = write::geosite(&[("category-ads-all", vec![(2, "ads.example", &[][..])])]);
    std::fs::write(dir.path().join("geosite.dat"), site).unwrap();
    let cn = vec![("1.0.1.0".parse().unwrap(), 24)];
    std::fs::write(
        dir.path().join("geoip.dat"),
        write::geoip(&[("CN", cn, false)]),
    )
    .unwrap();
    let (imported, config) = round_trip(VISION_SERVER, dir.path());
    let inbound = &config.inbounds[0];
    assert_eq!(inbound.tag, "inbound-443");
    let InboundKind::Vless(v) = &inbound.kind else {
        panic!("not vless")
    };
    assert_eq!(v.timeouts.handshake, std::time::Duration::from_secs(2));
    assert_eq!(v.timeouts.idle, std::time::Duration::from_secs(120));
    assert_eq!(v.fallbacks.len(), 2);
    assert_eq!(v.fallbacks[1].alpn, "h2");
    assert_eq!(
        v.fallbacks
            .iter()
            .map(|f| f.proxy_protocol)
            .collect::<Vec<_>>(),
        [1, 1]
    );
    assert_eq!(v.users[0].email, "alice@example.com");
    assert!(
        !config.stats.enabled,
        "no stats section: no counters, as in Xray"
    );
    assert!(config.api.is_none());
    // The geo rules are carried with Xray's file names; the plain one with its tag.
    let rules = config.plugins.config["route-rules"]["rule"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rules.len(), 3);
    assert_eq!(rules[0]["ip"][0], "geoip:cn");
    assert_eq!(rules[1]["domain"][0], "geosite:category-ads-all");
    assert_eq!(rules[2]["tag"], "ads");
    assert_eq!(rules[2]["domain"][3], "regexp:^ad[0-9]+\\.");
    let route = &config.plugins.config["route-rules"];
    assert_eq!(route["domain_strategy"], "ip_if_non_match");
    let geodata = &config.plugins.geodata;
    assert_eq!(geodata.geosite, Some(dir.path().join("geosite.dat")));
    assert_eq!(geodata.geoip, Some(dir.path().join("geoip.dat")));
    noted(
        &imported,
        "routing.rules",
        "copy them from Xray's asset directory",
    );
    noted(
        &imported,
        "inbounds[0].streamSettings.tlsSettings.rejectUnknownSni",
        "not carried",
    );
}

#[test]
fn a_client_config_carries_its_proxy_inbounds_and_vless_outbound() {
    let dir = certs();
    let (imported, config) = round_trip(CLIENT, dir.path());
    let kinds: Vec<(&str, String)> = (config.inbounds.iter())
        .map(|i| (i.tag.as_str(), i.listen.to_string()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("socks", "127.0.0.1:10808".to_string()),
            ("http", "127.0.0.1:10809".to_string())
        ]
    );
    let OutboundKind::Vless(v) = &config.outbounds[0].kind else {
        panic!("not vless")
    };
    assert_eq!((v.host.as_str(), v.port), ("proxy.example.com", 443));
    assert!(v.flow.is_vision());
    assert_eq!(config.outbounds.len(), 3, "dns-out is left out");
    assert_eq!(config.log.level, "info");
    let rules = config.plugins.config["route-rules"]["rule"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(rules.len(), 2, "{rules:?}");
    noted(&imported, "outbounds[3] (\"dns-out\")", "protocol \"dns\"");
    noted(
        &imported,
        "routing.rules[2]",
        "outbound \"dns-out\" was not carried",
    );
    noted(&imported, "routing.rules[3]", "balancers");
    noted(
        &imported,
        "outbounds[0].streamSettings.tlsSettings.fingerprint",
        "uTLS",
    );
    noted(
        &imported,
        "outbounds[1].settings.domainStrategy",
        "not carried",
    );
    noted(&imported, "outbounds[2].settings.response", "closes");
    assert_eq!(
        config.dns.servers,
        [crate::config::DnsServer::Udp("1.1.1.1:53".parse().unwrap())]
    );
}

#[test]
fn dns_servers_by_ip_carry_over_and_the_rest_is_named() {
    let json = r#"{"dns": {"servers": [
        "8.8.8.8", "https://1.1.1.1/dns-query", "localhost", "tcp://9.9.9.9:53",
        {"address": "208.67.222.222", "port": 5353},
        {"address": "114.114.114.114", "domains": ["geosite:cn"]},
        "fakedns", "https://dns.google/dns-query"
    ], "queryStrategy": "UseIPv4"}}"#;
    let imported = import(json).unwrap();
    let config = Config::parse(&imported.toml, Path::new(".")).unwrap();
    let servers: Vec<String> = config
        .dns
        .servers
        .iter()
        .map(|s| format!("{s:?}"))
        .collect();
    assert_eq!(servers.len(), 5, "{servers:?}\n{}", imported.toml);
    assert!(
        imported.toml.contains("\"208.67.222.222:5353\""),
        "{}",
        imported.toml
    );
    for i in [5, 6, 7] {
        noted(
            &imported,
            &format!("dns.servers[{i}]"),
            "only whole servers by IP",
        );
    }
    noted(&imported, "dns.queryStrategy", "not carried");
}

#[test]
fn inline_certificates_become_files_and_bad_input_is_refused_cleanly() {
    let json = r#"{"inbounds": [{"port": 443, "protocol": "vless", "tag": "in",
        "settings": {"clients": [], "decryption": "none"},
        "streamSettings": {"security": "tls", "tlsSettings": {"certificates": [
            {"certificate": ["-----BEGIN CERTIFICATE-----", "AAAA", "-----END CERTIFICATE-----"],
             "key": ["-----BEGIN PRIVATE KEY-----", "BBBB", "-----END PRIVATE KEY-----"]}]}}}]}"#;
    let imported = import(json).unwrap();
    let names: Vec<&str> = imported.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["in-cert.pem", "in-key.pem"]);
    assert!(
        imported.files[0]
            .1
            .starts_with("-----BEGIN CERTIFICATE-----\nAAAA\n")
    );
    assert!(
        imported.toml.contains("cert = \"in-cert.pem\""),
        "{}",
        imported.toml
    );

    // Xray's short-string ids stand for a UUIDv5; Xray's own test vector.
    let short = r#"{"inbounds": [{"port": 1, "protocol": "vless", "tag": "in",
        "settings": {"clients": [{"id": "example"}], "decryption": "none"},
        "streamSettings": {"security": "tls", "tlsSettings": {"certificates": [
            {"certificateFile": "c", "keyFile": "k"}]}}}]}"#;
    let imported = import(short).unwrap();
    assert!(
        imported
            .toml
            .contains("id = \"feb54431-301b-52bb-a6dd-e1e93e81bb9e\""),
        "{}",
        imported.toml
    );

    for (bad, says) in [
        ("[]", "not an Xray JSON config"),
        ("{\"inbounds\": {}}", "inbounds"),
        ("{\"inbounds\": [{\"port\": []}]}", "left out"),
        ("{ /* open", "never closed"),
    ] {
        match import(bad) {
            Err(e) => assert!(e.to_string().contains(says), "{bad}: {e}"),
            Ok(i) => assert!(
                i.notes.iter().any(|n| n.contains(says)),
                "{bad}: {:?}",
                i.notes
            ),
        }
    }
    // Every prefix of a real config imports or fails with an error, never a panic.
    for n in 0..VISION_SERVER.len() {
        if let Some(prefix) = VISION_SERVER.get(..n) {
            let _ = import(prefix);
        }
    }
}

#[test]
fn mangled_configs_import_or_fail_never_panic_and_imports_are_toml() {
    // A deterministic stream of byte edits over the fixtures (the fuzz target
    // `import_xray` explores further).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for fixture in [THREE_X_UI, VISION_SERVER, CLIENT] {
        for _ in 0..300 {
            let mut bytes = fixture.as_bytes().to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                let edit = b"{}[]\",:0-\\x ";
                bytes[at] = edit[(next() % edit.len() as u64) as usize];
            }
            let Ok(text) = String::from_utf8(bytes) else {
                continue;
            };
            if let Ok(imported) = import(&text) {
                assert!(
                    imported.toml.parse::<toml::Table>().is_ok(),
                    "{}",
                    imported.toml
                );
            }
        }
    }
}
