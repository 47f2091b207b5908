//! Spawning tessera for tests: in-process on a random port, on SQLite always and on
//! PostgreSQL (one schema per test) when `TEST_POSTGRES_URL` is set, with ready-made signing
//! keys and cheap argon2 so that tests spend their time on behaviour.

#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tessera::app::Application;
use tessera::config::{MasterKeySource, Settings};
use tessera::passwords::Argon2Params;
use tessera::state::AppState;
use tessera::store::DatabaseUrl;
use tessera::tokens::keygen::KeySource;

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// PostgreSQL if `TEST_POSTGRES_URL` is set; otherwise `None` (the test is skipped),
    /// unless `TESSERA_REQUIRE_POSTGRES` says CI must run it.
    pub fn postgres() -> Option<Backend> {
        match std::env::var("TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
            _ => {
                if std::env::var("TESSERA_REQUIRE_POSTGRES").is_ok_and(|v| v == "1") {
                    panic!("TESSERA_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set");
                }
                eprintln!("skipped: TEST_POSTGRES_URL is not set");
                None
            }
        }
    }
}

/// Runs a test body once on SQLite and once on PostgreSQL:
/// `both_backends! { async fn name(backend) { … } }` makes `name::sqlite` and
/// `name::postgres`.
macro_rules! both_backends {
    ($(async fn $name:ident($backend:ident) $body:block)*) => {$(
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            async fn case($backend: crate::helpers::Backend) $body
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                case(crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(backend) = crate::helpers::Backend::postgres() {
                    case(backend).await
                }
            }
        }
    )*};
}

/// RSA keys made once per test binary and shared by every app it spawns.
pub fn fixture_keys() -> Arc<Vec<Vec<u8>>> {
    static KEYS: OnceLock<Arc<Vec<Vec<u8>>>> = OnceLock::new();
    KEYS.get_or_init(|| {
        use rsa::pkcs8::EncodePrivateKey;
        Arc::new(
            (0..4)
                .map(|_| {
                    let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                        .expect("generating a fixture key");
                    key.to_pkcs8_der()
                        .expect("encoding a fixture key")
                        .as_bytes()
                        .to_vec()
                })
                .collect(),
        )
    })
    .clone()
}

fn init_logging() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var("TEST_LOG").is_ok() {
            let _ = env_logger::builder().is_test(true).try_init();
        }
    });
}

/// A fresh, empty database for one test: a SQLite file in `dir`, or a new schema.
pub fn fresh_database(backend: &Backend, dir: &std::path::Path) -> DatabaseUrl {
    match backend {
        Backend::Sqlite => DatabaseUrl::Sqlite(dir.join("tessera.db")),
        Backend::Postgres(base) => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut conn =
                diesel::pg::PgConnection::establish(base).expect("connecting to TEST_POSTGRES_URL");
            conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .expect("creating a test schema");
            let separator = if base.contains('?') { '&' } else { '?' };
            DatabaseUrl::Postgres(format!("{base}{separator}options=-csearch_path%3D{schema}"))
        }
    }
}

/// Settings for a test: port 0, the given database, fixture keys, cheap argon2, a random
/// master key, one worker.
pub fn test_settings(database: DatabaseUrl) -> Settings {
    let issuer = "http://tessera.test".to_string();
    Settings {
        database,
        listen: "127.0.0.1:0".parse().unwrap(),
        management_listen: None,
        issuer: issuer.clone(),
        master_key: MasterKeySource::Inline(
            tessera::crypto::MasterKey::generate().to_base64().into(),
        ),
        access_token_ttl: 900,
        refresh_token_ttl: 30 * 86_400,
        session_idle_timeout: None,
        refresh_reuse_grace: 0,
        audience: issuer,
        scopes: vec!["profile".into(), "email".into()],
        key_rotation_interval: 30 * 86_400,
        key_source: KeySource::Pool(fixture_keys()),
        signing_algs: vec![tessera::tokens::algs::SigningAlg::Rs256],
        key_poll_interval: 1,
        jwks_max_age: 300,
        registration_open: true,
        cors_origins: Vec::new(),
        trusted_proxies: Vec::new(),
        lockout_threshold: 5,
        login_rate_limit: None,
        cookie_secure: true,
        brand_name: "tessera".into(),
        browser_session_ttl: 12 * 3600,
        argon2: Argon2Params {
            memory_kib: 256,
            iterations: 1,
            parallelism: 1,
        },
        db_pool_size: 4,
        workers: 1,
        audit_retention: 90 * 86_400,
        outbox: tessera::outbox::RetryPolicy::new(std::time::Duration::from_millis(200), 1),
        mail: None,
        tls: None,
    }
}

