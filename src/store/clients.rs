//! The `clients` table: OAuth clients, with confidential clients' secrets as SHA-256 hashes.

use diesel::prelude::*;

use crate::store::schema::{change_counters, clients};
use crate::store::DbConnection;

/// A client row. Its `Debug` leaves out the secret hash.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct ClientRow {
    pub client_id: String,
    pub secret_hash: Option<String>,
    pub is_public: bool,
    pub grant_types: String,
    pub scopes: String,
    pub audience: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_reuse_grace: Option<i64>,
    pub refresh_cookie: bool,
    pub created_at: i64,
    pub updated_at: i64,
    pub token_alg: Option<String>,
    pub name: Option<String>,
    pub redirect_uris: String,
    pub post_logout_redirect_uris: String,
    pub first_party: bool,
    pub backchannel_logout_uri: Option<String>,
}

/// A partial update of a client (`PATCH /admin/clients/{id}`); `None` leaves a column.
#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = clients)]
pub struct ClientChanges {
    pub grant_types: Option<String>,
    pub scopes: Option<String>,
    pub audience: Option<Option<String>>,
    pub access_token_ttl: Option<Option<i64>>,
    pub refresh_token_ttl: Option<Option<i64>>,
    pub refresh_reuse_grace: Option<Option<i64>>,
    pub refresh_cookie: Option<bool>,
    pub name: Option<Option<String>>,
    pub redirect_uris: Option<String>,
    pub post_logout_redirect_uris: Option<String>,
    pub first_party: Option<bool>,
    pub backchannel_logout_uri: Option<Option<String>>,
    pub token_alg: Option<Option<String>>,
    pub updated_at: Option<i64>,
}

/// Applies `changes` to a client; returns how many rows changed.
pub fn update(
    conn: &mut DbConnection,
    client_id: &str,
    changes: &ClientChanges,
) -> QueryResult<usize> {
    diesel::update(clients::table.find(client_id))
        .set(changes)
        .execute(conn)
}

impl std::fmt::Debug for ClientRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientRow")
            .field("client_id", &self.client_id)
            .field("is_public", &self.is_public)
            .finish_non_exhaustive()
    }
}

/// Inserts a client; a taken id is a unique violation.
pub fn insert(conn: &mut DbConnection, client: &ClientRow) -> QueryResult<()> {
    diesel::insert_into(clients::table)
        .values(client)
        .execute(conn)
        .map(|_| ())
}

/// Finds a client by id.
pub fn find(conn: &mut DbConnection, client_id: &str) -> QueryResult<Option<ClientRow>> {
    clients::table
        .find(client_id)
        .select(ClientRow::as_select())
        .first(conn)
        .optional()
}

/// Clients ordered by id, after `cursor`.
pub fn list(
    conn: &mut DbConnection,
    cursor: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<ClientRow>> {
    let mut query = clients::table
        .select(ClientRow::as_select())
        .order(clients::client_id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(cursor) = cursor {
        query = query.filter(clients::client_id.gt(cursor.to_string()));
    }
    query.load(conn)
}

/// Every client that names a signing algorithm, with it.
pub fn token_algs(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    clients::table
        .filter(clients::token_alg.is_not_null())
        .select((clients::client_id, clients::token_alg.assume_not_null()))
        .order(clients::client_id.asc())
        .load(conn)
}

/// Replaces the secret hash.
pub fn set_secret_hash(
    conn: &mut DbConnection,
    client_id: &str,
    secret_hash: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(clients::table.find(client_id))
        .set((
            clients::secret_hash.eq(secret_hash),
            clients::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Deletes a client.
pub fn delete(conn: &mut DbConnection, client_id: &str) -> QueryResult<usize> {
    diesel::delete(clients::table.find(client_id)).execute(conn)
}

/// The change counter of the `clients` table: a trigger moves it in the transaction of every
/// insert, update and delete, so an instance that saw it unchanged has seen every change.
pub fn change_count(conn: &mut DbConnection) -> QueryResult<i64> {
    change_counters::table
        .find("clients")
        .select(change_counters::value)
        .first(conn)
}

/// The most recent change to any client, for cache invalidation across instances.
pub fn fingerprint(conn: &mut DbConnection) -> QueryResult<(i64, Option<i64>)> {
    use diesel::dsl::{count_star, max};
    clients::table
        .select((count_star(), max(clients::updated_at)))
        .first(conn)
}

/// Where a client is told of its sessions' ends: its back-channel logout URI and the
/// algorithm its tokens are signed with.
#[derive(Debug, Clone, Queryable)]
pub struct BackchannelReceiver {
    pub client_id: String,
    pub uri: String,
    pub token_alg: Option<String>,
}

/// The back-channel receivers of those of `client_ids` that have a `backchannel_logout_uri`.
pub fn backchannel_receivers(
    conn: &mut DbConnection,
    client_ids: &[&str],
) -> QueryResult<Vec<BackchannelReceiver>> {
    clients::table
        .filter(clients::client_id.eq_any(client_ids))
        .filter(clients::backchannel_logout_uri.is_not_null())
        .select((
            clients::client_id,
            clients::backchannel_logout_uri.assume_not_null(),
            clients::token_alg,
        ))
        .load(conn)
}
