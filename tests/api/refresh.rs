//! Refresh-token rotation, reuse detection, revocation and introspection.

use crate::helpers::*;

both_backends! {
    async fn refresh_rotates_both_tokens_and_marks_the_access_token_not_fresh(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let first_refresh = tokens.refresh_token.unwrap();
        let refreshed = crate::helpers::tokens(app.refresh(&first_refresh).await).await;
        let second_refresh = refreshed.refresh_token.clone().unwrap();
        assert_ne!(first_refresh, second_refresh);
        assert_eq!(claims(&refreshed.access_token)["fresh"], false);
        assert_eq!(claims(&refreshed.access_token)["sid"], claims(&tokens.access_token)["sid"]);
        assert_eq!(app.refresh(&second_refresh).await.status().as_u16(), 200);
    }

    async fn reusing_a_spent_refresh_token_revokes_the_whole_session(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let first = tokens.refresh_token.unwrap();
        let successor = crate::helpers::tokens(app.refresh(&first).await).await;
        assert_error(app.refresh(&first).await, 400, "invalid_grant").await;
        // The successor dies with the session, and so do its access tokens.
        assert_error(app.refresh(successor.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        assert_error(app.get_bearer("/userinfo", &successor.access_token).await, 401, "invalid_token").await;
    }

    async fn concurrent_refreshes_of_one_token_leave_at_most_one_live_successor(backend) {
        let app = spawn_app_with(backend, |s| s.db_pool_size = 8).await;
        let tokens = app.user_with_tokens("alice").await;
        let token = tokens.refresh_token.unwrap();
        let attempts = (0..12).map(|_| app.refresh(&token));
        let responses = futures_util::future::join_all(attempts).await;
        let mut successors = Vec::new();
        for response in responses {
            if response.status().as_u16() == 200 {
                successors.push(crate::helpers::tokens(response).await.refresh_token.unwrap());
            }
        }
        let mut live = 0;
        for successor in &successors {
            if app.refresh(successor).await.status().as_u16() == 200 {
                live += 1;
            }
        }
        assert!(live <= 1, "{live} live successors out of {}", successors.len());
    }

    async fn revoking_a_refresh_token_ends_its_session(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let refresh = tokens.refresh_token.unwrap();
        let response = app.post_form("/oauth/revoke", &[("token", &refresh), ("token_type_hint", "refresh_token")]).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_error(app.refresh(&refresh).await, 400, "invalid_grant").await;
        assert_error(app.get_bearer("/userinfo", &tokens.access_token).await, 401, "invalid_token").await;
    }

    async fn revoking_an_access_token_deny_lists_it(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let response = app.post_form("/oauth/revoke", &[("token", &tokens.access_token)]).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_error(app.get_bearer("/userinfo", &tokens.access_token).await, 401, "invalid_token").await;
        // The session itself lives on.
        assert_eq!(app.refresh(tokens.refresh_token.as_deref().unwrap()).await.status().as_u16(), 200);
    }

    async fn introspection_reports_active_tokens_and_inactive_revoked_ones(backend) {
        let app = spawn_app(backend).await;
        let secret = app.confidential_client("resource-api");
        let tokens = app.user_with_tokens("alice").await;
        let introspect = |token: String| {
            app.client.post(app.url("/oauth/introspect")).basic_auth("resource-api", Some(secret.clone())).form(&[("token", token)]).send()
        };
        let body: serde_json::Value = introspect(tokens.access_token.clone()).await.unwrap().json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["username"], "alice");
        assert_eq!(body["client_id"], "first-party");
        let body: serde_json::Value = introspect(tokens.refresh_token.clone().unwrap()).await.unwrap().json().await.unwrap();
        assert_eq!(body["active"], true);
        assert_eq!(body["token_type"], "refresh_token");
        app.post_form("/oauth/revoke", &[("token", &tokens.access_token)]).await;
        let body: serde_json::Value = introspect(tokens.access_token.clone()).await.unwrap().json().await.unwrap();
        assert_eq!(body, serde_json::json!({"active": false}));
        let body: serde_json::Value = introspect("garbage".into()).await.unwrap().json().await.unwrap();
        assert_eq!(body, serde_json::json!({"active": false}));
    }
}

#[tokio::test]
async fn within_the_grace_period_a_replay_returns_the_same_successor() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.refresh_reuse_grace = 60).await;
    let tokens = app.user_with_tokens("alice").await;
    let first = tokens.refresh_token.unwrap();
    let a = crate::helpers::tokens(app.refresh(&first).await).await;
    let b = crate::helpers::tokens(app.refresh(&first).await).await;
    assert_eq!(a.refresh_token, b.refresh_token);
    assert_ne!(a.access_token, b.access_token);
    assert_eq!(
        app.refresh(a.refresh_token.as_deref().unwrap())
            .await
            .status()
            .as_u16(),
        200
    );
}

