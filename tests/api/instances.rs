//! Several instances on one PostgreSQL behave as one server: tokens issued anywhere verify
//! everywhere, revocation through one is seen by the others at once, a key rotation through
//! one reaches every JWKS within the poll interval, and concurrent refreshes of one token
//! spread over the instances yield at most one live successor.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

/// Three instances on one fresh PostgreSQL schema, or `None` when PostgreSQL is not
/// configured.
async fn three_instances(
    configure: impl FnOnce(&mut tessera::config::Settings),
) -> Option<Vec<Arc<TestApp>>> {
    let backend = Backend::postgres()?;
    let first = spawn_app_with(backend, configure).await;
    let (settings, dir) = (first.settings.clone(), first.dir.clone());
    let second = start(settings.clone(), dir.clone()).await;
    let third = start(settings, dir).await;
    Some(vec![Arc::new(first), Arc::new(second), Arc::new(third)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_issued_by_any_instance_verify_on_every_instance() {
    let Some(apps) = three_instances(|_| {}).await else {
        return;
    };
    let mut tasks = Vec::new();
    for i in 0..9 {
        let apps = apps.clone();
        tasks.push(tokio::spawn(async move {
            let home = &apps[i % 3];
            let name = format!("spread{i}");
            let tokens = home.user_with_tokens(&name).await;
            for app in &apps {
                let response = app.get_bearer("/userinfo", &tokens.access_token).await;
                assert_eq!(
                    response.status().as_u16(),
                    200,
                    "userinfo on another instance"
                );
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["username"], name.as_str());
            }
            // A refresh through the next instance, used on the one after.
            let next = &apps[(i + 1) % 3];
            let refreshed =
                tokens_of(next.refresh(tokens.refresh_token.as_deref().unwrap()).await).await;
            let response = apps[(i + 2) % 3]
                .get_bearer("/userinfo", &refreshed.access_token)
                .await;
            assert_eq!(response.status().as_u16(), 200);
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a client hung")
            .unwrap();
    }
}

async fn tokens_of(response: reqwest::Response) -> Tokens {
    assert_eq!(response.status().as_u16(), 200, "token response");
    tokens(response).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_instance_is_seen_by_the_others_at_once() {
    let Some(apps) = three_instances(|_| {}).await else {
        return;
    };
    let tokens = apps[0].user_with_tokens("revoked").await;
    let other = apps[0].login("revoked", PASSWORD).await;
    assert_eq!(
        apps[2]
            .get_bearer("/userinfo", &tokens.access_token)
            .await
            .status()
            .as_u16(),
        200
    );

    // An access token deny-listed through the second instance…
    let response = apps[1]
        .post_form(
            "/oauth/revoke",
            &[
                ("token", tokens.access_token.as_str()),
                ("client_id", "first-party"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    // …is refused by the first and the third on the very next request.
    for app in [&apps[0], &apps[2]] {
        assert_error(
            app.get_bearer("/userinfo", &tokens.access_token).await,
            401,
            "invalid_token",
        )
        .await;
    }

    // A refresh token revoked through the third ends the session on the other two.
    let response = apps[2]
        .post_form(
            "/oauth/revoke",
            &[
                ("token", other.refresh_token.as_deref().unwrap()),
                ("client_id", "first-party"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 200);
    assert_error(
        apps[0]
            .refresh(other.refresh_token.as_deref().unwrap())
            .await,
        400,
        "invalid_grant",
    )
    .await;
    assert_error(
        apps[1].get_bearer("/userinfo", &other.access_token).await,
        401,
        "invalid_token",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_through_the_admin_api_of_one_instance_reaches_every_jwks_within_the_poll_interval(
) {
    let Some(apps) = three_instances(|_| {}).await else {
        return;
    };
    apps[0].create_user("root", &["admin"]);
    let admin = apps[0].login("root", PASSWORD).await;
    let before = apps[2]
        .jwks_kids()
        .await
        .into_iter()
        .collect::<HashSet<_>>();

    let response = apps[1]
        .client
        .post(apps[1].url("/admin/keys/rotate"))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let rotated: Value = response.json().await.unwrap();
    let active = rotated["active_kid"].as_str().unwrap().to_string();
    let published: HashSet<String> = apps[1].jwks_kids().await.into_iter().collect();
    assert!(published.contains(&active));
    let added: HashSet<String> = published.difference(&before).cloned().collect();
    assert!(!added.is_empty(), "the rotation staged a new key");

    // Every instance publishes the same keys within the poll interval (plus a margin for a
    // loaded machine).
    let poll = Duration::from_secs(apps[0].settings.key_poll_interval as u64);
    let deadline = Instant::now() + poll + Duration::from_secs(5);
    for app in &apps {
        loop {
            let kids: HashSet<String> = app.jwks_kids().await.into_iter().collect();
            if kids == published {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} still publishes {kids:?}, not {published:?}",
                app.address
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // Tokens signed with the new key by any instance verify on every other.
    for (i, app) in apps.iter().enumerate() {
        let deadline = Instant::now() + poll + Duration::from_secs(5);
        let tokens = loop {
            let tokens = app.login("root", PASSWORD).await;
            if header(&tokens.access_token)["kid"] == active.as_str() {
                break tokens;
            }
            assert!(
                Instant::now() < deadline,
                "instance {i} still signs with the old key"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let other = &apps[(i + 1) % 3];
        assert_eq!(
            other
                .get_bearer("/userinfo", &tokens.access_token)
                .await
                .status()
                .as_u16(),
            200
        );
    }
}

/// Sends `copies` refreshes of one token at once, spread over the instances; returns the
/// refresh tokens of the successful answers and the number of failures.
async fn racing_refreshes(
    apps: &[Arc<TestApp>],
    token: &str,
    copies: usize,
) -> (Vec<String>, usize) {
    let tasks: Vec<_> = (0..copies)
        .map(|i| {
            let app = apps[i % apps.len()].clone();
            let token = token.to_string();
            tokio::spawn(async move {
                let response = app.refresh(&token).await;
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap();
                (status, body)
            })
        })
        .collect();
    let mut successors = Vec::new();
    let mut failures = 0;
    for task in tasks {
        let (status, body) = tokio::time::timeout(Duration::from_secs(60), task)
            .await
            .expect("a refresh hung")
            .unwrap();
        match status {
            200 => successors.push(body["refresh_token"].as_str().unwrap().to_string()),
            400 => {
                assert_eq!(body["error"], "invalid_grant");
                failures += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    (successors, failures)
}

fn live_tokens_of_session(app: &TestApp, token: &str) -> i64 {
    let sid = claims(token)["sid"].as_str().unwrap().to_string();
    let mut conn = app.state.db.get().unwrap();
    tessera::store::refresh_tokens::count_live_for_session(&mut conn, &sid, tessera::now()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_of_one_token_across_three_instances_yield_at_most_one_live_successor()
{
    let Some(apps) = three_instances(|_| {}).await else {
        return;
    };
    for round in 0..3 {
        let tokens = apps[round].user_with_tokens(&format!("racer{round}")).await;
        let token = tokens.refresh_token.unwrap();
        let (successors, failures) = racing_refreshes(&apps, &token, 9).await;
        assert!(
            successors.len() <= 1,
            "two successors: {}",
            successors.len()
        );
        assert_eq!(successors.len() + failures, 9);
        assert!(live_tokens_of_session(&apps[0], &token) <= 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_reuse_grace_concurrent_refreshes_across_instances_all_get_the_same_successor() {
    let Some(apps) = three_instances(|settings| settings.refresh_reuse_grace = 30).await else {
        return;
    };
    let tokens = apps[0].user_with_tokens("graceful").await;
    let token = tokens.refresh_token.unwrap();
    let (successors, _) = racing_refreshes(&apps, &token, 9).await;
    assert!(!successors.is_empty());
    let distinct: HashSet<&String> = successors.iter().collect();
    assert_eq!(distinct.len(), 1, "one successor, handed to every racer");
    assert_eq!(live_tokens_of_session(&apps[0], &token), 1);
    // And it works on any instance.
    assert_eq!(apps[2].refresh(&successors[0]).await.status().as_u16(), 200);
}
