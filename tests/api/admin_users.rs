//! `/admin/users` and `/admin/sessions`: listing, searching, changing, disabling and deleting
//! users, and ending their sessions.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::{admin, call, ok};
use crate::helpers::*;

/// Follows `next_cursor` from `path` (which has a query string) to the end; returns every
/// item and the number of pages.
pub async fn all_pages(app: &TestApp, path: &str, token: &str) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(cursor) => format!(
                "{path}&cursor={}",
                url::form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()
            ),
            None => path.to_string(),
        };
        let page = ok(app, Method::GET, &url, token, None).await;
        pages += 1;
        items.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => {
                assert!(page["next_cursor"].is_null());
                break;
            }
        }
        assert!(pages < 100, "paging does not end");
    }
    (items, pages)
}

both_backends! {
    async fn listing_users_pages_through_every_user_exactly_once(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let mut expected: HashSet<String> = HashSet::from([root.id.clone()]);
        for name in ["gina", "Alice", "bob", "eve", "carol", "frank", "dave"] {
            expected.insert(app.create_user(name, &[]));
        }
        let (items, pages) = all_pages(&app, "/admin/users?limit=3", &root.token).await;
        assert_eq!(pages, 3);
        let ids: Vec<String> = items.iter().map(|u| u["id"].as_str().unwrap().to_string()).collect();
        assert_eq!(ids.len(), 8);
        assert_eq!(ids.iter().cloned().collect::<HashSet<_>>(), expected);
        let names: Vec<&str> = items.iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["Alice", "bob", "carol", "dave", "eve", "frank", "gina", "root"]);
    }

    async fn users_are_searched_by_username_or_email_ignoring_case(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let response = app.post_json("/register", &json!({"username": "alice", "password": PASSWORD, "email": "Alice@Example.ORG"})).await;
        assert_eq!(response.status().as_u16(), 201);
        app.create_user("bob", &[]);
        app.create_user("example_bob", &[]);
        app.create_user("ezb", &[]);
        let page = ok(&app, Method::GET, "/admin/users?q=EXAMPLE", &root.token, None).await;
        let names: Vec<&str> = page["items"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
        assert_eq!(names, ["alice", "example_bob"]);
        let page = ok(&app, Method::GET, "/admin/users?q=bo", &root.token, None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);
        // `_` is a literal here, not a LIKE wildcard.
        let page = ok(&app, Method::GET, "/admin/users?q=e_b", &root.token, None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 1);
    }

    async fn patching_a_user_changes_roles_and_attributes_in_new_tokens(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let id = app.create_user("alice", &[]);
        let updated = ok(&app, Method::PATCH, &format!("/admin/users/{id}"), &root.token,
            Some(&json!({"roles": ["editor", "viewer"], "attributes": {"team": "blue", "level": 3}}))).await;
        assert_eq!(updated["id"], id.as_str());
        assert_eq!(updated["roles"], json!(["editor", "viewer"]));
        assert_eq!(updated["attributes"], json!({"team": "blue", "level": 3}));
        assert_eq!(updated["disabled"], false);
        let fetched = ok(&app, Method::GET, &format!("/admin/users/{id}"), &root.token, None).await;
        assert_eq!(fetched, updated);
        let claims = claims(&app.login("alice", PASSWORD).await.access_token);
        assert_eq!(claims["roles"], json!(["editor", "viewer"]));
        assert_eq!(claims["attributes"], json!({"team": "blue", "level": 3}));
    }

    async fn disabling_a_user_ends_its_sessions_and_refuses_its_logins(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let registered = app.register("alice", PASSWORD).await;
        let id = registered["id"].as_str().unwrap();
        let first = app.login("alice", PASSWORD).await;
        let second = app.login("alice", PASSWORD).await;
        let updated = ok(&app, Method::PATCH, &format!("/admin/users/{id}"), &root.token, Some(&json!({"disabled": true}))).await;
        assert_eq!(updated["disabled"], true);
        for tokens in [&first, &second] {
            assert_error(app.refresh(tokens.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
            assert_error(app.get_bearer("/userinfo", &tokens.access_token).await, 401, "invalid_token").await;
        }
        let response = app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await;
        let body = assert_error(response, 400, "invalid_grant").await;
        assert_eq!(body["error_description"], "account disabled");
        ok(&app, Method::PATCH, &format!("/admin/users/{id}"), &root.token, Some(&json!({"disabled": false}))).await;
        app.login("alice", PASSWORD).await;
        // Enabling does not bring the ended sessions back.
        assert_error(app.refresh(first.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
    }

    async fn deleting_a_user_removes_it_and_its_sessions(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let id = app.create_user("alice", &[]);
        let tokens = app.login("alice", PASSWORD).await;
        let response = call(&app, Method::DELETE, &format!("/admin/users/{id}"), Some(&root.token), None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_error(call(&app, Method::GET, &format!("/admin/users/{id}"), Some(&root.token), None).await, 404, "not_found").await;
        assert_error(call(&app, Method::DELETE, &format!("/admin/users/{id}"), Some(&root.token), None).await, 404, "not_found").await;
        assert_error(app.refresh(tokens.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        assert_error(app.get_bearer("/userinfo", &tokens.access_token).await, 401, "invalid_token").await;
        assert_error(app.token(&[("grant_type", "password"), ("username", "alice"), ("password", PASSWORD)]).await, 400, "invalid_grant").await;
    }

    async fn admins_list_and_end_a_users_sessions(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let id = app.create_user("alice", &[]);
        let first = app.login("alice", PASSWORD).await;
        let second = app.login("alice", PASSWORD).await;
        let third = app.login("alice", PASSWORD).await;
        let (items, pages) = all_pages(&app, &format!("/admin/users/{id}/sessions?limit=2"), &root.token).await;
        assert_eq!(pages, 2);
        let sids: HashSet<String> = items.iter().map(|s| s["id"].as_str().unwrap().to_string()).collect();
        let expected: HashSet<String> = [&first, &second, &third]
            .iter()
            .map(|t| claims(&t.access_token)["sid"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(sids, expected);
        assert!(items.iter().all(|s| s["user_id"] == id.as_str() && s["client_id"] == "first-party"));

        let first_sid = claims(&first.access_token)["sid"].as_str().unwrap().to_string();
        let response = call(&app, Method::DELETE, &format!("/admin/sessions/{first_sid}"), Some(&root.token), None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_error(app.refresh(first.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        assert_eq!(app.refresh(second.refresh_token.as_deref().unwrap()).await.status().as_u16(), 200);
        let page = ok(&app, Method::GET, &format!("/admin/users/{id}/sessions"), &root.token, None).await;
        assert_eq!(page["items"].as_array().unwrap().len(), 2);

        let response = call(&app, Method::DELETE, &format!("/admin/users/{id}/sessions"), Some(&root.token), None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert_error(app.refresh(third.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        assert_error(app.get_bearer("/userinfo", &third.access_token).await, 401, "invalid_token").await;
        let page = ok(&app, Method::GET, &format!("/admin/users/{id}/sessions"), &root.token, None).await;
        assert_eq!(page, json!({"items": [], "next_cursor": null}));
        // The admin's own session is untouched.
        ok(&app, Method::GET, "/admin/users", &root.token, None).await;
    }
}

#[tokio::test]
async fn unknown_users_and_sessions_are_404() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = admin(&app).await;
    let missing = "00000000-0000-0000-0000-000000000000";
    for (method, path) in [
        (Method::GET, format!("/admin/users/{missing}")),
        (Method::DELETE, format!("/admin/users/{missing}")),
        (Method::GET, format!("/admin/users/{missing}/sessions")),
        (Method::DELETE, format!("/admin/users/{missing}/sessions")),
        (
            Method::DELETE,
            "/admin/sessions/no-such-session".to_string(),
        ),
    ] {
        let response = call(&app, method, &path, Some(&root.token), None).await;
        assert_error(response, 404, "not_found").await;
    }
    let response = call(
        &app,
        Method::PATCH,
        &format!("/admin/users/{missing}"),
        Some(&root.token),
        Some(&json!({"disabled": true})),
    )
    .await;
    assert_error(response, 404, "not_found").await;
}

#[tokio::test]
async fn a_patch_with_an_unknown_field_or_a_bad_role_is_400() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = admin(&app).await;
    let id = app.create_user("alice", &[]);
    let path = format!("/admin/users/{id}");
    for body in [
        json!({"role": ["admin"]}),
        json!({"roles": ["has space"]}),
        json!({"roles": "admin"}),
        json!({"attributes": ["not", "an", "object"]}),
    ] {
        let response = call(&app, Method::PATCH, &path, Some(&root.token), Some(&body)).await;
        assert_error(response, 400, "invalid_request").await;
    }
    let user = ok(&app, Method::GET, &path, &root.token, None).await;
    assert_eq!(user["roles"], json!([]));
}

#[tokio::test]
async fn page_limits_outside_1_to_500_are_400() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = admin(&app).await;
    for path in [
        "/admin/users?limit=0",
        "/admin/users?limit=501",
        "/admin/audit?limit=0",
        "/admin/clients?limit=9999",
    ] {
        let response = call(&app, Method::GET, path, Some(&root.token), None).await;
        assert_error(response, 400, "invalid_request").await;
    }
    let page = ok(
        &app,
        Method::GET,
        "/admin/users?limit=500",
        &root.token,
        None,
    )
    .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

both_backends! {
    async fn an_admin_creates_a_user_under_the_registration_rules(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let created = ok(&app, Method::POST, "/admin/users", &root.token, Some(&json!({
            "username": "grace", "password": PASSWORD, "email": "grace@example.com", "roles": ["ops"],
        }))).await;
        assert_eq!(created["username"], "grace");
        assert_eq!(created["roles"], json!(["ops"]));
        assert!(created.get("password").is_none() && created.get("password_hash").is_none());
        assert_eq!(app.login("grace", PASSWORD).await.body["token_type"], "Bearer");
        let audit = ok(&app, Method::GET, "/admin/audit?type=user_created", &root.token, None).await;
        assert_eq!(audit["items"][0]["actor"], root.id.as_str());
        for (body, status, code) in [
            (json!({"username": "Grace", "password": PASSWORD}), 409, "username_taken"),
            (json!({"username": "heidi", "password": "password"}), 400, "weak_password"),
            (json!({"username": "heidi"}), 400, "invalid_request"),
            (json!({"username": "h!", "password": PASSWORD}), 400, "invalid_request"),
            (json!({"username": "heidi", "password": PASSWORD, "roles": [""]}), 400, "invalid_request"),
            (json!({"username": "heidi", "password": PASSWORD, "admin": true}), 400, "invalid_request"),
        ] {
            let response = call(&app, Method::POST, "/admin/users", Some(&root.token), Some(&body)).await;
            assert_error(response, status, code).await;
        }
        let mut conn = app.state.db.get().unwrap();
        assert!(tessera::store::users::find_by_username(&mut conn, "heidi").unwrap().is_none());
    }
}
