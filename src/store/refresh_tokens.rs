//! The `refresh_tokens` table: each refresh token by the SHA-256 of its `jti`, whether it has
//! been spent, and what replaced it.

use diesel::prelude::*;

use crate::store::schema::refresh_tokens;
use crate::store::DbConnection;

/// A refresh-token row.
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

/// Inserts a new, unspent refresh token.
pub fn insert(conn: &mut DbConnection, token: &RefreshToken) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(conn)
        .map(|_| ())
}

/// Finds a token by the hash of its `jti`.
pub fn find(conn: &mut DbConnection, jti_hash: &str) -> QueryResult<Option<RefreshToken>> {
    refresh_tokens::table
        .find(jti_hash)
        .select(RefreshToken::as_select())
        .first(conn)
        .optional()
}

/// Marks the token spent, only if it was not spent already: the conditional update is what
/// keeps two concurrent refreshes from both succeeding. Returns how many rows changed (0 or 1).
pub fn spend(
    conn: &mut DbConnection,
    jti_hash: &str,
    now: i64,
    successor_hash: &str,
    successor_sealed: Option<&str>,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .find(jti_hash)
            .filter(refresh_tokens::spent_at.is_null()),
    )
    .set((
        refresh_tokens::spent_at.eq(now),
        refresh_tokens::successor_hash.eq(successor_hash),
        refresh_tokens::successor_sealed.eq(successor_sealed),
    ))
    .execute(conn)
}

/// How many tokens of the session are unspent and unexpired.
pub fn count_live_for_session(
    conn: &mut DbConnection,
    session_id: &str,
    now: i64,
) -> QueryResult<i64> {
    refresh_tokens::table
        .filter(refresh_tokens::session_id.eq(session_id))
        .filter(refresh_tokens::spent_at.is_null())
        .filter(refresh_tokens::expires_at.gt(now))
        .count()
        .get_result(conn)
}
