//! Tokens: claim sets, signing keys (generation, lifecycle, the in-memory key ring), and
//! verification. Knows nothing of HTTP.

pub mod algs;
pub mod claims;
pub mod keygen;
pub mod keyring;
pub mod rotation;

/// Now in unix milliseconds, the unit of signing-key instants.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
