//! The operator CLI (`tessera users|clients|keys|sessions …`), run as a child process on the
//! database of a running test instance, which then serves what the CLI made.

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use tessera::config::MasterKeySource;
use tessera::store::DatabaseUrl;
use tokio::io::AsyncWriteExt;

use crate::admin::{admin, ok};
use crate::helpers::*;

/// Runs `tessera ARGS` against `app`'s database and master key, with `stdin` piped in (so
/// not a terminal), and nothing else from this process's environment.
async fn tessera(app: &TestApp, args: &[&str], stdin: &str) -> Output {
    tessera_with(app, args, stdin, &[]).await
}

/// [`tessera`] with more environment variables.
async fn tessera_with(app: &TestApp, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let database = match &app.settings.database {
        DatabaseUrl::Sqlite(path) => format!("sqlite://{}", path.display()),
        DatabaseUrl::Postgres(url) => url.clone(),
    };
    let MasterKeySource::Inline(master_key) = &app.settings.master_key else {
        panic!("test apps have an inline master key");
    };
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    for (name, _) in std::env::vars() {
        if name.starts_with("TESSERA_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .current_dir(app.dir.path())
        .env("TESSERA_DATABASE_URL", database)
        .env(
            "TESSERA_MASTER_KEY",
            secrecy::ExposeSecret::expose_secret(master_key),
        )
        .env("TESSERA_ARGON2_MEMORY_KIB", "1024")
        .env("TESSERA_ARGON2_ITERATIONS", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("running the tessera binary");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

/// The JSON a successful command printed.
fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// A failed command: non-zero exit, nothing on stdout, one line on stderr; returns the line.
fn failure_line(output: &Output) -> String {
    assert!(!output.status.success());
    assert!(
        output.stdout.is_empty(),
        "stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr}");
    stderr.trim_end().to_string()
}

/// Polls `check` until it holds (another instance's key change arrives within its poll
/// interval).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends! {
    async fn a_user_created_with_the_cli_logs_in_over_http(backend) {
        let app = spawn_app(backend).await;
        let output = tessera(&app, &["users", "create", "alice", "--role", "editor", "--role", "viewer", "--email", "alice@example.org"], &format!("{PASSWORD}\n")).await;
        let user = stdout_json(&output);
        assert_eq!(user["username"], "alice");
        assert_eq!(user["roles"], json!(["editor", "viewer"]));
        assert_eq!(user["email"], "alice@example.org");
        assert_eq!(user["disabled"], false);
        assert!(!String::from_utf8_lossy(&output.stdout).contains(PASSWORD));

        let tokens = app.login("alice", PASSWORD).await;
        let claims = claims(&tokens.access_token);
        assert_eq!(claims["sub"], user["id"]);
        assert_eq!(claims["roles"], json!(["editor", "viewer"]));

        let root = admin(&app).await;
        let events = ok(&app, Method::GET, "/admin/audit?type=user_created", &root.token, None).await;
        let event = &events["items"][0];
        assert_eq!(event["actor"], "cli");
        assert_eq!(event["user_id"], user["id"]);
    }

    async fn clients_created_with_the_cli_print_their_id_and_secret_once(backend) {
        let app = spawn_app(backend).await;
        let output = tessera(&app, &["clients", "create", "reports", "--grant", "client_credentials", "--scope", "read", "--scope", "write", "--audience", "https://reports.example"], "").await;
        let created = stdout_json(&output);
        let fields: Vec<&String> = created.as_object().unwrap().keys().collect();
        assert_eq!(fields, ["client_id", "client_secret"]);
        assert_eq!(created["client_id"], "reports");
        let secret = created["client_secret"].as_str().unwrap().to_string();
        let response = app.token(&[("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", &secret), ("scope", "read")]).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(claims(&tokens(response).await.access_token)["aud"], "https://reports.example");

        let public = stdout_json(&tessera(&app, &["clients", "create", "web", "--public", "--refresh-cookie", "--scope", "profile"], "").await);
        assert_eq!(public, json!({"client_id": "web", "client_secret": null}));

        let listed = stdout_json(&tessera(&app, &["clients", "list"], "").await);
        let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|c| c["client_id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["reports", "web"]);
        assert_eq!(listed[1]["refresh_cookie"], true);
        assert!(!listed.to_string().contains(&secret));

        let rotated = stdout_json(&tessera(&app, &["clients", "rotate-secret", "reports"], "").await);
        assert_eq!(rotated.as_object().unwrap().keys().collect::<Vec<_>>(), ["client_id", "client_secret"]);
        let new_secret = rotated["client_secret"].as_str().unwrap();
        // The CLI is another process: the server sees its change within the poll interval.
        crate::client_cache::until_status(&app, "reports", &secret, 401).await;
        let response = app.token(&[("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", &secret)]).await;
        assert_error(response, 401, "invalid_client").await;
        let response = app.token(&[("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", new_secret)]).await;
        assert_eq!(response.status().as_u16(), 200);

        stdout_json(&tessera(&app, &["clients", "delete", "reports"], "").await);
        crate::client_cache::until_status(&app, "reports", new_secret, 401).await;
        let response = app.token(&[("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", new_secret)]).await;
        assert_error(response, 401, "invalid_client").await;
        let line = failure_line(&tessera(&app, &["clients", "delete", "reports"], "").await);
        assert!(line.contains("reports"), "{line}");
    }

    async fn a_client_created_without_scopes_gets_none_and_not_tessera_scopes(backend) {
        // As through the admin API: TESSERA_SCOPES is the built-in client's, never a default
        // for other clients (it once leaked in through a clap id shared with `--scope`).
        let app = spawn_app(backend).await;
        let env = [("TESSERA_SCOPES", "profile email")];
        stdout_json(&tessera_with(&app, &["clients", "create", "plain", "--grant", "client_credentials"], "", &env).await);
        stdout_json(&tessera_with(&app, &["clients", "create", "scoped", "--grant", "client_credentials", "--scope", "read"], "", &env).await);
        let listed = stdout_json(&tessera(&app, &["clients", "list"], "").await);
        let scopes = |id: &str| listed.as_array().unwrap().iter().find(|c| c["client_id"] == id).unwrap()["scopes"].clone();
        assert_eq!(scopes("plain"), json!([]));
        assert_eq!(scopes("scoped"), json!(["read"]));
    }

    async fn the_cli_creates_authorization_code_clients_and_refuses_bad_redirect_uris(backend) {
        let app = spawn_app(backend).await;
        let created = stdout_json(&tessera(&app, &[
            "clients", "create", "spa", "--public", "--grant", "authorization_code", "--grant", "refresh_token",
            "--redirect-uri", "https://app.example/cb", "--redirect-uri", "http://127.0.0.1/cb",
            "--post-logout-redirect-uri", "https://app.example/bye", "--name", "The App", "--first-party",
            "--backchannel-logout-uri", "https://app.example/bcl",
        ], "").await);
        assert_eq!(created, json!({"client_id": "spa", "client_secret": null}));
        let listed = stdout_json(&tessera(&app, &["clients", "list"], "").await);
        assert_eq!(listed[0]["redirect_uris"], json!(["https://app.example/cb", "http://127.0.0.1/cb"]));
        assert_eq!(listed[0]["post_logout_redirect_uris"], json!(["https://app.example/bye"]));
        assert_eq!(listed[0]["name"], "The App");
        assert_eq!(listed[0]["first_party"], true);
        assert_eq!(listed[0]["backchannel_logout_uri"], "https://app.example/bcl");
        let line = failure_line(&tessera(&app, &[
            "clients", "create", "bad", "--public", "--grant", "authorization_code", "--redirect-uri", "http://app.example/cb",
        ], "").await);
        assert!(line.contains("loopback"), "{line}");
    }

    async fn disabling_with_the_cli_ends_sessions_and_enabling_allows_logins_again(backend) {
        let app = spawn_app(backend).await;
        app.create_user("alice", &[]);
        let tokens = app.login("alice", PASSWORD).await;
        let disabled = stdout_json(&tessera(&app, &["users", "disable", "alice"], "").await);
        assert_eq!(disabled["disabled"], true);
        assert_error(app.refresh(tokens.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        assert_error(app.get_bearer("/userinfo", &tokens.access_token).await, 401, "invalid_token").await;
        assert_error(app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await, 400, "invalid_grant").await;
        let enabled = stdout_json(&tessera(&app, &["users", "enable", "alice"], "").await);
        assert_eq!(enabled["disabled"], false);
        app.login("alice", PASSWORD).await;
    }
}

#[tokio::test]
async fn the_cli_sets_roles_and_lists_users() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("bob", &[]);
    app.create_user("alice", &["viewer"]);
    let updated = stdout_json(
        &tessera(
            &app,
            &["users", "set-roles", "ALICE", "admin", "editor"],
            "",
        )
        .await,
    );
    assert_eq!(updated["username"], "alice");
    assert_eq!(updated["roles"], json!(["admin", "editor"]));
    let updated = stdout_json(
        &tessera(
            &app,
            &["users", "set-roles", "bob", "--role", "auditor"],
            "",
        )
        .await,
    );
    assert_eq!(updated["roles"], json!(["auditor"]));
    let claims = claims(&app.login("alice", PASSWORD).await.access_token);
    assert_eq!(claims["roles"], json!(["admin", "editor"]));
    let listed = stdout_json(&tessera(&app, &["users", "list"], "").await);
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let line = failure_line(&tessera(&app, &["users", "set-roles", "nobody", "admin"], "").await);
    assert!(line.contains("nobody"), "{line}");
}

#[tokio::test]
async fn the_cli_refuses_a_weak_or_missing_password_with_one_line() {
    let app = spawn_app(Backend::Sqlite).await;
    let line = failure_line(&tessera(&app, &["users", "create", "alice"], "short\n").await);
    assert!(line.contains("8"), "{line}");
    let line = failure_line(&tessera(&app, &["users", "create", "alice"], "alice\n").await);
    assert!(!line.is_empty());
    failure_line(&tessera(&app, &["users", "create", "alice"], "").await);
    stdout_json(
        &tessera(
            &app,
            &["users", "create", "alice"],
            &format!("{PASSWORD}\r\n"),
        )
        .await,
    );
    app.login("alice", PASSWORD).await;
    let line = failure_line(
        &tessera(
            &app,
            &["users", "create", "ALICE"],
            &format!("{PASSWORD}\n"),
        )
        .await,
    );
    assert!(line.contains("taken"), "{line}");
}

#[tokio::test]
async fn the_cli_revokes_every_session_of_a_user() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("alice", &[]);
    let first = app.login("alice", PASSWORD).await;
    let second = app.login("alice", PASSWORD).await;
    let output = stdout_json(&tessera(&app, &["sessions", "revoke", "--user", "alice"], "").await);
    assert_eq!(output["revoked"], 2);
    for tokens in [first, second] {
        assert_error(
            app.refresh(tokens.refresh_token.as_deref().unwrap()).await,
            400,
            "invalid_grant",
        )
        .await;
    }
    app.login("alice", PASSWORD).await;
}

both_backends! {
    async fn keys_listed_rotated_and_retired_with_the_cli_reach_the_running_server(backend) {
        let app = spawn_app(backend).await;
        app.create_user("alice", &[]);
        let old = app.state.keys.active_kid().unwrap();
        let keys = stdout_json(&tessera(&app, &["keys", "list"], "").await);
        let active: Vec<&str> = keys.as_array().unwrap().iter().filter(|k| k["status"] == "active").map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(active, [old.as_str()]);
        assert_eq!(keys.as_array().unwrap().iter().filter(|k| k["status"] == "staged").count(), 1);

        let rotated = stdout_json(&tessera(&app, &["keys", "rotate"], "").await);
        let new = rotated["active_kid"].as_str().unwrap().to_string();
        assert_ne!(new, old);
        eventually("the server signs with the new key", || async {
            header(&app.login("alice", PASSWORD).await.access_token)["kid"] == new.as_str()
        }).await;

        let retired = stdout_json(&tessera(&app, &["keys", "retire", &old], "").await);
        assert_eq!(retired["retired"], old.as_str());
        eventually("the retired key leaves the JWKS", || async { !app.jwks_kids().await.contains(&old) }).await;
        let keys = stdout_json(&tessera(&app, &["keys", "list"], "").await);
        let retired: Vec<&str> = keys.as_array().unwrap().iter().filter(|k| k["status"] == "retired").map(|k| k["kid"].as_str().unwrap()).collect();
        assert_eq!(retired, [old.as_str()]);
        let line = failure_line(&tessera(&app, &["keys", "retire", &old], "").await);
        assert!(line.contains(&old), "{line}");
    }
}

both_backends! {
    async fn the_cli_sets_token_algs_and_rotates_one_algorithm(backend) {
        let app = spawn_app_with(backend, crate::algs::all_algs).await;
        let all = [("TESSERA_SIGNING_ALGS", "RS256, ES256, EdDSA")];
        // With the default configuration ES256 is not offered: refused, nothing created.
        let line = failure_line(&tessera(&app, &["clients", "create", "ec", "--grant", "client_credentials", "--token-alg", "ES256"], "").await);
        assert!(line.contains("token_alg"), "{line}");
        let line = failure_line(&tessera_with(&app, &["clients", "create", "ec", "--grant", "client_credentials", "--token-alg", "HS256"], "", &all).await);
        assert!(line.contains("token_alg"), "{line}");
        assert_eq!(stdout_json(&tessera(&app, &["clients", "list"], "").await), json!([]));

        let created = stdout_json(&tessera_with(&app, &["clients", "create", "ec", "--grant", "client_credentials", "--token-alg", "ES256"], "", &all).await);
        let secret = created["client_secret"].as_str().unwrap().to_string();
        let listed = stdout_json(&tessera_with(&app, &["clients", "list"], "", &all).await);
        assert_eq!(listed[0]["token_alg"], "ES256");
        let issued = tokens(app.token(&[("grant_type", "client_credentials"), ("client_id", "ec"), ("client_secret", &secret)]).await).await;
        assert_eq!(header(&issued.access_token)["alg"], "ES256");

        let keys = stdout_json(&tessera_with(&app, &["keys", "list"], "", &all).await);
        for alg in ["RS256", "ES256", "EdDSA"] {
            assert_eq!(keys.as_array().unwrap().iter().filter(|k| k["alg"] == alg && k["status"] == "active").count(), 1, "{alg} in {keys}");
        }
        let old_rs = app.state.keys.active_kid().unwrap();
        let old_es = app.state.keys.active_kid_for(tessera::tokens::algs::SigningAlg::Es256).unwrap();
        let rotated = stdout_json(&tessera_with(&app, &["keys", "rotate", "--alg", "ES256"], "", &all).await);
        let new_es = rotated["active_kids"]["ES256"].as_str().unwrap().to_string();
        assert_eq!(rotated["active_kids"].as_object().unwrap().len(), 1, "{rotated}");
        assert_ne!(new_es, old_es);
        eventually("the server signs ES256 with the new key", || async {
            let issued = tokens(app.token(&[("grant_type", "client_credentials"), ("client_id", "ec"), ("client_secret", &secret)]).await).await;
            header(&issued.access_token)["kid"] == new_es.as_str()
        }).await;
        assert_eq!(app.state.keys.active_kid(), Some(old_rs), "RS256 did not rotate");
        let line = failure_line(&tessera_with(&app, &["keys", "rotate", "--alg", "ES384"], "", &all).await);
        assert!(line.contains("alg"), "{line}");

        // Started without ES256, tessera names the client it now signs for with RS256.
        let output = tessera(&app, &["keys", "list"], "").await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("client ec has token_alg ES256"), "{stderr}");
        stdout_json(&output);
        // That command, run without the server's list, switched none of the server's keys off.
        let keys = stdout_json(&tessera_with(&app, &["keys", "list"], "", &all).await);
        let active_es: Vec<_> = keys.as_array().unwrap().iter().filter(|k| k["alg"] == "ES256" && k["status"] == "active").collect();
        assert_eq!(active_es.len(), 1, "{keys}");
        assert_eq!(active_es[0]["kid"], new_es.as_str(), "{keys}");
    }
}
