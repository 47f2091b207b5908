//! Offline verifiers fed by the revocation feed, end to end: the Flask-JWT-Extended example
//! (`tests/python/verify_feed.py`) and the Rust example accept a user's access token; tessera
//! ends the session (an admin, refresh-token reuse, a password change) or retires the key
//! that signed it; both refuse the same, still unexpired token within 2 s, having reached
//! tessera only through the feed.

use std::net::TcpListener;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::helpers::*;
use crate::reachable::spawn_reachable;
use crate::revocation_feed::{sid, READER};

use crate::resource_server::rust_resource_server::{self, RevocationFeed, Verifier};

/// The Rust example, fed by the feed, running on a port of its own.
struct RustApi {
    address: String,
    feed: Arc<RevocationFeed>,
    client: reqwest::Client,
}

impl RustApi {
    async fn start(app: &TestApp, secret: &str) -> RustApi {
        let feed = RevocationFeed::new(&app.address, READER, secret).unwrap();
        tokio::spawn(feed.clone().run());
        let verifier = Verifier::discover_with_feed(
            &app.address,
            &app.address,
            Duration::from_secs(30),
            Some(feed.clone()),
        )
        .await
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(rust_resource_server::server(verifier, listener).unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while !feed.is_synced() {
            assert!(
                Instant::now() < deadline,
                "the Rust example never read the feed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        RustApi {
            address,
            feed,
            client: reqwest::Client::new(),
        }
    }

    async fn me(&self, token: &str) -> (u16, serde_json::Value) {
        let response = self
            .client
            .get(format!("{}/api/me", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or_default())
    }
}

/// The Flask example in a Python process, told on stdin when to expect the refusal.
struct FlaskApi {
    child: tokio::process::Child,
}

impl FlaskApi {
    /// Starts it and waits until it accepts `token` with its feed read.
    async fn start(app: &TestApp, secret: &str, token: &str) -> Option<FlaskApi> {
        let python = crate::third_party::python()?;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut command = tokio::process::Command::new(python);
        for (name, _) in std::env::vars() {
            if name.starts_with("TESSERA_") {
                command.env_remove(name);
            }
        }
        command
            .arg("-u")
            .arg(root.join("tests/python/verify_feed.py"))
            .current_dir(root)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("TESSERA_ISSUER", &app.address)
            .env("FEED_CLIENT_ID", READER)
            .env("FEED_CLIENT_SECRET", secret)
            .env("ACCESS_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().expect("starting python");
        let mut lines = BufReader::new(child.stdout.as_mut().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line == "ready" {
                    return true;
                }
            }
            false
        })
        .await
        .unwrap_or(false);
        if !ready {
            let mut stderr = String::new();
            let _ = child
                .stderr
                .as_mut()
                .unwrap()
                .read_to_string(&mut stderr)
                .await;
            panic!("the Flask example did not get ready:\n{stderr}");
        }
        Some(FlaskApi { child })
    }

    /// Tells it the revocation happened and waits for its verdict.
    async fn expect_refusal(mut self) {
        let mut stdin = self.child.stdin.take().unwrap();
        stdin.write_all(b"revoked\n").await.unwrap();
        drop(stdin);
        let output = tokio::time::timeout(Duration::from_secs(20), self.child.wait_with_output())
            .await
            .expect("the Flask check did not finish")
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.contains("checks passed"),
            "verify_feed.py failed ({}):\n{stdout}\n{stderr}",
            output.status
        );
    }
}

/// Both verifiers, accepting `token` and following the feed.
struct Verifiers {
    rust: RustApi,
    flask: Option<FlaskApi>,
}

impl Verifiers {
    async fn start(app: &TestApp, secret: &str, token: &str) -> Verifiers {
        let rust = RustApi::start(app, secret).await;
        assert_eq!(
            rust.me(token).await.0,
            200,
            "the Rust example accepts the token"
        );
        let flask = FlaskApi::start(app, secret, token).await;
        Verifiers { rust, flask }
    }

    /// Called right after the revocation: both refuse `token` within 2 s.
    async fn refuse_within_two_seconds(self, token: &str) {
        let revoked = Instant::now();
        let flask = self.flask.map(|flask| tokio::spawn(flask.expect_refusal()));
        loop {
            let (status, body) = self.rust.me(token).await;
            if status == 401 {
                assert_eq!(body["error_description"], "token revoked", "{body}");
                break;
            }
            assert_eq!(status, 200);
            assert!(
                revoked.elapsed() < Duration::from_secs(2),
                "the Rust example still accepted the revoked token after 2 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(self.rust.feed.is_synced());
        if let Some(flask) = flask {
            flask.await.unwrap();
        }
    }
}

both_backends! {
    async fn an_admin_revoking_a_session_stops_its_token_at_both_verifiers_within_two_seconds(backend) {
        let tessera = spawn_reachable(backend, |_| {}).await;
        let app = &tessera.app;
        let secret = app.feed_reader();
        let admin = app.admin_token().await;
        let alice = app.user_with_tokens("alice").await;
        let verifiers = Verifiers::start(app, &secret, &alice.access_token).await;
        let response = app.client.delete(app.url(&format!("/admin/sessions/{}", sid(&alice)))).bearer_auth(&admin).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 204);
        verifiers.refuse_within_two_seconds(&alice.access_token).await;
    }

    async fn refresh_token_reuse_stops_the_sessions_token_at_both_verifiers_within_two_seconds(backend) {
        let tessera = spawn_reachable(backend, |_| {}).await;
        let app = &tessera.app;
        let secret = app.feed_reader();
        let alice = app.user_with_tokens("alice").await;
        let spent = alice.refresh_token.clone().unwrap();
        let refreshed = tokens(app.refresh(&spent).await).await;
        let verifiers = Verifiers::start(app, &secret, &refreshed.access_token).await;
        assert_error(app.refresh(&spent).await, 400, "invalid_grant").await;
        verifiers.refuse_within_two_seconds(&refreshed.access_token).await;
    }

    async fn a_password_change_stops_the_other_sessions_token_at_both_verifiers_within_two_seconds(backend) {
        let tessera = spawn_reachable(backend, |_| {}).await;
        let app = &tessera.app;
        let secret = app.feed_reader();
        let here = app.user_with_tokens("alice").await;
        let elsewhere = app.login("alice", PASSWORD).await;
        let verifiers = Verifiers::start(app, &secret, &elsewhere.access_token).await;
        let response = app.client.put(app.url("/account/password")).bearer_auth(&here.access_token)
            .json(&json!({"current_password": PASSWORD, "new_password": "another good passphrase"}))
            .send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        verifiers.refuse_within_two_seconds(&elsewhere.access_token).await;
    }

    async fn retiring_the_signing_key_stops_its_tokens_at_both_verifiers_within_two_seconds(backend) {
        let tessera = spawn_reachable(backend, |_| {}).await;
        let app = &tessera.app;
        let secret = app.feed_reader();
        let admin = app.admin_token().await;
        let alice = app.user_with_tokens("alice").await;
        let kid = header(&alice.access_token)["kid"].as_str().unwrap().to_string();
        let verifiers = Verifiers::start(app, &secret, &alice.access_token).await;
        let response = app.client.delete(app.url(&format!("/admin/keys/{kid}"))).bearer_auth(&admin).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        verifiers.refuse_within_two_seconds(&alice.access_token).await;
    }
}
