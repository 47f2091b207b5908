//! A resource server in Rust (actix-web + jsonwebtoken) that verifies tessera's access tokens
//! offline. It finds the JWKS through tessera's discovery document, keeps the keys in memory,
//! and fetches them again only when a token names a `kid` it does not know (a rotation), at
//! most once per `min_refresh`, so forged kids cannot make it hammer tessera and a tessera
//! outage does not stop it verifying tokens signed by keys it already has.
//!
//! ```text
//! TESSERA_ISSUER=http://127.0.0.1:8080 cargo run --example rust_resource_server
//! curl -H "Authorization: Bearer $ACCESS_TOKEN" http://127.0.0.1:8081/api/me
//! ```
//!
//! Revocation: with `TESSERA_FEED_CLIENT_ID` and `TESSERA_FEED_CLIENT_SECRET` (a
//! confidential client of tessera) it keeps a local set of revoked sessions, tokens and keys
//! fed by tessera's revocation feed (`GET /revocations`, long-polled in the background), and
//! refuses a token whose `sid`, `jti` or `kid` is in it: a revoked session stops working here
//! within about a second while the feed is reachable, and within its token lifetime if not.
//! After an outage it carries on from its last cursor; a refused cursor, or a restart, reads
//! the whole feed again (no `since`).
//!
//! Settings: `TESSERA_ISSUER` (tessera's issuer URL, also where discovery is fetched),
//! `TESSERA_AUDIENCE` (the `aud` this API accepts; default: the issuer), `LISTEN` (default
//! `127.0.0.1:8081`), `TESSERA_FEED_CLIENT_ID`, `TESSERA_FEED_CLIENT_SECRET`.
//!
//! Routes: `GET /api/me` (any access token), `GET /api/admin/reports` (role `admin`),
//! `POST /api/account/delete` (a fresh token: straight from a password or MFA login, not
//! from a refresh).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::dev::Server;
use actix_web::http::{header, StatusCode};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer, ResponseError};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};

/// Allowed clock skew on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// The claims this API uses from a tessera access token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub scope: String,
    /// `true` only when issued straight from a credential check.
    #[serde(default)]
    pub fresh: bool,
    /// `access` for access tokens; refresh tokens say `refresh`.
    #[serde(rename = "type")]
    pub token_type: String,
    pub exp: i64,
    /// The session; absent for client_credentials tokens.
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub jti: String,
}

/// What tessera's revocation feed says is revoked, each with the instant (Unix seconds)
/// after which no token it affects can be valid anyway.
#[derive(Debug, Default)]
struct Revoked {
    sessions: HashMap<String, i64>,
    tokens: HashMap<String, i64>,
    keys: HashMap<String, i64>,
}

impl Revoked {
    fn add(&mut self, item: &serde_json::Value) {
        let (Some(kind), Some(id), Some(until)) = (
            item["type"].as_str(),
            item["id"].as_str(),
            item["until"].as_i64(),
        ) else {
            return;
        };
        let set = match kind {
            "session" => &mut self.sessions,
            "token" => &mut self.tokens,
            "key" => &mut self.keys,
            _ => return,
        };
        set.insert(id.to_string(), until);
    }

    /// Forgets entries whose tokens have all expired.
    fn prune(&mut self, now: i64) {
        for set in [&mut self.sessions, &mut self.tokens, &mut self.keys] {
            set.retain(|_, until| *until >= now);
        }
    }
}

/// A local copy of tessera's revocation feed (`GET /revocations`), kept current by a
/// background task that long-polls it with the cursor of its last answer.
pub struct RevocationFeed {
    url: String,
    client_id: String,
    client_secret: String,
    http: reqwest::Client,
    revoked: RwLock<Revoked>,
    synced: AtomicBool,
}

