//! Signing keys as resource servers see them: the JWKS, discovery, rotation (on demand and
//! by schedule), retirement, restarts, several instances, and verification with
//! `jsonwebtoken` the way a Rust resource server does it.

use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::header;
use serde_json::Value;
use tessera::app::Application;
use tessera::config::MasterKeySource;
use tessera::state::AppState;
use tessera::store::signing_keys;
use tessera::tokens::keyring::{classify, KeyInfo, KeyStatus};
use tessera::tokens::now_ms;
use tessera::tokens::rotation::{self, Retired};

use crate::helpers::*;

/// The JWKS as a client fetches it.
async fn jwks(app: &TestApp) -> Value {
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

/// The JWKS body as served.
async fn jwks_text(app: &TestApp) -> String {
    app.get("/.well-known/jwks.json")
        .await
        .text()
        .await
        .unwrap()
}

/// The kids a JWKS publishes, in order.
fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .expect("`keys` is an array")
        .iter()
        .map(|k| k["kid"].as_str().expect("every key has a kid").to_string())
        .collect()
}

/// Every stored key and its status now.
fn key_infos(state: &AppState) -> Vec<KeyInfo> {
    let mut conn = state.db.get().unwrap();
    let rows = signing_keys::list(&mut conn).unwrap();
    classify(&rows, now_ms(), state.key_policy.max_token_lifetime_ms)
}

/// The kids with `status`.
fn kids_with(state: &AppState, status: KeyStatus) -> Vec<String> {
    key_infos(state)
        .into_iter()
        .filter(|i| i.status == status)
        .map(|i| i.kid)
        .collect()
}

/// Rotates now, as `tessera keys rotate` does, and reloads this instance's keys.
fn rotate(app: &TestApp) -> String {
    let state = &app.state;
    let mut conn = state.db.get().unwrap();
    let kid = rotation::rotate_now(
        &mut conn,
        &state.key_policy,
        &state.master_key,
        now_ms(),
        &test_operator(),
        None,
    )
    .unwrap();
    state.sync_keys().unwrap();
    kid.into_iter().next().unwrap().1
}

/// Retires `kid`, as `tessera keys retire` does, and reloads this instance's keys.
fn retire(app: &TestApp, kid: &str) {
    let state = &app.state;
    let mut conn = state.db.get().unwrap();
    let outcome = rotation::retire(
        &mut conn,
        &state.key_policy,
        &state.master_key,
        kid,
        now_ms(),
        &test_operator(),
    )
    .unwrap();
    assert_eq!(outcome, Retired::Done);
    state.sync_keys().unwrap();
}

fn kid_of(token: &str) -> String {
    header(token)["kid"].as_str().unwrap().to_string()
}

/// A time limit for polling: `tick` waits a little, or fails the test once it has passed.
struct Deadline {
    at: Instant,
    what: &'static str,
}

impl Deadline {
    fn after(limit: Duration, what: &'static str) -> Self {
        Deadline {
            at: Instant::now() + limit,
            what,
        }
    }

