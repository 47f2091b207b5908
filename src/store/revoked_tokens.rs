//! The `revoked_access_tokens` table: the deny list of access-token `jti`s, kept until the
//! tokens would have expired anyway.

use diesel::prelude::*;

use crate::store::schema::revoked_access_tokens;
use crate::store::DbConnection;

/// Deny-lists an access token; revoking it twice is not an error.
pub fn insert(conn: &mut DbConnection, jti: &str, expires_at: i64) -> QueryResult<()> {
    if is_revoked(conn, jti)? {
        return Ok(());
    }
    match diesel::insert_into(revoked_access_tokens::table)
        .values((
            revoked_access_tokens::jti.eq(jti),
            revoked_access_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
    {
        Ok(_) => Ok(()),
        Err(e) if crate::store::is_unique_violation(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// True when the access token was revoked.
pub fn is_revoked(conn: &mut DbConnection, jti: &str) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(revoked_access_tokens::table.find(jti))).get_result(conn)
}

/// Drops entries whose tokens have expired, in bounded batches.
pub fn purge_expired(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    crate::store::in_batches(|| {
        let expired = revoked_access_tokens::table
            .filter(revoked_access_tokens::expires_at.lt(now))
            .select(revoked_access_tokens::jti)
            .limit(crate::store::PURGE_BATCH)
            .load::<String>(conn)?;
        diesel::delete(
            revoked_access_tokens::table.filter(revoked_access_tokens::jti.eq_any(expired)),
        )
        .execute(conn)
    })
}
