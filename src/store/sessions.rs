//! The `sessions` table: one row per login, the unit that refresh tokens belong to and that
//! revocation ends. The row also holds its refresh-token state (the current token's hash,
//! the one it replaced), so a refresh writes one row and adds none.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::store::prepared::Prepared;
use crate::store::schema::{refresh_tokens, revoked_access_tokens, sessions};
use crate::store::{in_batches, DbConnection, PURGE_BATCH};

/// A session row. Its `Debug` leaves out the refresh-token state.
#[derive(Clone, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = sessions)]
pub struct Session {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub amr: String,
    pub auth_time: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
    /// SHA-256 of the `jti` of the one refresh token that may be exchanged now; `None` when
    /// the session has none, or its tokens are still in the legacy `refresh_tokens` table.
    pub refresh_hash: Option<String>,
    /// The token the current one replaced, and when: within the reuse grace period it gets
    /// the current one back, after it presenting it is reuse.
    pub refresh_previous_hash: Option<String>,
    pub refresh_rotated_at: Option<i64>,
    /// The current token sealed under a key derived from the previous token's `jti` (only
    /// when a grace period applied to the rotation).
    pub refresh_successor_sealed: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("client_id", &self.client_id)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .finish_non_exhaustive()
    }
}

/// A refresh as the session row sees it: the presented token's hash gives way to its
/// successor's.
#[derive(Debug, Clone)]
pub struct Rotation<'a> {
    pub session_id: &'a str,
    pub presented_hash: &'a str,
    pub successor_hash: &'a str,
    pub successor_sealed: Option<&'a str>,
    pub now: i64,
    /// A session last used at or before this instant is idle (`i64::MIN` without an idle
    /// timeout).
    pub idle_since: i64,
}

/// A rotated session, and what an access token needs of its user.
#[derive(QueryableByName)]
pub struct Rotated {
    #[diesel(embed)]
    pub session: Session,
    #[diesel(sql_type = Text)]
    pub subject_username: String,
    #[diesel(sql_type = Text)]
    pub subject_roles: String,
    #[diesel(sql_type = Text)]
    pub subject_attributes: String,
}

/// One statement does the whole refresh: it checks that the presented token is the
/// session's current one, that the session is live and its user enabled, writes the
/// successor, and returns what the new tokens need. Of two concurrent refreshes of one
/// token the second finds the hash changed and gets `None`, as does every failed check;
/// the caller then works out why. One round trip on PostgreSQL, and no row added.
///
/// It runs as a prepared statement ([`Prepared`]): parsed and planned once per connection.
/// The columns are named rather than `*`, because a prepared `RETURNING *` fails on
/// PostgreSQL ("cached plan must not change result type") once another instance's
/// migration adds a column; they must match [`Session`]'s fields.
const ROTATE_SQL: &str = "UPDATE sessions SET \
    refresh_hash = $1, refresh_previous_hash = refresh_hash, refresh_rotated_at = $2, \
    refresh_successor_sealed = $3, last_used_at = $2 \
    WHERE id = $4 AND refresh_hash = $5 AND revoked_at IS NULL AND expires_at > $2 \
    AND last_used_at > $6 \
    AND EXISTS (SELECT 1 FROM users WHERE users.id = sessions.user_id AND NOT users.disabled) \
    RETURNING id, user_id, client_id, scope, amr, auth_time, user_agent, ip, created_at, \
    last_used_at, expires_at, revoked_at, revoke_reason, refresh_hash, refresh_previous_hash, \
    refresh_rotated_at, refresh_successor_sealed, \
    (SELECT username FROM users WHERE users.id = sessions.user_id) AS subject_username, \
    (SELECT roles FROM users WHERE users.id = sessions.user_id) AS subject_roles, \
    (SELECT attributes FROM users WHERE users.id = sessions.user_id) AS subject_attributes";

/// The statement cache's key for `ROTATE_SQL`.
struct RotateStatement;

