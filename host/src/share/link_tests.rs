//! vless:// links: the forms clients export, what is refused, and round trips.

use super::*;
use proptest::prelude::*;

const ID: &str = "27848739-7e62-4138-9fd3-098a63964b6b";

fn id() -> uuid::Uuid {
    uuid::Uuid::parse_str(ID).unwrap()
}

fn parse(s: &str) -> VlessLink {
    match parse_vless_link(s) {
        Ok(l) => l,
        Err(e) => panic!("{s}: {e}"),
    }
}

fn refuse(s: &str) -> LinkError {
    match parse_vless_link(s) {
        Ok(l) => panic!("{s} accepted: {l:?}"),
        Err(e) => e,
    }
}

#[test]
fn v2rayn_form() {
    let l = parse(
        "vless://27848739-7e62-4138-9fd3-098a63964b6b@proxy.example.com:443?encryption=none\
         &security=tls&sni=proxy.example.com&alpn=h2%2Chttp%2F1.1&fp=chrome&type=tcp\
         &headerType=none&host=#%F0%9F%87%AF%F0%9F%87%B5%20Tokyo%2001",
    );
    assert_eq!(
        l,
        VlessLink {
            id: id(),
            host: "proxy.example.com".into(),
            port: 443,
            sni: Some("proxy.example.com".into()),
            alpn: vec!["h2".into(), "http/1.1".into()],
            insecure: false,
            flow: String::new(),
            name: Some("🇯🇵 Tokyo 01".into()),
        }
    );
}

#[test]
fn xray_export_form() {
    // As the proposal's example: empty `flow`, `allowInsecure=1`, unescaped-ish order.
    let l = parse(
        "vless://27848739-7e62-4138-9fd3-098a63964b6b@203.0.113.7:8443?type=tcp\
         &security=tls&sni=cdn.example.org&alpn=h2%2Chttp%2F1.1&fp=chrome\
         &allowInsecure=1&flow=&encryption=none&headerType=none#my%20server",
    );
    assert_eq!(l.host, "203.0.113.7");
    assert_eq!(l.port, 8443);
    assert_eq!(l.sni.as_deref(), Some("cdn.example.org"));
    assert!(l.insecure);
    assert_eq!(l.name.as_deref(), Some("my server"));
}

#[test]
fn nekobox_sing_box_form() {
    // Slash before the query, `sni=` empty, `insecure=true`, IPv6 host, CJK remark.
    let l = parse(
        "VLESS://278487397e6241389fd3098a63964b6b@[2001:db8::1]:443/?security=tls\
         &sni=&insecure=true&type=tcp&fp=firefox&packetEncoding=xudp\
         #%E6%97%A5%E6%9C%AC%E8%8A%82%E7%82%B9",
    );
    assert_eq!(l.id, id());
    assert_eq!(l.host, "2001:db8::1");
    assert_eq!(l.sni, None);
    assert!(l.insecure);
    assert_eq!(l.alpn, Vec::<String>::new());
    assert_eq!(l.name.as_deref(), Some("日本节点"));
}

#[test]
fn shadowrocket_ish_form() {
    let l = parse(
        "vless://27848739-7e62-4138-9fd3-098a63964b6b@hk.example.net:2053?tls=1\
         &peer=hk.example.net&allowInsecure=0&obfs=none&alpn=http%2F1.1\
         &remarks=HK%20%2B%20relay",
    );
    assert_eq!(l.sni.as_deref(), Some("hk.example.net"));
    assert!(!l.insecure);
    assert_eq!(l.alpn, vec!["http/1.1".to_string()]);
    assert_eq!(l.name.as_deref(), Some("HK + relay"));
    // `+` is literal, and the fragment wins over `remarks`.
    let l = parse(&format!(
        "vless://{ID}@h.example:1?security=tls&remarks=x#a+b%25"
    ));
    assert_eq!(l.name.as_deref(), Some("a+b%"));
    // Matching `sni` and `peer` are fine.
    parse(&format!(
        "vless://{ID}@h.example:1?security=tls&sni=a.example&peer=a.example"
    ));
}

