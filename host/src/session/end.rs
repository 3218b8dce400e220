//! How a session ends: the one family of end types. [`Outcome`] is the `result` of the
//! access-log line; [`Failure`] is why a session could not be connected, in the terms
//! an inbound answers its client with (a SOCKS5 reply code, an HTTP status).

/// How a session ended, for the access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Relayed until both sides closed.
    Ok,
    /// The route stage or a `block` outbound refused it.
    Blocked,
    /// Refused before it became a session (bad handshake, unknown user).
    Rejected,
    /// Not VLESS: served by a fallback.
    Fallback,
    /// Nothing moved for a timeout.
    Timeout,
    /// A read, write or dial failed, or the session was cut off.
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Blocked => "blocked",
            Outcome::Rejected => "rejected",
            Outcome::Fallback => "fallback",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
        }
    }
}

/// Why a session could not be connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The route stage or a block outbound refused it.
    Blocked,
    /// The name did not resolve.
    UnknownHost,
    Refused,
    Unreachable,
    TimedOut,
    Other,
}

impl Failure {
    /// The access-log result of a session that ends this way.
    pub fn outcome(self) -> Outcome {
        match self {
            Failure::Blocked => Outcome::Blocked,
            _ => Outcome::Error,
        }
    }
}
