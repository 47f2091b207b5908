//! Making new signing keys: RSA with the `rsa` crate (or ready-made ones in tests), P-256
//! and Ed25519 with aws-lc-rs (fast enough that tests make them too).

use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{anyhow, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;

use crate::tokens::algs::SigningAlg;

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

/// The public half of a new key, base64url as its JWK members have it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicParts {
    Rsa {
        n: String,
        e: String,
    },
    /// Affine coordinates of the P-256 point.
    Ec {
        x: String,
        y: String,
    },
    /// The Ed25519 public key.
    Okp {
        x: String,
    },
}

/// A new key pair, before it is sealed and stored.
pub struct NewKeyPair {
    pub kid: String,
    pub alg: SigningAlg,
    pub bits: usize,
    pub public: PublicParts,
    /// PKCS#8 DER of the private key.
    pub pkcs8_der: Vec<u8>,
}

impl std::fmt::Debug for NewKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKeyPair")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("bits", &self.bits)
            .finish_non_exhaustive()
    }
}

static POOL_CURSOR: AtomicUsize = AtomicUsize::new(0);

/// Makes a key pair for `alg`; RSA keys come from `source` (blocking: 2048-bit generation
/// takes tens to hundreds of milliseconds, 4096-bit seconds; P-256 and Ed25519 microseconds).
pub fn generate(source: &KeySource, alg: SigningAlg) -> Result<NewKeyPair> {
    match alg {
        SigningAlg::Rs256 => generate_rsa(source),
        SigningAlg::Es256 => {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| anyhow!("generating a P-256 key failed"))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .map_err(|_| anyhow!("reading a new P-256 key failed"))?;
            // SEC 1 uncompressed point: 0x04 || x || y, 32 bytes each.
            let point = pair.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(anyhow!("unexpected P-256 public key encoding"));
            }
            Ok(NewKeyPair {
                kid: crate::crypto::random_token::<12>(),
                alg,
                bits: 256,
                public: PublicParts::Ec {
                    x: URL_SAFE_NO_PAD.encode(&point[1..33]),
                    y: URL_SAFE_NO_PAD.encode(&point[33..]),
                },
                pkcs8_der: pkcs8.as_ref().to_vec(),
            })
        }
        SigningAlg::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|_| anyhow!("generating an Ed25519 key failed"))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| anyhow!("reading a new Ed25519 key failed"))?;
            Ok(NewKeyPair {
                kid: crate::crypto::random_token::<12>(),
                alg,
                bits: 256,
                public: PublicParts::Okp {
                    x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
                },
                pkcs8_der: pkcs8.as_ref().to_vec(),
            })
        }
    }
}

fn generate_rsa(source: &KeySource) -> Result<NewKeyPair> {
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
        alg: SigningAlg::Rs256,
        bits: private.size() * 8,
        public: PublicParts::Rsa {
            n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        },
        pkcs8_der,
    })
}
