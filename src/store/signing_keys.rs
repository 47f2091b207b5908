//! The `signing_keys` table: keys of every signing algorithm, the private part sealed under
//! the master key.

use diesel::prelude::*;

use crate::store::schema::signing_keys;
use crate::store::DbConnection;

/// A signing-key row. Its `Debug` leaves out the sealed private key.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub kid: String,
    pub bits: i32,
    pub public_n: String,
    pub public_e: String,
    pub private_sealed: String,
    pub created_at: i64,
    pub activates_at: i64,
    pub retired_at: Option<i64>,
    /// The JOSE name of the key's one algorithm.
    pub alg: String,
    pub public_x: Option<String>,
    pub public_y: Option<String>,
    pub deactivated_at: Option<i64>,
}

impl std::fmt::Debug for SigningKeyRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRow")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("activates_at", &self.activates_at)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

/// Inserts a key.
pub fn insert(conn: &mut DbConnection, key: &SigningKeyRow) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(key)
        .execute(conn)
        .map(|_| ())
}

/// Every key, oldest activation first.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .select(SigningKeyRow::as_select())
        .order((
            signing_keys::activates_at.asc(),
            signing_keys::created_at.asc(),
        ))
        .load(conn)
}

/// Moves a key's activation time.
pub fn set_activates_at(conn: &mut DbConnection, kid: &str, at: i64) -> QueryResult<usize> {
    diesel::update(signing_keys::table.find(kid))
        .set(signing_keys::activates_at.eq(at))
        .execute(conn)
}

/// Marks a key retired: it leaves the JWKS and verifies nothing from now on.
pub fn retire(conn: &mut DbConnection, kid: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        signing_keys::table
            .find(kid)
            .filter(signing_keys::retired_at.is_null()),
    )
    .set(signing_keys::retired_at.eq(now))
    .execute(conn)
}

/// Marks keys as no longer signing from `now` (their algorithm left the configuration).
pub fn deactivate(conn: &mut DbConnection, kids: &[String], now: i64) -> QueryResult<usize> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::kid.eq_any(kids))
            .filter(signing_keys::deactivated_at.is_null()),
    )
    .set(signing_keys::deactivated_at.eq(now))
    .execute(conn)
}

/// Row count and the latest activation, retirement and deactivation: changes when any key
/// does.
pub type Fingerprint = (i64, Option<i64>, Option<i64>, Option<i64>);

/// A cheap fingerprint of the table, compared by each instance's poll to notice changes.
pub fn fingerprint(conn: &mut DbConnection) -> QueryResult<Fingerprint> {
    use diesel::dsl::{count_star, max};
    signing_keys::table
        .select((
            count_star(),
            max(signing_keys::activates_at),
            max(signing_keys::retired_at),
            max(signing_keys::deactivated_at),
        ))
        .first(conn)
}
