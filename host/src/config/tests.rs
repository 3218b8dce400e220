use std::path::Path;

use super::*;

/// Writes a self-signed cert.pem and key.pem into `dir`.
fn write_cert(dir: &Path) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
}

const GOOD: &str = r#"
[[inbound]]
tag = "vless-in"
type = "vless"
listen = "127.0.0.1:8443"
[inbound.tls]
cert = "cert.pem"
key = "key.pem"
[[inbound.users]]
id = "27848739-7e62-4138-9fd3-098a63964b6b"
email = "alice@example.com"

[[outbound]]
tag = "direct"
type = "direct"

[[outbound]]
tag = "block"
type = "block"

[plugins.config.route-rules]
default = "direct"
[[plugins.config.route-rules.rule]]
domain = ["suffix:ads.example"]
outbound = "block"
"#;

fn check(text: &str) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    write_cert(dir.path());
    Config::parse(text, dir.path()).map_err(|e| e.to_string())
}

#[test]
fn accepts_a_good_config() {
    let c = check(GOOD).unwrap();
    assert_eq!(c.inbounds.len(), 1);
    assert_eq!(
        c.plugins.pipeline,
        ["sniff-http", "sniff-tls", "route-rules"]
    );
    assert_eq!(
        c.plugins.config["route-rules"]["rule"][0]["outbound"],
        "block"
    );
}

#[test]
fn refuses_a_bad_uuid() {
    let err =
        check(&GOOD.replace("27848739-7e62-4138-9fd3-098a63964b6b", "not-a-uuid")).unwrap_err();
    assert!(
        err.contains("inbound[0].users[0].id: not a UUID: \"not-a-uuid\""),
        "{err}"
    );
}

#[test]
fn refuses_an_unknown_field_with_its_line() {
    let err = check(&GOOD.replace("listen = ", "colour = \"red\"\nlisten = ")).unwrap_err();
    assert!(err.contains("unknown field `colour`"), "{err}");
    assert!(err.contains("line 5, column 1"), "{err}");
    assert!(err.contains("inbound[0]"), "{err}");
}

#[test]
fn refuses_a_duplicate_tag() {
    let err = check(&GOOD.replace("tag = \"block\"", "tag = \"direct\"")).unwrap_err();
    assert!(
        err.contains("outbound[1].tag: duplicate tag \"direct\""),
        "{err}"
    );
}

#[test]
fn refuses_a_missing_cert() {
    let err = check(&GOOD.replace("cert.pem", "missing.pem")).unwrap_err();
    assert!(err.contains("inbound[0].tls.cert: cannot read"), "{err}");
    assert!(err.contains("missing.pem"), "{err}");
}

#[test]
fn refuses_a_rule_naming_an_unknown_outbound() {
    let err = check(&GOOD.replace("outbound = \"block\"", "outbound = \"nowhere\"")).unwrap_err();
    assert!(
        err.contains(
            "plugins.config.route-rules.rule[0].outbound: no outbound is tagged \"nowhere\""
        ),
        "{err}"
    );
    let err = check(&GOOD.replace("default = \"direct\"", "default = \"gone\"")).unwrap_err();
    assert!(
        err.contains("route-rules.default: no outbound is tagged \"gone\""),
        "{err}"
    );
}

#[test]
fn refuses_a_bad_listen_address_and_reports_every_error() {
    let text = GOOD
        .replace("127.0.0.1:8443", "localhost")
        .replace("27848739", "zz");
    let err = check(&text).unwrap_err();
    assert!(
        err.contains("inbound[0].listen: not an IP:port address"),
        "{err}"
    );
    assert!(err.contains("users[0].id"), "{err}");
}

#[test]
fn parses_fallbacks_like_xray() {
    let text = GOOD.replace(
        "[[outbound]]\ntag = \"direct\"",
        "[[inbound.fallback]]\ndest = 8080\n[[inbound.fallback]]\ndest = \"/run/web.sock\"\npath = \"/ws\"\nproxy_protocol = 2\n\n[[outbound]]\ntag = \"direct\"",
    );
    let c = check(&text).unwrap();
    let InboundKind::Vless(v) = &c.inbounds[0].kind else {
        panic!("vless")
    };
    assert_eq!(
        v.fallbacks[0].dest,
        FallbackDest::Tcp("localhost:8080".into())
    );
    assert_eq!(
        v.fallbacks[1].dest,
        FallbackDest::Unix("/run/web.sock".into())
    );
    assert_eq!(v.fallbacks[1].proxy_protocol, 2);
}

