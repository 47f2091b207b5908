//! Holding up under failure: a PostgreSQL that goes away and comes back, and log lines
//! that never carry a secret.

use std::time::{Duration, Instant};

use crate::authorize::{hidden, Browser};
use crate::helpers::*;
use crate::private_postgres::PrivatePostgres;
use tessera::store::DatabaseUrl;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_database_answers_503_keeps_the_jwks_and_recovers_by_itself() {
    if Backend::postgres().is_none() {
        return;
    }
    let Some(postgres) = PrivatePostgres::start() else {
        return;
    };
    let app = spawn_app(Backend::Postgres(postgres.url())).await;
    app.register("alice", PASSWORD).await;
    let tokens = app.login("alice", PASSWORD).await;

    postgres.down();
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .await;
    assert!(
        response.headers().contains_key("retry-after"),
        "503 carries Retry-After"
    );
    assert_error(response, 503, "temporarily_unavailable").await;
    assert_error(
        app.refresh(tokens.refresh_token.as_deref().unwrap()).await,
        503,
        "temporarily_unavailable",
    )
    .await;
    // A load balancer's health check gives up after a few hundred milliseconds.
    let asked = Instant::now();
    assert_error(app.get("/readyz").await, 503, "temporarily_unavailable").await;
    assert!(
        asked.elapsed() < Duration::from_millis(1500),
        "/readyz took {:?} to say the database is gone",
        asked.elapsed()
    );
    assert_eq!(
        app.get("/.well-known/jwks.json").await.status().as_u16(),
        200
    );
    assert_eq!(
        app.get("/.well-known/openid-configuration")
            .await
            .status()
            .as_u16(),
        200
    );
    assert_eq!(app.get("/healthz").await.status().as_u16(), 200);

    postgres.up();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = app
            .token(&[
                ("grant_type", "password"),
                ("username", "alice"),
                ("password", PASSWORD),
            ])
            .await;
        if response.status().as_u16() == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "tessera did not recover: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_page_with_the_database_gone_answers_a_503_page_with_retry_after() {
    if Backend::postgres().is_none() {
        return;
    }
    let Some(postgres) = PrivatePostgres::start() else {
        return;
    };
    let app = spawn_app(Backend::Postgres(postgres.url())).await;
    app.register("alice", PASSWORD).await;
    let mut browser = Browser::new(&app);
    let page = browser.get("/login").await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");

    postgres.down();
    let response = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 503);
    assert!(
        response.headers().contains_key("retry-after"),
        "the 503 page carries Retry-After"
    );
    assert!(response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap().starts_with("text/html")));
    let body = response.text().await.unwrap();
    assert!(body.contains("Try again shortly"), "{body}");

    postgres.up();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = browser.get("/login").await.text().await.unwrap();
        let csrf = hidden(&page, "csrf");
        let response = browser
            .post(
                "/login",
                &[
                    ("csrf", &csrf),
                    ("username", "alice"),
                    ("password", PASSWORD),
                ],
            )
            .await;
        if response.status().is_redirection() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the sign-in page did not recover: {}",
            response.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The feed poller and the outbox workers drop their errors (they retry on their own), so
