//! Small cryptographic helpers: the master key and AES-256-GCM sealing under it, SHA-256
//! digests for values stored by hash, random secrets, and constant-time comparison.
//!
//! Everything here is from aws-lc-rs, the same library that signs tokens.

use std::io::Write;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;

/// The 32-byte key that encrypts signing keys and TOTP secrets at rest.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// Decodes base64 (standard or URL-safe) of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<Self> {
        let text = text.trim();
        let bytes = STANDARD
            .decode(text)
            .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
            .map_err(|_| anyhow!("not valid base64"))?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| anyhow!("expected 32 bytes, got {}", b.len()))?;
        Ok(MasterKey(key))
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        MasterKey(random_array())
    }

    /// Base64 of the key, for writing it to its file.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// Reads the key file, or creates it with mode 0600 when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                warn_if_readable_by_others(path);
                Self::from_base64(&text)
                    .with_context(|| format!("reading the master key file {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    create_private_dir(dir)
                        .with_context(|| format!("creating {}", dir.display()))?;
                }
                let key = Self::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options
                    .open(path)
                    .with_context(|| format!("creating the master key file {}", path.display()))?;
                file.write_all(format!("{}\n", key.to_base64()).as_bytes())?;
                file.sync_all()?;
                log::info!("created a new master key at {}", path.display());
                Ok(key)
            }
            Err(e) => {
                Err(e).with_context(|| format!("reading the master key file {}", path.display()))
            }
        }
    }

    /// Encrypts `plaintext` with AES-256-GCM; `context` is bound as associated data, so a
    /// sealed value cannot be moved to another row or purpose.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> String {
        seal_with(&self.0, context, plaintext)
    }

    /// A key for one `purpose` only (HKDF-SHA256, RFC 5869): what it protects never shares a
    /// key with sealing, and a value made for one purpose is useless for another.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
        struct Len32;
        impl aws_lc_rs::hkdf::KeyType for Len32 {
            fn len(&self) -> usize {
                32
            }
        }
        let mut out = [0u8; 32];
        Salt::new(HKDF_SHA256, b"tessera")
            .extract(&self.0)
            .expand(&[purpose.as_bytes()], Len32)
            .and_then(|okm| okm.fill(&mut out))
            .expect("HKDF-SHA256 yields 32 bytes");
        out
    }

    /// HMAC-SHA256 of `data` under the key [`MasterKey::derive`] gives for `purpose`, as
    /// base64url: values every instance can recompute and nobody else can forge. The same tag
    /// as [`MasterKey::keyed_hash`], only encoded for URLs and forms.
    pub fn mac(&self, purpose: &str, data: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(self.hmac_tag(purpose, data).as_ref())
    }

    /// Decrypts what [`MasterKey::seal`] produced with the same context.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Vec<u8>> {
        open_with(&self.0, context, sealed)
    }

    /// HMAC-SHA256 of `data` under a key derived from the master key for `purpose`, hex:
    /// for values stored or compared by a digest that someone without the master key must
    /// not be able to compute (a plain hash of a username could be checked by guessing).
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> String {
        hex::encode(self.hmac_tag(purpose, data).as_ref())
    }

    /// The one HMAC behind [`MasterKey::keyed_hash`] and [`MasterKey::mac`].
    fn hmac_tag(&self, purpose: &str, data: &[u8]) -> aws_lc_rs::hmac::Tag {
        use aws_lc_rs::hmac;
        hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &self.derive(purpose)),
            data,
        )
    }
}

