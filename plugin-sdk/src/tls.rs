//! The TLS ClientHello: enough of it for sniffing (SNI and ALPN).
//!
//! A sans-IO parser on untrusted bytes: every read is bounds-checked, nothing panics, and
//! the answer is one of "here is the hello", "incomplete" or "not a ClientHello".
//!
//! Compared with Xray's `SniffTLS` (which parses only the first record), a ClientHello
//! fragmented over several handshake records (as anti-censorship clients do) is
//! reassembled, and the handshake type must be ClientHello (Xray does not look at it).
//! Records longer than the TLS limit of 2^14 bytes are refused.

use std::borrow::Cow;

/// The record type of handshake records.
pub const CONTENT_TYPE_HANDSHAKE: u8 = 0x16;
/// The handshake type of a ClientHello.
pub const HANDSHAKE_CLIENT_HELLO: u8 = 0x01;
/// The largest record body TLS allows (2^14).
pub const MAX_RECORD_LEN: usize = 1 << 14;
/// Record header length.
pub const RECORD_HEADER_LEN: usize = 5;
/// The largest handshake message reassembled.
pub const MAX_HANDSHAKE_LEN: usize = 1 << 17;

const EXT_SERVER_NAME: u16 = 0;
const EXT_ALPN: u16 = 16;

/// Why there is no ClientHello (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloError {
    /// More bytes are needed.
    Incomplete,
    /// The bytes are not a TLS ClientHello; the reason is for logs.
    NotClientHello(&'static str),
}

/// What a sniffer wants from a ClientHello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientHello {
    /// `legacy_version` (0x0303 for TLS 1.2 and 1.3).
    pub legacy_version: u16,
    /// The first `host_name` entry of the first `server_name` extension, raw.
    pub server_name: Option<Vec<u8>>,
    /// The protocols of the `application_layer_protocol_negotiation` extension, in the
    /// client's order (empty without one, or when it is malformed).
    pub alpn: Vec<Vec<u8>>,
    /// Bytes of the records that carried the hello (header included).
    pub records_len: usize,
}

/// Reads the first handshake message from TLS records at the start of `buf`,
/// reassembling it when it spans several records. Returns the message (4-byte handshake
/// header included) and the bytes of records it took.
pub fn read_handshake(buf: &[u8]) -> Result<(Cow<'_, [u8]>, usize), HelloError> {
    let mut pos = 0usize;
    let mut msg: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    loop {
        let header = buf
            .get(pos..pos + RECORD_HEADER_LEN)
            .ok_or(HelloError::Incomplete)?;
        if header[0] != CONTENT_TYPE_HANDSHAKE {
            return Err(HelloError::NotClientHello("not a handshake record"));
        }
        if header[1] != 3 {
            return Err(HelloError::NotClientHello("record version major is not 3"));
        }
        let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
        if len == 0 || len > MAX_RECORD_LEN {
            return Err(HelloError::NotClientHello("record length out of range"));
        }
        let start = pos + RECORD_HEADER_LEN;
        let body = buf.get(start..start + len).ok_or(HelloError::Incomplete)?;
        pos = start + len;
        if msg.is_empty() {
            msg = Cow::Borrowed(body);
        } else {
            msg.to_mut().extend_from_slice(body);
        }
        if msg.len() >= 4 {
            let need =
                4 + (usize::from(msg[1]) << 16 | usize::from(msg[2]) << 8 | usize::from(msg[3]));
            if need > MAX_HANDSHAKE_LEN {
                return Err(HelloError::NotClientHello("handshake message too long"));
            }
            if msg.len() >= need {
                return Ok((
                    match msg {
                        Cow::Borrowed(b) => Cow::Borrowed(&b[..need]),
                        Cow::Owned(mut v) => {
                            v.truncate(need);
                            Cow::Owned(v)
                        }
                    },
                    pos,
                ));
            }
        }
    }
}

/// Parses `buf` as TLS records carrying a ClientHello.
pub fn sniff_client_hello(buf: &[u8]) -> Result<ClientHello, HelloError> {
    let (msg, records_len) = read_handshake(buf)?;
    let mut hello = parse_client_hello(&msg)?;
    hello.records_len = records_len;
    Ok(hello)
}

