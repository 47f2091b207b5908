//! Third-party verifiers: PyJWT and Flask-JWT-Extended (the Flask example in
//! `examples/flask-resource-server`) check tessera's tokens against the live JWKS. The
//! scripts live in `tests/python/` and run with the Python from `TESSERA_TEST_PYTHON`
//! (`.ci/run` makes a venv from `tests/python/requirements.txt`).

use std::path::{Path, PathBuf};

use serde_json::json;
use tessera::tokens::keyring::TokenKind;

use crate::helpers::*;
use crate::reachable::spawn_reachable;

/// The Python to run the scripts with; `None` (skip) if unset, unless CI requires it.
pub(crate) fn python() -> Option<PathBuf> {
    match std::env::var("TESSERA_TEST_PYTHON") {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            if std::env::var("TESSERA_REQUIRE_PYTHON").is_ok_and(|v| v == "1") {
                panic!("TESSERA_REQUIRE_PYTHON=1 but TESSERA_TEST_PYTHON is not set");
            }
            eprintln!("skipped: TESSERA_TEST_PYTHON is not set");
            None
        }
    }
}

/// Runs `tests/python/<script>` with `env` (and no inherited `TESSERA_*`); fails the test
/// with the script's output unless it exits 0.
pub(crate) async fn run_script(python: &Path, script: &str, env: &[(&str, &str)]) {
    run_script_for(python, script, env, 60).await
}

/// [`run_script`] with a longer allowance, for scripts that drive a browser.
pub(crate) async fn run_script_for(
    python: &Path,
    script: &str,
    env: &[(&str, &str)],
    seconds: u64,
) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = tokio::process::Command::new(python);
    command
        .arg(root.join("tests/python").join(script))
        .current_dir(root)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .kill_on_drop(true);
    for (name, _) in std::env::vars() {
        if name.starts_with("TESSERA_") {
            command.env_remove(name);
        }
    }
    command.envs(env.iter().copied());
    let output = tokio::time::timeout(std::time::Duration::from_secs(seconds), command.output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not finish"))
        .unwrap_or_else(|e| panic!("running {} failed: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("checks passed"),
        "{script}:\n{stdout}\n{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_verifies_access_tokens_and_refuses_refresh_tampered_and_unsigned_ones() {
    let Some(python) = python() else { return };
    let tessera = spawn_reachable(Backend::Sqlite, |_| {}).await;
    let app = &tessera.app;
    app.create_user("carol", &["editor"]);
    let login = app.login("carol", PASSWORD).await;
    run_script(
        &python,
        "verify_pyjwt.py",
        &[
            ("TESSERA_ISSUER", &app.address),
            ("ACCESS_TOKEN", &login.access_token),
            ("REFRESH_TOKEN", login.refresh_token.as_deref().unwrap()),
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flask_jwt_extended_protects_routes_with_tessera_tokens() {
    let Some(python) = python() else { return };
    let tessera = spawn_reachable(Backend::Sqlite, |_| {}).await;
    let app = &tessera.app;
    app.create_user("carol", &["admin"]);
    app.create_user("dave", &[]);
    let fresh = app.login("carol", PASSWORD).await;
    let refresh_token = fresh.refresh_token.clone().unwrap();
    let refreshed = tokens(app.refresh(&refresh_token).await).await;
    let plain = app.login("dave", PASSWORD).await;
    let mut expired = claims(&fresh.access_token);
    let past = tessera::now() - 600;
    expired["iat"] = json!(past - 900);
    expired["nbf"] = json!(past - 900);
    expired["exp"] = json!(past);
    let expired = app.state.keys.sign(TokenKind::Access, &expired).unwrap();
    run_script(
        &python,
        "verify_flask.py",
        &[
            ("TESSERA_ISSUER", &app.address),
            ("FRESH_TOKEN", &fresh.access_token),
            ("REFRESHED_TOKEN", &refreshed.access_token),
            // The spent one: what matters is that it is refused as an access token.
            ("REFRESH_TOKEN", &refresh_token),
            ("PLAIN_TOKEN", &plain.access_token),
            ("EXPIRED_TOKEN", &expired),
        ],
    )
    .await;
}
