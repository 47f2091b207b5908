//! `GET /revocations` (SPEC §6.7): who may read it, what lands on it (every way a session
//! ends, deny-listed access tokens, keys retired early), paging with `since`, `ETag`/304,
//! and `wait`, which returns promptly when a revocation is made through another instance.

use std::time::{Duration, Instant};

use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// The feed reader's client id.
pub const READER: &str = "feed-reader";

impl TestApp {
    /// A confidential client that may read the feed; returns its secret.
    pub fn feed_reader(&self) -> String {
        self.confidential_client(READER)
    }

    /// `GET /revocations?{query}` as `READER` with `secret`.
    pub async fn revocations(&self, secret: &str, query: &str) -> Response {
        self.client
            .get(self.url(&format!("/revocations{query}")))
            .basic_auth(READER, Some(secret))
            .send()
            .await
            .expect("GET /revocations failed")
    }

    /// The whole feed as `(type, id)` pairs.
    pub async fn feed_entries(&self, secret: &str) -> Vec<(String, String)> {
        let response = self.revocations(secret, "").await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                (
                    item["type"].as_str().unwrap().to_string(),
                    item["id"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// An admin's access token.
    pub async fn admin_token(&self) -> String {
        self.create_user("root", &["admin"]);
        self.login("root", PASSWORD).await.access_token
    }

    async fn delete_bearer(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// The `sid` of a token.
pub fn sid(tokens: &Tokens) -> String {
    claims(&tokens.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_string()
}

fn session(sid: &str) -> (String, String) {
    ("session".to_string(), sid.to_string())
}

both_backends! {
    async fn an_admin_revoking_a_session_puts_its_sid_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let admin = app.admin_token().await;
        let alice = app.user_with_tokens("alice").await;
        assert!(app.feed_entries(&secret).await.is_empty());
        let before = tessera::now();
        let response = app.delete_bearer(&format!("/admin/sessions/{}", sid(&alice)), &admin).await;
        assert_eq!(response.status().as_u16(), 204);
        let response = app.revocations(&secret, "").await;
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        let items = body["items"].as_array().unwrap();
        assert_eq!(items.len(), 1, "{body}");
        assert_eq!(items[0]["type"], "session");
        assert_eq!(items[0]["id"], sid(&alice).as_str());
        let revoked_at = items[0]["revoked_at"].as_i64().unwrap();
        assert!(revoked_at >= before && revoked_at <= tessera::now());
        assert_eq!(items[0]["until"].as_i64().unwrap(), revoked_at + 900 + 30, "revoked_at + the longest access-token lifetime + 30 s");
        assert!(body["next_cursor"].is_string());
    }

    async fn a_session_entry_lasts_the_longest_lifetime_a_client_has(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        app.create_client(tessera::clients::NewClient {
            client_id: "slow".into(),
            public: false,
            grant_types: Some(vec!["client_credentials".into()]),
            access_token_ttl: Some(3600),
            ..Default::default()
        });
        let alice = app.user_with_tokens("alice").await;
        app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", "first-party")]).await;
        let body: Value = app.revocations(&secret, "").await.json().await.unwrap();
        let item = &body["items"][0];
        assert_eq!(item["until"].as_i64().unwrap(), item["revoked_at"].as_i64().unwrap() + 3600 + 30);
    }

    async fn logging_out_with_the_refresh_token_puts_the_session_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let alice = app.user_with_tokens("alice").await;
        let response = app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", "first-party")]).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&alice))]);
        // Revoking it again adds nothing.
        app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", "first-party")]).await;
        assert_eq!(app.feed_entries(&secret).await.len(), 1);
    }

    async fn revoking_an_access_token_puts_its_jti_on_the_feed_until_it_expires(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let alice = app.user_with_tokens("alice").await;
        let response = app.post_form("/oauth/revoke", &[("token", alice.access_token.as_str()), ("token_type_hint", "access_token"), ("client_id", "first-party")]).await;
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = app.revocations(&secret, "").await.json().await.unwrap();
        let token = claims(&alice.access_token);
        assert_eq!(body["items"].as_array().unwrap().len(), 1, "{body}");
        assert_eq!(body["items"][0]["type"], "token");
        assert_eq!(body["items"][0]["id"], token["jti"]);
        assert_eq!(body["items"][0]["until"].as_i64().unwrap(), token["exp"].as_i64().unwrap() + 30);
    }

    async fn signing_out_everywhere_puts_every_session_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let first = app.user_with_tokens("alice").await;
        let second = app.login("alice", PASSWORD).await;
        let response = app.delete_bearer("/account/sessions", &first.access_token).await;
        assert!(response.status().is_success(), "{}", response.status());
        let mut entries = app.feed_entries(&secret).await;
        entries.sort();
        let mut expected = vec![session(&sid(&first)), session(&sid(&second))];
        expected.sort();
        assert_eq!(entries, expected);
    }

    async fn refresh_token_reuse_puts_the_session_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let alice = app.user_with_tokens("alice").await;
        let spent = alice.refresh_token.clone().unwrap();
        assert_eq!(app.refresh(&spent).await.status().as_u16(), 200);
        assert_error(app.refresh(&spent).await, 400, "invalid_grant").await;
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&alice))]);
    }

    async fn a_password_change_puts_the_other_sessions_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let here = app.user_with_tokens("alice").await;
        let elsewhere = app.login("alice", PASSWORD).await;
        let response = app.client.put(app.url("/account/password")).bearer_auth(&here.access_token)
            .json(&json!({"current_password": PASSWORD, "new_password": "another good passphrase"}))
            .send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&elsewhere))]);
    }

    async fn turning_mfa_on_puts_the_other_sessions_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let here = app.user_with_tokens("alice").await;
        let elsewhere = app.login("alice", PASSWORD).await;
        let mut authenticator = app.enrol(&here.access_token).await;
        let code = authenticator.next_code().await;
        let response = app.post_json_bearer("/account/mfa/totp/confirm", &here.access_token, &json!({"otp": code})).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&elsewhere))]);
    }

    async fn disabling_a_user_puts_its_sessions_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let admin = app.admin_token().await;
        let alice = app.user_with_tokens("alice").await;
        let id = claims(&alice.access_token)["sub"].as_str().unwrap().to_string();
        let response = app.client.patch(app.url(&format!("/admin/users/{id}"))).bearer_auth(&admin)
            .json(&json!({"disabled": true})).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&alice))]);
    }

    async fn deleting_a_user_puts_its_sessions_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let admin = app.admin_token().await;
        let alice = app.user_with_tokens("alice").await;
        let id = claims(&alice.access_token)["sub"].as_str().unwrap().to_string();
        let response = app.delete_bearer(&format!("/admin/users/{id}"), &admin).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&alice))]);
    }

    async fn deleting_a_client_puts_its_sessions_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let admin = app.admin_token().await;
        app.create_client(tessera::clients::NewClient {
            client_id: "mobile".into(),
            public: true,
            grant_types: Some(vec!["password".into(), "refresh_token".into()]),
            ..Default::default()
        });
        app.register("alice", PASSWORD).await;
        let alice = tokens(app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD), ("client_id", "mobile")]).await).await;
        let response = app.delete_bearer("/admin/clients/mobile", &admin).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&alice))]);
    }

    async fn withdrawing_consent_puts_that_clients_sessions_on_the_feed(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        app.create_client(tessera::clients::NewClient {
            client_id: "partner".into(),
            public: true,
            grant_types: Some(vec!["password".into(), "refresh_token".into()]),
            ..Default::default()
        });
        let mine = app.user_with_tokens("alice").await;
        let partner = tokens(app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD), ("client_id", "partner")]).await).await;
        let user_id = claims(&mine.access_token)["sub"].as_str().unwrap().to_string();
        {
            let mut conn = app.state.db.get().unwrap();
            tessera::consent::grant(&mut conn, &user_id, "partner", &["profile".to_string()], None, tessera::now()).unwrap();
        }
        let response = app.delete_bearer("/account/consents/partner", &mine.access_token).await;
        assert!(response.status().is_success(), "{}", response.status());
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&partner))]);
    }

    async fn a_reused_authorization_code_puts_the_session_it_started_on_the_feed(backend) {
        use crate::authorize::{authorize_path, authorize_signing_in, clients, exchange, new_pkce, params, Browser, SPA, SPA_REDIRECT};
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        clients(&app);
        app.register("bob", PASSWORD).await;
        let mut browser = Browser::new(&app);
        let pkce = new_pkce();
        let back = authorize_signing_in(&mut browser, &authorize_path(SPA, SPA_REDIRECT, &pkce.challenge, &[]), "bob").await;
        let code = params(&back)["code"].clone();
        let first = tokens(exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier).await).await;
        assert!(app.feed_entries(&secret).await.is_empty());
        assert_error(exchange(&app, SPA, &code, SPA_REDIRECT, &pkce.verifier).await, 400, "invalid_grant").await;
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&first))]);
    }

    async fn retiring_a_key_early_puts_its_kid_on_the_feed_and_a_scheduled_rotation_does_not(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let admin = app.admin_token().await;
        let old_kid = header(&admin)["kid"].as_str().unwrap().to_string();
        let response = app.client.post(app.url("/admin/keys/rotate")).bearer_auth(&admin).send().await.unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        assert!(app.feed_entries(&secret).await.is_empty(), "a rotation retires nothing early");
        let response = app.delete_bearer(&format!("/admin/keys/{old_kid}"), &admin).await;
        assert!(response.status().is_success(), "{}", response.status());
        let entries = app.feed_entries(&secret).await;
        assert_eq!(entries, vec![("key".to_string(), old_kid)]);
    }

    async fn pages_follow_each_other_with_since_oldest_first(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let mut sids = Vec::new();
        for name in ["alice", "bob", "carol"] {
            let tokens = app.user_with_tokens(name).await;
            app.post_form("/oauth/revoke", &[("token", tokens.refresh_token.as_deref().unwrap()), ("client_id", "first-party")]).await;
            sids.push(sid(&tokens));
        }
        let first: Value = app.revocations(&secret, "?limit=2").await.json().await.unwrap();
        let ids: Vec<&str> = first["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [sids[0].as_str(), sids[1].as_str()]);
        let cursor = first["next_cursor"].as_str().unwrap();
        let second: Value = app.revocations(&secret, &format!("?since={cursor}&limit=2")).await.json().await.unwrap();
        let ids: Vec<&str> = second["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(ids, [sids[2].as_str()]);
        let cursor = second["next_cursor"].as_str().unwrap();
        let third: Value = app.revocations(&secret, &format!("?since={cursor}")).await.json().await.unwrap();
        assert_eq!(third["items"], json!([]));
        assert_eq!(third["next_cursor"], cursor, "nothing newer: the since given comes back");
    }

    async fn an_empty_feed_still_answers_a_cursor_that_catches_what_comes_next(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let empty: Value = app.revocations(&secret, "").await.json().await.unwrap();
        assert_eq!(empty["items"], json!([]));
        let cursor = empty["next_cursor"].as_str().unwrap().to_string();
        let alice = app.user_with_tokens("alice").await;
        app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", "first-party")]).await;
        let next: Value = app.revocations(&secret, &format!("?since={cursor}")).await.json().await.unwrap();
        assert_eq!(next["items"][0]["id"], sid(&alice).as_str());
    }

    async fn a_reader_following_the_cursor_misses_none_of_many_concurrent_revocations(backend) {
        let app = std::sync::Arc::new(spawn_app(backend).await);
        let secret = app.feed_reader();
        let mut sids = Vec::new();
        let mut refresh_tokens = Vec::new();
        app.register("alice", PASSWORD).await;
        for _ in 0..24 {
            let tokens = app.login("alice", PASSWORD).await;
            sids.push(sid(&tokens));
            refresh_tokens.push(tokens.refresh_token.unwrap());
        }
        let mut cursor = app.revocations(&secret, "").await.json::<Value>().await.unwrap()["next_cursor"].as_str().unwrap().to_string();
        let revocations: Vec<_> = refresh_tokens.into_iter().map(|token| {
            let app = app.clone();
            tokio::spawn(async move {
                app.post_form("/oauth/revoke", &[("token", token.as_str()), ("client_id", "first-party")]).await.status().as_u16()
            })
        }).collect();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while seen.len() < sids.len() && Instant::now() < deadline {
            let page: Value = app.revocations(&secret, &format!("?since={cursor}&wait=2&limit=5")).await.json().await.unwrap();
            for item in page["items"].as_array().unwrap() {
                seen.push(item["id"].as_str().unwrap().to_string());
            }
            cursor = page["next_cursor"].as_str().unwrap().to_string();
        }
        for revocation in revocations {
            assert_eq!(revocation.await.unwrap(), 200);
        }
        let mut expected = sids.clone();
        expected.sort();
        seen.sort();
        assert_eq!(seen, expected, "every revocation reached the reader exactly once");
    }

    async fn the_same_answer_has_the_same_etag_and_if_none_match_gets_304(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let alice = app.user_with_tokens("alice").await;
        app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", "first-party")]).await;
        let response = app.revocations(&secret, "").await;
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        let response = app.client.get(app.url("/revocations")).basic_auth(READER, Some(&secret))
            .header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 304);
        assert_eq!(response.headers()["etag"].to_str().unwrap(), etag);
        let bob = app.user_with_tokens("bob").await;
        app.post_form("/oauth/revoke", &[("token", bob.refresh_token.as_deref().unwrap()), ("client_id", "first-party")]).await;
        let response = app.client.get(app.url("/revocations")).basic_auth(READER, Some(&secret))
            .header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "the feed changed");
        assert_ne!(response.headers()["etag"].to_str().unwrap(), etag);
    }

    async fn a_waiting_request_ends_with_200_even_when_its_etag_matches(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let response = app.revocations(&secret, "").await;
        let etag = response.headers()["etag"].to_str().unwrap().to_string();
        let body: Value = response.json().await.unwrap();
        let cursor = body["next_cursor"].as_str().unwrap();
        let response = app.client.get(app.url(&format!("/revocations?since={cursor}&wait=1")))
            .basic_auth(READER, Some(&secret)).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        assert!(response.headers().contains_key("etag"));
    }

    async fn a_wait_that_runs_out_answers_200_with_no_items_after_the_time_given(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let started = Instant::now();
        let response = app.revocations(&secret, "?wait=1").await;
        let waited = started.elapsed();
        assert_eq!(response.status().as_u16(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["items"], json!([]));
        assert!(body["next_cursor"].is_string());
        assert!(waited >= Duration::from_millis(900), "answered after {waited:?}");
    }

    async fn a_waiting_request_returns_within_a_second_of_a_revocation(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let alice = app.user_with_tokens("alice").await;
        let cursor = app.revocations(&secret, "").await.json::<Value>().await.unwrap()["next_cursor"].as_str().unwrap().to_string();
        let waiting = {
            let request = app.client.get(app.url(&format!("/revocations?since={cursor}&wait=30"))).basic_auth(READER, Some(&secret));
            tokio::spawn(async move { let response = request.send().await.unwrap(); (Instant::now(), response.json::<Value>().await.unwrap()) })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        let revoked = Instant::now();
        app.post_form("/oauth/revoke", &[("token", alice.refresh_token.as_deref().unwrap()), ("client_id", "first-party")]).await;
        let (answered, body) = waiting.await.unwrap();
        assert_eq!(body["items"][0]["id"], sid(&alice).as_str(), "{body}");
        assert!(answered.duration_since(revoked) < Duration::from_secs(1), "answered {:?} after the revocation", answered.duration_since(revoked));
    }

    async fn a_cursor_tessera_did_not_issue_is_invalid_request(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let cursor = app.revocations(&secret, "").await.json::<Value>().await.unwrap()["next_cursor"].as_str().unwrap().to_string();
        let (position, tag) = cursor.split_once('.').unwrap();
        let forged = format!("{}.{tag}", position.parse::<i64>().unwrap() + 1);
        for bad in ["garbage", "0", "1", "-1", forged.as_str(), "%00"] {
            assert_error(app.revocations(&secret, &format!("?since={bad}")).await, 400, "invalid_request").await;
        }
        // Another deployment's cursor (another master key) is not this feed's.
        let other = spawn_app(Backend::Sqlite).await;
        let other_secret = other.feed_reader();
        let foreign = other.revocations(&other_secret, "").await.json::<Value>().await.unwrap()["next_cursor"].as_str().unwrap().to_string();
        assert_error(app.revocations(&secret, &format!("?since={foreign}")).await, 400, "invalid_request").await;
    }

    async fn a_wait_outside_0_to_30_seconds_is_invalid_request(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        for bad in ["31", "-1", "1.5", "abc", "", "+3", "99999999999999999999"] {
            assert_error(app.revocations(&secret, &format!("?wait={bad}")).await, 400, "invalid_request").await;
        }
        assert_eq!(app.revocations(&secret, "?wait=0").await.status().as_u16(), 200);
    }

    async fn a_limit_outside_1_to_1000_is_invalid_request(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        for bad in ["0", "1001", "x"] {
            assert_error(app.revocations(&secret, &format!("?limit={bad}")).await, 400, "invalid_request").await;
        }
    }

    async fn a_public_client_is_refused_with_401(backend) {
        let app = spawn_app(backend).await;
        let response = app.client.get(app.url("/revocations")).basic_auth("first-party", Some("")).send().await.unwrap();
        assert_error(response, 401, "invalid_client").await;
        let response = app.client.get(app.url("/revocations?client_id=first-party")).send().await.unwrap();
        assert_error(response, 401, "invalid_client").await;
    }

    async fn bad_client_credentials_are_refused_with_401(backend) {
        let app = spawn_app(backend).await;
        app.feed_reader();
        let response = app.revocations("not-the-secret", "").await;
        assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        assert_error(response, 401, "invalid_client").await;
        let response = app.client.get(app.url("/revocations")).basic_auth("nobody", Some("x")).send().await.unwrap();
        assert_error(response, 401, "invalid_client").await;
        let response = app.client.get(app.url("/revocations")).send().await.unwrap();
        assert_error(response, 401, "invalid_client").await;
    }

    async fn entries_leave_the_feed_once_no_token_they_affect_can_be_valid(backend) {
        let app = spawn_app(backend).await;
        let secret = app.feed_reader();
        let old = app.user_with_tokens("alice").await;
        let recent = app.user_with_tokens("bob").await;
        {
            let mut conn = app.state.db.get().unwrap();
            let ended = |sid: String| tessera::store::sessions::Ended { id: sid, user_id: "u".into(), client_id: "first-party".into(), expires_at: tessera::now() + 86_400 };
            // Revoked long enough ago that every token of the session has expired.
            tessera::revocation_feed::record_sessions(&mut conn, &[ended(sid(&old))], tessera::now() - 931).unwrap();
            tessera::revocation_feed::record_sessions(&mut conn, &[ended(sid(&recent))], tessera::now() - 60).unwrap();
        }
        assert_eq!(app.feed_entries(&secret).await, vec![session(&sid(&recent))], "an entry past its until is not shown");
        app.state.purge().unwrap();
        let mut conn = app.state.db.get().unwrap();
        let left = tessera::store::revocations::after(&mut conn, 0, None, 10).unwrap();
        assert_eq!(left.iter().map(|r| r.item_id.clone()).collect::<Vec<_>>(), vec![sid(&recent)], "the purge deleted the dead entry only");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_returns_within_a_second_of_a_revocation_through_another_instance() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let first = spawn_app(backend).await;
    let second = start(first.settings.clone(), first.dir.clone()).await;
    let secret = first.feed_reader();
    let alice = first.user_with_tokens("alice").await;
    let cursor = first
        .revocations(&secret, "")
        .await
        .json::<Value>()
        .await
        .unwrap()["next_cursor"]
        .as_str()
        .unwrap()
        .to_string();
    let waiting = {
        let request = first
            .client
            .get(first.url(&format!("/revocations?since={cursor}&wait=30")))
            .basic_auth(READER, Some(&secret));
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            (Instant::now(), response.json::<Value>().await.unwrap())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let revoked = Instant::now();
    let response = second
        .post_form(
            "/oauth/revoke",
            &[
                ("token", alice.refresh_token.as_deref().unwrap()),
                ("client_id", "first-party"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    let (answered, body) = waiting.await.unwrap();
    assert_eq!(body["items"][0]["id"], sid(&alice).as_str(), "{body}");
    let after = answered.duration_since(revoked);
    assert!(
        after < Duration::from_secs(1),
        "answered {after:?} after the revocation"
    );
    // The second instance reads the first one's cursor.
    let next = second
        .revocations(
            &secret,
            &format!("?since={}", body["next_cursor"].as_str().unwrap()),
        )
        .await;
    assert_eq!(next.status().as_u16(), 200);
}
