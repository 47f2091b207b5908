//! The hosted pages in a real browser: headless Chromium (Debian's package, never a
//! downloaded one) driven by Playwright for Python, and authlib's OAuth2Session as a real
//! OAuth client (`tests/python/browser_flow.py`). Skipped without Python or Chromium unless
//! `TESSERA_REQUIRE_PYTHON=1` / `TESSERA_REQUIRE_BROWSER=1` say CI must run it.
//! `TESSERA_SCREENSHOTS=DIR` keeps the screenshots (`docs/images/` was made that way).

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::authorize::{clients, SPA, THIRD};
use crate::helpers::*;
use crate::mfa::Authenticator;
use crate::reachable::spawn_reachable;
use crate::third_party::{python, run_script_for};

/// The Chromium to drive: `TESSERA_TEST_CHROMIUM`, else `/usr/bin/chromium` if present.
pub(crate) fn chromium() -> Option<PathBuf> {
    let path = std::env::var("TESSERA_TEST_CHROMIUM")
        .ok()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if path.exists() {
        return Some(path);
    }
    if std::env::var("TESSERA_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!(
            "TESSERA_REQUIRE_BROWSER=1 but {} does not exist",
            path.display()
        );
    }
    eprintln!("skipped: no Chromium at {}", path.display());
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_through_the_hosted_pages_and_authlib_completes_the_flow() {
    let Some(python) = python() else { return };
    let Some(chromium) = chromium() else { return };
    // Plain http on 127.0.0.1 in the test, so no `Secure` on the cookies.
    let tessera = spawn_reachable(Backend::Sqlite, |s| s.cookie_secure = false).await;
    let app = &tessera.app;
    clients(app);
    app.register("alice", PASSWORD).await;
    let tokens = app.user_with_tokens("trudy").await;
    let enrolment: Value = app
        .post_json_bearer(
            "/account/mfa/totp",
            &tokens.access_token,
            &json!({ "password": PASSWORD }),
        )
        .await
        .json()
        .await
        .unwrap();
    let secret = enrolment["secret"].as_str().unwrap().to_string();
    let mut authenticator = Authenticator::new(&secret);
    let code = authenticator.next_code().await;
    let confirmed = app
        .post_json_bearer(
            "/account/mfa/totp/confirm",
            &tokens.access_token,
            &json!({ "otp": code }),
        )
        .await;
    assert_eq!(confirmed.status().as_u16(), 200);
    let shots = match std::env::var("TESSERA_SCREENSHOTS") {
        Ok(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => app.dir.path().to_path_buf(),
    };
    run_script_for(
        &python,
        "browser_flow.py",
        &[
            ("TESSERA_URL", &app.address),
            ("CHROMIUM", chromium.to_str().unwrap()),
            ("SPA_CLIENT", SPA),
            ("SPA_PATH", "/callback"),
            ("THIRD_CLIENT", THIRD),
            ("THIRD_PATH", "/partner"),
            ("USERNAME", "alice"),
            ("PASSWORD", PASSWORD),
            ("TOTP_USERNAME", "trudy"),
            ("TOTP_SECRET", &secret),
            ("SCREENSHOTS", shots.to_str().unwrap()),
        ],
        240,
    )
    .await;
}

/// Runs an example relying party (`examples/oidc-*-rp`) through `tests/python/oidc_rp_flow.py`.
async fn relying_party_flow(rp: &str, node: Option<&std::path::Path>) {
    let Some(python) = python() else { return };
    let Some(chromium) = chromium() else { return };
    let tessera = spawn_reachable(Backend::Sqlite, |s| s.cookie_secure = false).await;
    let app = &tessera.app;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client_id = format!("{rp}-rp");
    app.create_client(tessera::clients::NewClient {
        client_id: client_id.clone(),
        public: true,
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        scopes: Some(vec!["profile".into(), "email".into()]),
        redirect_uris: vec![format!("http://127.0.0.1:{port}/callback")],
        post_logout_redirect_uris: vec![format!("http://127.0.0.1:{port}/signed-out")],
        first_party: true,
        ..Default::default()
    });
    app.register("rita", PASSWORD).await;
    let node = node
        .map(|n| n.to_str().unwrap().to_string())
        .unwrap_or_default();
    run_script_for(
        &python,
        "oidc_rp_flow.py",
        &[
            ("TESSERA_URL", &app.address),
            ("CHROMIUM", chromium.to_str().unwrap()),
            ("RP", rp),
            ("NODE", &node),
            ("CLIENT_ID", &client_id),
            ("RP_PORT", &port.to_string()),
            ("USERNAME", "rita"),
            ("PASSWORD", PASSWORD),
        ],
        180,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlibs_openid_connect_client_in_flask_signs_in_refreshes_and_logs_out() {
    relying_party_flow("flask", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_openid_client_signs_in_refreshes_and_logs_out() {
    let Some(node) = crate::third_party::node() else {
        return;
    };
    relying_party_flow("node", Some(&node)).await;
}
