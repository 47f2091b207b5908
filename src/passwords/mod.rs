//! Passwords: the policy new passwords must meet, and argon2id hashing on a bounded pool of
//! blocking threads, so that a flood of logins cannot stall the async workers.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, Result};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

const COMMON_PASSWORDS: &str = include_str!("common_passwords.txt");

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Why a password is refused, or `None` when it meets the policy: 8–128 characters
/// (Unicode code points), not among the 30,000 most common passwords, not the username.
pub fn policy_violation(password: &str, username: &str) -> Option<&'static str> {
    let length = password.chars().count();
    if length < 8 {
        Some("password must be at least 8 characters long")
    } else if length > 128 {
        Some("password must be at most 128 characters long")
    } else if password.to_lowercase() == username.to_lowercase() {
        Some("password must not be the same as the username")
    } else if common_passwords().contains(password.to_lowercase().as_str()) {
        Some("password is too common; choose one that is not on lists of common passwords")
    } else {
        None
    }
}

/// Rejects argon2 parameters the argon2 crate would refuse.
pub fn check_params(params: Argon2Params) -> Result<()> {
    Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        None,
    )
    .map(|_| ())
    .map_err(|e| anyhow!("argon2 parameters rejected: {e}"))
}

/// How many hashes may run at once: one per core.
fn slots() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

