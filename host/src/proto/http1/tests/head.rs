//! Heads: malformed input, bounds, every prefix, keep-alive, the origin-form encoding.

use super::*;

#[test]
fn malformed_heads() {
    assert_eq!(
        req("GET http://a/ HTTP/2.0\r\n\r\n"),
        Err(HttpError::UnsupportedVersion)
    );
    assert!(matches!(
        req("GET http://a/ HTTP/1.1\r\nBad Name: x\r\n\r\n"),
        Err(HttpError::MalformedHead(_))
    ));
    assert!(matches!(
        req("G\0T http://a/ HTTP/1.1\r\n\r\n"),
        Err(HttpError::MalformedHead(_))
    ));
    assert!(matches!(
        ResponseHead::decode(b"HTTP/1.1 abc OK\r\n\r\n"),
        Err(HttpError::MalformedHead(_))
    ));
}

#[test]
fn every_prefix_is_incomplete() {
    let text = "POST http://example.com/upload?x HTTP/1.1\r\nHost: example.com\r\n\
                Content-Length: 5\r\nX-Empty:\r\n\r\nhello";
    let head_len = text.len() - 5;
    for end in 0..head_len {
        assert_eq!(
            RequestHead::decode(&text.as_bytes()[..end]),
            Ok(None),
            "prefix {end}"
        );
    }
    let (h, len) = RequestHead::decode(text.as_bytes()).unwrap().unwrap();
    assert_eq!(len, head_len);
    assert_eq!(h.body(), Ok(BodyFraming::Length(5)));
    let reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for end in 0..reply.len() - 2 {
        assert_eq!(
            ResponseHead::decode(&reply.as_bytes()[..end]),
            Ok(None),
            "prefix {end}"
        );
    }
    let (r, len) = ResponseHead::decode(reply.as_bytes()).unwrap().unwrap();
    assert_eq!(
        (r.status, r.reason.as_str(), len),
        (200, "OK", reply.len() - 2)
    );
}

#[test]
fn header_count_bound() {
    let fields = |n: usize| (0..n).map(|i| format!("X-{i}: v\r\n")).collect::<String>();
    let ok = format!("GET http://a/ HTTP/1.1\r\n{}\r\n", fields(MAX_HEADERS));
    assert_eq!(head(&ok).headers.len(), MAX_HEADERS);
    let bad = format!("GET http://a/ HTTP/1.1\r\n{}\r\n", fields(MAX_HEADERS + 1));
    assert_eq!(req(&bad), Err(HttpError::TooManyHeaders));
    let bad = format!("HTTP/1.1 200 OK\r\n{}\r\n", fields(MAX_HEADERS + 1));
    assert_eq!(
        ResponseHead::decode(bad.as_bytes()),
        Err(HttpError::TooManyHeaders)
    );
}

#[test]
fn head_size_bound() {
    let start = "GET http://a/ HTTP/1.1\r\nX-Big: ";
    let end = "\r\n\r\n";
    let fits = format!(
        "{start}{}{end}",
        "v".repeat(MAX_HEAD - start.len() - end.len())
    );
    assert_eq!(head(&fits).headers.len(), 1);
    let over = format!(
        "{start}{}{end}",
        "v".repeat(MAX_HEAD - start.len() - end.len() + 1)
    );
    assert_eq!(req(&over), Err(HttpError::HeadTooLarge));
    let endless = format!("{start}{}", "v".repeat(MAX_HEAD));
    assert_eq!(req(&endless), Err(HttpError::HeadTooLarge));
    assert_eq!(req(&endless[..MAX_HEAD - 1]), Ok(None));
    let endless = format!("HTTP/1.1 200 OK\r\nX: {}", "v".repeat(MAX_HEAD));
    assert_eq!(
        ResponseHead::decode(endless.as_bytes()),
        Err(HttpError::HeadTooLarge)
    );
}

#[test]
fn keep_alive_rules() {
    let ka = |v: &str, fields: &str| {
        head(&format!("GET http://a/ HTTP/1.{v}\r\n{fields}\r\n")).keep_alive()
    };
    assert!(ka("1", ""));
    assert!(!ka("1", "Connection: close\r\n"));
    assert!(!ka("1", "Connection: Upgrade, CLOSE\r\n"));
    assert!(!ka("1", "Proxy-Connection: close\r\n"));
    assert!(ka("1", "Connection: closed\r\n"));
    assert!(!ka("0", ""));
    assert!(ka("0", "Connection: Keep-Alive\r\n"));
    assert!(ka("0", "Proxy-Connection: keep-alive\r\n"));
    assert!(!ka("0", "Connection: keep-alive, close\r\n"));
    assert!(!ka(
        "1",
        "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n"
    ));
}

fn encoded(text: &str) -> String {
    let mut dst = BytesMut::new();
    head(text).encode_origin(&mut dst);
    String::from_utf8(dst.to_vec()).unwrap()
}

#[test]
fn encode_origin_strips_hop_by_hop() {
    let out = encoded(
        "GET http://u:p@example.com:8080/p?q HTTP/1.1\r\nHost: evil.test\r\nAccept: */*\r\n\
         Proxy-Connection: keep-alive\r\nProxy-Authorization: Basic eA==\r\n\
         Connection: keep-alive, X-Secret, Content-Length\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n\
         Trailer: X-T\r\nUpgrade: websocket\r\nx-secret: 1\r\nContent-Length: 0\r\nX-Other: 2\r\n\r\n",
    );
    assert_eq!(
        out,
        "GET /p?q HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nContent-Length: 0\r\n\
         X-Other: 2\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn encode_origin_adds_host_and_drops_length_under_chunked() {
    let out = encoded(
        "POST http://example.com/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n",
    );
    assert_eq!(
        out,
        "POST / HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    let out = encoded("GET http://[::1]:81/x HTTP/1.0\r\n\r\n");
    assert_eq!(
        out,
        "GET /x HTTP/1.0\r\nHost: [::1]:81\r\nConnection: close\r\n\r\n"
    );
    let out = encoded("CONNECT [::1]:443 HTTP/1.1\r\n\r\n");
    assert_eq!(
        out,
        "CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\nConnection: close\r\n\r\n"
    );
}

#[test]
fn captured_curl_heads() {
    use crate::proto::test_support::{captured, check_all_prefixes};
    let plain = captured("curl-http-absolute.bin");
    let h = check_all_prefixes(&plain, RequestHead::decode);
    assert_eq!(h.method, "GET");
    assert_eq!(h.target, absolute("example.com", 80, "/a?b=c"));
    assert!(h.keep_alive(), "curl asks to keep the connection");
    let connect = captured("curl-http-connect.bin");
    let h = check_all_prefixes(&connect, RequestHead::decode);
    assert_eq!(h.target, authority("example.com", 443));
}
