//! The client cache (src/client_cache.rs): a client deleted, or its secret rotated, stops
//! working at once on the instance that made the change and within the key poll interval
//! on every other instance sharing the database; a new secret works everywhere at once.

use std::time::{Duration, Instant};

use reqwest::Method;

use crate::admin::{admin, call, ok};
use crate::helpers::*;

pub async fn client_credentials(app: &TestApp, client_id: &str, secret: &str) -> u16 {
    app.token(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ])
    .await
    .status()
    .as_u16()
}

/// Waits until `client_id` with `secret` gets `status` from `app`; fails past the poll
/// interval and a margin for a loaded machine.
pub async fn until_status(app: &TestApp, client_id: &str, secret: &str, status: u16) {
    let poll = Duration::from_secs(app.settings.key_poll_interval as u64);
    let deadline = Instant::now() + poll + Duration::from_secs(5);
    loop {
        let got = client_credentials(app, client_id, secret).await;
        if got == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {got} instead of {status} past the poll interval"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Caches a client with `token_alg` on two instances, rotates its secret through the first
/// and deletes it through the second, checking when each instance stops taking it.
async fn a_cached_client_stops_working_after_rotation_and_deletion(
    backend: Backend,
    token_alg: Option<&str>,
) {
    let first = spawn_app_with(backend, |settings| {
        settings.signing_algs = tessera::tokens::algs::SigningAlg::ALL.to_vec();
    })
    .await;
    let second = start(first.settings.clone(), first.dir.clone()).await;
    let root = admin(&first).await;
    let old_secret = first
        .create_client(tessera::clients::NewClient {
            client_id: "cached".into(),
            grant_types: Some(vec!["client_credentials".into()]),
            scopes: Some(vec!["read".into()]),
            token_alg: token_alg.map(String::from),
            ..Default::default()
        })
        .unwrap();
    // Both instances now hold the client in their caches.
    for app in [&first, &second] {
        assert_eq!(client_credentials(app, "cached", &old_secret).await, 200);
        let response = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", "cached"),
                ("client_secret", &old_secret),
            ])
            .await;
        let issued = tokens(response).await;
        assert_eq!(
            header(&issued.access_token)["alg"],
            token_alg.unwrap_or("RS256")
        );
        assert!(!app.state.client_cache.is_empty(), "the client is cached");
        assert_eq!(
            client_credentials(app, "cached", "not-the-secret").await,
            401
        );
    }

    let rotated = ok(
        &first,
        Method::POST,
        "/admin/clients/cached/secret",
        &root.token,
        None,
    )
    .await;
    let new_secret = rotated["client_secret"].as_str().unwrap().to_string();
    // At once where the change was made, and the new secret at once everywhere.
    assert_eq!(client_credentials(&first, "cached", &old_secret).await, 401);
    assert_eq!(client_credentials(&first, "cached", &new_secret).await, 200);
    assert_eq!(
        client_credentials(&second, "cached", &new_secret).await,
        200
    );
    // The old one within the poll interval on the other instance.
    until_status(&second, "cached", &old_secret, 401).await;
    assert_eq!(
        client_credentials(&second, "cached", &new_secret).await,
        200
    );

    // Cache the new secret on both, then delete the client through the second.
    assert_eq!(client_credentials(&first, "cached", &new_secret).await, 200);
    let response = call(
        &second,
        Method::DELETE,
        "/admin/clients/cached",
        Some(&root.token),
        None,
    )
    .await;
    assert_eq!(response.status().as_u16(), 204);
    assert_eq!(
        client_credentials(&second, "cached", &new_secret).await,
        401
    );
    until_status(&first, "cached", &new_secret, 401).await;
}

both_backends! {
    async fn a_rotated_secret_and_a_deleted_client_stop_working_on_every_instance(backend) {
        a_cached_client_stops_working_after_rotation_and_deletion(backend, None).await;
    }

    // ES256 and EdDSA tokens of a cached client are signed without the database (and
    // without the blocking pool): the same cache rules must hold on that path.
    async fn an_es256_client_answered_from_the_cache_stops_working_alike(backend) {
        a_cached_client_stops_working_after_rotation_and_deletion(backend, Some("ES256")).await;
    }

    async fn an_eddsa_client_answered_from_the_cache_stops_working_alike(backend) {
        a_cached_client_stops_working_after_rotation_and_deletion(backend, Some("EdDSA")).await;
    }

    async fn a_client_changed_behind_the_servers_back_is_seen_within_the_poll_interval(backend) {
        // As the CLI does from another process: a change in the database that this instance
        // did not make, seen only through the change counter.
        let app = spawn_app(backend).await;
        let secret = app.confidential_client("cli-made");
        assert_eq!(client_credentials(&app, "cli-made", &secret).await, 200);
        assert_eq!(client_credentials(&app, "cli-made", &secret).await, 200);
        assert!(!app.state.client_cache.is_empty(), "the client is cached");
        let rotated = {
            let mut conn = app.state.db.get().unwrap();
            tessera::clients::rotate_secret(&mut conn, "cli-made", tessera::now())
                .unwrap()
                .client_secret
                .unwrap()
        };
        assert_eq!(client_credentials(&app, "cli-made", &rotated).await, 200);
        until_status(&app, "cli-made", &secret, 401).await;
        {
            let mut conn = app.state.db.get().unwrap();
            assert!(tessera::clients::delete(&mut conn, "cli-made").unwrap());
        }
        until_status(&app, "cli-made", &rotated, 401).await;
    }
}