/// Parses one complete handshake message (4-byte header included) as a ClientHello.
/// The message is complete, so anything short or inconsistent is "not a ClientHello".
pub fn parse_client_hello(msg: &[u8]) -> Result<ClientHello, HelloError> {
    let bad = HelloError::NotClientHello;
    let mut r = Reader(msg);
    if r.u8().ok_or(bad("empty handshake"))? != HANDSHAKE_CLIENT_HELLO {
        return Err(bad("handshake type is not ClientHello"));
    }
    r.take(3).ok_or(bad("short handshake header"))?;
    let legacy_version = r.u16().ok_or(bad("short hello"))?;
    r.take(32).ok_or(bad("short random"))?;
    let session_id_len = r.u8().ok_or(bad("short hello"))?;
    if session_id_len > 32 {
        return Err(bad("session id longer than 32"));
    }
    r.take(usize::from(session_id_len))
        .ok_or(bad("short session id"))?;
    let suites_len = usize::from(r.u16().ok_or(bad("short hello"))?);
    if suites_len % 2 == 1 {
        return Err(bad("odd cipher suites length"));
    }
    r.take(suites_len).ok_or(bad("short cipher suites"))?;
    let compression_len = usize::from(r.u8().ok_or(bad("short hello"))?);
    r.take(compression_len)
        .ok_or(bad("short compression methods"))?;
    let ext_len = usize::from(r.u16().ok_or(bad("no extensions"))?);
    if ext_len != r.0.len() {
        return Err(bad("extensions length does not match the message"));
    }
    let mut hello = ClientHello {
        legacy_version,
        server_name: None,
        alpn: Vec::new(),
        records_len: 0,
    };
    while !r.0.is_empty() {
        let ext_type = r.u16().ok_or(bad("short extension header"))?;
        let len = usize::from(r.u16().ok_or(bad("short extension header"))?);
        let data = r.take(len).ok_or(bad("extension overruns the message"))?;
        match ext_type {
            EXT_SERVER_NAME if hello.server_name.is_none() => {
                hello.server_name = Some(parse_server_name(data)?.to_vec());
            }
            EXT_ALPN if hello.alpn.is_empty() => hello.alpn = parse_alpn(data).unwrap_or_default(),
            _ => {}
        }
    }
    Ok(hello)
}

/// The first `host_name` (type 0) entry of a `server_name` extension; an empty slice
/// when the list has none. The list must fill the extension exactly, as Xray checks.
fn parse_server_name(data: &[u8]) -> Result<&[u8], HelloError> {
    let bad = HelloError::NotClientHello;
    let mut r = Reader(data);
    let list_len = usize::from(r.u16().ok_or(bad("short server_name"))?);
    if list_len != r.0.len() {
        return Err(bad("server_name list length mismatch"));
    }
    while !r.0.is_empty() {
        let name_type = r.u8().ok_or(bad("short server_name entry"))?;
        let len = usize::from(r.u16().ok_or(bad("short server_name entry"))?);
        let name = r.take(len).ok_or(bad("server_name entry overruns"))?;
        if name_type == 0 {
            return Ok(name);
        }
    }
    Ok(&[])
}

/// The protocol names of an ALPN extension; `None` when it is malformed.
fn parse_alpn(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader(data);
    let list_len = usize::from(r.u16()?);
    if list_len != r.0.len() {
        return None;
    }
    let mut out = Vec::new();
    while !r.0.is_empty() {
        let len = usize::from(r.u8()?);
        let name = r.take(len)?;
        if !name.is_empty() {
            out.push(name.to_vec());
        }
    }
    Some(out)
}