/// Hashes and verifies passwords with argon2id at the configured cost.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when the user does not exist so that
    /// an unknown username costs as much as a wrong password.
    dummy_hash: Arc<String>,
    /// Bounds how many hashes run at once: one per core. Requests beyond that wait without
    /// holding a thread.
    permits: Arc<tokio::sync::Semaphore>,
    /// Argon2 working memory (19 MiB at OWASP parameters), kept for reuse: at most one
    /// buffer per permit. Allocating it per hash on whichever blocking thread runs it left
    /// glibc holding hundreds of megabytes across its per-thread arenas under a login flood,
    /// and page-faulting fresh memory on every hash.
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Builds a hasher; computes the dummy hash once.
    pub fn new(params: Argon2Params) -> Result<Self> {
        let params = Params::new(
            params.memory_kib,
            params.iterations,
            params.parallelism,
            None,
        )
        .map_err(|e| anyhow!("argon2 parameters rejected: {e}"))?;
        let mut hasher = PasswordHasher {
            params,
            dummy_hash: Arc::new(String::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(slots())),
            memory: Arc::new(Mutex::new(Vec::new())),
        };
        hasher.dummy_hash = Arc::new(hasher.hash(&crate::crypto::random_token::<16>())?);
        // An idle server holds no working memory; the first logins bring it back.
        hasher
            .memory
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Runs argon2 into `out` with a reused working-memory buffer.
    fn compute(
        &self,
        argon2: &Argon2<'_>,
        params: &Params,
        password: &[u8],
        salt: &[u8],
        out: &mut [u8],
    ) -> argon2::Result<()> {
        let blocks = params.block_count();
        let reused = {
            let mut pool = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            pool.iter()
                .position(|b| b.len() == blocks)
                .map(|i| pool.swap_remove(i))
        };
        // Argon2 writes every block before reading it, so a used buffer needs no clearing.
        let mut memory = reused.unwrap_or_else(|| vec![Block::default(); blocks]);
        let result = argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..]);
        // Only buffers of the current size are kept: a stale hash's parameters are rare.
        if blocks == self.params.block_count() {
            let mut pool = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            if pool.len() < slots() {
                pool.push(memory);
            }
        }
        result
    }

    /// Hashes a password into a PHC string (blocking; call from a blocking thread).
    pub fn hash(&self, password: &str) -> Result<String> {
        let salt_bytes = crate::crypto::random_array::<16>();
        let salt = SaltString::encode_b64(&salt_bytes).map_err(|e| anyhow!("salt: {e}"))?;
        let mut out = vec![
            0u8;
            self.params
                .output_len()
                .unwrap_or(Params::DEFAULT_OUTPUT_LEN)
        ];
        self.compute(
            &self.argon2(),
            &self.params,
            password.as_bytes(),
            &salt_bytes,
            &mut out,
        )
        .map_err(|e| anyhow!("hashing failed: {e}"))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| anyhow!("params: {e}"))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| anyhow!("hash output: {e}"))?),
        };
        Ok(phc.to_string())
    }

    /// Checks a password against a PHC string (blocking). A malformed stored hash is a
    /// mismatch, never a panic.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(version) => version.unwrap_or_default(),
            Err(_) => return false,
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return false;
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = vec![0u8; expected.len()];
        let argon2 = Argon2::new(algorithm, version, params.clone());
        if self
            .compute(&argon2, &params, password.as_bytes(), salt_bytes, &mut out)
            .is_err()
        {
            return false;
        }
        crate::crypto::constant_time_eq(&out, expected.as_bytes())
    }

    /// Burns the time of one verification, for an unknown user.
    pub fn verify_dummy(&self, password: &str) {
        let _ = self.verify(password, &self.dummy_hash);
    }

    /// True when a stored hash was made with other parameters (or another algorithm) and
    /// should be replaced on the next successful login.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        if parsed.algorithm.as_str() != "argon2id" {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(stored) => {
                stored.m_cost() != self.params.m_cost()
                    || stored.t_cost() != self.params.t_cost()
                    || stored.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }

    /// Runs `work` (which hashes or verifies) on a blocking thread, at most one per core at
    /// a time.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| anyhow!("password hasher closed"))?;
        let hasher = self.clone();
        tokio::task::spawn_blocking(move || work(&hasher))
            .await
            .map_err(|e| anyhow!("password hashing task failed: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(Argon2Params {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    #[test]
    fn policy_refuses_short_long_common_and_username_passwords() {
        assert!(policy_violation("short", "alice").is_some());
        assert!(policy_violation(&"x".repeat(129), "alice").is_some());
        assert!(policy_violation("password1", "alice").is_some());
        assert!(policy_violation("Alice-Wonder", "alice-wonder").is_some());
        assert!(policy_violation("correct horse battery", "alice").is_none());
    }

    #[test]
    fn policy_counts_code_points_not_bytes() {
        assert!(policy_violation("ééééééé", "alice").is_some());
        assert!(policy_violation("éééééééé", "alice").is_none());
    }

    #[test]
    fn hashes_verify_and_report_stale_parameters() {
        let hasher = cheap();
        let hash = hasher.hash("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("correct horse battery", &hash));
        assert!(!hasher.verify("wrong horse battery", &hash));
        assert!(!hasher.verify("anything", "not a phc string"));
        assert!(!hasher.needs_rehash(&hash));
        let stronger = PasswordHasher::new(Argon2Params {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap();
        assert!(stronger.needs_rehash(&hash));
    }

    #[test]
    fn hashes_match_the_argon2_crates_own_hasher_both_ways() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = cheap();
        let ours = hasher.hash("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(hasher
            .argon2()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let theirs = hasher
            .argon2()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(hasher.verify("correct horse battery", &theirs));
        assert!(!hasher.verify("correct horse batterz", &theirs));
    }

    #[test]
    fn reused_working_memory_gives_the_same_hash_and_stays_bounded() {
        use argon2::password_hash::PasswordHasher as _;
        let hasher = cheap();
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let expected = hasher
            .argon2()
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        for _ in 0..3 {
            assert!(hasher.verify("correct horse battery", &expected));
            assert!(!hasher.verify("another password", &expected));
        }
        let kept = hasher.memory.lock().unwrap().len();
        assert!((1..=slots()).contains(&kept));
        // A hash made with other parameters verifies too, on memory that is not kept.
        let other = PasswordHasher::new(Argon2Params {
            memory_kib: 256,
            iterations: 2,
            parallelism: 1,
        })
        .unwrap()
        .hash("correct horse battery")
        .unwrap();
        assert!(hasher.verify("correct horse battery", &other));
        assert!(hasher
            .memory
            .lock()
            .unwrap()
            .iter()
            .all(|b| b.len() == hasher.params.block_count()));
    }
}
