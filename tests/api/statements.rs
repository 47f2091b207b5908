//! Database statements per request, counted by a diesel instrumentation on the server's own
//! connections (the test binary installs it; the server has no hook for it): the hot paths
//! stay at one statement or none, and the raw SQL of the refresh runs as a cached prepared
//! statement. Counted: every statement a request thread sends, `BEGIN` and `COMMIT`
//! included. Not counted: the upkeep thread's polls and the outbox workers' claims (threads
//! of their own, not requests), a connection's set-up (`PRAGMA`), and
//! the pool's `SELECT 1` before reusing a connection idle for more than a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use diesel::connection::{Instrumentation, InstrumentationEvent};

use crate::helpers::*;

/// What the watched connections sent, by the needle (database URL) they matched.
#[derive(Default)]
struct Log {
    watched: Vec<String>,
    statements: HashMap<String, Vec<String>>,
    prepared: HashMap<String, Vec<String>>,
}

fn log() -> &'static Mutex<Log> {
    static LOG: OnceLock<Mutex<Log>> = OnceLock::new();
    LOG.get_or_init(|| {
        diesel::connection::set_default_instrumentation(|| Some(Box::new(Counter::default())))
            .expect("installing the statement counter");
        Mutex::new(Log::default())
    })
}

/// One connection's instrumentation: inert unless its URL is watched.
#[derive(Default)]
struct Counter {
    needle: Option<String>,
}

impl Instrumentation for Counter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        match event {
            InstrumentationEvent::StartEstablishConnection { url, .. } => {
                let log = log().lock().unwrap();
                self.needle = log
                    .watched
                    .iter()
                    .find(|n| url.contains(n.as_str()))
                    .cloned();
            }
            InstrumentationEvent::StartQuery { query, .. } => {
                let Some(needle) = &self.needle else { return };
                let thread = std::thread::current();
                let name = thread.name().unwrap_or("");
                if name == "tessera-upkeep" || name.starts_with("tessera-outbox-") {
                    return;
                }
                let sql = query.to_string();
                let trimmed = sql.trim();
                if trimmed == "SELECT 1" || trimmed.starts_with("PRAGMA") {
                    return;
                }
                let mut log = log().lock().unwrap();
                log.statements.entry(needle.clone()).or_default().push(sql);
            }
            InstrumentationEvent::CacheQuery { sql, .. } => {
                let Some(needle) = &self.needle else { return };
                let mut log = log().lock().unwrap();
                log.prepared
                    .entry(needle.clone())
                    .or_default()
                    .push(sql.to_string());
            }
            _ => {}
        }
    }
}

/// A server whose database connections are counted.
struct Watched {
    app: TestApp,
    needle: String,
}

impl Watched {
    async fn spawn(backend: Backend) -> Self {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let database = fresh_database(&backend, dir.path());
        let needle = match &database {
            tessera::store::DatabaseUrl::Sqlite(path) => path.to_string_lossy().into_owned(),
            tessera::store::DatabaseUrl::Postgres(url) => url.clone(),
        };
        log().lock().unwrap().watched.push(needle.clone());
        // A long poll interval: the cache stays fresh for the whole test on a loaded machine.
        let mut settings = test_settings(database);
        settings.key_poll_interval = 30;
        let app = start(settings, dir).await;
        Watched { app, needle }
    }

    fn sent(&self) -> usize {
        log()
            .lock()
            .unwrap()
            .statements
            .get(&self.needle)
            .map_or(0, Vec::len)
    }

    /// The statements sent since `mark` (a [`Watched::sent`] value).
    fn since(&self, mark: usize) -> Vec<String> {
        log()
            .lock()
            .unwrap()
            .statements
            .get(&self.needle)
            .map_or(Vec::new(), |all| all[mark..].to_vec())
    }

    /// How often a statement containing `fragment` was prepared for a connection's cache.
    fn prepared(&self, fragment: &str) -> usize {
        log()
            .lock()
            .unwrap()
            .prepared
            .get(&self.needle)
            .map_or(0, |all| {
                all.iter().filter(|sql| sql.contains(fragment)).count()
            })
    }

    /// Runs `request` and returns the statements it sent.
    async fn statements_of<F, T>(&self, request: F) -> (T, Vec<String>)
    where
        F: std::future::Future<Output = T>,
    {
        let mark = self.sent();
        let out = request.await;
        (out, self.since(mark))
    }
}

fn cc_form<'a>(client_id: &'a str, secret: &'a str) -> [(&'static str, &'a str); 3] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ]
}

both_backends! {
    async fn hot_paths_send_one_statement_or_none(backend) {
        let watched = Watched::spawn(backend).await;
        let app = &watched.app;
        let secret = app.confidential_client("counted");
        let user = app.user_with_tokens("counted-user").await;

        // client_credentials: the first request reads the client, the next none at all.
        let response = app.token(&cc_form("counted", &secret)).await;
        assert_eq!(response.status().as_u16(), 200);
        let (response, sent) = watched.statements_of(app.token(&cc_form("counted", &secret))).await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(sent.is_empty(), "client_credentials with a cached client: {sent:#?}");
        let service_token = tokens(response).await.access_token;

        // Introspection of a user's access token: deny list and session in one statement.
        let introspect = |token: String| {
            let secret = secret.clone();
            async move {
                app.post_form("/oauth/introspect", &[
                    ("token", token.as_str()),
                    ("client_id", "counted"),
                    ("client_secret", secret.as_str()),
                ]).await.json::<serde_json::Value>().await.unwrap()
            }
        };
        let (body, sent) = watched.statements_of(introspect(user.access_token.clone())).await;
        assert_eq!(body["active"], true);
        assert_eq!(sent.len(), 1, "introspection of a user token: {sent:#?}");
        assert!(sent[0].contains("revoked_access_tokens") && sent[0].contains("sessions"), "{sent:#?}");
        // A service token has no session: the deny list alone.
        let (body, sent) = watched.statements_of(introspect(service_token)).await;
        assert_eq!(body["active"], true);
        assert_eq!(sent.len(), 1, "introspection of a service token: {sent:#?}");

        // Refresh: one statement, prepared once per connection however many refreshes.
        let mut refresh_token = user.refresh_token.clone().unwrap();
        for _ in 0..6 {
            let (response, sent) = watched.statements_of(app.refresh(&refresh_token)).await;
            assert_eq!(response.status().as_u16(), 200);
            assert_eq!(sent.len(), 1, "a refresh: {sent:#?}");
            assert!(sent[0].contains("UPDATE sessions"), "{sent:#?}");
            refresh_token = tokens(response).await.refresh_token.unwrap();
        }
        let prepared = watched.prepared("UPDATE sessions SET refresh_hash");
        assert!(
            (1..=app.settings.db_pool_size as usize).contains(&prepared),
            "the refresh statement is prepared once per connection, not per request: {prepared}"
        );

        // A revoked session ends its access tokens: still one statement, now saying no.
        let response = app.post_form("/oauth/revoke", &[("token", refresh_token.as_str())]).await;
        assert_eq!(response.status().as_u16(), 200);
        let (body, sent) = watched.statements_of(introspect(user.access_token.clone())).await;
        assert_eq!(body, serde_json::json!({ "active": false }));
        assert_eq!(sent.len(), 1, "{sent:#?}");
    }
}
