//! Two-factor login: TOTP (RFC 6238, HMAC-SHA1, 6 digits, 30 s steps) enrolment and
//! confirmation, one-time recovery codes, the short-lived `mfa_token` that links a checked
//! password to its second factor, and turning MFA off (by the user or an admin).
//!
//! Secrets are sealed under the master key with the user id bound as associated data, so a
//! sealed secret cannot be moved to another account. A code is accepted once: the last
//! accepted time step is stored and only later steps pass.

use aws_lc_rs::hmac;
use secrecy::SecretString;
use serde_json::json;

use crate::audit::{self, Event, Kind};
use crate::crypto::{constant_time_eq, random_array, sha256_hex, MasterKey};
use crate::error::{Error, Result};
use crate::lockout::{self, Subject};
use crate::metrics::Metrics;
use crate::store::mfa::{self as mfa_store, MfaToken, Totp};
use crate::store::users::{self, User};
use crate::store::{self, sessions, DbConnection};

/// Seconds per time step.
pub const PERIOD: i64 = 30;
/// Digits of a code.
pub const DIGITS: usize = 6;
/// Steps of clock skew tolerated either way.
pub const SKEW: i64 = 1;
/// How long an `mfa_token` stays usable.
pub const MFA_TOKEN_TTL: i64 = 300;
/// How many recovery codes confirmation hands out.
pub const RECOVERY_CODES: usize = 10;
/// Issuer shown by authenticator apps.
pub const ISSUER: &str = "tessera";

const BAD_CODE: &str = "the one-time code is invalid or was already used";

/// The RFC 6238 time step of `now`.
pub fn time_step(now: i64) -> i64 {
    now.div_euclid(PERIOD)
}

/// HOTP (RFC 4226) of `counter` under `key`, as `DIGITS` decimal digits.
pub fn hotp(key: &[u8], counter: u64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    let offset = (mac[mac.len() - 1] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(DIGITS as u32),
        width = DIGITS
    )
}

/// The TOTP code of `step`.
pub fn totp_code(key: &[u8], step: i64) -> String {
    hotp(key, step.max(0) as u64)
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// RFC 4648 base32 without padding, as authenticator apps expect secrets.
pub fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for &byte in bytes {
        buffer = (buffer << 8) | byte as u64;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 0x1f) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 0x1f) as usize] as char);
    }
    out
}

/// The associated data a user's sealed secret is bound to.
fn seal_context(user_id: &str) -> String {
    format!("totp-secret:{user_id}")
}

