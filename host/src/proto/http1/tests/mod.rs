//! The codec's tests, by section, with the helpers they share.

use super::*;
use bytes::BytesMut;

mod body;
mod framing;
mod head;
mod target;

fn req(text: &str) -> Result<Option<(RequestHead, usize)>, HttpError> {
    RequestHead::decode(text.as_bytes())
}

fn head(text: &str) -> RequestHead {
    match req(text) {
        Ok(Some((h, len))) => {
            assert_eq!(len, text.len());
            h
        }
        other => panic!("expected a head, got {other:?}"),
    }
}

fn resp(text: &str) -> ResponseHead {
    match ResponseHead::decode(text.as_bytes()) {
        Ok(Some((h, len))) => {
            assert_eq!(len, text.len());
            h
        }
        other => panic!("expected a head, got {other:?}"),
    }
}

fn authority(host: &str, port: u16) -> RequestTarget {
    RequestTarget::Authority {
        host: host.into(),
        port,
    }
}

fn absolute(host: &str, port: u16, path: &str) -> RequestTarget {
    RequestTarget::Absolute {
        host: host.into(),
        port,
        path: path.into(),
    }
}

fn target_of(line: &str) -> Result<RequestTarget, HttpError> {
    req(&format!("{line} HTTP/1.1\r\n\r\n")).map(|r| r.map(|(h, _)| h.target).unwrap())
}