    async fn tick(&self) {
        assert!(
            Instant::now() < self.at,
            "timed out waiting until {}",
            self.what
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends! {
    async fn the_jwks_publishes_the_active_and_the_staged_key_as_rs256_public_keys(backend) {
        let app = spawn_app(backend).await;
        let response = app.get("/.well-known/jwks.json").await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "public, max-age=300");
        assert!(response.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("application/json"));
        assert!(response.headers().contains_key(header::ETAG));
        let body: Value = response.json().await.unwrap();
        let keys = body["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 2, "{body}");
        for key in keys {
            let mut fields: Vec<&str> = key.as_object().unwrap().keys().map(String::as_str).collect();
            fields.sort_unstable();
            assert_eq!(fields, ["alg", "e", "kid", "kty", "n", "use"], "public members only: {key}");
            assert_eq!(key["kty"], "RSA");
            assert_eq!(key["use"], "sig");
            assert_eq!(key["alg"], "RS256");
            assert_eq!(key["e"], "AQAB");
            // A 2048-bit modulus is 256 bytes: 342 base64url characters, unpadded.
            assert_eq!(key["n"].as_str().unwrap().len(), 342);
        }
        let mut published = kids(&body);
        published.sort();
        let mut expected = kids_with(&app.state, KeyStatus::Active);
        expected.extend(kids_with(&app.state, KeyStatus::Staged));
        expected.sort();
        assert_eq!(published, expected);
    }
}

#[tokio::test]
async fn the_jwks_answers_304_to_a_matching_if_none_match() {
    let app = spawn_app(Backend::Sqlite).await;
    let first = app.get("/.well-known/jwks.json").await;
    let etag = first.headers()[header::ETAG].to_str().unwrap().to_string();
    let body = first.text().await.unwrap();
    let again = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
    assert_eq!(again.headers()[header::ETAG], etag.as_str());
    assert_eq!(
        again.headers()[header::CACHE_CONTROL],
        "public, max-age=300"
    );
    assert!(again.text().await.unwrap().is_empty());
    let other = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header(header::IF_NONE_MATCH, "\"something-else\"")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
    assert_eq!(other.text().await.unwrap(), body);
}

#[tokio::test]
async fn the_jwks_etag_changes_when_the_keys_change() {
    let app = spawn_app(Backend::Sqlite).await;
    let before = app.get("/.well-known/jwks.json").await;
    let etag = before.headers()[header::ETAG].to_str().unwrap().to_string();
    rotate(&app);
    let after = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .header(header::IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status().as_u16(), 200);
    assert_ne!(after.headers()[header::ETAG], etag.as_str());
}

#[tokio::test]
async fn the_jwks_max_age_follows_the_setting() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.jwks_max_age = 60).await;
    let response = app.get("/.well-known/jwks.json").await;
    assert_eq!(
        response.headers()[header::CACHE_CONTROL],
        "public, max-age=60"
    );
}

#[tokio::test]
async fn discovery_documents_list_the_rfc_8414_fields_and_no_registration_endpoint() {
    let app = spawn_app(Backend::Sqlite).await;
    let issuer = "http://tessera.test";
    let mut documents = Vec::new();
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let doc: Value = response.json().await.unwrap();
        assert_eq!(doc["issuer"], issuer, "{path}");
        assert_eq!(doc["token_endpoint"], format!("{issuer}/oauth/token"));
        assert_eq!(doc["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
        assert_eq!(doc["revocation_endpoint"], format!("{issuer}/oauth/revoke"));
        assert_eq!(
            doc["introspection_endpoint"],
            format!("{issuer}/oauth/introspect")
        );
        assert_eq!(doc["userinfo_endpoint"], format!("{issuer}/userinfo"));
        assert!(
            doc.get("registration_endpoint").is_none(),
            "/register is not RFC 7591 dynamic client registration: {doc}"
        );
        let strings = |field: &str| -> Vec<String> {
            doc[field]
                .as_array()
                .unwrap_or_else(|| panic!("{field} is an array in {path}"))
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        for grant in ["password", "refresh_token", "client_credentials"] {
            assert!(
                strings("grant_types_supported").contains(&grant.to_string()),
                "{grant}"
            );
        }
        assert_eq!(
            strings("token_endpoint_auth_methods_supported"),
            ["client_secret_basic", "client_secret_post", "none"]
        );
        assert_eq!(strings("scopes_supported"), ["email", "openid", "profile"]);
        assert!(!strings("response_types_supported").is_empty());
        assert!(!strings("revocation_endpoint_auth_methods_supported").is_empty());
        let introspection = strings("introspection_endpoint_auth_methods_supported");
        assert!(introspection.contains(&"client_secret_basic".to_string()));
        assert!(
            !introspection.contains(&"none".to_string()),
            "introspection needs a confidential client"
        );
        documents.push(doc);
    }
    assert_eq!(documents[0], documents[1]);
}

both_backends! {
    async fn a_staged_key_is_published_before_it_signs_anything(backend) {
        let app = spawn_app(backend).await;
        let staged = kids_with(&app.state, KeyStatus::Staged);
        assert_eq!(staged.len(), 1);
        let active = kids_with(&app.state, KeyStatus::Active);
        assert!(kids(&jwks(&app).await).contains(&staged[0]));
        let tokens = app.user_with_tokens("alice").await;
        assert_eq!(kid_of(&tokens.access_token), active[0]);
        assert_eq!(kid_of(tokens.refresh_token.as_deref().unwrap()), active[0]);
        let info = key_infos(&app.state).into_iter().find(|i| i.kid == staged[0]).unwrap();
        // It activates no sooner than one JWKS cache lifetime (plus a key poll) from now.
        let lead = (app.settings.jwks_max_age + app.settings.key_poll_interval) * 1000;
        assert!(info.activates_at >= info.created_at + lead, "{info:?}");
    }

    async fn after_rotation_old_tokens_still_verify_and_new_tokens_carry_the_new_kid(backend) {
        let app = spawn_app(backend).await;
        let old = app.user_with_tokens("alice").await;
        let old_kid = kid_of(&old.access_token);
        let staged = kids_with(&app.state, KeyStatus::Staged).remove(0);
        let new_kid = rotate(&app);
        assert_eq!(new_kid, staged, "rotation activates the key already published");
        let published = kids(&jwks(&app).await);
        assert!(published.contains(&old_kid), "the old key stays published: {published:?}");
        assert!(published.contains(&new_kid));
        let next = kids_with(&app.state, KeyStatus::Staged);
        assert_eq!(next.len(), 1);
        assert!(published.contains(&next[0]), "a fresh successor is staged and published");
        assert_eq!(published.len(), 3);

        let response = app.get_bearer("/userinfo", &old.access_token).await;
        assert_eq!(response.status().as_u16(), 200, "a token of the old key still verifies");
        let fresh = app.login("alice", PASSWORD).await;
        assert_eq!(kid_of(&fresh.access_token), new_kid);
        assert_eq!(app.get_bearer("/userinfo", &fresh.access_token).await.status().as_u16(), 200);
        let refreshed = app.refresh(old.refresh_token.as_deref().unwrap()).await;
        assert_eq!(refreshed.status().as_u16(), 200, "a refresh token of the old key still works");
        let refreshed = tokens(refreshed).await;
        assert_eq!(kid_of(&refreshed.access_token), new_kid);
        assert_eq!(kid_of(refreshed.refresh_token.as_deref().unwrap()), new_kid);
    }

    async fn a_rotation_stages_its_successor_at_least_one_jwks_cache_lifetime_ahead(backend) {
        // A rotation interval shorter than the JWKS cache lifetime must not let the successor
        // sign before caches can have seen it.
        let app = spawn_app_with(backend, |s| {
            s.key_rotation_interval = 2;
            s.jwks_max_age = 300;
        })
        .await;
        rotate(&app);
        let lead = (app.settings.jwks_max_age + app.settings.key_poll_interval) * 1000;
        let staged = key_infos(&app.state)
            .into_iter()
            .find(|i| i.status == KeyStatus::Staged)
            .unwrap();
        assert!(staged.activates_at >= staged.created_at + lead, "{staged:?}");
    }

    async fn retiring_a_key_drops_it_from_the_jwks_and_refuses_its_tokens(backend) {
        let app = spawn_app(backend).await;
        let old = app.user_with_tokens("alice").await;
        let old_kid = kid_of(&old.access_token);
        rotate(&app);
        assert_eq!(app.get_bearer("/userinfo", &old.access_token).await.status().as_u16(), 200);
        retire(&app, &old_kid);
        let published = kids(&jwks(&app).await);
        assert!(!published.contains(&old_kid), "{published:?}");
        assert_eq!(published.len(), 2, "the active key and its successor remain");
        assert_error(app.get_bearer("/userinfo", &old.access_token).await, 401, "invalid_token").await;
        assert_error(app.refresh(old.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        let fresh = app.login("alice", PASSWORD).await;
        assert_eq!(app.get_bearer("/userinfo", &fresh.access_token).await.status().as_u16(), 200);
    }

    async fn retiring_the_active_key_rotates_first(backend) {
        let app = spawn_app(backend).await;
        let old = app.user_with_tokens("alice").await;
        let active = kid_of(&old.access_token);
        let staged = kids_with(&app.state, KeyStatus::Staged).remove(0);
        retire(&app, &active);
        assert_eq!(kids_with(&app.state, KeyStatus::Active), vec![staged.clone()]);
        let published = kids(&jwks(&app).await);
        assert!(!published.contains(&active));
        assert_error(app.get_bearer("/userinfo", &old.access_token).await, 401, "invalid_token").await;
        let fresh = app.login("alice", PASSWORD).await;
        assert_eq!(kid_of(&fresh.access_token), staged);
    }

    async fn keys_survive_a_restart_on_the_same_database(backend) {
        let first = spawn_app(backend).await;
        let tokens = first.user_with_tokens("alice").await;
        let before = jwks_text(&first).await;
        let second = start(first.settings.clone(), first.dir.clone()).await;
        let after = jwks_text(&second).await;
        assert_eq!(before, after);
        assert_eq!(key_infos(&second.state).len(), 2, "no key was added");
        assert_eq!(second.get_bearer("/userinfo", &tokens.access_token).await.status().as_u16(), 200);
        let again = second.login("alice", PASSWORD).await;
        assert_eq!(kid_of(&again.access_token), kid_of(&tokens.access_token));
    }

    async fn another_master_key_cannot_start_on_an_existing_database(backend) {
        let first = spawn_app(backend).await;
        let before: Vec<String> = key_infos(&first.state).into_iter().map(|i| i.kid).collect();
        let mut settings = first.settings.clone();
        settings.master_key =
            MasterKeySource::Inline(tessera::crypto::MasterKey::generate().to_base64().into());
        let error = tokio::task::spawn_blocking(move || Application::build(settings))
            .await
            .unwrap()
            .err()
            .expect("starting with another master key fails");
        let message = format!("{error:#}");
        assert!(message.contains("master key"), "{message}");
        assert!(message.contains("TESSERA_MASTER_KEY"), "{message}");
        let after: Vec<String> = key_infos(&first.state).into_iter().map(|i| i.kid).collect();
        assert_eq!(before, after, "no key was created with the wrong master key");
    }

    async fn scheduled_rotation_activates_the_staged_key_and_stages_the_next_on_every_instance(backend) {
        let first = spawn_app_with(backend, |s| {
            s.key_rotation_interval = 3;
            s.key_poll_interval = 1;
            s.jwks_max_age = 0;
        })
        .await;
        let second = start(first.settings.clone(), first.dir.clone()).await;
        let initial = kids(&jwks(&first).await);
        assert_eq!(initial.len(), 2);
        let active = kids_with(&first.state, KeyStatus::Active).remove(0);
        let staged = kids_with(&first.state, KeyStatus::Staged).remove(0);
        assert_eq!(first.state.keys.active_kid().as_deref(), Some(active.as_str()));

        // By time alone: the staged key signs, and a new successor is published.
        for app in [&first, &second] {
            let deadline = Deadline::after(Duration::from_secs(10), "the staged key is active");
            while app.state.keys.active_kid().as_deref() == Some(active.as_str()) {
                deadline.tick().await;
            }
            assert_eq!(app.state.keys.active_kid().as_deref(), Some(staged.as_str()));
            let deadline = Deadline::after(Duration::from_secs(10), "a new successor is published");
            loop {
                let published = kids(&jwks(app).await);
                if published.contains(&staged) && published.iter().any(|k| !initial.contains(k)) {
                    break;
                }
                deadline.tick().await;
            }
        }
        let tokens = second.user_with_tokens("alice").await;
        assert_ne!(kid_of(&tokens.access_token), active);
        assert_eq!(first.get_bearer("/userinfo", &tokens.access_token).await.status().as_u16(), 200);
        // The rotation happened once, not once per instance.
        let infos = key_infos(&first.state);
        assert_eq!(infos.iter().filter(|i| i.status == KeyStatus::Active).count(), 1);
        assert_eq!(infos.iter().filter(|i| i.status == KeyStatus::Staged).count(), 1, "{infos:?}");
    }

    async fn a_second_instance_serves_the_same_jwks_and_sees_a_rotation_within_the_poll_interval(backend) {
        let first = spawn_app(backend).await;
        let second = start(first.settings.clone(), first.dir.clone()).await;
        assert_eq!(jwks_text(&first).await, jwks_text(&second).await);
        let new_kid = rotate(&first);
        let expected = jwks_text(&first).await;
        let limit = Duration::from_secs(first.settings.key_poll_interval as u64 + 4);
        let deadline = Deadline::after(limit, "the second instance serves the new JWKS");
        while jwks_text(&second).await != expected {
            deadline.tick().await;
        }
        assert_eq!(second.state.keys.active_kid(), Some(new_kid.clone()));
        let tokens = second.user_with_tokens("alice").await;
        assert_eq!(kid_of(&tokens.access_token), new_kid);
    }
}

/// Opens `count` instances at the same moment on one empty database.
async fn open_at_once(backend: Backend, count: usize) -> Vec<AppState> {
    open_at_once_with(backend, count, |_| {}).await
}

/// [`open_at_once`] with adjusted settings.
async fn open_at_once_with(
    backend: Backend,
    count: usize,
    configure: impl FnOnce(&mut tessera::config::Settings),
) -> Vec<AppState> {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(fresh_database(&backend, dir.path()));
    configure(&mut settings);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(count));
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let settings = settings.clone();
            let barrier = barrier.clone();
            tokio::task::spawn_blocking(move || {
                barrier.wait();
                AppState::open(settings)
            })
        })
        .collect();
    let mut states = Vec::new();
    for task in tasks {
        states.push(task.await.unwrap().expect("every instance starts"));
    }
    states
}

both_backends! {
    async fn instances_starting_at_once_on_an_empty_database_end_with_exactly_one_active_key(backend) {
        let states = open_at_once(backend, 4).await;
        let infos = key_infos(&states[0]);
        assert_eq!(infos.len(), 2, "{infos:?}");
        assert_eq!(infos.iter().filter(|i| i.status == KeyStatus::Active).count(), 1);
        assert_eq!(infos.iter().filter(|i| i.status == KeyStatus::Staged).count(), 1);
        let active = kids_with(&states[0], KeyStatus::Active);
        for state in &states {
            assert_eq!(state.keys.active_kid(), Some(active[0].clone()));
        }
    }

    async fn instances_starting_at_once_end_with_exactly_one_active_key_per_algorithm(backend) {
        use tessera::tokens::algs::SigningAlg;
        let states = open_at_once_with(backend, 4, crate::algs::all_algs).await;
        let infos = key_infos(&states[0]);
        assert_eq!(infos.len(), 6, "{infos:?}");
        for alg in SigningAlg::ALL {
            let of_alg = |status| infos.iter().filter(|i| i.alg == alg.as_str() && i.status == status).count();
            assert_eq!(of_alg(KeyStatus::Active), 1, "{alg}: {infos:?}");
            assert_eq!(of_alg(KeyStatus::Staged), 1, "{alg}: {infos:?}");
            let active = states[0].keys.active_kid_for(alg);
            assert!(active.is_some());
            for state in &states {
                assert_eq!(state.keys.active_kid_for(alg), active);
            }
        }
    }
}

/// What a Rust resource server does with a bearer token: find the key by `kid` in the JWKS,
/// verify RS256 with issuer and audience, and insist on an access token.
fn verify_as_resource_server(
    jwks: &JwkSet,
    token: &str,
    issuer: &str,
    audience: &str,
) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err("not RS256".into());
    }
    if header.typ.as_deref() != Some("at+jwt") {
        return Err(format!("typ {:?} is not an access token", header.typ));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = jwks.find(&kid).ok_or("unknown kid")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("jwk: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| format!("decode: {e}"))?;
    if data.claims["type"] != "access" {
        return Err("type is not access".into());
    }
    Ok(data.claims)
}

#[tokio::test]
async fn a_rust_resource_server_verifies_access_tokens_offline_with_the_jwks() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = app.create_user("carol", &["editor"]);
    let tokens = app.login("carol", PASSWORD).await;
    let jwks: JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let issuer = "http://tessera.test";
    let claims = verify_as_resource_server(&jwks, &tokens.access_token, issuer, issuer).unwrap();
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["roles"], serde_json::json!(["editor"]));
    assert_eq!(claims["fresh"], true);

