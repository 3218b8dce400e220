//! TLS identities: a certificate chain and key from PEM files, or generated in memory
//! (self-signed, for the embedded default and tests).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::error::Errors;
use super::raw::RawTls;

/// A certificate chain, its key and the ALPN protocols to offer.
#[derive(Clone)]
pub struct TlsIdentity {
    pub certs: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
    pub alpn: Vec<String>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certs", &self.certs.len())
            .field("alpn", &self.alpn)
            .finish_non_exhaustive()
    }
}

impl TlsIdentity {
    /// A fresh self-signed certificate for `names` (e.g. `["localhost"]`).
    pub fn self_signed(names: &[String]) -> anyhow::Result<(Self, String)> {
        let cert = rcgen::generate_simple_self_signed(names.to_vec())?;
        let pem = cert.cert.pem();
        let key = PrivateKeyDer::Pkcs8(cert.signing_key.serialize_der().into());
        let identity = TlsIdentity {
            certs: vec![cert.cert.der().clone()],
            key: Arc::new(key),
            alpn: vec!["http/1.1".into()],
        };
        Ok((identity, pem))
    }
}

pub fn load(raw: &RawTls, at: &str, base: &Path, errors: &mut Errors) -> Option<TlsIdentity> {
    let certs = errors.take(&format!("{at}.cert"), load_certs(&base.join(&raw.cert)));
    let key = errors.take(&format!("{at}.key"), load_key(&base.join(&raw.key)));
    Some(TlsIdentity {
        certs: certs?,
        key: Arc::new(key?),
        alpn: raw.alpn.clone(),
    })
}

/// The `[api.tls]` identity (ALPN h2, as gRPC needs) and its client CAs, if any.
pub fn load_api(raw: &super::raw::RawApiTls, base: &Path, errors: &mut Errors) -> Option<ApiTls> {
    let certs = errors.take("api.tls.cert", load_certs(&base.join(&raw.cert)));
    let key = errors.take("api.tls.key", load_key(&base.join(&raw.key)));
    let client_ca = match &raw.client_ca {
        Some(ca) => Some(errors.take("api.tls.client_ca", load_certs(&base.join(ca)))?),
        None => None,
    };
    Some(ApiTls {
        identity: TlsIdentity {
            certs: certs?,
            key: Arc::new(key?),
            alpn: vec!["h2".into()],
        },
        client_ca,
    })
}

/// The management API's TLS: its identity, and the CAs that sign client certificates
/// (none: any client that completes the handshake).
#[derive(Debug, Clone)]
pub struct ApiTls {
    pub identity: TlsIdentity,
    pub client_ca: Option<Vec<CertificateDer<'static>>>,
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: not a PEM certificate chain: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in the file", path.display()));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    PrivateKeyDer::from_pem_slice(&bytes)
        .map_err(|e| format!("{}: no usable private key: {e}", path.display()))
}
