//! Email verification, address change and password reset (SPEC §6.4), without HTTP: the
//! one-time tokens (256 random bits, stored as SHA-256, single use; 24 h for verification,
//! 30 min for reset), the mails that carry their links (queued in the outbox in the same
//! transaction), and the changes a spent token makes. Tokens and links never reach a log
//! line: they exist in plain text only in the sealed outbox payload and the mail itself.

use serde_json::json;

use crate::audit::{self, Event, Kind};
use crate::crypto::{random_token, sha256_hex, MasterKey};
use crate::error::{Error, Result};
use crate::mail::{html_escape, Mail};
use crate::metrics::Metrics;
use crate::store::mail_tokens::{self, MailToken};
use crate::store::sessions::Ended;
use crate::store::users::{self, User};
use crate::store::{self, DbConnection};

/// The purpose of a verification token.
pub const VERIFY: &str = "verify";
/// The purpose of a password-reset token.
pub const RESET: &str = "reset";
/// How long a verification link works.
pub const VERIFY_TTL: i64 = 86_400;
/// How long a reset link works.
pub const RESET_TTL: i64 = 1800;
/// Reset mails one account gets per hour at most; further requests send nothing.
pub const RESETS_PER_HOUR: i64 = 3;
/// Verification mails one account gets per hour at most.
pub const VERIFICATIONS_PER_HOUR: i64 = 5;

/// What the mails need to know about this server.
#[derive(Debug, Clone, Copy)]
pub struct MailContext<'a> {
    pub issuer: &'a str,
    pub brand: &'a str,
    pub master_key: &'a MasterKey,
}

/// The hash a presented token is stored and looked up by.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Makes a token of `purpose` for the user and its address; returns the plain token.
fn issue_token(
    conn: &mut DbConnection,
    purpose: &str,
    user: &User,
    email: &str,
    ttl: i64,
    now: i64,
) -> Result<String> {
    let token = random_token::<32>();
    mail_tokens::insert(
        conn,
        &MailToken {
            token_hash: token_hash(&token),
            purpose: purpose.to_string(),
            user_id: user.id.clone(),
            email: email.to_string(),
            created_at: now,
            expires_at: now + ttl,
            used_at: None,
        },
    )?;
    Ok(token)
}

/// Builds a mail with a plain-text and an HTML part around one link.
fn link_mail(to: &str, subject: String, lines: &[String], link: &str, after: &str) -> Mail {
    let mut text = String::new();
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><body style=\"font-family:sans-serif;line-height:1.5\">",
    );
    for line in lines {
        text.push_str(line);
        text.push_str("\n\n");
        html.push_str(&format!("<p>{}</p>", html_escape(line)));
    }
    text.push_str(link);
    text.push_str("\n\n");
    text.push_str(after);
    text.push('\n');
    html.push_str(&format!(
        "<p><a href=\"{0}\">{0}</a></p><p>{1}</p></body></html>",
        html_escape(link),
        html_escape(after)
    ));
    Mail {
        to: to.to_string(),
        subject,
        text,
        html,
    }
}

