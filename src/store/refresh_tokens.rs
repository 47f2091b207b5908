//! The legacy `refresh_tokens` table: one row per refresh token issued before refresh state
//! moved onto the session row (migration `2026-12-03-000020`), by the SHA-256 of its `jti`.
//! Nothing is inserted any more; a session's first refresh after the upgrade moves it onto
//! its row and deletes its rows here, and the purge deletes those of ended sessions. Once
//! the table is empty (docs/operations.md) a later migration drops it.

use diesel::prelude::*;

use crate::store::schema::{refresh_tokens, sessions};
use crate::store::DbConnection;

/// A legacy refresh-token row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshToken {
    pub jti_hash: String,
    pub session_id: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub spent_at: Option<i64>,
    pub successor_hash: Option<String>,
    pub successor_sealed: Option<String>,
}

/// Finds a token by the hash of its `jti`.
pub fn find(conn: &mut DbConnection, jti_hash: &str) -> QueryResult<Option<RefreshToken>> {
    refresh_tokens::table
        .find(jti_hash)
        .select(RefreshToken::as_select())
        .first(conn)
        .optional()
}

/// Deletes every legacy row of a session (when it moves onto its session row).
pub fn delete_for_session(conn: &mut DbConnection, session_id: &str) -> QueryResult<usize> {
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::session_id.eq(session_id)))
        .execute(conn)
}

/// How many refresh tokens of the session are unspent and unexpired: its current token,
/// if it has one and has not ended, plus unspent legacy rows. Revocation does not enter
/// into it (a revoked session's current token is still unspent).
pub fn count_live_for_session(
    conn: &mut DbConnection,
    session_id: &str,
    now: i64,
) -> QueryResult<i64> {
    let current: i64 = sessions::table
        .find(session_id)
        .filter(sessions::refresh_hash.is_not_null())
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    let legacy: i64 = refresh_tokens::table
        .filter(refresh_tokens::session_id.eq(session_id))
        .filter(refresh_tokens::spent_at.is_null())
        .filter(refresh_tokens::expires_at.gt(now))
        .count()
        .get_result(conn)?;
    Ok(current + legacy)
}
