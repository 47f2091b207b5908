//! The `authorization_codes` table: one-time codes of the authorization code flow, known
//! only by the SHA-256 of the code.

use diesel::prelude::*;

use crate::store::prepared::Prepared;
use crate::store::schema::authorization_codes;
use crate::store::DbConnection;

/// A code row. Its `Debug` leaves out the hash and the PKCE challenge.
#[derive(Clone, Queryable, QueryableByName, Selectable, Insertable)]
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

/// Spends an unused code and records the session its exchange starts (`session_id`,
/// chosen before the session is written), returning the code; `None` when there is no
/// such code or it was spent already (the caller then reads it to tell which). One
/// statement, prepared; the columns are named, not `*` (see `sessions::ROTATE_SQL`).
pub fn redeem(
    conn: &mut DbConnection,
    code_hash: &str,
    session_id: &str,
    now: i64,
) -> QueryResult<Option<AuthorizationCode>> {
    const REDEEM_SQL: &str = "UPDATE authorization_codes SET used_at = $1, session_id = $2 \
        WHERE code_hash = $3 AND used_at IS NULL \
        RETURNING code_hash, client_id, user_id, redirect_uri, redirect_uri_sent, \
        code_challenge, scope, nonce, auth_time, amr, fresh, expires_at, used_at, session_id, \
        browser_session_id";
    struct RedeemStatement;
    // SQLite numbers its parameters `?N` where PostgreSQL writes `$N`.
    let sql = match conn {
        DbConnection::Postgresql(_) => REDEEM_SQL.to_string(),
        DbConnection::Sqlite(_) => REDEEM_SQL.replace('$', "?"),
    };
    let query = Prepared::<RedeemStatement, _>::new(
        diesel::sql_query(sql)
            .bind::<diesel::sql_types::BigInt, _>(now)
            .bind::<diesel::sql_types::Text, _>(session_id)
            .bind::<diesel::sql_types::Text, _>(code_hash),
    );
    match conn {
        DbConnection::Postgresql(pg) => query.get_result::<AuthorizationCode>(pg).optional(),
        DbConnection::Sqlite(sqlite) => query.get_result::<AuthorizationCode>(sqlite).optional(),
    }
}

/// Forgets the session recorded by [`redeem`] when the exchange was refused after all (the
/// code stays spent; no session was started).
pub fn clear_session(conn: &mut DbConnection, code_hash: &str) -> QueryResult<()> {
    diesel::update(authorization_codes::table.find(code_hash))
        .set(authorization_codes::session_id.eq(None::<String>))
        .execute(conn)
        .map(|_| ())
}

/// Deletes codes that expired before `before` (used ones are kept until then too, so that
/// a replay within their lifetime is still recognised).
pub fn delete_expired(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(authorization_codes::table.filter(authorization_codes::expires_at.lt(before)))
        .execute(conn)
}
