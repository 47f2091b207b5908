//! The authorization code flow with PKCE (SPEC §6.2) driven the way a browser and a client
//! app drive it: `/oauth/authorize`, the sign-in, consent and account pages (cookies kept by
//! hand, redirects not followed), and `grant_type=authorization_code`.

use std::collections::HashMap;

use reqwest::{Method, Response};
use serde_json::{json, Value};
use tessera::clients::NewClient;
use tessera::grants::authorization_code::s256;

use crate::admin::{admin, call};
use crate::helpers::*;

pub const SPA: &str = "spa";
pub const SPA_REDIRECT: &str = "http://127.0.0.1:5173/callback";
pub const THIRD: &str = "partner";
pub const THIRD_REDIRECT: &str = "https://partner.example/cb";

/// A browser: a cookie jar over the test app's client.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    pub cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            cookies: HashMap::new(),
        }
    }

    fn keep(&mut self, response: &Response) {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, path: &str) -> Response {
        let response = self
            .app
            .client
            .get(self.app.url(path))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Response {
        let response = self
            .app
            .client
            .post(self.app.url(path))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&response);
        response
    }

    /// Signs in through the page (no authorization request pending).
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Response {
        let page = self.get("/login").await.text().await.unwrap();
        let csrf = hidden(&page, "csrf");
        self.post(
            "/login",
            &[
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }
}

/// The value of a hidden form field.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end]
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
}

pub fn location(response: &Response) -> String {
    response.headers()["location"].to_str().unwrap().to_string()
}

/// The query parameters of a redirect.
pub fn params(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    serde_urlencoded::from_str(query).unwrap()
}

pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

pub fn new_pkce() -> Pkce {
    let verifier = tessera::crypto::random_token::<32>();
    Pkce {
        challenge: s256(&verifier),
        verifier,
    }
}

pub fn authorize_path(
    client_id: &str,
    redirect_uri: &str,
    challenge: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut query = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
        ("state", "xyz"),
    ];
    query.extend_from_slice(extra);
    format!(
        "/oauth/authorize?{}",
        serde_urlencoded::to_string(&query).unwrap()
    )
}

/// A public SPA client (first-party unless said otherwise) and a third-party one.
pub fn clients(app: &TestApp) {
    app.create_client(NewClient {
        client_id: SPA.into(),
        public: true,
        grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
        scopes: Some(vec!["profile".into(), "email".into()]),
        redirect_uris: vec![SPA_REDIRECT.into()],
        first_party: true,
        name: Some("The SPA".into()),
        ..Default::default()
    });
    app.create_client(NewClient {
        client_id: THIRD.into(),
        public: true,
        grant_types: Some(vec!["authorization_code".into()]),
        scopes: Some(vec!["profile".into(), "email".into()]),
        redirect_uris: vec![
            THIRD_REDIRECT.into(),
            "com.partner.app:/cb".into(),
            "http://127.0.0.1/partner".into(),
        ],
        name: Some("Partner Reports".into()),
        ..Default::default()
    });
}

/// From an authorization request through the sign-in page back to the client; answers the
/// final redirect.
pub async fn authorize_signing_in(browser: &mut Browser<'_>, path: &str, username: &str) -> String {
    let response = browser.get(path).await;
    assert_eq!(response.status().as_u16(), 303);
    let login = location(&response);
    assert!(login.starts_with("/login?return_to="), "{login}");
    let page = browser.get(&login).await.text().await.unwrap();
    let csrf = hidden(&page, "csrf");
    let return_to = hidden(&page, "return_to");
    assert_eq!(return_to, path);
    let response = browser
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("return_to", &return_to),
                ("username", username),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), path);
    let response = browser.get(path).await;
    assert_eq!(response.status().as_u16(), 303, "{:?}", response.headers());
    location(&response)
}