/// A running tessera and a client to talk to it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: Arc<AppState>,
    pub settings: Settings,
    pub dir: Arc<tempfile::TempDir>,
}

/// Spawns tessera with the test settings.
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Spawns tessera after `configure` adjusts the test settings.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().expect("creating a temporary folder"));
    let mut settings = test_settings(fresh_database(&backend, dir.path()));
    configure(&mut settings);
    start(settings, dir).await
}

/// Starts tessera on exactly these settings (for a second instance on the same database).
pub async fn start(settings: Settings, dir: Arc<tempfile::TempDir>) -> TestApp {
    init_logging();
    let build_settings = settings.clone();
    let app = tokio::task::spawn_blocking(move || Application::build(build_settings))
        .await
        .unwrap()
        .expect("starting tessera");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    TestApp {
        address,
        client,
        state,
        settings,
        dir,
    }
}

/// A token response, parsed.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub body: Value,
}

/// The strong password tests use unless they test the policy.
pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// The `kid`s the JWKS publishes now.
    pub async fn jwks_kids(&self) -> Vec<String> {
        let jwks: Value = self
            .get("/.well-known/jwks.json")
            .await
            .json()
            .await
            .unwrap();
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("GET failed")
    }

    pub async fn get_bearer(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET failed")
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .expect("POST failed")
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("POST failed")
    }

    /// `POST /oauth/token` with a form.
    pub async fn token(&self, form: &[(&str, &str)]) -> Response {
        self.post_form("/oauth/token", form).await
    }

    /// Registers a user through the API; panics unless 201.
    pub async fn register(&self, username: &str, password: &str) -> Value {
        let response = self
            .post_json(
                "/register",
                &serde_json::json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering {username}"
        );
        response.json().await.unwrap()
    }

    /// Logs in with the password grant; panics unless 200.
    pub async fn login(&self, username: &str, password: &str) -> Tokens {
        let response = self
            .token(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", password),
            ])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "logging in as {username}"
        );
        tokens(response).await
    }

    /// Registers and logs in a fresh user.
    pub async fn user_with_tokens(&self, username: &str) -> Tokens {
        self.register(username, PASSWORD).await;
        self.login(username, PASSWORD).await
    }

    /// Refreshes; returns the raw response.
    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    /// Creates a user directly (roles included), as the CLI would.
    pub fn create_user(&self, username: &str, roles: &[&str]) -> String {
        let hash = self.state.hasher.hash(PASSWORD).unwrap();
        let mut conn = self.state.db.get().unwrap();
        let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        tessera::accounts::create_user(&mut conn, username, &hash, None, &roles, tessera::now())
            .unwrap()
            .id
    }

    /// Creates a confidential client directly; returns its secret.
    pub fn create_client(&self, new: tessera::clients::NewClient) -> Option<String> {
        let mut conn = self.state.db.get().unwrap();
        tessera::clients::create(&mut conn, new, tessera::now())
            .unwrap()
            .client_secret
    }

    /// A confidential client allowed client_credentials and introspection; returns its secret.
    pub fn confidential_client(&self, client_id: &str) -> String {
        self.create_client(tessera::clients::NewClient {
            client_id: client_id.into(),
            public: false,
            grant_types: Some(vec!["client_credentials".into()]),
            scopes: Some(vec!["read".into(), "write".into()]),
            ..Default::default()
        })
        .unwrap()
    }
}

/// Parses a successful token response.
pub async fn tokens(response: Response) -> Tokens {
    let body: Value = response.json().await.unwrap();
    Tokens {
        access_token: body["access_token"]
            .as_str()
            .expect("access_token")
            .to_string(),
        refresh_token: body["refresh_token"].as_str().map(str::to_string),
        body,
    }
}

