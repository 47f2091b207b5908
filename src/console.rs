//! The admin console's own state, without HTTP (SPEC §6.5): the sign-in in progress (PKCE
//! verifier and `state`, RFC 7636 / RFC 6749 §10.12), the tokens the console holds for its
//! admin, sealed under the master key, and the overview's figures. What the console *does*
//! is not here: every action is an admin-API domain function (`admin`, `accounts`, `mfa`),
//! called after the admin API's own authorization.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::crypto::MasterKey;
use crate::error::Result;
use crate::store::{self, DbConnection};
use crate::tokens::keyring::{classify, KeyStatus};

/// Writes a secret into the plaintext of a sealed cookie: the one place a console secret
/// is serialized (secrecy makes that an explicit choice; `Debug` still redacts it).
fn sealed<S: serde::Serializer>(
    secret: &SecretString,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose_secret())
}

/// Seconds before its expiry at which the console refreshes its access token.
pub const REFRESH_MARGIN: i64 = 60;

/// The longest a console session lasts, and the console's redirect URI: both are part of the
/// built-in `console` client, defined in `clients`.
pub use crate::clients::{
    console_redirect_uri as redirect_uri, CONSOLE_SESSION_TTL as SESSION_TTL,
};

/// How long a sign-in may take from the redirect to `/oauth/authorize` to the callback.
pub const SIGN_IN_TTL: i64 = 600;

const SIGN_IN_CONTEXT: &str = "console sign-in";
const TOKENS_CONTEXT: &str = "console tokens";

/// A sign-in on its way through the code flow: what the callback must see again.
#[derive(Debug, Serialize, Deserialize)]
pub struct SignIn {
    /// The `state` sent to `/oauth/authorize`.
    #[serde(serialize_with = "sealed")]
    pub state: SecretString,
    /// The PKCE `code_verifier` whose S256 challenge was sent.
    #[serde(serialize_with = "sealed")]
    pub verifier: SecretString,
    pub started_at: i64,
    /// The console page to show once signed in.
    pub return_to: String,
}

impl SignIn {
    /// A new sign-in: 256 random bits of verifier (43 characters, RFC 7636 §4.1) and 128 of
    /// state; afterwards the browser goes to `return_to` if it is a console page, else to
    /// the overview.
    pub fn begin(now: i64, return_to: &str) -> Self {
        SignIn {
            state: crate::crypto::random_token::<16>().into(),
            verifier: crate::crypto::random_token::<32>().into(),
            started_at: now,
            return_to: console_path(return_to).unwrap_or("/console").to_string(),
        }
    }

    /// The S256 `code_challenge` of the verifier.
    pub fn challenge(&self) -> String {
        crate::grants::authorization_code::s256(self.verifier.expose_secret())
    }

    /// Sealed for a cookie.
    pub fn seal(&self, key: &MasterKey) -> String {
        key.seal(
            SIGN_IN_CONTEXT,
            &serde_json::to_vec(self).unwrap_or_default(),
        )
    }

    /// The sign-in a cookie holds, if it is one of ours and not too old.
    pub fn open(key: &MasterKey, sealed: &str, now: i64) -> Option<Self> {
        let bytes = key.open(SIGN_IN_CONTEXT, sealed).ok()?;
        let sign_in: SignIn = serde_json::from_slice(&bytes).ok()?;
        (now - sign_in.started_at <= SIGN_IN_TTL && sign_in.started_at <= now).then_some(sign_in)
    }

    /// Whether the callback's `state` is this sign-in's (compared in constant time).
    pub fn matches(&self, state: &str) -> bool {
        crate::crypto::constant_time_eq(self.state.expose_secret().as_bytes(), state.as_bytes())
    }
}

/// `path` if it is a page of the console (never another site or another part of tessera).
pub fn console_path(path: &str) -> Option<&str> {
    let is_console =
        path == "/console" || path.starts_with("/console/") || path.starts_with("/console?");
    (is_console && path.len() <= 2000 && !path.contains(['\\', '\r', '\n']) && !path.contains("//"))
        .then_some(path)
}

/// The tokens the console holds for its admin (in an `HttpOnly` cookie, sealed, so the
/// browser can neither read nor alter them).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tokens {
    #[serde(serialize_with = "sealed")]
    pub access_token: SecretString,
    #[serde(serialize_with = "sealed")]
    pub refresh_token: SecretString,
    /// Unix seconds at which the access token expires.
    pub expires_at: i64,
}

impl Tokens {
    /// The tokens of a grant's answer; `None` without a refresh token (the console client
    /// always has the grant).
    pub fn from_issued(issued: crate::grants::IssuedTokens, now: i64) -> Option<Self> {
        Some(Tokens {
            refresh_token: issued.refresh_token?,
            access_token: issued.access_token,
            expires_at: now + issued.expires_in,
        })
    }

    /// Whether the access token should be refreshed before use at `now`.
    pub fn needs_refresh(&self, now: i64) -> bool {
        self.expires_at - now <= REFRESH_MARGIN
    }

    /// Sealed for a cookie.
    pub fn seal(&self, key: &MasterKey) -> String {
        key.seal(
            TOKENS_CONTEXT,
            &serde_json::to_vec(self).unwrap_or_default(),
        )
    }

