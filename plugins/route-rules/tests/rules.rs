//! route-rules through the native harness: every field, AND/OR, order, default, errors.

use proptest::prelude::*;
use route_rules::{RULE_ATTRIBUTE, RouteRules};
use wasmray_plugin_sdk::Network;
use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder, configure_error};

/// The example from the crate docs, as the daemon would hand it over (TOML -> JSON).
const EXAMPLE: &str = r#"{
  "default": "direct",
  "rule": [{
    "domain": ["suffix:ads.example", "keyword:tracker", "full:bad.example", "regex:^x[0-9]+\\.example$", "plain-means-keyword"],
    "ip": ["10.0.0.0/8", "fd00::/8", "1.2.3.4"],
    "port": "1-1024,8443",
    "source": ["127.0.0.0/8"],
    "network": "tcp",
    "user": ["alice@example.com"],
    "inbound": ["vless-in"],
    "protocol": ["http", "tls"],
    "attrs": { "cache-control": "no-cache" },
    "outbound": "block"
  }]
}"#;

fn router(json: &str) -> Harness<RouteRules> {
    Harness::new(json)
}

/// The outbound chosen for `s` (`None` for no-match) and the rule attribute.
fn route(h: &Harness<RouteRules>, s: &wasmray_plugin_sdk::Snapshot) -> Option<(String, String)> {
    h.handle(s, b"ignored").delta().map(|d| {
        (
            d.outbound.clone().expect("an outbound"),
            d.get(RULE_ATTRIBUTE).expect("route.rule").to_string(),
        )
    })
}

fn out(h: &Harness<RouteRules>, s: &wasmray_plugin_sdk::Snapshot) -> Option<String> {
    route(h, s).map(|(o, _)| o)
}

/// One rule with one field, and the snapshots that must (and must not) match it.
struct Case {
    rule: &'static str,
    yes: Vec<SnapshotBuilder>,
    no: Vec<SnapshotBuilder>,
}

fn b() -> SnapshotBuilder {
    SnapshotBuilder::new()
}

