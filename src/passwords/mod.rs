//! Passwords: the policy new passwords must meet, and argon2id hashing on a bounded pool of
//! blocking threads, so that a flood of logins cannot stall the async workers.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use anyhow::{anyhow, Result};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::Argon2Params;

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
            permits: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )),
        };
        hasher.dummy_hash = Arc::new(hasher.hash(&crate::crypto::random_token::<16>())?);
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes a password into a PHC string (blocking; call from a blocking thread).
    pub fn hash(&self, password: &str) -> Result<String> {
        let salt = SaltString::encode_b64(&crate::crypto::random_array::<16>())
            .map_err(|e| anyhow!("salt: {e}"))?;
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow!("hashing failed: {e}"))
    }

    /// Checks a password against a PHC string (blocking). A malformed stored hash is a
    /// mismatch, never a panic.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        match PasswordHash::new(phc) {
            Ok(parsed) => self
                .argon2()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok(),
            Err(_) => false,
        }
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
        actix_web::rt::task::spawn_blocking(move || work(&hasher))
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
}
