//! Crash safety: `tessera serve` killed with SIGKILL in the middle of a login and refresh
//! load leaves a consistent database (one live refresh token per live session, none lost to
//! a refresh cut mid-flight, no orphans, an intact SQLite file), and the restarted server
//! goes on refreshing the surviving sessions. Refresh state lives on the session row: a
//! token is live when it is its session's current one, and a refresh that committed left the
//! presented token as the session's previous one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use tessera::store::schema::sessions;
use tessera::store::sessions::Session;
use tessera::store::DatabaseUrl;

use crate::helpers::*;

const USERS: usize = 6;

/// A refresh token a client holds, and whether it was on the wire when the server died.
#[derive(Debug, Clone)]
struct Held {
    token: String,
    in_flight: bool,
}

fn jti_hash(token: &str) -> String {
    let jti = claims(token)["jti"].as_str().unwrap().to_string();
    tessera::crypto::sha256_hex(jti.as_bytes())
}

fn database_url(database: &DatabaseUrl) -> String {
    match database {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => url.clone(),
    }
}

/// One client's load: logins and refreshes until the server stops answering or the deadline.
/// `done` counts the refreshes every client has had answered, so the test can pull the plug
/// once the load is under way however slow the machine is.
async fn client_load(
    address: String,
    user: String,
    deadline: Instant,
    done: Arc<AtomicUsize>,
) -> (Vec<Held>, usize) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut held: Vec<Held> = Vec::new();
    let mut refreshes = 0;
    let mut step = 0usize;
    while Instant::now() < deadline {
        step += 1;
        let login = held.is_empty() || step.is_multiple_of(6);
        let (form, index) = if login {
            (
                vec![
                    ("grant_type", "password".to_string()),
                    ("username", user.clone()),
                    ("password", PASSWORD.to_string()),
                ],
                None,
            )
        } else {
            let index = step % held.len();
            (
                vec![
                    ("grant_type", "refresh_token".to_string()),
                    ("refresh_token", held[index].token.clone()),
                ],
                Some(index),
            )
        };
        let response = client
            .post(format!("{address}/oauth/token"))
            .form(&form)
            .send()
            .await;
        let body: Option<serde_json::Value> = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                match response.json().await {
                    Ok(body) => {
                        assert_eq!(status, 200, "{user} under load got {status}: {body}");
                        Some(body)
                    }
                    // The server died while answering.
                    Err(_) => None,
                }
            }
            Err(_) => None,
        };
        match (body, index) {
            (Some(body), index) => {
                let token = body["refresh_token"].as_str().unwrap().to_string();
                match index {
                    Some(i) => {
                        held[i].token = token;
                        refreshes += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    None => held.push(Held {
                        token,
                        in_flight: false,
                    }),
                }
            }
            (None, Some(i)) => {
                held[i].in_flight = true;
                break;
            }
            // A login cut short: the client holds nothing of that session.
            (None, None) => break,
        }
    }
    (held, refreshes)
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Rows that break a reference, found by plain SQL on either backend.
fn orphans(database: &DatabaseUrl) -> Vec<(String, i64)> {
    let queries = [
        (
            "refresh tokens without a session",
            "SELECT count(*) AS n FROM refresh_tokens r LEFT JOIN sessions s ON s.id = r.session_id WHERE s.id IS NULL",
        ),
        (
            "sessions without a user",
            "SELECT count(*) AS n FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE u.id IS NULL",
        ),
        (
            "spent tokens whose successor is missing",
            "SELECT count(*) AS n FROM refresh_tokens r LEFT JOIN refresh_tokens t ON t.jti_hash = r.successor_hash WHERE r.spent_at IS NOT NULL AND t.jti_hash IS NULL",
        ),
        (
            "rotated sessions without a current token",
            "SELECT count(*) AS n FROM sessions WHERE refresh_previous_hash IS NOT NULL AND refresh_hash IS NULL",
        ),
    ];
    let run = |sql: &str| -> i64 {
        match database {
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
                diesel::sql_query(sql)
                    .get_result::<Count>(&mut conn)
                    .unwrap()
                    .n
            }
            DatabaseUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url).unwrap();
                diesel::sql_query(sql)
                    .get_result::<Count>(&mut conn)
                    .unwrap()
                    .n
            }
        }
    };
    queries
        .iter()
        .map(|(what, sql)| (what.to_string(), run(sql)))
        .collect()
}

/// Waits until no transaction of the killed server can still commit. A PostgreSQL backend
/// outlives its client: a `COMMIT` already in its socket buffer when the client died is
/// carried out afterwards (on a busy machine, after the test has looked), and a transaction
/// left open aborts only when its backend reads the closed socket. Such a transaction holds
/// its row locks on `sessions` until then, so an exclusive lock waits for every one of them.
fn settle(url: &str) {
    use diesel::connection::SimpleConnection;
    let mut conn = PgConnection::establish(url).unwrap();
    conn.batch_execute("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE; COMMIT")
        .unwrap();
}

#[derive(QueryableByName)]
struct IntegrityRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    integrity_check: String,
}

fn sqlite_checks(path: &std::path::Path) {
    let mut conn = SqliteConnection::establish(&path.to_string_lossy()).unwrap();
    let rows: Vec<IntegrityRow> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut conn)
        .unwrap();
    let verdict: Vec<String> = rows.into_iter().map(|r| r.integrity_check).collect();
    assert_eq!(verdict, vec!["ok".to_string()], "PRAGMA integrity_check");
    let broken = diesel::sql_query("SELECT count(*) AS n FROM pragma_foreign_key_check")
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n;
    assert_eq!(
        broken, 0,
        "PRAGMA foreign_key_check finds broken references"
    );
}

