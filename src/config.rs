//! Configuration: clap flags and `TESSERA_*` environment variables (a flag wins), checked
//! into a [`Settings`] before anything is created or migrated.
//!
//! Every value is taken as text and parsed here, so that a bad value stops start-up with one
//! line naming the environment variable, as the contract asks.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use ipnet::IpNet;

use crate::clients::parse_scopes;
use crate::passwords::Argon2Params;
use crate::ratelimit::{parse_rate, Rate};
use crate::store::DatabaseUrl;
use crate::tokens::algs::SigningAlg;
use crate::tokens::keygen::KeySource;

/// The raw configuration, as clap reads it from flags and the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// Database: `sqlite://PATH` (relative to the working directory) or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DATABASE_URL",
        default_value = "sqlite://data/tessera.db",
        hide_env_values = true
    )]
    pub database_url: String,
    /// Address to listen on.
    #[arg(
        long,
        global = true,
        env = "TESSERA_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: String,
    /// Second address for `/metrics`, `/healthz` and `/readyz`; `/metrics` then leaves
    /// TESSERA_LISTEN.
    #[arg(long, global = true, env = "TESSERA_MANAGEMENT_LISTEN")]
    pub management_listen: Option<String>,
    /// The issuer URL put in `iss` and the discovery document (default: http://LISTEN).
    #[arg(long, global = true, env = "TESSERA_ISSUER")]
    pub issuer: Option<String>,
    /// Master key, base64 of 32 random bytes (prefer TESSERA_MASTER_KEY_FILE).
    #[arg(
        long,
        global = true,
        env = "TESSERA_MASTER_KEY",
        hide_env_values = true
    )]
    pub master_key: Option<String>,
    /// File holding the master key; created (mode 0600) when it does not exist.
    #[arg(long, global = true, env = "TESSERA_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Lifetime of access tokens (`900`, `15m`, `1h`).
    #[arg(
        long,
        global = true,
        env = "TESSERA_ACCESS_TOKEN_TTL",
        default_value = "15m"
    )]
    pub access_token_ttl: String,
    /// Absolute lifetime of a session and its refresh tokens.
    #[arg(
        long,
        global = true,
        env = "TESSERA_REFRESH_TOKEN_TTL",
        default_value = "30d"
    )]
    pub refresh_token_ttl: String,
    /// A session unused for this long ends (`0`: no idle timeout).
    #[arg(
        long,
        global = true,
        env = "TESSERA_SESSION_IDLE_TIMEOUT",
        default_value = "0"
    )]
    pub session_idle_timeout: String,
    /// Within this period a replayed refresh token returns the same successor (`0`: strict).
    #[arg(
        long,
        global = true,
        env = "TESSERA_REFRESH_REUSE_GRACE",
        default_value = "0"
    )]
    pub refresh_reuse_grace: String,
    /// `aud` of access tokens for clients without an audience of their own (default: issuer).
    #[arg(long, global = true, env = "TESSERA_AUDIENCE")]
    pub audience: Option<String>,
    /// Scopes the built-in `first-party` client may grant, space- or comma-separated.
    #[arg(
        long,
        global = true,
        env = "TESSERA_SCOPES",
        default_value = "profile email"
    )]
    pub scopes: String,
    /// How often the signing key rotates.
    #[arg(
        long,
        global = true,
        env = "TESSERA_KEY_ROTATION_INTERVAL",
        default_value = "30d"
    )]
    pub key_rotation_interval: String,
    /// Signing algorithms: comma-separated subset of RS256, ES256, EdDSA, including RS256.
    #[arg(
        long,
        global = true,
        env = "TESSERA_SIGNING_ALGS",
        default_value = "RS256"
    )]
    pub signing_algs: String,
    /// RSA modulus size of new signing keys: 2048, 3072 or 4096.
    #[arg(long, global = true, env = "TESSERA_KEY_BITS", default_value = "2048")]
    pub key_bits: String,
    /// How soon this instance sees key changes made by other instances.
    #[arg(
        long,
        global = true,
        env = "TESSERA_KEY_POLL_INTERVAL",
        default_value = "5s"
    )]
    pub key_poll_interval: String,
    /// `max-age` of the JWKS answer.
    #[arg(
        long,
        global = true,
        env = "TESSERA_JWKS_MAX_AGE",
        default_value = "5m"
    )]
    pub jwks_max_age: String,
    /// `open` or `closed`.
    #[arg(
        long,
        global = true,
        env = "TESSERA_REGISTRATION",
        default_value = "open"
    )]
    pub registration: String,
    /// Comma-separated origins allowed by CORS.
    #[arg(long, global = true, env = "TESSERA_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,
    /// Comma-separated IPs or CIDRs whose `X-Forwarded-For` is believed.
    #[arg(
        long,
        global = true,
        env = "TESSERA_TRUSTED_PROXIES",
        default_value = ""
    )]
    pub trusted_proxies: String,
    /// Consecutive failed logins before an account is locked (`0`: never).
    #[arg(
        long,
        global = true,
        env = "TESSERA_LOCKOUT_THRESHOLD",
        default_value = "5"
    )]
    pub lockout_threshold: String,
    /// Credential-guessing requests allowed per client address (`30/min`; `0`: no limit).
    #[arg(
        long,
        global = true,
        env = "TESSERA_LOGIN_RATE_LIMIT",
        default_value = "30/min"
    )]
    pub login_rate_limit: String,
    /// `false` drops `Secure` from cookies, for plain-http development only.
    #[arg(
        long,
        global = true,
        env = "TESSERA_COOKIE_SECURE",
        default_value = "true"
    )]
    pub cookie_secure: String,
    /// The name that titles the hosted sign-in, consent and account pages.
    #[arg(
        long,
        global = true,
        env = "TESSERA_BRAND_NAME",
        default_value = "tessera"
    )]
    pub brand_name: String,
    /// Lifetime of a browser sign-in (the `tessera_session` cookie).
    #[arg(
        long,
        global = true,
        env = "TESSERA_BROWSER_SESSION_TTL",
        default_value = "12h"
    )]
    pub browser_session_ttl: String,
    /// Argon2id memory cost in KiB (OWASP: 19456).
    #[arg(
        long,
        global = true,
        env = "TESSERA_ARGON2_MEMORY_KIB",
        default_value = "19456"
    )]
    pub argon2_memory_kib: String,
    /// Argon2id iterations (OWASP: 2).
    #[arg(
        long,
        global = true,
        env = "TESSERA_ARGON2_ITERATIONS",
        default_value = "2"
    )]
    pub argon2_iterations: String,
    /// Argon2id lanes (OWASP: 1).
    #[arg(
        long,
        global = true,
        env = "TESSERA_ARGON2_PARALLELISM",
        default_value = "1"
    )]
    pub argon2_parallelism: String,
    /// Database connections per instance.
    #[arg(
        long,
        global = true,
        env = "TESSERA_DB_POOL_SIZE",
        default_value = "16"
    )]
    pub db_pool_size: String,
    /// HTTP worker threads (default: one per core).
    #[arg(long, global = true, env = "TESSERA_WORKERS")]
    pub workers: Option<String>,
    /// How long audit events are kept.
    #[arg(
        long,
        global = true,
        env = "TESSERA_AUDIT_RETENTION",
        default_value = "90d"
    )]
    pub audit_retention: String,
    /// How often an idle outbox worker looks for mail and other messages to deliver.
    #[arg(
        long,
        global = true,
        env = "TESSERA_OUTBOX_POLL_INTERVAL",
        default_value = "2s"
    )]
    pub outbox_poll_interval: String,
    /// The wait after a failed delivery attempt, doubling with each further one (at most 1 h).
    #[arg(
        long,
        global = true,
        env = "TESSERA_OUTBOX_BACKOFF",
        default_value = "30s"
    )]
    pub outbox_backoff: String,
    /// Where mail goes: smtp://[USER:PASSWORD@]HOST[:PORT] (STARTTLS when offered),
    /// smtps://…, or file://FOLDER (one .eml per message). Unset: no mail features.
    #[arg(long, global = true, env = "TESSERA_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// A file holding the SMTP password (instead of putting it in TESSERA_SMTP_URL).
    #[arg(long, global = true, env = "TESSERA_SMTP_PASSWORD_FILE")]
    pub smtp_password_file: Option<PathBuf>,
    /// The From address of mails (default: tessera@ + the issuer's host).
    #[arg(long, global = true, env = "TESSERA_MAIL_FROM")]
    pub mail_from: Option<String>,
    /// PEM certificate chain: serve HTTPS (with TESSERA_TLS_KEY).
    #[arg(long, global = true, env = "TESSERA_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of TESSERA_TLS_CERT.
    #[arg(long, global = true, env = "TESSERA_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
}

