//! The admin console (SPEC §6.5) over HTTP, cookies kept by hand: its sign-in through the
//! code flow with PKCE as the built-in `console` client, the admin API's authorization on
//! every page and action (non-admins get a 403 page, a demoted admin loses it at once), CSRF
//! tokens, ended sessions, refresh before expiry, and its actions reaching the same domain
//! as the admin API. `browser_console.rs` drives it in Chromium.

use reqwest::Method;
use serde_json::{json, Value};
use tessera::tokens::algs::SigningAlg;

use crate::admin::{admin, call, ok};
use crate::authorize::{authorize_signing_in, hidden, location, params, Browser};
use crate::helpers::*;

/// Signs `username` (password `PASSWORD`) in to the console through `/oauth/authorize` and
/// the sign-in page; answers the browser, holding the console's cookie.
pub async fn console_sign_in<'a>(app: &'a TestApp, username: &str) -> Browser<'a> {
    let mut browser = Browser::new(app);
    let response = browser.get("/console").await;
    assert_eq!(response.status().as_u16(), 303);
    let authorize = location(&response);
    assert!(authorize.starts_with("/oauth/authorize?"), "{authorize}");
    let request = params(&authorize);
    assert_eq!(request["client_id"], "console");
    assert_eq!(request["code_challenge_method"], "S256");
    assert_eq!(
        request["redirect_uri"],
        format!("{}/console/callback", app.settings.issuer)
    );
    let callback = authorize_signing_in(&mut browser, &authorize, username).await;
    let path = callback
        .strip_prefix(&app.settings.issuer)
        .unwrap_or_else(|| panic!("back to the console: {callback}"))
        .to_string();
    assert!(path.starts_with("/console/callback?"), "{path}");
    let response = browser.get(&path).await;
    assert_eq!(response.status().as_u16(), 303, "{:?}", response.headers());
    assert_eq!(location(&response), "/console");
    assert!(browser.cookies.contains_key("tessera_console"));
    browser
}

fn assert_page_headers(response: &reqwest::Response) {
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("script-src"),
        "{csp}"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
}

/// The CSRF token of the browser's forms (any console page has one).
async fn csrf(browser: &mut Browser<'_>) -> String {
    let page = browser.get("/console/users").await.text().await.unwrap();
    hidden(&page, "csrf")
}

fn live_sessions(app: &TestApp, user_id: &str) -> usize {
    let mut conn = app.state.db.get().unwrap();
    tessera::sessions::list_for_user(&mut conn, user_id, None, 100, tessera::now())
        .unwrap()
        .items
        .len()
}