    let refresh = tokens.refresh_token.unwrap();
    let refused = verify_as_resource_server(&jwks, &refresh, issuer, issuer).unwrap_err();
    assert!(refused.contains("not an access token"), "{refused}");
    // Without the `typ`/`type` checks its audience alone refuses it (SPEC §6.1): it is the
    // token endpoint, not the issuer that is the default access audience. Signature and
    // issuer check out.
    let key = DecodingKey::from_jwk(jwks.find(&kid_of(&refresh)).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[issuer]);
    let refused = jsonwebtoken::decode::<Value>(&refresh, &key, &validation).unwrap_err();
    assert_eq!(
        refused.kind(),
        &jsonwebtoken::errors::ErrorKind::InvalidAudience
    );
    validation.set_audience(&[format!("{issuer}/oauth/token")]);
    let data = jsonwebtoken::decode::<Value>(&refresh, &key, &validation).unwrap();
    assert_eq!(data.claims["type"], "refresh");

    let wrong_audience =
        verify_as_resource_server(&jwks, &tokens.access_token, issuer, "https://other.api");
    assert!(wrong_audience.is_err());
    let wrong_issuer =
        verify_as_resource_server(&jwks, &tokens.access_token, "https://evil.test", issuer);
    assert!(wrong_issuer.is_err());
}

