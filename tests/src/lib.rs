//! Shared helpers for the end-to-end tests: certificates generated at test time, a
//! daemon started in-process on port 0, a VLESS client written here, and small local
//! servers (TCP echo, HTTP, a patterned blob, UDP echo). Everything binds 127.0.0.1:0.

pub mod dns_server;
pub mod logcapture;
pub mod mux_client;
pub mod peers;
pub mod servers;
pub mod singbox;
pub mod tls_web;
pub mod vless_client;

use std::net::SocketAddr;
use std::path::Path;

use wasmray::config::Config;
use wasmray::daemon::Daemon;

pub const UUID: &str = "27848739-7e62-4138-9fd3-098a63964b6b";
pub const SNI: &str = "localhost";

/// A temporary directory with a fresh self-signed cert.pem/key.pem for `localhost`.
pub struct CertDir {
    pub dir: tempfile::TempDir,
    pub cert_der: Vec<u8>,
}

impl CertDir {
    pub fn new() -> CertDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = rcgen::generate_simple_self_signed(vec![SNI.to_string()]).expect("cert");
        std::fs::write(dir.path().join("cert.pem"), cert.cert.pem()).expect("write cert");
        std::fs::write(dir.path().join("key.pem"), cert.signing_key.serialize_pem())
            .expect("write key");
        CertDir {
            cert_der: cert.cert.der().to_vec(),
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Default for CertDir {
    fn default() -> Self {
        Self::new()
    }
}

/// A server config: one VLESS inbound on 127.0.0.1:0 with user [`UUID`] (alice), the
/// outbounds direct and block, and `extra` appended (fallbacks, plugin tables).
pub fn server_toml(extra_inbound: &str, extra: &str) -> String {
    format!(
        r#"
[log]
level = "warn"

[[inbound]]
tag = "vless-in"
type = "vless"
listen = "127.0.0.1:0"
handshake_timeout = "5s"
[inbound.tls]
cert = "cert.pem"
key = "key.pem"
alpn = ["http/1.1"]
[[inbound.users]]
id = "{UUID}"
email = "alice@example.com"
{extra_inbound}

[[outbound]]
tag = "direct"
type = "direct"
[[outbound]]
tag = "block"
type = "block"

{extra}
"#
    )
}

/// A daemon started in-process from `toml` (relative paths in `certs`).
pub struct TestServer {
    pub daemon: Daemon,
    pub addr: SocketAddr,
    pub certs: CertDir,
}

impl TestServer {
    pub async fn start(toml: &str) -> TestServer {
        let certs = CertDir::new();
        let config =
            Config::parse(toml, certs.path()).unwrap_or_else(|e| panic!("test config: {e}"));
        Self::start_with(config, certs).await
    }

    pub async fn start_with(config: Config, certs: CertDir) -> TestServer {
        let daemon = Daemon::start(&config).await.expect("daemon starts");
        let addr = daemon.listeners().await[0].1;
        TestServer {
            daemon,
            addr,
            certs,
        }
    }
}