#[test]
fn every_field() {
    let cases = vec![
        Case {
            rule: r#""domain": ["suffix:ads.example"]"#,
            yes: vec![
                b().target("ads.example", 443),
                b().target("a.b.ADS.example", 443),
                b().sniffed_domain("x.ads.example"),
            ],
            no: vec![
                b().target("badads.example", 443),
                b().target("ads.example.com", 443),
                b().target("10.0.0.1", 80),
            ],
        },
        Case {
            rule: r#""domain": "domain:example.com""#,
            yes: vec![
                b().target("example.com", 1),
                b().target("a.example.com.", 1),
            ],
            no: vec![b().target("badexample.com", 1), b().target("example.co", 1)],
        },
        Case {
            rule: r#""domain": ["full:bad.example"]"#,
            yes: vec![b().target("BAD.example", 1)],
            no: vec![b().target("a.bad.example", 1)],
        },
        Case {
            rule: r#""domain": ["keyword:tracker", "plain"]"#,
            yes: vec![
                b().target("my-tracker.net", 1),
                b().target("explain.org", 1),
            ],
            no: vec![b().target("track.net", 1)],
        },
        Case {
            rule: r#""domain": ["regex:^x[0-9]+\\.example$"]"#,
            yes: vec![b().target("X42.example", 1)],
            no: vec![b().target("x.example", 1), b().target("ax1.example", 1)],
        },
        Case {
            // The sniffed domain wins over the target; an IP sniffed domain falls back.
            rule: r#""domain": ["full:sniffed.example"]"#,
            yes: vec![b().target("1.2.3.4", 443).sniffed_domain("Sniffed.Example")],
            no: vec![
                b().target("sniffed.example", 443)
                    .sniffed_domain("other.example"),
                b().target("9.9.9.9", 1).sniffed_domain("9.9.9.9"),
            ],
        },
        Case {
            rule: r#""ip": ["10.0.0.0/8", "fd00::/8", "1.2.3.4"]"#,
            yes: vec![
                b().target("10.9.8.7", 1),
                b().target("fd12::1", 1),
                b().target("[fd00::2]", 1),
                b().target("1.2.3.4", 1),
                b().target("::ffff:10.0.0.1", 1),
            ],
            no: vec![
                b().target("1.2.3.5", 1),
                b().target("fe00::1", 1),
                b().target("ten.example", 1),
            ],
        },
        Case {
            rule: r#""port": "1-1024,8443""#,
            yes: vec![
                b().target("a", 1),
                b().target("a", 1024),
                b().target("a", 8443),
            ],
            no: vec![
                b().target("a", 1025),
                b().target("a", 0),
                b().target("a", 8444),
            ],
        },
        Case {
            rule: r#""port": 53"#,
            yes: vec![b().target("a", 53)],
            no: vec![b().target("a", 54)],
        },
        Case {
            rule: r#""port": [53, "80-81"]"#,
            yes: vec![b().target("a", 53), b().target("a", 81)],
            no: vec![b().target("a", 82)],
        },
        Case {
            rule: r#""source": ["127.0.0.0/8", "::1"]"#,
            yes: vec![b().source("127.1.2.3:5"), b().source("[::1]:7")],
            no: vec![b().source("192.0.2.1:5"), b().source("garbage")],
        },
        Case {
            rule: r#""source_port": "40000-40010""#,
            yes: vec![b().source("127.0.0.1:40005")],
            no: vec![b().source("127.0.0.1:39999"), b().source("garbage")],
        },
        Case {
            rule: r#""network": "udp""#,
            yes: vec![b().network(Network::Udp)],
            no: vec![b().network(Network::Tcp)],
        },
        Case {
            rule: r#""network": "tcp,udp""#,
            yes: vec![b().network(Network::Udp), b().network(Network::Tcp)],
            no: vec![],
        },
        Case {
            rule: r#""user": ["alice@example.com", "regex:@corp\\.example$"]"#,
            yes: vec![b().user("alice@example.com"), b().user("bob@corp.example")],
            no: vec![
                b().user("Alice@example.com"),
                b().user("bob@corp.example.org"),
                b(),
            ],
        },
        Case {
            rule: r#""inbound": ["vless-in", "socks-in"]"#,
            yes: vec![b().inbound("vless-in"), b().inbound("socks-in")],
            no: vec![b().inbound("vless-in2"), b()],
        },
        Case {
            rule: r#""protocol": ["http", "TLS"]"#,
            yes: vec![
                b().protocol("http1"),
                b().protocol("http/1.1"),
                b().protocol("tls"),
            ],
            no: vec![b().protocol("quic"), b().protocol("htt"), b()],
        },
        Case {
            rule: r#""attrs": {"Cache-Control": "no-cache", ":path": "^/api/"}"#,
            yes: vec![
                b().attr("cache-control", "max-age=0, no-cache")
                    .attr(":path", "/api/v1"),
            ],
            no: vec![
                b().attr("cache-control", "no-cache"),
                b().attr("cache-control", "NO-CACHE").attr(":path", "/api/"),
                b(),
            ],
        },
    ];
    for case in cases {
        let h = router(&format!(
            r#"{{"default":"d","rule":[{{{}, "outbound":"hit"}}]}}"#,
            case.rule
        ));
        for s in case.yes {
            let s = s.build();
            assert_eq!(
                out(&h, &s).as_deref(),
                Some("hit"),
                "{} should match {s:?}",
                case.rule
            );
        }
        for s in case.no {
            let s = s.build();
            assert_eq!(
                out(&h, &s).as_deref(),
                Some("d"),
                "{} should not match {s:?}",
                case.rule
            );
        }
    }
}

