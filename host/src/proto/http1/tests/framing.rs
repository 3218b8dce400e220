//! Body framing of requests and responses, and the encodings back to the client.

use super::*;

fn req_body(fields: &str) -> Result<BodyFraming, HttpError> {
    head(&format!("POST http://a/ HTTP/1.1\r\n{fields}\r\n")).body()
}

#[test]
fn request_body_framing() {
    assert_eq!(req_body(""), Ok(BodyFraming::Length(0)));
    assert_eq!(
        req_body("Content-Length: 42\r\n"),
        Ok(BodyFraming::Length(42))
    );
    assert_eq!(
        req_body("Content-Length: 42\r\nContent-Length: 42\r\n"),
        Ok(BodyFraming::Length(42))
    );
    assert_eq!(
        req_body("Content-Length: 42, 42\r\n"),
        Ok(BodyFraming::Length(42))
    );
    assert_eq!(
        req_body("Transfer-Encoding: chunked\r\n"),
        Ok(BodyFraming::Chunked)
    );
    assert_eq!(
        req_body("Transfer-Encoding: gzip, Chunked\r\n"),
        Ok(BodyFraming::Chunked)
    );
    assert_eq!(
        req_body("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"),
        Ok(BodyFraming::Chunked)
    );
    let bad_cl = Err(HttpError::InvalidContentLength);
    assert_eq!(req_body("Content-Length: -1\r\n"), bad_cl);
    assert_eq!(req_body("Content-Length: +1\r\n"), bad_cl);
    assert_eq!(req_body("Content-Length: 1x\r\n"), bad_cl);
    assert_eq!(req_body("Content-Length:\r\n"), bad_cl);
    assert_eq!(req_body("Content-Length: 42,\r\n"), bad_cl);
    assert_eq!(req_body("Content-Length: 99999999999999999999\r\n"), bad_cl);
    assert_eq!(
        req_body("Content-Length: 1\r\nContent-Length: 2\r\n"),
        Err(HttpError::ConflictingContentLength)
    );
    let not_chunked = Err(HttpError::TransferEncodingNotChunked);
    assert_eq!(req_body("Transfer-Encoding: gzip\r\n"), not_chunked);
    assert_eq!(
        req_body("Transfer-Encoding: chunked, gzip\r\n"),
        not_chunked
    );
    assert_eq!(
        req_body("Transfer-Encoding: chunked, chunked\r\n"),
        not_chunked
    );
    assert_eq!(req_body("Transfer-Encoding: \r\n"), not_chunked);
    let old = head("POST http://a/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(old.body(), Err(HttpError::TransferEncodingInHttp10));
}

#[test]
fn response_body_framing() {
    let framing = |status: &str, fields: &str, method: &str| {
        resp(&format!("HTTP/1.1 {status}\r\n{fields}\r\n")).body(method)
    };
    let cl = "Content-Length: 10\r\n";
    let te = "Transfer-Encoding: chunked\r\n";
    assert_eq!(framing("200 OK", cl, "HEAD"), Ok(BodyFraming::Length(0)));
    assert_eq!(framing("200 OK", te, "HEAD"), Ok(BodyFraming::Length(0)));
    assert_eq!(
        framing("204 No Content", cl, "GET"),
        Ok(BodyFraming::Length(0))
    );
    assert_eq!(
        framing("304 Not Modified", cl, "GET"),
        Ok(BodyFraming::Length(0))
    );
    assert_eq!(
        framing("100 Continue", "", "POST"),
        Ok(BodyFraming::Length(0))
    );
    assert_eq!(framing("200 OK", te, "GET"), Ok(BodyFraming::Chunked));
    assert_eq!(
        framing("200 OK", &format!("{te}{cl}"), "GET"),
        Ok(BodyFraming::Chunked)
    );
    assert_eq!(
        framing("200 OK", "Transfer-Encoding: gzip\r\n", "GET"),
        Ok(BodyFraming::UntilClose)
    );
    assert_eq!(framing("200 OK", cl, "GET"), Ok(BodyFraming::Length(10)));
    assert_eq!(framing("200 OK", "", "GET"), Ok(BodyFraming::UntilClose));
    assert_eq!(
        framing("200 OK", "Content-Length: x\r\n", "GET"),
        Err(HttpError::InvalidContentLength)
    );
    assert!(resp("HTTP/1.1 100 Continue\r\n\r\n").is_interim());
    assert!(resp("HTTP/1.1 103 Early Hints\r\n\r\n").is_interim());
    assert!(!resp("HTTP/1.1 101 Switching Protocols\r\n\r\n").is_interim());
    assert!(!resp("HTTP/1.1 200 OK\r\n\r\n").is_interim());
}

#[test]
fn encode_for_client_keeps_framing() {
    let r = resp(
        "HTTP/1.0 200 Fine\r\nContent-Type: text/html\r\nConnection: keep-alive, X-Hop\r\n\
         Keep-Alive: timeout=5\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
    );
    let mut dst = BytesMut::new();
    r.encode_for_client(true, &mut dst);
    assert_eq!(
        &dst[..],
        b"HTTP/1.1 200 Fine\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\
          Connection: keep-alive\r\n\r\n"
    );
    let r =
        resp("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: Content-Length\r\n\r\n");
    let mut dst = BytesMut::new();
    r.encode_for_client(false, &mut dst);
    assert_eq!(
        &dst[..],
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\n"
    );
    let mut dst = BytesMut::new();
    resp("HTTP/1.1 100 Continue\r\n\r\n").encode_for_client(true, &mut dst);
    assert_eq!(&dst[..], b"HTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn error_response_shape() {
    let r = error_response(400, "Bad Request");
    assert_eq!(
        r,
        b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\
          Connection: close\r\n\r\nBad Request\n"
    );
    let (h, len) = ResponseHead::decode(&r).unwrap().unwrap();
    assert_eq!(h.body("GET"), Ok(BodyFraming::Length(12)));
    assert_eq!(len + 12, r.len());
    assert!(CONNECT_OK.ends_with(b"\r\n\r\n"));
}