/// Rotates the session's refresh token if the presented one is current (see `ROTATE_SQL`).
pub fn rotate_refresh(
    conn: &mut DbConnection,
    rotation: &Rotation<'_>,
) -> QueryResult<Option<Rotated>> {
    // Raw SQL because diesel's DSL has no RETURNING with subqueries; SQLite numbers its
    // parameters `?N` where PostgreSQL writes `$N`. The text is fixed per backend, so it
    // may be cached as a prepared statement.
    let sql = match conn {
        DbConnection::Postgresql(_) => ROTATE_SQL.to_string(),
        DbConnection::Sqlite(_) => ROTATE_SQL.replace('$', "?"),
    };
    let query = Prepared::<RotateStatement, _>::new(
        diesel::sql_query(sql)
            .bind::<Text, _>(rotation.successor_hash)
            .bind::<diesel::sql_types::BigInt, _>(rotation.now)
            .bind::<diesel::sql_types::Nullable<Text>, _>(rotation.successor_sealed)
            .bind::<Text, _>(rotation.session_id)
            .bind::<Text, _>(rotation.presented_hash)
            .bind::<diesel::sql_types::BigInt, _>(rotation.idle_since),
    );
    match conn {
        DbConnection::Postgresql(pg) => query.get_result::<Rotated>(pg).optional(),
        DbConnection::Sqlite(sqlite) => query.get_result::<Rotated>(sqlite).optional(),
    }
}

/// Moves a session whose tokens are in the legacy `refresh_tokens` table onto the session
/// row, with the presented (legacy) token as the previous one. Conditional on the session
/// not having moved yet, so of two concurrent first refreshes one wins; returns how many
/// rows changed (0 or 1). Call in a transaction with the deletion of its legacy rows.
pub fn adopt_refresh(conn: &mut DbConnection, rotation: &Rotation<'_>) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .find(rotation.session_id)
            .filter(sessions::refresh_hash.is_null()),
    )
    .set((
        sessions::refresh_hash.eq(rotation.successor_hash),
        sessions::refresh_previous_hash.eq(rotation.presented_hash),
        sessions::refresh_rotated_at.eq(rotation.now),
        sessions::refresh_successor_sealed.eq(rotation.successor_sealed),
        sessions::last_used_at.eq(rotation.now),
    ))
    .execute(conn)
}

/// Inserts a new session.
pub fn insert(conn: &mut DbConnection, session: &Session) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(|_| ())
}

/// What the database says of an access token, in one statement: whether its `jti` is
/// deny-listed, and whether the session it names (if any) is live (not revoked, not past its
/// end). A token without a session counts as having a live one.
pub fn access_token_state(
    conn: &mut DbConnection,
    jti: &str,
    sid: Option<&str>,
    now: i64,
) -> QueryResult<(bool, bool)> {
    use diesel::dsl::exists;
    let denied = exists(revoked_access_tokens::table.find(jti));
    match sid {
        None => diesel::select(denied)
            .get_result::<bool>(conn)
            .map(|denied| (denied, true)),
        Some(sid) => diesel::select((
            denied,
            exists(
                sessions::table
                    .find(sid)
                    .filter(sessions::revoked_at.is_null())
                    .filter(sessions::expires_at.gt(now)),
            ),
        ))
        .get_result(conn),
    }
}

/// Finds a session by id.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Session>> {
    sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// A session that a revoke statement ended: what the work that follows a session's end
/// needs to know of it.
#[derive(Debug, Clone, PartialEq, Eq, QueryableByName)]
pub struct Ended {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Text)]
    pub user_id: String,
    #[diesel(sql_type = Text)]
    pub client_id: String,
    #[diesel(sql_type = BigInt)]
    pub expires_at: i64,
}

/// Ends the live sessions `condition` selects (written with `$3` onwards; `$1` is the time,
/// `$2` the reason) and returns them. One statement, so a session ended concurrently by
/// someone else is returned by exactly one of the two.
fn end_where<'q, Q>(conn: &mut DbConnection, query: Q) -> QueryResult<Vec<Ended>>
where
    Q: diesel::query_dsl::LoadQuery<'q, diesel::PgConnection, Ended>
        + diesel::query_dsl::LoadQuery<'q, diesel::SqliteConnection, Ended>,
{
    match conn {
        DbConnection::Postgresql(pg) => RunQueryDsl::load(query, pg),
        DbConnection::Sqlite(sqlite) => RunQueryDsl::load(query, sqlite),
    }
}

