//! A Mux.Cool client for the tests: opens one VLESS tunnel (command 3), starts many
//! sub-streams at once, and collects what each one received until its End.

use std::collections::HashMap;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wasmray::proto::Destination;
use wasmray::proto::mux::{Frame, MuxNetwork, Status};
use wasmray::proto::vless::Command;

use crate::vless_client::{Stream, header, read_response, tls_connect};

/// What one sub-stream got back.
#[derive(Debug, Default, Clone)]
pub struct Received {
    pub data: Vec<u8>,
    /// Datagrams (UDP sub-streams) with the source address the server tagged them with.
    pub datagrams: Vec<(Option<Destination>, Vec<u8>)>,
    pub ended: bool,
    pub error: bool,
}

/// Opens a tunnel to `server` as user `uuid`.
pub async fn open(server: SocketAddr, cert_der: &[u8], uuid: &str) -> std::io::Result<Stream> {
    let mut s = tls_connect(server, cert_der, &["http/1.1"]).await?;
    s.write_all(&header(uuid, Command::Mux)).await?;
    Ok(s)
}

/// New (with `data`) for every request, then End for each if `end_after`; frames are
/// numbered from 1 as Xray's client does.
pub fn open_frames(requests: &[(MuxNetwork, Destination, Vec<u8>)], end_after: bool) -> BytesMut {
    let mut out = BytesMut::new();
    for (i, (network, target, data)) in requests.iter().enumerate() {
        let id = i as u16 + 1;
        Frame::new_session(id, *network, target.clone(), Some(data))
            .encode(&mut out)
            .expect("encode New");
        if end_after {
            Frame::end(id, false).encode(&mut out).expect("encode End");
        }
    }
    out
}

/// Reads frames until `count` sub-streams have ended (or the tunnel closes).
pub async fn collect(s: &mut Stream, count: usize) -> std::io::Result<HashMap<u16, Received>> {
    read_response(s).await?;
    let mut got: HashMap<u16, Received> = HashMap::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        while let Some((frame, used)) = Frame::decode(&buf).map_err(std::io::Error::other)? {
            let entry = got.entry(frame.session_id).or_default();
            match &frame.status {
                Status::Keep {
                    udp_addr: Some(addr),
                } => entry
                    .datagrams
                    .push((Some(addr.clone()), frame.data.unwrap_or_default().to_vec())),
                Status::Keep { udp_addr: None } => {
                    entry.data.extend_from_slice(frame.data.unwrap_or_default())
                }
                Status::End { error } => {
                    entry.ended = true;
                    entry.error = *error;
                }
                _ => {}
            }
            buf.advance(used);
        }
        if got.values().filter(|r| r.ended).count() >= count || s.read_buf(&mut buf).await? == 0 {
            break;
        }
    }
    Ok(got)
}