pub async fn exchange(
    app: &TestApp,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Response {
    app.token(&[
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ])
    .await
}

fn assert_page_headers(response: &Response) {
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");
}

both_backends! {
    async fn a_public_spa_signs_in_with_pkce_and_gets_fresh_tokens_once(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("alice", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let path = authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[]);
        let back = authorize_signing_in(&mut browser, &path, "alice").await;
        assert!(back.starts_with(SPA_REDIRECT), "{back}");
        let got = params(&back);
        assert_eq!(got["state"], "xyz");
        assert_eq!(got["iss"], app.settings.issuer);
        assert!(got["code"].len() >= 43, "at least 128 bits");
        assert!(browser.cookies.contains_key("tessera_session"));

        let response = exchange(&app, SPA, &got["code"], SPA_REDIRECT, &pkce.verifier).await;
        assert_eq!(response.status().as_u16(), 200);
        let issued = tokens(response).await;
        let access = claims(&issued.access_token);
        assert_eq!(access["fresh"], true, "a password was entered for this request");
        assert_eq!(access["amr"], json!(["pwd"]));
        assert_eq!(access["client_id"], SPA);
        assert_eq!(access["scope"], "profile email");
        assert!(issued.refresh_token.is_some());
        let userinfo = app.get_bearer("/userinfo", &issued.access_token).await;
        assert_eq!(userinfo.status().as_u16(), 200);
        assert_eq!(userinfo.json::<Value>().await.unwrap()["username"], "alice");

        // The browser session is reused: a code at once, and tokens that are not fresh.
        let again = new_pkce();
        let response = browser.get(&authorize_path(SPA, SPA_REDIRECT, &again.challenge, &[])).await;
        assert_eq!(response.status().as_u16(), 303);
        let got = params(&location(&response));
        let issued = tokens(exchange(&app, SPA, &got["code"], SPA_REDIRECT, &again.verifier).await).await;
        let access = claims(&issued.access_token);
        assert_eq!(access["fresh"], false);
        assert_eq!(access["auth_time"], claims(&issued.access_token)["auth_time"]);

        // prompt=login asks for the password again even with a session.
        let third = new_pkce();
        let path = authorize_path(SPA, SPA_REDIRECT, &third.challenge, &[("prompt", "login")]);
        let back = authorize_signing_in(&mut browser, &path, "alice").await;
        let issued = tokens(exchange(&app, SPA, &params(&back)["code"], SPA_REDIRECT, &third.verifier).await).await;
        assert_eq!(claims(&issued.access_token)["fresh"], true);
    }

    async fn a_reused_code_is_refused_and_ends_the_session_it_started(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("bob", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let back = authorize_signing_in(&mut browser, &authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[]), "bob").await;
        let code = params(&back)["code"].clone();
        let first = tokens(exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier).await).await;
        assert_eq!(app.get_bearer("/userinfo", &first.access_token).await.status().as_u16(), 200);
        let second = exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier).await;
        assert_error(second, 400, "invalid_grant").await;
        assert_eq!(app.get_bearer("/userinfo", &first.access_token).await.status().as_u16(), 401);
        assert_error(app.refresh(first.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
    }

    async fn of_two_exchanges_of_one_code_at_once_one_wins_and_its_session_ends(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("dave", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let back = authorize_signing_in(&mut browser, &authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[]), "dave").await;
        let code = params(&back)["code"].clone();
        let (one, two) = tokio::join!(
            exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier),
            exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier),
        );
        let (won, lost) = if one.status().as_u16() == 200 { (one, two) } else { (two, one) };
        assert_eq!(won.status().as_u16(), 200);
        assert_error(lost, 400, "invalid_grant").await;
        let won = tokens(won).await;
        assert_eq!(app.get_bearer("/userinfo", &won.access_token).await.status().as_u16(), 401);
    }

    async fn a_code_refused_for_its_verifier_starts_no_session_and_stays_spent(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("fay", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let back = authorize_signing_in(&mut browser, &authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[]), "fay").await;
        let code = params(&back)["code"].clone();
        let sessions_before = session_rows(&app);
        let wrong = exchange(&app, SPA, &code, SPA_REDIRECT, &new_pkce().verifier).await;
        assert_error(wrong, 400, "invalid_grant").await;
        assert_eq!(session_rows(&app), sessions_before);
        let recorded: Option<String> = {
            use diesel::prelude::*;
            use tessera::store::schema::authorization_codes;
            let mut conn = app.state.db.get().unwrap();
            authorization_codes::table
                .select(authorization_codes::session_id)
                .first(&mut **conn)
                .unwrap()
        };
        assert_eq!(recorded, None, "no session is recorded for a refused exchange");
        let right = exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier).await;
        assert_error(right, 400, "invalid_grant").await;
        assert_eq!(session_rows(&app), sessions_before);
    }

    async fn a_code_past_its_60_seconds_is_refused_and_starts_no_session(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("erin", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let back = authorize_signing_in(&mut browser, &authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[]), "erin").await;
        let code = params(&back)["code"].clone();
        let sessions_before = session_rows(&app);
        {
            // The code ages (moved into the past here rather than waited for).
            use diesel::prelude::*;
            use tessera::store::schema::authorization_codes;
            let mut conn = app.state.db.get().unwrap();
            let aged = diesel::update(authorization_codes::table)
                .set(authorization_codes::expires_at.eq(tessera::now() - 1))
                .execute(&mut **conn)
                .unwrap();
            assert_eq!(aged, 1);
        }
        let response = exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier).await;
        assert_error(response, 400, "invalid_grant").await;
        assert_eq!(session_rows(&app), sessions_before, "no session for an expired code");
    }

    async fn a_code_is_bound_to_its_verifier_client_and_redirect_uri(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("carol", PASSWORD).await;
        let mut browser = Browser::new(&app);
        for (client, redirect, verifier_ok) in [
            (SPA, SPA_REDIRECT, false),
            (THIRD, SPA_REDIRECT, true),
            (SPA, "http://127.0.0.1:5173/other", true),
        ] {
            let pkce = new_pkce();
            let response = browser.get(&authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[])).await;
            let code = if response.status().as_u16() == 303 && location(&response).starts_with(SPA_REDIRECT) {
                params(&location(&response))["code"].clone()
            } else {
                let back = authorize_signing_in(&mut browser, &authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[]), "carol").await;
                params(&back)["code"].clone()
            };
            let verifier = if verifier_ok { pkce.verifier.clone() } else { format!("{}x", &pkce.verifier[1..]) };
            assert_error(exchange(&app, client, &code, redirect, &verifier).await, 400, "invalid_grant").await;
            // A refused attempt spends the code: the right request cannot follow it.
            assert_error(exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier).await, 400, "invalid_grant").await;
        }
        assert_error(exchange(&app, SPA, "no-such-code", SPA_REDIRECT, &"a".repeat(43)).await, 400, "invalid_grant").await;
        assert_error(
            app.token(&[("grant_type", "authorization_code"), ("client_id", SPA), ("code", "c")]).await,
            400,
            "invalid_request",
        ).await;
    }

    async fn unknown_clients_and_unregistered_redirect_uris_get_a_page_never_a_redirect(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        let pkce = new_pkce();
        let mut browser = Browser::new(&app);
        for path in [
            authorize_path("nobody", SPA_REDIRECT, &pkce.challenge, &[]),
            authorize_path(SPA, "https://evil.example/cb", &pkce.challenge, &[]),
            authorize_path(SPA, "http://127.0.0.1:5173/callback/../evil", &pkce.challenge, &[]),
            // Two registered: redirect_uri may not be left out.
            format!("/oauth/authorize?response_type=code&client_id={THIRD}&code_challenge={}&code_challenge_method=S256", pkce.challenge),
            "/oauth/authorize?response_type=code".to_string(),
        ] {
            let response = browser.get(&path).await;
            assert_eq!(response.status().as_u16(), 400, "{path}");
            assert!(response.headers().get("location").is_none());
            assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
            assert_page_headers(&response);
            let html = response.text().await.unwrap();
            assert!(html.contains("<html lang=\"en\">"));
            assert!(!html.contains("evil.example"), "the bad address is not linked: {html}");
        }
        // Any port for a loopback IP literal (RFC 8252 §7.3).
        let response = browser.get(&authorize_path(SPA, "http://127.0.0.1:40123/callback", &pkce.challenge, &[])).await;
        assert_eq!(response.status().as_u16(), 303);
        assert!(location(&response).starts_with("/login?"));
    }

    async fn other_errors_redirect_with_error_state_and_iss(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.create_client(NewClient {
            client_id: "no-code".into(),
            public: true,
            grant_types: Some(vec!["password".into()]),
            redirect_uris: vec![SPA_REDIRECT.into()],
            ..Default::default()
        });
        let pkce = new_pkce();
        let mut browser = Browser::new(&app);
        let challenge = pkce.challenge.as_str();
        let base = |extra: &[(&str, &str)]| {
            let mut query = vec![("client_id", SPA), ("redirect_uri", SPA_REDIRECT), ("state", "s1")];
            query.extend_from_slice(extra);
            format!("/oauth/authorize?{}", serde_urlencoded::to_string(&query).unwrap())
        };
        for (path, error) in [
            (base(&[("response_type", "token"), ("code_challenge", challenge), ("code_challenge_method", "S256")]), "unsupported_response_type"),
            (base(&[("code_challenge", challenge), ("code_challenge_method", "S256")]), "invalid_request"),
            (base(&[("response_type", "code")]), "invalid_request"),
            (base(&[("response_type", "code"), ("code_challenge", challenge), ("code_challenge_method", "plain")]), "invalid_request"),
            (base(&[("response_type", "code"), ("code_challenge", challenge)]), "invalid_request"),
            (base(&[("response_type", "code"), ("code_challenge", "short"), ("code_challenge_method", "S256")]), "invalid_request"),
            (base(&[("response_type", "code"), ("code_challenge", challenge), ("code_challenge_method", "S256"), ("scope", "admin")]), "invalid_scope"),
            (base(&[("response_type", "code"), ("code_challenge", challenge), ("code_challenge_method", "S256"), ("prompt", "none")]), "login_required"),
            (base(&[("response_type", "code"), ("code_challenge", challenge), ("code_challenge_method", "S256"), ("max_age", "-1")]), "invalid_request"),
            (authorize_path("no-code", SPA_REDIRECT, challenge, &[]), "unauthorized_client"),
        ] {
            let response = browser.get(&path).await;
            assert_eq!(response.status().as_u16(), 303, "{path}");
            assert_page_headers(&response);
            let to = location(&response);
            assert!(to.starts_with(SPA_REDIRECT), "{to}");
            let got = params(&to);
            assert_eq!(got["error"], error, "{path}");
            assert!(!got["error_description"].is_empty());
            assert!(got["state"] == "s1" || got["state"] == "xyz");
            assert_eq!(got["iss"], app.settings.issuer);
            assert!(!got.contains_key("code"));
        }
    }

    async fn third_party_clients_ask_once_deny_is_access_denied_and_consents_can_be_withdrawn(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("dave", PASSWORD).await;
        let mut browser = Browser::new(&app);
        assert_eq!(browser.sign_in("dave", PASSWORD).await.status().as_u16(), 303);

        // prompt=none without consent: consent_required.
        let pkce1 = new_pkce();
        let response = browser.get(&authorize_path(THIRD, THIRD_REDIRECT, &pkce1.challenge, &[("prompt", "none")])).await;
        assert_eq!(params(&location(&response))["error"], "consent_required");

        let path = authorize_path(THIRD, THIRD_REDIRECT, &pkce1.challenge, &[("scope", "profile")]);
        let response = browser.get(&path).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_page_headers(&response);
        let html = response.text().await.unwrap();
        assert!(html.contains("Partner Reports"), "names the client");
        assert!(html.contains("profile"), "names the scope");
        let csrf = hidden(&html, "csrf");
        let request = hidden(&html, "request");
        let denied = browser.post("/consent", &[("csrf", &csrf), ("request", &request), ("decision", "deny")]).await;
        assert_eq!(denied.status().as_u16(), 303);
        let got = params(&location(&denied));
        assert_eq!(got["error"], "access_denied");
        assert_eq!(got["state"], "xyz");

        let refused = browser.post("/consent", &[("csrf", "forged"), ("request", &request), ("decision", "allow")]).await;
        assert_eq!(refused.status().as_u16(), 400);
        assert!(refused.headers().get("location").is_none());

        let allowed = browser.post("/consent", &[("csrf", &csrf), ("request", &request), ("decision", "allow")]).await;
        assert_eq!(allowed.status().as_u16(), 303);
        let code = params(&location(&allowed))["code"].clone();
        let issued = tokens(exchange(&app, THIRD, &code, THIRD_REDIRECT, &pkce1.verifier).await).await;

        // Remembered: the next request for the same scope goes straight back with a code.
        let pkce2 = new_pkce();
        let response = browser.get(&authorize_path(THIRD, THIRD_REDIRECT, &pkce2.challenge, &[("scope", "profile"), ("prompt", "none")])).await;
        assert!(params(&location(&response)).contains_key("code"));
        // A wider scope asks again.
        let response = browser.get(&authorize_path(THIRD, THIRD_REDIRECT, &pkce2.challenge, &[("scope", "profile email")])).await;
        assert_eq!(response.status().as_u16(), 200);

        let me = tokens(app.token(&[("grant_type", "password"), ("username", "dave"), ("password", PASSWORD)]).await).await;
        let listed: Value = app.get_bearer("/account/consents", &me.access_token).await.json().await.unwrap();
        assert_eq!(listed["items"][0]["client_id"], THIRD);
        assert_eq!(listed["items"][0]["scopes"], json!(["profile"]));
        assert_eq!(listed["next_cursor"], Value::Null);
        let response = call(&app, Method::DELETE, &format!("/account/consents/{THIRD}"), Some(&me.access_token), None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(app.get_bearer("/userinfo", &issued.access_token).await.status().as_u16(), 401, "that client's sessions ended");
        assert_eq!(app.get_bearer("/userinfo", &me.access_token).await.status().as_u16(), 200, "others stay");
        let response = call(&app, Method::DELETE, &format!("/account/consents/{THIRD}"), Some(&me.access_token), None).await;
        assert_eq!(response.status().as_u16(), 404);
        // First-party clients never ask.
        let pkce3 = new_pkce();
        let response = browser.get(&authorize_path(SPA, SPA_REDIRECT, &pkce3.challenge, &[("prompt", "consent")])).await;
        assert!(params(&location(&response)).contains_key("code"));
    }

    async fn the_sign_in_page_shares_the_password_grants_message_lock_and_mfa(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("erin", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let wrong = browser.sign_in("erin", "wrong password!").await;
        assert_eq!(wrong.status().as_u16(), 400);
        let wrong_html = wrong.text().await.unwrap();
        let unknown = browser.sign_in("nobody-here", "wrong password!").await;
        assert_eq!(unknown.status().as_u16(), 400);
        let unknown_html = unknown.text().await.unwrap();
        assert!(wrong_html.contains("Wrong username or password."));
        assert!(unknown_html.contains("Wrong username or password."));
        assert!(!browser.cookies.contains_key("tessera_session"));
        // Without a CSRF token nothing is checked.
        let response = browser.post("/login", &[("username", "erin"), ("password", PASSWORD)]).await;
        assert_eq!(response.status().as_u16(), 400);
        for _ in 0..4 {
            browser.sign_in("erin", "wrong password!").await;
        }
        // Five failures on the page lock the account for the password grant too.
        let response = app.token(&[("grant_type", "password"), ("username", "erin"), ("password", PASSWORD)]).await;
        assert_eq!(response.status().as_u16(), 429);
        let locked = browser.sign_in("erin", PASSWORD).await;
        assert_eq!(locked.status().as_u16(), 429, "a right password during the lock is refused");
        assert!(locked.headers().contains_key("retry-after"));
        assert!(locked.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
        let audit: Vec<String> = {
            let mut conn = app.state.db.get().unwrap();
            tessera::admin::list_audit(&mut conn, Default::default(), None, 500).unwrap().items.into_iter().map(|e| e.event_type).collect()
        };
        assert!(audit.iter().filter(|t| *t == "login_failed").count() >= 6, "{audit:?}");
        assert!(audit.iter().any(|t| t == "account_locked"));
    }

    async fn a_user_with_totp_signs_in_with_the_code_step(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        let (mut authenticator, _) = app.user_with_mfa("frank").await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let path = authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[]);
        let login = location(&browser.get(&path).await);
        let page = browser.get(&login).await.text().await.unwrap();
        let response = browser.post("/login", &[
            ("csrf", &hidden(&page, "csrf")), ("return_to", &path), ("username", "frank"), ("password", PASSWORD),
        ]).await;
        assert_eq!(response.status().as_u16(), 200);
        let step = response.text().await.unwrap();
        assert!(step.contains("Authentication code"));
        assert!(!browser.cookies.contains_key("tessera_session"));
        let mfa_token = hidden(&step, "mfa_token");
        let wrong = browser.post("/login", &[
            ("csrf", &hidden(&step, "csrf")), ("return_to", &path), ("mfa_token", &mfa_token), ("otp", "000000"),
        ]).await;
        assert_eq!(wrong.status().as_u16(), 400);
        let code = authenticator.next_code().await;
        let response = browser.post("/login", &[
            ("csrf", &hidden(&step, "csrf")), ("return_to", &path), ("mfa_token", &mfa_token), ("otp", &code),
        ]).await;
        assert_eq!(response.status().as_u16(), 303);
        let back = location(&browser.get(&path).await);
        let issued = tokens(exchange(&app, SPA, &params(&back)["code"], SPA_REDIRECT, &pkce.verifier).await).await;
        assert_eq!(claims(&issued.access_token)["amr"], json!(["pwd", "otp"]));
        assert_eq!(claims(&issued.access_token)["fresh"], true);
    }

    async fn ending_the_users_sessions_ends_the_browser_session(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("gina", PASSWORD).await;
        let mut browser = Browser::new(&app);
        assert_eq!(browser.sign_in("gina", PASSWORD).await.status().as_u16(), 303);
        let old = browser.cookies["tessera_session"].clone();
        let account = browser.get("/account").await;
        assert_eq!(account.status().as_u16(), 200);
        assert_page_headers(&account);
        let html = account.text().await.unwrap();
        assert!(html.contains("gina"));
        assert!(html.contains("this browser"));
        // Signing in again gives a new session id.
        assert_eq!(browser.sign_in("gina", PASSWORD).await.status().as_u16(), 303);
        assert_ne!(browser.cookies["tessera_session"], old);
        let api = tokens(app.token(&[("grant_type", "password"), ("username", "gina"), ("password", PASSWORD)]).await).await;
        assert_eq!(call(&app, Method::DELETE, "/account/sessions", Some(&api.access_token), None).await.status().as_u16(), 204);
        let response = browser.get("/account").await;
        assert_eq!(response.status().as_u16(), 303);
        assert_eq!(location(&response), "/login");
        let pkce = new_pkce();
        let response = browser.get(&authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[("prompt", "none")])).await;
        assert_eq!(params(&location(&response))["error"], "login_required");
    }

    async fn max_age_asks_again_for_an_older_sign_in_and_login_hint_fills_the_username(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        app.register("ivy", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let response = browser.get(&authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[("login_hint", "ivy")])).await;
        let login = location(&response);
        assert!(login.contains("login_hint=ivy"), "{login}");
        let html = browser.get(&login).await.text().await.unwrap();
        assert!(html.contains("value=\"ivy\""), "pre-filled");
        assert!(html.contains("The SPA"), "names the client");
        assert_eq!(browser.sign_in("ivy", PASSWORD).await.status().as_u16(), 303);
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        let response = browser.get(&authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[("max_age", "60")])).await;
        assert!(location(&response).starts_with(SPA_REDIRECT), "recent enough");
        let response = browser.get(&authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[("max_age", "1")])).await;
        assert!(location(&response).starts_with("/login?"), "too old: sign in again");
        let response = browser.get(&authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[("max_age", "1"), ("prompt", "none")])).await;
        assert_eq!(params(&location(&response))["error"], "login_required");
    }

    async fn logout_and_signup_pages(backend) {
        let app = spawn_app(backend).await;
        clients(&app);
        let mut browser = Browser::new(&app);
        let page = browser.get("/signup").await;
        assert_eq!(page.status().as_u16(), 200);
        let html = page.text().await.unwrap();
        let csrf = hidden(&html, "csrf");
        let weak = browser.post("/signup", &[("csrf", &csrf), ("username", "henry"), ("password", "password")]).await;
        assert_eq!(weak.status().as_u16(), 400);
        let made = browser.post("/signup", &[("csrf", &csrf), ("username", "henry"), ("password", PASSWORD)]).await;
        assert_eq!(made.status().as_u16(), 303);
        assert_eq!(location(&made), "/account");
        let taken = browser.post("/signup", &[("csrf", &csrf), ("username", "HENRY"), ("password", PASSWORD)]).await;
        assert_eq!(taken.status().as_u16(), 409);
        assert_eq!(browser.get("/account").await.status().as_u16(), 200);
        let out = browser.post("/logout", &[("csrf", &csrf)]).await;
        assert_eq!(out.status().as_u16(), 303);
        assert_eq!(browser.get("/account").await.status().as_u16(), 303);
        let css = browser.get("/assets/tessera.css").await;
        assert_eq!(css.status().as_u16(), 200);
        assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
    }

    async fn clients_take_redirect_uris_checked_when_saved_and_can_be_patched(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        for bad in ["http://app.example/cb", "https://app.example/cb#x", "javascript:alert(1)", "myapp:/cb"] {
            let response = call(&app, Method::POST, "/admin/clients", Some(&root.token), Some(&json!({
                "client_id": "web", "public": true, "grant_types": ["authorization_code"], "redirect_uris": [bad],
            }))).await;
            assert_error(response, 400, "invalid_request").await;
        }
        let response = call(&app, Method::POST, "/admin/clients", Some(&root.token), Some(&json!({
            "client_id": "web", "public": true, "grant_types": ["authorization_code"],
        }))).await;
        assert_error(response, 400, "invalid_request").await;
        let response = call(&app, Method::POST, "/admin/clients", Some(&root.token), Some(&json!({
            "client_id": "web", "public": true, "name": "Web", "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["https://app.example/cb", "http://127.0.0.1/cb", "com.example.app:/cb"],
            "post_logout_redirect_uris": ["https://app.example/bye"],
            "backchannel_logout_uri": "https://app.example/bcl",
        }))).await;
        assert_eq!(response.status().as_u16(), 201);
        let created: Value = response.json().await.unwrap();
        assert_eq!(created["first_party"], false, "third-party by default");
        assert_eq!(created["redirect_uris"][2], "com.example.app:/cb");
        let response = call(&app, Method::PATCH, "/admin/clients/web", Some(&root.token), Some(&json!({
            "first_party": true, "name": null, "redirect_uris": ["https://app.example/new"],
        }))).await;
        assert_eq!(response.status().as_u16(), 200);
        let patched: Value = response.json().await.unwrap();
        assert_eq!(patched["first_party"], true);
        assert_eq!(patched["name"], Value::Null);
        assert_eq!(patched["redirect_uris"], json!(["https://app.example/new"]));
        assert_eq!(patched["backchannel_logout_uri"], "https://app.example/bcl");
        for body in [json!({"redirect_uris": ["http://evil.example/cb"]}), json!({"public": false}), json!({"client_id": "x"})] {
            let response = call(&app, Method::PATCH, "/admin/clients/web", Some(&root.token), Some(&body)).await;
            assert_error(response, 400, "invalid_request").await;
        }
        let response = call(&app, Method::PATCH, "/admin/clients/nope", Some(&root.token), Some(&json!({"first_party": true}))).await;
        assert_error(response, 404, "not_found").await;
        let discovery: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
        assert_eq!(discovery["authorization_endpoint"], format!("{}/oauth/authorize", app.settings.issuer));
        assert_eq!(discovery["response_types_supported"], json!(["code"]));
        assert_eq!(discovery["response_modes_supported"], json!(["query"]));
        assert_eq!(discovery["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(discovery["authorization_response_iss_parameter_supported"], true);
        assert!(discovery["grant_types_supported"].as_array().unwrap().contains(&json!("authorization_code")));
    }
}

/// How many session rows the database holds (browser sessions included).
fn session_rows(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use tessera::store::schema::sessions;
    let mut conn = app.state.db.get().unwrap();
    sessions::table.count().get_result(&mut **conn).unwrap()
}
