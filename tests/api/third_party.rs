//! Third-party verifiers: PyJWT and Flask-JWT-Extended (the Flask example in
//! `examples/flask-resource-server`), node's `jose` and Rust's `jsonwebtoken` check
//! tessera's tokens against the live JWKS. The Python scripts live in `tests/python/` and run
//! with the Python from `TESSERA_TEST_PYTHON` (`.ci/run` makes a venv from
//! `tests/python/requirements.txt`); the node script lives in `tests/node/` and needs `jose`
//! installed there (`npm ci --prefix tests/node`, which `.ci/run` does).

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

/// The node binary, when `jose` is installed in `tests/node`; `None` (skip) otherwise, unless
/// CI requires it (`TESSERA_REQUIRE_NODE=1`). `TESSERA_TEST_NODE` names the binary (default
/// `node` on the path).
pub(crate) fn node() -> Option<PathBuf> {
    let binary = std::env::var("TESSERA_TEST_NODE")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "node".into());
    let jose = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node/node_modules/jose");
    let runs = std::process::Command::new(&binary)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if runs && jose.is_dir() {
        return Some(PathBuf::from(binary));
    }
    let why = if runs {
        "jose is not installed in tests/node (npm ci --prefix tests/node)"
    } else {
        "node is not installed"
    };
    if std::env::var("TESSERA_REQUIRE_NODE").is_ok_and(|v| v == "1") {
        panic!("TESSERA_REQUIRE_NODE=1 but {why}");
    }
    eprintln!("skipped: {why}");
    None
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
    run_in(python, "tests/python", script, env, seconds).await
}

/// Runs `DIR/<script>` with `interpreter`, as [`run_script`] does, allowing `seconds`.
async fn run_in(interpreter: &Path, dir: &str, script: &str, env: &[(&str, &str)], seconds: u64) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = tokio::process::Command::new(interpreter);
    command
        .arg(root.join(dir).join(script))
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
        .unwrap_or_else(|e| panic!("running {} failed: {e}", interpreter.display()));
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
    let expired = app
        .state
        .keys
        .sign(TokenKind::Access, None, &expired)
        .unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jose_without_a_typ_check_still_refuses_a_refresh_token_by_its_audience() {
    let Some(node) = node() else { return };
    let tessera = spawn_reachable(Backend::Sqlite, |_| {}).await;
    let app = &tessera.app;
    app.create_user("carol", &[]);
    let login = app.login("carol", PASSWORD).await;
    run_in(
        &node,
        "tests/node",
        "verify_jose.mjs",
        &[
            ("TESSERA_ISSUER", &app.address),
            ("ACCESS_TOKEN", &login.access_token),
            ("REFRESH_TOKEN", login.refresh_token.as_deref().unwrap()),
        ],
        60,
    )
    .await;
}

/// `jsonwebtoken` set up the way most hand-written verifiers are: key from the JWKS,
/// RS256, issuer and audience, and no look at `typ` or `type`.
fn careless_jsonwebtoken(
    jwks: &jsonwebtoken::jwk::JwkSet,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<serde_json::Value, jsonwebtoken::errors::Error> {
    let kid = jsonwebtoken::decode_header(token)?.kid.unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(&kid).unwrap())?;
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation).map(|data| data.claims)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonwebtoken_without_a_typ_check_still_refuses_a_refresh_token_by_its_audience() {
    let tessera = spawn_reachable(Backend::Sqlite, |_| {}).await;
    let app = &tessera.app;
    app.create_user("carol", &[]);
    let login = app.login("carol", PASSWORD).await;
    let refresh = login.refresh_token.unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let issuer = app.address.as_str();

    let access = careless_jsonwebtoken(&jwks, &login.access_token, issuer, issuer).unwrap();
    assert_eq!(access["type"], "access");
    let error = careless_jsonwebtoken(&jwks, &refresh, issuer, issuer).unwrap_err();
    assert_eq!(
        error.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidAudience
    );
    // Its signature and issuer are good; the audience alone keeps it out.
    let token_endpoint = format!("{issuer}/oauth/token");
    assert_eq!(claims(&refresh)["aud"], token_endpoint.as_str());
    let refresh_claims = careless_jsonwebtoken(&jwks, &refresh, issuer, &token_endpoint).unwrap();
    assert_eq!(refresh_claims["type"], "refresh");
    // And tessera itself still takes it.
    assert_eq!(app.refresh(&refresh).await.status().as_u16(), 200);
}