/// The `UPDATE … RETURNING` that ends sessions, in the connection's parameter syntax.
fn end_sql(conn: &DbConnection, condition: &str) -> String {
    let sql = format!(
        "UPDATE sessions SET revoked_at = $1, revoke_reason = $2 \
         WHERE revoked_at IS NULL AND {condition} \
         RETURNING id, user_id, client_id, expires_at"
    );
    match conn {
        DbConnection::Postgresql(_) => sql,
        DbConnection::Sqlite(_) => sql.replace('$', "?"),
    }
}

/// Revokes one session if it is not revoked yet; returns it if this call ended it.
pub fn revoke(
    conn: &mut DbConnection,
    id: &str,
    now: i64,
    reason: &str,
) -> QueryResult<Vec<Ended>> {
    let query = diesel::sql_query(end_sql(conn, "id = $3"))
        .bind::<BigInt, _>(now)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(id);
    end_where(conn, query)
}

/// Revokes every live session of a user, except `keep` if given; returns those it ended.
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
    reason: &str,
) -> QueryResult<Vec<Ended>> {
    let query = diesel::sql_query(end_sql(conn, "user_id = $3 AND id <> $4"))
        .bind::<BigInt, _>(now)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(user_id)
        .bind::<Text, _>(keep.unwrap_or(""));
    end_where(conn, query)
}

/// The user's sessions that are neither revoked nor expired, newest first, after `cursor`
/// (a session id) in that order.
pub fn list_live_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    now: i64,
    cursor: Option<(i64, String)>,
    limit: i64,
) -> QueryResult<Vec<Session>> {
    let mut query = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .select(Session::as_select())
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .limit(limit)
        .into_boxed();
    if let Some((created_at, id)) = cursor {
        query = query.filter(
            sessions::created_at
                .lt(created_at)
                .or(sessions::created_at.eq(created_at).and(sessions::id.lt(id))),
        );
    }
    query.load(conn)
}

/// Deletes sessions that ended before `before`, with their legacy refresh-token rows, in
/// batches of [`PURGE_BATCH`] rows per statement, so no statement holds its locks for long
/// however much has piled up; returns how many sessions went.
pub fn delete_ended(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    in_batches(|| {
        let doomed = refresh_tokens::table
            .inner_join(sessions::table)
            .filter(
                sessions::expires_at
                    .lt(before)
                    .or(sessions::revoked_at.lt(before)),
            )
            .select(refresh_tokens::jti_hash)
            .limit(PURGE_BATCH)
            .load::<String>(conn)?;
        diesel::delete(refresh_tokens::table.filter(refresh_tokens::jti_hash.eq_any(doomed)))
            .execute(conn)
    })?;
    in_batches(|| {
        let ended = sessions::table
            .filter(
                sessions::expires_at
                    .lt(before)
                    .or(sessions::revoked_at.lt(before)),
            )
            .select(sessions::id)
            .limit(PURGE_BATCH)
            .load::<String>(conn)?;
        diesel::delete(sessions::table.filter(sessions::id.eq_any(ended))).execute(conn)
    })
}

/// Revokes every live session of a client (when the client is deleted); returns those it
/// ended.
pub fn revoke_all_for_client(
    conn: &mut DbConnection,
    client_id: &str,
    now: i64,
    reason: &str,
) -> QueryResult<Vec<Ended>> {
    let query = diesel::sql_query(end_sql(conn, "client_id = $3"))
        .bind::<BigInt, _>(now)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(client_id);
    end_where(conn, query)
}

/// Revokes every live session a user holds with one client; returns those it ended.
pub fn revoke_all_for_user_and_client(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    now: i64,
    reason: &str,
) -> QueryResult<Vec<Ended>> {
    let query = diesel::sql_query(end_sql(conn, "user_id = $3 AND client_id = $4"))
        .bind::<BigInt, _>(now)
        .bind::<Text, _>(reason)
        .bind::<Text, _>(user_id)
        .bind::<Text, _>(client_id);
    end_where(conn, query)
}

/// How many sessions are live at `now` (neither revoked nor past their absolute end).
pub fn count_live(conn: &mut DbConnection, now: i64) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)
}
