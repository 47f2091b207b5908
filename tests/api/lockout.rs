//! The account lock under parallel guessing (SPEC §6.1), and unknown usernames locking
//! exactly like real ones.

use futures_util::future::join_all;
use reqwest::Response;
use serde_json::json;

use crate::helpers::*;

const THRESHOLD: u32 = 3;
const WRONG: &str = "wrong password!";

/// argon2 slow enough that every request of a burst is being hashed before the first
/// verdicts are in, as on a production server; the address limit is off (`None`), so only
/// the account lock answers 429.
async fn slow_hashing_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.lockout_threshold = THRESHOLD;
        s.login_rate_limit = None;
        s.workers = 2;
        s.db_pool_size = 8;
        s.argon2 = tessera::passwords::Argon2Params {
            memory_kib: 32_768,
            iterations: 3,
            parallelism: 1,
        };
    })
    .await
}

fn hashing_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Counts of (400 invalid_grant, 429 rate_limited) answers; anything else fails the test.
async fn tally(responses: Vec<Response>) -> (usize, usize) {
    let (mut invalid, mut limited) = (0, 0);
    for response in responses {
        match response.status().as_u16() {
            400 => {
                assert_error(response, 400, "invalid_grant").await;
                invalid += 1;
            }
            429 => {
                let retry_after: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                // 30 s from the lock, counted from when this request started: one that
                // started before the lock and waited for the row sees a second or more extra.
                assert!((1..=60).contains(&retry_after), "retry-after {retry_after}");
                assert_error(response, 429, "rate_limited").await;
                limited += 1;
            }
            other => panic!("unexpected {other}: {}", response.text().await.unwrap()),
        }
    }
    (invalid, limited)
}

fn password_login<'a>(
    app: &'a TestApp,
    username: &'a str,
    password: &'a str,
) -> impl std::future::Future<Output = Response> + 'a {
    app.token_owned(vec![
        ("grant_type", "password".to_string()),
        ("username", username.to_string()),
        ("password", password.to_string()),
    ])
}

/// Status, error code and Retry-After of an answer.
async fn answer(response: Response) -> (u16, String, Option<i64>) {
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap().to_string(),
        retry_after,
    )
}