/// Percent-encodes a label for the otpauth URI (unreserved characters and `@` pass).
fn uri_label(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~@".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A pending enrolment as the user sees it, once.
#[derive(Debug)]
pub struct Enrolment {
    pub secret: SecretString,
    /// Holds the secret too.
    pub otpauth_uri: SecretString,
}

/// True when the user has confirmed TOTP.
pub fn is_enabled(conn: &mut DbConnection, user_id: &str) -> Result<bool> {
    Ok(mfa_store::is_enabled(conn, user_id)?)
}

/// Starts (or restarts) enrolment with a fresh 160-bit secret, for a user who has just
/// proven the password (a lock that landed meanwhile refuses it). Refused while MFA is on:
/// replacing a confirmed secret must go through turning it off, which needs a credential.
pub fn begin_enrolment(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    user: &User,
    now: i64,
) -> Result<Enrolment> {
    let secret: [u8; 20] = random_array();
    let sealed = master_key.seal(&seal_context(&user.id), &secret);
    store::transaction(conn, |conn| -> Result<()> {
        lockout::count_success(conn, &Subject::account(&user.id), now)?;
        if mfa_store::find_totp(conn, &user.id)?.is_some_and(|t| t.enabled) {
            return Err(Error::Conflict(
                "MFA is already enabled; turn it off before enrolling again".into(),
            ));
        }
        mfa_store::delete_totp(conn, &user.id)?;
        mfa_store::insert_totp(
            conn,
            &Totp {
                user_id: user.id.clone(),
                secret_sealed: sealed,
                enabled: false,
                last_step: None,
                created_at: now,
                enabled_at: None,
            },
        )?;
        Ok(())
    })?;
    let secret = base32_encode(&secret);
    let otpauth_uri = format!(
        "otpauth://totp/{ISSUER}:{}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits={DIGITS}&period={PERIOD}",
        uri_label(&user.username)
    );
    Ok(Enrolment {
        secret: secret.into(),
        otpauth_uri: otpauth_uri.into(),
    })
}

/// Checks a TOTP code against the enrolment and, if it matches a step later than the last
/// accepted one, records that step. Call inside a transaction.
fn accept_totp(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    totp: &Totp,
    code: &str,
    now: i64,
) -> Result<bool> {
    let secret = master_key
        .open(&seal_context(&totp.user_id), &totp.secret_sealed)
        .map_err(|e| Error::Internal(e.context("opening a TOTP secret")))?;
    let current = time_step(now);
    let mut matched = None;
    // Every candidate is computed and compared, so timing says nothing about which matched.
    for step in current - SKEW..=current + SKEW {
        let fresh = totp.last_step.is_none_or(|last| step > last);
        if constant_time_eq(totp_code(&secret, step).as_bytes(), code.as_bytes())
            && fresh
            && matched.is_none()
        {
            matched = Some(step);
        }
    }
    match matched {
        Some(step) => Ok(mfa_store::accept_step(conn, &totp.user_id, step)? == 1),
        None => Ok(false),
    }
}

/// A recovery code in its canonical form (lowercase base32, no separators), or `None` if it
/// cannot be one.
fn normalize_recovery_code(text: &str) -> Option<String> {
    let code: String = text
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (code.len() == 16 && code.bytes().all(|b| matches!(b, b'a'..=b'z' | b'2'..=b'7')))
        .then_some(code)
}

fn recovery_code_hash(code: &str) -> String {
    sha256_hex(format!("tessera recovery code\0{code}").as_bytes())
}

fn is_totp_shaped(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// Which second factor passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondFactor {
    Totp,
    RecoveryCode,
}

impl SecondFactor {
    pub fn as_str(self) -> &'static str {
        match self {
            SecondFactor::Totp => "totp",
            SecondFactor::RecoveryCode => "recovery_code",
        }
    }
}

/// Checks and spends a second factor of a user with MFA on: a TOTP code (once per time
/// step) or a recovery code (once). `None` when it does not pass. Call inside a transaction
/// so that the spending is undone if what follows fails.
pub fn verify_second_factor(
    conn: &mut DbConnection,
    master_key: &MasterKey,
    user_id: &str,
    otp: &str,
    now: i64,
) -> Result<Option<SecondFactor>> {
    let Some(totp) = mfa_store::find_totp(conn, user_id)?.filter(|t| t.enabled) else {
        return Ok(None);
    };
    let otp = otp.trim();
    if is_totp_shaped(otp) {
        return Ok(accept_totp(conn, master_key, &totp, otp, now)?.then_some(SecondFactor::Totp));
    }
    match normalize_recovery_code(otp) {
        Some(code) => {
            Ok(
                (mfa_store::use_recovery_code(conn, user_id, &recovery_code_hash(&code))? == 1)
                    .then_some(SecondFactor::RecoveryCode),
            )
        }
        None => Ok(None),
    }
}

