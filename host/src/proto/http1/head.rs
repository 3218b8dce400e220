//! Request and response heads: parsing with httparse under the codec's bounds, and
//! the encodings that go upstream (origin form) and back to the client.

use bytes::{BufMut, BytesMut};

use super::fields::*;
use super::target::parse_target;
use super::*;

impl RequestHead {
    /// Parses a request head at the start of `buf`.
    ///
    /// `Ok(None)`: need more bytes. `Ok(Some((head, len)))`: `len` bytes,
    /// final CRLFCRLF included, form the head; the body follows.
    pub fn decode(buf: &[u8]) -> Result<Option<(RequestHead, usize)>, HttpError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut slots);
        match req.parse(head_window(buf)) {
            Ok(httparse::Status::Complete(len)) => Ok(Some((Self::from_parsed(&req)?, len))),
            Ok(httparse::Status::Partial) => partial(buf),
            Err(e) => Err(HttpError::from_parse(e)),
        }
    }

    fn from_parsed(req: &httparse::Request<'_, '_>) -> Result<Self, HttpError> {
        let missing = HttpError::MalformedHead("incomplete request line");
        let method = req.method.ok_or(missing.clone())?;
        let path = req.path.ok_or(missing.clone())?;
        let version_minor = req.version.ok_or(missing)?;
        Ok(RequestHead {
            method: method.to_owned(),
            target: parse_target(method, path)?,
            version_minor,
            headers: own_headers(req.headers),
        })
    }

    /// Whether the client connection may carry another request after this
    /// one: HTTP/1.1 unless `Connection`/`Proxy-Connection` says `close`;
    /// HTTP/1.0 only with a `keep-alive` token. Never when the request has
    /// both `Transfer-Encoding` and `Content-Length` (RFC 9112 §6.3).
    pub fn keep_alive(&self) -> bool {
        let h = &self.headers;
        if has_header(h, "transfer-encoding") && has_header(h, "content-length") {
            return false;
        }
        if connection_says(h, b"close") {
            return false;
        }
        self.version_minor >= 1 || connection_says(h, b"keep-alive")
    }

    /// How the request body is delimited (never [`BodyFraming::UntilClose`]).
    pub fn body(&self) -> Result<BodyFraming, HttpError> {
        if has_header(&self.headers, "transfer-encoding") {
            if self.version_minor == 0 {
                return Err(HttpError::TransferEncodingInHttp10);
            }
            if !chunked_is_final(&self.headers) {
                return Err(HttpError::TransferEncodingNotChunked);
            }
            return Ok(BodyFraming::Chunked);
        }
        Ok(BodyFraming::Length(
            content_length(&self.headers)?.unwrap_or(0),
        ))
    }

    /// Writes the head to send upstream: `METHOD /path HTTP/1.x`, a `Host`
    /// generated from the target (RFC 9112 §3.2.2: a received `Host` is
    /// replaced), the received fields minus hop-by-hop ones (and minus
    /// `Content-Length` when `Transfer-Encoding` is present), then
    /// `Connection: close`. For a `CONNECT` head (normally tunnelled, not
    /// forwarded) the request line keeps the authority form.
    pub fn encode_origin(&self, dst: &mut BytesMut) {
        let (host, port) = match &self.target {
            RequestTarget::Authority { host, port }
            | RequestTarget::Absolute { host, port, .. } => (host.as_str(), *port),
        };
        put_all(dst, &[self.method.as_bytes(), b" "]);
        match &self.target {
            RequestTarget::Authority { .. } => put_authority(dst, host, Some(port)),
            RequestTarget::Absolute { path, .. } => dst.put_slice(path.as_bytes()),
        }
        put_all(
            dst,
            &[
                b" HTTP/1.",
                version_digit(self.version_minor),
                b"\r\nHost: ",
            ],
        );
        put_authority(dst, host, (port != 80).then_some(port));
        dst.put_slice(b"\r\n");
        let drop_length = has_header(&self.headers, "transfer-encoding");
        for (name, value) in &self.headers {
            let framing_dup = drop_length && name.eq_ignore_ascii_case("content-length");
            if !framing_dup && !name.eq_ignore_ascii_case("host") && !is_hop(&self.headers, name) {
                put_all(dst, &[name.as_bytes(), b": ", value, b"\r\n"]);
            }
        }
        dst.put_slice(b"Connection: close\r\n\r\n");
    }
}

impl ResponseHead {
    /// Parses a response head at the start of `buf`; same contract and
    /// bounds as [`RequestHead::decode`].
    pub fn decode(buf: &[u8]) -> Result<Option<(ResponseHead, usize)>, HttpError> {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut resp = httparse::Response::new(&mut slots);
        match resp.parse(head_window(buf)) {
            Ok(httparse::Status::Complete(len)) => Ok(Some((Self::from_parsed(&resp)?, len))),
            Ok(httparse::Status::Partial) => partial(buf),
            Err(e) => Err(HttpError::from_parse(e)),
        }
    }

