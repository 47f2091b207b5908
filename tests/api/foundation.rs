//! The service foundation: health, readiness, the error contract for bad requests, and
//! start-up configuration.

use crate::helpers::*;

both_backends! {
    async fn healthz_answers_ok(backend) {
        let app = spawn_app(backend).await;
        let response = app.get("/healthz").await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.json::<serde_json::Value>().await.unwrap()["status"], "ok");
    }

    async fn readyz_answers_ok_when_the_database_is_reachable(backend) {
        let app = spawn_app(backend).await;
        assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
    }
}

#[tokio::test]
async fn unknown_paths_are_404_in_the_error_shape() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_error(app.get("/no/such/thing").await, 404, "not_found").await;
}

#[tokio::test]
async fn wrong_methods_are_405_in_the_error_shape() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .client
        .delete(app.url("/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_error(response, 405, "invalid_request").await;
}

#[tokio::test]
async fn malformed_json_is_400_invalid_request() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .client
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_wrong_content_type_is_415() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(r#"{"grant_type":"password"}"#)
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "invalid_request").await;
    let response = app
        .client
        .post(app.url("/register"))
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "invalid_request").await;
}

#[tokio::test]
async fn bodies_over_64_kib_are_413() {
    let app = spawn_app(Backend::Sqlite).await;
    let big = "a".repeat(70 * 1024);
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", &big),
            ("password", "x"),
        ])
        .await;
    assert_error(response, 413, "invalid_request").await;
}

#[tokio::test]
async fn a_malformed_form_is_400_invalid_request() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=refresh_token")
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn a_missing_grant_type_is_invalid_request_and_an_unknown_one_unsupported() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_error(
        app.token(&[("username", "x")]).await,
        400,
        "invalid_request",
    )
    .await;
    assert_error(
        app.token(&[("grant_type", "implicit")]).await,
        400,
        "unsupported_grant_type",
    )
    .await;
}

fn tessera_command(dir: &std::path::Path) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"));
    command.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("TESSERA_") {
            command.env_remove(key);
        }
    }
    command
}

#[test]
fn bad_configuration_stops_start_up_with_one_line_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("TESSERA_LISTEN", "not-an-address"),
        ("TESSERA_ACCESS_TOKEN_TTL", "15x"),
        ("TESSERA_DATABASE_URL", "mysql://localhost/db"),
        ("TESSERA_REGISTRATION", "maybe"),
        ("TESSERA_MASTER_KEY", "c2hvcnQ="),
        ("TESSERA_KEY_BITS", "1024"),
        ("TESSERA_LOGIN_RATE_LIMIT", "lots"),
        ("TESSERA_SIGNING_ALGS", ""),
        ("TESSERA_SIGNING_ALGS", "ES256"),
        ("TESSERA_SIGNING_ALGS", "ES256,EdDSA"),
        ("TESSERA_SIGNING_ALGS", "RS256,HS256"),
        ("TESSERA_SIGNING_ALGS", "RS256,none"),
        ("TESSERA_SIGNING_ALGS", "RS256,ES384"),
        ("TESSERA_SIGNING_ALGS", "RS256, ES256, RS256"),
        ("TESSERA_SIGNING_ALGS", "rs256"),
        ("TESSERA_SIGNING_ALGS", "RS256,,ES256"),
    ] {
        let output = tessera_command(dir.path())
            .arg("serve")
            .env(var, value)
            .output()
            .unwrap();
        assert!(!output.status.success(), "{var}={value} should fail");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line for {var}: {stderr}");
        assert!(lines[0].contains(var), "{var} named in: {stderr}");
    }
    assert!(
        !dir.path().join("data").exists(),
        "nothing is created before the configuration is good"
    );
    assert!(
        !dir.path().join("keys").exists(),
        "no master key is created before the configuration is good"
    );
}

#[test]
fn a_bad_flag_value_is_refused_with_the_same_line_naming_its_variable() {
    let dir = tempfile::tempdir().unwrap();
    let output = tessera_command(dir.path())
        .args(["serve", "--access-token-ttl", "15x"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim(),
        "error: invalid TESSERA_ACCESS_TOKEN_TTL (--access-token-ttl): unknown unit `x` in `15x` \
         (use s, m, h or d)"
    );
}

#[test]
fn a_refused_secret_setting_is_not_echoed_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let output = tessera_command(dir.path())
        .arg("serve")
        .env("TESSERA_MASTER_KEY", "c2hvcnQ=")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TESSERA_MASTER_KEY"), "{stderr}");
    assert!(
        !stderr.contains("c2hvcnQ="),
        "the value must not be printed: {stderr}"
    );
}

#[test]
fn every_setting_has_a_flag_and_the_variable_of_the_same_name() {
    use clap::CommandFactory;
    let command = tessera::cli::Cli::command();
    let settings: Vec<_> = command
        .get_arguments()
        .filter(|arg| arg.get_env().is_some())
        .collect();
    assert!(settings.len() > 30, "the settings are global arguments");
    for arg in settings {
        let long = arg.get_long().expect("every setting has a flag");
        let env = arg.get_env().unwrap().to_string_lossy().into_owned();
        assert_eq!(
            env,
            format!("TESSERA_{}", long.replace('-', "_").to_uppercase()),
            "--{long}"
        );
    }
}

#[test]
fn no_subcommand_argument_shares_an_id_with_a_setting() {
    // clap copies a global argument's value to and from a subcommand argument of the same
    // id. The one exception is `clients create --audience`, which must share the id of
    // `--audience` (clap refuses two arguments with one flag): TESSERA_AUDIENCE, when set,
    // becomes the new client's audience.
    use clap::CommandFactory;
    let command = tessera::cli::Cli::command();
    let settings: Vec<String> = command
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .map(|arg| arg.get_id().to_string())
        .collect();
    fn walk(command: &clap::Command, settings: &[String], path: &str) {
        for sub in command.get_subcommands() {
            let path = format!("{path} {}", sub.get_name());
            for arg in sub.get_arguments() {
                let id = arg.get_id().to_string();
                if path == "tessera clients create" && id == "audience" {
                    continue;
                }
                assert!(
                    !settings.contains(&id),
                    "`{path}` argument `{id}` is a setting's id"
                );
            }
            walk(sub, settings, &path);
        }
    }
    walk(&command, &settings, "tessera");
}

#[test]
fn migrate_creates_the_sqlite_database_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let first = tessera_command(dir.path()).arg("migrate").output().unwrap();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(dir.path().join("data/tessera.db").exists());
    let report: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(!report["applied"].as_array().unwrap().is_empty());
    let second = tessera_command(dir.path()).arg("migrate").output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&second.stdout).unwrap();
    assert!(report["applied"].as_array().unwrap().is_empty());
}

#[test]
fn migrate_works_against_postgres() {
    let Some(Backend::Postgres(base)) = Backend::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tessera::store::DatabaseUrl::Postgres(url) =
        fresh_database(&Backend::Postgres(base), dir.path())
    else {
        unreachable!()
    };
    let output = tessera_command(dir.path())
        .arg("migrate")
        .env("TESSERA_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(!report["applied"].as_array().unwrap().is_empty());
}

#[test]
fn the_command_line_definition_is_consistent() {
    use clap::CommandFactory;
    tessera::cli::Cli::command().debug_assert();
}

#[test]
fn configuration_flags_work_after_the_subcommand_too() {
    let dir = tempfile::tempdir().unwrap();
    let output = tessera_command(dir.path())
        .args(["migrate", "--database-url", "sqlite://other.db"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(dir.path().join("other.db").exists());
}
