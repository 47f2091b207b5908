//! Making new RSA signing keys with the `rsa` crate (or taking ready-made ones in tests).

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;

/// How new RSA signing keys are made.
#[derive(Clone)]
pub enum KeySource {
    /// Generated with the `rsa` crate, at this modulus size.
    Generate { bits: usize },
    /// Taken in turn from ready-made PKCS#8 DER keys: for tests, where generation is not what
    /// is being tested.
    Pool(std::sync::Arc<Vec<Vec<u8>>>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Generate { bits } => write!(f, "Generate {{ bits: {bits} }}"),
            KeySource::Pool(keys) => write!(f, "Pool({} keys)", keys.len()),
        }
    }
}

/// A new key pair, before it is sealed and stored.
pub struct NewKeyPair {
    pub kid: String,
    pub bits: usize,
    /// Base64url modulus and exponent, as the JWK has them.
    pub n: String,
    pub e: String,
    /// PKCS#8 DER of the private key.
    pub pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for NewKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKeyPair")
            .field("kid", &self.kid)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

static POOL_CURSOR: AtomicUsize = AtomicUsize::new(0);

/// Makes a key pair from `source` (blocking: 2048-bit generation takes tens to hundreds of
/// milliseconds, 4096-bit seconds).
pub fn generate(source: &KeySource) -> Result<NewKeyPair> {
    let private = match source {
        KeySource::Generate { bits } => RsaPrivateKey::new(&mut rand::rngs::OsRng, *bits)
            .map_err(|e| anyhow!("generating an RSA key failed: {e}"))?,
        KeySource::Pool(keys) => {
            if keys.is_empty() {
                return Err(anyhow!("the key pool is empty"));
            }
            let der = &keys[POOL_CURSOR.fetch_add(1, Ordering::Relaxed) % keys.len()];
            RsaPrivateKey::from_pkcs8_der(der)
                .map_err(|e| anyhow!("a pooled key is not PKCS#8: {e}"))?
        }
    };
    let pkcs8_der = private
        .to_pkcs8_der()
        .map_err(|e| anyhow!("encoding the RSA key failed: {e}"))?
        .as_bytes()
        .to_vec();
    Ok(NewKeyPair {
        kid: crate::crypto::random_token::<12>(),
        bits: private.size() * 8,
        n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        pkcs8_der,
    })
}
