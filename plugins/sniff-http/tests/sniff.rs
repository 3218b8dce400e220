//! sniff-http through the native harness, on real-looking requests.

use proptest::prelude::*;
use sniff_http::{MAX_HEADER_ATTRIBUTES, PAYLOAD_BYTES, SniffHttp};
use wasmray_plugin_sdk::harness::{Harness, SnapshotBuilder, configure_error};
use wasmray_plugin_sdk::{Delta, Network, Snapshot, Verdict};

/// What curl 8.5 sends for `curl http://example.com/`.
const CURL: &[u8] =
    b"GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\n\r\n";

/// Firefox 128 fetching a page through a plain-HTTP proxy-less connection.
const BROWSER: &[u8] = b"GET /search?q=wasm+plugins&lang=en HTTP/1.1\r\n\
Host: WWW.Example.ORG:8080\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate\r\n\
Connection: keep-alive\r\n\
Cookie: session=abc123; theme=dark\r\n\
Upgrade-Insecure-Requests: 1\r\n\
Sec-Fetch-Dest: document\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-Site: none\r\n\
Sec-Fetch-User: ?1\r\n\
Priority: u=0, i\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
\r\n";

/// A POST with a body whose lines look like headers (Xray reads them as headers).
const POST_WITH_BODY: &[u8] = b"POST /api/v1/items HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: text/plain\r\nContent-Length: 29\r\n\r\nX-Injected: yes\r\nHost: evil\r\n";

/// Two pipelined requests in one read.
const PIPELINED: &[u8] = b"GET /first HTTP/1.1\r\nHost: one.example\r\nX-Req: 1\r\n\r\nGET /second HTTP/1.1\r\nHost: two.example\r\nX-Req: 2\r\n\r\n";

/// A hand-typed request (netcat) with bare LF line endings.
const LF_ONLY: &[u8] = b"head /index.html?x=1 HTTP/1.0\nHost: [2001:DB8::1]:8080\nX-Trailing-Space:   v  \n\nignored: body\n";

/// An HTTP/1.0 request with no Host.
const NO_HOST: &[u8] =
    b"GET /status HTTP/1.0\r\nUser-Agent: probe/1\r\nCache-Control: no-cache\r\n\r\n";

/// A CONNECT request as proxies see it.
const CONNECT: &[u8] = b"CONNECT example.net:443 HTTP/1.1\r\nHost: example.net:443\r\nProxy-Connection: Keep-Alive\r\n\r\n";

fn h() -> Harness<SniffHttp> {
    Harness::new("{}")
}

fn tcp() -> Snapshot {
    SnapshotBuilder::new().build()
}

fn matched(payload: &[u8]) -> Delta {
    h().handle(&tcp(), payload).expect_matched()
}