#[test]
fn minimal_and_format_of_share_rs() {
    let l = parse(&format!("  vless://{ID}@h:1?security=TLS  "));
    assert_eq!(
        (l.host.as_str(), l.port, l.name, l.insecure),
        ("h", 1, None, false)
    );
    // Exactly what share.rs prints.
    let shared = "vless://27848739-7e62-4138-9fd3-098a63964b6b@proxy.example.com:443?encryption=none\
                  &security=tls&sni=proxy.example.com&type=tcp&headerType=none\
                  &alpn=h2%2Chttp%2F1.1#alice%40example.com";
    let l = parse(shared);
    assert_eq!(l.name.as_deref(), Some("alice@example.com"));
    assert_eq!(format_vless_link(&l), shared);
    let v6 = VlessLink {
        id: id(),
        host: "::1".into(),
        port: 8443,
        sni: Some("localhost".into()),
        alpn: vec![],
        insecure: true,
        flow: String::new(),
        name: Some("user0".into()),
    };
    let text = format_vless_link(&v6);
    assert!(text.starts_with(&format!("vless://{ID}@[::1]:8443?")));
    assert!(text.contains("&allowInsecure=1#"));
    assert_eq!(parse(&text), v6);
}

#[test]
fn refusals() {
    let base = |q: &str| format!("vless://{ID}@example.com:443?{q}");
    assert!(matches!(
        refuse(&base("encryption=none")),
        LinkError::NeedsTls(_)
    ));
    let e = refuse(&base("security=none"));
    assert!(e.to_string().contains("wasmray's vless outbound needs TLS"));
    assert!(e.to_string().contains("security=none"));
    assert!(matches!(refuse(&base("tls=0")), LinkError::NeedsTls(_)));
    let e = refuse(&base(
        "security=reality&pbk=abc&sid=12&flow=xtls-rprx-vision",
    ));
    assert!(matches!(&e, LinkError::Unsupported { param, value, .. }
        if param == "security" && value == "reality"));
    assert!(e.to_string().contains("REALITY"));
    for t in [
        "ws",
        "grpc",
        "h2",
        "http",
        "httpupgrade",
        "xhttp",
        "kcp",
        "quic",
    ] {
        let e = refuse(&base(&format!("security=tls&type={t}&path=%2F")));
        assert!(matches!(&e, LinkError::Unsupported { param, value, .. }
            if param == "type" && value == t));
        assert!(e.to_string().contains(&format!("type={t}")));
    }
    assert!(matches!(
        refuse(&base("security=tls&network=ws")),
        LinkError::Unsupported { .. }
    ));
    assert!(matches!(
        refuse(&base("security=tls&type=carrier-pigeon")),
        LinkError::BadValue { .. }
    ));
    assert!(matches!(
        refuse(&base("security=tls&headerType=http")),
        LinkError::Unsupported { .. }
    ));
    let e = refuse(&base("security=tls&flow=xtls-rprx-direct"));
    assert!(e.to_string().contains("flow=xtls-rprx-direct"));
    assert_eq!(
        parse(&base("security=tls&flow=xtls-rprx-vision")).flow,
        "xtls-rprx-vision"
    );
    assert_eq!(
        refuse(&base("security=tls&encryption=aes-128-gcm")),
        LinkError::Encryption("aes-128-gcm".into())
    );
    assert_eq!(
        refuse(&base("security=tls&sni=a&sni=b")),
        LinkError::DuplicateParam("sni".into())
    );
    assert!(matches!(
        refuse(&base("security=tls&sni=a.example&peer=b.example")),
        LinkError::Conflict { .. }
    ));
    assert!(matches!(
        refuse(&base("security=tls&allowInsecure=yes")),
        LinkError::BadValue { .. }
    ));
    assert!(matches!(
        refuse(&base("security=tls&sni=%FF")),
        LinkError::BadEncoding { .. }
    ));

    let ok = "?security=tls";
    for bad_id in [
        "not-a-uuid",
        "",
        "27848739-7e62-4138-9fd3-098a63964b6",
        "{27848739-7e62-4138-9fd3-098a63964b6b}",
    ] {
        assert!(matches!(
            refuse(&format!("vless://{bad_id}@h:1{ok}")),
            LinkError::BadId(_)
        ));
    }
    assert_eq!(
        refuse(&format!("vless://{ID}@example.com{ok}")),
        LinkError::MissingPort("example.com".into())
    );
    assert!(matches!(
        refuse(&format!("vless://{ID}@[::1]{ok}")),
        LinkError::MissingPort(_)
    ));
    assert!(matches!(
        refuse(&format!("vless://{ID}@example.com:{ok}")),
        LinkError::MissingPort(_)
    ));
    for port in ["0", "70000", "65536", "+443", "-1", "44a", "999999999999"] {
        assert_eq!(
            refuse(&format!("vless://{ID}@h:{port}{ok}")),
            LinkError::BadPort(port.into())
        );
    }
    for host in [
        "::1",
        "[::1",
        "[nope]",
        "bad host",
        "ex%41mple.com",
        "日本.jp",
    ] {
        assert!(matches!(
            refuse(&format!("vless://{ID}@{host}:443{ok}")),
            LinkError::BadHost(_) | LinkError::MissingPort(_)
        ));
    }
    assert_eq!(
        refuse("vless://YXV0bzp1dWlkQGhvc3Q6NDQz?remarks=x&tls=1"),
        LinkError::MissingId
    );
    assert!(matches!(
        refuse(&format!("vmess://{ID}@h:1{ok}")),
        LinkError::NotVless(_)
    ));
    assert!(matches!(
        refuse(&format!("vless://{ID}@h:1/path{ok}")),
        LinkError::UnexpectedPath(_)
    ));
    let long = base(&format!("security=tls&fp={}", "a".repeat(MAX_LINK_LEN)));
    assert_eq!(refuse(&long), LinkError::TooLong { len: long.len() });
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9]([a-z0-9_-]{0,20}[a-z0-9])?(\\.[a-z0-9-]{1,10}){0,3}",
        any::<std::net::Ipv4Addr>().prop_map(|a| a.to_string()),
        any::<Ipv6Addr>().prop_map(|a| a.to_string()),
    ]
}

