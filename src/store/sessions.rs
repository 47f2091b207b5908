//! The `sessions` table: one row per login, the unit that refresh tokens belong to and that
//! revocation ends.

use diesel::prelude::*;

use crate::store::schema::sessions;
use crate::store::DbConnection;

/// A session row.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
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
}

/// Inserts a new session.
pub fn insert(conn: &mut DbConnection, session: &Session) -> QueryResult<()> {
    diesel::insert_into(sessions::table)
        .values(session)
        .execute(conn)
        .map(|_| ())
}

/// Finds a session by id.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Session>> {
    sessions::table
        .find(id)
        .select(Session::as_select())
        .first(conn)
        .optional()
}

/// Notes that the session was used now.
pub fn touch(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set(sessions::last_used_at.eq(now))
        .execute(conn)
        .map(|_| ())
}

/// Revokes one session if it is not revoked yet; returns how many rows changed.
pub fn revoke(conn: &mut DbConnection, id: &str, now: i64, reason: &str) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::revoked_at.is_null()),
    )
    .set((
        sessions::revoked_at.eq(now),
        sessions::revoke_reason.eq(reason),
    ))
    .execute(conn)
}

/// Revokes every live session of a user, except `keep` if given; returns how many.
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    user_id: &str,
    keep: Option<&str>,
    now: i64,
    reason: &str,
) -> QueryResult<usize> {
    let target = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::revoked_at.is_null())
        .filter(sessions::id.ne(keep.unwrap_or("")));
    diesel::update(target)
        .set((
            sessions::revoked_at.eq(now),
            sessions::revoke_reason.eq(reason),
        ))
        .execute(conn)
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

/// Deletes sessions that ended before `before`, with their refresh tokens.
pub fn delete_ended(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(
        sessions::table.filter(
            sessions::expires_at
                .lt(before)
                .or(sessions::revoked_at.lt(before)),
        ),
    )
    .execute(conn)
}

/// Revokes every live session of a client (when the client is deleted); returns how many.
pub fn revoke_all_for_client(
    conn: &mut DbConnection,
    client_id: &str,
    now: i64,
    reason: &str,
) -> QueryResult<usize> {
    let target = sessions::table
        .filter(sessions::client_id.eq(client_id))
        .filter(sessions::revoked_at.is_null());
    diesel::update(target)
        .set((
            sessions::revoked_at.eq(now),
            sessions::revoke_reason.eq(reason),
        ))
        .execute(conn)
}

/// Revokes every live session a user holds with one client; returns how many.
pub fn revoke_all_for_user_and_client(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    now: i64,
    reason: &str,
) -> QueryResult<usize> {
    let target = sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::client_id.eq(client_id))
        .filter(sessions::revoked_at.is_null());
    diesel::update(target)
        .set((
            sessions::revoked_at.eq(now),
            sessions::revoke_reason.eq(reason),
        ))
        .execute(conn)
}
