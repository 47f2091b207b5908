//! `/admin/clients`: creating, listing, reading, deleting clients and rotating their secrets.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::json;

use crate::admin::{admin, call, ok};
use crate::admin_users::all_pages;
use crate::helpers::*;

async fn client_credentials(app: &TestApp, client_id: &str, secret: &str) -> reqwest::Response {
    app.token(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ])
    .await
}

both_backends! {
    async fn a_new_confidential_client_gets_its_secret_once_and_can_use_it(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let response = call(&app, Method::POST, "/admin/clients", Some(&root.token), Some(&json!({
            "client_id": "reports",
            "grant_types": ["client_credentials"],
            "scopes": ["read", "write"],
            "audience": "https://reports.example",
            "access_token_ttl": 120,
        }))).await;
        assert_eq!(response.status().as_u16(), 201);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let created: serde_json::Value = response.json().await.unwrap();
        assert_eq!(created["client_id"], "reports");
        assert_eq!(created["public"], false);
        assert_eq!(created["grant_types"], json!(["client_credentials"]));
        assert_eq!(created["scopes"], json!(["read", "write"]));
        assert_eq!(created["audience"], "https://reports.example");
        assert_eq!(created["access_token_ttl"], 120);
        assert!(chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).is_ok());
        let secret = created["client_secret"].as_str().unwrap().to_string();
        assert!(secret.len() >= 43, "256 random bits");

        let fetched = ok(&app, Method::GET, "/admin/clients/reports", &root.token, None).await;
        assert!(fetched.get("client_secret").is_none(), "the secret is shown only once: {fetched}");
        assert_eq!(fetched["audience"], "https://reports.example");
        let listed = ok(&app, Method::GET, "/admin/clients", &root.token, None).await;
        assert_eq!(listed["items"].as_array().unwrap().len(), 2, "reports and the built-in console");
        assert!(listed["items"].as_array().unwrap().iter().all(|c| c.get("client_secret").is_none()));
        assert!(!listed.to_string().contains(&secret));

        let response = client_credentials(&app, "reports", &secret).await;
        assert_eq!(response.status().as_u16(), 200);
        let token = tokens(response).await;
        let claims = claims(&token.access_token);
        assert_eq!(claims["aud"], "https://reports.example");
        assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 120);
    }

    async fn rotating_a_client_secret_stops_the_old_one_working(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let created = ok(&app, Method::POST, "/admin/clients", &root.token, Some(&json!({"client_id": "svc"}))).await;
        let old = created["client_secret"].as_str().unwrap().to_string();
        assert_eq!(client_credentials(&app, "svc", &old).await.status().as_u16(), 200);
        let rotated = ok(&app, Method::POST, "/admin/clients/svc/secret", &root.token, None).await;
        assert_eq!(rotated["client_id"], "svc");
        let new = rotated["client_secret"].as_str().unwrap().to_string();
        assert_ne!(new, old);
        assert_error(client_credentials(&app, "svc", &old).await, 401, "invalid_client").await;
        assert_eq!(client_credentials(&app, "svc", &new).await.status().as_u16(), 200);
    }

    async fn deleting_a_client_stops_it_and_ends_its_sessions(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let created = ok(&app, Method::POST, "/admin/clients", &root.token, Some(&json!({"client_id": "svc"}))).await;
        let secret = created["client_secret"].as_str().unwrap().to_string();
        ok(&app, Method::POST, "/admin/clients", &root.token, Some(&json!({"client_id": "spa", "public": true}))).await;
        app.create_user("alice", &[]);
        let response = app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD), ("client_id", "spa")]).await;
        let spa_tokens = tokens(response).await;

        for id in ["svc", "spa"] {
            let response = call(&app, Method::DELETE, &format!("/admin/clients/{id}"), Some(&root.token), None).await;
            assert_eq!(response.status().as_u16(), 204);
            assert_error(call(&app, Method::GET, &format!("/admin/clients/{id}"), Some(&root.token), None).await, 404, "not_found").await;
            assert_error(call(&app, Method::DELETE, &format!("/admin/clients/{id}"), Some(&root.token), None).await, 404, "not_found").await;
        }
        assert_error(client_credentials(&app, "svc", &secret).await, 401, "invalid_client").await;
        let response = app.token(&[("grant_type", "refresh_token"), ("refresh_token", spa_tokens.refresh_token.as_deref().unwrap()), ("client_id", "spa")]).await;
        assert!(response.status().is_client_error());
        assert_error(app.get_bearer("/userinfo", &spa_tokens.access_token).await, 401, "invalid_token").await;
    }

    async fn listing_clients_pages_through_every_client_exactly_once(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let ids = ["e", "a", "c", "b", "d"].map(|s| format!("client-{s}"));
        for id in &ids {
            ok(&app, Method::POST, "/admin/clients", &root.token, Some(&json!({"client_id": id}))).await;
        }
        let (items, pages) = all_pages(&app, "/admin/clients?limit=2", &root.token).await;
        assert_eq!(pages, 3);
        let listed: Vec<&str> = items.iter().map(|c| c["client_id"].as_str().unwrap()).collect();
        assert_eq!(listed, ["client-a", "client-b", "client-c", "client-d", "client-e", "console"]);
        let stored: HashSet<String> = listed.iter().filter(|s| **s != "console").map(|s| s.to_string()).collect();
        assert_eq!(stored, ids.iter().cloned().collect());
    }
}

#[tokio::test]
async fn a_public_client_has_no_secret_and_keeps_its_settings() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = admin(&app).await;
    let created = ok(
        &app,
        Method::POST,
        "/admin/clients",
        &root.token,
        Some(&json!({
            "client_id": "web",
            "public": true,
            "grant_types": ["password", "refresh_token"],
            "scopes": ["profile"],
            "refresh_cookie": true,
            "refresh_reuse_grace": 10,
        })),
    )
    .await;
    assert_eq!(created["client_secret"], serde_json::Value::Null);
    assert_eq!(created["public"], true);
    assert_eq!(created["refresh_cookie"], true);
    assert_eq!(created["refresh_reuse_grace"], 10);
    let response = call(
        &app,
        Method::POST,
        "/admin/clients/web/secret",
        Some(&root.token),
        None,
    )
    .await;
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn bad_client_definitions_are_refused() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = admin(&app).await;
    ok(
        &app,
        Method::POST,
        "/admin/clients",
        &root.token,
        Some(&json!({"client_id": "taken"})),
    )
    .await;
    for (body, status) in [
        (json!({}), 400),
        (json!({"client_id": "has space"}), 400),
        (json!({"client_id": "x", "grant_types": ["implicit"]}), 400),
        (
            json!({"client_id": "x", "public": true, "grant_types": ["client_credentials"]}),
            400,
        ),
        (json!({"client_id": "x", "access_token_ttl": 0}), 400),
        (json!({"client_id": "x", "secret": "chosen-by-me"}), 400),
        (json!({"client_id": "taken"}), 409),
        (json!({"client_id": "first-party"}), 409),
    ] {
        let response = call(
            &app,
            Method::POST,
            "/admin/clients",
            Some(&root.token),
            Some(&body),
        )
        .await;
        assert_error(response, status, "invalid_request").await;
    }
    let listed = ok(&app, Method::GET, "/admin/clients", &root.token, None).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        2,
        "taken and the built-in console"
    );
    let response = call(
        &app,
        Method::DELETE,
        "/admin/clients/first-party",
        Some(&root.token),
        None,
    )
    .await;
    assert_error(response, 400, "invalid_request").await;
}