#[test]
fn fields_are_anded_values_ored() {
    let h = router(EXAMPLE);
    let all = || {
        b().target("x7.example", 8443)
            .source("127.0.0.1:1")
            .user("alice@example.com")
            .inbound("vless-in")
            .protocol("tls")
            .attr("cache-control", "no-cache")
    };
    // The domain matches but `ip` needs an IP target: the rule cannot match a domain target.
    assert_eq!(out(&h, &all().build()).as_deref(), Some("direct"));
    // With an IP target, `domain` cannot match: again no. AND across fields.
    assert_eq!(
        out(&h, &all().target("10.0.0.1", 80).build()).as_deref(),
        Some("direct")
    );
    // Both at once: the sniffed domain for `domain`, the IP target for `ip`.
    let both = all()
        .target("10.0.0.1", 80)
        .sniffed_domain("tracker.example.net");
    assert_eq!(
        route(&h, &both.clone().build()),
        Some(("block".into(), "0".into()))
    );
    // Any value of a field will do (OR).
    for d in [
        "ads.example",
        "bad.example",
        "x1.example",
        "plain-means-keyword.org",
    ] {
        let s = both.clone().sniffed_domain(d).build();
        assert_eq!(out(&h, &s).as_deref(), Some("block"), "{d}");
    }
    for ip in ["fd00::1", "1.2.3.4"] {
        let s = both.clone().target(ip, 80).build();
        assert_eq!(out(&h, &s).as_deref(), Some("block"), "{ip}");
    }
    // Break any single condition and the rule fails.
    let breakers: Vec<fn(SnapshotBuilder) -> SnapshotBuilder> = vec![
        |s| s.target("11.0.0.1", 80),
        |s| s.target("10.0.0.1", 2000),
        |s| s.source("192.0.2.1:1"),
        |s| s.network(Network::Udp),
        |s| s.user("bob@example.com"),
        |s| s.inbound("other-in"),
        |s| s.protocol("quic"),
        |s| s.attr("cache-control", "max-age=0"),
        |s| s.sniffed_domain("fine.example.net"),
    ];
    for (i, brk) in breakers.into_iter().enumerate() {
        assert_eq!(
            out(&h, &brk(both.clone()).build()).as_deref(),
            Some("direct"),
            "breaker {i}"
        );
    }
}

#[test]
fn first_match_wins_and_default() {
    let h = router(
        r#"{"default":"fallback","rule":[
            {"tag":"ads","domain":"suffix:ads.example","outbound":"block"},
            {"domain":"example","outbound":"proxy"},
            {"port":443,"outbound":"never-first"}
        ]}"#,
    );
    let s = |host: &str, port: u16| b().target(host, port).build();
    assert_eq!(
        route(&h, &s("x.ads.example", 443)),
        Some(("block".into(), "ads".into()))
    );
    assert_eq!(
        route(&h, &s("www.example.org", 443)),
        Some(("proxy".into(), "1".into()))
    );
    assert_eq!(
        route(&h, &s("other.org", 443)),
        Some(("never-first".into(), "2".into()))
    );
    assert_eq!(
        route(&h, &s("other.org", 80)),
        Some(("fallback".into(), "default".into()))
    );
}