/// A cursor that never reads past its slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Builds a minimal ClientHello record for tests: `server_name` and `alpn` extensions
/// only. Not a valid hello for a real server (no key share), but well-formed.
pub fn build_client_hello(server_name: Option<&str>, alpn: &[&str]) -> Vec<u8> {
    let mut exts = Vec::new();
    if let Some(name) = server_name {
        let name = name.as_bytes();
        let mut d = Vec::new();
        push_u16(&mut d, (name.len() + 3) as u16);
        d.push(0);
        push_u16(&mut d, name.len() as u16);
        d.extend_from_slice(name);
        push_ext(&mut exts, EXT_SERVER_NAME, &d);
    }
    if !alpn.is_empty() {
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        let mut d = Vec::new();
        push_u16(&mut d, list.len() as u16);
        d.extend_from_slice(&list);
        push_ext(&mut exts, EXT_ALPN, &d);
    }
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x5a; 32]);
    body.push(32);
    body.extend_from_slice(&[0xa5; 32]);
    push_u16(&mut body, 2);
    body.extend_from_slice(&[0x13, 0x01]);
    body.extend_from_slice(&[1, 0]);
    push_u16(&mut body, exts.len() as u16);
    body.extend_from_slice(&exts);
    let mut msg = vec![HANDSHAKE_CLIENT_HELLO];
    msg.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend_from_slice(&body);
    let mut rec = vec![CONTENT_TYPE_HANDSHAKE, 3, 1];
    push_u16(&mut rec, msg.len() as u16);
    rec.extend_from_slice(&msg);
    rec
}

/// Re-frames the handshake message of `record` (one record) into records of at most
/// `chunk` body bytes, as a fragmenting client would. For tests; a slice shorter than a
/// record header gives an empty result.
pub fn fragment_records(record: &[u8], chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let (Some(header), Some(body)) = (record.get(..3), record.get(RECORD_HEADER_LEN..)) else {
        return out;
    };
    for piece in body.chunks(chunk.max(1)) {
        out.extend_from_slice(header);
        push_u16(&mut out, piece.len() as u16);
        out.extend_from_slice(piece);
    }
    out
}

fn push_u16(v: &mut Vec<u8>, n: u16) {
    v.extend_from_slice(&n.to_be_bytes());
}

fn push_ext(v: &mut Vec<u8>, ty: u16, data: &[u8]) {
    push_u16(v, ty);
    push_u16(v, data.len() as u16);
    v.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_hello_round_trips() {
        let rec = build_client_hello(Some("Example.com"), &["h2", "http/1.1"]);
        let h = sniff_client_hello(&rec).unwrap();
        assert_eq!(h.server_name.as_deref(), Some(&b"Example.com"[..]));
        assert_eq!(h.alpn, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(h.legacy_version, 0x0303);
        assert_eq!(h.records_len, rec.len());
        for n in 0..rec.len() {
            assert_eq!(
                sniff_client_hello(&rec[..n]),
                Err(HelloError::Incomplete),
                "prefix {n}"
            );
        }
        let no_sni = sniff_client_hello(&build_client_hello(None, &[])).unwrap();
        assert_eq!(no_sni.server_name, None);
    }

    #[test]
    fn fragmented_hello_is_reassembled() {
        let rec = build_client_hello(Some("a.example"), &["h2"]);
        for chunk in [1, 2, 3, 7, 50] {
            let frag = fragment_records(&rec, chunk);
            let h = sniff_client_hello(&frag).unwrap();
            assert_eq!(h.server_name.as_deref(), Some(&b"a.example"[..]));
            assert_eq!(h.records_len, frag.len());
            for n in 0..frag.len() {
                assert_eq!(sniff_client_hello(&frag[..n]), Err(HelloError::Incomplete));
            }
        }
    }

    #[test]
    fn refusals() {
        let rec = build_client_hello(Some("a"), &[]);
        let mut r = rec.clone();
        r[0] = 0x17;
        assert!(matches!(
            sniff_client_hello(&r),
            Err(HelloError::NotClientHello(_))
        ));
        let mut r = rec.clone();
        r[1] = 2;
        assert!(matches!(
            sniff_client_hello(&r),
            Err(HelloError::NotClientHello(_))
        ));
        let mut r = rec.clone();
        r[5] = 2; // ServerHello
        assert!(matches!(
            sniff_client_hello(&r),
            Err(HelloError::NotClientHello(_))
        ));
        let mut r = rec.clone();
        r[5 + 38] = 33; // session id length
        assert!(matches!(
            sniff_client_hello(&r),
            Err(HelloError::NotClientHello(_))
        ));
        let mut r = vec![0x16, 3, 1, 0x40, 0x01];
        r.resize(5 + 0x4001, 0);
        assert!(matches!(
            sniff_client_hello(&r),
            Err(HelloError::NotClientHello(_))
        ));
    }
}
