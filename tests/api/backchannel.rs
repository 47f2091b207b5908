//! Back-channel logout (SPEC §6.3, §6.7): every way a session of a client with a
//! `backchannel_logout_uri` ends makes tessera POST a logout token to it, which a receiver
//! checks against the JWKS; delivery is from the outbox, so a receiver that is down gets it
//! later and a slow one never slows the request that ended the session.
//!
//! The receiver is a small HTTP server on a random loopback port that records every
//! request and answers as told (200, 204, 500, or only after a wait), and can be stopped and
//! started again on its port.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::{Method, Response};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::helpers::*;

/// The client whose sessions the receiver is told about.
const RP: &str = "rp";
const ISSUER: &str = "http://tessera.test";
const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How the receiver answers.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// 200, after this long.
    After(Duration),
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: String,
    /// What the receiver answered.
    pub answer: Answer,
}

impl Delivery {
    /// The `logout_token` of the form body.
    pub fn logout_token(&self) -> String {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(name, _)| name == "logout_token")
            .map(|(_, value)| value.into_owned())
            .unwrap_or_else(|| panic!("no logout_token in {}", self.body))
    }

    fn delivered(&self) -> bool {
        matches!(self.answer, Answer::Status(200 | 204) | Answer::After(_))
    }
}

/// A back-channel logout endpoint.
pub struct Receiver {
    pub port: u16,
    received: Arc<Mutex<Vec<Delivery>>>,
    answer: Arc<Mutex<Answer>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut receiver = Receiver {
            port: listener.local_addr().unwrap().port(),
            received: Arc::new(Mutex::new(Vec::new())),
            answer: Arc::new(Mutex::new(Answer::Status(200))),
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: TcpListener) {
        let received = self.received.clone();
        let answer = self.answer.clone();
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (received, answer) = (received.clone(), answer.clone());
                tokio::spawn(async move {
                    let _ = exchange(stream, received, answer).await;
                });
            }
        }));
    }

    /// The URI to register.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/bcl", self.port)
    }

    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Stops listening: connections are refused.
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebinding the receiver: {e}"),
            }
        };
        self.serve(listener);
    }

    /// Every request so far, answered or not.
    pub fn requests(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }

    /// The logout tokens of the requests it accepted.
    pub fn delivered(&self) -> Vec<String> {
        self.requests()
            .iter()
            .filter(|d| d.delivered())
            .map(Delivery::logout_token)
            .collect()
    }

    /// Waits up to `secs` until `count` tokens were delivered; returns them.
    pub async fn wait_for(&self, count: usize, secs: u64) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let delivered = self.delivered();
            if delivered.len() >= count || Instant::now() > deadline {
                return delivered;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads one HTTP/1.1 request, records it, answers it and closes the connection.
async fn exchange(
    mut stream: tokio::net::TcpStream,
    received: Arc<Mutex<Vec<Delivery>>>,
    answer: Arc<Mutex<Answer>>,
) -> std::io::Result<()> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let method = request_line.next().unwrap_or("").to_string();
    let path = request_line.next().unwrap_or("").to_string();
    let header = |name: &str| {
        head.lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
    };
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let answer = *answer.lock().unwrap();
    received.lock().unwrap().push(Delivery {
        method,
        path,
        content_type: header("content-type").unwrap_or_default(),
        body: String::from_utf8_lossy(&buffer[head_end..]).into_owned(),
        answer,
    });
    let status = match answer {
        Answer::Status(status) => status,
        Answer::After(wait) => {
            tokio::time::sleep(wait).await;
            200
        }
    };
    let response = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// A public client signing users in with the password grant, told of its sessions' ends at
/// `receiver`.
fn rp_client(app: &TestApp, client_id: &str, receiver: Option<&Receiver>) {
    app.create_client(tessera::clients::NewClient {
        client_id: client_id.into(),
        public: true,
        grant_types: Some(vec!["password".into(), "refresh_token".into()]),
        backchannel_logout_uri: receiver.map(Receiver::url),
        ..Default::default()
    });
}

/// A test app with the `rp` client and its receiver.
async fn app_with_receiver(backend: Backend) -> (TestApp, Receiver) {
    let receiver = Receiver::start().await;
    let app = spawn_app(backend).await;
    rp_client(&app, RP, Some(&receiver));
    (app, receiver)
}

/// Signs `username` in at `client_id` with the password grant.
async fn login_at(app: &TestApp, client_id: &str, username: &str, password: &str) -> Tokens {
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
            ("client_id", client_id),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 200, "signing in at {client_id}");
    tokens(response).await
}

