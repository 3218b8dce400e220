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
