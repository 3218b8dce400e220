//! `sniff-http`: Xray's HTTP/1 sniffer (`SniffHTTP`) as a wasmray sniff-stage plugin.
//!
//! For a TCP session whose first bytes start with `GET`, `POST`, `HEAD`, `PUT`, `DELETE`,
//! `OPTIONS` or `CONNECT` (any case), it answers with:
//!
//! * protocol `http1`;
//! * the Host header as the sniffed domain: lower-cased, port removed, IPv6 brackets
//!   removed (an IP literal is kept as the IP, as Xray's `ParseAddress` does);
//! * every header as an attribute: key lower-cased and trimmed, value trimmed with its
//!   case kept, the last one winning for repeated headers (as in Xray);
//! * `:method` (as sent) and `:path` (the raw request-target, query included) when the
//!   request line splits on single spaces into exactly three parts.
//!
//! # Where it differs from Xray, and why
//!
//! * **The head ends at the first empty line, `\r\n` or `\n`.** Xray splits on `\n` and
//!   stops only at a zero-length line, so with CRLF the `\r` line does not stop it and
//!   body lines holding a `:` become attributes. Here nothing after the empty line (a
//!   body, a pipelined second request) is read.
//! * **Complete heads only.** While the empty line has not arrived the answer is
//!   need-more, so attributes are never taken from a half-received head (Xray keeps the
//!   attributes of its first, possibly partial, attempt). When the payload reaches
//!   [`PAYLOAD_BYTES`] without an empty line, the complete lines seen so far are used; a
//!   partial last line is never used.
//! * **No Host still matches.** Xray answers "no clue" without a Host header, but it has
//!   already written the attributes, so its `attrs` routing rules still see them. Here
//!   the answer is a match with protocol `http1` and the attributes but no sniffed domain:
//!   routing by `protocol` and `attrs` works and the target is left alone. A Host that is
//!   not a well-formed domain or IP literal (or has a bad port) is treated the same way.
//! * **The method gate only waits when it can still succeed**: `GE` is need-more, `XY`
//!   is no-match at once (Xray asks for more data for any short buffer).
//! * **At most [`MAX_HEADER_ATTRIBUTES`] header attributes**, so a head of thousands of
//!   tiny headers cannot blow the daemon's output bound; the Host is read regardless.
//! * UDP sessions are never HTTP (Xray runs this sniffer for TCP only).
//!
//! # Payload size
//!
//! [`PAYLOAD_BYTES`] is 16 KiB: Xray caches up to 32767 bytes, but almost every request
//! head fits in a few KiB and servers cap them around 8–16 KiB (nginx: 8 KiB per line,
//! Apache: 8190 bytes per field); 16 KiB covers cookie-heavy browser requests while
//! halving what the daemon copies into the plugin per call.

use std::collections::BTreeMap;

use serde::Deserialize;
use wasmray_plugin_sdk::http::{self, MethodGate, RequestHead};
use wasmray_plugin_sdk::{Config, Delta, Descriptor, Network, Plugin, Snapshot, Verdict, log};

/// How many payload bytes the sniffer asks for.
pub const PAYLOAD_BYTES: u32 = 16 * 1024;

/// The most header attributes one answer carries (the first ones, in order).
pub const MAX_HEADER_ATTRIBUTES: usize = 64;

/// The plugin. It has no settings: its config table must be empty.
pub struct SniffHttp;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {}

impl Plugin for SniffHttp {
    fn describe() -> Descriptor {
        Descriptor::sniff("sniff-http", env!("CARGO_PKG_VERSION"), PAYLOAD_BYTES)
    }

    fn configure(config: &Config) -> Result<Self, String> {
        let Settings {} = config.parse()?;
        Ok(SniffHttp)
    }

    fn handle(&self, session: &Snapshot, payload: &[u8]) -> Verdict {
        if session.network != Network::Tcp {
            return Verdict::NoMatch;
        }
        match http::method_gate(payload) {
            MethodGate::NeedMore => return Verdict::NeedMore,
            MethodGate::NotHttp => return Verdict::NoMatch,
            MethodGate::Method(_) => {}
        }
        let head = RequestHead::parse(payload);
        let at_bound = payload.len() >= PAYLOAD_BYTES as usize;
        if !head.complete && !at_bound {
            return Verdict::NeedMore;
        }
        if head.len == 0 {
            // The bound was hit inside the request line: not a request we can read.
            return Verdict::NoMatch;
        }
        Verdict::Matched(delta_for(&head))
    }
}

/// The answer for a (complete, or cut at the bound) request head. Linear in the number
/// of header lines (a 16 KiB head can hold thousands of them).
fn delta_for(head: &RequestHead<'_>) -> Delta {
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    let mut set: Vec<(String, String)> = Vec::new();
    let mut dropped = 0usize;
    let mut name = String::new();
    for field in &head.headers {
        field.lower_name_into(&mut name);
        match index.get(name.as_str()) {
            // Repeated header: the last one wins, as in Xray.
            Some(&i) => set[i].1 = field.value_str().into_owned(),
            None if set.len() < MAX_HEADER_ATTRIBUTES => {
                index.insert(name.clone(), set.len());
                set.push((std::mem::take(&mut name), field.value_str().into_owned()));
            }
            None => dropped += 1,
        }
    }
    if dropped > 0 {
        log::debug!("{dropped} header lines beyond {MAX_HEADER_ATTRIBUTES} attributes ignored");
    }
    let mut delta = Delta {
        set,
        ..Delta::new()
    }
    .protocol("http1");
    if let Some(line) = head.request_line {
        delta.insert(":method", line.method);
        delta.insert(":path", line.target);
    }
    if let Some(domain) = head.header("host").and_then(|h| http::host_domain(&h)) {
        delta = delta.sniffed_domain(domain);
    }
    delta
}

wasmray_plugin_sdk::export_plugin!(SniffHttp);
