//! The `consents` table: the scopes a user allowed a third-party client.

use diesel::prelude::*;

use crate::store::schema::consents;
use crate::store::DbConnection;

/// A remembered consent; `scopes` is a JSON array.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = consents)]
pub struct Consent {
    pub user_id: String,
    pub client_id: String,
    pub scopes: String,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The user's consent for a client.
pub fn find(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
) -> QueryResult<Option<Consent>> {
    consents::table
        .find((user_id, client_id))
        .select(Consent::as_select())
        .first(conn)
        .optional()
}

/// Every consent of a user, by client id.
pub fn list_for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<Vec<Consent>> {
    consents::table
        .filter(consents::user_id.eq(user_id))
        .order(consents::client_id.asc())
        .select(Consent::as_select())
        .load(conn)
}

/// Replaces the user's consent for a client. Call inside a transaction.
pub fn upsert(conn: &mut DbConnection, consent: &Consent) -> QueryResult<()> {
    diesel::delete(consents::table.find((&consent.user_id, &consent.client_id))).execute(conn)?;
    diesel::insert_into(consents::table)
        .values(consent)
        .execute(conn)
        .map(|_| ())
}

/// Withdraws a consent; returns how many rows went.
pub fn delete(conn: &mut DbConnection, user_id: &str, client_id: &str) -> QueryResult<usize> {
    diesel::delete(consents::table.find((user_id, client_id))).execute(conn)
}