both_backends! {
    async fn a_server_killed_mid_load_restarts_with_every_session_holding_exactly_one_live_refresh_token(backend) {
        let dir = tempfile::tempdir().unwrap();
        let database = fresh_database(&backend, dir.path());
        let master_key = tessera::crypto::MasterKey::generate().to_base64();
        // Migrate, make the keys and the users in-process, so the server has nothing to
        // generate at start.
        {
            let mut settings = test_settings(database.clone());
            settings.master_key = tessera::config::MasterKeySource::Inline(master_key.clone().into());
            let state = tessera::state::AppState::open(settings).unwrap();
            let hash = state.hasher.hash(PASSWORD).unwrap();
            let mut conn = state.db.get().unwrap();
            for i in 0..USERS {
                tessera::accounts::create_user(&mut conn, &format!("crash{i}"), &hash, None, &[], tessera::now())
                    .unwrap();
            }
        }
        let url = database_url(&database);
        let env = [
            ("TESSERA_MASTER_KEY", master_key.as_str()),
            ("TESSERA_DATABASE_URL", url.as_str()),
            // Fixed, since the restarted server listens on another port.
            ("TESSERA_ISSUER", "http://tessera.test"),
            ("TESSERA_LOGIN_RATE_LIMIT", "0"),
            ("TESSERA_WORKERS", "2"),
        ];
        let mut server = Process::start_quiet(dir.path(), &env).await;

        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let done = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..USERS)
            .map(|i| tokio::spawn(client_load(server.address.clone(), format!("crash{i}"), deadline, done.clone())))
            .collect();
        // Let the load run for a while and get well under way (on a busy machine the logins
        // alone can take longer than a second), then pull the plug.
        while started.elapsed() < Duration::from_millis(1200) || done.load(Ordering::Relaxed) < 4 * USERS {
            assert!(started.elapsed() < Duration::from_secs(45), "the load never got under way ({} refreshes)", done.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server.kill();
        let mut held = Vec::new();
        let mut refreshes = 0;
        for task in tasks {
            let (h, r) = tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("a client hung after the kill")
                .unwrap();
            held.extend(h);
            refreshes += r;
        }
        assert!(refreshes >= USERS, "the load refreshed ({refreshes} refreshes)");
        let in_flight = held.iter().filter(|h| h.in_flight).count();
        eprintln!("{refreshes} refreshes, {} sessions held, {in_flight} refreshes cut mid-flight", held.len());

        // The database as the crash left it.
        match &database {
            DatabaseUrl::Sqlite(path) => sqlite_checks(path),
            DatabaseUrl::Postgres(url) => settle(url),
        }
        for (what, count) in orphans(&database) {
            assert_eq!(count, 0, "{what}");
        }
        let pool = tessera::store::connect(&database, 1).unwrap();
        let mut conn = pool.get().unwrap();
        let now = tessera::now();
        let all_sessions: Vec<Session> = sessions::table.select(Session::as_select()).load(&mut **conn).unwrap();
        let by_sid: HashMap<&str, &Session> = all_sessions.iter().map(|s| (s.id.as_str(), s)).collect();
        assert!(all_sessions.len() >= held.len());
        for session in &all_sessions {
            assert!(session.revoked_at.is_none(), "no session was revoked: {:?}", session.revoke_reason);
            let count = tessera::store::refresh_tokens::count_live_for_session(&mut conn, &session.id, now).unwrap();
            assert_eq!(count, 1, "session {} has {count} live refresh tokens", session.id);
        }
        // The session a held token belongs to, and whether it is that session's current token.
        let live = |token: &str| -> bool {
            let session = by_sid[claims(token)["sid"].as_str().unwrap()];
            session.refresh_hash.as_deref() == Some(jti_hash(token).as_str()) && session.expires_at > now
        };
        for h in &held {
            let session = by_sid.get(claims(&h.token)["sid"].as_str().unwrap()).copied().expect("a held token's session is in the database");
            if h.in_flight {
                // Committed: the presented token became the previous one, its successor the current one.
                let successor_live = session.refresh_previous_hash.as_deref() == Some(jti_hash(&h.token).as_str())
                    && session.refresh_hash.is_some();
                assert!(live(&h.token) != successor_live, "a refresh cut mid-flight left the presented token live ({}) and its successor live ({successor_live})", live(&h.token));
            } else {
                assert!(live(&h.token), "a token the client received is still live");
            }
        }
        drop(conn);
        drop(pool);

        // The restarted server refreshes every session whose client still holds a live token.
        let server = Process::start_quiet(dir.path(), &env).await;
        let address = server.address.clone();
        let client = reqwest::Client::new();
        let mut served = 0;
        for h in &held {
            if !live(&h.token) {
                continue;
            }
            let response = client
                .post(format!("{address}/oauth/token"))
                .form(&[("grant_type", "refresh_token"), ("refresh_token", h.token.as_str())])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert_eq!(status, 200, "refreshing a surviving session after the restart: {}", response.text().await.unwrap());
            served += 1;
        }
        assert!(served >= held.len() - in_flight);
        assert!(served > 0);
        drop(server);
    }
}
