//! HTTP/1 request heads: the method gate, the request line, header fields and the Host.
//!
//! These helpers never panic on any input and never look past the buffer. Lines are split
//! on `\n`; a trailing `\r` is part of the line ending, not of the line. The head ends at
//! the first empty line (`\r\n` or `\n`), so body bytes are never read as headers (Xray's
//! sniffer only stops at a truly empty line and reads CRLF bodies as headers; this one does
//! not).

use std::borrow::Cow;

use crate::{domain, net};

/// The methods Xray's sniffer recognises, in its order.
pub const METHODS: [&str; 7] = ["get", "post", "head", "put", "delete", "options", "connect"];

/// The result of [`method_gate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodGate {
    /// The buffer starts with this method (matched case-insensitively; the name is the
    /// lower-case entry of [`METHODS`]).
    Method(&'static str),
    /// The buffer is a (case-insensitive) prefix of a method: more bytes may make it one.
    NeedMore,
    /// The buffer cannot start an HTTP request of a sniffed method.
    NotHttp,
}

/// Compares the start of `buf` case-insensitively with [`METHODS`], as Xray's sniffer
/// does (no separator check: `GETX` passes the gate, the request line decides later).
///
/// Unlike Xray, a short buffer is only "need more" when it can still become a method
/// (`GE` yes, `XY` no): Xray asks for more data for any buffer shorter than the method
/// it happens to be testing, which only delays the same "not HTTP" answer.
pub fn method_gate(buf: &[u8]) -> MethodGate {
    let mut could_grow = false;
    for m in METHODS {
        let m_bytes = m.as_bytes();
        if buf.len() >= m_bytes.len() {
            if buf[..m_bytes.len()].eq_ignore_ascii_case(m_bytes) {
                return MethodGate::Method(m);
            }
        } else if buf.eq_ignore_ascii_case(&m_bytes[..buf.len()]) {
            could_grow = true;
        }
    }
    if could_grow {
        MethodGate::NeedMore
    } else {
        MethodGate::NotHttp
    }
}

/// The three parts of a request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLine<'a> {
    /// The method as sent (case preserved).
    pub method: &'a str,
    /// The raw request-target (origin form with its query, absolute form, authority for
    /// CONNECT, or `*`).
    pub target: &'a str,
    /// The protocol version, e.g. `HTTP/1.1`.
    pub version: &'a str,
}

/// Splits a request line (without its line ending) on single spaces; `None` unless there
/// are exactly three parts or the line is not UTF-8.
pub fn parse_request_line(line: &[u8]) -> Option<RequestLine<'_>> {
    let line = std::str::from_utf8(strip_cr(line)).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some(RequestLine {
        method,
        target,
        version,
    })
}

/// One header line, split at its first `:`, both sides trimmed of ASCII whitespace.
/// Borrowed from the payload: parsing a head allocates nothing per line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The name as sent (not empty).
    pub name: &'a [u8],
    /// The value as sent.
    pub value: &'a [u8],
}

impl<'a> Field<'a> {
    /// True when the name is `lower_name` (given in lower case), ignoring ASCII case.
    pub fn is(&self, lower_name: &str) -> bool {
        self.name.eq_ignore_ascii_case(lower_name.as_bytes())
    }

    /// The name, lower-cased (non-UTF-8 bytes replaced with U+FFFD).
    pub fn lower_name(&self) -> String {
        String::from_utf8_lossy(self.name).to_ascii_lowercase()
    }

    /// Writes the lower-cased name into `buf` (cleared first), to look names up without
    /// allocating per line.
    pub fn lower_name_into(&self, buf: &mut String) {
        buf.clear();
        buf.push_str(&String::from_utf8_lossy(self.name));
        buf.make_ascii_lowercase();
    }

    /// The value, case kept (non-UTF-8 bytes replaced with U+FFFD).
    pub fn value_str(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.value)
    }
}

/// A parsed (possibly incomplete) request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The request line, if line 0 is complete and splits into exactly three parts.
    pub request_line: Option<RequestLine<'a>>,
    /// Header fields of the complete lines after the request line, in order. Lines
    /// without `:` or with an empty name are skipped.
    pub headers: Vec<Field<'a>>,
    /// True when the empty line that ends the head was seen.
    pub complete: bool,
    /// Bytes of the head: through the empty line when complete, else through the last
    /// complete line.
    pub len: usize,
}

impl<'a> RequestHead<'a> {
    /// Parses the head at the start of `buf`. Bytes after the empty line (a body, a
    /// pipelined request) are not looked at. A partial last line (no `\n` yet) is left out.
    pub fn parse(buf: &'a [u8]) -> RequestHead<'a> {
        let mut head = RequestHead {
            request_line: None,
            headers: Vec::new(),
            complete: false,
            len: 0,
        };
        let mut rest = buf;
        let mut index = 0usize;
        while let Some(nl) = rest.iter().position(|&b| b == b'\n') {
            let line = strip_cr(&rest[..nl]);
            rest = &rest[nl + 1..];
            head.len += nl + 1;
            if index == 0 {
                head.request_line = parse_request_line(line);
            } else if line.is_empty() {
                head.complete = true;
                break;
            } else if let Some(field) = parse_field(line) {
                head.headers.push(field);
            }
            index += 1;
        }
        head
    }

    /// The value of header `name` (given in lower case); the last one wins for repeated
    /// headers, as in Xray.
    pub fn header(&self, name: &str) -> Option<Cow<'a, str>> {
        self.headers
            .iter()
            .rev()
            .find(|f| f.is(name))
            .map(|f| f.value_str())
    }
}

