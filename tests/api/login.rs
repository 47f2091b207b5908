//! Registration, the password grant and `/userinfo`.

use serde_json::json;

use crate::helpers::*;

both_backends! {
    async fn register_login_and_userinfo_work_end_to_end(backend) {
        let app = spawn_app(backend).await;
        let registered = app.register("alice", PASSWORD).await;
        assert_eq!(registered["username"], "alice");
        let tokens = app.login("alice", PASSWORD).await;
        assert_eq!(tokens.body["token_type"], "Bearer");
        assert_eq!(tokens.body["expires_in"], 900);
        assert_eq!(tokens.body["scope"], "profile email");
        let response = app.get_bearer("/userinfo", &tokens.access_token).await;
        assert_eq!(response.status().as_u16(), 200);
        let info: serde_json::Value = response.json().await.unwrap();
        assert_eq!(info["sub"], registered["id"]);
        assert_eq!(info["username"], "alice");
        assert_eq!(info["mfa_enabled"], false);
    }

    async fn usernames_are_unique_case_insensitively(backend) {
        let app = spawn_app(backend).await;
        app.register("Alice", PASSWORD).await;
        let response = app.post_json("/register", &json!({"username": "aLICE", "password": PASSWORD})).await;
        assert_error(response, 409, "username_taken").await;
    }

    async fn unknown_user_and_wrong_password_get_the_same_answer(backend) {
        let app = spawn_app(backend).await;
        app.register("alice", PASSWORD).await;
        let wrong = assert_error(app.token(&[("grant_type", "password"), ("username", "alice"), ("password", "not the password")]).await, 400, "invalid_grant").await;
        let unknown = assert_error(app.token(&[("grant_type", "password"), ("username", "nobody"), ("password", "not the password")]).await, 400, "invalid_grant").await;
        assert_eq!(wrong, unknown);
    }
}

#[tokio::test]
async fn access_tokens_carry_the_contract_claims_and_header() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = app.create_user("carol", &["editor"]);
    let tokens = app.login("carol", PASSWORD).await;
    let header = header(&tokens.access_token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].is_string());
    let claims = claims(&tokens.access_token);
    assert_eq!(claims["iss"], "http://tessera.test");
    assert_eq!(claims["sub"], id.as_str());
    assert_eq!(claims["aud"], "http://tessera.test");
    assert_eq!(claims["client_id"], "first-party");
    assert_eq!(claims["roles"], json!(["editor"]));
    assert_eq!(claims["amr"], json!(["pwd"]));
    assert_eq!(claims["type"], "access");
    assert_eq!(claims["fresh"], true);
    assert_eq!(claims["username"], "carol");
    assert!(claims["sid"].is_string());
    assert!(claims["jti"].is_string());
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        900
    );
    let refresh = tokens.refresh_token.unwrap();
    assert_eq!(header_of(&refresh)["typ"], "refresh+jwt");
    let refresh_claims = crate::helpers::claims(&refresh);
    // SPEC §6.1: the token endpoint, never an access-token audience.
    assert_eq!(refresh_claims["aud"], "http://tessera.test/oauth/token");
    assert_eq!(refresh_claims["type"], "refresh");
    assert_eq!(refresh_claims["sid"], claims["sid"]);
}

fn header_of(token: &str) -> serde_json::Value {
    header(token)
}

#[tokio::test]
async fn token_responses_are_never_cached() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("alice", PASSWORD).await;
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .await;
    assert_eq!(response.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn weak_passwords_are_refused_with_the_reason() {
    let app = spawn_app(Backend::Sqlite).await;
    for (password, reason) in [
        ("short1", "at least 8"),
        ("password1", "common"),
        ("alice-the-great", "username"),
    ] {
        let username = if reason == "username" {
            password
        } else {
            "alice"
        };
        let body = assert_error(
            app.post_json(
                "/register",
                &json!({"username": username, "password": password}),
            )
            .await,
            400,
            "weak_password",
        )
        .await;
        assert!(
            body["error_description"].as_str().unwrap().contains(reason),
            "{body}"
        );
    }
}

#[tokio::test]
async fn bad_usernames_are_invalid_request() {
    let app = spawn_app(Backend::Sqlite).await;
    for username in ["ab", "has space", "ünïcode", &"x".repeat(65)] {
        assert_error(
            app.post_json(
                "/register",
                &json!({"username": username, "password": PASSWORD}),
            )
            .await,
            400,
            "invalid_request",
        )
        .await;
    }
}

#[tokio::test]
async fn registration_accepts_a_form_body() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app
        .post_form(
            "/register",
            &[
                ("username", "formuser"),
                ("password", PASSWORD),
                ("email", "f@example.com"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 201);
}

#[tokio::test]
async fn closed_registration_is_403_forbidden() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.registration_open = false).await;
    assert_error(
        app.post_json(
            "/register",
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn unknown_scopes_are_refused_and_known_ones_narrow_the_grant() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("alice", PASSWORD).await;
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "email admin"),
        ])
        .await;
    assert_error(response, 400, "invalid_scope").await;
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
            ("scope", "email"),
        ])
        .await;
    let tokens = tokens(response).await;
    assert_eq!(tokens.body["scope"], "email");
    assert_eq!(claims(&tokens.access_token)["scope"], "email");
}