#[test]
fn the_examples_in_config_are_valid() {
    for name in ["server.toml", "client.toml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config")
            .join(name);
        let text = std::fs::read_to_string(&path).unwrap();
        check(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

#[test]
fn a_vless_outbound_needs_a_server_and_an_id() {
    let text = GOOD.replace("type = \"block\"", "type = \"vless\"\nserver = \"nowhere\"");
    let err = check(&text).unwrap_err();
    assert!(
        err.contains("outbound[1].server: not host:port: \"nowhere\""),
        "{err}"
    );
    assert!(
        err.contains("outbound[1].id: a vless outbound needs the user id"),
        "{err}"
    );
}

#[test]
fn layers_are_named_or_default_and_unknown_ones_refused() {
    let c = check(GOOD).unwrap();
    let InboundKind::Vless(v) = &c.inbounds[0].kind else {
        panic!("vless")
    };
    assert_eq!((v.transport, v.security), (Transport::Tcp, Security::Tls));
    let named = GOOD.replace(
        "[inbound.tls]",
        "transport = \"tcp\"\nsecurity = \"tls\"\n[inbound.tls]",
    );
    assert!(check(&named).is_ok());
    let ws = GOOD.replace(
        "[inbound.tls]",
        "transport = \"ws\"\nsecurity = \"reality\"\n[inbound.tls]",
    );
    let err = check(&ws).unwrap_err();
    assert!(
        err.contains("inbound[0].transport: transport \"ws\" is not supported (tcp is)"),
        "{err}"
    );
    assert!(
        err.contains("inbound[0].security: security \"reality\" is not supported (tls is)"),
        "{err}"
    );
}

#[test]
fn flows_on_users_and_outbounds_as_xray_accepts_them() {
    let vision = GOOD.replace(
        "email = \"alice@example.com\"",
        "email = \"alice@example.com\"\nflow = \"xtls-rprx-vision\"",
    );
    let c = check(&vision).unwrap();
    let InboundKind::Vless(v) = &c.inbounds[0].kind else {
        panic!("vless")
    };
    assert_eq!(v.users[0].flow, Flow::Vision);
    assert!(c.share_links(None, None, false)[0].contains("&flow=xtls-rprx-vision"));
    // The udp443 alias is a client's only, as in Xray's loader.
    let alias = vision.replace(
        "flow = \"xtls-rprx-vision\"",
        "flow = \"xtls-rprx-vision-udp443\"",
    );
    let err = check(&alias).unwrap_err();
    assert!(
        err.contains("inbound[0].users[0].flow: unknown flow \"xtls-rprx-vision-udp443\""),
        "{err}"
    );
    let outbound = |extra: &str| {
        GOOD.replace(
            "type = \"block\"",
            &format!(
                "type = \"vless\"\nserver = \"example.com:443\"\n\
                 id = \"27848739-7e62-4138-9fd3-098a63964b6b\"\n{extra}"
            ),
        )
    };
    let flow_of = |text: &str| match check(text).map(|c| c.outbounds[1].kind.clone()) {
        Ok(OutboundKind::Vless(v)) => Ok(v.flow),
        Ok(_) => panic!("vless"),
        Err(e) => Err(e),
    };
    assert_eq!(
        flow_of(&outbound("flow = \"xtls-rprx-vision-udp443\"")),
        Ok(Flow::VisionUdp443)
    );
    assert_eq!(flow_of(&outbound("")), Ok(Flow::None));
    assert!(
        flow_of(&outbound("flow = \"xtls-rprx-splice\""))
            .unwrap_err()
            .contains("outbound[1].flow")
    );
    let link = GOOD.replace(
        "type = \"block\"",
        "type = \"vless\"\nlink = \"vless://27848739-7e62-4138-9fd3-098a63964b6b@example.com:443\
         ?security=tls&flow=xtls-rprx-vision\"",
    );
    assert_eq!(flow_of(&link), Ok(Flow::Vision));
    let muxed = outbound("flow = \"xtls-rprx-vision\"\n[outbound.mux]\nenabled = true");
    assert!(
        flow_of(&muxed)
            .unwrap_err()
            .contains("outbound[1].mux: Mux.Cool cannot carry TCP")
    );
}

#[test]
fn failure_policies_per_plugin_and_quarantine_are_checked() {
    let with = |extra: &str| check(&format!("{GOOD}\n{extra}"));
    let c = with(
        "[plugins.policy.route-rules]\non_error = \"block\"\n[plugins.quarantine]\nfailures = 3\nbackoff = \"1s\"",
    )
    .unwrap();
    assert_eq!(c.plugins.policies["route-rules"], OnError::Block);
    assert_eq!(c.plugins.on_error, OnError::Skip);
    let q = c.plugins.quarantine;
    assert_eq!((q.failures, q.backoff), (3, Duration::from_secs(1)));
    assert_eq!(q.window, Quarantine::default().window);
    for (extra, error) in [
        (
            "[plugins.policy.nope]\non_error = \"block\"",
            "plugins.policy.nope: names no plugin of plugins.pipeline",
        ),
        (
            "[plugins.policy.sniff-tls]\non_error = \"explode\"",
            "plugins.policy.sniff-tls.on_error: unknown policy",
        ),
        (
            "[plugins.quarantine]\nbackoff = \"1m\"\nmax_backoff = \"10s\"",
            "plugins.quarantine.max_backoff: must be at least",
        ),
        (
            "[plugins.quarantine]\nwindow = \"0s\"",
            "plugins.quarantine.window: must be more than zero",
        ),
    ] {
        let err = with(extra).unwrap_err();
        assert!(err.contains(error), "{extra}: {err}");
    }
}