both_backends! {
    async fn an_admin_signs_in_with_pkce_and_sees_the_overview(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        app.user_with_tokens("alice").await;
        let mut browser = console_sign_in(&app, "root").await;
        let response = browser.get("/console").await;
        assert_eq!(response.status().as_u16(), 200);
        assert_page_headers(&response);
        let page = response.text().await.unwrap();
        assert!(page.contains("Signed in as</span> <strong>root</strong>"), "{page}");
        assert!(page.contains("live sessions") && page.contains("failed logins, last hour"));
        assert!(page.contains(&app.state.keys.active_kid().unwrap()), "the active key is named: {page}");
        assert!(page.contains("<html lang=\"en\">"));
        // The console's own session is a session of the `console` client, audited as a login.
        let audit: Value = {
            let root = app.login("root", PASSWORD).await.access_token;
            ok(&app, Method::GET, "/admin/audit?type=login", &root, None).await
        };
        assert!(audit["items"].as_array().unwrap().iter().any(|e| e["client_id"] == "console"));
    }

    async fn a_signed_in_non_admin_gets_a_403_page(backend) {
        let app = spawn_app(backend).await;
        app.user_with_tokens("mallory").await;
        let mut browser = console_sign_in(&app, "mallory").await;
        for path in ["/console", "/console/users", "/console/clients", "/console/keys", "/console/audit"] {
            let response = browser.get(path).await;
            assert_eq!(response.status().as_u16(), 403, "{path}");
            assert_page_headers(&response);
            let page = response.text().await.unwrap();
            assert!(page.contains("admin role"), "{page}");
            assert!(!page.contains("/console/users\""), "no console navigation for a non-admin");
        }
        let token = csrf_from_403(&mut browser).await;
        let before = app.state.keys.active_kid();
        let response = browser
            .post("/console/keys", &[("csrf", &token), ("action", "rotate")])
            .await;
        assert_eq!(response.status().as_u16(), 403);
        assert_eq!(app.state.keys.active_kid(), before, "nothing was rotated");
    }

    async fn a_demoted_admin_loses_the_console_at_once(backend) {
        let app = spawn_app(backend).await;
        let other = admin(&app).await;
        let deputy = app.create_user("deputy", &["admin"]);
        let mut browser = console_sign_in(&app, "deputy").await;
        assert_eq!(browser.get("/console/users").await.status().as_u16(), 200);
        ok(&app, Method::PATCH, &format!("/admin/users/{deputy}"), &other.token,
            Some(&json!({"roles": []}))).await;
        let response = browser.get("/console/users").await;
        assert_eq!(response.status().as_u16(), 403, "the console's unexpired token no longer passes");
    }

    async fn console_forms_without_the_right_csrf_token_change_nothing(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        let alice = app.create_user("alice", &[]);
        let mut browser = console_sign_in(&app, "root").await;
        let path = format!("/console/users/{alice}");
        for form in [
            vec![("action", "disable"), ("confirm", "yes")],
            vec![("action", "disable"), ("confirm", "yes"), ("csrf", "forged")],
        ] {
            let response = browser.post(&path, &form).await;
            assert_eq!(response.status().as_u16(), 400);
            assert!(response.text().await.unwrap().contains("This form has expired"));
        }
        let mut conn = app.state.db.get().unwrap();
        assert!(!tessera::admin::get_user(&mut conn, &alice).unwrap().disabled);
    }

    async fn an_ended_console_session_asks_to_sign_in_again_and_changes_nothing(backend) {
        let app = spawn_app(backend).await;
        let root = app.create_user("root", &["admin"]);
        let alice = app.create_user("alice", &[]);
        let mut browser = console_sign_in(&app, "root").await;
        let token = csrf(&mut browser).await;
        {
            let mut conn = app.state.db.get().unwrap();
            tessera::sessions::revoke_all_sessions(&mut conn, &app.state.metrics, &root, None, "test", None, tessera::now()).unwrap();
        }
        let response = browser
            .post(&format!("/console/users/{alice}"), &[("csrf", &token), ("action", "disable"), ("confirm", "yes")])
            .await;
        assert_eq!(response.status().as_u16(), 401);
        assert!(response.text().await.unwrap().contains("console session has ended"));
        let mut conn = app.state.db.get().unwrap();
        assert!(!tessera::admin::get_user(&mut conn, &alice).unwrap().disabled);
        drop(conn);
        let response = browser.get("/console").await;
        assert_eq!(response.status().as_u16(), 303);
        assert!(location(&response).starts_with("/oauth/authorize?"), "a view starts a new sign-in");
    }

    async fn a_forged_or_stale_sign_in_is_refused_at_the_callback(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        let mut browser = Browser::new(&app);
        let response = browser.get("/console/callback?code=abc&state=nope").await;
        assert_eq!(response.status().as_u16(), 400, "no sign-in was started");
        assert!(!browser.cookies.contains_key("tessera_console"));
        let response = browser.get("/console").await;
        let authorize = location(&response);
        let response = browser.get("/console/callback?code=abc&state=wrong").await;
        assert_eq!(response.status().as_u16(), 400, "another state");
        assert!(!browser.cookies.contains_key("tessera_console"));
        // The started sign-in is used up by the refusal: its cookie is gone.
        let callback = authorize_signing_in(&mut browser, &authorize, "root").await;
        let path = callback.strip_prefix(&app.settings.issuer).unwrap().to_string();
        assert_eq!(browser.get(&path).await.status().as_u16(), 400);
        assert!(!browser.cookies.contains_key("tessera_console"));
    }

    async fn the_console_refreshes_its_token_before_it_expires(backend) {
        // A 30-second access token is always within the refresh margin.
        let app = spawn_app_with(backend, |s| s.access_token_ttl = 30).await;
        app.create_user("root", &["admin"]);
        let mut browser = console_sign_in(&app, "root").await;
        let first = browser.cookies["tessera_console"].clone();
        assert_eq!(browser.get("/console/users").await.status().as_u16(), 200);
        let second = browser.cookies["tessera_console"].clone();
        assert_ne!(first, second, "new tokens were set");
        assert_eq!(browser.get("/console/clients").await.status().as_u16(), 200);
        assert_ne!(browser.cookies["tessera_console"], second);
    }

    async fn revoking_a_session_in_the_console_ends_it_after_a_confirmation(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        let bob = app.create_user("bob", &[]);
        let kept = app.login("bob", PASSWORD).await;
        let doomed = app.login("bob", PASSWORD).await;
        let sid = claims(doomed.refresh_token.as_deref().unwrap())["sid"].as_str().unwrap().to_string();
        let mut browser = console_sign_in(&app, "root").await;
        let page = browser.get("/console/users?q=bo").await.text().await.unwrap();
        assert!(page.contains(&format!("/console/users/{bob}")), "found by search");
        let page = browser.get(&format!("/console/users/{bob}")).await.text().await.unwrap();
        assert!(page.contains(&sid));
        let token = hidden(&page, "csrf");
        let path = format!("/console/users/{bob}");
        let asked = browser.post(&path, &[("csrf", &token), ("action", "revoke_session"), ("target", &sid)]).await;
        assert_eq!(asked.status().as_u16(), 200);
        let asked = asked.text().await.unwrap();
        assert!(asked.contains("refresh token is refused"), "the confirmation says what happens");
        assert_eq!(live_sessions(&app, &bob), 2, "nothing happened before the confirmation");
        let done = browser
            .post(&path, &[("csrf", &token), ("action", "revoke_session"), ("target", &sid), ("confirm", "yes")])
            .await;
        assert_eq!(done.status().as_u16(), 303);
        assert_eq!(live_sessions(&app, &bob), 1);
        assert_error(app.refresh(doomed.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        assert_eq!(app.refresh(kept.refresh_token.as_deref().unwrap()).await.status().as_u16(), 200);
    }

    async fn a_client_created_in_the_console_shows_its_secret_once_and_it_works(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        let mut browser = console_sign_in(&app, "root").await;
        let token = csrf(&mut browser).await;
        let response = browser
            .post("/console/clients", &[
                ("csrf", token.as_str()), ("client_id", "reports"), ("grant_client_credentials", "on"),
                ("scopes", "read write"),
            ])
            .await;
        assert_eq!(response.status().as_u16(), 200);
        let page = response.text().await.unwrap();
        let secret = hidden_value(&page, "secret");
        assert!(secret.len() >= 43, "{page}");
        let issued = app.token(&[
            ("grant_type", "client_credentials"), ("client_id", "reports"), ("client_secret", &secret),
        ]).await;
        assert_eq!(issued.status().as_u16(), 200);
        let listed = browser.get("/console/clients").await.text().await.unwrap();
        assert!(listed.contains("reports") && !listed.contains(&secret), "shown only once");
        // A bad redirect URI is refused in words, and nothing is created.
        let response = browser
            .post("/console/clients", &[
                ("csrf", token.as_str()), ("client_id", "spa"), ("public", "on"),
                ("grant_authorization_code", "on"), ("redirect_uris", "http://evil.example/cb"),
            ])
            .await;
        assert_eq!(response.status().as_u16(), 400);
        assert!(response.text().await.unwrap().contains("http is allowed only for loopback hosts"));
        let mut conn = app.state.db.get().unwrap();
        assert!(tessera::clients::find(&mut conn, "spa", &[]).unwrap().is_none());
    }

    async fn rotating_keys_in_the_console_changes_the_jwks_and_retiring_asks_first(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        let before = app.jwks_kids().await;
        let old_active = app.state.keys.active_kid().unwrap();
        let mut browser = console_sign_in(&app, "root").await;
        let page = browser.get("/console/keys").await.text().await.unwrap();
        assert!(page.contains("RS256 timeline") && page.contains(&old_active));
        let token = hidden(&page, "csrf");
        let response = browser.post("/console/keys", &[("csrf", &token), ("action", "rotate"), ("alg", "")]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_ne!(app.state.keys.active_kid().unwrap(), old_active);
        let after = app.jwks_kids().await;
        assert_ne!(before, after, "a new staged key is published");
        let asked = browser.post("/console/keys", &[("csrf", &token), ("action", "retire"), ("kid", &old_active)]).await;
        assert_eq!(asked.status().as_u16(), 200);
        assert!(asked.text().await.unwrap().contains("are refused from now on"));
        assert!(app.jwks_kids().await.contains(&old_active), "not before the confirmation");
        let done = browser
            .post("/console/keys", &[("csrf", &token), ("action", "retire"), ("kid", &old_active), ("confirm", "yes")])
            .await;
        assert_eq!(done.status().as_u16(), 303);
        assert!(!app.jwks_kids().await.contains(&old_active));
    }

    async fn the_audit_view_filters_by_user_type_and_time_and_pages(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        app.create_user("carol", &[]);
        for _ in 0..3 {
            app.token(&[("grant_type", "password"), ("username", "carol"), ("password", "wrong password")]).await;
        }
        let mut browser = console_sign_in(&app, "root").await;
        let page = browser.get("/console/audit?user=carol&type=login_failed").await;
        assert_eq!(page.status().as_u16(), 200);
        let page = page.text().await.unwrap();
        assert_eq!(page.matches(">login_failed</span>").count(), 3, "{page}");
        assert!(!page.contains(">login</span>"));
        let future = browser.get("/console/audit?type=login_failed&since=2999-01-01T00:00").await.text().await.unwrap();
        assert!(future.contains("No events match."));
        let bad = browser.get("/console/audit?since=yesterday").await;
        assert_eq!(bad.status().as_u16(), 400);
        assert!(bad.text().await.unwrap().contains("neither unix seconds nor an RFC 3339 time"));
        let unknown = browser.get("/console/audit?user=nobody").await;
        assert_eq!(unknown.status().as_u16(), 400);
        // Paging: more events than a page hold a link to the older ones.
        for i in 0..50 {
            let name = format!("nobody{i}");
            app.token(&[("grant_type", "password"), ("username", &name), ("password", "x")]).await;
        }
        let first = browser.get("/console/audit?type=login_failed").await.text().await.unwrap();
        let first = first.replace("&#x2f;", "/").replace("&amp;", "&");
        assert_eq!(first.matches(">login_failed</span>").count(), 50);
        let next = first.split("href=\"/console/audit?").nth(1).map(|rest| rest.split('"').next().unwrap().to_string());
        let next = next.expect("an older-events link");
        let second = browser.get(&format!("/console/audit?{next}")).await.text().await.unwrap();
        assert_eq!(second.matches(">login_failed</span>").count(), 3);
    }

    async fn users_are_created_in_the_console_under_the_password_policy_and_audited(backend) {
        let app = spawn_app(backend).await;
        let root = app.create_user("root", &["admin"]);
        let mut browser = console_sign_in(&app, "root").await;
        let token = csrf(&mut browser).await;
        let weak = browser
            .post("/console/users", &[("csrf", token.as_str()), ("username", "dave"), ("password", "password")])
            .await;
        assert_eq!(weak.status().as_u16(), 400);
        assert!(weak.text().await.unwrap().contains("The password is too weak"));
        let long_role = "r".repeat(65);
        let bad_role = browser
            .post("/console/users", &[("csrf", token.as_str()), ("username", "dave"), ("password", PASSWORD), ("roles", long_role.as_str())])
            .await;
        assert_eq!(bad_role.status().as_u16(), 400);
        let created = browser
            .post("/console/users", &[("csrf", token.as_str()), ("username", "dave"), ("password", PASSWORD), ("email", "dave@example.com"), ("roles", "ops, billing")])
            .await;
        assert_eq!(created.status().as_u16(), 303);
        assert!(location(&created).ends_with("?done=created"));
        let taken = browser
            .post("/console/users", &[("csrf", token.as_str()), ("username", "Dave"), ("password", PASSWORD)])
            .await;
        assert_eq!(taken.status().as_u16(), 409);
        assert!(taken.text().await.unwrap().contains("That username is taken."));
        let tokens = app.login("dave", PASSWORD).await;
        assert_eq!(claims(&tokens.access_token)["roles"], json!(["ops", "billing"]));
        let admin_token = app.login("root", PASSWORD).await.access_token;
        let audit = ok(&app, Method::GET, "/admin/audit?type=user_created", &admin_token, None).await;
        assert_eq!(audit["items"][0]["actor"], root.as_str(), "the admin is the actor");
    }

    async fn roles_attributes_disabling_and_mfa_reset_go_through_the_admin_rules(backend) {
        let app = spawn_app(backend).await;
        let root = app.create_user("root", &["admin"]);
        let (_, _) = app.user_with_mfa("erin").await;
        let erin = app.state.db.get().map(|mut conn| tessera::admin::find_by_username(&mut conn, "erin").unwrap().id).unwrap();
        let mut browser = console_sign_in(&app, "root").await;
        let path = format!("/console/users/{erin}");
        let page = browser.get(&path).await.text().await.unwrap();
        assert!(page.contains("TOTP on"));
        let token = hidden(&page, "csrf");
        let saved = browser.post(&path, &[("csrf", token.as_str()), ("action", "roles"), ("roles", "ops support")]).await;
        assert_eq!(location(&saved), format!("{path}?done=saved"));
        let refused = browser.post(&path, &[("csrf", token.as_str()), ("action", "attributes"), ("attributes", "[1, 2]")]).await;
        assert_eq!(refused.status().as_u16(), 400);
        assert!(refused.text().await.unwrap().contains("Attributes must be a JSON object"));
        let saved = browser.post(&path, &[("csrf", token.as_str()), ("action", "attributes"), ("attributes", r#"{"team": "ops"}"#)]).await;
        assert_eq!(saved.status().as_u16(), 303);
        let reset = browser.post(&path, &[("csrf", token.as_str()), ("action", "reset_mfa")]).await;
        assert!(reset.text().await.unwrap().contains("Reset two-factor authentication?"), "asks first");
        let reset = browser.post(&path, &[("csrf", token.as_str()), ("action", "reset_mfa"), ("confirm", "yes")]).await;
        assert_eq!(location(&reset), format!("{path}?done=mfa_reset"));
        let tokens = app.login("erin", PASSWORD).await;
        let claims = claims(&tokens.access_token);
        assert_eq!(claims["roles"], json!(["ops", "support"]));
        assert_eq!(claims["attributes"], json!({"team": "ops"}));
        let disabled = browser.post(&path, &[("csrf", token.as_str()), ("action", "disable"), ("confirm", "yes")]).await;
        assert_eq!(location(&disabled), format!("{path}?done=disabled"));
        assert_eq!(live_sessions(&app, &erin), 0, "disabling ended the sessions");
        assert_error(app.token(&[("grant_type", "password"), ("username", "erin"), ("password", PASSWORD)]).await, 400, "invalid_grant").await;
        let admin_token = app.login("root", PASSWORD).await.access_token;
        let audit = ok(&app, Method::GET, &format!("/admin/audit?user={erin}&type=user_updated"), &admin_token, None).await;
        assert!(audit["items"].as_array().unwrap().iter().all(|e| e["actor"] == root.as_str()));
        assert!(audit["items"].as_array().unwrap().len() >= 3);
    }

    async fn a_client_secret_is_rotated_and_a_client_deleted_only_after_confirmation(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        let old_secret = app.confidential_client("reports");
        let mut browser = console_sign_in(&app, "root").await;
        let token = csrf(&mut browser).await;
        let asked = browser.post("/console/clients/reports", &[("csrf", token.as_str()), ("action", "rotate_secret")]).await;
        assert!(asked.text().await.unwrap().contains("stops working at once"));
        assert_eq!(app.token_basic("reports", &old_secret).await.status().as_u16(), 200, "nothing rotated before the confirmation");
        let rotated = browser
            .post("/console/clients/reports", &[("csrf", token.as_str()), ("action", "rotate_secret"), ("confirm", "yes")])
            .await
            .text()
            .await
            .unwrap();
        let new_secret = hidden_value(&rotated, "secret");
        assert_eq!(app.token_basic("reports", &old_secret).await.status().as_u16(), 401);
        assert_eq!(app.token_basic("reports", &new_secret).await.status().as_u16(), 200);
        let asked = browser.post("/console/clients/reports", &[("csrf", token.as_str()), ("action", "delete")]).await;
        assert!(asked.text().await.unwrap().contains("This cannot be undone."));
        let deleted = browser
            .post("/console/clients/reports", &[("csrf", token.as_str()), ("action", "delete"), ("confirm", "yes")])
            .await;
        assert_eq!(location(&deleted), "/console/clients?done=client_deleted");
        assert_eq!(app.token_basic("reports", &new_secret).await.status().as_u16(), 401);
        let builtin = browser
            .post("/console/clients/console", &[("csrf", token.as_str()), ("action", "delete"), ("confirm", "yes")])
            .await;
        assert_eq!(builtin.status().as_u16(), 400, "the built-in client stays");
        assert!(builtin.text().await.unwrap().contains("cannot be deleted"));
    }

    async fn ending_all_of_a_users_sessions_in_the_console_refuses_every_refresh_token(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        let frank = app.create_user("frank", &[]);
        let first = app.login("frank", PASSWORD).await.refresh_token.unwrap();
        let second = app.login("frank", PASSWORD).await.refresh_token.unwrap();
        let mut browser = console_sign_in(&app, "root").await;
        let path = format!("/console/users/{frank}");
        let token = hidden(&browser.get(&path).await.text().await.unwrap(), "csrf");
        let asked = browser.post(&path, &[("csrf", token.as_str()), ("action", "revoke_sessions")]).await;
        assert!(asked.text().await.unwrap().contains("End every session of this user?"));
        assert_eq!(live_sessions(&app, &frank), 2);
        let done = browser.post(&path, &[("csrf", token.as_str()), ("action", "revoke_sessions"), ("confirm", "yes")]).await;
        assert_eq!(location(&done), format!("{path}?done=sessions_revoked"));
        assert_eq!(live_sessions(&app, &frank), 0);
        for refresh_token in [first, second] {
            assert_error(app.refresh(&refresh_token).await, 400, "invalid_grant").await;
        }
    }

    async fn a_browser_client_is_created_with_redirect_uris_and_the_other_fields(backend) {
        let app = spawn_app_with(backend, |s| {
            s.signing_algs = vec![SigningAlg::Rs256, SigningAlg::Es256];
        })
        .await;
        app.create_user("root", &["admin"]);
        let mut browser = console_sign_in(&app, "root").await;
        let token = csrf(&mut browser).await;
        let response = browser
            .post("/console/clients", &[
                ("csrf", token.as_str()), ("client_id", "spa"), ("name", "The SPA"), ("public", "on"),
                ("first_party", "on"), ("grant_authorization_code", "on"), ("grant_refresh_token", "on"),
                ("redirect_uris", "https://app.example/cb\r\nhttp://127.0.0.1/cb"),
                ("post_logout_redirect_uris", "https://app.example/bye"),
                ("scopes", "profile email"), ("token_alg", "ES256"), ("access_token_ttl", "300"),
            ])
            .await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.text().await.unwrap().contains("is public: it has no secret"));
        let mut conn = app.state.db.get().unwrap();
        let client = tessera::clients::find(&mut conn, "spa", &[]).unwrap().unwrap();
        assert_eq!(client.redirect_uris, ["https://app.example/cb", "http://127.0.0.1/cb"]);
        assert_eq!(client.post_logout_redirect_uris, ["https://app.example/bye"]);
        assert_eq!(client.grant_types, [tessera::clients::GrantType::AuthorizationCode, tessera::clients::GrantType::RefreshToken]);
        assert_eq!(client.scopes, ["profile", "email"]);
        assert!(client.public && client.first_party);
        assert_eq!(client.token_alg.as_deref(), Some("ES256"));
        assert_eq!(client.access_token_ttl, Some(300));
        assert_eq!(client.name.as_deref(), Some("The SPA"));
        drop(conn);
        let refused = browser
            .post("/console/clients", &[("csrf", token.as_str()), ("client_id", "svc"), ("token_alg", "EdDSA")])
            .await;
        assert_eq!(refused.status().as_u16(), 400, "EdDSA is not configured");
        assert!(refused.text().await.unwrap().contains("configured signing algorithms"));
        let refused = browser
            .post("/console/clients", &[("csrf", token.as_str()), ("client_id", "svc"), ("access_token_ttl", "soon")])
            .await;
        assert_eq!(refused.status().as_u16(), 400);
    }

    async fn each_algorithm_has_its_timeline_and_can_be_rotated_alone(backend) {
        let app = spawn_app_with(backend, |s| {
            s.signing_algs = vec![SigningAlg::Rs256, SigningAlg::Es256];
        })
        .await;
        app.create_user("root", &["admin"]);
        let rs256 = app.state.keys.active_kid().unwrap();
        let mut browser = console_sign_in(&app, "root").await;
        let page = browser.get("/console/keys").await.text().await.unwrap();
        assert!(page.contains("RS256 timeline") && page.contains("ES256 timeline"), "{page}");
        let token = hidden(&page, "csrf");
        let before = app.jwks_kids().await;
        let done = browser.post("/console/keys", &[("csrf", token.as_str()), ("action", "rotate"), ("alg", "ES256")]).await;
        assert_eq!(location(&done), "/console/keys?done=rotated");
        assert_eq!(app.state.keys.active_kid().unwrap(), rs256, "RS256 did not rotate");
        assert_ne!(app.jwks_kids().await, before, "ES256 did");
        let refused = browser.post("/console/keys", &[("csrf", token.as_str()), ("action", "rotate"), ("alg", "HS256")]).await;
        assert_eq!(refused.status().as_u16(), 400);
        assert!(refused.text().await.unwrap().contains("configured signing algorithms"));
    }

    async fn an_admin_whose_tokens_cannot_fit_a_cookie_is_told_and_left_with_no_session(backend) {
        let app = spawn_app(backend).await;
        let big = app.create_user("big", &["admin"]);
        {
            let mut conn = app.state.db.get().unwrap();
            let mut attributes = serde_json::Map::new();
            attributes.insert("notes".into(), json!("x".repeat(3000)));
            let changes = tessera::accounts::UserChanges { roles: None, disabled: None, attributes: Some(attributes) };
            tessera::accounts::update_user(&mut conn, &app.state.metrics, &big, &changes, "test", None, tessera::now()).unwrap();
        }
        let mut browser = Browser::new(&app);
        let authorize = location(&browser.get("/console").await);
        let callback = authorize_signing_in(&mut browser, &authorize, "big").await;
        let path = callback.strip_prefix(&app.settings.issuer).unwrap().to_string();
        let response = browser.get(&path).await;
        assert_eq!(response.status().as_u16(), 400);
        assert!(response.text().await.unwrap().contains("too large for the console"));
        assert!(!browser.cookies.contains_key("tessera_console"));
        assert_eq!(live_sessions(&app, &big), 1, "only the browser's sign-in remains");
    }

    async fn a_console_cookie_that_is_not_the_servers_starts_a_new_sign_in(backend) {
        let app = spawn_app(backend).await;
        app.create_user("root", &["admin"]);
        let mut browser = console_sign_in(&app, "root").await;
        let sealed = browser.cookies["tessera_console"].clone();
        let mut forged = sealed.into_bytes();
        let last = forged.len() - 1;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        browser.cookies.insert("tessera_console".into(), String::from_utf8(forged).unwrap());
        let response = browser.get("/console/keys").await;
        assert_eq!(response.status().as_u16(), 303);
        let authorize = location(&response);
        assert!(authorize.starts_with("/oauth/authorize?"), "{authorize}");
        // The browser session is still there: the sign-in completes without a password, back
        // on the page that was asked for.
        let callback = location(&browser.get(&authorize).await);
        let path = callback.strip_prefix(&app.settings.issuer).unwrap().to_string();
        let response = browser.get(&path).await;
        assert_eq!(location(&response), "/console/keys");
    }

    async fn the_console_client_is_listed_and_cannot_be_changed_or_deleted(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let listed = ok(&app, Method::GET, "/admin/clients", &root.token, None).await;
        let console = &listed["items"][0];
        assert_eq!(console["client_id"], "console");
        assert_eq!(console["public"], true);
        assert_eq!(console["first_party"], true);
        assert_eq!(console["redirect_uris"], json!([format!("{}/console/callback", app.settings.issuer)]));
        let response = call(&app, Method::PATCH, "/admin/clients/console", Some(&root.token), Some(&json!({"name": "mine"}))).await;
        assert_error(response, 400, "invalid_request").await;
        let response = call(&app, Method::DELETE, "/admin/clients/console", Some(&root.token), None).await;
        assert_error(response, 400, "invalid_request").await;
        let response = call(&app, Method::POST, "/admin/clients", Some(&root.token), Some(&json!({"client_id": "console"}))).await;
        assert_eq!(response.status().as_u16(), 409);
    }

    async fn signing_out_of_the_console_ends_its_session_and_the_browser_session(backend) {
        let app = spawn_app(backend).await;
        let root = app.create_user("root", &["admin"]);
        let mut browser = console_sign_in(&app, "root").await;
        assert_eq!(live_sessions(&app, &root), 2, "the browser's and the console's");
        let token = csrf(&mut browser).await;
        let response = browser.post("/console/logout", &[("csrf", &token)]).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(location(&response), "/login?signed_out=1");
        assert_eq!(live_sessions(&app, &root), 0);
        assert!(!browser.cookies.contains_key("tessera_console"));
        let response = browser.get("/console").await;
        assert_eq!(response.status().as_u16(), 303);
    }
}

impl TestApp {
    /// `client_credentials` with HTTP Basic client authentication.
    async fn token_basic(&self, client_id: &str, secret: &str) -> reqwest::Response {
        self.client
            .post(self.url("/oauth/token"))
            .basic_auth(client_id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    }
}

/// The CSRF token on the 403 page's sign-out form.
async fn csrf_from_403(browser: &mut Browser<'_>) -> String {
    let page = browser.get("/console").await.text().await.unwrap();
    hidden(&page, "csrf")
}

/// The `value` of the input with id `id`.
fn hidden_value(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\" type=\"text\" readonly value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

#[tokio::test]
async fn a_console_sign_in_counts_the_tokens_it_issued() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("root", &["admin"]);
    console_sign_in(&app, "root").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    let series = r#"tessera_tokens_issued_total{grant_type="authorization_code"} 1"#;
    assert!(text.lines().any(|line| line == series), "{text}");
}