#[tokio::test]
async fn introspection_requires_a_confidential_client() {
    let app = spawn_app(Backend::Sqlite).await;
    let tokens = app.user_with_tokens("alice").await;
    let response = app
        .post_form("/oauth/introspect", &[("token", &tokens.access_token)])
        .await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="tessera""#
    );
    assert_error(response, 401, "invalid_client").await;
    let response = app
        .post_form(
            "/oauth/introspect",
            &[
                ("token", &tokens.access_token),
                ("client_id", "first-party"),
            ],
        )
        .await;
    assert_error(response, 401, "invalid_client").await;
}

#[tokio::test]
async fn revoking_an_unknown_token_is_200() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(
        app.post_form("/oauth/revoke", &[("token", "no-such-token")])
            .await
            .status()
            .as_u16(),
        200
    );
}

/// An app whose per-address limit allows three credential-guessing requests a minute.
async fn app_limited_to_three() -> TestApp {
    spawn_app_with(Backend::Sqlite, |s| {
        s.login_rate_limit = Some(tessera::ratelimit::Rate {
            count: 3,
            per_secs: 60,
        })
    })
    .await
}

async fn post_with_secret(
    app: &TestApp,
    path: &str,
    secret: &str,
    token: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .basic_auth("resource-api", Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

async fn assert_rate_limited(response: reqwest::Response) {
    assert!(
        response.headers().contains_key("retry-after"),
        "429 without Retry-After"
    );
    assert_error(response, 429, "rate_limited").await;
}

/// A client_credentials token of `resource-api` (a success, so it spends no allowance).
async fn client_token(app: &TestApp, secret: &str) -> String {
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth("resource-api", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    tokens(response).await.access_token
}

#[tokio::test]
async fn wrong_client_secrets_at_introspection_meet_the_address_limit() {
    let app = app_limited_to_three().await;
    let secret = app.confidential_client("resource-api");
    let token = client_token(&app, &secret).await;
    for _ in 0..3 {
        let response = post_with_secret(&app, "/oauth/introspect", "guess", &token).await;
        assert_error(response, 401, "invalid_client").await;
    }
    for _ in 0..3 {
        let response = post_with_secret(&app, "/oauth/introspect", "guess", &token).await;
        assert_rate_limited(response).await;
    }
    // No credentials at all is a failed client authentication too.
    let response = app
        .post_form("/oauth/introspect", &[("token", &token)])
        .await;
    assert_rate_limited(response).await;
    // Successful authentications are not limited: the resource server keeps working.
    let response = post_with_secret(&app, "/oauth/introspect", &secret, &token).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["active"], true);
}

#[tokio::test]
async fn wrong_client_secrets_at_revocation_meet_the_address_limit_and_revoke_nothing() {
    let app = app_limited_to_three().await;
    let secret = app.confidential_client("resource-api");
    let token = client_token(&app, &secret).await;
    let active = || async {
        let response = post_with_secret(&app, "/oauth/introspect", &secret, &token).await;
        let body: serde_json::Value = response.json().await.unwrap();
        body["active"].as_bool().unwrap()
    };
    for _ in 0..3 {
        let response = post_with_secret(&app, "/oauth/revoke", "guess", &token).await;
        assert_error(response, 401, "invalid_client").await;
    }
    let response = post_with_secret(&app, "/oauth/revoke", "guess", &token).await;
    assert_rate_limited(response).await;
    let malformed = app
        .client
        .post(app.url("/oauth/revoke"))
        .header("authorization", "Basic !!!")
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_rate_limited(malformed).await;
    assert!(active().await, "a refused revocation revoked the token");
    let response = post_with_secret(&app, "/oauth/revoke", &secret, &token).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(!active().await);
}

#[tokio::test]
async fn failed_client_authentications_share_one_budget_across_endpoints() {
    let app = app_limited_to_three().await;
    app.confidential_client("resource-api");
    let response = post_with_secret(&app, "/oauth/introspect", "guess", "t").await;
    assert_error(response, 401, "invalid_client").await;
    let response = post_with_secret(&app, "/oauth/revoke", "guess", "t").await;
    assert_error(response, 401, "invalid_client").await;
    let response = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth("resource-api", Some("guess"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_error(response, 401, "invalid_client").await;
    let response = post_with_secret(&app, "/oauth/introspect", "guess", "t").await;
    assert_rate_limited(response).await;
}
