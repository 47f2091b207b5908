//! The `revocations` table (the revocation feed's entries) and its `revocation_head` row,
//! which hands out the feed positions. Positions are taken from the head row inside the
//! transaction of the change: on PostgreSQL its row lock is held until commit, on SQLite the
//! write lock is, so a position becomes visible only after every smaller one has, and a
//! reader that has seen position `n` never later finds a new entry below it.

use diesel::prelude::*;
use diesel::sql_types::BigInt;

use crate::store::schema::{clients, revocation_head, revocations};
use crate::store::{in_batches, DbConnection, QueryResult, PURGE_BATCH};

/// One feed entry.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = revocations)]
pub struct Revocation {
    /// The feed position.
    pub seq: i64,
    /// `session`, `token` or `key`.
    pub kind: String,
    /// The `sid`, `jti` or `kid`.
    pub item_id: String,
    pub revoked_at: i64,
    /// Until when the entry is certainly kept (for sessions and keys the reader may keep it
    /// longer, see [`Live`]).
    pub keep_until: i64,
}

/// An entry to append; its position is given by [`append`].
#[derive(Debug, Clone, Copy)]
pub struct NewRevocation<'a> {
    pub kind: &'a str,
    pub item_id: &'a str,
    pub revoked_at: i64,
    pub keep_until: i64,
}

/// Which entries are still live: those kept until `now` or later, and session and key
/// entries revoked at or after `sessions_since` (the default access-token lifetime, which
/// only the serving instance knows, may outlast what was stored).
#[derive(Debug, Clone, Copy)]
pub struct Live {
    pub now: i64,
    pub sessions_since: i64,
}

#[derive(QueryableByName)]
struct Head {
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

/// Appends `entries` at the next positions. Call it inside the transaction of the change it
/// records: the head row stays locked until that transaction ends, which keeps positions
/// in commit order.
pub fn append(conn: &mut DbConnection, entries: &[NewRevocation<'_>]) -> QueryResult<()> {
    if entries.is_empty() {
        return Ok(());
    }
    let count = entries.len() as i64;
    let sql = "UPDATE revocation_head SET seq = seq + $1 WHERE id = 1 RETURNING seq";
    let sql = match conn {
        DbConnection::Postgresql(_) => sql.to_string(),
        DbConnection::Sqlite(_) => sql.replace('$', "?"),
    };
    let query = diesel::sql_query(sql).bind::<BigInt, _>(count);
    let head: Head = match conn {
        DbConnection::Postgresql(pg) => query.get_result(pg)?,
        DbConnection::Sqlite(sqlite) => query.get_result(sqlite)?,
    };
    let first = head.seq - count + 1;
    let rows: Vec<Revocation> = entries
        .iter()
        .enumerate()
        .map(|(i, entry)| Revocation {
            seq: first + i as i64,
            kind: entry.kind.to_string(),
            item_id: entry.item_id.to_string(),
            revoked_at: entry.revoked_at,
            keep_until: entry.keep_until,
        })
        .collect();
    // One statement per row: diesel's MultiConnection has no batch insert.
    for row in &rows {
        diesel::insert_into(revocations::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// The last position handed out (0 before the first entry).
pub fn head(conn: &mut DbConnection) -> QueryResult<i64> {
    revocation_head::table
        .find(1)
        .select(revocation_head::seq)
        .first(conn)
}

/// Up to `limit` entries after position `after`, oldest first; only live ones when `live`
/// is given.
pub fn after(
    conn: &mut DbConnection,
    after: i64,
    live: Option<Live>,
    limit: i64,
) -> QueryResult<Vec<Revocation>> {
    let mut query = revocations::table
        .filter(revocations::seq.gt(after))
        .select(Revocation::as_select())
        .order(revocations::seq.asc())
        .limit(limit)
        .into_boxed();
    if let Some(live) = live {
        query = query.filter(
            revocations::keep_until.ge(live.now).or(revocations::kind
                .ne("token")
                .and(revocations::revoked_at.ge(live.sessions_since))),
        );
    }
    query.load(conn)
}

/// The longest access-token lifetime a stored client sets for itself, if any does.
pub fn longest_client_access_ttl(conn: &mut DbConnection) -> QueryResult<Option<i64>> {
    clients::table
        .select(diesel::dsl::max(clients::access_token_ttl))
        .first(conn)
}

/// Deletes entries that are no longer live (see [`Live`]), in batches.
pub fn purge(conn: &mut DbConnection, live: Live) -> QueryResult<usize> {
    in_batches(|| {
        let dead = revocations::table
            .filter(revocations::keep_until.lt(live.now))
            .filter(
                revocations::kind
                    .eq("token")
                    .or(revocations::revoked_at.lt(live.sessions_since)),
            )
            .select(revocations::seq)
            .limit(PURGE_BATCH)
            .load::<i64>(conn)?;
        diesel::delete(revocations::table.filter(revocations::seq.eq_any(dead))).execute(conn)
    })
}
