//! Configuration: clap flags and `TESSERA_*` environment variables (a flag wins), checked
//! into a [`Settings`] before anything is created or migrated.
//!
//! Each setting is written once: its flag, its variable, its default and its parser sit in
//! one `#[arg]`. A bad value stops start-up with one line naming the variable, as the
//! contract asks: clap's answer to a value its parser refused is rewritten by
//! [`parse_error_line`], and the checks across settings in [`ConfigArgs::into_settings`] name
//! theirs through [`invalid`], both from the same `#[arg]`s.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use clap::{ArgAction, Args};
use ipnet::IpNet;
use secrecy::SecretString;

use crate::clients::parse_scopes;
use crate::passwords::Argon2Params;
use crate::ratelimit::{parse_rate, Rate};
use crate::store::DatabaseUrl;
use crate::tokens::algs::SigningAlg;
use crate::tokens::keygen::KeySource;

// Fields whose parser returns a list or an optional value name their type as
// `std::vec::Vec` / `std::option::Option`: clap reads a bare `Vec` as "repeatable" and a bare
// `Option` as "may be absent", and these are single values that are always present.

/// The configuration as clap reads it from flags and the environment, each value parsed.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArgs {
    /// Database: `sqlite://PATH` (relative to the working directory) or `postgres://…`.
    #[arg(long, global = true, env = "TESSERA_DATABASE_URL", hide_env_values = true,
          default_value = "sqlite://data/tessera.db", value_parser = DatabaseUrl::parse)]
    pub database_url: DatabaseUrl,
    /// Address to listen on.
    #[arg(long, global = true, env = "TESSERA_LISTEN", default_value = "127.0.0.1:8080",
          value_parser = parse_address)]
    pub listen: SocketAddr,
    /// Second address for `/metrics`, `/healthz` and `/readyz`; `/metrics` then leaves
    /// TESSERA_LISTEN.
    #[arg(long, global = true, env = "TESSERA_MANAGEMENT_LISTEN", value_parser = parse_address)]
    pub management_listen: Option<SocketAddr>,
    /// The issuer URL put in `iss` and the discovery document (default: http://LISTEN).
    #[arg(long, global = true, env = "TESSERA_ISSUER", value_parser = parse_issuer)]
    pub issuer: Option<String>,
    /// Master key, base64 of 32 random bytes (prefer TESSERA_MASTER_KEY_FILE).
    #[arg(long, global = true, env = "TESSERA_MASTER_KEY", hide_env_values = true,
          value_parser = parse_master_key)]
    pub master_key: Option<SecretString>,
    /// File holding the master key; created (mode 0600) when it does not exist.
    #[arg(long, global = true, env = "TESSERA_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Lifetime of access tokens (`900`, `15m`, `1h`).
    #[arg(long, global = true, env = "TESSERA_ACCESS_TOKEN_TTL", default_value = "15m",
          value_parser = positive_duration)]
    pub access_token_ttl: i64,
    /// Absolute lifetime of a session and its refresh tokens.
    #[arg(long, global = true, env = "TESSERA_REFRESH_TOKEN_TTL", default_value = "30d",
          value_parser = positive_duration)]
    pub refresh_token_ttl: i64,
    /// A session unused for this long ends (`0`: no idle timeout).
    #[arg(long, global = true, env = "TESSERA_SESSION_IDLE_TIMEOUT", default_value = "0",
          value_parser = optional_duration)]
    pub session_idle_timeout: std::option::Option<i64>,
    /// Within this period a replayed refresh token returns the same successor (`0`: strict).
    #[arg(long, global = true, env = "TESSERA_REFRESH_REUSE_GRACE", default_value = "0",
          value_parser = parse_duration)]
    pub refresh_reuse_grace: i64,
    /// `aud` of access tokens for clients without an audience of their own (default: issuer).
    #[arg(long, global = true, env = "TESSERA_AUDIENCE", value_parser = not_empty)]
    pub audience: Option<String>,
    /// Scopes the built-in `first-party` client may grant, space- or comma-separated.
    #[arg(long, global = true, env = "TESSERA_SCOPES", default_value = "profile email",
          value_parser = parse_scopes)]
    pub scopes: std::vec::Vec<String>,
    /// How often the signing key rotates.
    #[arg(long, global = true, env = "TESSERA_KEY_ROTATION_INTERVAL", default_value = "30d",
          value_parser = positive_duration)]
    pub key_rotation_interval: i64,
    /// Signing algorithms: comma-separated subset of RS256, ES256, EdDSA, including RS256.
    #[arg(long, global = true, env = "TESSERA_SIGNING_ALGS", default_value = "RS256",
          value_parser = crate::tokens::algs::parse_list)]
    pub signing_algs: std::vec::Vec<SigningAlg>,
    /// RSA modulus size of new signing keys: 2048, 3072 or 4096.
    #[arg(long, global = true, env = "TESSERA_KEY_BITS", default_value = "2048",
          value_parser = parse_key_bits)]
    pub key_bits: usize,
    /// How soon this instance sees key changes made by other instances.
    #[arg(long, global = true, env = "TESSERA_KEY_POLL_INTERVAL", default_value = "5s",
          value_parser = positive_duration)]
    pub key_poll_interval: i64,
    /// `max-age` of the JWKS answer.
    #[arg(long, global = true, env = "TESSERA_JWKS_MAX_AGE", default_value = "5m",
          value_parser = parse_duration)]
    pub jwks_max_age: i64,
    /// `open` or `closed`.
    #[arg(long = "registration", value_name = "REGISTRATION", global = true, env = "TESSERA_REGISTRATION",
          default_value = "open", value_parser = parse_registration, action = ArgAction::Set)]
    pub registration_open: bool,
    /// Comma-separated origins allowed by CORS.
    #[arg(long, global = true, env = "TESSERA_CORS_ORIGINS", default_value = "",
          value_parser = parse_origins)]
    pub cors_origins: std::vec::Vec<String>,
    /// Comma-separated IPs or CIDRs whose `X-Forwarded-For` is believed.
    #[arg(long, global = true, env = "TESSERA_TRUSTED_PROXIES", default_value = "",
          value_parser = parse_networks)]
    pub trusted_proxies: std::vec::Vec<IpNet>,
    /// Consecutive failed logins before an account is locked (`0`: never).
    #[arg(long, global = true, env = "TESSERA_LOCKOUT_THRESHOLD", default_value = "5",
          value_parser = parse_number::<u32>)]
    pub lockout_threshold: u32,
    /// Credential-guessing requests allowed per client address (`30/min`; `0`: no limit).
    #[arg(long, global = true, env = "TESSERA_LOGIN_RATE_LIMIT", default_value = "30/min",
          value_parser = parse_rate)]
    pub login_rate_limit: std::option::Option<Rate>,
    /// `false` drops `Secure` from cookies, for plain-http development only.
    #[arg(long, global = true, env = "TESSERA_COOKIE_SECURE", default_value = "true",
          value_parser = parse_bool, action = ArgAction::Set)]
    pub cookie_secure: bool,
    /// The name that titles the hosted sign-in, consent and account pages.
    #[arg(long, global = true, env = "TESSERA_BRAND_NAME", default_value = "tessera",
          value_parser = parse_brand_name)]
    pub brand_name: String,
    /// Lifetime of a browser sign-in (the `tessera_session` cookie).
    #[arg(long, global = true, env = "TESSERA_BROWSER_SESSION_TTL", default_value = "12h",
          value_parser = positive_duration)]
    pub browser_session_ttl: i64,
    /// Argon2id memory cost in KiB (OWASP: 19456).
    #[arg(long, global = true, env = "TESSERA_ARGON2_MEMORY_KIB", default_value = "19456",
          value_parser = parse_number::<u32>)]
    pub argon2_memory_kib: u32,
    /// Argon2id iterations (OWASP: 2).
    #[arg(long, global = true, env = "TESSERA_ARGON2_ITERATIONS", default_value = "2",
          value_parser = parse_number::<u32>)]
    pub argon2_iterations: u32,
    /// Argon2id lanes (OWASP: 1).
    #[arg(long, global = true, env = "TESSERA_ARGON2_PARALLELISM", default_value = "1",
          value_parser = parse_number::<u32>)]
    pub argon2_parallelism: u32,
    /// Database connections per instance.
    #[arg(long, global = true, env = "TESSERA_DB_POOL_SIZE", default_value = "16",
          value_parser = at_least_one::<u32>)]
    pub db_pool_size: u32,
    /// HTTP worker threads (default: one per core).
    #[arg(long, global = true, env = "TESSERA_WORKERS", value_parser = at_least_one::<usize>)]
    pub workers: Option<usize>,
    /// How long audit events are kept.
    #[arg(long, global = true, env = "TESSERA_AUDIT_RETENTION", default_value = "90d",
          value_parser = positive_duration)]
    pub audit_retention: i64,
    /// How often an idle outbox worker looks for mail and other messages to deliver.
    #[arg(long, global = true, env = "TESSERA_OUTBOX_POLL_INTERVAL", default_value = "2s",
          value_parser = positive_duration)]
    pub outbox_poll_interval: i64,
    /// The wait after a failed delivery attempt, doubling with each further one (at most 1 h).
    #[arg(long, global = true, env = "TESSERA_OUTBOX_BACKOFF", default_value = "30s",
          value_parser = positive_duration)]
    pub outbox_backoff: i64,
    /// Where mail goes: smtp://[USER:PASSWORD@]HOST[:PORT] (STARTTLS when offered),
    /// smtps://…, or file://FOLDER (one .eml per message). Unset: no mail features.
    #[arg(long, global = true, env = "TESSERA_SMTP_URL", hide_env_values = true,
          value_parser = secret)]
    pub smtp_url: Option<SecretString>,
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
#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// Given inline (base64), already checked.
    Inline(SecretString),
    /// A file, created on first start when missing.
    File(PathBuf),
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