/// Where the master key comes from.
#[derive(Clone)]
pub enum MasterKeySource {
    /// Given inline (base64), already checked.
    Inline(String),
    /// A file, created on first start when missing.
    File(PathBuf),
}

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MasterKeySource::Inline(_) => f.write_str("Inline(<redacted>)"),
            MasterKeySource::File(path) => write!(f, "File({})", path.display()),
        }
    }
}

/// The checked configuration every part of tessera is given.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseUrl,
    pub listen: SocketAddr,
    /// Where `/metrics`, `/healthz` and `/readyz` are served apart from the public listener.
    pub management_listen: Option<SocketAddr>,
    pub issuer: String,
    pub master_key: MasterKeySource,
    pub access_token_ttl: i64,
    pub refresh_token_ttl: i64,
    pub session_idle_timeout: Option<i64>,
    pub refresh_reuse_grace: i64,
    pub audience: String,
    pub scopes: Vec<String>,
    pub key_rotation_interval: i64,
    pub key_source: KeySource,
    /// The algorithms with a key lifecycle, RS256 first-class among them.
    pub signing_algs: Vec<SigningAlg>,
    pub key_poll_interval: i64,
    pub jwks_max_age: i64,
    pub registration_open: bool,
    pub cors_origins: Vec<String>,
    pub trusted_proxies: Vec<IpNet>,
    pub lockout_threshold: u32,
    pub login_rate_limit: Option<Rate>,
    pub cookie_secure: bool,
    /// Titles the hosted pages (`TESSERA_BRAND_NAME`).
    pub brand_name: String,
    /// Seconds a browser sign-in lasts (`TESSERA_BROWSER_SESSION_TTL`).
    pub browser_session_ttl: i64,
    pub argon2: Argon2Params,
    pub db_pool_size: u32,
    pub workers: usize,
    pub audit_retention: i64,
    /// Outbox polling and retry spacing.
    pub outbox: crate::outbox::RetryPolicy,
    /// Mail transport and sender, when `TESSERA_SMTP_URL` is set.
    pub mail: Option<crate::mail::MailSettings>,
    /// Certificate chain and key files when serving HTTPS.
    pub tls: Option<TlsFiles>,
}

