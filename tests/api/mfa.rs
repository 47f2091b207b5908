//! Two-factor login: TOTP enrolment, the mfa-otp grant, recovery codes, turning MFA off.

use reqwest::Response;
use serde_json::{json, Value};

use crate::helpers::*;

const MFA_OTP: &str = "urn:tessera:params:oauth:grant-type:mfa-otp";

/// An authenticator app, written independently of tessera's own TOTP code: RFC 4648 base32
/// and RFC 6238 over aws-lc-rs HMAC-SHA1.
pub struct Authenticator {
    key: Vec<u8>,
    last_step: Option<i64>,
}

impl Authenticator {
    pub fn new(secret: &str) -> Self {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let (mut buffer, mut bits, mut key) = (0u64, 0u32, Vec::new());
        for c in secret.bytes() {
            let value = alphabet
                .iter()
                .position(|&a| a == c)
                .expect("secret is base32") as u64;
            buffer = (buffer << 5) | value;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                key.push((buffer >> bits) as u8);
            }
        }
        Authenticator {
            key,
            last_step: None,
        }
    }

    pub fn key_len(&self) -> usize {
        self.key.len()
    }

    pub fn code_at(&self, step: i64) -> String {
        use aws_lc_rs::hmac;
        let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &self.key);
        let mac = hmac::sign(&key, &(step as u64).to_be_bytes());
        let mac = mac.as_ref();
        let offset = (mac[19] & 0x0f) as usize;
        let value = u32::from_be_bytes(mac[offset..offset + 4].try_into().unwrap()) & 0x7fff_ffff;
        format!("{:06}", value % 1_000_000)
    }

    /// A code the server has not accepted yet: the earliest step after the last one used
    /// that lies inside the server's ±1 step window, waiting for the window to move if
    /// every step in it is used up.
    pub async fn next_code(&mut self) -> String {
        loop {
            let now = tessera::now();
            let current = now / 30;
            // Near the end of a step, the previous step may leave the window before the
            // server sees the code.
            let earliest = if now % 30 >= 25 { current } else { current - 1 };
            let step = self
                .last_step
                .map_or(earliest, |last| (last + 1).max(earliest));
            if step <= current + 1 {
                self.last_step = Some(step);
                return self.code_at(step);
            }
            let wait = 30 - now % 30;
            tokio::time::sleep(std::time::Duration::from_secs(wait as u64)).await;
        }
    }

    /// A well-formed code that is none of the codes valid now.
    pub fn wrong_code(&self) -> String {
        let current = tessera::now() / 30;
        let valid: Vec<String> = (current - 2..=current + 2)
            .map(|s| self.code_at(s))
            .collect();
        (0..)
            .map(|n| format!("{:06}", (123_456 + n * 7_919) % 1_000_000))
            .find(|c| !valid.contains(c))
            .unwrap()
    }
}

impl TestApp {
    pub async fn delete_json(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("DELETE failed")
    }

