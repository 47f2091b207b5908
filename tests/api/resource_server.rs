//! The Rust resource-server example (`examples/rust_resource_server.rs`, compiled in here)
//! against a live tessera: it accepts access tokens, refuses refresh, expired and tampered
//! ones, follows a key rotation through its JWKS cache, and keeps verifying with the cached
//! keys once tessera is gone.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use tessera::tokens::keyring::TokenKind;
use tessera::tokens::now_ms;
use tessera::tokens::rotation;

use crate::helpers::*;
use crate::reachable::spawn_reachable;

#[path = "../../examples/rust_resource_server.rs"]
#[allow(dead_code)]
pub(crate) mod rust_resource_server;

use rust_resource_server::Verifier;

/// The example API, running, and a client for it.
struct Api {
    address: String,
    client: reqwest::Client,
}

impl Api {
    async fn start(verifier: std::sync::Arc<Verifier>) -> Api {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(rust_resource_server::server(verifier, listener).unwrap());
        Api {
            address,
            client: reqwest::Client::new(),
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn me(&self, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, "/api/me", token).await
    }
}

/// `token` with its claims changed and the old signature kept.
fn tampered(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = claims(token);
    change(&mut claims);
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    )
}

/// `token` with its header changed and the old signature kept.
fn with_header(token: &str, change: impl FnOnce(&mut Value)) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut header = header(token);
    change(&mut header);
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        parts[1],
        parts[2]
    )
}

fn rotate(app: &TestApp) {
    let state = &app.state;
    let mut conn = state.db.get().unwrap();
    rotation::rotate_now(
        &mut conn,
        &state.key_policy,
        &state.master_key,
        now_ms(),
        &test_operator(),
        None,
    )
    .unwrap();
    state.sync_keys().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_example_accepts_access_tokens_and_refuses_everything_else() {
    let tessera = spawn_reachable(Backend::Sqlite, |_| {}).await;
    let app = &tessera.app;
    let carol = app.create_user("carol", &["admin"]);
    app.create_user("dave", &[]);
    let verifier = Verifier::discover(&app.address, &app.address, Duration::from_secs(30))
        .await
        .unwrap();
    let api = Api::start(verifier).await;
    let login = app.login("carol", PASSWORD).await;

    let (status, me) = api.me(&login.access_token).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], carol.as_str());
    assert_eq!(me["roles"], json!(["admin"]));
    assert_eq!(me["fresh"], true);
    let (status, _) = api
        .call(
            reqwest::Method::GET,
            "/api/admin/reports",
            &login.access_token,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = api
        .call(
            reqwest::Method::POST,
            "/api/account/delete",
            &login.access_token,
        )
        .await;
    assert_eq!(status, 200, "a fresh token passes the fresh check");

    let dave = app.login("dave", PASSWORD).await;
    let (status, body) = api
        .call(
            reqwest::Method::GET,
            "/api/admin/reports",
            &dave.access_token,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("insufficient_scope"))
    );

    let refresh = login.refresh_token.clone().unwrap();
    let (status, body) = api.me(&refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
    // Even relabelled as an access token, a refresh token's `type` gives it away.
    let relabelled = with_header(&refresh, |h| h["typ"] = json!("at+jwt"));
    assert_eq!(api.me(&relabelled).await.0, 401);

    let refreshed = tokens(app.refresh(&refresh).await).await;
    let (status, me) = api.me(&refreshed.access_token).await;
    assert_eq!((status, me["fresh"].as_bool()), (200, Some(false)));
    let (status, body) = api
        .call(
            reqwest::Method::POST,
            "/api/account/delete",
            &refreshed.access_token,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("insufficient_user_authentication")),
        "a token from a refresh is not fresh"
    );

    let mut expired = claims(&login.access_token);
    let past = tessera::now() - 600;
    expired["iat"] = json!(past - 900);
    expired["nbf"] = json!(past - 900);
    expired["exp"] = json!(past);
    let expired = app
        .state
        .keys
        .sign(TokenKind::Access, None, &expired)
        .unwrap();
    let (status, body) = api.me(&expired).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (401, Some("token expired"))
    );

    let forged = tampered(&dave.access_token, |c| c["roles"] = json!(["admin"]));
    assert_eq!(api.me(&forged).await.0, 401);
    let unsigned = with_header(&forged, |h| h["alg"] = json!("none"));
    assert_eq!(api.me(&unsigned).await.0, 401);
    let hmac = with_header(&forged, |h| h["alg"] = json!("HS256"));
    assert_eq!(api.me(&hmac).await.0, 401);
    let (status, body) = api.me("not a token").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_example_follows_a_rotation_and_outlives_tessera_with_its_cached_keys() {
    let tessera = spawn_reachable(Backend::Sqlite, |_| {}).await;
    let app = &tessera.app;
    app.create_user("carol", &[]);
    let min_refresh = Duration::from_millis(300);
    let verifier = Verifier::discover(&app.address, &app.address, min_refresh)
        .await
        .unwrap();
    let api = Api::start(verifier.clone()).await;
    let before = app.login("carol", PASSWORD).await;
    assert_eq!(api.me(&before.access_token).await.0, 200);
    let fetched = verifier.fetches();

    // Twice, so that the new active key was not yet even staged when the API fetched.
    rotate(app);
    rotate(app);
    let after = app.login("carol", PASSWORD).await;
    assert_ne!(
        header(&after.access_token)["kid"],
        header(&before.access_token)["kid"]
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while api.me(&after.access_token).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the API never learnt the new key"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        verifier.fetches() > fetched,
        "an unknown kid made it fetch the JWKS"
    );
    assert_eq!(
        api.me(&before.access_token).await.0,
        200,
        "the old key is still published"
    );

    // Unknown kids do not make it fetch on every request.
    tokio::time::sleep(min_refresh).await;
    let fetched = verifier.fetches();
    let bogus = with_header(&after.access_token, |h| h["kid"] = json!("no-such-key"));
    for _ in 0..5 {
        assert_eq!(api.me(&bogus).await.0, 401);
    }
    assert_eq!(verifier.fetches(), fetched + 1, "one fetch per min_refresh");

    tessera.handle.stop(true).await;
    let down = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .timeout(Duration::from_secs(2))
        .send()
        .await;
    assert!(down.is_err(), "tessera is stopped");
    assert_eq!(api.me(&after.access_token).await.0, 200);
    assert_eq!(api.me(&before.access_token).await.0, 200);
    tokio::time::sleep(min_refresh).await;
    let (status, body) = api.me(&bogus).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_token")),
        "a failed JWKS fetch refuses the token and keeps the cache"
    );
    assert_eq!(api.me(&after.access_token).await.0, 200);
}