#[test]
fn describes_itself() {
    let h = h();
    assert_eq!(h.descriptor().name, "sniff-http");
    assert_eq!(h.descriptor().payload_bytes, PAYLOAD_BYTES);
    assert!(configure_error::<SniffHttp>(r#"{"x":1}"#).contains("unknown field"));
}

#[test]
fn curl() {
    let d = matched(CURL);
    assert_eq!(d.protocol.as_deref(), Some("http1"));
    assert_eq!(d.sniffed_domain.as_deref(), Some("example.com"));
    assert_eq!(d.get("host"), Some("example.com"));
    assert_eq!(d.get("user-agent"), Some("curl/8.5.0"));
    assert_eq!(d.get("accept"), Some("*/*"));
    assert_eq!(d.get(":method"), Some("GET"));
    assert_eq!(d.get(":path"), Some("/"));
    assert_eq!(d.set.len(), 5);
    assert!(d.outbound.is_none() && d.remove.is_empty());
}

#[test]
fn browser() {
    let d = matched(BROWSER);
    assert_eq!(d.sniffed_domain.as_deref(), Some("www.example.org"));
    assert_eq!(
        d.get("host"),
        Some("WWW.Example.ORG:8080"),
        "values keep their case"
    );
    assert_eq!(
        d.get(":path"),
        Some("/search?q=wasm+plugins&lang=en"),
        "query included"
    );
    assert_eq!(d.get("cache-control"), Some("no-cache"));
    assert_eq!(d.get("cookie"), Some("session=abc123; theme=dark"));
    assert_eq!(d.get("priority"), Some("u=0, i"));
    assert_eq!(d.set.len(), 15 + 2);
    assert!(
        d.set
            .iter()
            .all(|(k, _)| k.bytes().all(|b| !b.is_ascii_uppercase()))
    );
}

#[test]
fn body_lines_are_not_headers() {
    let d = matched(POST_WITH_BODY);
    assert_eq!(d.sniffed_domain.as_deref(), Some("api.example.com"));
    assert_eq!(d.get("x-injected"), None);
    assert_eq!(d.get("host"), Some("api.example.com"));
    assert_eq!(d.get(":method"), Some("POST"));
}

#[test]
fn pipelined_requests_use_the_first() {
    let d = matched(PIPELINED);
    assert_eq!(d.sniffed_domain.as_deref(), Some("one.example"));
    assert_eq!(d.get("x-req"), Some("1"));
    assert_eq!(d.get(":path"), Some("/first"));
}

#[test]
fn lf_only_and_ipv6_host() {
    let d = matched(LF_ONLY);
    assert_eq!(d.sniffed_domain.as_deref(), Some("2001:db8::1"));
    assert_eq!(d.get(":method"), Some("head"), "method as sent");
    assert_eq!(d.get(":path"), Some("/index.html?x=1"));
    assert_eq!(d.get("x-trailing-space"), Some("v"));
    assert_eq!(d.get("ignored"), None);
}

#[test]
fn no_host_still_gives_protocol_and_attributes() {
    let d = matched(NO_HOST);
    assert_eq!(d.protocol.as_deref(), Some("http1"));
    assert_eq!(d.sniffed_domain, None);
    assert_eq!(d.get("cache-control"), Some("no-cache"));
    assert_eq!(d.get(":path"), Some("/status"));
}

#[test]
fn connect() {
    let d = matched(CONNECT);
    assert_eq!(d.sniffed_domain.as_deref(), Some("example.net"));
    assert_eq!(d.get(":path"), Some("example.net:443"));
}

#[test]
fn odd_request_lines_and_hosts() {
    // Not exactly three parts: no :method / :path, headers still recorded.
    let d = matched(b"GET  /double-space HTTP/1.1\r\nHost: a.example\r\n\r\n");
    assert_eq!((d.get(":method"), d.get(":path")), (None, None));
    assert_eq!(d.sniffed_domain.as_deref(), Some("a.example"));
    // A Host that is not a domain: no sniffed domain.
    for bad in ["exa mple.com", "a.example:99999", "a/b", "", "[::1"] {
        let req = format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n");
        assert_eq!(matched(req.as_bytes()).sniffed_domain, None, "{bad:?}");
    }
    // Duplicate Host: the last wins, as in Xray.
    let d = matched(b"GET / HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n");
    assert_eq!(d.sniffed_domain.as_deref(), Some("b.example"));
    // Non-UTF-8 bytes in a value are replaced, never a panic.
    let d = matched(b"GET / HTTP/1.1\r\nX-Bin: a\xffb\r\nHost: c.example\r\n\r\n");
    assert_eq!(d.get("x-bin"), Some("a\u{fffd}b"));
}

#[test]
fn method_gate() {
    let h = h();
    for m in ["GET", "post", "Head", "PUT", "DELETE", "options", "CONNECT"] {
        let req = format!("{m} / HTTP/1.1\r\nHost: m.example\r\n\r\n");
        assert!(h.handle(&tcp(), req.as_bytes()).delta().is_some(), "{m}");
    }
    for other in [
        &b"PATCH / HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"PA",
    ] {
        assert!(
            h.handle(&tcp(), other).is_no_match(),
            "{:?}",
            String::from_utf8_lossy(other)
        );
    }
    for short in [&b""[..], b"G", b"ge", b"OPTION", b"c"] {
        assert!(h.handle(&tcp(), short).is_need_more());
    }
}

#[test]
fn udp_is_never_http() {
    let s = SnapshotBuilder::new().network(Network::Udp).build();
    assert!(h().handle(&s, CURL).is_no_match());
}

/// Every strict prefix of a complete head is need-more: never a partial answer.
#[test]
fn every_prefix_needs_more() {
    let h = h();
    for req in [
        CURL,
        BROWSER,
        POST_WITH_BODY,
        PIPELINED,
        LF_ONLY,
        NO_HOST,
        CONNECT,
    ] {
        let head_len = wasmray_plugin_sdk::http::RequestHead::parse(req).len;
        for n in 0..head_len {
            assert_eq!(
                h.handle(&tcp(), &req[..n]),
                Verdict::NeedMore,
                "{n} of {}",
                String::from_utf8_lossy(req)
            );
        }
        let whole = h.handle(&tcp(), req);
        for n in head_len..=req.len() {
            assert_eq!(
                h.handle(&tcp(), &req[..n]),
                whole,
                "extra bytes must not change the answer"
            );
        }
    }
}

#[test]
fn incomplete_head_at_the_bound_uses_complete_lines() {
    let mut req = b"GET /big HTTP/1.1\r\nHost: big.example\r\nX-A: 1\r\nCookie: ".to_vec();
    req.resize(PAYLOAD_BYTES as usize + 100, b'c');
    let d = matched(&req);
    assert_eq!(d.sniffed_domain.as_deref(), Some("big.example"));
    assert_eq!(d.get("x-a"), Some("1"));
    assert_eq!(d.get("cookie"), None, "the cut line is not used");
    // Just below the bound it still waits.
    assert!(
        h().handle(&tcp(), &req[..PAYLOAD_BYTES as usize - 1])
            .is_need_more()
    );
    // A request line longer than the bound is not readable.
    let mut long = b"GET /".to_vec();
    long.resize(PAYLOAD_BYTES as usize, b'a');
    assert!(h().handle(&tcp(), &long).is_no_match());
}

#[test]
fn header_attributes_are_capped() {
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..200 {
        req.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"Host: late.example\r\n\r\n");
    let d = matched(&req);
    assert_eq!(d.sniffed_domain.as_deref(), Some("late.example"));
    assert_eq!(d.set.len(), MAX_HEADER_ATTRIBUTES + 2);
    assert_eq!(d.get("x-0"), Some("0"));
    assert_eq!(d.get("x-199"), None);
}

/// With few names or many, a repeated header keeps its first position and its last
/// value.
#[test]
fn repeated_headers_keep_the_last_value_with_few_or_many_names() {
    for names in [3, 16, 17, 40] {
        let mut req = b"GET / HTTP/1.1\r\nX-0: first\r\n".to_vec();
        for i in 1..names {
            req.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        req.extend_from_slice(b"x-0: second\r\n");
        let last = names - 1;
        req.extend_from_slice(format!("X-{last}: again\r\n\r\n").as_bytes());
        let d = matched(&req);
        assert_eq!(d.set.len(), names + 2, "{names} names, :method and :path");
        assert_eq!(d.set[0], ("x-0".to_string(), "second".to_string()));
        assert_eq!(d.get(&format!("x-{last}")), Some("again"), "{names}");
    }
}

#[test]
fn chains_into_a_snapshot() {
    let s = wasmray_plugin_sdk::harness::apply(&tcp(), &matched(BROWSER));
    assert_eq!(s.attr("Cache-Control"), Some("no-cache"));
    assert_eq!(s.route_domain().as_deref(), Some("www.example.org"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_garbage(payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = h().handle(&tcp(), &payload);
    }

    #[test]
    fn never_panics_on_http_like_input(
        method in "(GET|get|POST|Options|CONNECT|PUT)",
        rest in proptest::collection::vec(prop_oneof![Just(b'\r'), Just(b'\n'), Just(b':'), Just(b' '), Just(b'['), Just(b']'), any::<u8>()], 0..400),
    ) {
        let mut payload = method.into_bytes();
        payload.extend_from_slice(&rest);
        let v = h().handle(&tcp(), &payload);
        if let Verdict::Matched(d) = v {
            prop_assert_eq!(d.protocol.as_deref(), Some("http1"));
            if let Some(dom) = d.sniffed_domain {
                prop_assert!(wasmray_plugin_sdk::domain::is_valid_domain(&dom) || wasmray_plugin_sdk::net::is_ip_literal(&dom));
            }
        }
    }
}

/// The worst case for work per call: a full payload of tiny header lines.
#[test]
fn thousands_of_header_lines() {
    let mut req = b"GET / HTTP/1.1\r\nHost: many.example\r\n".to_vec();
    let mut i = 0;
    while req.len() < PAYLOAD_BYTES as usize - 16 {
        req.extend_from_slice(format!("h{i}:v\n").as_bytes());
        i += 1;
    }
    req.extend_from_slice(b"\r\n");
    let h = h();
    let d = h.handle(&tcp(), &req).expect_matched();
    assert_eq!(d.sniffed_domain.as_deref(), Some("many.example"));
    assert_eq!(d.set.len(), MAX_HEADER_ATTRIBUTES + 2);
    assert_eq!(
        h.logs().len(),
        1,
        "one log line for all the dropped headers"
    );
}
