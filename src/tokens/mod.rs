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

/// Verifies a token with `verify`; when its `kid` is unknown and a connection is at hand,
/// reloads the ring from the database once (at most once a second per instance, however many
/// requests ask) and verifies again. The one "verify, reload once, verify again" rule for
/// access and refresh tokens alike.
pub fn verify_reloading<T>(
    conn: Option<&mut crate::store::DbConnection>,
    keys: &keyring::KeyRing,
    verify: impl Fn(&keyring::KeyRing) -> Result<T, keyring::VerifyError>,
) -> Result<T, keyring::VerifyError> {
    match verify(keys) {
        Err(keyring::VerifyError::UnknownKid)
            if conn.is_some() && keys.may_reload(std::time::Duration::from_secs(1)) =>
        {
            if let Some(conn) = conn {
                if let Ok(rows) = crate::store::signing_keys::list(conn) {
                    let _ = keys.refresh(rows, now_ms());
                }
            }
            verify(keys)
        }
        other => other,
    }
}