/// PEM files for HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

fn named<T>(var: &str, flag: &str, result: Result<T>) -> Result<T> {
    result.map_err(|e| anyhow!("invalid {var} (--{flag}): {e}"))
}

impl ConfigArgs {
    /// Checks every value; the error names the first bad setting.
    pub fn into_settings(self) -> Result<Settings> {
        let database = named(
            "TESSERA_DATABASE_URL",
            "database-url",
            DatabaseUrl::parse(&self.database_url),
        )?;
        let listen: SocketAddr = named(
            "TESSERA_LISTEN",
            "listen",
            self.listen.parse().map_err(|_| {
                anyhow!(
                    "expected HOST:PORT with an IP address, got `{}`",
                    self.listen
                )
            }),
        )?;
        let management_listen = match &self.management_listen {
            None => None,
            Some(text) => Some(named(
                "TESSERA_MANAGEMENT_LISTEN",
                "management-listen",
                text.parse::<SocketAddr>()
                    .map_err(|_| anyhow!("expected HOST:PORT with an IP address, got `{text}`"))
                    .and_then(|addr| {
                        if addr == listen && addr.port() != 0 {
                            Err(anyhow!("must differ from TESSERA_LISTEN"))
                        } else {
                            Ok(addr)
                        }
                    }),
            )?),
        };
        let tls = match (&self.tls_cert, &self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                crate::tls::server_config(cert, key)?;
                Some(TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                })
            }
            (Some(_), None) => {
                bail!("invalid TESSERA_TLS_KEY (--tls-key): required with TESSERA_TLS_CERT")
            }
            (None, Some(_)) => {
                bail!("invalid TESSERA_TLS_CERT (--tls-cert): required with TESSERA_TLS_KEY")
            }
        };
        let issuer = match &self.issuer {
            Some(issuer) => named("TESSERA_ISSUER", "issuer", parse_issuer(issuer))?,
            None if tls.is_some() => format!("https://{listen}"),
            None => format!("http://{listen}"),
        };
        let master_key = match (&self.master_key, &self.master_key_file) {
            (Some(_), Some(_)) => bail!("invalid TESSERA_MASTER_KEY: set TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE, not both"),
            (Some(inline), None) => {
                named("TESSERA_MASTER_KEY", "master-key", crate::crypto::MasterKey::from_base64(inline).map(|_| ()))?;
                MasterKeySource::Inline(inline.clone())
            }
            (None, Some(path)) => MasterKeySource::File(path.clone()),
            (None, None) => MasterKeySource::File(PathBuf::from("keys/master.key")),
        };
        let access_token_ttl = named(
            "TESSERA_ACCESS_TOKEN_TTL",
            "access-token-ttl",
            positive(parse_duration(&self.access_token_ttl)),
        )?;
        let refresh_token_ttl = named(
            "TESSERA_REFRESH_TOKEN_TTL",
            "refresh-token-ttl",
            positive(parse_duration(&self.refresh_token_ttl)),
        )?;
        let idle = named(
            "TESSERA_SESSION_IDLE_TIMEOUT",
            "session-idle-timeout",
            parse_duration(&self.session_idle_timeout),
        )?;
        let refresh_reuse_grace = named(
            "TESSERA_REFRESH_REUSE_GRACE",
            "refresh-reuse-grace",
            parse_duration(&self.refresh_reuse_grace),
        )?;
        let audience = match &self.audience {
            Some(aud) if aud.trim().is_empty() => {
                bail!("invalid TESSERA_AUDIENCE (--audience): must not be empty")
            }
            Some(aud) => aud.trim().to_string(),
            None => issuer.clone(),
        };
        let scopes = named("TESSERA_SCOPES", "scopes", parse_scopes(&self.scopes))?;
        let key_rotation_interval = named(
            "TESSERA_KEY_ROTATION_INTERVAL",
            "key-rotation-interval",
            positive(parse_duration(&self.key_rotation_interval)),
        )?;
        let bits: usize = named(
            "TESSERA_KEY_BITS",
            "key-bits",
            match self.key_bits.trim() {
                "2048" => Ok(2048),
                "3072" => Ok(3072),
                "4096" => Ok(4096),
                other => Err(anyhow!("expected 2048, 3072 or 4096, got `{other}`")),
            },
        )?;
        let signing_algs = named(
            "TESSERA_SIGNING_ALGS",
            "signing-algs",
            crate::tokens::algs::parse_list(&self.signing_algs).map_err(|e| anyhow!(e)),
        )?;
        let key_poll_interval = named(
            "TESSERA_KEY_POLL_INTERVAL",
            "key-poll-interval",
            positive(parse_duration(&self.key_poll_interval)),
        )?;
        let jwks_max_age = named(
            "TESSERA_JWKS_MAX_AGE",
            "jwks-max-age",
            parse_duration(&self.jwks_max_age),
        )?;
        let registration_open = named(
            "TESSERA_REGISTRATION",
            "registration",
            match self.registration.trim() {
                "open" => Ok(true),
                "closed" => Ok(false),
                other => Err(anyhow!("expected `open` or `closed`, got `{other}`")),
            },
        )?;
        let cors_origins = named(
            "TESSERA_CORS_ORIGINS",
            "cors-origins",
            parse_origins(&self.cors_origins),
        )?;
        let trusted_proxies = named(
            "TESSERA_TRUSTED_PROXIES",
            "trusted-proxies",
            parse_networks(&self.trusted_proxies),
        )?;
        let lockout_threshold = named(
            "TESSERA_LOCKOUT_THRESHOLD",
            "lockout-threshold",
            parse_number::<u32>(&self.lockout_threshold),
        )?;
        let login_rate_limit = named(
            "TESSERA_LOGIN_RATE_LIMIT",
            "login-rate-limit",
            parse_rate(&self.login_rate_limit),
        )?;
        let cookie_secure = named(
            "TESSERA_COOKIE_SECURE",
            "cookie-secure",
            parse_bool(&self.cookie_secure),
        )?;
        let brand_name = named(
            "TESSERA_BRAND_NAME",
            "brand-name",
            match self.brand_name.trim() {
                "" => Err(anyhow!("must not be empty")),
                name if name.chars().count() > 64 => Err(anyhow!("at most 64 characters")),
                name => Ok(name.to_string()),
            },
        )?;
        let browser_session_ttl = named(
            "TESSERA_BROWSER_SESSION_TTL",
            "browser-session-ttl",
            parse_duration(&self.browser_session_ttl).and_then(|ttl| {
                if ttl > 0 {
                    Ok(ttl)
                } else {
                    Err(anyhow!("must be positive"))
                }
            }),
        )?;
        let argon2 = Argon2Params {
            memory_kib: named(
                "TESSERA_ARGON2_MEMORY_KIB",
                "argon2-memory-kib",
                parse_number(&self.argon2_memory_kib),
            )?,
            iterations: named(
                "TESSERA_ARGON2_ITERATIONS",
                "argon2-iterations",
                parse_number(&self.argon2_iterations),
            )?,
            parallelism: named(
                "TESSERA_ARGON2_PARALLELISM",
                "argon2-parallelism",
                parse_number(&self.argon2_parallelism),
            )?,
        };
        named(
            "TESSERA_ARGON2_MEMORY_KIB",
            "argon2-memory-kib",
            crate::passwords::check_params(argon2),
        )?;
        let db_pool_size: u32 = named(
            "TESSERA_DB_POOL_SIZE",
            "db-pool-size",
            parse_number(&self.db_pool_size),
        )?;
        if db_pool_size == 0 {
            bail!("invalid TESSERA_DB_POOL_SIZE (--db-pool-size): must be at least 1");
        }
        let workers = match &self.workers {
            Some(w) => named(
                "TESSERA_WORKERS",
                "workers",
                parse_number::<usize>(w).and_then(|n| {
                    if n == 0 {
                        Err(anyhow!("must be at least 1"))
                    } else {
                        Ok(n)
                    }
                }),
            )?,
            None => std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        };
        let audit_retention = named(
            "TESSERA_AUDIT_RETENTION",
            "audit-retention",
            positive(parse_duration(&self.audit_retention)),
        )?;
        let outbox_poll_interval = named(
            "TESSERA_OUTBOX_POLL_INTERVAL",
            "outbox-poll-interval",
            positive(parse_duration(&self.outbox_poll_interval)),
        )?;
        let outbox_backoff = named(
            "TESSERA_OUTBOX_BACKOFF",
            "outbox-backoff",
            positive(parse_duration(&self.outbox_backoff)),
        )?;
        let outbox = crate::outbox::RetryPolicy::new(
            std::time::Duration::from_secs(outbox_poll_interval as u64),
            outbox_backoff,
        );
        let mail = match &self.smtp_url {
            Some(url) => Some(named(
                "TESSERA_SMTP_URL",
                "smtp-url",
                crate::mail::MailSettings::parse(
                    url,
                    self.smtp_password_file.as_deref(),
                    self.mail_from.as_deref(),
                    &issuer,
                ),
            )?),
            None => None,
        };
        Ok(Settings {
            database,
            listen,
            management_listen,
            issuer,
            master_key,
            access_token_ttl,
            refresh_token_ttl,
            session_idle_timeout: (idle > 0).then_some(idle),
            refresh_reuse_grace,
            audience,
            scopes,
            key_rotation_interval,
            key_source: KeySource::Generate { bits },
            signing_algs,
            key_poll_interval,
            jwks_max_age,
            registration_open,
            cors_origins,
            trusted_proxies,
            lockout_threshold,
            login_rate_limit,
            cookie_secure,
            brand_name,
            browser_session_ttl,
            argon2,
            db_pool_size,
            workers,
            audit_retention,
            outbox,
            mail,
            tls,
        })
    }
}

