//! The feed's cursor: a position and an HMAC of it under a key derived from the master key,
//! so every instance reads every instance's cursors and a cursor tessera did not issue is
//! recognised as such (SPEC §6.7: 400 `invalid_request`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::crypto::{constant_time_eq, hmac_sha256, MasterKey};
use crate::error::{Error, Result};

/// The bytes of the tag a cursor carries.
const TAG_BYTES: usize = 16;

/// The cursor key. Its `Debug` is redacted.
pub struct CursorKey([u8; 32]);

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(<redacted>)")
    }
}

impl CursorKey {
    /// The key for feed cursors, derived from the master key.
    pub fn new(master_key: &MasterKey) -> Self {
        CursorKey(master_key.derive("revocation-feed-cursor"))
    }

    fn tag(&self, position: i64) -> String {
        let mac = hmac_sha256(&self.0, position.to_string().as_bytes());
        URL_SAFE_NO_PAD.encode(&mac[..TAG_BYTES])
    }

    /// The cursor for `position`: `<position>.<tag>`.
    pub fn encode(&self, position: i64) -> String {
        format!("{position}.{}", self.tag(position))
    }

    /// The position of a cursor this key issued.
    pub fn decode(&self, cursor: &str) -> Result<i64> {
        let refused = || Error::InvalidRequest("`since` is not a cursor of this feed".into());
        let (position, tag) = cursor.split_once('.').ok_or_else(refused)?;
        if position.is_empty() || !position.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refused());
        }
        let position: i64 = position.parse().map_err(|_| refused())?;
        if constant_time_eq(tag.as_bytes(), self.tag(position).as_bytes()) {
            Ok(position)
        } else {
            Err(refused())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_its_position() {
        let key = CursorKey::new(&MasterKey::generate());
        assert_eq!(key.decode(&key.encode(42)).unwrap(), 42);
        assert_eq!(key.decode(&key.encode(0)).unwrap(), 0);
    }

    #[test]
    fn a_cursor_of_another_key_or_altered_is_refused() {
        let key = CursorKey::new(&MasterKey::generate());
        let other = CursorKey::new(&MasterKey::generate());
        assert!(key.decode(&other.encode(42)).is_err());
        let cursor = key.encode(42);
        let (_, tag) = cursor.split_once('.').unwrap();
        assert!(key.decode(&format!("43.{tag}")).is_err());
        for bad in ["", "42", "42.", "-1.x", "+42.x", "abc.def", "1.2.3"] {
            assert!(key.decode(bad).is_err(), "{bad:?}");
        }
    }
}
