//! Which requests may use which flow, as Xray's VLESS inbound decides
//! (`shared/spec/xtls-vision.md` §2.1), with its error texts: after the user is known,
//! a refusal closes the connection (never a fallback).
//!
//! Where Xray prints the account's whole id, these print a short form: an id is its
//! user's password.

use crate::proto::vision::FLOW;
use crate::proto::vless::Command;

/// TLS 1.3, the only outer version Vision runs over.
const TLS13: u16 = 0x0304;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    #[error("account {0} is not able to use the flow xtls-rprx-vision")]
    NotAllowed(String),
    #[error("xtls-rprx-vision doesn't support UDP")]
    Udp,
    #[error("failed to use xtls-rprx-vision, found outer tls version {0}")]
    OuterVersion(u16),
    #[error(
        "account {0} is rejected since the client flow is empty. Note that the pure TLS proxy \
         has certain TLS in TLS characters."
    )]
    EmptyFlow(String),
    #[error("unknown request flow {0}")]
    Unknown(String),
}

/// What the request asks of the flow: `requested` from its addons, `vision_user` the
/// user's own flow, `first` the payload bytes read with the header, `outer` the TLS
/// version under VLESS. `Ok(true)`: the session speaks Vision.
pub fn decide(
    requested: &str,
    vision_user: bool,
    user: &str,
    command: &Command,
    first: &[u8],
    outer: Option<u16>,
) -> Result<bool, FlowError> {
    match requested {
        FLOW if !vision_user => Err(FlowError::NotAllowed(user.to_string())),
        FLOW if matches!(command, Command::Udp(_)) => Err(FlowError::Udp),
        FLOW => match outer {
            Some(TLS13) => Ok(true),
            other => Err(FlowError::OuterVersion(other.unwrap_or(0))),
        },
        "" if vision_user => match command {
            Command::Tcp(_) => Err(FlowError::EmptyFlow(user.to_string())),
            Command::Mux if !xudp_first(first) => Err(FlowError::EmptyFlow(user.to_string())),
            _ => Ok(false),
        },
        "" => Ok(false),
        other => Err(FlowError::Unknown(other.to_string())),
    }
}

/// Whether the first Mux.Cool frame opens session 0 over UDP, as XUDP does (Xray's
/// `isMuxAndNotXUDP`, negated): too few bytes to tell is "not XUDP".
fn xudp_first(first: &[u8]) -> bool {
    matches!(first, [_, _, 0, 0, _, _, 2, ..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Address, Destination};

    fn dest(port: u16) -> Destination {
        Destination::new(Address::Domain("example.com".into()), port)
    }

    fn tcp() -> Command {
        Command::Tcp(dest(443))
    }

    #[test]
    fn xrays_rules_in_order() {
        let xudp = [0x00, 0x0c, 0x00, 0x00, 0x01, 0x01, 0x02];
        let udp = Command::Udp(dest(53));
        let ok13 = Some(TLS13);
        assert_eq!(decide(FLOW, true, "u", &tcp(), &[], ok13), Ok(true));
        assert_eq!(decide(FLOW, true, "u", &Command::Mux, &[], ok13), Ok(true));
        assert_eq!(
            decide(FLOW, false, "27848739…", &tcp(), &[], ok13)
                .unwrap_err()
                .to_string(),
            "account 27848739… is not able to use the flow xtls-rprx-vision"
        );
        assert_eq!(
            decide(FLOW, true, "u", &udp, &[], ok13),
            Err(FlowError::Udp)
        );
        assert_eq!(
            decide(FLOW, true, "u", &tcp(), &[], Some(0x0303))
                .unwrap_err()
                .to_string(),
            "failed to use xtls-rprx-vision, found outer tls version 771"
        );
        let empty = decide("", true, "u", &tcp(), &[], ok13).unwrap_err();
        assert!(empty.to_string().starts_with(
            "account u is rejected since the client flow is empty. Note that the pure TLS proxy"
        ));
        assert!(decide("", true, "u", &Command::Mux, &xudp[..6], ok13).is_err());
        assert_eq!(decide("", true, "u", &Command::Mux, &xudp, ok13), Ok(false));
        assert_eq!(decide("", true, "u", &udp, &[], ok13), Ok(false));
        assert_eq!(decide("", false, "u", &tcp(), &[], None), Ok(false));
        assert_eq!(
            decide("xtls-rprx-direct", true, "u", &tcp(), &[], ok13),
            Err(FlowError::Unknown("xtls-rprx-direct".into()))
        );
    }
}
