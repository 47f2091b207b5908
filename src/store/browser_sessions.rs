//! The `browser_sessions` table: the server-side record behind the `tessera_session`
//! cookie, found by the SHA-256 of the cookie's secret. Each row belongs to a `sessions` row,
//! whose revocation and expiry decide whether the browser session is live.

use diesel::prelude::*;

use crate::store::schema::{browser_sessions, sessions};
use crate::store::sessions::Session;
use crate::store::DbConnection;

/// A browser session row.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = browser_sessions)]
pub struct BrowserSessionRow {
    pub id_hash: String,
    pub session_id: String,
    pub user_id: String,
    pub fresh_sign_in: bool,
    pub created_at: i64,
}

impl std::fmt::Debug for BrowserSessionRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserSessionRow")
            .field("session_id", &self.session_id)
            .finish_non_exhaustive()
    }
}

/// Stores a browser session.
pub fn insert(conn: &mut DbConnection, row: &BrowserSessionRow) -> QueryResult<()> {
    diesel::insert_into(browser_sessions::table)
        .values(row)
        .execute(conn)
        .map(|_| ())
}

/// The browser session with this hash and its session row, when that session is neither
/// revoked nor expired.
pub fn find_live(
    conn: &mut DbConnection,
    id_hash: &str,
    now: i64,
) -> QueryResult<Option<(BrowserSessionRow, Session)>> {
    browser_sessions::table
        .inner_join(sessions::table)
        .filter(browser_sessions::id_hash.eq(id_hash))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select((BrowserSessionRow::as_select(), Session::as_select()))
        .first(conn)
        .optional()
}

/// Spends the "just signed in" mark; true when it was still set.
pub fn take_fresh(conn: &mut DbConnection, id_hash: &str) -> QueryResult<bool> {
    diesel::update(
        browser_sessions::table
            .find(id_hash)
            .filter(browser_sessions::fresh_sign_in.eq(true)),
    )
    .set(browser_sessions::fresh_sign_in.eq(false))
    .execute(conn)
    .map(|n| n > 0)
}
