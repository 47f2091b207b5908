//! Operating tessera: Prometheus metrics.

use crate::helpers::*;

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_tokens_failures_reuse_and_revocations() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.lockout_threshold = 2).await;
    let tokens = app.user_with_tokens("alice").await;
    for _ in 0..2 {
        app.token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong password!"),
        ])
        .await;
    }
    let refresh = tokens.refresh_token.unwrap();
    app.refresh(&refresh).await;
    app.refresh(&refresh).await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert_eq!(
        metric_value(
            &text,
            r#"tessera_tokens_issued_total{grant_type="password"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"tessera_tokens_issued_total{grant_type="refresh_token"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&text, "tessera_login_failures_total"),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&text, "tessera_account_lockouts_total"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&text, "tessera_refresh_reuse_detected_total"),
        Some(1.0)
    );
    assert_eq!(metric_value(&text, "tessera_revocations_total"), Some(1.0));
    assert_eq!(
        metric_value(
            &text,
            r#"tessera_http_requests_total{method="POST",route="/register",status="201"}"#
        ),
        Some(1.0)
    );
    assert!(text.contains(r#"tessera_http_request_duration_seconds_bucket{route="/oauth/token""#));
    assert!(metric_value(&text, "tessera_signing_key_age_seconds").is_some());
    assert!(metric_value(&text, r#"tessera_db_pool_connections{state="idle"}"#).is_some());
}

#[tokio::test]
async fn with_a_certificate_and_key_tessera_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.tls = Some(tessera::config::TlsFiles { cert, key })
    })
    .await;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let https = app.address.replace("http://", "https://");
    let response = client.get(format!("{https}/healthz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let jwks: serde_json::Value = client
        .get(format!("{https}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
}

#[test]
fn a_certificate_without_a_key_stops_start_up_naming_the_missing_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(dir.path())
        .env("TESSERA_TLS_CERT", dir.path().join("cert.pem"))
        .env_remove("TESSERA_TLS_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TESSERA_TLS_KEY"));
}

#[tokio::test]
async fn admin_revocations_are_counted_too() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("root", &["admin"]);
    let admin = app.login("root", PASSWORD).await;
    let user = app.user_with_tokens("alice").await;
    let sid = claims(&user.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app
        .client
        .delete(app.url(&format!("/admin/sessions/{sid}")))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric_value(&text, "tessera_revocations_total"),
        Some(1.0),
        "{text}"
    );
}

/// `tessera_revocations_total` as `/metrics` reads now.
async fn revocations_counted(app: &TestApp) -> Option<f64> {
    let text = app.get("/metrics").await.text().await.unwrap();
    metric_value(&text, "tessera_revocations_total")
}

/// Two sessions of `username` on the built-in client.
async fn two_sessions(app: &TestApp, username: &str) -> Tokens {
    let first = app.user_with_tokens(username).await;
    app.login(username, PASSWORD).await;
    first
}

#[tokio::test]
async fn a_password_change_counts_the_sessions_it_ends() {
    let app = spawn_app(Backend::Sqlite).await;
    let alice = two_sessions(&app, "alice").await;
    let response = app
        .client
        .put(app.url("/account/password"))
        .bearer_auth(&alice.access_token)
        .json(&serde_json::json!({
            "current_password": PASSWORD,
            "new_password": "another long passphrase",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    // The session making the change stays; the other one ends.
    assert_eq!(revocations_counted(&app).await, Some(1.0));
}

#[tokio::test]
async fn disabling_a_user_counts_every_session_it_ends() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("root", &["admin"]);
    let admin = app.login("root", PASSWORD).await;
    let id = app.create_user("alice", &[]);
    app.login("alice", PASSWORD).await;
    app.login("alice", PASSWORD).await;
    let response = app
        .client
        .patch(app.url(&format!("/admin/users/{id}")))
        .bearer_auth(&admin.access_token)
        .json(&serde_json::json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(revocations_counted(&app).await, Some(2.0));
}

#[tokio::test]
async fn deleting_a_client_counts_the_sessions_it_ends() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("root", &["admin"]);
    let admin = app.login("root", PASSWORD).await;
    app.create_client(tessera::clients::NewClient {
        client_id: "spa".into(),
        public: true,
        ..Default::default()
    });
    app.create_user("alice", &[]);
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("client_id", "spa"),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let response = app
        .client
        .delete(app.url("/admin/clients/spa"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(revocations_counted(&app).await, Some(1.0));
}

/// The request-metric series `/metrics` holds now.
async fn request_series(app: &TestApp) -> Vec<String> {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .filter(|line| {
            line.starts_with("tessera_http_requests_total{")
                || line.starts_with("tessera_http_request_duration_seconds_count{")
        })
        .map(|line| line.rsplit_once(' ').unwrap().0.to_string())
        .collect()
}

#[tokio::test]
async fn made_up_methods_and_paths_add_no_metrics_series() {
    let app = spawn_app(Backend::Sqlite).await;
    let random = || uuid::Uuid::new_v4().simple().to_string();
    let send = |method: String, path: String| {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let request = app.client.request(method, app.url(&path));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let burst = |n: usize| {
        let sends: Vec<_> = (0..n)
            .flat_map(|_| {
                let method = format!("M{}{}", random(), "X".repeat(2000));
                [
                    send(method.clone(), format!("/{}/{}", random(), random())),
                    send(method, "/oauth/token".into()),
                    send("GET".into(), format!("/{}?q={}", random(), random())),
                ]
            })
            .collect();
        futures_util::future::join_all(sends)
    };
    // One of each kind first: the series they belong to exist from then on.
    let statuses = burst(1).await;
    assert_eq!(statuses, [404, 405, 404]);
    request_series(&app).await;
    let before = request_series(&app).await;
    burst(40).await;
    let after = request_series(&app).await;
    assert_eq!(before, after, "new series appeared");
    assert!(
        after
            .iter()
            .any(|s| s.contains(r#"method="other""#) && s.contains(r#"route="unmatched""#)),
        "{after:?}"
    );
    assert!(
        after
            .iter()
            .any(|s| s.contains(r#"method="other""#) && s.contains(r#"route="/oauth/token""#)),
        "{after:?}"
    );
    assert!(after.iter().all(|s| s.len() < 200), "{after:?}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn with_a_management_listener_metrics_leave_the_public_port() {
    let dir = tempfile::tempdir().unwrap();
    let management = format!("127.0.0.1:{}", free_port());
    let server = Process::start(
        dir.path(),
        &[
            ("TESSERA_DATABASE_URL", "sqlite://t.db"),
            ("TESSERA_MANAGEMENT_LISTEN", &management),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let get = |base: String, path: &str| {
        let request = client.get(format!("{base}{path}"));
        async move { request.send().await.unwrap() }
    };
    let public = server.address.clone();
    let management = format!("http://{management}");
    assert_error(get(public.clone(), "/metrics").await, 404, "not_found").await;
    for path in ["/healthz", "/readyz", "/.well-known/jwks.json"] {
        assert_eq!(
            get(public.clone(), path).await.status().as_u16(),
            200,
            "public {path}"
        );
    }
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            get(management.clone(), path).await.status().as_u16(),
            200,
            "management {path}"
        );
    }
    let response = get(management.clone(), "/metrics").await;
    assert_eq!(response.status().as_u16(), 200);
    let text = response.text().await.unwrap();
    assert!(
        text.contains(r#"tessera_http_requests_total{method="GET",route="/.well-known/jwks.json",status="200"}"#),
        "the public listener's requests are counted: {text}"
    );
    // Nothing else is served on the management listener.
    for path in ["/.well-known/jwks.json", "/openapi.json", "/userinfo"] {
        assert_error(get(management.clone(), path).await, 404, "not_found").await;
    }
    let response = client
        .post(format!("{management}/oauth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_error(response, 404, "not_found").await;
    let output = server.finish();
    assert!(output.contains("management"), "{output}");
}

#[test]
fn a_bad_management_listen_address_stops_start_up_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(dir.path())
        .env("TESSERA_MANAGEMENT_LISTEN", "localhost:9090")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TESSERA_MANAGEMENT_LISTEN"), "{stderr}");
    assert!(
        !dir.path().join("data").exists(),
        "created files before failing"
    );
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_folder_and_files_are_private_whatever_the_umask() {
    let dir = tempfile::tempdir().unwrap();
    // No database or key settings: the embedded default creates data/ and keys/.
    let server = Process::start_with_umask(dir.path(), &[], "000").await;
    // A write, so that every file of the WAL is in use.
    let response = reqwest::Client::new()
        .post(format!("{}/register", server.address))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let at = |name: &str| dir.path().join(name);
    assert_eq!(mode(&at("data")), 0o700, "data/");
    for file in [
        "data/tessera.db",
        "data/tessera.db-wal",
        "data/tessera.db-shm",
        "data/tessera.db.migrate-lock",
    ] {
        assert_eq!(mode(&at(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&at("keys")), 0o700, "keys/");
    assert_eq!(mode(&at("keys/master.key")), 0o600, "keys/master.key");
    let output = server.finish();
    assert!(!output.contains("WARN"), "{output}");
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_left_open_by_an_older_version_are_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let server = Process::start_with_umask(dir.path(), &[], "022").await;
    drop(server);
    let database = dir.path().join("data/tessera.db");
    let wal = dir.path().join("data/tessera.db-wal");
    for file in [&database, &wal] {
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let server = Process::start_with_umask(dir.path(), &[], "022").await;
    assert_eq!(mode(&database), 0o600);
    assert_eq!(mode(&wal), 0o600);
    drop(server);
}

#[cfg(unix)]
#[tokio::test]
async fn a_master_key_file_open_to_others_gets_a_warning_naming_it_and_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("master.key");
    std::fs::write(
        &key_file,
        tessera::crypto::MasterKey::generate().to_base64(),
    )
    .unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let env = [
        ("TESSERA_DATABASE_URL", "sqlite://t.db"),
        ("TESSERA_MASTER_KEY_FILE", key_file.to_str().unwrap()),
    ];
    let output = Process::start(dir.path(), &env).await.finish();
    let warning = output
        .lines()
        .find(|line| line.contains("WARN") && line.contains("master key file"))
        .unwrap_or_else(|| panic!("no warning in {output}"));
    assert!(warning.contains(key_file.to_str().unwrap()), "{warning}");
    assert!(warning.contains("0644"), "{warning}");
    // The warning is about the key file's mode: a private file starts quietly.
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let output = Process::start(dir.path(), &env).await.finish();
    assert!(!output.contains("master key file"), "{output}");
}
