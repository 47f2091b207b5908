//! The `outbox` table: messages waiting for a background worker, their claims (leases),
//! and what became of them. It knows rows and statements; when to retry and whom to hand a
//! message to is the `outbox` module's business.

use diesel::prelude::*;

use crate::store::schema::outbox;
use crate::store::{DbConnection, QueryResult};

/// One outbox message.
#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = outbox)]
pub struct Message {
    pub id: String,
    pub kind: String,
    /// The sender's own text; may hold secrets (a mail's link), so `Debug` leaves it out.
    pub payload: String,
    pub attempts: i32,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub claimed_until: Option<i64>,
    pub claimed_by: Option<String>,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub last_error: Option<String>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("sent_at", &self.sent_at)
            .field("failed_at", &self.failed_at)
            .finish_non_exhaustive()
    }
}

/// A message to enqueue, due at once.
#[derive(Insertable)]
#[diesel(table_name = outbox)]
pub struct NewMessage<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub payload: &'a str,
    pub created_at: i64,
    pub next_attempt_at: i64,
}

/// Inserts a message (in the caller's transaction, when it has one).
pub fn insert(conn: &mut DbConnection, message: &NewMessage<'_>) -> QueryResult<()> {
    diesel::insert_into(outbox::table)
        .values(message)
        .execute(conn)
        .map(|_| ())
}

/// Finds a message by id.
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Message>> {
    outbox::table
        .find(id)
        .select(Message::as_select())
        .first(conn)
        .optional()
}

/// Claims up to `limit` due messages of the given kinds for `worker` until `lease_until`,
/// and returns them. One transaction: on PostgreSQL the candidate rows are locked with
/// `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint rows without waiting; on
/// SQLite the transaction holds the write lock from its start (`BEGIN IMMEDIATE`). A row
/// is due when it is neither sent nor failed, its time has come and no live lease of another
/// worker holds it: a worker claims only with nothing in hand, so a row still claimed by
/// `worker` is one it abandoned when the database failed mid-batch, and waiting out the
/// lease (minutes) would only delay its delivery.
pub fn claim_due(
    conn: &mut DbConnection,
    kinds: &[&str],
    now: i64,
    lease_until: i64,
    worker: &str,
    limit: i64,
) -> QueryResult<Vec<Message>> {
    crate::store::transaction(conn, |conn| {
        let due = outbox::table
            .filter(outbox::sent_at.is_null())
            .filter(outbox::failed_at.is_null())
            .filter(outbox::next_attempt_at.le(now))
            .filter(
                outbox::claimed_until
                    .is_null()
                    .or(outbox::claimed_until.le(now))
                    .or(outbox::claimed_by.eq(worker)),
            )
            .filter(outbox::kind.eq_any(kinds))
            .order(outbox::next_attempt_at.asc())
            .limit(limit)
            .select(outbox::id);
        let ids: Vec<String> = match conn {
            DbConnection::Postgresql(pg) => due.for_update().skip_locked().load(pg)?,
            DbConnection::Sqlite(_) => due.load(conn)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
            .set((
                outbox::claimed_until.eq(lease_until),
                outbox::claimed_by.eq(worker),
            ))
            .execute(conn)?;
        outbox::table
            .filter(outbox::id.eq_any(&ids))
            .order(outbox::next_attempt_at.asc())
            .select(Message::as_select())
            .load(conn)
    })
}

/// Records a delivery by the worker holding the claim, and drops the payload (it may hold
/// a secret and is no longer needed). False when the claim was lost meanwhile.
pub fn mark_sent(conn: &mut DbConnection, id: &str, worker: &str, now: i64) -> QueryResult<bool> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::claimed_by.eq(worker)),
    )
    .set((
        outbox::sent_at.eq(Some(now)),
        outbox::attempts.eq(outbox::attempts + 1),
        outbox::payload.eq(""),
        outbox::claimed_until.eq(None::<i64>),
        outbox::last_error.eq(None::<String>),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Records a failed attempt and when to try again, releasing the claim.
pub fn mark_retry(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    next_attempt_at: i64,
    error: &str,
) -> QueryResult<bool> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::claimed_by.eq(worker)),
    )
    .set((
        outbox::attempts.eq(outbox::attempts + 1),
        outbox::next_attempt_at.eq(next_attempt_at),
        outbox::claimed_until.eq(None::<i64>),
        outbox::last_error.eq(Some(error)),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Records that delivery was given up, and why; the payload is dropped.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    now: i64,
    error: &str,
) -> QueryResult<bool> {
    diesel::update(
        outbox::table
            .filter(outbox::id.eq(id))
            .filter(outbox::claimed_by.eq(worker)),
    )
    .set((
        outbox::attempts.eq(outbox::attempts + 1),
        outbox::failed_at.eq(Some(now)),
        outbox::payload.eq(""),
        outbox::claimed_until.eq(None::<i64>),
        outbox::last_error.eq(Some(error)),
    ))
    .execute(conn)
    .map(|n| n == 1)
}

/// Deletes messages delivered or given up on before `before`, in bounded batches.
pub fn purge_finished(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    crate::store::in_batches(|| {
        let finished = outbox::table
            .filter(outbox::sent_at.lt(before).or(outbox::failed_at.lt(before)))
            .select(outbox::id)
            .limit(crate::store::PURGE_BATCH)
            .load::<String>(conn)?;
        diesel::delete(outbox::table.filter(outbox::id.eq_any(finished))).execute(conn)
    })
}