/// `create_dir_all`, with the folders it creates readable by their owner only.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Warns when the master key file is open to its group or others: whoever can read it,
/// together with the database, can open every sealed signing key and TOTP secret. A warning,
/// not a refusal: a secret mounted by an orchestrator may come with a mode tessera cannot
/// change, and the operator should decide.
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(metadata) = std::fs::metadata(path) {
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                log::warn!(
                    "the master key file {} has mode {mode:04o}: others than its owner may \
                     read or change it; make it 0600 (chmod 600 {})",
                    path.display(),
                    path.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// AES-256-GCM under `key`: base64url of nonce ‖ ciphertext ‖ tag.
pub fn seal_with(key: &[u8; 32], context: &str, plaintext: &[u8]) -> String {
    let nonce_bytes: [u8; NONCE_LEN] = random_array();
    let key =
        LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).expect("AES-256 takes a 32-byte key"));
    let mut buffer = plaintext.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce_bytes),
        Aad::from(context.as_bytes()),
        &mut buffer,
    )
    .expect("AES-GCM sealing of an in-memory buffer does not fail");
    let mut out = nonce_bytes.to_vec();
    out.extend_from_slice(&buffer);
    URL_SAFE_NO_PAD.encode(out)
}

/// Opens what [`seal_with`] produced; fails on a wrong key, context or tampered data.
pub fn open_with(key: &[u8; 32], context: &str, sealed: &str) -> Result<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| anyhow!("sealed value is not base64url"))?;
    if bytes.len() < NONCE_LEN + 16 {
        bail!("sealed value is too short");
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| anyhow!("bad nonce"))?;
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, key).map_err(|_| anyhow!("bad key"))?);
    let mut buffer = ciphertext.to_vec();
    let plaintext = key
        .open_in_place(nonce, Aad::from(context.as_bytes()), &mut buffer)
        .map_err(|_| anyhow!("decryption failed: wrong key or altered data"))?;
    Ok(plaintext.to_vec())
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use aws_lc_rs::hmac;
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data);
    tag.as_ref().try_into().expect("HMAC-SHA256 is 32 bytes")
}

/// SHA-256 of `data`, as raw bytes.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    digest.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// SHA-512 of `data` (the hash of `at_hash` for Ed25519-signed ID tokens).
pub fn sha512(data: &[u8]) -> [u8; 64] {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, data);
    digest.as_ref().try_into().expect("SHA-512 is 64 bytes")
}

/// SHA-256 of `data`, hex-encoded: how refresh-token ids and client secrets are stored.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// Random bytes from the system's CSPRNG.
pub fn random_array<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source is available");
    bytes
}

/// `N` random bytes as base64url without padding.
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_array::<N>())
}

/// Compares two secrets in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let key = MasterKey::generate();
        let sealed = key.seal("signing-key:abc", b"secret");
        assert_eq!(key.open("signing-key:abc", &sealed).unwrap(), b"secret");
        assert!(key.open("signing-key:other", &sealed).is_err());
        assert!(MasterKey::generate()
            .open("signing-key:abc", &sealed)
            .is_err());
    }

    #[test]
    fn keyed_hashes_depend_on_the_key_the_purpose_and_the_data() {
        let key = MasterKey::generate();
        let hash = key.keyed_hash("login-username", b"alice");
        assert_eq!(hash, key.keyed_hash("login-username", b"alice"));
        assert_eq!(hash.len(), 64);
        assert_ne!(hash, key.keyed_hash("login-username", b"bob"));
        assert_ne!(hash, key.keyed_hash("csrf", b"alice"));
        assert_ne!(
            hash,
            MasterKey::generate().keyed_hash("login-username", b"alice")
        );
    }

    #[test]
    fn derived_keys_differ_by_purpose_and_master_key_and_are_not_the_master_key() {
        let key = MasterKey::generate();
        assert_eq!(key.derive("csrf"), key.derive("csrf"));
        assert_ne!(key.derive("csrf"), key.derive("other"));
        assert_ne!(key.derive("csrf"), MasterKey::generate().derive("csrf"));
        assert_ne!(key.derive("csrf"), key.0);
    }

    #[test]
    fn master_keys_must_be_32_bytes_of_base64() {
        let key = MasterKey::generate();
        assert!(MasterKey::from_base64(&key.to_base64()).is_ok());
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
    }

    #[test]
    fn constant_time_eq_compares_contents_and_lengths() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
