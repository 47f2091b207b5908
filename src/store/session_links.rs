//! The `session_links` table: which browser session a code-flow session was started from,
//! so that signing the browser out (RP-initiated logout) can end those sessions too.

use diesel::prelude::*;

use crate::store::schema::session_links;
use crate::store::DbConnection;

/// Records that `session_id` was started from the browser session `browser_session_id`.
pub fn insert(
    conn: &mut DbConnection,
    session_id: &str,
    browser_session_id: &str,
) -> QueryResult<()> {
    diesel::insert_into(session_links::table)
        .values((
            session_links::session_id.eq(session_id),
            session_links::browser_session_id.eq(browser_session_id),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The browser session `session_id` was started from, if it was.
pub fn browser_session_of(
    conn: &mut DbConnection,
    session_id: &str,
) -> QueryResult<Option<String>> {
    session_links::table
        .find(session_id)
        .select(session_links::browser_session_id)
        .first(conn)
        .optional()
}

/// The sessions started from the browser session `browser_session_id`.
pub fn started_from(conn: &mut DbConnection, browser_session_id: &str) -> QueryResult<Vec<String>> {
    session_links::table
        .filter(session_links::browser_session_id.eq(browser_session_id))
        .select(session_links::session_id)
        .load(conn)
}
