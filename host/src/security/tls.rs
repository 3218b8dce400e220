//! TLS with rustls: the server's acceptor from a certificate and key, the client's
//! configuration (web PKI roots, a CA file, or `insecure`), with the cipher order and
//! ticket count of Go's TLS stacks that the peers use.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::config::{TlsIdentity, VlessOutbound};

/// The acceptor of an inbound's certificate, key and ALPN protocols.
pub fn acceptor(identity: &TlsIdentity) -> Result<tokio_rustls::TlsAcceptor, rustls::Error> {
    let mut tls = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(identity.certs.clone(), identity.key.clone_key())?;
    tls.alpn_protocols = identity
        .alpn
        .iter()
        .map(|a| a.as_bytes().to_vec())
        .collect();
    // One resumption ticket per handshake, as Go's servers send (rustls sends two):
    // each costs a session-cache insert, an encrypted record and a write.
    tls.send_tls13_tickets = 1;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(tls)))
}

/// The crypto provider with the cipher-suite order of Go's TLS clients (Xray, v2ray,
/// sing-box): AES-128-GCM with SHA-256 first. rustls's default puts AES-256-GCM with
/// SHA-384 first; against a server that honours the client's order that costs more
/// on both ends (14 AES rounds, and SHA-384, which has no SHA-NI, in every handshake)
/// for no security a proxy hop needs.
pub fn client_provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::aws_lc_rs::default_provider();
    provider.cipher_suites.sort_by_key(|s| {
        use rustls::CipherSuite::*;
        match s.suite() {
            TLS13_AES_128_GCM_SHA256 => 0,
            TLS13_CHACHA20_POLY1305_SHA256 => 1,
            TLS13_AES_256_GCM_SHA384 => 2,
            _ => 3,
        }
    });
    Arc::new(provider)
}

/// The TLS client configuration of a vless outbound: the web PKI roots, the configured
/// CA file's certificates, or (`insecure`) none checked.
pub fn client_config(cfg: &VlessOutbound) -> Arc<rustls::ClientConfig> {
    let provider = client_provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("the aws-lc-rs provider supports the default TLS versions");
    let mut config = if cfg.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny(Some(provider))))
            .with_no_client_auth()
    } else {
        let roots = match &cfg.ca {
            Some(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                let (added, ignored) = roots.add_parsable_certificates(certs.iter().cloned());
                if ignored > 0 {
                    tracing::warn!(added, ignored, "vless outbound: unusable CA certificates");
                }
                roots
            }
            None => {
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned())
            }
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = cfg.alpn.iter().map(|a| a.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// Accepts any server certificate (`insecure = true`), still checking signatures.
#[derive(Debug)]
struct AcceptAny(Option<Arc<rustls::crypto::CryptoProvider>>);

impl AcceptAny {
    fn algorithms(&self) -> rustls::crypto::WebPkiSupportedAlgorithms {
        self.0
            .as_ref()
            .map(|p| p.signature_verification_algorithms)
            .unwrap_or_else(|| {
                rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms
            })
    }
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms().supported_schemes()
    }
}
