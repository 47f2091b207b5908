//! The `login_failures` table: failed logins counted per presented username that has no
//! account, by keyed hash (the rule that counts them is the `lockout` module's).

use diesel::prelude::*;

use crate::store::schema::login_failures;
use crate::store::DbConnection;

/// The row for `key_hash`, created with no failures when missing, and locked against
/// concurrent writers until the transaction ends (on PostgreSQL by the row lock the no-op
/// update takes; SQLite's `BEGIN IMMEDIATE` already holds the database). Returns the failure
/// count and lock expiry. Call inside a transaction.
pub fn lock_row(
    conn: &mut DbConnection,
    key_hash: &str,
    now: i64,
) -> QueryResult<(i32, Option<i64>)> {
    let row = (
        login_failures::key_hash.eq(key_hash),
        login_failures::failures.eq(0),
        login_failures::updated_at.eq(now),
    );
    // An insert that loses a race must not abort a PostgreSQL transaction, hence the
    // conflict clause; its spelling differs by backend.
    match conn {
        DbConnection::Postgresql(pg) => diesel::insert_into(login_failures::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConnection::Sqlite(sqlite) => diesel::insert_or_ignore_into(login_failures::table)
            .values(row)
            .execute(sqlite)?,
    };
    diesel::update(login_failures::table.find(key_hash))
        .set(login_failures::updated_at.eq(now))
        .execute(conn)?;
    login_failures::table
        .find(key_hash)
        .select((login_failures::failures, login_failures::locked_until))
        .first(conn)
}

/// The failure count and lock expiry, if the name has failed before.
pub fn find(conn: &mut DbConnection, key_hash: &str) -> QueryResult<Option<(i32, Option<i64>)>> {
    login_failures::table
        .find(key_hash)
        .select((login_failures::failures, login_failures::locked_until))
        .first(conn)
        .optional()
}

/// Counts one more failure and returns the new count.
pub fn count_failure(conn: &mut DbConnection, key_hash: &str, now: i64) -> QueryResult<i32> {
    diesel::update(login_failures::table.find(key_hash))
        .set((
            login_failures::failures.eq(login_failures::failures + 1),
            login_failures::updated_at.eq(now),
        ))
        .execute(conn)?;
    login_failures::table
        .find(key_hash)
        .select(login_failures::failures)
        .first(conn)
}

/// Sets the lock expiry.
pub fn set_locked_until(
    conn: &mut DbConnection,
    key_hash: &str,
    until: Option<i64>,
) -> QueryResult<()> {
    diesel::update(login_failures::table.find(key_hash))
        .set(login_failures::locked_until.eq(until))
        .execute(conn)
        .map(|_| ())
}

/// Deletes at most `batch` rows untouched since `before` whose lock has run out, and returns
/// how many; the caller repeats while a full batch went, so no single statement holds the
/// database for long.
pub fn purge_stale(
    conn: &mut DbConnection,
    before: i64,
    now: i64,
    batch: i64,
) -> QueryResult<usize> {
    let stale: Vec<String> = login_failures::table
        .filter(login_failures::updated_at.lt(before))
        .filter(
            login_failures::locked_until
                .is_null()
                .or(login_failures::locked_until.le(now)),
        )
        .select(login_failures::key_hash)
        .limit(batch)
        .load(conn)?;
    if stale.is_empty() {
        return Ok(0);
    }
    diesel::delete(
        login_failures::table
            .filter(login_failures::key_hash.eq_any(&stale))
            .filter(login_failures::updated_at.lt(before)),
    )
    .execute(conn)
}
