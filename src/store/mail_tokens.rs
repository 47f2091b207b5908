//! The `mail_tokens` and `email_verifications` tables: one-time tokens sent by mail (known
//! by their SHA-256 only) and the address each user proved.

use diesel::prelude::*;

use crate::store::schema::{email_verifications, mail_tokens};
use crate::store::{DbConnection, QueryResult};

/// A mailed token's row. `Debug` leaves out the hash.
#[derive(Queryable, Selectable, Clone)]
#[diesel(table_name = mail_tokens)]
pub struct MailToken {
    pub token_hash: String,
    pub purpose: String,
    pub user_id: String,
    pub email: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl std::fmt::Debug for MailToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailToken")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Stores a new token.
pub fn insert(conn: &mut DbConnection, token: &MailToken) -> QueryResult<()> {
    diesel::insert_into(mail_tokens::table)
        .values((
            mail_tokens::token_hash.eq(&token.token_hash),
            mail_tokens::purpose.eq(&token.purpose),
            mail_tokens::user_id.eq(&token.user_id),
            mail_tokens::email.eq(&token.email),
            mail_tokens::created_at.eq(token.created_at),
            mail_tokens::expires_at.eq(token.expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The unused, unexpired token of `purpose` with this hash.
pub fn find_usable(
    conn: &mut DbConnection,
    hash: &str,
    purpose: &str,
    now: i64,
) -> QueryResult<Option<MailToken>> {
    mail_tokens::table
        .filter(mail_tokens::token_hash.eq(hash))
        .filter(mail_tokens::purpose.eq(purpose))
        .filter(mail_tokens::used_at.is_null())
        .filter(mail_tokens::expires_at.gt(now))
        .select(MailToken::as_select())
        .first(conn)
        .optional()
}

/// Spends a usable token (call inside a transaction): of two concurrent spends only one
/// gets the row.
pub fn spend(
    conn: &mut DbConnection,
    hash: &str,
    purpose: &str,
    now: i64,
) -> QueryResult<Option<MailToken>> {
    let Some(token) = find_usable(conn, hash, purpose, now)? else {
        return Ok(None);
    };
    let updated = diesel::update(
        mail_tokens::table
            .filter(mail_tokens::token_hash.eq(hash))
            .filter(mail_tokens::used_at.is_null()),
    )
    .set(mail_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok((updated == 1).then_some(token))
}

/// How many tokens of `purpose` were made for the user since `since`.
pub fn count_since(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
    since: i64,
) -> QueryResult<i64> {
    mail_tokens::table
        .filter(mail_tokens::user_id.eq(user_id))
        .filter(mail_tokens::purpose.eq(purpose))
        .filter(mail_tokens::created_at.ge(since))
        .count()
        .get_result(conn)
}

/// Spends every outstanding token of `purpose` of the user (after a reset, or an address
/// change that makes pending verification links moot).
pub fn spend_all(
    conn: &mut DbConnection,
    user_id: &str,
    purpose: &str,
    now: i64,
) -> QueryResult<usize> {
    diesel::update(
        mail_tokens::table
            .filter(mail_tokens::user_id.eq(user_id))
            .filter(mail_tokens::purpose.eq(purpose))
            .filter(mail_tokens::used_at.is_null()),
    )
    .set(mail_tokens::used_at.eq(Some(now)))
    .execute(conn)
}

/// Deletes tokens that expired before `before`.
pub fn delete_expired(conn: &mut DbConnection, before: i64) -> QueryResult<usize> {
    diesel::delete(mail_tokens::table.filter(mail_tokens::expires_at.lt(before))).execute(conn)
}

/// Records that the user proved `email`.
pub fn set_verified(
    conn: &mut DbConnection,
    user_id: &str,
    email: &str,
    now: i64,
) -> QueryResult<()> {
    clear_verified(conn, user_id)?;
    diesel::insert_into(email_verifications::table)
        .values((
            email_verifications::user_id.eq(user_id),
            email_verifications::email.eq(email),
            email_verifications::verified_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Forgets the user's proven address.
pub fn clear_verified(conn: &mut DbConnection, user_id: &str) -> QueryResult<()> {
    diesel::delete(email_verifications::table.find(user_id))
        .execute(conn)
        .map(|_| ())
}

/// The address the user proved, if any.
pub fn verified_email(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<String>> {
    email_verifications::table
        .find(user_id)
        .select(email_verifications::email)
        .first(conn)
        .optional()
}