both_backends! {
    async fn repeated_failures_lock_the_account_even_for_the_right_password(backend) {
        let app = spawn_app_with(backend, |s| s.lockout_threshold = 3).await;
        app.register("alice", PASSWORD).await;
        for _ in 0..3 {
            assert_error(app.token(&[("grant_type", "password"), ("username", "alice"), ("password", "wrong password!")]).await, 400, "invalid_grant").await;
        }
        let response = app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await;
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=30).contains(&retry_after), "retry-after {retry_after}");
        assert_error(response, 429, "rate_limited").await;
    }
}

#[tokio::test]
async fn a_successful_login_resets_the_failure_count() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.lockout_threshold = 3).await;
    app.register("alice", PASSWORD).await;
    for _ in 0..2 {
        app.token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong password!"),
        ])
        .await;
    }
    app.login("alice", PASSWORD).await;
    for _ in 0..2 {
        app.token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong password!"),
        ])
        .await;
    }
    app.login("alice", PASSWORD).await;
}

#[tokio::test]
async fn the_per_address_limit_answers_429_with_retry_after() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.login_rate_limit = Some(tessera::ratelimit::Rate {
            count: 3,
            per_secs: 60,
        })
    })
    .await;
    for _ in 0..3 {
        assert_error(
            app.token(&[
                ("grant_type", "password"),
                ("username", "nobody"),
                ("password", "whatever123"),
            ])
            .await,
            400,
            "invalid_grant",
        )
        .await;
    }
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", "nobody"),
            ("password", "whatever123"),
        ])
        .await;
    assert!(response.headers().contains_key("retry-after"));
    assert_error(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.login_rate_limit = Some(tessera::ratelimit::Rate {
            count: 1,
            per_secs: 60,
        });
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let attempt = |ip: &'static str| {
        app.client
            .post(app.url("/oauth/token"))
            .header("x-forwarded-for", ip)
            .form(&[
                ("grant_type", "password"),
                ("username", "nobody"),
                ("password", "whatever123"),
            ])
            .send()
    };
    assert_eq!(
        attempt("198.51.100.1").await.unwrap().status().as_u16(),
        400
    );
    assert_eq!(
        attempt("198.51.100.1").await.unwrap().status().as_u16(),
        429
    );
    assert_eq!(
        attempt("198.51.100.2").await.unwrap().status().as_u16(),
        400
    );
}