#[tokio::test]
async fn a_rust_resource_server_refuses_tampered_and_unsigned_tokens() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("carol", &[]);
    let tokens = app.login("carol", PASSWORD).await;
    let jwks: JwkSet = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let issuer = "http://tessera.test";
    let parts: Vec<&str> = tokens.access_token.split('.').collect();
    let mut claims = claims(&tokens.access_token);
    claims["roles"] = serde_json::json!(["admin"]);
    let forged = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = format!("{}.{}.{}", parts[0], forged, parts[2]);
    assert!(verify_as_resource_server(&jwks, &tampered, issuer, issuer)
        .unwrap_err()
        .contains("decode"));
    let none_header = URL_SAFE_NO_PAD.encode(
        serde_json::json!({"alg": "none", "typ": "at+jwt", "kid": kid_of(&tokens.access_token)})
            .to_string(),
    );
    let unsigned = format!("{none_header}.{forged}.");
    assert!(verify_as_resource_server(&jwks, &unsigned, issuer, issuer).is_err());
    assert_error(
        app.get_bearer("/userinfo", &unsigned).await,
        401,
        "invalid_token",
    )
    .await;
    assert_error(
        app.get_bearer("/userinfo", &tampered).await,
        401,
        "invalid_token",
    )
    .await;
}