/// Asserts the contract's error shape and code; returns the body.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(
        response.status().as_u16(),
        status,
        "status for expected `{code}`"
    );
    let body: Value = response.json().await.expect("error bodies are JSON");
    assert_eq!(body["error"], code, "error code in {body}");
    assert!(
        body["error_description"].is_string(),
        "error_description in {body}"
    );
    body
}

/// The claims of a JWT, without verifying it (tests verify separately).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT has three parts");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// The header of a JWT.
pub fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .unwrap(),
    )
    .unwrap()
}

/// The operator tests name when they rotate or retire keys directly.
pub fn test_operator() -> tessera::tokens::rotation::Operator {
    tessera::tokens::rotation::Operator {
        actor: "test".into(),
        ip: None,
    }
}

/// A tessera process of its own, for tests that read its output.
pub struct Process {
    pub child: std::process::Child,
    pub address: String,
    /// Where its output goes when kept: a file, not a pipe, which would fill up (a trace
    /// log does quickly) and stall the server until someone reads it.
    output: Option<std::path::PathBuf>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts `tessera serve` in `dir` with `env` added (at least the database URL and the
    /// master key); waits for `/readyz`.
    /// Its output is kept for [`Process::finish`].
    pub async fn start(dir: &std::path::Path, env: &[(&str, &str)]) -> Process {
        Self::launch(dir, env, true, None).await
    }

    /// Like [`Process::start`], under the given umask (`000`: files as open as a careless
    /// service manager leaves them).
    pub async fn start_with_umask(
        dir: &std::path::Path,
        env: &[(&str, &str)],
        umask: &str,
    ) -> Process {
        Self::launch(dir, env, true, Some(umask)).await
    }

    /// Like [`Process::start`], with the output thrown away: a process under load fills an
    /// unread pipe and then stalls.
    pub async fn start_quiet(dir: &std::path::Path, env: &[(&str, &str)]) -> Process {
        Self::launch(dir, env, false, None).await
    }

    async fn launch(
        dir: &std::path::Path,
        env: &[(&str, &str)],
        capture: bool,
        umask: Option<&str>,
    ) -> Process {
        let log_path = capture.then(|| dir.join(format!("tessera-{}.log", uuid::Uuid::new_v4())));
        let log_file = log_path
            .as_ref()
            .map(|path| std::fs::File::create(path).expect("creating the output file"));
        let output = || match &log_file {
            Some(file) => std::process::Stdio::from(file.try_clone().unwrap()),
            None => std::process::Stdio::null(),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = match umask {
            None => std::process::Command::new(env!("CARGO_BIN_EXE_tessera")),
            Some(umask) => {
                let mut shell = std::process::Command::new("sh");
                shell
                    .arg("-c")
                    .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_tessera"));
                shell
            }
        };
        for (key, _) in std::env::vars() {
            if key.starts_with("TESSERA_") || key == "RUST_LOG" {
                command.env_remove(key);
            }
        }
        command
            .current_dir(dir)
            .arg("serve")
            .env("TESSERA_LISTEN", format!("127.0.0.1:{port}"))
            .env("TESSERA_ARGON2_MEMORY_KIB", "256")
            .env("TESSERA_ARGON2_ITERATIONS", "1")
            .env("TESSERA_WORKERS", "1")
            .envs(env.iter().copied())
            .stdout(output())
            .stderr(output());
        let mut child = command.spawn().expect("starting tessera");
        let address = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while client
            .get(format!("{address}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16() != 200)
            .unwrap_or(true)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "tessera did not become ready"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("tessera exited at start-up: {status}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        Process {
            child,
            address,
            output: log_path,
        }
    }

    /// Kills the process with SIGKILL, as a crash or the OOM killer would, and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process and returns everything it wrote (nothing unless started with
    /// [`Process::start`]).
    pub fn finish(mut self) -> String {
        self.kill();
        self.output
            .as_ref()
            .map(|path| String::from_utf8_lossy(&std::fs::read(path).unwrap()).into_owned())
            .unwrap_or_default()
    }
}
