//! Email verification and password reset (SPEC §6.4) against a real SMTP server: a small
//! SMTP sink on a random loopback port, speaking enough of RFC 5321 for lettre (EHLO, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT), that can be stopped and started again on its port.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::{assert_error, spawn_app_with, start, Backend, TestApp, PASSWORD};

/// One message the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

/// An SMTP server that keeps what it receives.
pub struct SmtpSink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SmtpSink {
    /// Starts on a free loopback port.
    pub async fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut sink = SmtpSink {
            port,
            received: Arc::new(Mutex::new(Vec::new())),
            task: None,
        };
        sink.serve(listener);
        sink
    }

    fn serve(&mut self, listener: TcpListener) {
        let received = self.received.clone();
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let received = received.clone();
                tokio::spawn(async move {
                    let _ = session(stream, received).await;
                });
            }
        }));
    }

    /// Stops listening (connection attempts are refused).
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
                Err(e) if tries < 50 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebinding the sink: {e}"),
            }
        };
        self.serve(listener);
    }

    /// The URL to configure tessera with.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits up to `secs` until at least `count` messages arrived.
    pub async fn wait_for(&self, count: usize, secs: u64) -> Vec<Received> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let messages = self.messages();
            if messages.len() >= count || std::time::Instant::now() > deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn session(
    stream: tokio::net::TcpStream,
    received: Arc<Mutex<Vec<Received>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut to = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
        } else if command.starts_with("HELO") || command.starts_with("NOOP") {
            write.write_all(b"250 ok\r\n").await?;
        } else if command.starts_with("MAIL FROM") {
            to.clear();
            write.write_all(b"250 ok\r\n").await?;
        } else if command.starts_with("RCPT TO") {
            to.push(line.trim_end()[8..].trim().to_string());
            write.write_all(b"250 ok\r\n").await?;
        } else if command == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                data.push_str(unstuffed);
            }
            received.lock().unwrap().push(Received {
                to: std::mem::take(&mut to),
                data,
            });
            write.write_all(b"250 queued\r\n").await?;
        } else if command.starts_with("RSET") {
            to.clear();
            write.write_all(b"250 ok\r\n").await?;
        } else if command.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            write.write_all(b"502 not implemented\r\n").await?;
        }
    }
}

