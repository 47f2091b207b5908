//! The `users` table: accounts, their password hashes, roles, attributes and lock state.

use diesel::prelude::*;

use crate::store::schema::users;
use crate::store::DbConnection;

/// A user row. Its `Debug` leaves out the password hash.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub username_lower: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub roles: String,
    pub attributes: String,
    pub disabled: bool,
    pub failed_logins: i32,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// A user to insert.
#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub id: &'a str,
    pub username: &'a str,
    pub username_lower: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: &'a str,
    pub roles: &'a str,
    pub attributes: &'a str,
    pub disabled: bool,
    pub failed_logins: i32,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Inserts a user; a taken username is a unique violation.
pub fn insert(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)
        .map(|_| ())
}

/// Finds a user by id.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// Finds a user by username, case-insensitively.
pub fn find_by_username(conn: &mut DbConnection, username: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username_lower.eq(username.to_lowercase()))
        .select(User::as_select())
        .first(conn)
        .optional()
}

diesel::define_sql_function! {
    /// SQL `lower()`, for case-insensitive matching on both backends (PostgreSQL's `LIKE`
    /// is case-sensitive).
    fn lower(text: diesel::sql_types::Nullable<diesel::sql_types::Text>) -> diesel::sql_types::Nullable<diesel::sql_types::Text>;
}

/// Users ordered by lowercase username, after `cursor`, optionally matching `query` in the
/// username or email.
pub fn list(
    conn: &mut DbConnection,
    query: Option<&str>,
    cursor: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<User>> {
    let mut select = users::table
        .select(User::as_select())
        .order(users::username_lower.asc())
        .limit(limit)
        .into_boxed();
    if let Some(cursor) = cursor {
        select = select.filter(users::username_lower.gt(cursor.to_string()));
    }
    if let Some(query) = query.filter(|q| !q.is_empty()) {
        let pattern = format!(
            "%{}%",
            query
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        select = select.filter(
            users::username_lower
                .like(pattern.clone())
                .escape('\\')
                .or(lower(users::email).like(pattern).escape('\\')),
        );
    }
    select.load(conn)
}

/// Counts one more failed login and returns the new count. Atomic, so concurrent failures
/// on several instances all count.
pub fn count_failure(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<i32> {
    diesel::update(users::table.find(id))
        .set((
            users::failed_logins.eq(users::failed_logins + 1),
            users::updated_at.eq(now),
        ))
        .execute(conn)?;
    users::table
        .find(id)
        .select(users::failed_logins)
        .first(conn)
}

/// The failure count and lock expiry of the user, with the row locked against concurrent
/// writers until the transaction ends (on PostgreSQL by the row lock the no-op update takes;
/// SQLite's `BEGIN IMMEDIATE` already holds the database). Call inside a transaction.
pub fn lock_row(conn: &mut DbConnection, id: &str) -> QueryResult<Option<(i32, Option<i64>)>> {
    diesel::update(users::table.find(id))
        .set(users::failed_logins.eq(users::failed_logins))
        .execute(conn)?;
    users::table
        .find(id)
        .select((users::failed_logins, users::locked_until))
        .first(conn)
        .optional()
}

/// Sets the lock expiry.
pub fn set_locked_until(conn: &mut DbConnection, id: &str, until: Option<i64>) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::locked_until.eq(until))
        .execute(conn)
        .map(|_| ())
}

/// Clears the failure count and any lock, after a successful login.
pub fn reset_failures(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    diesel::update(
        users::table.find(id).filter(
            users::failed_logins
                .ne(0)
                .or(users::locked_until.is_not_null()),
        ),
    )
    .set((
        users::failed_logins.eq(0),
        users::locked_until.eq(None::<i64>),
    ))
    .execute(conn)
    .map(|_| ())
}

/// Replaces the password hash.
pub fn set_password_hash(
    conn: &mut DbConnection,
    id: &str,
    hash: &str,
    now: i64,
) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

/// Replaces the roles (a JSON array).
pub fn set_roles(
    conn: &mut DbConnection,
    id: &str,
    roles_json: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::roles.eq(roles_json), users::updated_at.eq(now)))
        .execute(conn)
}

/// Replaces the custom attributes (a JSON object).
pub fn set_attributes(
    conn: &mut DbConnection,
    id: &str,
    attributes_json: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::attributes.eq(attributes_json),
            users::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Disables or enables the account.
pub fn set_disabled(
    conn: &mut DbConnection,
    id: &str,
    disabled: bool,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((users::disabled.eq(disabled), users::updated_at.eq(now)))
        .execute(conn)
}

/// Deletes the user; its sessions and refresh tokens go with it (ON DELETE CASCADE).
pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(users::table.find(id)).execute(conn)
}

/// Users whose email is `email`, case-insensitively (at most `limit`).
pub fn find_by_email(conn: &mut DbConnection, email: &str, limit: i64) -> QueryResult<Vec<User>> {
    users::table
        .filter(lower(users::email).eq(Some(email.to_lowercase())))
        .order(users::created_at.asc())
        .limit(limit)
        .select(User::as_select())
        .load(conn)
}

/// Replaces the email address.
pub fn set_email(conn: &mut DbConnection, id: &str, email: &str, now: i64) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set((users::email.eq(Some(email)), users::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

/// How many users there are; with `only_disabled`, how many are disabled.
pub fn count(conn: &mut DbConnection, only_disabled: bool) -> QueryResult<i64> {
    let mut query = users::table.count().into_boxed();
    if only_disabled {
        query = query.filter(users::disabled.eq(true));
    }
    query.get_result(conn)
}