impl TestApp {
    /// The token endpoint with an owned form, for requests sent together.
    pub async fn token_owned(&self, form: Vec<(&'static str, String)>) -> Response {
        self.client
            .post(self.url("/oauth/token"))
            .form(&form)
            .send()
            .await
            .expect("POST /oauth/token failed")
    }

    fn user_id(&self, username: &str) -> String {
        let mut conn = self.state.db.get().unwrap();
        tessera::store::users::find_by_username(&mut conn, username)
            .unwrap()
            .unwrap()
            .id
    }

    fn locked_until(&self, username: &str) -> Option<i64> {
        let mut conn = self.state.db.get().unwrap();
        tessera::store::users::find_by_username(&mut conn, username)
            .unwrap()
            .unwrap()
            .locked_until
    }
}

both_backends! {
    async fn parallel_wrong_passwords_cannot_outrun_the_lock(backend) {
        let app = slow_hashing_app(backend).await;
        app.register("alice", PASSWORD).await;
        let burst = (0..16).map(|_| password_login(&app, "alice", WRONG));
        let (invalid, limited) = tally(join_all(burst).await).await;
        eprintln!("16 parallel wrong passwords: {invalid} invalid_grant, {limited} rate_limited");
        assert_eq!(invalid + limited, 16);
        assert!(
            invalid <= THRESHOLD as usize + hashing_slots(),
            "{invalid} wrong passwords were checked past a lock at {THRESHOLD}"
        );
        assert!(invalid >= THRESHOLD as usize, "the lock landed at the threshold: {invalid}");
        assert!(app.locked_until("alice").is_some_and(|until| until > tessera::now()));
        let response = password_login(&app, "alice", PASSWORD).await;
        assert_error(response, 429, "rate_limited").await;
    }

    async fn a_right_password_racing_a_lock_neither_passes_it_nor_clears_it(backend) {
        let app = slow_hashing_app(backend).await;
        app.register("alice", PASSWORD).await;
        let mut burst: Vec<_> = (0..16).map(|_| password_login(&app, "alice", WRONG)).collect();
        burst.insert(8, password_login(&app, "alice", PASSWORD));
        let mut responses = join_all(burst).await;
        let right = responses.remove(8);
        let right_status = right.status().as_u16();
        assert!(matches!(right_status, 200 | 429), "the right password got {right_status}");
        let (invalid, limited) = tally(responses).await;
        assert_eq!(invalid + limited, 16);
        // A success decided before the lock may reset the count once; no more than that.
        assert!(
            invalid < 2 * THRESHOLD as usize + hashing_slots(),
            "{invalid} wrong passwords were checked"
        );
        // Whatever the order, the lock stands after the burst: the success did not clear it.
        assert!(app.locked_until("alice").is_some_and(|until| until > tessera::now()));
        assert_error(password_login(&app, "alice", PASSWORD).await, 429, "rate_limited").await;
    }

    async fn parallel_wrong_current_passwords_cannot_outrun_the_lock(backend) {
        let app = slow_hashing_app(backend).await;
        let tokens = app.user_with_tokens("alice").await;
        let burst = (0..16).map(|_| {
            app.client
                .put(app.url("/account/password"))
                .bearer_auth(&tokens.access_token)
                .json(&json!({"current_password": WRONG, "new_password": "An0ther-passphrase!"}))
                .send()
        });
        let responses = join_all(burst).await.into_iter().map(Result::unwrap).collect();
        let (invalid, limited) = tally(responses).await;
        assert_eq!(invalid + limited, 16);
        assert!(invalid <= THRESHOLD as usize + hashing_slots(), "{invalid} checked");
        let response = app
            .client
            .put(app.url("/account/password"))
            .bearer_auth(&tokens.access_token)
            .json(&json!({"current_password": PASSWORD, "new_password": "An0ther-passphrase!"}))
            .send()
            .await
            .unwrap();
        assert_error(response, 429, "rate_limited").await;
    }

    async fn parallel_wrong_codes_cannot_outrun_the_lock(backend) {
        let app = slow_hashing_app(backend).await;
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let mfa_token = app.mfa_token("alice").await;
        let wrong = authenticator.wrong_code();
        let burst = (0..16).map(|_| app.mfa_otp(&mfa_token, &wrong));
        let (invalid, limited) = tally(join_all(burst).await).await;
        assert_eq!(invalid + limited, 16);
        assert!(invalid <= THRESHOLD as usize + hashing_slots(), "{invalid} codes checked");
        let code = authenticator.next_code().await;
        assert_error(app.mfa_otp(&mfa_token, &code).await, 429, "rate_limited").await;
    }

    async fn an_unknown_username_locks_exactly_like_a_real_one(backend) {
        let app = spawn_app_with(backend, |s| s.lockout_threshold = THRESHOLD).await;
        app.register("alice", PASSWORD).await;
        let alice_id = app.user_id("alice");
        let mut answers = Vec::new();
        for username in ["alice", "nobody"] {
            let mut sequence = Vec::new();
            for _ in 0..5 {
                sequence.push(answer(password_login(&app, username, WRONG).await).await);
            }
            // The lock runs out (moved into the past here rather than waited for): the next
            // failure locks again for twice as long.
            {
                let mut conn = app.state.db.get().unwrap();
                let past = Some(tessera::now() - 1);
                if username == "alice" {
                    tessera::store::users::set_locked_until(&mut conn, &alice_id, past).unwrap();
                } else {
                    let tessera::lockout::Subject::Unknown(hash) =
                        tessera::lockout::Subject::unknown(&app.state.master_key, "NoBody")
                    else {
                        unreachable!()
                    };
                    let row = tessera::store::login_failures::find(&mut conn, &hash).unwrap();
                    assert!(row.is_some_and(|(failures, _)| failures == THRESHOLD as i32), "counted by keyed hash, case-insensitively");
                    tessera::store::login_failures::set_locked_until(&mut conn, &hash, past).unwrap();
                }
            }
            for _ in 0..3 {
                sequence.push(answer(password_login(&app, username, WRONG).await).await);
            }
            answers.push(sequence);
        }
        let expected_statuses = [400, 400, 400, 429, 429, 400, 429, 429];
        for sequence in &answers {
            let statuses: Vec<u16> = sequence.iter().map(|(s, _, _)| *s).collect();
            assert_eq!(statuses, expected_statuses, "{sequence:?}");
        }
        for ((status_a, error_a, retry_a), (status_b, error_b, retry_b)) in answers[0].iter().zip(&answers[1]) {
            assert_eq!((status_a, error_a), (status_b, error_b));
            match (retry_a, retry_b) {
                (Some(a), Some(b)) => assert!((a - b).abs() <= 1, "retry-after {a} vs {b}"),
                (None, None) => {}
                other => panic!("retry-after differs: {other:?}"),
            }
        }
        let retries: Vec<i64> = answers[1].iter().filter_map(|(_, _, r)| *r).collect();
        assert!(retries[..2].iter().all(|r| (29..=30).contains(r)), "{retries:?}");
        assert!(retries[2..].iter().all(|r| (59..=60).contains(r)), "{retries:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_failures_of_unknown_names_are_purged_and_locked_ones_kept() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.lockout_threshold = THRESHOLD).await;
    let now = tessera::now();
    let mut conn = app.state.db.get().unwrap();
    for i in 0..2500 {
        tessera::store::login_failures::lock_row(
            &mut conn,
            &format!("stale-{i}"),
            now - 2 * 86_400,
        )
        .unwrap();
    }
    tessera::store::login_failures::lock_row(&mut conn, "locked", now - 2 * 86_400).unwrap();
    tessera::store::login_failures::set_locked_until(&mut conn, "locked", Some(now + 600)).unwrap();
    tessera::store::login_failures::lock_row(&mut conn, "recent", now).unwrap();
    drop(conn);
    app.state.purge().unwrap();
    let mut conn = app.state.db.get().unwrap();
    assert!(tessera::store::login_failures::find(&mut conn, "stale-7")
        .unwrap()
        .is_none());
    assert!(
        tessera::store::login_failures::find(&mut conn, "stale-2499")
            .unwrap()
            .is_none()
    );
    assert!(tessera::store::login_failures::find(&mut conn, "locked")
        .unwrap()
        .is_some());
    assert!(tessera::store::login_failures::find(&mut conn, "recent")
        .unwrap()
        .is_some());
}
