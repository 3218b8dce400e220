//! The layers of a VLESS inbound or outbound, as the config names them:
//! `transport = "tcp"` and `security = "tls"` (both the default). A new layer is one
//! more arm here and one module in `transport/` or `security/`.

use super::error::Errors;

/// How the stream reaches the next hop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    #[default]
    Tcp,
}

/// What protects the stream. TLS's settings are the inbound's `[tls]` table and the
/// outbound's `sni`, `alpn`, `insecure` and `ca`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Security {
    #[default]
    Tls,
}

/// The layers named at `at` (`None`: the default).
pub fn layers(
    transport: Option<&str>,
    security: Option<&str>,
    at: &str,
    errors: &mut Errors,
) -> (Transport, Security) {
    let transport = match transport {
        None | Some("tcp") => Transport::Tcp,
        Some(other) => {
            let why = format!("transport {other:?} is not supported (tcp is)");
            errors.push(format!("{at}.transport"), why);
            Transport::Tcp
        }
    };
    let security = match security {
        None | Some("tls") => Security::Tls,
        Some(other) => {
            let why = format!("security {other:?} is not supported (tls is)");
            errors.push(format!("{at}.security"), why);
            Security::Tls
        }
    };
    (transport, security)
}