#[tokio::test]
async fn addresses_of_one_ipv6_64_share_one_budget_and_mapped_ipv4_is_ipv4() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.login_rate_limit = Some(tessera::ratelimit::Rate {
            count: 3,
            per_secs: 60,
        });
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    // A fresh username each time, so that only the address limit can answer 429.
    let names = std::sync::atomic::AtomicUsize::new(0);
    let attempt = |ip: String| {
        let username = format!(
            "nobody{}",
            names.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let request = app
            .client
            .post(app.url("/oauth/token"))
            .header("x-forwarded-for", ip)
            .form(&[
                ("grant_type", "password"),
                ("username", username.as_str()),
                ("password", "whatever123"),
            ]);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Ten addresses of one /64, as one subscriber is given: three answers, then 429.
    let mut statuses = Vec::new();
    for host in 1..=10 {
        statuses.push(attempt(format!("2001:db8:1:2::{host:x}")).await);
    }
    assert_eq!(statuses, [400, 400, 400, 429, 429, 429, 429, 429, 429, 429]);
    assert_eq!(
        attempt("2001:db8:1:2:ffff:ffff:ffff:ffff".into()).await,
        429
    );
    // The neighbouring /64 is another client.
    assert_eq!(attempt("2001:db8:1:3::1".into()).await, 400);
    // An IPv4-mapped address spends the IPv4 address's budget, and the reverse.
    for _ in 0..2 {
        assert_eq!(attempt("198.51.100.7".into()).await, 400);
    }
    assert_eq!(attempt("::ffff:198.51.100.7".into()).await, 400);
    assert_eq!(attempt("198.51.100.7".into()).await, 429);
    assert_eq!(attempt("::ffff:198.51.100.7".into()).await, 429);
}

#[tokio::test]
async fn a_disabled_account_with_the_right_password_is_told_so() {
    let app = spawn_app(Backend::Sqlite).await;
    let id = app.create_user("dave", &[]);
    tessera::store::users::set_disabled(
        &mut app.state.db.get().unwrap(),
        &id,
        true,
        tessera::now(),
    )
    .unwrap();
    let body = assert_error(
        app.token(&[
            ("grant_type", "password"),
            ("username", "dave"),
            ("password", PASSWORD),
        ])
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "account disabled");
    let body = assert_error(
        app.token(&[
            ("grant_type", "password"),
            ("username", "dave"),
            ("password", "wrong password!"),
        ])
        .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "invalid username or password");
}

#[tokio::test]
async fn userinfo_refuses_missing_malformed_and_refresh_tokens() {
    let app = spawn_app(Backend::Sqlite).await;
    let tokens = app.user_with_tokens("alice").await;
    let response = app.get("/userinfo").await;
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="tessera""#
    );
    let body = assert_error(response, 401, "invalid_token").await;
    assert_eq!(body["error_description"], "missing bearer token");
    let response = app.get_bearer("/userinfo", "not.a.token").await;
    assert!(response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains(r#"error="invalid_token""#));
    assert_error(response, 401, "invalid_token").await;
    assert_error(
        app.get_bearer("/userinfo", tokens.refresh_token.as_deref().unwrap())
            .await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn userinfo_refuses_tampered_none_and_hmac_tokens() {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let app = spawn_app(Backend::Sqlite).await;
    let tokens = app.user_with_tokens("alice").await;
    let parts: Vec<&str> = tokens.access_token.split('.').collect();
    let mut claims = claims(&tokens.access_token);
    claims["roles"] = json!(["admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        engine.encode(claims.to_string()),
        parts[2]
    );
    assert_error(
        app.get_bearer("/userinfo", &tampered).await,
        401,
        "invalid_token",
    )
    .await;
    let kid = header(&tokens.access_token)["kid"].clone();
    let none_header =
        engine.encode(json!({"alg": "none", "typ": "at+jwt", "kid": kid}).to_string());
    let none_token = format!("{none_header}.{}.", parts[1]);
    assert_error(
        app.get_bearer("/userinfo", &none_token).await,
        401,
        "invalid_token",
    )
    .await;
    let hmac_header =
        engine.encode(json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}).to_string());
    let hmac_token = format!("{hmac_header}.{}.{}", parts[1], parts[2]);
    assert_error(
        app.get_bearer("/userinfo", &hmac_token).await,
        401,
        "invalid_token",
    )
    .await;
    let unknown_kid =
        engine.encode(json!({"alg": "RS256", "typ": "at+jwt", "kid": "no-such-kid"}).to_string());
    let unknown_token = format!("{unknown_kid}.{}.{}", parts[1], parts[2]);
    assert_error(
        app.get_bearer("/userinfo", &unknown_token).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test]
async fn expired_tokens_are_refused_as_expired() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.access_token_ttl = 1).await;
    let tokens = app.user_with_tokens("alice").await;
    // Past the 30-second leeway without sleeping: sign an already expired token with the
    // server's own key.
    let mut claims: tessera::tokens::claims::AccessClaims =
        serde_json::from_value(claims(&tokens.access_token)).unwrap();
    claims.exp = tessera::now() - 120;
    claims.iat = claims.exp - 60;
    claims.nbf = claims.iat;
    let expired = app
        .state
        .keys
        .sign(tessera::tokens::keyring::TokenKind::Access, None, &claims)
        .unwrap();
    let body = assert_error(
        app.get_bearer("/userinfo", &expired).await,
        401,
        "invalid_token",
    )
    .await;
    assert_eq!(body["error_description"], "token expired");
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_phc_strings_and_rehashed_when_parameters_change() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("alice", PASSWORD).await;
    let stored = tessera::store::users::find_by_username(&mut app.state.db.get().unwrap(), "alice")
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=256,t=1,p=1$"),
        "{stored}"
    );
    let mut settings = app.settings.clone();
    settings.argon2.memory_kib = 512;
    let second = start(settings, app.dir.clone()).await;
    second.login("alice", PASSWORD).await;
    let stored =
        tessera::store::users::find_by_username(&mut second.state.db.get().unwrap(), "alice")
            .unwrap()
            .unwrap()
            .password_hash;
    assert!(
        stored.starts_with("$argon2id$v=19$m=512,t=1,p=1$"),
        "{stored}"
    );
}