/// Parses `900`, `45s`, `15m`, `12h`, `30d` into seconds.
pub fn parse_duration(text: &str) -> Result<i64> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    if digits.is_empty() {
        bail!("expected a duration such as 900, 15m or 30d, got `{text}`");
    }
    let value: i64 = digits
        .parse()
        .map_err(|_| anyhow!("`{text}` is too large"))?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("unknown unit `{unit}` in `{text}` (use s, m, h or d)"),
    };
    value
        .checked_mul(factor)
        .filter(|secs| *secs <= 10 * 365 * 86_400)
        .ok_or_else(|| anyhow!("`{text}` is longer than ten years"))
}

fn positive(value: Result<i64>) -> Result<i64> {
    match value? {
        0 => Err(anyhow!("must be longer than zero")),
        secs => Ok(secs),
    }
}

fn parse_number<T: std::str::FromStr>(text: &str) -> Result<T> {
    text.trim()
        .parse()
        .map_err(|_| anyhow!("expected a whole number, got `{text}`"))
}

fn parse_bool(text: &str) -> Result<bool> {
    match text.trim() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(anyhow!("expected true or false, got `{other}`")),
    }
}

fn parse_issuer(text: &str) -> Result<String> {
    let issuer = text.trim().trim_end_matches('/');
    let rest = issuer
        .strip_prefix("https://")
        .or_else(|| issuer.strip_prefix("http://"))
        .ok_or_else(|| anyhow!("expected an http:// or https:// URL, got `{text}`"))?;
    if rest.is_empty() || rest.contains(['?', '#', ' ']) {
        bail!("expected a URL with a host and no query or fragment, got `{text}`");
    }
    Ok(issuer.to_string())
}

fn parse_origins(text: &str) -> Result<Vec<String>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|origin| {
            let origin = origin.trim_end_matches('/');
            if origin == "*" {
                bail!("`*` cannot be used with credentials; list the origins");
            }
            if !(origin.starts_with("https://") || origin.starts_with("http://"))
                || origin.matches('/').count() != 2
            {
                bail!("`{origin}` is not an origin (scheme://host[:port])");
            }
            Ok(origin.to_string())
        })
        .collect()
}

fn parse_networks(text: &str) -> Result<Vec<IpNet>> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|item| {
            item.parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| anyhow!("`{item}` is not an IP address or CIDR"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_plain_seconds_and_units() {
        assert_eq!(parse_duration("900").unwrap(), 900);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("30d").unwrap(), 2_592_000);
        assert_eq!(parse_duration("2h").unwrap(), 7200);
        assert!(parse_duration("15x").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("-5").is_err());
    }
}