#[test]
fn no_default_is_no_match() {
    let h = router(r#"{"rule":[{"port":1,"outbound":"x"}]}"#);
    assert!(h.handle(&b().build(), b"").is_no_match());
    assert!(router("{}").handle(&b().build(), b"").is_no_match());
    assert_eq!(
        out(&router(r#"{"default":"only"}"#), &b().build()).as_deref(),
        Some("only")
    );
    assert_eq!(h.plugin().len(), 1);
    assert_eq!(h.descriptor().payload_bytes, 0);
}

#[test]
fn refuses_bad_configs_naming_the_place() {
    let cases = [
        (r#"{"rule":[{"outbound":"x"}]}"#, "rule[0]: no match field"),
        (
            r#"{"rule":[{"port":1,"outbound":"x"},{"domain":["full:a","regex:("],"outbound":"y"}]}"#,
            "rule[1].domain[1]: invalid regex \"(\"",
        ),
        (
            r#"{"rule":[{"domain":"regexp:[","outbound":"y"}]}"#,
            "rule[0].domain: invalid regex \"[\"",
        ),
        (
            r#"{"rule":[{"ip":["10.0.0.0/33"],"outbound":"x"}]}"#,
            "rule[0].ip[0]: invalid prefix length",
        ),
        (
            r#"{"rule":[{"ip":["geoip:cn"],"outbound":"x"}]}"#,
            "rule[0].ip[0]: no list \"geoip:cn\"",
        ),
        (
            r#"{"rule":[{"ip":["!10.0.0.0/8"],"outbound":"x"}]}"#,
            "rule[0].ip[0]: only geoip: and ext: lists can be negated",
        ),
        (
            r#"{"rule":[{"source":"nope","outbound":"x"}]}"#,
            "rule[0].source: invalid IP or CIDR \"nope\"",
        ),
        (
            r#"{"rule":[{"port":"1-1024,99999","outbound":"x"}]}"#,
            "rule[0].port: invalid port or range \"99999\"",
        ),
        (
            r#"{"rule":[{"port":70000,"outbound":"x"}]}"#,
            "rule[0].port: invalid port 70000",
        ),
        (
            r#"{"rule":[{"port":[1,"9-3"],"outbound":"x"}]}"#,
            "rule[0].port[1]: reversed port range",
        ),
        (
            r#"{"rule":[{"port":true,"outbound":"x"}]}"#,
            "rule[0].port: expected a port number",
        ),
        (
            r#"{"rule":[{"network":"tcp,sctp","outbound":"x"}]}"#,
            "rule[0].network: unknown network \"sctp\"",
        ),
        (
            r#"{"rule":[{"user":"regex:(","outbound":"x"}]}"#,
            "rule[0].user: invalid regex",
        ),
        (
            r#"{"rule":[{"attrs":{"a":"("},"outbound":"x"}]}"#,
            "rule[0].attrs.a: invalid regex",
        ),
        (
            r#"{"rule":[{"attrs":{},"outbound":"x"}]}"#,
            "rule[0].attrs: empty table",
        ),
        (
            r#"{"rule":[{"domain":[],"outbound":"x"}]}"#,
            "rule[0].domain: empty list",
        ),
        (
            r#"{"rule":[{"domain":[1],"outbound":"x"}]}"#,
            "rule[0].domain[0]: expected a string",
        ),
        (
            r#"{"rule":[{"domain":"geosite:cn","outbound":"x"}]}"#,
            "rule[0].domain: no list \"geosite:cn\"",
        ),
        (
            r#"{"rule":[{"inbound":"","outbound":"x"}]}"#,
            "rule[0].inbound: empty value",
        ),
        (
            r#"{"rule":[{"port":1,"outbound":""}]}"#,
            "rule[0].outbound: empty outbound tag",
        ),
        (r#"{"rule":[{"port":1}]}"#, "missing field `outbound`"),
        (
            r#"{"rule":[{"port":1,"outbound":"x","domian":"a"}]}"#,
            "unknown field `domian`",
        ),
        (r#"{"rules":[]}"#, "unknown field `rules`"),
        (r#"{"default":""}"#, "default: empty outbound tag"),
    ];
    for (json, want) in cases {
        let err = configure_error::<RouteRules>(json);
        assert!(err.contains(want), "{json}\n  got:  {err}\n  want: {want}");
    }
}

#[test]
fn chains_after_a_sniffer() {
    // What sniff-http hands over for a Host-less request still routes by protocol and attrs.
    let h = router(
        r#"{"default":"direct","rule":[{"protocol":"http","attrs":{"user-agent":"^curl/"},"outbound":"curl"}]}"#,
    );
    let sniffed = wasmray_plugin_sdk::Delta::new()
        .protocol("http1")
        .set("User-Agent", "curl/8.5.0");
    let s = wasmray_plugin_sdk::harness::apply(&b().target("10.0.0.1", 80).build(), &sniffed);
    assert_eq!(out(&h, &s).as_deref(), Some("curl"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    /// Arbitrary sessions never panic, and the answer is always one of the configured tags.
    #[test]
    fn any_session_routes_to_a_configured_tag(
        host in "[a-z0-9.:\\[\\]-]{0,30}", port in any::<u16>(), source in "[0-9a-f.:\\[\\]]{0,30}",
        user in proptest::option::of("[a-z@.]{0,12}"), proto in proptest::option::of("[a-z0-9/.]{0,6}"),
        udp in any::<bool>(), cc in proptest::option::of("[a-z-]{0,10}"),
    ) {
        let h = router(EXAMPLE);
        let mut s = b().target(&host, port).source(&source).network(if udp { Network::Udp } else { Network::Tcp });
        if let Some(u) = &user { s = s.user(u); }
        if let Some(p) = &proto { s = s.protocol(p); }
        if let Some(c) = &cc { s = s.attr("cache-control", c); }
        let o = out(&h, &s.build());
        prop_assert!(matches!(o.as_deref(), Some("block") | Some("direct")));
    }

    /// Arbitrary config text is refused or accepted, never a panic.
    #[test]
    fn any_config_text(json in "\\{\"rule\":\\[\\{\"(domain|ip|port|network|attrs)\":\"[ -~]{0,12}\",\"outbound\":\"x\"\\}\\]\\}") {
        let _ = Harness::<RouteRules>::try_new(&json);
    }
}

#[test]
fn geosite_geoip_and_rule_sets_come_from_the_daemons_geodata() {
    use wasmray_plugin_sdk::harness::geodata;
    geodata::clear();
    geodata::domains("geosite:ads", &["domain:ads.example", "keyword:tracker"]);
    geodata::domains("geosite:google@cn", &["full:www.google.cn"]);
    geodata::ips("geoip:private", &["10.0.0.0/8"]);
    geodata::ips("geoip:cn", &["1.0.1.0/24"]);
    geodata::domains("rule-set:streaming", &["domain:video.example"]);
    geodata::ips("rule-set:streaming", &["203.0.113.0/24"]);
    let h = router(
        r#"{"default": "proxy", "rule": [
            {"domain": ["geosite:ads"], "outbound": "block", "tag": "ads"},
            {"domain": "geosite:google@cn", "outbound": "direct", "tag": "google-cn"},
            {"ip": ["geoip:private"], "outbound": "direct", "tag": "private"},
            {"ip": ["!geoip:cn"], "port": 8443, "outbound": "abroad", "tag": "not-cn"},
            {"rule_set": "streaming", "outbound": "media", "tag": "media"}
        ]}"#,
    );
    let to = |host: &str, port| SnapshotBuilder::new().target(host, port).build();
    let case = |host, port| route(&h, &to(host, port)).map(|(_, rule)| rule);
    assert_eq!(case("x.ads.example", 443).as_deref(), Some("ads"));
    assert_eq!(case("my-tracker.net", 443).as_deref(), Some("ads"));
    assert_eq!(case("WWW.google.cn", 443).as_deref(), Some("google-cn"));
    assert_eq!(case("10.2.3.4", 443).as_deref(), Some("private"));
    assert_eq!(case("8.8.8.8", 8443).as_deref(), Some("not-cn"));
    assert_eq!(case("1.0.1.9", 8443).as_deref(), Some("default"));
    assert_eq!(case("a.video.example", 443).as_deref(), Some("media"));
    assert_eq!(case("203.0.113.7", 443).as_deref(), Some("media"));
    assert_eq!(case("example.org", 443).as_deref(), Some("default"));
    for (config, error) in [
        (
            r#"{"rule":[{"domain":"geosite:nope","outbound":"x"}]}"#,
            "rule[0].domain: no list \"geosite:nope\"",
        ),
        (
            r#"{"rule":[{"rule_set":["nope"],"outbound":"x"}]}"#,
            "rule[0].rule_set[0]: no list \"rule-set:nope\"",
        ),
        (
            r#"{"rule":[{"ip":"geoip:!xx","outbound":"x"}]}"#,
            "rule[0].ip: no list \"geoip:xx\"",
        ),
        (
            r#"{"rule":[{"domain":"ext:my.dat:foo","outbound":"x"}]}"#,
            "rule[0].domain: no list \"ext:my.dat:foo\"",
        ),
    ] {
        let e = configure_error::<RouteRules>(config);
        assert!(e.starts_with(error), "{config}: {e}");
    }
}

/// What the router answers: `Resolve(name)` when it asks the host for addresses.
#[derive(Debug, PartialEq)]
enum Answer {
    Resolve(String),
    Rule(String),
    NoMatch,
}

fn answer(h: &Harness<RouteRules>, s: &wasmray_plugin_sdk::Snapshot) -> Answer {
    match h.handle(s, b"").delta() {
        None => Answer::NoMatch,
        Some(d) => match d.get("dns.resolve") {
            Some(name) => {
                assert_eq!(d.outbound, None, "a resolve request decides nothing");
                Answer::Resolve(name.to_string())
            }
            None => Answer::Rule(d.get(RULE_ATTRIBUTE).expect("route.rule").to_string()),
        },
    }
}

#[test]
fn domain_strategies_resolve_when_xray_would() {
    let rules = r#""rule": [
        {"domain": "suffix:named.example", "outbound": "a", "tag": "named"},
        {"ip": ["10.0.0.0/8"], "outbound": "b", "tag": "private"},
        {"port": 25, "outbound": "block", "tag": "smtp"}
    ]"#;
    let with = |strategy: &str| router(&format!(r#"{{"domain_strategy": "{strategy}", {rules}}}"#));
    let first = |host: &str, port| b().target(host, port).build();
    let again = |host: &str, port, ips: &[&str]| b().target(host, port).resolved(host, ips).build();
    let rule = |r: &str| Answer::Rule(r.into());
    let resolve = |n: &str| Answer::Resolve(n.into());

    let as_is = with("as_is");
    assert_eq!(
        answer(&as_is, &first("x.other.example", 443)),
        Answer::NoMatch
    );
    assert_eq!(answer(&as_is, &first("10.1.1.1", 443)), rule("private"));

    for name in ["ip_if_non_match", "IPIfNonMatch"] {
        let h = with(name);
        // A domain rule matched: nothing to resolve.
        assert_eq!(answer(&h, &first("www.named.example", 443)), rule("named"));
        // Port 25 matches without an address, before any resolution.
        assert_eq!(answer(&h, &first("mail.other.example", 25)), rule("smtp"));
        assert_eq!(
            answer(&h, &first("X.Other.Example", 443)),
            resolve("x.other.example")
        );
        assert_eq!(
            answer(
                &h,
                &again("x.other.example", 443, &["192.0.2.1", "10.9.9.9"])
            ),
            rule("private")
        );
        assert_eq!(
            answer(&h, &again("x.other.example", 443, &["192.0.2.1"])),
            Answer::NoMatch
        );
        // Nothing resolved (failure or timeout): routed without, never asked twice.
        assert_eq!(
            answer(&h, &again("x.other.example", 443, &[])),
            Answer::NoMatch
        );
        // An IP target has its address already.
        assert_eq!(answer(&h, &first("192.0.2.1", 443)), Answer::NoMatch);
    }

    let h = with("ip_on_demand");
    assert_eq!(answer(&h, &first("www.named.example", 443)), rule("named"));
    // The ip rule comes before the port rule: resolved even though port 25 would match.
    assert_eq!(
        answer(&h, &first("mail.other.example", 25)),
        resolve("mail.other.example")
    );
    assert_eq!(
        answer(&h, &again("mail.other.example", 25, &["192.0.2.1"])),
        rule("smtp")
    );
    assert_eq!(
        answer(&h, &again("mail.other.example", 25, &["10.0.0.1"])),
        rule("private")
    );

    let e = configure_error::<RouteRules>(r#"{"domain_strategy": "UseIP", "rule": []}"#);
    assert!(e.contains("unknown variant"), "{e}");
}
