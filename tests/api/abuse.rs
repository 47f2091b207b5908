//! Abuse: a parallel credential-stuffing run from many addresses (behind a trusted proxy)
//! against many accounts meets the per-address limit and the account locks, while a
//! legitimate user on its own address keeps logging in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

const PER_ADDRESS: u32 = 5;
const ATTACKERS: usize = 12;
const ATTEMPTS_EACH: usize = 10;
const ACCOUNTS: usize = 15;

struct Answer {
    ip: String,
    username: String,
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

async fn attempt(app: &TestApp, ip: &str, username: &str, password: &str) -> Answer {
    let response = app
        .client
        .post(app.url("/oauth/token"))
        // The proxy appends the address it saw; a client-supplied entry on the left is ignored.
        .header("x-forwarded-for", format!("10.9.9.9, {ip}"))
        .form(&[
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ])
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("an answer");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    Answer {
        ip: ip.to_string(),
        username: username.to_string(),
        status,
        retry_after,
        body: response.json().await.unwrap_or(Value::Null),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_stuffing_meets_address_limits_and_account_locks_while_a_legitimate_user_logs_in(
) {
    let app = Arc::new(
        spawn_app_with(Backend::Sqlite, |settings| {
            settings.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            settings.login_rate_limit = Some(tessera::ratelimit::Rate {
                count: PER_ADDRESS,
                per_secs: 60,
            });
            settings.lockout_threshold = 5;
            settings.workers = 2;
        })
        .await,
    );
    for i in 0..ACCOUNTS {
        app.create_user(&format!("member{i}"), &[]);
    }
    app.create_user("legit", &[]);
    let started = Instant::now();

    // Every attacker address tries the first account (the one the leaked list hits hardest),
    // then others and names that do not exist.
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|a| {
            let app = app.clone();
            tokio::spawn(async move {
                let ip = format!("198.51.100.{}", a + 1);
                let mut answers = Vec::new();
                for n in 0..ATTEMPTS_EACH {
                    let username = match n {
                        0 | 1 => "member0".to_string(),
                        n if n % 3 == 0 => format!("ghost{a}-{n}"),
                        n => format!("member{}", (a + n) % ACCOUNTS),
                    };
                    answers.push(attempt(&app, &ip, &username, &format!("Leaked-{a}-{n}!")).await);
                }
                answers
            })
        })
        .collect();

    // Meanwhile the legitimate user logs in from its own address, again and again.
    let legit = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for _ in 0..PER_ADDRESS {
                let answer = attempt(&app, "203.0.113.7", "legit", PASSWORD).await;
                statuses.push((answer.status, answer.body));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            statuses
        })
    };

    let mut answers = Vec::new();
    for task in attackers {
        answers.extend(
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("an attacker hung")
                .unwrap(),
        );
    }
    for (status, body) in tokio::time::timeout(Duration::from_secs(60), legit)
        .await
        .expect("the legitimate user hung")
        .unwrap()
    {
        assert_eq!(status, 200, "the legitimate user is let in: {body}");
    }
    let elapsed = started.elapsed();

    // No attack succeeded; every refusal is one of the contract's two answers.
    let mut limited = 0;
    for answer in &answers {
        match answer.status {
            400 => {
                assert_eq!(answer.body["error"], "invalid_grant");
                // One message, whether the account exists or not.
                assert_eq!(
                    answer.body["error_description"], "invalid username or password",
                    "for {}",
                    answer.username
                );
            }
            429 => {
                limited += 1;
                assert_eq!(answer.body["error"], "rate_limited");
                assert!(
                    answer.retry_after.is_some_and(|s| s >= 1),
                    "429 carries Retry-After"
                );
            }
            other => panic!("an attack got {other}: {}", answer.body),
        }
    }
    assert!(limited > 0, "the limits answered");

    // Each address got at most its allowance (plus what refilled while the run lasted).
    let refilled = elapsed.as_secs() / (60 / PER_ADDRESS as u64) + 1;
    for a in 0..ATTACKERS {
        let ip = format!("198.51.100.{}", a + 1);
        let checked = answers
            .iter()
            .filter(|x| x.ip == ip && x.status != 429)
            .count() as u64;
        assert!(
            checked <= PER_ADDRESS as u64 + refilled,
            "{ip} had {checked} attempts checked"
        );
    }

    // member0 took more failures than the threshold, from many addresses: it is locked,
    // and refuses even its right password from an address with its allowance intact.
    let answer = attempt(&app, "192.0.2.200", "member0", PASSWORD).await;
    assert_eq!(
        answer.status, 429,
        "a locked account refuses the right password"
    );
    assert_eq!(answer.body["error"], "rate_limited");
    assert!(answer.retry_after.is_some_and(|s| (1..=900).contains(&s)));
    let mut conn = app.state.db.get().unwrap();
    let member0 = tessera::store::users::find_by_username(&mut conn, "member0")
        .unwrap()
        .unwrap();
    assert!(member0.locked_until.is_some_and(|t| t > tessera::now()));

    // The attack left the legitimate account untouched.
    let legit = tessera::store::users::find_by_username(&mut conn, "legit")
        .unwrap()
        .unwrap();
    assert!(legit.locked_until.is_none());
    assert_eq!(legit.failed_logins, 0);
}
