//! The MFA tables: `mfa_totp` (a user's sealed TOTP secret, whether it is confirmed, and the
//! last accepted time step), `mfa_recovery_codes` (by hash, deleted when used) and
//! `mfa_tokens` (logins waiting for their second factor, by hash).

use diesel::prelude::*;

use crate::store::schema::{mfa_recovery_codes, mfa_tokens, mfa_totp};
use crate::store::DbConnection;

/// A user's TOTP enrolment, pending or confirmed. Its `Debug` leaves out the secret.
#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_totp)]
pub struct Totp {
    pub user_id: String,
    pub secret_sealed: String,
    pub enabled: bool,
    pub last_step: Option<i64>,
    pub created_at: i64,
    pub enabled_at: Option<i64>,
}

impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("user_id", &self.user_id)
            .field("enabled", &self.enabled)
            .finish_non_exhaustive()
    }
}

/// The user's enrolment, if any.
pub fn find_totp(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<Totp>> {
    mfa_totp::table
        .find(user_id)
        .select(Totp::as_select())
        .first(conn)
        .optional()
}

/// True when the user has confirmed TOTP.
pub fn is_enabled(conn: &mut DbConnection, user_id: &str) -> QueryResult<bool> {
    mfa_totp::table
        .find(user_id)
        .select(mfa_totp::enabled)
        .first(conn)
        .optional()
        .map(|enabled| enabled.unwrap_or(false))
}

/// Inserts an enrolment (the caller has removed any earlier one).
pub fn insert_totp(conn: &mut DbConnection, totp: &Totp) -> QueryResult<()> {
    diesel::insert_into(mfa_totp::table)
        .values(totp)
        .execute(conn)
        .map(|_| ())
}

/// Removes the user's enrolment; returns how many rows went (0 or 1).
pub fn delete_totp(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(mfa_totp::table.find(user_id)).execute(conn)
}

/// Records `step` as the last accepted time step, only if it is later than the one stored:
/// the conditional update is what makes a code usable once even under concurrent logins.
/// Returns how many rows changed (0 or 1).
pub fn accept_step(conn: &mut DbConnection, user_id: &str, step: i64) -> QueryResult<usize> {
    diesel::update(
        mfa_totp::table.find(user_id).filter(
            mfa_totp::last_step
                .is_null()
                .or(mfa_totp::last_step.lt(step)),
        ),
    )
    .set(mfa_totp::last_step.eq(step))
    .execute(conn)
}

/// Marks a pending enrolment confirmed; returns how many rows changed (0 or 1).
pub fn enable(conn: &mut DbConnection, user_id: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        mfa_totp::table
            .find(user_id)
            .filter(mfa_totp::enabled.eq(false)),
    )
    .set((mfa_totp::enabled.eq(true), mfa_totp::enabled_at.eq(now)))
    .execute(conn)
}

/// Stores recovery codes by hash.
pub fn insert_recovery_codes(
    conn: &mut DbConnection,
    user_id: &str,
    code_hashes: &[String],
    now: i64,
) -> QueryResult<()> {
    let rows: Vec<_> = code_hashes
        .iter()
        .map(|hash| {
            (
                mfa_recovery_codes::user_id.eq(user_id),
                mfa_recovery_codes::code_hash.eq(hash),
                mfa_recovery_codes::created_at.eq(now),
            )
        })
        .collect();
    // One statement per row: diesel's multi-row insert is not available through
    // MultiConnection, and ten rows are nothing.
    for row in rows {
        diesel::insert_into(mfa_recovery_codes::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes one recovery code if the user has it; returns how many rows went (0 or 1), so a
/// code is used once.
pub fn use_recovery_code(
    conn: &mut DbConnection,
    user_id: &str,
    code_hash: &str,
) -> QueryResult<usize> {
    diesel::delete(
        mfa_recovery_codes::table
            .filter(mfa_recovery_codes::user_id.eq(user_id))
            .filter(mfa_recovery_codes::code_hash.eq(code_hash)),
    )
    .execute(conn)
}

/// Deletes all the user's recovery codes.
pub fn delete_recovery_codes(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(mfa_recovery_codes::table.filter(mfa_recovery_codes::user_id.eq(user_id)))
        .execute(conn)
}

/// A login waiting for its second factor.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = mfa_tokens)]
pub struct MfaToken {
    pub token_hash: String,
    pub user_id: String,
    pub client_id: String,
    pub scope: String,
    pub expires_at: i64,
}

/// Stores a new mfa_token.
pub fn insert_token(conn: &mut DbConnection, token: &MfaToken) -> QueryResult<()> {
    diesel::insert_into(mfa_tokens::table)
        .values(token)
        .execute(conn)
        .map(|_| ())
}

/// The unexpired mfa_token with this hash.
pub fn find_token(
    conn: &mut DbConnection,
    token_hash: &str,
    now: i64,
) -> QueryResult<Option<MfaToken>> {
    mfa_tokens::table
        .find(token_hash)
        .filter(mfa_tokens::expires_at.gt(now))
        .select(MfaToken::as_select())
        .first(conn)
        .optional()
}

/// Deletes the mfa_token if it is still unexpired; returns how many rows went (0 or 1), so
/// of two concurrent uses only one succeeds.
pub fn consume_token(conn: &mut DbConnection, token_hash: &str, now: i64) -> QueryResult<usize> {
    diesel::delete(
        mfa_tokens::table
            .find(token_hash)
            .filter(mfa_tokens::expires_at.gt(now)),
    )
    .execute(conn)
}

/// Deletes every pending mfa_token of the user.
pub fn delete_tokens_for_user(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(mfa_tokens::table.filter(mfa_tokens::user_id.eq(user_id))).execute(conn)
}

/// Deletes expired mfa_tokens, in bounded batches.
pub fn purge_expired_tokens(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    crate::store::in_batches(|| {
        let expired = mfa_tokens::table
            .filter(mfa_tokens::expires_at.le(now))
            .select(mfa_tokens::token_hash)
            .limit(crate::store::PURGE_BATCH)
            .load::<String>(conn)?;
        diesel::delete(mfa_tokens::table.filter(mfa_tokens::token_hash.eq_any(expired)))
            .execute(conn)
    })
}