/// `TESSERA_X (--x)` for the setting `matches` picks (by its clap id, which is its field's
/// name, or by its flag), read from the setting's own `#[arg]`.
fn setting_name(matches: impl Fn(&clap::Arg) -> bool) -> Option<String> {
    let command = ConfigArgs::augment_args(clap::Command::new("tessera"));
    let arg = command.get_arguments().find(|arg| matches(arg))?;
    let long = arg.get_long()?;
    let env = arg.get_env()?.to_string_lossy().into_owned();
    Some(format!("{env} (--{long})"))
}

/// The error for a setting (named by its field) that is fine alone but not with the others.
fn invalid(field: &str, why: impl std::fmt::Display) -> anyhow::Error {
    let name = setting_name(|arg| arg.get_id() == field).unwrap_or_else(|| field.to_string());
    anyhow!("invalid {name}: {why}")
}

/// The one line for a command line clap refused because a setting's parser refused its
/// value: `invalid TESSERA_X (--x): why`. The value itself is left out (it may be a
/// secret). `None` for every other kind of refusal, which clap explains better itself.
pub fn parse_error_line(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if error.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let Some(ContextValue::String(arg)) = error.get(ContextKind::InvalidArg) else {
        return None;
    };
    // clap names the argument as `--long <VALUE>`.
    let long = arg.strip_prefix("--")?.split([' ', '=']).next()?;
    let name = setting_name(|candidate| candidate.get_long() == Some(long))?;
    let why = std::error::Error::source(error)
        .map(|source| source.to_string())
        .unwrap_or_else(|| "not a valid value".into());
    Some(format!("invalid {name}: {why}"))
}

