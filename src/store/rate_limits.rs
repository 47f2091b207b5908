//! The `rate_limits` table: per-address budgets shared by every instance (see
//! `crate::ratelimit`), one row per limit and address key.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::store::prepared::Prepared;
use crate::store::schema::rate_limits;
use crate::store::DbConnection;

/// Takes one attempt from the budget under `key` by GCRA, in one statement: the row is
/// locked by the upsert, so two instances racing for the last slot are decided in turn and
/// only one gets it. Time is the database's clock, the one clock all instances share.
/// `interval_ms` is the period divided by the budget, `tolerance_ms` the burst beyond one
/// attempt (`interval_ms * (budget - 1)`). On PostgreSQL every `SET` expression reads the
/// row as it was before the update, as on SQLite; `excluded.tat - $2` is the statement's now.
const TAKE_SQL: &str = "INSERT INTO rate_limits AS r (key, tat, wait_ms) \
    VALUES ($1, NOW_MS + $2, 0) \
    ON CONFLICT (key) DO UPDATE SET \
    tat = CASE WHEN r.tat - $3 <= excluded.tat - $2 \
        THEN MAX_FN(r.tat, excluded.tat - $2) + $2 ELSE r.tat END, \
    wait_ms = CASE WHEN r.tat - $3 <= excluded.tat - $2 \
        THEN 0 ELSE r.tat - $3 - (excluded.tat - $2) END \
    RETURNING wait_ms";

/// The statement cache's key for `TAKE_SQL`.
struct TakeStatement;

#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = BigInt)]
    wait_ms: i64,
}

/// Takes one attempt from `key`'s budget; returns 0 when it was allowed, otherwise how many
/// milliseconds until the next attempt would be.
pub fn take(
    conn: &mut DbConnection,
    key: &str,
    interval_ms: i64,
    tolerance_ms: i64,
) -> QueryResult<i64> {
    // The text is fixed per backend, so it may be cached as a prepared statement.
    let sql = match conn {
        DbConnection::Postgresql(_) => TAKE_SQL
            .replace(
                "NOW_MS",
                "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
            )
            .replace("MAX_FN", "GREATEST"),
        DbConnection::Sqlite(_) => TAKE_SQL
            .replace(
                "NOW_MS",
                "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
            )
            .replace("MAX_FN", "max")
            .replace('$', "?"),
    };
    let query = Prepared::<TakeStatement, _>::new(
        diesel::sql_query(sql)
            .bind::<Text, _>(key)
            .bind::<BigInt, _>(interval_ms)
            .bind::<BigInt, _>(tolerance_ms),
    );
    let taken: Taken = match conn {
        DbConnection::Postgresql(pg) => query.get_result(pg)?,
        DbConnection::Sqlite(sqlite) => query.get_result(sqlite)?,
    };
    Ok(taken.wait_ms)
}

/// Deletes the rows whose budget was full again before `before` (Unix ms), in batches: such
/// a row answers exactly as a missing one would. Returns how many went.
pub fn purge_full(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    crate::store::in_batches(|| {
        let stale: Vec<String> = rate_limits::table
            .filter(rate_limits::tat.lt(before))
            .select(rate_limits::key)
            .limit(crate::store::PURGE_BATCH)
            .load(conn)?;
        if stale.is_empty() {
            return Ok(0);
        }
        diesel::delete(
            rate_limits::table
                .filter(rate_limits::key.eq_any(&stale))
                .filter(rate_limits::tat.lt(before)),
        )
        .execute(conn)
    })
}