/// `POST /account/email/verify`: mails the user a link proving their address. An address
/// already proven, or the hourly allowance spent, sends nothing (the answer is the same).
/// Call through [`store::transaction`]-free code: it opens its own transaction.
pub fn request_verification(
    conn: &mut DbConnection,
    context: MailContext<'_>,
    user_id: &str,
    ip: Option<String>,
    now: i64,
) -> Result<bool> {
    store::transaction(conn, |conn| {
        let user = users::find(conn, user_id)?
            .ok_or_else(|| Error::invalid_token("the account no longer exists"))?;
        let Some(email) = user.email.clone() else {
            return Err(Error::InvalidRequest(
                "the account has no email address; set one with PUT /account/email".into(),
            ));
        };
        if mail_tokens::verified_email(conn, &user.id)?.as_deref() == Some(email.as_str()) {
            return Ok(false);
        }
        if mail_tokens::count_since(conn, &user.id, VERIFY, now - 3600)? >= VERIFICATIONS_PER_HOUR {
            log::info!(
                "verification mail for user {} dropped: hourly limit",
                user.id
            );
            return Ok(false);
        }
        let token = issue_token(conn, VERIFY, &user, &email, VERIFY_TTL, now)?;
        let link = format!("{}/email/verify?token={token}", context.issuer);
        let mail = link_mail(
            &email,
            format!("Confirm your email address for {}", context.brand),
            &[
                format!("Hello {},", user.username),
                format!(
                    "To confirm that {email} is your address at {}, open this link within 24 hours:",
                    context.brand
                ),
            ],
            &link,
            "If you did not ask for this, you can ignore this mail.",
        );
        let message_id = crate::mail::enqueue(conn, context.master_key, &mail, now)?;
        audit::record(
            conn,
            Event::new(Kind::EmailVerificationSent)
                .actor(&user.id)
                .user(&user.id)
                .ip(ip)
                .details(json!({ "message": message_id })),
            now,
        )?;
        Ok(true)
    })
}

/// `GET /email/verify?token=`: spends the token and marks the address it was sent to as
/// verified, if the account still has that address.
pub fn verify_email(conn: &mut DbConnection, token: &str, now: i64) -> Result<User> {
    store::transaction(conn, |conn| {
        let spent = mail_tokens::spend(conn, &token_hash(token), VERIFY, now)?
            .ok_or_else(|| Error::InvalidGrant("the link is invalid, used or expired".into()))?;
        let user = users::find(conn, &spent.user_id)?
            .ok_or_else(|| Error::InvalidGrant("the link is invalid, used or expired".into()))?;
        if user.email.as_deref() != Some(spent.email.as_str()) {
            return Err(Error::InvalidGrant(
                "the account's address changed after this link was sent".into(),
            ));
        }
        mail_tokens::set_verified(conn, &user.id, &spent.email, now)?;
        audit::record(
            conn,
            Event::new(Kind::EmailVerified)
                .actor(&user.id)
                .user(&user.id),
            now,
        )?;
        Ok(user)
    })
}

/// True when the user's current address is the one they proved (`email_verified`).
pub fn is_email_verified(conn: &mut DbConnection, user: &User) -> Result<bool> {
    let Some(email) = user.email.as_deref() else {
        return Ok(false);
    };
    Ok(mail_tokens::verified_email(conn, &user.id)?.as_deref() == Some(email))
}

/// `PUT /account/email`, after the password was checked: sets the address and resets
/// verification (pending verification links stop working).
pub fn change_email(
    conn: &mut DbConnection,
    user_id: &str,
    email: &str,
    ip: Option<String>,
    now: i64,
) -> Result<User> {
    crate::accounts::check_email(email)?;
    store::transaction(conn, |conn| {
        users::set_email(conn, user_id, email, now)?;
        mail_tokens::clear_verified(conn, user_id)?;
        mail_tokens::spend_all(conn, user_id, VERIFY, now)?;
        audit::record(
            conn,
            Event::new(Kind::EmailChanged)
                .actor(user_id)
                .user(user_id)
                .ip(ip),
            now,
        )?;
        users::find(conn, user_id)?.ok_or_else(|| Error::NotFound("no such user".into()))
    })
}

/// Who asks for a reset.
#[derive(Debug, Clone)]
pub enum Lookup {
    Username(String),
    Email(String),
    /// A username, or else an address (the page's one field).
    Either(String),
}