/// Parses the whole command line; a bad setting ends the process with its one line.
pub fn parse_command_line<T: clap::Parser>() -> T {
    T::try_parse().unwrap_or_else(|error| match parse_error_line(&error) {
        Some(line) => {
            eprintln!("error: {line}");
            std::process::exit(1);
        }
        None => error.exit(),
    })
}

impl ConfigArgs {
    /// Checks what no single setting can check alone and fills in the defaults that depend
    /// on other settings; the error names the first bad setting.
    pub fn into_settings(self) -> Result<Settings> {
        if let Some(management) = self.management_listen {
            if management == self.listen && management.port() != 0 {
                return Err(invalid(
                    "management_listen",
                    "must differ from TESSERA_LISTEN",
                ));
            }
        }
        let tls = match (self.tls_cert, self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => {
                crate::tls::server_config(&cert, &key)?;
                Some(TlsFiles { cert, key })
            }
            (Some(_), None) => return Err(invalid("tls_key", "required with TESSERA_TLS_CERT")),
            (None, Some(_)) => return Err(invalid("tls_cert", "required with TESSERA_TLS_KEY")),
        };
        let issuer = match self.issuer {
            Some(issuer) => issuer,
            None if tls.is_some() => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        };
        let master_key = match (self.master_key, self.master_key_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "master_key",
                    "set TESSERA_MASTER_KEY or TESSERA_MASTER_KEY_FILE, not both",
                ))
            }
            (Some(inline), None) => MasterKeySource::Inline(inline),
            (None, Some(path)) => MasterKeySource::File(path),
            (None, None) => MasterKeySource::File(PathBuf::from("keys/master.key")),
        };
        let argon2 = Argon2Params {
            memory_kib: self.argon2_memory_kib,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        };
        crate::passwords::check_params(argon2).map_err(|e| invalid("argon2_memory_kib", e))?;
        let workers = self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2)
        });
        let outbox = crate::outbox::RetryPolicy::new(
            std::time::Duration::from_secs(self.outbox_poll_interval as u64),
            self.outbox_backoff,
        );
        let mail = match &self.smtp_url {
            Some(url) => Some(
                crate::mail::MailSettings::parse(
                    secrecy::ExposeSecret::expose_secret(url),
                    self.smtp_password_file.as_deref(),
                    self.mail_from.as_deref(),
                    &issuer,
                )
                .map_err(|e| invalid("smtp_url", e))?,
            ),
            None => None,
        };
        Ok(Settings {
            database: self.database_url,
            listen: self.listen,
            management_listen: self.management_listen,
            audience: self.audience.unwrap_or_else(|| issuer.clone()),
            issuer,
            master_key,
            access_token_ttl: self.access_token_ttl,
            refresh_token_ttl: self.refresh_token_ttl,
            session_idle_timeout: self.session_idle_timeout,
            refresh_reuse_grace: self.refresh_reuse_grace,
            scopes: self.scopes,
            key_rotation_interval: self.key_rotation_interval,
            key_source: KeySource::Generate {
                bits: self.key_bits,
            },
            signing_algs: self.signing_algs,
            key_poll_interval: self.key_poll_interval,
            jwks_max_age: self.jwks_max_age,
            registration_open: self.registration_open,
            cors_origins: self.cors_origins,
            trusted_proxies: self.trusted_proxies,
            lockout_threshold: self.lockout_threshold,
            login_rate_limit: self.login_rate_limit,
            cookie_secure: self.cookie_secure,
            brand_name: self.brand_name,
            browser_session_ttl: self.browser_session_ttl,
            argon2,
            db_pool_size: self.db_pool_size,
            workers,
            audit_retention: self.audit_retention,
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

fn positive_duration(text: &str) -> Result<i64> {
    match parse_duration(text)? {
        0 => Err(anyhow!("must be longer than zero")),
        secs => Ok(secs),
    }
}

/// A duration where `0` means "none".
fn optional_duration(text: &str) -> Result<Option<i64>> {
    Ok(Some(parse_duration(text)?).filter(|secs| *secs > 0))
}

fn parse_address(text: &str) -> Result<SocketAddr> {
    text.trim()
        .parse()
        .map_err(|_| anyhow!("expected HOST:PORT with an IP address, got `{text}`"))
}

fn parse_master_key(text: &str) -> Result<SecretString> {
    crate::crypto::MasterKey::from_base64(text)?;
    Ok(SecretString::from(text))
}

fn secret(text: &str) -> Result<SecretString> {
    Ok(SecretString::from(text))
}

fn not_empty(text: &str) -> Result<String> {
    match text.trim() {
        "" => Err(anyhow!("must not be empty")),
        text => Ok(text.to_string()),
    }
}

fn parse_key_bits(text: &str) -> Result<usize> {
    match text.trim() {
        "2048" => Ok(2048),
        "3072" => Ok(3072),
        "4096" => Ok(4096),
        other => Err(anyhow!("expected 2048, 3072 or 4096, got `{other}`")),
    }
}

fn parse_registration(text: &str) -> Result<bool> {
    match text.trim() {
        "open" => Ok(true),
        "closed" => Ok(false),
        other => Err(anyhow!("expected `open` or `closed`, got `{other}`")),
    }
}

fn parse_brand_name(text: &str) -> Result<String> {
    match text.trim() {
        "" => Err(anyhow!("must not be empty")),
        name if name.chars().count() > 64 => Err(anyhow!("at most 64 characters")),
        name => Ok(name.to_string()),
    }
}

fn at_least_one<T: std::str::FromStr + PartialOrd + From<u8>>(text: &str) -> Result<T> {
    let value: T = parse_number(text)?;
    if value < T::from(1) {
        bail!("must be at least 1");
    }
    Ok(value)
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
