//! The `audit_events` table: who did what, when, from where.

use diesel::prelude::*;

use crate::store::schema::audit_events;
use crate::store::DbConnection;

/// A stored audit event.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub at: i64,
    pub event_type: String,
    pub actor: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub details: String,
}

/// An audit event to insert.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent {
    pub at: i64,
    pub event_type: String,
    pub actor: Option<String>,
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub details: String,
}

/// Inserts an event.
pub fn insert(conn: &mut DbConnection, event: &NewAuditEvent) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)
        .map(|_| ())
}

/// Filters of the audit listing.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub user_id: Option<String>,
    pub event_type: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only events with an id below this (newest first paging).
    pub before_id: Option<i64>,
}

/// Events matching `filter`, newest first.
pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    limit: i64,
) -> QueryResult<Vec<AuditEvent>> {
    let mut query = audit_events::table
        .select(AuditEvent::as_select())
        .order(audit_events::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(user_id) = &filter.user_id {
        query = query.filter(audit_events::user_id.eq(user_id.clone()));
    }
    if let Some(event_type) = &filter.event_type {
        query = query.filter(audit_events::event_type.eq(event_type.clone()));
    }
    if let Some(since) = filter.since {
        query = query.filter(audit_events::at.ge(since));
    }
    if let Some(until) = filter.until {
        query = query.filter(audit_events::at.le(until));
    }
    if let Some(before_id) = filter.before_id {
        query = query.filter(audit_events::id.lt(before_id));
    }
    query.load(conn)
}

/// Deletes events older than `before`, in bounded batches.
pub fn purge_before(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    crate::store::in_batches(|| {
        let old = audit_events::table
            .filter(audit_events::at.lt(before))
            .select(audit_events::id)
            .limit(crate::store::PURGE_BATCH)
            .load::<i64>(conn)?;
        diesel::delete(audit_events::table.filter(audit_events::id.eq_any(old))).execute(conn)
    })
}

/// How many events of `event_type` happened at or after `since`.
pub fn count_since(conn: &mut DbConnection, event_type: &str, since: i64) -> QueryResult<i64> {
    audit_events::table
        .filter(audit_events::at.ge(since))
        .filter(audit_events::event_type.eq(event_type))
        .count()
        .get_result(conn)
}