    fn from_parsed(resp: &httparse::Response<'_, '_>) -> Result<Self, HttpError> {
        let missing = HttpError::MalformedHead("incomplete status line");
        let status = resp.code.ok_or(missing.clone())?;
        let version_minor = resp.version.ok_or(missing)?;
        Ok(ResponseHead {
            status,
            reason: resp.reason.unwrap_or("").to_owned(),
            version_minor,
            headers: own_headers(resp.headers),
        })
    }

    /// Whether this is an interim (1xx other than 101) response, after
    /// which the real response head follows. Do not forward one to an
    /// HTTP/1.0 client (RFC 9110 §15.2).
    pub fn is_interim(&self) -> bool {
        (100..=199).contains(&self.status) && self.status != 101
    }

    /// How the response body is delimited, given the request's method.
    pub fn body(&self, request_method: &str) -> Result<BodyFraming, HttpError> {
        let connect_ok = request_method == "CONNECT" && (200..300).contains(&self.status);
        if request_method == "HEAD" || connect_ok || self.has_no_body_status() {
            return Ok(BodyFraming::Length(0));
        }
        if has_header(&self.headers, "transfer-encoding") {
            return Ok(if chunked_is_final(&self.headers) {
                BodyFraming::Chunked
            } else {
                BodyFraming::UntilClose
            });
        }
        Ok(content_length(&self.headers)?.map_or(BodyFraming::UntilClose, BodyFraming::Length))
    }

    fn has_no_body_status(&self) -> bool {
        (100..=199).contains(&self.status) || self.status == 204 || self.status == 304
    }

    /// Writes the head to send to the client: `HTTP/1.1 status reason`, the
    /// received fields minus hop-by-hop ones (`Transfer-Encoding` and
    /// `Content-Length` kept, as the body passes through verbatim; but
    /// `Content-Length` dropped when `Transfer-Encoding` is present), then
    /// `Connection: keep-alive` or `close` (omitted on interim responses).
    ///
    /// Pass `keep_alive = false` when the body is [`BodyFraming::UntilClose`]
    /// or the request did not allow keep-alive.
    pub fn encode_for_client(&self, keep_alive: bool, dst: &mut BytesMut) {
        let status = self.status.to_string();
        put_all(
            dst,
            &[
                b"HTTP/1.1 ",
                status.as_bytes(),
                b" ",
                self.reason.as_bytes(),
                b"\r\n",
            ],
        );
        let drop_length = has_header(&self.headers, "transfer-encoding");
        for (name, value) in &self.headers {
            let framing_dup = drop_length && name.eq_ignore_ascii_case("content-length");
            if !framing_dup && !is_hop(&self.headers, name) {
                put_all(dst, &[name.as_bytes(), b": ", value, b"\r\n"]);
            }
        }
        if !self.is_interim() {
            let conn: &[u8] = if keep_alive { b"keep-alive" } else { b"close" };
            put_all(dst, &[b"Connection: ", conn, b"\r\n"]);
        }
        dst.put_slice(b"\r\n");
    }
}

/// At most the first [`MAX_HEAD`] bytes: a longer head is refused anyway.
pub(super) fn head_window(buf: &[u8]) -> &[u8] {
    buf.get(..MAX_HEAD).unwrap_or(buf)
}

/// An incomplete head: wait, unless it can no longer fit in [`MAX_HEAD`].
pub(super) fn partial<T>(buf: &[u8]) -> Result<Option<T>, HttpError> {
    if buf.len() >= MAX_HEAD {
        Err(HttpError::HeadTooLarge)
    } else {
        Ok(None)
    }
}

pub(super) fn own_headers(raw: &[httparse::Header<'_>]) -> Headers {
    raw.iter()
        .map(|h| (h.name.to_owned(), h.value.to_vec()))
        .collect()
}

pub(super) fn put_all(dst: &mut BytesMut, parts: &[&[u8]]) {
    for part in parts {
        dst.put_slice(part);
    }
}

pub(super) fn version_digit(minor: u8) -> &'static [u8] {
    if minor == 0 { b"0" } else { b"1" }
}

/// Writes `host[:port]`, bracketing IPv6 literals.
pub(super) fn put_authority(dst: &mut BytesMut, host: &str, port: Option<u16>) {
    if host.contains(':') {
        put_all(dst, &[b"[", host.as_bytes(), b"]"]);
    } else {
        dst.put_slice(host.as_bytes());
    }
    if let Some(port) = port {
        put_all(dst, &[b":", port.to_string().as_bytes()]);
    }
}