/// Undoes quoted-printable soft breaks and escapes (the parts lettre writes).
fn decode_qp(text: &str) -> String {
    let joined = text.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The tokens of the links to `path` in a message (both parts), in order.
pub fn link_tokens(message: &Received, path: &str) -> Vec<String> {
    let decoded = decode_qp(&message.data);
    let prefix = format!("{path}?token=");
    decoded
        .match_indices(&prefix)
        .map(|(at, _)| {
            decoded[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect()
        })
        .collect()
}

/// The one token a message links to (the same in the text and HTML parts).
pub fn the_token(message: &Received, path: &str) -> String {
    let tokens = link_tokens(message, path);
    assert!(!tokens.is_empty(), "no {path} link in {}", message.data);
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
    assert_eq!(tokens[0].len(), 43, "256 random bits, base64url");
    tokens[0].clone()
}

pub async fn spawn_with_mail(backend: Backend, sink: &SmtpSink) -> TestApp {
    let url = sink.url();
    spawn_app_with(backend, move |settings| {
        settings.mail =
            Some(tessera::mail::MailSettings::parse(&url, None, None, &settings.issuer).unwrap());
    })
    .await
}

pub async fn register_with_email(app: &TestApp, username: &str, email: &str) {
    let response = app
        .post_json(
            "/register",
            &json!({ "username": username, "password": PASSWORD, "email": email }),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

pub async fn forgot(app: &TestApp, body: Value) -> reqwest::Response {
    app.post_json("/password/forgot", &body).await
}

pub async fn reset(app: &TestApp, token: &str, new_password: &str) -> reqwest::Response {
    app.post_json(
        "/password/reset",
        &json!({ "token": token, "new_password": new_password }),
    )
    .await
}

async fn put_email(app: &TestApp, access_token: &str, body: Value) -> reqwest::Response {
    app.client
        .put(app.url("/account/email"))
        .bearer_auth(access_token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn request_verification(app: &TestApp, access_token: &str) -> reqwest::Response {
    app.client
        .post(app.url("/account/email/verify"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
}

const NEW_PASSWORD: &str = "a brand new passphrase";

both_backends! {
    async fn a_reset_mail_arrives_with_a_link_in_both_parts(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "alice", "alice@example.com").await;
        let response = forgot(&app, json!({ "username": "alice" })).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let messages = sink.wait_for(1, 10).await;
        assert_eq!(messages.len(), 1);
        let message = &messages[0];
        assert_eq!(message.to, vec!["<alice@example.com>".to_string()]);
        assert!(message.data.contains("From: tessera@tessera.test"), "{}", message.data);
        assert!(message.data.contains("multipart/alternative"));
        assert!(message.data.contains("text/plain") && message.data.contains("text/html"));
        assert!(message.data.contains("Message-ID: <"));
        let token = the_token(message, "/password/reset");
        assert!(decode_qp(&message.data).contains(&format!("http://tessera.test/password/reset?token={token}")),
            "links use the issuer");
        assert!(link_tokens(message, "/password/reset").len() >= 2, "the link is in both parts");
        let page = app.get(&format!("/password/reset?token={token}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains("name=\"csrf\"") && html.contains("alice"));
    }

    async fn a_reset_link_sets_the_password_once_and_ends_every_session(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "bob", "bob@example.com").await;
        let before = app.login("bob", PASSWORD).await;
        forgot(&app, json!({ "email": "BOB@example.com" })).await;
        let token = the_token(&sink.wait_for(1, 10).await[0], "/password/reset");
        let response = reset(&app, &token, NEW_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        app.login("bob", NEW_PASSWORD).await;
        let old = app.refresh(before.refresh_token.as_deref().unwrap()).await;
        assert_error(old, 400, "invalid_grant").await;
        let again = reset(&app, &token, "yet another passphrase").await;
        assert_error(again, 400, "invalid_grant").await;
        let page = app.get(&format!("/password/reset?token={token}")).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST, "a used link gets a clear error page");
        assert!(page.text().await.unwrap().contains("invalid, used or expired"));
    }

    async fn a_reset_puts_the_sessions_it_ended_on_the_revocation_feed(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        let secret = app.confidential_client("verifier");
        register_with_email(&app, "rita", "rita@example.com").await;
        let before = app.login("rita", PASSWORD).await;
        let sid = crate::helpers::claims(&before.access_token)["sid"].as_str().unwrap().to_string();
        forgot(&app, json!({ "username": "rita" })).await;
        let token = the_token(&sink.wait_for(1, 10).await[0], "/password/reset");
        assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        let feed: Value = app
            .client
            .get(app.url("/revocations"))
            .basic_auth("verifier", Some(&secret))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = feed["items"].as_array().unwrap();
        assert!(
            items.iter().any(|i| i["type"] == "session" && i["id"] == sid.as_str()),
            "{feed}"
        );
    }

    async fn a_reset_applies_the_password_policy(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "carol", "carol@example.com").await;
        forgot(&app, json!({ "username": "carol" })).await;
        let token = the_token(&sink.wait_for(1, 10).await[0], "/password/reset");
        assert_error(reset(&app, &token, "short").await, 400, "weak_password").await;
        assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT,
            "a refused password does not spend the link");
    }

    async fn a_reset_clears_a_lock(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "dave", "dave@example.com").await;
        for _ in 0..5 {
            app.token(&[("grant_type", "password"), ("username", "dave"), ("password", "wrong password!")]).await;
        }
        let locked = app.token(&[("grant_type", "password"), ("username", "dave"), ("password", PASSWORD)]).await;
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
        forgot(&app, json!({ "username": "dave" })).await;
        let token = the_token(&sink.wait_for(1, 10).await[0], "/password/reset");
        assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
        app.login("dave", NEW_PASSWORD).await;
    }

    async fn an_expired_reset_link_is_refused_with_a_clear_page(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "erin", "erin@example.com").await;
        forgot(&app, json!({ "username": "erin" })).await;
        let token = the_token(&sink.wait_for(1, 10).await[0], "/password/reset");
        {
            use diesel::prelude::*;
            use tessera::store::schema::mail_tokens;
            let mut conn = app.state.db.get().unwrap();
            diesel::update(mail_tokens::table)
                .set(mail_tokens::expires_at.eq(tessera::now() - 1))
                .execute(&mut **conn)
                .unwrap();
        }
        let page = app.get(&format!("/password/reset?token={token}")).await;
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(page.text().await.unwrap().contains("invalid, used or expired"));
        assert_error(reset(&app, &token, NEW_PASSWORD).await, 400, "invalid_grant").await;
    }

    async fn unknown_and_known_accounts_get_byte_identical_answers(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "frank", "frank@example.com").await;
        let known = forgot(&app, json!({ "username": "frank" })).await;
        let unknown = forgot(&app, json!({ "username": "nobody-here" })).await;
        let no_email = {
            app.register("grace", PASSWORD).await;
            forgot(&app, json!({ "username": "grace" })).await
        };
        let mut answers = Vec::new();
        for response in [known, unknown, no_email] {
            let status = response.status();
            let mut headers: Vec<(String, String)> = response
                .headers()
                .iter()
                .filter(|(name, _)| *name != "date")
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
                .collect();
            headers.sort();
            let body = response.bytes().await.unwrap();
            answers.push((status, headers, body));
        }
        assert_eq!(answers[0].0, StatusCode::ACCEPTED);
        assert_eq!(answers[0], answers[1]);
        assert_eq!(answers[0], answers[2]);
        assert_eq!(sink.wait_for(1, 10).await.len(), 1, "only the known account with an address gets mail");
    }

    async fn an_account_gets_few_reset_mails_per_hour_and_the_answer_stays_the_same(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "heidi", "heidi@example.com").await;
        for _ in 0..5 {
            let response = forgot(&app, json!({ "username": "heidi" })).await;
            assert_eq!(response.status(), StatusCode::ACCEPTED);
        }
        let messages = sink.wait_for(5, 4).await;
        assert_eq!(messages.len(), tessera::recovery::RESETS_PER_HOUR as usize);
    }

    async fn a_down_smtp_server_delays_mail_but_loses_none(backend) {
        let mut sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        sink.stop();
        register_with_email(&app, "ivan", "ivan@example.com").await;
        register_with_email(&app, "judy", "judy@example.com").await;
        forgot(&app, json!({ "username": "ivan" })).await;
        forgot(&app, json!({ "username": "judy" })).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(sink.messages().is_empty());
        {
            use diesel::prelude::*;
            use tessera::store::schema::outbox;
            let mut conn = app.state.db.get().unwrap();
            let failed: Vec<(i32, Option<String>)> = outbox::table
                .select((outbox::attempts, outbox::last_error))
                .load(&mut **conn)
                .unwrap();
            assert_eq!(failed.len(), 2);
            assert!(failed.iter().all(|(attempts, error)| *attempts >= 1 && error.is_some()),
                "{failed:?}");
        }
        sink.restart().await;
        let messages = sink.wait_for(2, 15).await;
        let mut to: Vec<String> = messages.iter().flat_map(|m| m.to.clone()).collect();
        to.sort();
        assert_eq!(to, vec!["<ivan@example.com>", "<judy@example.com>"]);
    }

    async fn two_instances_on_one_database_send_each_mail_once(backend) {
        let sink = SmtpSink::start().await;
        let first = spawn_with_mail(backend, &sink).await;
        let second = start(first.settings.clone(), first.dir.clone()).await;
        for i in 0..8 {
            let name = format!("user{i}");
            register_with_email(&first, &name, &format!("{name}@example.com")).await;
        }
        for i in 0..8 {
            let app = if i % 2 == 0 { &first } else { &second };
            forgot(app, json!({ "username": format!("user{i}") })).await;
        }
        sink.wait_for(8, 15).await;
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let messages = sink.messages();
        let mut ids: Vec<String> = messages
            .iter()
            .map(|m| {
                m.data
                    .lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(ids.len(), 8, "each mail once");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 8);
    }

    async fn a_verification_link_verifies_the_address_once(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "kate", "kate@example.com").await;
        let tokens = app.login("kate", PASSWORD).await;
        let info: Value = app.get_bearer("/userinfo", &tokens.access_token).await.json().await.unwrap();
        assert_eq!(info["email_verified"], false);
        let response = request_verification(&app, &tokens.access_token).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let token = the_token(&sink.wait_for(1, 10).await[0], "/email/verify");
        let page = app.get(&format!("/email/verify?token={token}")).await;
        assert_eq!(page.status(), StatusCode::OK);
        let info: Value = app.get_bearer("/userinfo", &tokens.access_token).await.json().await.unwrap();
        assert_eq!(info["email_verified"], true);
        let again = app.get(&format!("/email/verify?token={token}")).await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert!(again.text().await.unwrap().contains("invalid, used or expired"));
    }

    async fn changing_the_email_needs_the_password_and_resets_verification(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "leo", "leo@example.com").await;
        let tokens = app.login("leo", PASSWORD).await;
        request_verification(&app, &tokens.access_token).await;
        let token = the_token(&sink.wait_for(1, 10).await[0], "/email/verify");
        assert_eq!(app.get(&format!("/email/verify?token={token}")).await.status(), StatusCode::OK);
        let wrong = put_email(&app, &tokens.access_token,
            json!({ "email": "leo@new.example", "password": "not the password" })).await;
        assert_error(wrong, 400, "invalid_grant").await;
        let changed = put_email(&app, &tokens.access_token,
            json!({ "email": "leo@new.example", "password": PASSWORD })).await;
        assert_eq!(changed.status(), StatusCode::OK);
        let body: Value = changed.json().await.unwrap();
        assert_eq!(body, json!({ "email": "leo@new.example", "email_verified": false }));
        let info: Value = app.get_bearer("/userinfo", &tokens.access_token).await.json().await.unwrap();
        assert_eq!(info["email"], "leo@new.example");
        assert_eq!(info["email_verified"], false);
    }

    async fn a_wrong_password_at_an_email_change_counts_toward_the_lock(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "mia", "mia@example.com").await;
        let tokens = app.login("mia", PASSWORD).await;
        for _ in 0..5 {
            put_email(&app, &tokens.access_token,
                json!({ "email": "mia@new.example", "password": "not the password" })).await;
        }
        let locked = put_email(&app, &tokens.access_token,
            json!({ "email": "mia@new.example", "password": PASSWORD })).await;
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    async fn forgot_password_requests_are_limited_per_client_address(backend) {
        let sink = SmtpSink::start().await;
        let url = sink.url();
        let app = spawn_app_with(backend, move |settings| {
            settings.login_rate_limit = Some(tessera::ratelimit::Rate { count: 3, per_secs: 60 });
            settings.mail = Some(
                tessera::mail::MailSettings::parse(&url, None, None, &settings.issuer).unwrap(),
            );
        })
        .await;
        for _ in 0..3 {
            assert_eq!(forgot(&app, json!({ "username": "x" })).await.status(), StatusCode::ACCEPTED);
        }
        let limited = forgot(&app, json!({ "username": "x" })).await;
        assert!(limited.headers().contains_key("retry-after"));
        assert_error(limited, 429, "rate_limited").await;
    }

    async fn the_account_page_sends_a_verification_link_and_changes_the_address(backend) {
        let sink = SmtpSink::start().await;
        let app = spawn_with_mail(backend, &sink).await;
        register_with_email(&app, "paul", "paul@example.com").await;
        let mut browser = crate::authorize::Browser::new(&app);
        assert_eq!(browser.sign_in("paul", PASSWORD).await.status(), StatusCode::SEE_OTHER);
        let page = browser.get("/account").await.text().await.unwrap();
        assert!(page.contains("paul@example.com") && page.contains("not verified"));
        let csrf = crate::authorize::hidden(&page, "csrf");
        let sent = browser.post("/account", &[("csrf", &csrf), ("action", "verify_email")]).await;
        assert_eq!(sent.status(), StatusCode::OK);
        assert!(sent.text().await.unwrap().contains("verification link is on its way"));
        let token = the_token(&sink.wait_for(1, 10).await[0], "/email/verify");
        assert_eq!(app.get(&format!("/email/verify?token={token}")).await.status(), StatusCode::OK);
        let page = browser.get("/account").await.text().await.unwrap();
        assert!(page.contains(">verified<"), "{page}");
        let wrong = browser.post("/account", &[
            ("csrf", &csrf), ("action", "change_email"),
            ("email", "paul@new.example"), ("password", "not the password"),
        ]).await;
        assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
        let changed = browser.post("/account", &[
            ("csrf", &csrf), ("action", "change_email"),
            ("email", "paul@new.example"), ("password", PASSWORD),
        ]).await;
        assert_eq!(changed.status(), StatusCode::OK);
        let page = changed.text().await.unwrap();
        assert!(page.contains("paul@new.example") && page.contains("not verified"));
        let forged = browser.post("/account", &[("csrf", "forged"), ("action", "verify_email")]).await;
        assert_eq!(forged.status(), StatusCode::BAD_REQUEST, "the forms need their CSRF token");
    }

    async fn the_sign_in_page_links_to_the_reset_form_only_with_mail(backend) {
        let sink = SmtpSink::start().await;
        let with_mail = spawn_with_mail(backend.clone(), &sink).await;
        let page = with_mail.get("/login").await.text().await.unwrap();
        assert!(page.contains("href=\"/password/forgot\""));
        let without = crate::helpers::spawn_app(backend).await;
        let page = without.get("/login").await.text().await.unwrap();
        assert!(!page.contains("/password/forgot"));
    }

    async fn without_mail_configured_the_endpoints_answer_503(backend) {
        let app = crate::helpers::spawn_app(backend).await;
        let response = forgot(&app, json!({ "username": "anyone" })).await;
        assert_error(response, 503, "temporarily_unavailable").await;
        let response = reset(&app, "whatever", NEW_PASSWORD).await;
        assert_error(response, 503, "temporarily_unavailable").await;
        assert_eq!(app.get("/password/reset?token=x").await.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(app.get("/email/verify?token=x").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}

#[tokio::test]
async fn file_urls_write_one_eml_per_message() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("outgoing");
    let url = format!("file://{}", folder.display());
    let app = spawn_app_with(Backend::Sqlite, move |settings| {
        settings.mail =
            Some(tessera::mail::MailSettings::parse(&url, None, None, &settings.issuer).unwrap());
    })
    .await;
    register_with_email(&app, "nina", "nina@example.com").await;
    forgot(&app, json!({ "username": "nina" })).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let files = loop {
        let files: Vec<_> = std::fs::read_dir(&folder)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        let emls: Vec<_> = files
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        if !emls.is_empty() || std::time::Instant::now() > deadline {
            break emls;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("To: nina@example.com"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&folder).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_resets_a_password_through_the_mailed_link() {
    let Some(python) = crate::third_party::python() else {
        return;
    };
    let Some(chromium) = crate::browser_pages::chromium() else {
        return;
    };
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let tessera = crate::reachable::spawn_reachable(Backend::Sqlite, move |settings| {
        settings.cookie_secure = false;
        settings.mail =
            Some(tessera::mail::MailSettings::parse(&url, None, None, &settings.issuer).unwrap());
    })
    .await;
    let app = &tessera.app;
    register_with_email(app, "olivia", "olivia@example.com").await;
    forgot(app, json!({ "username": "olivia" })).await;
    let token = the_token(&sink.wait_for(1, 10).await[0], "/password/reset");
    let link = format!("{}/password/reset?token={token}", app.address);
    let shots = match std::env::var("TESSERA_SCREENSHOTS") {
        Ok(dir) if !dir.is_empty() => std::path::PathBuf::from(dir),
        _ => app.dir.path().to_path_buf(),
    };
    crate::third_party::run_script_for(
        &python,
        "reset_flow.py",
        &[
            ("TESSERA_URL", &app.address),
            ("CHROMIUM", chromium.to_str().unwrap()),
            ("RESET_LINK", &link),
            ("USERNAME", "olivia"),
            ("NEW_PASSWORD", NEW_PASSWORD),
            ("SCREENSHOTS", shots.to_str().unwrap()),
        ],
        120,
    )
    .await;
    app.login("olivia", NEW_PASSWORD).await;
}
