//! The `authorization_codes` table: one-time codes of the authorization code flow, known
//! only by the SHA-256 of the code.

use diesel::prelude::*;

use crate::store::schema::authorization_codes;
use crate::store::DbConnection;

/// A code row. Its `Debug` leaves out the hash and the PKCE challenge.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = authorization_codes)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: String,
    pub redirect_uri: String,
    /// `redirect_uri` was in the authorization request, so the token request must repeat it.
    pub redirect_uri_sent: bool,
    pub code_challenge: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub auth_time: i64,
    pub amr: String,
    pub fresh: bool,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub session_id: Option<String>,
    /// The `sessions` row of the browser session that approved the code.
    pub browser_session_id: Option<String>,
}

impl std::fmt::Debug for AuthorizationCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationCode")
            .field("client_id", &self.client_id)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Stores a new code.
pub fn insert(conn: &mut DbConnection, code: &AuthorizationCode) -> QueryResult<()> {
    diesel::insert_into(authorization_codes::table)
        .values(code)
        .execute(conn)
        .map(|_| ())
}

/// Finds a code by hash.
pub fn find(conn: &mut DbConnection, code_hash: &str) -> QueryResult<Option<AuthorizationCode>> {
    authorization_codes::table
        .find(code_hash)
        .select(AuthorizationCode::as_select())
        .first(conn)
        .optional()
}

/// Marks an unused code used; 0 rows means someone else used it first.
pub fn spend(conn: &mut DbConnection, code_hash: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        authorization_codes::table
            .find(code_hash)
            .filter(authorization_codes::used_at.is_null()),
    )
    .set(authorization_codes::used_at.eq(now))
    .execute(conn)
}

/// Records the session a code's exchange started.
pub fn set_session(conn: &mut DbConnection, code_hash: &str, session_id: &str) -> QueryResult<()> {
    diesel::update(authorization_codes::table.find(code_hash))
        .set(authorization_codes::session_id.eq(session_id))
        .execute(conn)
        .map(|_| ())
}

/// Deletes codes that expired before `before` (used ones are kept until then too, so that
/// a replay within their lifetime is still recognised).
pub fn delete_expired(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.lt(before)))
        .execute(conn)
}