    /// The tokens a cookie holds, if it is one of ours.
    pub fn open(key: &MasterKey, sealed: &str) -> Option<Self> {
        let bytes = key.open(TOKENS_CONTEXT, sealed).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The overview's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub users: i64,
    pub disabled_users: i64,
    pub live_sessions: i64,
    /// `login_failed` audit events in the last hour (every instance's).
    pub failed_logins_last_hour: i64,
    /// `account_locked` audit events in the last hour.
    pub lockouts_last_hour: i64,
    /// The active key of each algorithm and how long it has signed, in seconds.
    pub active_keys: Vec<ActiveKey>,
}

/// One algorithm's active key, for the overview.
#[derive(Debug, Clone, Serialize)]
pub struct ActiveKey {
    pub alg: String,
    pub kid: String,
    pub age_seconds: i64,
}

/// Counts what the overview shows, at `now_ms` (unix milliseconds, the unit of key instants).
pub fn overview(
    conn: &mut DbConnection,
    max_token_lifetime_ms: i64,
    now_ms: i64,
) -> Result<Overview> {
    let now = now_ms.div_euclid(1000);
    let hour_ago = now - 3600;
    let rows = store::signing_keys::list(conn)?;
    let active_keys = classify(&rows, now_ms, max_token_lifetime_ms)
        .into_iter()
        .filter(|k| k.status == KeyStatus::Active)
        .map(|k| ActiveKey {
            age_seconds: (now_ms - k.activates_at).max(0) / 1000,
            alg: k.alg,
            kid: k.kid,
        })
        .collect();
    Ok(Overview {
        users: store::users::count(conn, false)?,
        disabled_users: store::users::count(conn, true)?,
        live_sessions: store::sessions::count_live(conn, now)?,
        failed_logins_last_hour: store::audit::count_since(
            conn,
            crate::audit::Kind::LoginFailed.as_str(),
            hour_ago,
        )?,
        lockouts_last_hour: store::audit::count_since(
            conn,
            crate::audit::Kind::AccountLocked.as_str(),
            hour_ago,
        )?,
        active_keys,
    })
}

/// "3 d 4 h", "5 h 2 min", "12 min", "40 s": an age as people read it.
pub fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else if m > 0 {
        format!("{m} min")
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_sign_in_opens_only_with_its_key_and_within_its_lifetime() {
        let key = MasterKey::generate();
        let sign_in = SignIn::begin(1_000, "/console/keys?done=retired");
        let sealed = sign_in.seal(&key);
        let opened = SignIn::open(&key, &sealed, 1_000 + SIGN_IN_TTL).unwrap();
        assert!(opened.matches(sign_in.state.expose_secret()));
        assert_eq!(opened.return_to, "/console/keys?done=retired");
        assert!(!opened.matches("something else"));
        assert!(SignIn::open(&key, &sealed, 1_001 + SIGN_IN_TTL).is_none());
        assert!(SignIn::open(&MasterKey::generate(), &sealed, 1_000).is_none());
    }

    #[test]
    fn sealed_tokens_cannot_pass_as_a_sign_in_or_be_altered() {
        let key = MasterKey::generate();
        let tokens = Tokens {
            access_token: "a".into(),
            refresh_token: "r".into(),
            expires_at: 5,
        };
        let sealed = tokens.seal(&key);
        assert_eq!(
            Tokens::open(&key, &sealed)
                .unwrap()
                .refresh_token
                .expose_secret(),
            "r"
        );
        assert!(SignIn::open(&key, &sealed, 0).is_none());
        let mut altered = sealed.into_bytes();
        altered[20] = if altered[20] == b'A' { b'B' } else { b'A' };
        assert!(Tokens::open(&key, &String::from_utf8(altered).unwrap()).is_none());
    }

    #[test]
    fn a_sign_in_returns_only_to_console_pages() {
        assert_eq!(
            SignIn::begin(0, "/console/users?q=a").return_to,
            "/console/users?q=a"
        );
        for elsewhere in [
            "https://evil.example/",
            "//evil.example",
            "/account",
            "/consolex",
            "/console//x",
        ] {
            assert_eq!(
                SignIn::begin(0, elsewhere).return_to,
                "/console",
                "{elsewhere}"
            );
        }
    }

    #[test]
    fn tokens_are_refreshed_a_minute_before_they_expire() {
        let tokens = Tokens {
            access_token: String::new().into(),
            refresh_token: String::new().into(),
            expires_at: 1_000,
        };
        assert!(!tokens.needs_refresh(1_000 - REFRESH_MARGIN - 1));
        assert!(tokens.needs_refresh(1_000 - REFRESH_MARGIN));
        assert!(tokens.needs_refresh(2_000));
    }

    #[test]
    fn durations_read_like_people_say_them() {
        assert_eq!(human_duration(40), "40 s");
        assert_eq!(human_duration(12 * 60 + 5), "12 min");
        assert_eq!(human_duration(5 * 3600 + 120), "5 h 2 min");
        assert_eq!(human_duration(3 * 86_400 + 4 * 3600), "3 d 4 h");
    }
}