/// Confirms a pending enrolment with a code from the authenticator (which counts as used),
/// turns MFA on, ends every session of the user but `keep_session` (one signed in with a
/// stolen password must not outlive the second factor), and returns fresh recovery codes,
/// shown this once.
pub fn confirm_enrolment(
    conn: &mut DbConnection,
    metrics: &Metrics,
    master_key: &MasterKey,
    user_id: &str,
    otp: &str,
    keep_session: Option<&str>,
    ip: Option<String>,
    now: i64,
) -> Result<Vec<String>> {
    let otp = otp.trim();
    let codes: Vec<String> = (0..RECOVERY_CODES)
        .map(|_| {
            let code = base32_encode(&random_array::<10>()).to_ascii_lowercase();
            format!(
                "{}-{}-{}-{}",
                &code[0..4],
                &code[4..8],
                &code[8..12],
                &code[12..16]
            )
        })
        .collect();
    let hashes: Vec<String> = codes
        .iter()
        .filter_map(|c| normalize_recovery_code(c))
        .map(|c| recovery_code_hash(&c))
        .collect();
    store::transaction(conn, |conn| -> Result<()> {
        let totp = match mfa_store::find_totp(conn, user_id)? {
            None => {
                return Err(Error::InvalidRequest(
                    "no TOTP enrolment is pending; start one with POST /account/mfa/totp".into(),
                ))
            }
            Some(totp) if totp.enabled => {
                return Err(Error::Conflict("MFA is already enabled".into()))
            }
            Some(totp) => totp,
        };
        if !is_totp_shaped(otp) || !accept_totp(conn, master_key, &totp, otp, now)? {
            return Err(Error::InvalidGrant(BAD_CODE.into()));
        }
        if mfa_store::enable(conn, user_id, now)? != 1 {
            return Err(Error::Conflict("MFA is already enabled".into()));
        }
        mfa_store::delete_recovery_codes(conn, user_id)?;
        mfa_store::insert_recovery_codes(conn, user_id, &hashes, now)?;
        let ended = sessions::revoke_all_for_user(conn, user_id, keep_session, now, "mfa enabled")?;
        crate::session_end::sessions_ended(conn, metrics, &ended, now)?;
        let revoked = ended.len();
        audit::record(
            conn,
            Event::new(Kind::MfaEnabled)
                .actor(user_id)
                .user(user_id)
                .ip(ip)
                .details(json!({ "method": "totp", "sessions_revoked": revoked })),
            now,
        )?;
        Ok(())
    })?;
    Ok(codes)
}

/// Turns MFA off for a user: the secret, recovery codes and pending mfa_tokens go, in one
/// transaction. Returns whether there was anything to remove (only then is it audited).
pub fn disable(
    conn: &mut DbConnection,
    user_id: &str,
    actor: &str,
    ip: Option<String>,
    now: i64,
) -> Result<bool> {
    store::transaction(conn, |conn| remove_all(conn, user_id, actor, ip, now))
}

fn remove_all(
    conn: &mut DbConnection,
    user_id: &str,
    actor: &str,
    ip: Option<String>,
    now: i64,
) -> Result<bool> {
    let removed = mfa_store::delete_totp(conn, user_id)? > 0;
    mfa_store::delete_recovery_codes(conn, user_id)?;
    mfa_store::delete_tokens_for_user(conn, user_id)?;
    if removed {
        audit::record(
            conn,
            Event::new(Kind::MfaDisabled)
                .actor(actor)
                .user(user_id)
                .ip(ip),
            now,
        )?;
    }
    Ok(removed)
}

/// An admin's reset of a user's MFA; idempotent, but the user must exist.
pub fn admin_reset(
    conn: &mut DbConnection,
    user_id: &str,
    admin: &str,
    ip: Option<String>,
    now: i64,
) -> Result<()> {
    if users::find(conn, user_id)?.is_none() {
        return Err(Error::NotFound("no such user".into()));
    }
    disable(conn, user_id, admin, ip, now).map(|_| ())
}

/// What a user gave to turn their own MFA off.
#[derive(Debug)]
pub enum DisableProof {
    /// The password, already checked on the hasher's pool
    /// ([`crate::accounts::password::check`]).
    Password { correct: bool },
    /// A current code or a recovery code, checked (and spent) by [`complete_disable`].
    Code(secrecy::SecretString),
}

/// Step one of the user's own MFA disable, before any hashing: MFA must be on (`not_found`)
/// and the account not locked (429).
pub fn prepare_disable(conn: &mut DbConnection, user: &User, now: i64) -> Result<()> {
    if mfa_store::find_totp(conn, &user.id)?.is_none() {
        return Err(Error::NotFound("MFA is not enabled".into()));
    }
    lockout::refuse_if_user_locked(user, now)
}

