//! `sniff-tls`: Xray's TLS sniffer (`SniffTLS` / `ReadClientHello`) as a wasmray
//! sniff-stage plugin.
//!
//! For a TCP session whose first bytes are a TLS ClientHello with a server name, it
//! answers with protocol `tls`, the SNI (lower-cased) as the sniffed domain, and the
//! client's ALPN offer as the attribute `tls.alpn` (comma-separated, in the client's
//! order; absent without an ALPN extension).
//!
//! The checks are Xray's: handshake record (`0x16`, version major 3), the whole record
//! present (else need-more), session id ≤ 32 bytes, an even cipher-suite length,
//! compression methods, an extensions length that fills the message exactly, the first
//! `host_name` entry of `server_name`. A name holding a byte ≤ `0x20` is need-more (Xray's
//! guard against a name cut across QUIC packets); a trailing dot or no SNI is no-match.
//!
//! # Where it differs from Xray, and why
//!
//! * A ClientHello split over several handshake records (record fragmentation, used by
//!   anti-censorship clients) is reassembled; Xray only parses the first record and fails.
//! * The handshake type must be ClientHello, and a record must not be longer than 2^14
//!   bytes (the TLS limit), so garbage is refused early instead of waited for.
//! * The SNI must be a well-formed domain (`[0-9A-Za-z-._]`, no empty label); anything
//!   else is no-match, so the daemon is never handed a name it could not dial. It is
//!   lower-cased here (Xray lower-cases it later, in routing).
//! * When the payload reaches [`PAYLOAD_BYTES`] and the answer would still be need-more,
//!   it is no-match: more data is not coming.
//! * UDP sessions are no-match (QUIC is a different sniffer).
//!
//! # Payload size
//!
//! [`PAYLOAD_BYTES`] is one maximal TLS record: 5 + 2^14 = 16389 bytes. Today's largest
//! ClientHellos (with a post-quantum X25519MLKEM768 key share) are under 2 KiB.

use serde::Deserialize;
use wasmray_plugin_sdk::tls::{self, HelloError};
use wasmray_plugin_sdk::{
    Config, Delta, Descriptor, Network, Plugin, Snapshot, Verdict, domain, log,
};

/// How many payload bytes the sniffer asks for: one maximal TLS record.
pub const PAYLOAD_BYTES: u32 = (tls::RECORD_HEADER_LEN + tls::MAX_RECORD_LEN) as u32;

/// The attribute holding the client's ALPN offer.
pub const ALPN_ATTRIBUTE: &str = "tls.alpn";

/// The plugin. It has no settings: its config table must be empty.
pub struct SniffTls;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {}

impl Plugin for SniffTls {
    fn describe() -> Descriptor {
        Descriptor::sniff("sniff-tls", env!("CARGO_PKG_VERSION"), PAYLOAD_BYTES)
    }

    fn configure(config: &Config) -> Result<Self, String> {
        let Settings {} = config.parse()?;
        Ok(SniffTls)
    }

    fn handle(&self, session: &Snapshot, payload: &[u8]) -> Verdict {
        if session.network != Network::Tcp {
            return Verdict::NoMatch;
        }
        let need_more = || {
            if payload.len() >= PAYLOAD_BYTES as usize {
                Verdict::NoMatch
            } else {
                Verdict::NeedMore
            }
        };
        let hello = match tls::sniff_client_hello(payload) {
            Ok(hello) => hello,
            Err(HelloError::Incomplete) => return need_more(),
            Err(HelloError::NotClientHello(why)) => {
                log::trace!("not a ClientHello: {why}");
                return Verdict::NoMatch;
            }
        };
        let name = match hello.server_name.as_deref() {
            None | Some([]) => return Verdict::NoMatch,
            Some(name) => name,
        };
        if name.iter().any(|&b| b <= b' ') {
            return need_more();
        }
        if name.ends_with(b".") {
            return Verdict::NoMatch;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            return Verdict::NoMatch;
        };
        if !domain::is_valid_domain(name) {
            return Verdict::NoMatch;
        }
        let mut delta = Delta::new()
            .protocol("tls")
            .sniffed_domain(name.to_ascii_lowercase());
        if !hello.alpn.is_empty() {
            let offer: Vec<String> = hello
                .alpn
                .iter()
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .collect();
            delta.insert(ALPN_ATTRIBUTE, offer.join(","));
        }
        Verdict::Matched(delta)
    }
}

wasmray_plugin_sdk::export_plugin!(SniffTls);