/// nothing marks the connection they failed on: the pool must not take their uses as proof
/// that it is alive, or a connection killed by a database restart is handed out for as long
/// as a poller fails on it every 200 ms, and requests meet it as 503s long after recovery.
#[test]
fn a_connection_the_server_closed_is_replaced_within_a_second_however_often_it_fails() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let Some(Backend::Postgres(base)) = Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let DatabaseUrl::Postgres(url) = fresh_database(&Backend::Postgres(base.clone()), dir.path())
    else {
        unreachable!("a PostgreSQL backend gives a PostgreSQL URL");
    };
    let name = format!("t{}", uuid::Uuid::new_v4().simple());
    let pool = tessera::store::connect(
        &DatabaseUrl::Postgres(format!("{url}&application_name={name}")),
        1,
    )
    .expect("connecting the pool");
    pool.get()
        .unwrap()
        .batch_execute("SELECT 1")
        .expect("the fresh connection works");

    let mut admin = diesel::PgConnection::establish(&base).expect("a connection of our own");
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '{name}'"
        ))
        .expect("ending the pool's server process");

    // A poller failing every 200 ms, its errors dropped, for longer than the trust lasts.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        let mut conn = pool.get().expect("the pool hands out a connection");
        let _ = conn.batch_execute("SELECT 1");
        std::thread::sleep(Duration::from_millis(200));
    }
    pool.get()
        .expect("the pool hands out a connection")
        .batch_execute("SELECT 1")
        .expect("the dead connection was checked and replaced, not trusted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_stays_ready_while_every_connection_waits_on_a_held_lock() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let app = spawn_app_with(backend, |s| s.db_pool_size = 2).await;
    app.register("alice", PASSWORD).await;
    let refresh_tokens: Vec<String> = {
        let mut tokens = Vec::new();
        for _ in 0..3 {
            let login = app.login("alice", PASSWORD).await;
            tokens.push(login.refresh_token.unwrap());
        }
        tokens
    };
    let tessera::store::DatabaseUrl::Postgres(url) = app.settings.database.clone() else {
        unreachable!("a PostgreSQL backend")
    };
    // Another client holds the sessions table, as a long migration or a stuck job would.
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let mut conn = diesel::PgConnection::establish(&url).unwrap();
        conn.batch_execute("BEGIN; LOCK TABLE sessions IN ACCESS EXCLUSIVE MODE")
            .unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        conn.batch_execute("COMMIT").unwrap();
    });
    locked_rx.recv().unwrap();
    let app = std::sync::Arc::new(app);
    let refreshes: Vec<_> = refresh_tokens
        .into_iter()
        .map(|token| {
            let app = app.clone();
            tokio::spawn(async move { app.refresh(&token).await.status().as_u16() })
        })
        .collect();
    // Both pooled connections are now stuck behind the lock.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.state.db.state().idle_connections > 0 {
        assert!(
            Instant::now() < deadline,
            "the refreshes never took the pool"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    let ready = app.get("/readyz").await;
    assert_eq!(
        ready.status().as_u16(),
        200,
        "a busy database is not a lost one"
    );
    assert!(
        asked.elapsed() < Duration::from_millis(1000),
        "/readyz waited {:?}",
        asked.elapsed()
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    for refresh in refreshes {
        assert_eq!(
            refresh.await.unwrap(),
            200,
            "a refresh held by the lock completes"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_never_contain_a_password_token_or_secret() {
    let dir = tempfile::tempdir().unwrap();
    let master_key = tessera::crypto::MasterKey::generate().to_base64();
    let database = format!("sqlite://{}", dir.path().join("t.db").display());
    let sink = crate::mail::SmtpSink::start().await;
    let server = Process::start(
        dir.path(),
        &[
            ("RUST_LOG", "trace"),
            ("TESSERA_MASTER_KEY", &master_key),
            ("TESSERA_DATABASE_URL", &database),
            ("TESSERA_SMTP_URL", &sink.url()),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", server.address);

    // A confidential client, made directly in the same database.
    let mut settings = test_settings(tessera::store::DatabaseUrl::Sqlite(dir.path().join("t.db")));
    settings.master_key = tessera::config::MasterKeySource::Inline(master_key.clone().into());
    let state = tessera::state::AppState::open(settings).unwrap();
    let client_secret = tessera::clients::create(
        &mut state.db.get().unwrap(),
        tessera::clients::NewClient {
            client_id: "svc".into(),
            grant_types: Some(vec!["client_credentials".into()]),
            scopes: Some(vec!["read".into()]),
            ..Default::default()
        },
        tessera::now(),
    )
    .unwrap()
    .client_secret
    .unwrap();

    let password = "Sup3r-secret-passphrase!";
    client
        .post(url("/register"))
        .json(&serde_json::json!({"username": "logcheck", "password": password}))
        .send()
        .await
        .unwrap();
    let login: serde_json::Value = client
        .post(url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "logcheck"),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = login["access_token"].as_str().unwrap().to_string();
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    client
        .get(url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    client
        .get(url("/userinfo?access_token=query-secret-token"))
        .send()
        .await
        .unwrap();
    client
        .post(url("/oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("username", "logcheck"),
            ("password", "Wrong-passphrase-123"),
        ])
        .send()
        .await
        .unwrap();
    let refreshed: serde_json::Value = client
        .post(url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_string();
    let cc: serde_json::Value = client
        .post(url("/oauth/token"))
        .basic_auth("svc", Some(&client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let service_token = cc["access_token"].as_str().unwrap().to_string();
    client
        .post(url("/oauth/introspect"))
        .basic_auth("svc", Some(&client_secret))
        .form(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    client
        .post(url("/oauth/revoke"))
        .form(&[("token", second_refresh.as_str())])
        .send()
        .await
        .unwrap();
    client
        .put(url("/account/password"))
        .bearer_auth(&access)
        .json(&serde_json::json!({"current_password": password, "new_password": "An0ther-passphrase!"}))
        .send()
        .await
        .unwrap();

    // Two-factor: enrolment (with the password), confirmation, the password grant answered
    // with an mfa_token, a wrong code, the mfa-otp grant with a code and with a recovery
    // code, refresh, introspection, revocation, and turning MFA off with a code.
    let mfa_password = "Mfa-user-passphrase-9";
    client
        .post(url("/register"))
        .json(&serde_json::json!({"username": "mfacheck", "password": mfa_password}))
        .send()
        .await
        .unwrap();
    let password_grant = || {
        client.post(url("/oauth/token")).form(&[
            ("grant_type", "password"),
            ("username", "mfacheck"),
            ("password", mfa_password),
        ])
    };
    let mfa_otp = |mfa_token: String, otp: String| {
        client.post(url("/oauth/token")).form(&[
            (
                "grant_type",
                "urn:tessera:params:oauth:grant-type:mfa-otp".to_string(),
            ),
            ("mfa_token", mfa_token),
            ("otp", otp),
        ])
    };
    let json = |response: reqwest::Response| async move {
        response.json::<serde_json::Value>().await.unwrap()
    };
    let text = |value: &serde_json::Value, key: &str| value[key].as_str().unwrap().to_string();
    let first = json(password_grant().send().await.unwrap()).await;
    let mfa_access = text(&first, "access_token");
    let enrolment = json(
        client
            .post(url("/account/mfa/totp"))
            .bearer_auth(&mfa_access)
            .json(&serde_json::json!({"password": mfa_password}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let totp_secret = text(&enrolment, "secret");
    let mut authenticator = crate::mfa::Authenticator::new(&totp_secret);
    let mut codes = vec![authenticator.next_code().await];
    let confirmed = json(
        client
            .post(url("/account/mfa/totp/confirm"))
            .bearer_auth(&mfa_access)
            .json(&serde_json::json!({"otp": codes[0]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let recovery_codes: Vec<String> = confirmed["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery_codes.len(), 10);
    let mut mfa_tokens = Vec::new();
    let challenge = json(password_grant().send().await.unwrap()).await;
    mfa_tokens.push(text(&challenge, "mfa_token"));
    let wrong_code = authenticator.wrong_code();
    let refused = mfa_otp(mfa_tokens[0].clone(), wrong_code.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    codes.push(authenticator.next_code().await);
    let with_code = json(
        mfa_otp(mfa_tokens[0].clone(), codes[1].clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    let challenge = json(password_grant().send().await.unwrap()).await;
    mfa_tokens.push(text(&challenge, "mfa_token"));
    let with_recovery = json(
        mfa_otp(mfa_tokens[1].clone(), recovery_codes[0].clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mfa_tokens_issued = [
        text(&with_code, "access_token"),
        text(&with_code, "refresh_token"),
        text(&with_recovery, "access_token"),
        text(&with_recovery, "refresh_token"),
    ];
    let rotated = json(
        client
            .post(url("/oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", mfa_tokens_issued[1].as_str()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let rotated_refresh = text(&rotated, "refresh_token");
    client
        .post(url("/oauth/introspect"))
        .basic_auth("svc", Some(&client_secret))
        .form(&[("token", mfa_tokens_issued[2].as_str())])
        .send()
        .await
        .unwrap();
    client
        .post(url("/oauth/revoke"))
        .form(&[("token", rotated_refresh.as_str())])
        .send()
        .await
        .unwrap();
    codes.push(authenticator.next_code().await);
    let off = client
        .delete(url("/account/mfa/totp"))
        .bearer_auth(&mfa_tokens_issued[2])
        .json(&serde_json::json!({"otp": codes[2]}))
        .send()
        .await
        .unwrap();
    assert_eq!(off.status().as_u16(), 204);

    // Mail (SPEC §6.4): a reset link, its page and its use; a verification link and its use.
    let mail_password = "Mail-user-passphrase-7";
    client
        .post(url("/register"))
        .json(&serde_json::json!({"username": "mailcheck", "password": mail_password, "email": "mailcheck@example.com"}))
        .send()
        .await
        .unwrap();
    let forgot = client
        .post(url("/password/forgot"))
        .json(&serde_json::json!({"username": "mailcheck"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forgot.status().as_u16(), 202);
    let reset_token = crate::mail::the_token(&sink.wait_for(1, 10).await[0], "/password/reset");
    client
        .get(url(&format!("/password/reset?token={reset_token}")))
        .send()
        .await
        .unwrap();
    let reset_password = "Reset-passphrase-42";
    let reset = client
        .post(url("/password/reset"))
        .json(&serde_json::json!({"token": reset_token, "new_password": reset_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status().as_u16(), 204);
    let mail_login = json(
        client
            .post(url("/oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("username", "mailcheck"),
                ("password", reset_password),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let mail_access = text(&mail_login, "access_token");
    let verify = client
        .post(url("/account/email/verify"))
        .bearer_auth(&mail_access)
        .send()
        .await
        .unwrap();
    assert_eq!(verify.status().as_u16(), 202);
    let verify_token = crate::mail::the_token(&sink.wait_for(2, 10).await[1], "/email/verify");
    let verified = client
        .get(url(&format!("/email/verify?token={verify_token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status().as_u16(), 200);

    let logs = server.finish();
    assert!(
        logs.contains("/password/reset") && logs.contains("/email/verify"),
        "the mail requests reached the request log"
    );
    for secret in [&reset_token, &verify_token, &mail_access] {
        assert!(
            !logs.contains(secret.as_str()),
            "a mail token leaked into the logs"
        );
    }
    assert!(!logs.contains(reset_password) && !logs.contains(mail_password));
    assert!(
        logs.contains("DEBUG") || logs.contains("TRACE"),
        "the log is at trace level"
    );
    assert!(
        logs.contains("MfaRequired"),
        "the mfa_required answer reached the debug log (redacted), so the check below means something"
    );
    for secret in mfa_tokens
        .iter()
        .chain(&mfa_tokens_issued)
        .chain(&recovery_codes)
        .chain([
            &mfa_password.to_string(),
            &mfa_access,
            &rotated_refresh,
            &totp_secret,
        ])
    {
        assert!(
            !logs.contains(secret.as_str()),
            "an MFA secret leaked into the logs"
        );
    }
    // Six digits may appear inside longer numbers (latencies, timestamps); a code may not
    // appear on its own.
    for code in codes.iter().chain([&wrong_code]) {
        let standalone = logs.match_indices(code.as_str()).any(|(at, _)| {
            let before = logs[..at].chars().next_back();
            let after = logs[at + code.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_digit() || c == '.')
                && !after.is_some_and(|c| c.is_ascii_digit() || c == '.')
        });
        assert!(!standalone, "a one-time code leaked into the logs");
    }
    assert!(
        logs.contains("/oauth/token"),
        "the request log is there: {}",
        &logs[..logs.len().min(2000)]
    );
    for secret in [
        password,
        "Wrong-passphrase-123",
        "An0ther-passphrase!",
        &access,
        &refresh,
        &second_refresh,
        &service_token,
        &client_secret,
        &master_key,
        "query-secret-token",
    ] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
    // Token signatures and payloads are long; no fragment of one may appear either.
    for token in [&access, &refresh, &service_token] {
        for part in token.split('.') {
            assert!(!logs.contains(part), "a token part leaked into the logs");
        }
    }
    assert!(
        !logs.to_ascii_lowercase().contains("authorization: "),
        "an Authorization header was logged"
    );
}