/// The last step of the user's own MFA disable: a right password, code or recovery code
/// turns MFA off in one transaction that refuses it (429) when the lock landed meanwhile; a
/// wrong one counts toward the lock like a failed login (`invalid_grant`) and spends
/// nothing.
pub fn complete_disable(
    conn: &mut DbConnection,
    policy: &lockout::Policy<'_>,
    master_key: &MasterKey,
    user_id: &str,
    proof: DisableProof,
    claimant: lockout::Claimant,
    now: i64,
) -> Result<()> {
    let ip = claimant.ip.clone();
    let passed = store::transaction(conn, |conn| -> Result<bool> {
        let proven = match &proof {
            DisableProof::Password { correct } => *correct,
            DisableProof::Code(otp) => {
                let otp = secrecy::ExposeSecret::expose_secret(otp);
                verify_second_factor(conn, master_key, user_id, otp, now)?.is_some()
            }
        };
        if !proven {
            return Ok(false);
        }
        lockout::count_success(conn, &Subject::account(user_id), now)?;
        remove_all(conn, user_id, user_id, ip, now)?;
        Ok(true)
    })?;
    if !passed {
        lockout::record_user_failure(conn, policy, user_id, claimant, now)?;
        return Err(Error::InvalidGrant(
            "the password or one-time code is incorrect".into(),
        ));
    }
    Ok(())
}

/// Starts the second half of a login whose password was right: stores the hash of a new
/// `mfa_token` bound to the user, client and scope, and returns the token. Call inside the
/// login's transaction.
pub fn issue_mfa_token(
    conn: &mut DbConnection,
    user_id: &str,
    client_id: &str,
    scope: &[String],
    now: i64,
) -> Result<String> {
    let token = crate::crypto::random_token::<32>();
    mfa_store::insert_token(
        conn,
        &MfaToken {
            token_hash: mfa_token_hash(&token),
            user_id: user_id.to_string(),
            client_id: client_id.to_string(),
            scope: scope.join(" "),
            expires_at: now + MFA_TOKEN_TTL,
        },
    )?;
    Ok(token)
}

/// How an mfa_token is stored.
pub fn mfa_token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 appendix B, SHA-1 (8-digit values; the 6-digit code is their last six).
    #[test]
    fn totp_matches_the_rfc_6238_test_vectors() {
        let key = b"12345678901234567890";
        for (time, expected) in [
            (59i64, "94287082"),
            (1111111109, "07081804"),
            (1111111111, "14050471"),
            (1234567890, "89005924"),
            (2000000000, "69279037"),
            (20000000000, "65353130"),
        ] {
            assert_eq!(totp_code(key, time_step(time)), &expected[2..], "t={time}");
        }
    }

    #[test]
    fn hotp_matches_the_rfc_4226_test_vectors() {
        let key = b"12345678901234567890";
        let expected = ["755224", "287082", "359152", "969429", "338314"];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp(key, counter as u64), *code);
        }
    }

    #[test]
    fn base32_matches_rfc_4648() {
        assert_eq!(base32_encode(b""), "");
        assert_eq!(base32_encode(b"f"), "MY");
        assert_eq!(base32_encode(b"fo"), "MZXQ");
        assert_eq!(base32_encode(b"foo"), "MZXW6");
        assert_eq!(base32_encode(b"foob"), "MZXW6YQ");
        assert_eq!(base32_encode(b"fooba"), "MZXW6YTB");
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32_encode(&[0u8; 20]).len(), 32);
    }

    #[test]
    fn recovery_codes_are_recognised_with_or_without_dashes_in_any_case() {
        assert_eq!(
            normalize_recovery_code("abcd-efgh-2345-67ab").as_deref(),
            Some("abcdefgh234567ab")
        );
        assert_eq!(
            normalize_recovery_code("ABCDEFGH234567AB").as_deref(),
            Some("abcdefgh234567ab")
        );
        assert_eq!(normalize_recovery_code("123456"), None);
        assert_eq!(normalize_recovery_code("abcd-efgh-2345-6789"), None);
    }

    #[test]
    fn uri_labels_escape_what_a_uri_cannot_hold() {
        assert_eq!(uri_label("alice@example.com"), "alice@example.com");
        assert_eq!(uri_label("a b:c"), "a%20b%3Ac");
    }
}
