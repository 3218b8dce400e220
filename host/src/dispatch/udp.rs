//! A UDP session on a VLESS connection (command 2): route it (nothing to sniff), open
//! a datagram flow on the chosen outbound, relay length-framed datagrams.

use std::time::Instant;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncWrite};

use super::{Context, Outcome, access_log, route_without_payload};
use crate::relay::Traffic;
use crate::session::Snapshot;

pub async fn udp_session<S>(
    ctx: &Context,
    snapshot: Snapshot,
    client: S,
    held: BytesMut,
    prefix: &[u8],
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let started = Instant::now();
    let Some((decided, outbound)) = route_without_payload(ctx, &snapshot, started) else {
        return;
    };
    let (traffic, outcome) = match outbound.open_packets(&decided.dial_target).await {
        Ok(packets) => {
            let relayed =
                crate::udp_relay::relay_udp(client, held, packets, prefix, ctx.timeouts.idle);
            match relayed.await {
                Ok(t) => (t, Outcome::Ok),
                Err(e) => {
                    tracing::debug!("udp: {e}");
                    (Traffic::default(), Outcome::Error)
                }
            }
        }
        Err(e) => {
            tracing::debug!("udp: {e}");
            (Traffic::default(), Outcome::of_failed_dial(&e))
        }
    };
    access_log(&decided, Some(&outbound.tag), traffic, started, outcome);
}