/// `POST /password/forgot`: mails a reset link to each matching enabled account with an
/// address, unless it got [`RESETS_PER_HOUR`] already. Says nothing about what it found;
/// returns how many mails it queued (for tests and logs only, never for the answer).
pub fn forgot_password(
    conn: &mut DbConnection,
    context: MailContext<'_>,
    lookup: &Lookup,
    ip: Option<String>,
    now: i64,
) -> Result<usize> {
    store::transaction(conn, |conn| {
        let candidates = match lookup {
            Lookup::Username(name) => users::find_by_username(conn, name)?.into_iter().collect(),
            Lookup::Email(email) => users::find_by_email(conn, email, 5)?,
            Lookup::Either(text) => match users::find_by_username(conn, text)? {
                Some(user) => vec![user],
                None => users::find_by_email(conn, text, 5)?,
            },
        };
        let mut queued = 0;
        for user in candidates.iter().filter(|u| !u.disabled) {
            let Some(email) = user.email.clone() else {
                continue;
            };
            if mail_tokens::count_since(conn, &user.id, RESET, now - 3600)? >= RESETS_PER_HOUR {
                log::info!("reset mail for user {} dropped: hourly limit", user.id);
                continue;
            }
            let token = issue_token(conn, RESET, user, &email, RESET_TTL, now)?;
            let link = format!("{}/password/reset?token={token}", context.issuer);
            let mail = link_mail(
                &email,
                format!("Reset your {} password", context.brand),
                &[
                    format!("Hello {},", user.username),
                    format!(
                        "Someone asked to reset the password of your {} account. To choose a new password, open this link within 30 minutes:",
                        context.brand
                    ),
                ],
                &link,
                "If you did not ask for this, ignore this mail: your password stays as it is.",
            );
            let message_id = crate::mail::enqueue(conn, context.master_key, &mail, now)?;
            audit::record(
                conn,
                Event::new(Kind::PasswordResetRequested)
                    .user(&user.id)
                    .ip(ip.clone())
                    .details(json!({ "message": message_id })),
                now,
            )?;
            queued += 1;
        }
        Ok(queued)
    })
}

/// The account a usable reset token belongs to (to apply the password policy, which looks
/// at the username, before hashing).
pub fn reset_target(conn: &mut DbConnection, token: &str, now: i64) -> Result<User> {
    let spent = mail_tokens::find_usable(conn, &token_hash(token), RESET, now)?
        .ok_or_else(invalid_reset)?;
    users::find(conn, &spent.user_id)?.ok_or_else(invalid_reset)
}

fn invalid_reset() -> Error {
    Error::InvalidGrant("the reset link is invalid, used or expired".into())
}

/// `POST /password/reset`, with the new password already hashed: in one transaction spends
/// the token (and any other outstanding reset token of the account), sets the password,
/// clears a lock, ends every session of the user, and audits it. Returns the ended sessions.
pub fn reset_password(
    conn: &mut DbConnection,
    metrics: &Metrics,
    token: &str,
    new_hash: &str,
    ip: Option<String>,
    now: i64,
) -> Result<Vec<Ended>> {
    store::transaction(conn, |conn| {
        let spent =
            mail_tokens::spend(conn, &token_hash(token), RESET, now)?.ok_or_else(invalid_reset)?;
        let user_id = spent.user_id;
        users::set_password_hash(conn, &user_id, new_hash, now)?;
        users::reset_failures(conn, &user_id)?;
        mail_tokens::spend_all(conn, &user_id, RESET, now)?;
        let ended =
            store::sessions::revoke_all_for_user(conn, &user_id, None, now, "password reset")?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        audit::record(
            conn,
            Event::new(Kind::PasswordReset)
                .actor(&user_id)
                .user(&user_id)
                .ip(ip)
                .details(json!({ "sessions_revoked": ended.len() })),
            now,
        )?;
        Ok(ended)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mails_have_the_link_in_both_parts_and_escape_html() {
        let mail = link_mail(
            "a@example.com",
            "Subject".into(),
            &["Hello <b>,".into()],
            "https://id.example.com/x?token=a&b",
            "Bye.",
        );
        assert!(mail.text.contains("https://id.example.com/x?token=a&b"));
        assert!(mail
            .html
            .contains("href=\"https://id.example.com/x?token=a&amp;b\""));
        assert!(mail.html.contains("Hello &lt;b&gt;,"));
    }
}