fn vless_link() -> impl Strategy<Value = VlessLink> {
    (
        any::<[u8; 16]>(),
        host(),
        1u16..,
        proptest::option::of("[a-zA-Z0-9.-]{1,30}"),
        proptest::collection::vec("[a-z0-9/._+%#&=-]{1,12}", 0..4),
        any::<bool>(),
        proptest::option::of(any::<String>().prop_filter("non-empty", |s| !s.is_empty())),
        prop_oneof![
            Just(""),
            Just("xtls-rprx-vision"),
            Just("xtls-rprx-vision-udp443")
        ],
    )
        .prop_map(
            |(id, host, port, sni, alpn, insecure, name, flow)| VlessLink {
                flow: flow.to_string(),
                id: uuid::Uuid::from_bytes(id),
                host,
                port,
                sni,
                alpn,
                insecure,
                name,
            },
        )
}

proptest! {
    #[test]
    fn round_trip(link in vless_link()) {
        let text = format_vless_link(&link);
        prop_assert_eq!(parse_vless_link(&text), Ok(link));
    }

    #[test]
    fn no_panic_on_anything(s in any::<String>()) {
        let _ = parse_vless_link(&s);
        let _ = parse_vless_link(&format!("vless://{s}"));
        let _ = parse_vless_link(&format!("vless://{ID}@{s}"));
    }

    #[test]
    fn no_panic_on_link_like(
        s in "(?i:vless)://[0-9a-f%-]{0,40}@?[\\[\\]:0-9a-z.%]{0,24}/?(\\?[a-zA-Z=&%0-9+,]{0,60})?(#.{0,10})?"
    ) {
        let _ = parse_vless_link(&s);
    }

    #[test]
    fn no_panic_on_mangled_links(link in vless_link(), cut in any::<prop::sample::Index>(), junk in ".{0,4}") {
        let text = format_vless_link(&link);
        let at = cut.index(text.len() + 1);
        if let (Some(a), Some(b)) = (text.get(..at), text.get(at..)) {
            let _ = parse_vless_link(&format!("{a}{junk}{b}"));
            let _ = parse_vless_link(a);
        }
    }
}