impl RevocationFeed {
    /// The feed of the tessera at `issuer`, read as the confidential client given.
    pub fn new(issuer: &str, client_id: &str, client_secret: &str) -> Result<Arc<Self>, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(45))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Arc::new(RevocationFeed {
            url: format!("{}/revocations", issuer.trim_end_matches('/')),
            client_id: client_id.to_string(),
            client_secret: client_secret.to_string(),
            http,
            revoked: RwLock::new(Revoked::default()),
            synced: AtomicBool::new(false),
        }))
    }

    /// Whether the whole feed has been read once (until then only the signature counts).
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Relaxed)
    }

    /// Whether a token with this `kid`, `sid` and `jti` is revoked.
    pub fn is_revoked(&self, kid: &str, sid: Option<&str>, jti: &str) -> bool {
        let revoked = self.revoked.read().unwrap_or_else(|e| e.into_inner());
        revoked.keys.contains_key(kid)
            || sid.is_some_and(|sid| revoked.sessions.contains_key(sid))
            || revoked.tokens.contains_key(jti)
    }

    /// One request: without a cursor the whole feed at once, with one a wait of up to 30 s
    /// for what is newer. Returns the next cursor.
    async fn poll(&self, cursor: Option<&str>) -> Result<String, Option<u16>> {
        let mut request = self
            .http
            .get(&self.url)
            .basic_auth(&self.client_id, Some(&self.client_secret));
        request = match cursor {
            Some(cursor) => request.query(&[("since", cursor), ("wait", "30")]),
            None => request,
        };
        let response = request.send().await.map_err(|_| None)?;
        if !response.status().is_success() {
            return Err(Some(response.status().as_u16()));
        }
        let page: serde_json::Value = response.json().await.map_err(|_| None)?;
        let next = page["next_cursor"].as_str().ok_or(None)?.to_string();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut revoked = self.revoked.write().unwrap_or_else(|e| e.into_inner());
        for item in page["items"].as_array().into_iter().flatten() {
            revoked.add(item);
        }
        revoked.prune(now);
        Ok(next)
    }

    /// Follows the feed until the task is dropped: a refused cursor (400) starts again from
    /// the whole feed; an outage is retried with backoff, keeping the cursor, so nothing
    /// revoked meanwhile is missed.
    pub async fn run(self: Arc<Self>) {
        let mut cursor: Option<String> = None;
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.poll(cursor.as_deref()).await {
                Ok(next) => {
                    cursor = Some(next);
                    self.synced.store(true, Ordering::Relaxed);
                    backoff = Duration::from_millis(250);
                }
                Err(Some(400)) => cursor = None,
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}

/// Why a request was refused, as an RFC 6750 error.
#[derive(Debug)]
pub struct AuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl AuthError {
    fn invalid_token(description: impl Into<String>) -> Self {
        AuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_token",
            description: description.into(),
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.description)
    }
}

impl ResponseError for AuthError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((
                header::WWW_AUTHENTICATE,
                format!(r#"Bearer realm="api", error="{}""#, self.code),
            ));
        }
        response.json(serde_json::json!({
            "error": self.code,
            "error_description": self.description,
        }))
    }
}

/// Verifies tessera access tokens with a cached JWKS.
pub struct Verifier {
    issuer: String,
    audience: String,
    jwks_uri: String,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    /// When the JWKS was last fetched (or tried); held while fetching, so concurrent requests
    /// with a new kid fetch once.
    last_fetch: tokio::sync::Mutex<Instant>,
    min_refresh: Duration,
    fetches: AtomicUsize,
    feed: Option<Arc<RevocationFeed>>,
}

impl Verifier {
    /// Reads tessera's discovery document at `issuer` and fetches the JWKS it names.
    pub async fn discover(
        issuer: &str,
        audience: &str,
        min_refresh: Duration,
    ) -> Result<Arc<Verifier>, String> {
        Self::discover_with_feed(issuer, audience, min_refresh, None).await
    }