/// Splits one header line at its first `:`.
fn parse_field(line: &[u8]) -> Option<Field<'_>> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = line[..colon].trim_ascii();
    if name.is_empty() {
        return None;
    }
    Some(Field {
        name,
        value: line[colon + 1..].trim_ascii(),
    })
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The domain in a Host header value: lower-cased, port removed, IPv6 brackets removed.
/// `None` when the value is empty, has a bad port, or is neither an IP literal nor a
/// well-formed domain name (see [`domain::is_valid_domain`]), so a sniffer never hands
/// the daemon something it could not dial.
pub fn host_domain(value: &str) -> Option<String> {
    let (host, _port) = net::split_host_port(value.trim())?;
    if let Some(ip) = net::parse_ip(host) {
        return Some(ip.to_string());
    }
    if !domain::is_valid_domain(host) {
        return None;
    }
    Some(host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate() {
        assert_eq!(method_gate(b"GET / HTTP/1.1"), MethodGate::Method("get"));
        assert_eq!(
            method_gate(b"oPtIoNs * HTTP/1.1"),
            MethodGate::Method("options")
        );
        assert_eq!(
            method_gate(b"CONNECT a:443 HTTP/1.1"),
            MethodGate::Method("connect")
        );
        assert_eq!(method_gate(b"DELETE"), MethodGate::Method("delete"));
        assert_eq!(method_gate(b""), MethodGate::NeedMore);
        assert_eq!(method_gate(b"G"), MethodGate::NeedMore);
        assert_eq!(method_gate(b"de"), MethodGate::NeedMore);
        assert_eq!(method_gate(b"CONNEC"), MethodGate::NeedMore);
        assert_eq!(method_gate(b"PATCH / HTTP/1.1"), MethodGate::NotHttp);
        assert_eq!(method_gate(b"PA"), MethodGate::NotHttp);
        assert_eq!(method_gate(b"\x16\x03\x01"), MethodGate::NotHttp);
    }

    #[test]
    fn request_line() {
        let l = parse_request_line(b"GET /a?b=c HTTP/1.1\r").unwrap();
        assert_eq!(
            (l.method, l.target, l.version),
            ("GET", "/a?b=c", "HTTP/1.1")
        );
        assert_eq!(parse_request_line(b"GET  / HTTP/1.1"), None);
        assert_eq!(parse_request_line(b"GET /"), None);
        assert_eq!(parse_request_line(b"GET / HTTP/1.1 x"), None);
        assert_eq!(parse_request_line(b"GET /\xff HTTP/1.1"), None);
    }

    #[test]
    fn head() {
        let h = RequestHead::parse(
            b"GET / HTTP/1.1\r\nHost: A.com\r\nX-Y :  z Z \r\nbad\r\n: v\r\n\r\nbody: 1\r\n",
        );
        assert!(h.complete);
        assert_eq!(h.len, 54);
        assert_eq!(h.header("host").as_deref(), Some("A.com"));
        assert_eq!(h.header("x-y").as_deref(), Some("z Z"));
        assert_eq!(h.header("body"), None);
        assert_eq!(h.headers[1].lower_name(), "x-y");
        let mut buf = String::from("junk");
        h.headers[0].lower_name_into(&mut buf);
        assert_eq!(buf, "host");
        assert_eq!(h.headers.len(), 2);

        let partial = RequestHead::parse(b"GET / HTTP/1.1\nHost: a\nUser-Ag");
        assert!(!partial.complete);
        assert_eq!(partial.len, 23);
        assert_eq!(
            partial.headers,
            vec![Field {
                name: b"Host",
                value: b"a"
            }]
        );

        let dup = RequestHead::parse(b"GET / HTTP/1.1\nA: 1\nA: 2\n\n");
        assert_eq!(dup.header("a").as_deref(), Some("2"));
        assert!(RequestHead::parse(b"GET / HTTP/1.1\r\n\r\n").complete);
        assert!(!RequestHead::parse(b"GET / HTTP/1.1\r\n\r").complete);
    }

    #[test]
    fn host() {
        assert_eq!(
            host_domain("Example.COM:8080").as_deref(),
            Some("example.com")
        );
        assert_eq!(
            host_domain("[2001:DB8::1]:443").as_deref(),
            Some("2001:db8::1")
        );
        assert_eq!(host_domain("[::1]").as_deref(), Some("::1"));
        assert_eq!(host_domain("10.0.0.1").as_deref(), Some("10.0.0.1"));
        for bad in ["", "a:b", "a b", "a/b", "[::1", ":80", "exa mple.com"] {
            assert_eq!(host_domain(bad), None, "{bad}");
        }
    }
}