    pub async fn post_form_bearer(
        &self,
        path: &str,
        token: &str,
        form: &[(&str, &str)],
    ) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .form(form)
            .send()
            .await
            .expect("POST failed")
    }

    pub async fn post_json_bearer(&self, path: &str, token: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("POST failed")
    }

    /// Starts enrolment; returns the authenticator set up from the answer.
    pub async fn enrol(&self, access_token: &str) -> Authenticator {
        let response = self
            .post_json_bearer(
                "/account/mfa/totp",
                access_token,
                &json!({"password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status().as_u16(), 200, "enrolling");
        let body: Value = response.json().await.unwrap();
        Authenticator::new(body["secret"].as_str().unwrap())
    }

    /// Registers a user and turns MFA on; returns the authenticator and recovery codes.
    pub async fn user_with_mfa(&self, username: &str) -> (Authenticator, Vec<String>) {
        let tokens = self.user_with_tokens(username).await;
        let mut authenticator = self.enrol(&tokens.access_token).await;
        let code = authenticator.next_code().await;
        let response = self
            .post_json_bearer(
                "/account/mfa/totp/confirm",
                &tokens.access_token,
                &json!({ "otp": code }),
            )
            .await;
        assert_eq!(response.status().as_u16(), 200, "confirming");
        let body: Value = response.json().await.unwrap();
        let codes = body["recovery_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_string())
            .collect();
        (authenticator, codes)
    }

    /// The password grant for a user with MFA on: asserts `mfa_required`, returns the token.
    pub async fn mfa_token(&self, username: &str) -> String {
        self.mfa_token_for(username, &[]).await
    }

    pub async fn mfa_token_for(&self, username: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", PASSWORD),
        ];
        form.extend_from_slice(extra);
        let body = assert_error(self.token(&form).await, 403, "mfa_required").await;
        body["mfa_token"].as_str().expect("mfa_token").to_string()
    }

    pub async fn mfa_otp(&self, mfa_token: &str, otp: &str) -> Response {
        self.token(&[
            ("grant_type", MFA_OTP),
            ("mfa_token", mfa_token),
            ("otp", otp),
        ])
        .await
    }

    pub async fn userinfo(&self, access_token: &str) -> Value {
        let response = self.get_bearer("/userinfo", access_token).await;
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }

    /// Logs a user with MFA on all the way in.
    pub async fn login_with_mfa(
        &self,
        username: &str,
        authenticator: &mut Authenticator,
    ) -> Tokens {
        let mfa_token = self.mfa_token(username).await;
        let code = authenticator.next_code().await;
        let response = self.mfa_otp(&mfa_token, &code).await;
        assert_eq!(response.status().as_u16(), 200, "completing the MFA login");
        tokens(response).await
    }
}

both_backends! {
    async fn enrolment_needs_the_current_password(backend) {
        let app = spawn_app_with(backend, |s| s.lockout_threshold = 3).await;
        let tokens = app.user_with_tokens("alice").await;
        let response = app.post_json_bearer("/account/mfa/totp", &tokens.access_token, &json!({})).await;
        assert_error(response, 400, "invalid_request").await;
        let response = app.post_form_bearer("/account/mfa/totp", &tokens.access_token, &[("password", "")]).await;
        assert_error(response, 400, "invalid_request").await;
        let response = app.post_json_bearer("/account/mfa/totp", &tokens.access_token, &json!({"password": "not the password"})).await;
        assert_error(response, 400, "invalid_grant").await;
        let mut conn = app.state.db.get().unwrap();
        let user_id = app.userinfo(&tokens.access_token).await["sub"].as_str().unwrap().to_string();
        assert!(tessera::store::mfa::find_totp(&mut conn, &user_id).unwrap().is_none(), "nothing was enrolled");
        drop(conn);
        // Wrong passwords count toward the lock like failed logins.
        for _ in 0..2 {
            let response = app.post_json_bearer("/account/mfa/totp", &tokens.access_token, &json!({"password": "not the password"})).await;
            assert_error(response, 400, "invalid_grant").await;
        }
        let response = app.post_json_bearer("/account/mfa/totp", &tokens.access_token, &json!({"password": PASSWORD})).await;
        assert!(response.headers().contains_key("retry-after"));
        assert_error(response, 429, "rate_limited").await;
        let response = app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await;
        assert_error(response, 429, "rate_limited").await;
    }

    async fn turning_mfa_on_ends_the_other_sessions(backend) {
        let app = spawn_app(backend).await;
        let here = app.user_with_tokens("alice").await;
        let elsewhere = app.login("alice", PASSWORD).await;
        let mut authenticator = app.enrol(&here.access_token).await;
        // A pending enrolment changes nothing yet.
        assert_eq!(app.get_bearer("/userinfo", &elsewhere.access_token).await.status().as_u16(), 200);
        let code = authenticator.next_code().await;
        let response = app.post_json_bearer("/account/mfa/totp/confirm", &here.access_token, &json!({"otp": code})).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_error(app.get_bearer("/userinfo", &elsewhere.access_token).await, 401, "invalid_token").await;
        assert_error(app.refresh(elsewhere.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        // The session that turned MFA on goes on.
        assert_eq!(app.userinfo(&here.access_token).await["mfa_enabled"], true);
        assert_eq!(app.refresh(here.refresh_token.as_deref().unwrap()).await.status().as_u16(), 200);
    }

    async fn enrolment_returns_a_160_bit_base32_secret_and_an_otpauth_uri(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let response = app.post_json_bearer("/account/mfa/totp", &tokens.access_token, &json!({"password": PASSWORD})).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        let secret = body["secret"].as_str().unwrap();
        assert_eq!(Authenticator::new(secret).key_len(), 20);
        assert_eq!(
            body["otpauth_uri"],
            format!("otpauth://totp/tessera:alice?secret={secret}&issuer=tessera&algorithm=SHA1&digits=6&period=30")
        );
        assert_eq!(app.userinfo(&tokens.access_token).await["mfa_enabled"], false, "pending is not enabled");
    }

    async fn confirming_turns_mfa_on_and_returns_ten_recovery_codes(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let mut authenticator = app.enrol(&tokens.access_token).await;
        let code = authenticator.next_code().await;
        let response = app.post_form_bearer("/account/mfa/totp/confirm", &tokens.access_token, &[("otp", &code)]).await;
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        let codes: Vec<&str> = body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        assert_eq!(codes.len(), 10);
        let mut distinct = codes.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), 10);
        assert_eq!(app.userinfo(&tokens.access_token).await["mfa_enabled"], true);
    }

    async fn the_totp_secret_is_stored_encrypted(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let response = app.post_json_bearer("/account/mfa/totp", &tokens.access_token, &json!({"password": PASSWORD})).await;
        let secret = response.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_string();
        let mut conn = app.state.db.get().unwrap();
        let user_id = app.userinfo(&tokens.access_token).await["sub"].as_str().unwrap().to_string();
        let stored = tessera::store::mfa::find_totp(&mut conn, &user_id).unwrap().unwrap();
        let key = Authenticator::new(&secret).key;
        assert!(!stored.secret_sealed.contains(&secret));
        let opened = app.state.master_key.open(&format!("totp-secret:{user_id}"), &stored.secret_sealed).unwrap();
        assert_eq!(opened, key);
        assert!(app.state.master_key.open("totp-secret:someone-else", &stored.secret_sealed).is_err());
    }

    async fn a_wrong_confirmation_code_leaves_mfa_off(backend) {
        let app = spawn_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let authenticator = app.enrol(&tokens.access_token).await;
        let response = app.post_json_bearer("/account/mfa/totp/confirm", &tokens.access_token, &json!({"otp": authenticator.wrong_code()})).await;
        assert_error(response, 400, "invalid_grant").await;
        assert_eq!(app.userinfo(&tokens.access_token).await["mfa_enabled"], false);
    }

    async fn enrolling_again_while_mfa_is_on_is_refused(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let tokens = app.login_with_mfa("alice", &mut authenticator).await;
        let response = app.post_json_bearer("/account/mfa/totp", &tokens.access_token, &json!({"password": PASSWORD})).await;
        assert_error(response, 409, "invalid_request").await;
        app.login_with_mfa("alice", &mut authenticator).await;
    }

    async fn a_password_login_with_mfa_on_answers_mfa_required_and_no_tokens(backend) {
        let app = spawn_app(backend).await;
        app.user_with_mfa("alice").await;
        let response = app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await;
        let body = assert_error(response, 403, "mfa_required").await;
        assert!(body["mfa_token"].as_str().is_some_and(|t| t.len() >= 32));
        assert!(body.get("access_token").is_none());
        assert!(body.get("refresh_token").is_none());
    }

    async fn a_wrong_password_with_mfa_on_is_still_invalid_grant(backend) {
        let app = spawn_app(backend).await;
        app.user_with_mfa("alice").await;
        let response = app.token(&[("grant_type", "password"), ("username", "alice"), ("password", "not the password")]).await;
        let body = assert_error(response, 400, "invalid_grant").await;
        assert!(body.get("mfa_token").is_none());
    }

    async fn the_mfa_otp_grant_completes_the_login_with_amr_pwd_otp(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let tokens = app.login_with_mfa("alice", &mut authenticator).await;
        let claims = claims(&tokens.access_token);
        assert_eq!(claims["amr"], json!(["pwd", "otp"]));
        assert_eq!(claims["fresh"], true);
        assert_eq!(claims["username"], "alice");
        assert_eq!(tokens.body["scope"], "profile email");
        let refresh = tokens.refresh_token.expect("a refresh token");
        assert_eq!(app.refresh(&refresh).await.status().as_u16(), 200);
        assert_eq!(app.userinfo(&tokens.access_token).await["mfa_enabled"], true);
    }

    async fn the_scope_asked_for_at_the_password_step_is_kept(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let mfa_token = app.mfa_token_for("alice", &[("scope", "email")]).await;
        let response = app.mfa_otp(&mfa_token, &authenticator.next_code().await).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(tokens(response).await.body["scope"], "email");
    }

    async fn a_code_is_accepted_only_once(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let code = authenticator.next_code().await;
        let first = app.mfa_otp(&app.mfa_token("alice").await, &code).await;
        assert_eq!(first.status().as_u16(), 200);
        let replay = app.mfa_otp(&app.mfa_token("alice").await, &code).await;
        assert_error(replay, 400, "invalid_grant").await;
    }

    async fn the_confirming_code_cannot_be_used_to_log_in(backend) {
        let app = spawn_app(backend).await;
        let (authenticator, _) = app.user_with_mfa("alice").await;
        let confirming = authenticator.code_at(authenticator.last_step.unwrap());
        let response = app.mfa_otp(&app.mfa_token("alice").await, &confirming).await;
        assert_error(response, 400, "invalid_grant").await;
    }

    async fn an_mfa_token_is_used_once(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let mfa_token = app.mfa_token("alice").await;
        let first = app.mfa_otp(&mfa_token, &authenticator.next_code().await).await;
        assert_eq!(first.status().as_u16(), 200);
        let again = app.mfa_otp(&mfa_token, &authenticator.next_code().await).await;
        assert_error(again, 400, "invalid_grant").await;
    }

    async fn a_wrong_code_leaves_the_mfa_token_usable_for_a_retry(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let mfa_token = app.mfa_token("alice").await;
        let wrong = app.mfa_otp(&mfa_token, &authenticator.wrong_code()).await;
        assert_error(wrong, 400, "invalid_grant").await;
        let retry = app.mfa_otp(&mfa_token, &authenticator.next_code().await).await;
        assert_eq!(retry.status().as_u16(), 200);
    }

    async fn unknown_mfa_tokens_are_refused(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let response = app.mfa_otp("not-a-token-tessera-issued", &authenticator.next_code().await).await;
        assert_error(response, 400, "invalid_grant").await;
    }

    async fn expired_mfa_tokens_are_refused(backend) {
        use diesel::connection::SimpleConnection;
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let mfa_token = app.mfa_token("alice").await;
        // Five minutes pass.
        let mut conn = app.state.db.get().unwrap();
        conn.batch_execute(&format!("UPDATE mfa_tokens SET expires_at = {}", tessera::now())).unwrap();
        let response = app.mfa_otp(&mfa_token, &authenticator.next_code().await).await;
        assert_error(response, 400, "invalid_grant").await;
    }

    async fn mfa_tokens_expire_after_five_minutes(backend) {
        let app = spawn_app(backend).await;
        app.user_with_mfa("alice").await;
        let before = tessera::now();
        app.mfa_token("alice").await;
        let mut conn = app.state.db.get().unwrap();
        use diesel::prelude::*;
        use tessera::store::schema::mfa_tokens;
        let expires: Vec<i64> = mfa_tokens::table.select(mfa_tokens::expires_at).load(&mut **conn).unwrap();
        assert_eq!(expires.len(), 1);
        assert!((before + 300..=tessera::now() + 300).contains(&expires[0]));
    }

    async fn missing_mfa_fields_are_invalid_request(backend) {
        let app = spawn_app(backend).await;
        let response = app.token(&[("grant_type", MFA_OTP), ("otp", "123456")]).await;
        assert_error(response, 400, "invalid_request").await;
        let response = app.token(&[("grant_type", MFA_OTP), ("mfa_token", "abc")]).await;
        assert_error(response, 400, "invalid_request").await;
    }

    async fn recovery_codes_log_in_once_each(backend) {
        let app = spawn_app(backend).await;
        let (_, codes) = app.user_with_mfa("alice").await;
        let response = app.mfa_otp(&app.mfa_token("alice").await, &codes[3]).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(claims(&tokens(response).await.access_token)["amr"], json!(["pwd", "otp"]));
        let again = app.mfa_otp(&app.mfa_token("alice").await, &codes[3]).await;
        assert_error(again, 400, "invalid_grant").await;
        let other = app.mfa_otp(&app.mfa_token("alice").await, &codes[4].to_uppercase().replace('-', "")).await;
        assert_eq!(other.status().as_u16(), 200, "another code, typed without dashes in capitals");
    }

    async fn recovery_codes_of_another_user_do_not_work(backend) {
        let app = spawn_app(backend).await;
        let (_, alice_codes) = app.user_with_mfa("alice").await;
        app.user_with_mfa("bob").await;
        let response = app.mfa_otp(&app.mfa_token("bob").await, &alice_codes[0]).await;
        assert_error(response, 400, "invalid_grant").await;
    }

    async fn wrong_codes_lock_the_account(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let mfa_token = app.mfa_token("alice").await;
        for _ in 0..5 {
            let response = app.mfa_otp(&mfa_token, &authenticator.wrong_code()).await;
            assert_error(response, 400, "invalid_grant").await;
        }
        let right = app.mfa_otp(&mfa_token, &authenticator.next_code().await).await;
        assert_error(right, 429, "rate_limited").await;
        let password = app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await;
        assert_eq!(password.status().as_u16(), 429);
        assert!(password.headers().contains_key("retry-after"));
    }

    async fn a_right_password_does_not_reset_the_count_of_wrong_codes(backend) {
        let app = spawn_app(backend).await;
        let (authenticator, _) = app.user_with_mfa("alice").await;
        for _ in 0..5 {
            let mfa_token = app.mfa_token("alice").await;
            let response = app.mfa_otp(&mfa_token, &authenticator.wrong_code()).await;
            assert_error(response, 400, "invalid_grant").await;
        }
        let response = app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await;
        assert_error(response, 429, "rate_limited").await;
    }

    async fn disabling_with_the_password_turns_mfa_off(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let tokens = app.login_with_mfa("alice", &mut authenticator).await;
        let response = app.delete_json("/account/mfa/totp", &tokens.access_token, &json!({"password": PASSWORD})).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(app.userinfo(&tokens.access_token).await["mfa_enabled"], false);
        let plain = app.login("alice", PASSWORD).await;
        assert_eq!(claims(&plain.access_token)["amr"], json!(["pwd"]));
    }

    async fn disabling_with_a_code_turns_mfa_off(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let tokens = app.login_with_mfa("alice", &mut authenticator).await;
        let code = authenticator.next_code().await;
        let response = app.delete_json("/account/mfa/totp", &tokens.access_token, &json!({"otp": code})).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(app.userinfo(&tokens.access_token).await["mfa_enabled"], false);
        app.login("alice", PASSWORD).await;
    }

    async fn disabling_with_a_wrong_password_or_code_is_refused(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let tokens = app.login_with_mfa("alice", &mut authenticator).await;
        let response = app.delete_json("/account/mfa/totp", &tokens.access_token, &json!({"password": "not the password"})).await;
        assert_error(response, 400, "invalid_grant").await;
        let response = app.delete_json("/account/mfa/totp", &tokens.access_token, &json!({"otp": authenticator.wrong_code()})).await;
        assert_error(response, 400, "invalid_grant").await;
        let response = app.delete_json("/account/mfa/totp", &tokens.access_token, &json!({})).await;
        assert_error(response, 400, "invalid_request").await;
        assert_eq!(app.userinfo(&tokens.access_token).await["mfa_enabled"], true);
    }

    async fn disabling_removes_the_recovery_codes(backend) {
        let app = spawn_app(backend).await;
        let (_, codes) = app.user_with_mfa("alice").await;
        let tokens = tokens(app.mfa_otp(&app.mfa_token("alice").await, &codes[0]).await).await;
        let response = app.delete_json("/account/mfa/totp", &tokens.access_token, &json!({"password": PASSWORD})).await;
        assert_eq!(response.status().as_u16(), 204);
        let mut conn = app.state.db.get().unwrap();
        use diesel::prelude::*;
        use tessera::store::schema::{mfa_recovery_codes, mfa_totp};
        let left: i64 = mfa_recovery_codes::table.count().get_result(&mut **conn).unwrap();
        let secrets: i64 = mfa_totp::table.count().get_result(&mut **conn).unwrap();
        assert_eq!((left, secrets), (0, 0));
    }

    async fn admins_can_reset_a_users_mfa(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let alice = app.login_with_mfa("alice", &mut authenticator).await;
        let alice_id = claims(&alice.access_token)["sub"].as_str().unwrap().to_string();
        let admin_id = app.create_user("root", &["admin"]);
        let admin = app.login("root", PASSWORD).await;
        let response = app.client.delete(app.url(&format!("/admin/users/{alice_id}/mfa"))).bearer_auth(&admin.access_token).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(app.userinfo(&alice.access_token).await["mfa_enabled"], false);
        app.login("alice", PASSWORD).await;
        let mut conn = app.state.db.get().unwrap();
        let events = tessera::store::audit::list(&mut conn, &tessera::store::audit::AuditFilter {
            user_id: Some(alice_id.clone()),
            event_type: Some("mfa_disabled".into()),
            ..Default::default()
        }, 10).unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].actor.as_deref(), Some(admin_id.as_str()));
    }

    async fn only_admins_may_reset_mfa(backend) {
        let app = spawn_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let alice = app.login_with_mfa("alice", &mut authenticator).await;
        let alice_id = claims(&alice.access_token)["sub"].as_str().unwrap().to_string();
        let bob = app.user_with_tokens("bob").await;
        let response = app.client.delete(app.url(&format!("/admin/users/{alice_id}/mfa"))).bearer_auth(&bob.access_token).send().await.unwrap();
        assert_error(response, 403, "forbidden").await;
        assert_eq!(app.userinfo(&alice.access_token).await["mfa_enabled"], true);
        app.create_user("root", &["admin"]);
        let admin = app.login("root", PASSWORD).await;
        let response = app.client.delete(app.url("/admin/users/no-such-user/mfa")).bearer_auth(&admin.access_token).send().await.unwrap();
        assert_error(response, 404, "not_found").await;
    }
}

#[tokio::test]
async fn the_mfa_otp_grant_is_limited_per_client_address() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.login_rate_limit = Some(tessera::ratelimit::Rate {
            count: 3,
            per_secs: 60,
        });
    })
    .await;
    // Registration and the password login take two of the three attempts.
    app.user_with_tokens("alice").await;
    let response = app.mfa_otp("unknown", "123456").await;
    assert_error(response, 400, "invalid_grant").await;
    let response = app.mfa_otp("unknown", "123456").await;
    assert_error(response, 429, "rate_limited").await;
}

#[tokio::test]
async fn discovery_lists_the_mfa_otp_grant() {
    let app = spawn_app(Backend::Sqlite).await;
    let body: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert!(body["grant_types_supported"]
        .as_array()
        .unwrap()
        .contains(&json!(MFA_OTP)));
}