fn sid(tokens: &Tokens) -> String {
    claims(&tokens.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn sub(tokens: &Tokens) -> String {
    claims(&tokens.access_token)["sub"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn bearer(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Response {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// Checks a logout token as a relying party must (Back-Channel Logout 1.0 §2.6): signature
/// against the JWKS with the expected algorithm, `typ`, `iss`, `aud`, `iat`/`exp`, `jti`,
/// `events`, no `nonce`; returns its claims.
async fn verify_logout_token(
    app: &TestApp,
    token: &str,
    aud: &str,
    alg: jsonwebtoken::Algorithm,
) -> Value {
    let header = header(token);
    assert_eq!(header["typ"], "logout+jwt", "{header}");
    assert_eq!(header["alg"], format!("{alg:?}"), "{header}");
    let jwks = crate::algs::jwks(app).await;
    let claims = crate::algs::verify_with_jsonwebtoken(&jwks, token, alg, aud, ISSUER);
    let iat = claims["iat"].as_i64().expect("iat");
    assert!((iat - tessera::now()).abs() <= 5, "iat {iat} is now");
    assert_eq!(claims["exp"].as_i64(), Some(iat + 120), "exp = iat + 2 min");
    assert!(
        claims["jti"].as_str().is_some_and(|j| !j.is_empty()),
        "{claims}"
    );
    assert_eq!(claims["events"], json!({ EVENT: {} }));
    assert!(
        claims.get("nonce").is_none(),
        "a logout token has no nonce: {claims}"
    );
    claims
}

/// Waits for exactly the sessions `expected` (sid, sub) to be reported to `aud`, and checks
/// each token.
async fn assert_logouts(
    app: &TestApp,
    receiver: &Receiver,
    aud: &str,
    expected: &[(String, String)],
) {
    let delivered = receiver.wait_for(expected.len(), 10).await;
    let mut got = Vec::new();
    for token in &delivered {
        let claims = verify_logout_token(app, token, aud, jsonwebtoken::Algorithm::RS256).await;
        got.push((
            claims["sid"].as_str().unwrap().to_string(),
            claims["sub"].as_str().unwrap().to_string(),
        ));
    }
    got.sort();
    let mut expected = expected.to_vec();
    expected.sort();
    assert_eq!(got, expected, "the sessions reported to {aud}");
}

/// How many back-channel logouts tessera queued, delivered or not.
fn queued_logouts(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use tessera::store::schema::outbox;
    let mut pooled = app.state.db.get().unwrap();
    let conn: &mut tessera::store::DbConnection = &mut pooled;
    outbox::table
        .filter(outbox::kind.eq(tessera::backchannel::KIND))
        .count()
        .get_result(conn)
        .unwrap()
}

fn ended(tokens: &Tokens) -> (String, String) {
    (sid(tokens), sub(tokens))
}

both_backends! {
    async fn revoking_a_refresh_token_posts_a_logout_token_naming_the_session(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        app.register("alice", PASSWORD).await;
        let alice = login_at(&app, RP, "alice", PASSWORD).await;
        assert!(receiver.requests().is_empty(), "nothing before the session ends");
        let response = app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", RP)]).await;
        assert_eq!(response.status().as_u16(), 200);
        let delivered = receiver.wait_for(1, 10).await;
        assert_eq!(delivered.len(), 1);
        let request = &receiver.requests()[0];
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", "/bcl"));
        assert_eq!(request.content_type, "application/x-www-form-urlencoded");
        let claims = verify_logout_token(&app, &delivered[0], RP, jsonwebtoken::Algorithm::RS256).await;
        assert_eq!(claims["sid"], sid(&alice).as_str(), "the access token's sid");
        assert_eq!(claims["sub"], sub(&alice).as_str(), "the user id");
        assert_eq!(claims["aud"], RP);
        assert_eq!(claims["iss"], ISSUER);
        // Revoking it again ends nothing and sends nothing.
        app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", RP)]).await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(receiver.requests().len(), 1);
    }

    async fn an_es256_client_gets_logout_tokens_signed_with_es256(backend) {
        let receiver = Receiver::start().await;
        let app = spawn_app_with(backend, crate::algs::all_algs).await;
        app.create_client(tessera::clients::NewClient {
            client_id: RP.into(),
            public: true,
            grant_types: Some(vec!["password".into(), "refresh_token".into()]),
            backchannel_logout_uri: Some(receiver.url()),
            token_alg: Some("ES256".into()),
            ..Default::default()
        });
        app.register("alice", PASSWORD).await;
        let alice = login_at(&app, RP, "alice", PASSWORD).await;
        assert_eq!(header(&alice.access_token)["alg"], "ES256");
        app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", RP)]).await;
        let delivered = receiver.wait_for(1, 10).await;
        assert_eq!(delivered.len(), 1);
        let claims = verify_logout_token(&app, &delivered[0], RP, jsonwebtoken::Algorithm::ES256).await;
        assert_eq!(claims["sid"], sid(&alice).as_str());
    }

    async fn an_admin_revoking_one_session_reports_that_session(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        let admin = app.admin_token().await;
        app.register("alice", PASSWORD).await;
        let first = login_at(&app, RP, "alice", PASSWORD).await;
        let _second = login_at(&app, RP, "alice", PASSWORD).await;
        let response = bearer(&app, Method::DELETE, &format!("/admin/sessions/{}", sid(&first)), &admin, None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_logouts(&app, &receiver, RP, &[ended(&first)]).await;
    }

    async fn an_admin_ending_all_of_a_users_sessions_reports_each(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        let admin = app.admin_token().await;
        app.register("alice", PASSWORD).await;
        let first = login_at(&app, RP, "alice", PASSWORD).await;
        let second = login_at(&app, RP, "alice", PASSWORD).await;
        let response = bearer(&app, Method::DELETE, &format!("/admin/users/{}/sessions", sub(&first)), &admin, None).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_logouts(&app, &receiver, RP, &[ended(&first), ended(&second)]).await;
    }

    async fn refresh_token_reuse_reports_the_session_it_ends(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        app.register("alice", PASSWORD).await;
        let alice = login_at(&app, RP, "alice", PASSWORD).await;
        let spent = alice.refresh_token.clone().unwrap();
        let refreshed = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &spent), ("client_id", RP)]).await;
        assert_eq!(refreshed.status().as_u16(), 200);
        assert!(receiver.requests().is_empty(), "a refresh ends nothing");
        let reused = app.token(&[("grant_type", "refresh_token"), ("refresh_token", &spent), ("client_id", RP)]).await;
        assert_error(reused, 400, "invalid_grant").await;
        assert_logouts(&app, &receiver, RP, &[ended(&alice)]).await;
    }

    async fn a_reused_authorization_code_reports_the_session_it_started(backend) {
        use crate::authorize::{authorize_path, authorize_signing_in, exchange, new_pkce, params, Browser, SPA_REDIRECT};
        let receiver = Receiver::start().await;
        let app = spawn_app(backend).await;
        app.create_client(tessera::clients::NewClient {
            client_id: "web".into(),
            public: true,
            grant_types: Some(vec!["authorization_code".into(), "refresh_token".into()]),
            redirect_uris: vec![SPA_REDIRECT.into()],
            first_party: true,
            backchannel_logout_uri: Some(receiver.url()),
            ..Default::default()
        });
        app.register("bob", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let back = authorize_signing_in(&mut browser, &authorize_path("web", SPA_REDIRECT, &pkce.challenge, &[]), "bob").await;
        let code = params(&back)["code"].clone();
        let first = tokens(exchange(&app, "web", &code, SPA_REDIRECT, &pkce.verifier).await).await;
        assert_error(exchange(&app, "web", &code, SPA_REDIRECT, &pkce.verifier).await, 400, "invalid_grant").await;
        assert_logouts(&app, &receiver, "web", &[ended(&first)]).await;
    }

    async fn a_password_change_reports_the_other_sessions(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        let here = app.user_with_tokens("alice").await;
        let elsewhere = login_at(&app, RP, "alice", PASSWORD).await;
        let response = bearer(&app, Method::PUT, "/account/password", &here.access_token,
            Some(json!({"current_password": PASSWORD, "new_password": "another good passphrase"}))).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_logouts(&app, &receiver, RP, &[ended(&elsewhere)]).await;
    }

    async fn a_password_reset_reports_every_session(backend) {
        let sink = crate::mail::SmtpSink::start().await;
        let receiver = Receiver::start().await;
        let app = crate::mail::spawn_with_mail(backend, &sink).await;
        rp_client(&app, RP, Some(&receiver));
        crate::mail::register_with_email(&app, "bob", "bob@example.com").await;
        let bob = login_at(&app, RP, "bob", PASSWORD).await;
        crate::mail::forgot(&app, json!({ "username": "bob" })).await;
        let token = crate::mail::the_token(&sink.wait_for(1, 10).await[0], "/password/reset");
        let response = crate::mail::reset(&app, &token, "a brand new passphrase").await;
        assert_eq!(response.status().as_u16(), 204);
        assert_logouts(&app, &receiver, RP, &[ended(&bob)]).await;
    }

    async fn turning_mfa_on_reports_the_other_sessions(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        let here = app.user_with_tokens("alice").await;
        let elsewhere = login_at(&app, RP, "alice", PASSWORD).await;
        let mut authenticator = app.enrol(&here.access_token).await;
        let code = authenticator.next_code().await;
        let response = app.post_json_bearer("/account/mfa/totp/confirm", &here.access_token, &json!({"otp": code})).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_logouts(&app, &receiver, RP, &[ended(&elsewhere)]).await;
    }

    async fn disabling_a_user_reports_its_sessions(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        let admin = app.admin_token().await;
        app.register("alice", PASSWORD).await;
        let alice = login_at(&app, RP, "alice", PASSWORD).await;
        let response = bearer(&app, Method::PATCH, &format!("/admin/users/{}", sub(&alice)), &admin, Some(json!({"disabled": true}))).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_logouts(&app, &receiver, RP, &[ended(&alice)]).await;
    }

    async fn deleting_a_user_reports_its_sessions(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        let admin = app.admin_token().await;
        app.register("alice", PASSWORD).await;
        let alice = login_at(&app, RP, "alice", PASSWORD).await;
        let response = bearer(&app, Method::DELETE, &format!("/admin/users/{}", sub(&alice)), &admin, None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_logouts(&app, &receiver, RP, &[ended(&alice)]).await;
    }

    async fn withdrawing_consent_reports_that_clients_sessions(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        let mine = app.user_with_tokens("alice").await;
        let at_rp = login_at(&app, RP, "alice", PASSWORD).await;
        {
            let mut conn = app.state.db.get().unwrap();
            tessera::consent::grant(&mut conn, &sub(&mine), RP, &["profile".to_string()], None, tessera::now()).unwrap();
        }
        let response = bearer(&app, Method::DELETE, &format!("/account/consents/{RP}"), &mine.access_token, None).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_logouts(&app, &receiver, RP, &[ended(&at_rp)]).await;
    }

    async fn deleting_a_client_still_reports_its_sessions_to_its_receiver(backend) {
        // Its sessions end while it is deleted, at the URI it had: the app behind it may
        // still hold them, and should end them.
        let (app, receiver) = app_with_receiver(backend).await;
        let admin = app.admin_token().await;
        app.register("alice", PASSWORD).await;
        let alice = login_at(&app, RP, "alice", PASSWORD).await;
        let response = bearer(&app, Method::DELETE, &format!("/admin/clients/{RP}"), &admin, None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_logouts(&app, &receiver, RP, &[ended(&alice)]).await;
    }

    async fn deleting_a_client_that_does_not_exist_reports_nothing(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        let admin = app.admin_token().await;
        let response = bearer(&app, Method::DELETE, "/admin/clients/nobody", &admin, None).await;
        assert_error(response, 404, "not_found").await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(receiver.requests().is_empty());
    }

    async fn signing_out_everywhere_from_the_account_page_reports_every_session(backend) {
        use crate::authorize::{hidden, Browser};
        let (app, receiver) = app_with_receiver(backend).await;
        app.register("alice", PASSWORD).await;
        let first = login_at(&app, RP, "alice", PASSWORD).await;
        let second = login_at(&app, RP, "alice", PASSWORD).await;
        let mut browser = Browser::new(&app);
        assert_eq!(browser.sign_in("alice", PASSWORD).await.status().as_u16(), 303);
        let page = browser.get("/account").await.text().await.unwrap();
        let csrf = hidden(&page, "csrf");
        let response = browser.post("/account", &[("csrf", &csrf), ("action", "sign_out_everywhere")]).await;
        assert_eq!(response.status().as_u16(), 303);
        // The browser's own session belongs to no client, so only the app's two are told.
        assert_logouts(&app, &receiver, RP, &[ended(&first), ended(&second)]).await;
    }

    async fn signing_out_everywhere_through_the_api_reports_every_session(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        app.register("alice", PASSWORD).await;
        let first = login_at(&app, RP, "alice", PASSWORD).await;
        let second = login_at(&app, RP, "alice", PASSWORD).await;
        let response = bearer(&app, Method::DELETE, "/account/sessions", &first.access_token, None).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_logouts(&app, &receiver, RP, &[ended(&first), ended(&second)]).await;
    }

    async fn only_clients_with_a_backchannel_uri_are_told(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        rp_client(&app, "plain", None);
        app.register("alice", PASSWORD).await;
        let told = login_at(&app, RP, "alice", PASSWORD).await;
        let _untold = login_at(&app, "plain", "alice", PASSWORD).await;
        let _first_party = app.login("alice", PASSWORD).await;
        let response = bearer(&app, Method::DELETE, "/account/sessions", &told.access_token, None).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_logouts(&app, &receiver, RP, &[ended(&told)]).await;
        assert_eq!(queued_logouts(&app), 1, "one session had a receiver");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(receiver.requests().len(), 1, "one session had a receiver");
    }

    async fn a_session_that_had_already_expired_is_not_reported(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        app.create_client(tessera::clients::NewClient {
            client_id: "brief".into(),
            public: true,
            grant_types: Some(vec!["password".into(), "refresh_token".into()]),
            refresh_token_ttl: Some(1),
            backchannel_logout_uri: Some(receiver.url()),
            ..Default::default()
        });
        app.register("alice", PASSWORD).await;
        let _expired = login_at(&app, "brief", "alice", PASSWORD).await;
        let live = login_at(&app, RP, "alice", PASSWORD).await;
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let response = bearer(&app, Method::DELETE, "/account/sessions", &live.access_token, None).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_logouts(&app, &receiver, RP, &[ended(&live)]).await;
        assert_eq!(queued_logouts(&app), 1, "the expired session ended by expiring, not by a logout");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert_eq!(receiver.requests().len(), 1);
    }

    async fn a_receiver_that_is_down_gets_the_token_once_it_is_back(backend) {
        let (app, mut receiver) = app_with_receiver(backend).await;
        receiver.stop();
        app.register("alice", PASSWORD).await;
        let alice = login_at(&app, RP, "alice", PASSWORD).await;
        let response = app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", RP)]).await;
        assert_eq!(response.status().as_u16(), 200);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(receiver.requests().is_empty());
        receiver.restart().await;
        // Backoff 1 s, doubling: the next attempts come within a few seconds.
        assert_logouts(&app, &receiver, RP, &[ended(&alice)]).await;
    }

    async fn a_receiver_answering_500_gets_the_same_jti_again_until_it_accepts(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        receiver.answer(Answer::Status(500));
        app.register("alice", PASSWORD).await;
        let alice = login_at(&app, RP, "alice", PASSWORD).await;
        app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", RP)]).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while receiver.requests().len() < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        receiver.answer(Answer::Status(204));
        let delivered = receiver.wait_for(1, 15).await;
        assert_eq!(delivered.len(), 1, "204 is a delivery");
        let attempts = receiver.requests();
        assert!(attempts.len() >= 3, "two refusals, then the delivery: {}", attempts.len());
        let jtis: Vec<Value> = attempts.iter().map(|d| claims(&d.logout_token())["jti"].clone()).collect();
        assert!(jtis.iter().all(|j| j == &jtis[0]), "one jti over every attempt: {jtis:?}");
        verify_logout_token(&app, &delivered[0], RP, jsonwebtoken::Algorithm::RS256).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(receiver.requests().len(), attempts.len(), "nothing after the delivery");
    }

    async fn a_slow_receiver_does_not_slow_the_revocation(backend) {
        let (app, receiver) = app_with_receiver(backend).await;
        receiver.answer(Answer::After(Duration::from_secs(5)));
        app.register("alice", PASSWORD).await;
        let first = login_at(&app, RP, "alice", PASSWORD).await;
        let second = login_at(&app, RP, "alice", PASSWORD).await;
        for session in [&first, &second] {
            let started = Instant::now();
            let response = app.post_form("/oauth/revoke", &[("token", session.refresh_token.as_deref().unwrap()), ("client_id", RP)]).await;
            let took = started.elapsed();
            assert_eq!(response.status().as_u16(), 200);
            assert!(took < Duration::from_millis(500), "the revocation took {took:?}");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while receiver.requests().is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!receiver.requests().is_empty(), "the receiver was called meanwhile");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_database_deliver_each_logout_once() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let (first, receiver) = app_with_receiver(backend).await;
    let second = start(first.settings.clone(), first.dir.clone()).await;
    first.register("alice", PASSWORD).await;
    let mut sessions = Vec::new();
    for _ in 0..12 {
        sessions.push(login_at(&first, RP, "alice", PASSWORD).await);
    }
    // Half ended through each instance, so both have messages and both workers claim.
    for (i, session) in sessions.iter().enumerate() {
        let instance = if i % 2 == 0 { &first } else { &second };
        let response = instance
            .post_form(
                "/oauth/revoke",
                &[
                    ("token", session.refresh_token.as_deref().unwrap()),
                    ("client_id", RP),
                ],
            )
            .await;
        assert_eq!(response.status().as_u16(), 200);
    }
    let expected: Vec<(String, String)> = sessions.iter().map(ended).collect();
    assert_logouts(&first, &receiver, RP, &expected).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), 12, "each logout delivered once");
    let mut jtis: Vec<String> = requests
        .iter()
        .map(|d| {
            claims(&d.logout_token())["jti"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    jtis.sort();
    jtis.dedup();
    assert_eq!(jtis.len(), 12);
}