    /// [`Verifier::discover`], also refusing what `feed` says is revoked.
    pub async fn discover_with_feed(
        issuer: &str,
        audience: &str,
        min_refresh: Duration,
        feed: Option<Arc<RevocationFeed>>,
    ) -> Result<Arc<Verifier>, String> {
        let issuer = issuer.trim_end_matches('/').to_string();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let url = format!("{issuer}/.well-known/oauth-authorization-server");
        let document: serde_json::Value = http
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("fetching {url}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("reading {url}: {e}"))?;
        // RFC 8414 §3.3: the document must name the issuer it was fetched for.
        if document["issuer"].as_str() != Some(issuer.as_str()) {
            return Err(format!("{url} names another issuer"));
        }
        let jwks_uri = document["jwks_uri"]
            .as_str()
            .ok_or_else(|| format!("{url} has no jwks_uri"))?
            .to_string();
        let verifier = Verifier {
            issuer,
            audience: audience.to_string(),
            jwks_uri,
            http,
            keys: RwLock::new(HashMap::new()),
            last_fetch: tokio::sync::Mutex::new(Instant::now()),
            min_refresh,
            fetches: AtomicUsize::new(0),
            feed,
        };
        verifier.fetch_keys().await?;
        Ok(Arc::new(verifier))
    }

    /// How many times the JWKS was fetched (or tried).
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::Relaxed)
    }

    /// Replaces the cached keys with the JWKS's RS256 signing keys.
    async fn fetch_keys(&self) -> Result<(), String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let set: JwkSet = self
            .http
            .get(&self.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| format!("fetching the JWKS: {e}"))?
            .json()
            .await
            .map_err(|e| format!("reading the JWKS: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in &set.keys {
            let Some(kid) = &jwk.common.key_id else {
                continue;
            };
            if !matches!(jwk.algorithm, AlgorithmParameters::RSA(_)) {
                continue;
            }
            if let Ok(key) = DecodingKey::from_jwk(jwk) {
                keys.insert(kid.clone(), key);
            }
        }
        *self.keys.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    fn cached(&self, kid: &str) -> Option<DecodingKey> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(kid)
            .cloned()
    }

    /// The key for `kid`, fetching the JWKS again if it is unknown and the last fetch is
    /// older than `min_refresh`.
    async fn key_for(&self, kid: &str) -> Option<DecodingKey> {
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        let mut last_fetch = self.last_fetch.lock().await;
        // Another request may have fetched it while this one waited.
        if let Some(key) = self.cached(kid) {
            return Some(key);
        }
        if last_fetch.elapsed() < self.min_refresh {
            return None;
        }
        *last_fetch = Instant::now();
        if let Err(e) = self.fetch_keys().await {
            // Keep the keys we have: tokens they signed still verify while tessera is down.
            eprintln!("JWKS refresh failed: {e}");
        }
        self.cached(kid)
    }

    /// Verifies an access token: RS256 only, `typ` `at+jwt`, a known `kid`, the issuer, the
    /// audience, `exp`/`nbf`, and `type` `access` (a refresh token is signed by the same keys
    /// and, with the default audience, names the same audience).
    pub async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::invalid_token("malformed token"))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthError::invalid_token("unsupported algorithm"));
        }
        if header.typ.as_deref() != Some("at+jwt") {
            return Err(AuthError::invalid_token("not an access token"));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthError::invalid_token("token has no kid"))?;
        let key = self
            .key_for(&kid)
            .await
            .ok_or_else(|| AuthError::invalid_token("unknown signing key"))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e
            .kind()
        {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                AuthError::invalid_token("token expired")
            }
            _ => AuthError::invalid_token("invalid token"),
        })?;
        if data.claims.token_type != "access" {
            return Err(AuthError::invalid_token("not an access token"));
        }
        if let Some(feed) = &self.feed {
            if feed.is_revoked(&kid, data.claims.sid.as_deref(), &data.claims.jti) {
                return Err(AuthError::invalid_token("token revoked"));
            }
        }
        Ok(data.claims)
    }

    /// Verifies the request's `Authorization: Bearer` token.
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Claims, AuthError> {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| AuthError::invalid_token("missing bearer token"))?;
        self.verify(token.trim()).await
    }
}

async fn me(req: HttpRequest, verifier: web::Data<Verifier>) -> Result<HttpResponse, AuthError> {
    let claims = verifier.authenticate(&req).await?;
    Ok(HttpResponse::Ok().json(claims))
}

async fn admin_reports(
    req: HttpRequest,
    verifier: web::Data<Verifier>,
) -> Result<HttpResponse, AuthError> {
    let claims = verifier.authenticate(&req).await?;
    if !claims.roles.iter().any(|r| r == "admin") {
        return Err(AuthError {
            status: StatusCode::FORBIDDEN,
            code: "insufficient_scope",
            description: "the admin role is required".into(),
        });
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "reports": [], "for": claims.sub })))
}

async fn delete_account(
    req: HttpRequest,
    verifier: web::Data<Verifier>,
) -> Result<HttpResponse, AuthError> {
    let claims = verifier.authenticate(&req).await?;
    if !claims.fresh {
        // RFC 9470 step-up: the client must log in again, not just refresh.
        return Err(AuthError {
            status: StatusCode::UNAUTHORIZED,
            code: "insufficient_user_authentication",
            description: "a fresh login is required".into(),
        });
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "deleted": claims.sub })))
}

/// The API's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/me", web::get().to(me))
        .route("/api/admin/reports", web::get().to(admin_reports))
        .route("/api/account/delete", web::post().to(delete_account));
}

/// The API on `listener`; it runs when awaited.
pub fn server(verifier: Arc<Verifier>, listener: TcpListener) -> std::io::Result<Server> {
    let verifier = web::Data::from(verifier);
    Ok(
        HttpServer::new(move || App::new().app_data(verifier.clone()).configure(configure))
            .workers(1)
            .listen(listener)?
            .run(),
    )
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let issuer = std::env::var("TESSERA_ISSUER").unwrap_or_else(|_| "http://127.0.0.1:8080".into());
    let audience = std::env::var("TESSERA_AUDIENCE").unwrap_or_else(|_| issuer.clone());
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:8081".into());
    let feed = match (
        std::env::var("TESSERA_FEED_CLIENT_ID"),
        std::env::var("TESSERA_FEED_CLIENT_SECRET"),
    ) {
        (Ok(id), Ok(secret)) => {
            let feed = RevocationFeed::new(&issuer, &id, &secret).map_err(std::io::Error::other)?;
            actix_web::rt::spawn(feed.clone().run());
            Some(feed)
        }
        _ => None,
    };
    let verifier = Verifier::discover_with_feed(&issuer, &audience, Duration::from_secs(30), feed)
        .await
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(&listen)?;
    println!("verifying tokens from {issuer}; listening on http://{listen}");
    server(verifier, listener)?.await
}
