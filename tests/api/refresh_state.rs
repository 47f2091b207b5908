//! Refresh-token state on the session row (issue 23) and the refresh `aud` (SPEC §6.1):
//! storage that does not grow with refreshes, sessions and tokens from before the upgrade
//! that keep working, the grace period and reuse on the new state, and purges that run in
//! bounded batches.

use std::collections::BTreeMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use serde_json::{json, Value};
use tessera::store::DatabaseUrl;
use tessera::tokens::keyring::TokenKind;

use crate::helpers::*;

/// A connection of the test's own to the app's database, for looking at rows directly.
enum Direct {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

impl Direct {
    fn open(database: &DatabaseUrl) -> Direct {
        match database {
            DatabaseUrl::Sqlite(path) => {
                Direct::Sqlite(SqliteConnection::establish(&path.to_string_lossy()).unwrap())
            }
            DatabaseUrl::Postgres(url) => Direct::Postgres(PgConnection::establish(url).unwrap()),
        }
    }

    fn execute(&mut self, sql: &str) {
        match self {
            Direct::Sqlite(c) => c.batch_execute(sql),
            Direct::Postgres(c) => c.batch_execute(sql),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    fn count(&mut self, sql: &str) -> i64 {
        match self {
            Direct::Sqlite(c) => diesel::sql_query(sql).get_result::<Count>(c),
            Direct::Postgres(c) => diesel::sql_query(sql).get_result::<Count>(c),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .n
    }

    /// Every table tessera made, but the migration bookkeeping.
    fn tables(&mut self) -> Vec<String> {
        let sql = match self {
            Direct::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            }
            Direct::Postgres(_) => {
                "SELECT table_name::text AS name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            }
        };
        let names: Vec<Name> = match self {
            Direct::Sqlite(c) => diesel::sql_query(sql).load(c),
            Direct::Postgres(c) => diesel::sql_query(sql).load(c),
        }
        .unwrap();
        names
            .into_iter()
            .map(|n| n.name)
            .filter(|n| n != "__diesel_schema_migrations")
            .collect()
    }

    fn row_counts(&mut self) -> BTreeMap<String, i64> {
        self.tables()
            .into_iter()
            .map(|t| {
                let n = self.count(&format!("SELECT count(*) AS n FROM {t}"));
                (t, n)
            })
            .collect()
    }
}

both_backends! {
    async fn one_session_refreshed_500_times_adds_no_rows_outside_the_audit_log(backend) {
        let app = spawn_app(backend).await;
        let mut db = Direct::open(&app.settings.database);
        let tokens = app.user_with_tokens("alice").await;
        let before = db.row_counts();
        assert!(before.contains_key("sessions") && before.contains_key("audit_events"), "{before:?}");
        let mut refresh = tokens.refresh_token.unwrap();
        for _ in 0..500 {
            let response = app.refresh(&refresh).await;
            assert_eq!(response.status().as_u16(), 200);
            refresh = crate::helpers::tokens(response).await.refresh_token.unwrap();
        }
        let after = db.row_counts();
        let grown: BTreeMap<&String, i64> = after
            .iter()
            .filter(|(table, _)| table.as_str() != "audit_events")
            .map(|(table, n)| (table, n - before.get(table).copied().unwrap_or(0)))
            .filter(|(_, d)| *d != 0)
            .collect();
        let added: i64 = grown.values().sum();
        assert!(added <= 2, "500 refreshes added rows: {grown:?}");
        // The state is the session row: it names the token the client holds now.
        let hash = tessera::crypto::sha256_hex(claims(&refresh)["jti"].as_str().unwrap().as_bytes());
        let sid = claims(&refresh)["sid"].as_str().unwrap().to_string();
        assert_eq!(
            db.count(&format!("SELECT count(*) AS n FROM sessions WHERE id = '{sid}' AND refresh_hash = '{hash}'")),
            1
        );
        assert_eq!(db.count("SELECT count(*) AS n FROM refresh_tokens"), 0);
    }

    async fn a_session_from_before_the_upgrade_keeps_refreshing_with_its_old_form_token(backend) {
        let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
        let database = fresh_database(&backend, dir.path());
        let now = tessera::now();
        let expires = now + 20 * 86_400;
        let hash = |jti: &str| tessera::crypto::sha256_hex(jti.as_bytes());
        {
            // The schema and rows as the previous version left them: sessions without
            // refresh columns, one row per refresh token.
            let mut db = Direct::open(&database);
            migrate_to_before_session_state(&mut db);
            db.execute(&format!(
                "INSERT INTO users (id, username, username_lower, password_hash, roles, attributes, disabled, failed_logins, created_at, updated_at) \
                 VALUES ('u-old', 'olduser', 'olduser', 'x', '[\"editor\"]', '{{}}', FALSE, 0, {now}, {now})"
            ));
            for sid in ["s-rotated", "s-spent", "s-revoke"] {
                db.execute(&format!(
                    "INSERT INTO sessions (id, user_id, client_id, scope, amr, auth_time, created_at, last_used_at, expires_at) \
                     VALUES ('{sid}', 'u-old', 'first-party', 'profile email', '[\"pwd\"]', {t}, {t}, {t}, {expires})",
                    t = now - 600
                ));
            }
            // s-rotated was refreshed once before the upgrade: jti old-0 spent, old-1 current.
            db.execute(&format!(
                "INSERT INTO refresh_tokens (jti_hash, session_id, issued_at, expires_at, spent_at, successor_hash) VALUES \
                 ('{h0}', 's-rotated', {t0}, {expires}, {t1}, '{h1}'), \
                 ('{h1}', 's-rotated', {t1}, {expires}, NULL, NULL), \
                 ('{h2}', 's-spent', {t0}, {expires}, {t1}, '{h3}'), \
                 ('{h3}', 's-spent', {t1}, {expires}, NULL, NULL), \
                 ('{h4}', 's-revoke', {t0}, {expires}, NULL, NULL)",
                h0 = hash("old-0"), h1 = hash("old-1"), h2 = hash("old-2"), h3 = hash("old-3"), h4 = hash("old-4"),
                t0 = now - 600, t1 = now - 300
            ));
        }
        let app = start(test_settings(database.clone()), dir).await;
        // Minted with the previous shape (`aud` = the issuer) by the server's own key.
        let old_form = |jti: &str, sid: &str, iat: i64| {
            let claims = json!({
                "iss": app.settings.issuer, "sub": "u-old", "aud": app.settings.issuer,
                "iat": iat, "exp": expires, "jti": jti, "sid": sid,
                "client_id": "first-party", "type": "refresh",
            });
            app.state.keys.sign(TokenKind::Refresh, None, &claims).unwrap()
        };
        let current = old_form("old-1", "s-rotated", now - 300);
        let secret = app.confidential_client("resource-api");
        let introspect = |token: String| {
            let request = app.client.post(app.url("/oauth/introspect")).basic_auth("resource-api", Some(secret.clone()));
            async move { request.form(&[("token", token)]).send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let body = introspect(current.clone()).await;
        assert_eq!((body["active"].as_bool(), body["aud"].as_str()), (Some(true), Some(app.settings.issuer.as_str())), "{body}");
        assert_eq!(introspect(old_form("old-0", "s-rotated", now - 600)).await, json!({"active": false}));

        let refreshed = crate::helpers::tokens(app.refresh(&current).await).await;
        let successor = refreshed.refresh_token.clone().unwrap();
        assert_eq!(claims(&successor)["aud"], format!("{}/oauth/token", app.settings.issuer));
        assert_eq!(claims(&successor)["sid"], "s-rotated");
        assert_eq!(claims(&refreshed.access_token)["roles"], json!(["editor"]));
        assert_eq!(introspect(successor.clone()).await["active"], true);
        assert_eq!(introspect(current.clone()).await, json!({"active": false}));
        let mut db = Direct::open(&database);
        assert_eq!(
            db.count("SELECT count(*) AS n FROM refresh_tokens WHERE session_id = 's-rotated'"),
            0,
            "the session moved onto its row and its legacy rows went"
        );
        let refreshed = crate::helpers::tokens(app.refresh(&successor).await).await;
        let successor = refreshed.refresh_token.unwrap();
        // The old-form token, spent, is reuse now that the session lives on its row.
        assert_error(app.refresh(&current).await, 400, "invalid_grant").await;
        let body = assert_error(app.refresh(&successor).await, 400, "invalid_grant").await;
        assert_eq!(body["error_description"], "session revoked");

        // A token spent before the upgrade is reuse too, and ends its session.
        assert_error(app.refresh(&old_form("old-2", "s-spent", now - 600)).await, 400, "invalid_grant").await;
        let body = assert_error(app.refresh(&old_form("old-3", "s-spent", now - 300)).await, 400, "invalid_grant").await;
        assert_eq!(body["error_description"], "session revoked");

        // Revoking an old-form token ends its session.
        let revoke = old_form("old-4", "s-revoke", now - 600);
        assert_eq!(app.post_form("/oauth/revoke", &[("token", &revoke)]).await.status().as_u16(), 200);
        let body = assert_error(app.refresh(&revoke).await, 400, "invalid_grant").await;
        assert_eq!(body["error_description"], "session revoked");
        assert_eq!(
            db.count("SELECT count(*) AS n FROM audit_events WHERE event_type = 'refresh_reuse'"),
            2
        );
    }

    async fn after_the_grace_period_the_previous_token_is_reuse_and_two_rotations_back_at_once(backend) {
        let app = spawn_app_with(backend, |s| s.refresh_reuse_grace = 1).await;
        let tokens = app.user_with_tokens("alice").await;
        let first = tokens.refresh_token.unwrap();
        let second = crate::helpers::tokens(app.refresh(&first).await).await.refresh_token.unwrap();
        let third = crate::helpers::tokens(app.refresh(&second).await).await.refresh_token.unwrap();
        // Within the grace period, but two rotations back: reuse.
        assert_error(app.refresh(&first).await, 400, "invalid_grant").await;
        assert_error(app.refresh(&third).await, 400, "invalid_grant").await;

        let tokens = app.login("alice", PASSWORD).await;
        let first = tokens.refresh_token.unwrap();
        let second = crate::helpers::tokens(app.refresh(&first).await).await.refresh_token.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        assert_error(app.refresh(&first).await, 400, "invalid_grant").await;
        let body = assert_error(app.refresh(&second).await, 400, "invalid_grant").await;
        assert_eq!(body["error_description"], "session revoked");
    }

    async fn a_refresh_may_narrow_the_scope_and_a_refused_scope_leaves_the_token_unspent(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let refresh = tokens.refresh_token.unwrap();
        let form = |scope: &'static str, token: &str| {
            vec![("grant_type", "refresh_token".to_string()), ("refresh_token", token.to_string()), ("scope", scope.to_string())]
        };
        let response = app.client.post(app.url("/oauth/token")).form(&form("profile admin", &refresh)).send().await.unwrap();
        assert_error(response, 400, "invalid_scope").await;
        let response = app.client.post(app.url("/oauth/token")).form(&form("email", &refresh)).send().await.unwrap();
        let narrowed = crate::helpers::tokens(response).await;
        assert_eq!(narrowed.body["scope"], "email");
        assert_eq!(claims(&narrowed.access_token)["scope"], "email");
        // The session keeps its scope: the next refresh without one gets all of it.
        let again = crate::helpers::tokens(app.refresh(narrowed.refresh_token.as_deref().unwrap()).await).await;
        assert_eq!(again.body["scope"], "profile email");
    }

    async fn the_purge_clears_a_backlog_bigger_than_one_batch_and_keeps_what_is_live(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let user = claims(&tokens.access_token)["sub"].as_str().unwrap().to_string();
        let mut db = Direct::open(&app.settings.database);
        let long_ago = tessera::now() - 10 * 86_400;
        let backlog = 2_500;
        let mut sessions = Vec::new();
        let mut deny_list = Vec::new();
        for i in 0..backlog {
            sessions.push(format!(
                "('ended-{i}', '{user}', 'first-party', 'profile', '[\"pwd\"]', {long_ago}, {long_ago}, {long_ago}, {}, {long_ago})",
                long_ago + 86_400
            ));
            deny_list.push(format!("('jti-{i}', {long_ago})"));
        }
        db.execute(&format!(
            "INSERT INTO sessions (id, user_id, client_id, scope, amr, auth_time, created_at, last_used_at, expires_at, revoked_at) VALUES {}",
            sessions.join(", ")
        ));
        db.execute(&format!("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES {}", deny_list.join(", ")));
        db.execute(&format!(
            "INSERT INTO refresh_tokens (jti_hash, session_id, issued_at, expires_at) \
             SELECT id, id, {long_ago}, {long_ago} FROM sessions WHERE id LIKE 'ended-%'"
        ));
        let state = app.state.clone();
        tokio::task::spawn_blocking(move || state.purge()).await.unwrap().unwrap();
        assert_eq!(db.count("SELECT count(*) AS n FROM sessions WHERE id LIKE 'ended-%'"), 0);
        assert_eq!(db.count("SELECT count(*) AS n FROM refresh_tokens"), 0);
        assert_eq!(db.count("SELECT count(*) AS n FROM revoked_access_tokens"), 0);
        assert_eq!(db.count("SELECT count(*) AS n FROM sessions"), 1);
        assert_eq!(app.refresh(tokens.refresh_token.as_deref().unwrap()).await.status().as_u16(), 200);
    }
}

/// Applies the migrations that came before refresh state moved onto the session row.
fn migrate_to_before_session_state(db: &mut Direct) {
    const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
    const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
    const UPGRADE: &str = "2026-12-03-000020";
    fn run<C: MigrationHarness<B>, B: diesel::backend::Backend>(
        conn: &mut C,
        source: EmbeddedMigrations,
    ) {
        let pending = conn.pending_migrations(source).unwrap();
        for migration in pending {
            if migration.name().to_string().as_str() >= UPGRADE {
                break;
            }
            conn.run_migration(&*migration).unwrap();
        }
    }
    match db {
        Direct::Sqlite(c) => run(c, SQLITE),
        Direct::Postgres(c) => run(c, POSTGRES),
    }
}
