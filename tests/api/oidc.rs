//! OpenID Connect (SPEC §6.3) over HTTP: ID tokens and their claims, the `openid` scope,
//! `/userinfo` by scope, discovery, introspection's shapes, and RP-initiated logout.

use base64::Engine;
use serde_json::{json, Value};
use tessera::clients::NewClient;
use tessera::tokens::algs::SigningAlg;

use crate::authorize::{
    authorize_path, authorize_signing_in, exchange, hidden, location, new_pkce, params, Browser,
};
use crate::helpers::*;

const RP: &str = "rp";
const RP_REDIRECT: &str = "https://rp.example/cb";
const RP_AFTER_LOGOUT: &str = "https://rp.example/signed-out";

fn rp_client(app: &TestApp, client_id: &str, token_alg: Option<&str>) {
    app.create_client(NewClient {
        client_id: client_id.into(),
        public: true,
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        scopes: Some(vec!["profile".into(), "email".into()]),
        redirect_uris: vec![RP_REDIRECT.into()],
        post_logout_redirect_uris: vec![RP_AFTER_LOGOUT.into()],
        first_party: true,
        token_alg: token_alg.map(String::from),
        ..Default::default()
    });
}

/// Signs `username` in through the pages for `client_id` with `extra` authorization
/// parameters; answers the token response and the browser.
async fn code_flow<'a>(
    app: &'a TestApp,
    client_id: &str,
    username: &str,
    extra: &[(&str, &str)],
) -> (Tokens, Browser<'a>) {
    let mut browser = Browser::new(app);
    let pkce = new_pkce();
    let path = authorize_path(client_id, RP_REDIRECT, &pkce.challenge, extra);
    let back = authorize_signing_in(&mut browser, &path, username).await;
    let response = exchange(
        app,
        client_id,
        &params(&back)["code"],
        RP_REDIRECT,
        &pkce.verifier,
    )
    .await;
    assert_eq!(response.status().as_u16(), 200);
    (tokens(response).await, browser)
}

fn id_token(tokens: &Tokens) -> String {
    tokens.body["id_token"]
        .as_str()
        .expect("an id_token")
        .to_string()
}

