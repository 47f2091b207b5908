//! Optional TLS: a rustls server configuration from PEM files named by `TESSERA_TLS_CERT`
//! and `TESSERA_TLS_KEY`. Without them tessera serves plain HTTP, for a proxy in front.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// Loads the certificate chain and private key into a server configuration (TLS 1.2 and
/// 1.3, aws-lc-rs as the crypto provider).
pub fn server_config(cert: &Path, key: &Path) -> Result<ServerConfig> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("invalid TESSERA_TLS_CERT: cannot read {}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| {
            anyhow!(
                "invalid TESSERA_TLS_CERT: {} is not a PEM certificate chain: {e}",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        return Err(anyhow!(
            "invalid TESSERA_TLS_CERT: {} holds no certificate",
            cert.display()
        ));
    }
    let private_key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        anyhow!(
            "invalid TESSERA_TLS_KEY: {} holds no usable PEM private key: {e}",
            key.display()
        )
    })?;
    ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow!("TLS setup failed: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, private_key)
        .map_err(|e| anyhow!("invalid TESSERA_TLS_KEY: the key does not match the certificate or is unsupported: {e}"))
}