fn left_half_b64(digest: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

both_backends! {
    async fn the_code_flow_issues_an_id_token_with_nonce_at_hash_and_the_sessions_claims(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        let user_id = app.register("alice", PASSWORD).await["id"].as_str().unwrap().to_string();
        let (issued, _) = code_flow(&app, RP, "alice", &[("scope", "openid profile email"), ("nonce", "n-0S6_WzA2Mj")]).await;
        let token = id_token(&issued);
        assert_eq!(header(&token)["typ"], "JWT");
        assert_eq!(header(&token)["alg"], "RS256");
        let id = claims(&token);
        let access = claims(&issued.access_token);
        assert_eq!(id["iss"], app.settings.issuer);
        assert_eq!(id["sub"], user_id);
        assert_eq!(id["aud"], RP);
        assert_eq!(id["nonce"], "n-0S6_WzA2Mj");
        assert_eq!(id["sid"], access["sid"]);
        assert_eq!(id["auth_time"], access["auth_time"]);
        assert_eq!(id["amr"], json!(["pwd"]));
        assert_eq!(id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(), issued.body["expires_in"].as_i64().unwrap());
        assert_eq!(id["at_hash"], left_half_b64(&tessera::crypto::sha256(issued.access_token.as_bytes())));
        assert_eq!(id["preferred_username"], "alice");
        assert!(id["updated_at"].is_i64());
        assert_eq!(id["email_verified"], false);
        assert!(id.get("type").is_none(), "no tessera type claim");
    }

    async fn without_openid_there_is_no_id_token_and_openid_is_not_granted_unasked(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        app.register("bob", PASSWORD).await;
        let (issued, _) = code_flow(&app, RP, "bob", &[]).await;
        assert!(issued.body.get("id_token").is_none(), "{}", issued.body);
        assert_eq!(issued.body["scope"], "profile email");
        let login = app.login("bob", PASSWORD).await;
        assert!(login.body.get("id_token").is_none());
        assert!(!login.body["scope"].as_str().unwrap().contains("openid"));
    }

    async fn only_the_scopes_asked_for_shape_the_id_token(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        app.register("carol", PASSWORD).await;
        let (issued, _) = code_flow(&app, RP, "carol", &[("scope", "openid")]).await;
        let id = claims(&id_token(&issued));
        assert!(id.get("nonce").is_none(), "no nonce was sent");
        for absent in ["preferred_username", "updated_at", "email", "email_verified"] {
            assert!(id.get(absent).is_none(), "{absent} in {id}");
        }
        assert_eq!(issued.body["scope"], "openid");
    }

    async fn at_hash_follows_the_clients_algorithm(backend) {
        let app = spawn_app_with(backend, |s| s.signing_algs = SigningAlg::ALL.to_vec()).await;
        rp_client(&app, "rp-es", Some("ES256"));
        rp_client(&app, "rp-ed", Some("EdDSA"));
        app.register("dave", PASSWORD).await;
        let (es, _) = code_flow(&app, "rp-es", "dave", &[("scope", "openid")]).await;
        assert_eq!(header(&id_token(&es))["alg"], "ES256");
        assert_eq!(claims(&id_token(&es))["at_hash"], left_half_b64(&tessera::crypto::sha256(es.access_token.as_bytes())));
        let (ed, _) = code_flow(&app, "rp-ed", "dave", &[("scope", "openid")]).await;
        assert_eq!(header(&id_token(&ed))["alg"], "EdDSA");
        assert_eq!(claims(&id_token(&ed))["at_hash"], left_half_b64(&tessera::crypto::sha512(ed.access_token.as_bytes())));
    }

    async fn a_refresh_gives_a_new_id_token_for_the_same_sub_and_auth_time_without_nonce(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        app.register("erin", PASSWORD).await;
        let (issued, _) = code_flow(&app, RP, "erin", &[("scope", "openid email"), ("nonce", "abc")]).await;
        let first = claims(&id_token(&issued));
        let response = app.token(&[("grant_type", "refresh_token"), ("client_id", RP), ("refresh_token", issued.refresh_token.as_deref().unwrap())]).await;
        assert_eq!(response.status().as_u16(), 200);
        let refreshed = tokens(response).await;
        let second = claims(&id_token(&refreshed));
        assert_eq!(second["sub"], first["sub"]);
        assert_eq!(second["auth_time"], first["auth_time"]);
        assert_eq!(second["sid"], first["sid"]);
        assert!(second.get("nonce").is_none(), "{second}");
        assert!(second.get("at_hash").is_none());
        assert_eq!(second["email_verified"], false);
    }

    async fn the_password_grant_and_the_mfa_step_carry_openid(backend) {
        let app = spawn_app(backend).await;
        app.register("frank", PASSWORD).await;
        let login = tokens(app.token(&[("grant_type", "password"), ("username", "frank"), ("password", PASSWORD), ("scope", "openid profile")]).await).await;
        let id = claims(&id_token(&login));
        assert_eq!(id["aud"], "first-party");
        assert_eq!(id["preferred_username"], "frank");
        assert!(id.get("at_hash").is_none(), "at_hash is the code flow's");

        let (mut authenticator, _) = app.user_with_mfa("grace").await;
        let step = app.token(&[("grant_type", "password"), ("username", "grace"), ("password", PASSWORD), ("scope", "openid")]).await;
        let body = assert_error(step, 403, "mfa_required").await;
        let otp = authenticator.next_code().await;
        let done = app.token(&[("grant_type", "urn:tessera:params:oauth:grant-type:mfa-otp"), ("mfa_token", body["mfa_token"].as_str().unwrap()), ("otp", &otp)]).await;
        assert_eq!(done.status().as_u16(), 200);
        let done = tokens(done).await;
        assert_eq!(claims(&id_token(&done))["amr"], json!(["pwd", "otp"]));
    }

    async fn userinfo_answers_the_standard_claims_by_scope(backend) {
        let app = spawn_app(backend).await;
        app.register("heidi", PASSWORD).await;
        let narrow = tokens(app.token(&[("grant_type", "password"), ("username", "heidi"), ("password", PASSWORD), ("scope", "openid")]).await).await;
        let info: Value = app.get_bearer("/userinfo", &narrow.access_token).await.json().await.unwrap();
        assert!(info["sub"].is_string());
        assert_eq!(info["username"], "heidi", "§3's members stay");
        for absent in ["preferred_username", "updated_at", "email", "email_verified"] {
            assert!(info.get(absent).is_none(), "{absent} in {info}");
        }
        let wide = tokens(app.token(&[("grant_type", "password"), ("username", "heidi"), ("password", PASSWORD), ("scope", "openid profile email")]).await).await;
        let info: Value = app.get_bearer("/userinfo", &wide.access_token).await.json().await.unwrap();
        assert_eq!(info["preferred_username"], "heidi");
        assert!(info["updated_at"].is_i64());
        assert_eq!(info["email_verified"], false);
    }

    async fn discovery_lists_the_openid_members_and_nothing_tessera_lacks(backend) {
        let app = spawn_app(backend).await;
        let doc: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["subject_types_supported"], json!(["public"]));
        assert_eq!(doc["end_session_endpoint"], format!("{}/oauth/logout", app.settings.issuer));
        assert_eq!(doc["backchannel_logout_supported"], true);
        assert_eq!(doc["backchannel_logout_session_supported"], true);
        assert!(doc["id_token_signing_alg_values_supported"].as_array().unwrap().contains(&json!("RS256")));
        let claims_supported = doc["claims_supported"].as_array().unwrap();
        for claim in ["sub", "preferred_username", "email", "email_verified"] {
            assert!(claims_supported.contains(&json!(claim)), "{claim}");
        }
        assert!(doc["scopes_supported"].as_array().unwrap().contains(&json!("openid")));
        assert!(doc.get("token_endpoint_auth_signing_alg_values_supported").is_none(), "no JWT client authentication");
    }

    async fn introspection_says_bearer_and_sends_no_nulls(backend) {
        let app = spawn_app(backend).await;
        let secret = app.confidential_client("rs");
        let service = tokens(app.token(&[("grant_type", "client_credentials"), ("client_id", "rs"), ("client_secret", &secret)]).await).await;
        let user = app.user_with_tokens("ivan").await;
        for (token, kind) in [(&service.access_token, "Bearer"), (&user.access_token, "Bearer"), (user.refresh_token.as_ref().unwrap(), "refresh_token")] {
            let body: Value = app.post_form("/oauth/introspect", &[("token", token), ("client_id", "rs"), ("client_secret", &secret)]).await.json().await.unwrap();
            assert_eq!(body["active"], true);
            assert_eq!(body["token_type"], kind);
            assert!(body.as_object().unwrap().values().all(|v| !v.is_null()), "{body}");
        }
    }

    async fn logout_with_a_hint_ends_the_browser_and_its_sessions_and_returns_with_state(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        app.register("judy", PASSWORD).await;
        let (issued, mut browser) = code_flow(&app, RP, "judy", &[("scope", "openid")]).await;
        let query = serde_urlencoded::to_string([("id_token_hint", id_token(&issued).as_str()), ("post_logout_redirect_uri", RP_AFTER_LOGOUT), ("state", "s1")]).unwrap();
        let response = browser.get(&format!("/oauth/logout?{query}")).await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(location(&response), format!("{RP_AFTER_LOGOUT}?state=s1"));
        assert!(!browser.cookies.contains_key("tessera_session"));
        assert_error(app.token(&[("grant_type", "refresh_token"), ("client_id", RP), ("refresh_token", issued.refresh_token.as_deref().unwrap())]).await, 400, "invalid_grant").await;
        assert_eq!(app.get_bearer("/userinfo", &issued.access_token).await.status().as_u16(), 401);
        // The browser must sign in again.
        let pkce = new_pkce();
        let response = browser.get(&authorize_path(RP, RP_REDIRECT, &pkce.challenge, &[])).await;
        assert!(location(&response).starts_with("/login"));
    }

    async fn a_hint_alone_without_the_cookie_ends_its_session_and_an_expired_hint_still_works(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        app.register("ken", PASSWORD).await;
        let (issued, _) = code_flow(&app, RP, "ken", &[("scope", "openid")]).await;
        // The same claims, expired an hour ago, signed by the server's own key.
        let mut old = claims(&id_token(&issued));
        old["iat"] = json!(tessera::now() - 7200);
        old["exp"] = json!(tessera::now() - 3600);
        let expired = app.state.keys.sign(tessera::tokens::keyring::TokenKind::Id, None, &old).unwrap();
        let query = serde_urlencoded::to_string([("id_token_hint", expired.as_str())]).unwrap();
        let response = app.get(&format!("/oauth/logout?{query}")).await;
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.text().await.unwrap().contains("signed out"));
        assert_error(app.token(&[("grant_type", "refresh_token"), ("client_id", RP), ("refresh_token", issued.refresh_token.as_deref().unwrap())]).await, 400, "invalid_grant").await;
    }

    async fn bad_hints_other_clients_and_unregistered_uris_get_a_400_page_and_no_redirect(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        rp_client(&app, "other", None);
        app.register("liz", PASSWORD).await;
        let (issued, mut browser) = code_flow(&app, RP, "liz", &[("scope", "openid")]).await;
        let hint = id_token(&issued);
        let mut tampered = hint.clone();
        tampered.pop();
        let cases: Vec<Vec<(&str, &str)>> = vec![
            vec![("id_token_hint", "not.a.jwt")],
            vec![("id_token_hint", &tampered)],
            vec![("id_token_hint", &issued.access_token)],
            vec![("id_token_hint", &hint), ("client_id", "other")],
            vec![("id_token_hint", &hint), ("post_logout_redirect_uri", "https://evil.example/")],
            vec![("client_id", RP), ("post_logout_redirect_uri", "https://rp.example/signed-out/extra")],
        ];
        for case in cases {
            let query = serde_urlencoded::to_string(&case).unwrap();
            let response = browser.get(&format!("/oauth/logout?{query}")).await;
            assert_eq!(response.status().as_u16(), 400, "{case:?}");
            assert!(response.headers().get("location").is_none());
            assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        }
        // Nothing ended.
        assert!(browser.cookies.contains_key("tessera_session"));
        assert_eq!(app.get_bearer("/userinfo", &issued.access_token).await.status().as_u16(), 200);
    }

    async fn a_hint_for_another_browsers_session_ends_nothing(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        app.register("mallory", PASSWORD).await;
        app.register("nina", PASSWORD).await;
        let (mallorys, _) = code_flow(&app, RP, "mallory", &[("scope", "openid")]).await;
        let (ninas, mut nina_browser) = code_flow(&app, RP, "nina", &[("scope", "openid")]).await;
        let query = serde_urlencoded::to_string([("id_token_hint", id_token(&mallorys).as_str())]).unwrap();
        let response = nina_browser.get(&format!("/oauth/logout?{query}")).await;
        assert_eq!(response.status().as_u16(), 400);
        assert_eq!(app.get_bearer("/userinfo", &ninas.access_token).await.status().as_u16(), 200);
        assert_eq!(app.get_bearer("/userinfo", &mallorys.access_token).await.status().as_u16(), 200);
    }

    async fn without_a_hint_the_user_confirms_on_a_page_with_a_csrf_token(backend) {
        let app = spawn_app(backend).await;
        rp_client(&app, RP, None);
        app.register("olga", PASSWORD).await;
        let (issued, mut browser) = code_flow(&app, RP, "olga", &[("scope", "openid")]).await;
        let query = serde_urlencoded::to_string([("client_id", RP), ("post_logout_redirect_uri", RP_AFTER_LOGOUT), ("state", "s2")]).unwrap();
        let page = browser.get(&format!("/oauth/logout?{query}")).await;
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.unwrap();
        let csrf = hidden(&html, "csrf");
        assert_eq!(app.get_bearer("/userinfo", &issued.access_token).await.status().as_u16(), 200, "nothing ends before confirming");
        let form = [("client_id", RP), ("post_logout_redirect_uri", RP_AFTER_LOGOUT), ("state", "s2"), ("confirm", "yes")];
        let forged = browser.post("/oauth/logout", &[&form[..], &[("csrf", "forged")]].concat()).await;
        assert_eq!(forged.status().as_u16(), 400);
        assert_eq!(app.get_bearer("/userinfo", &issued.access_token).await.status().as_u16(), 200);
        let done = browser.post("/oauth/logout", &[&form[..], &[("csrf", csrf.as_str())]].concat()).await;
        assert_eq!(done.status().as_u16(), 303);
        assert_eq!(location(&done), format!("{RP_AFTER_LOGOUT}?state=s2"));
        assert_eq!(app.get_bearer("/userinfo", &issued.access_token).await.status().as_u16(), 401);
    }
}
