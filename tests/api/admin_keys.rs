//! `/admin/keys`: listing signing keys, rotating now, retiring a key.

use reqwest::Method;
use serde_json::Value;

use crate::admin::{admin, call, ok};
use crate::helpers::*;

fn with_status<'a>(keys: &'a Value, status: &str) -> Vec<&'a str> {
    keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["status"] == status)
        .map(|k| k["kid"].as_str().unwrap())
        .collect()
}

fn kid_of(token: &str) -> String {
    header(token)["kid"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn listing_keys_shows_the_active_and_the_staged_key_with_their_times() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = admin(&app).await;
    let keys = ok(&app, Method::GET, "/admin/keys", &root.token, None).await;
    assert_eq!(keys["next_cursor"], Value::Null);
    let active = with_status(&keys, "active");
    let staged = with_status(&keys, "staged");
    assert_eq!(active, [kid_of(&root.token)]);
    assert_eq!(staged.len(), 1);
    let items = keys["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    for key in items {
        assert_eq!(key["bits"], 2048);
        for field in ["created_at", "activates_at"] {
            let text = key[field].as_str().unwrap();
            assert!(
                chrono::DateTime::parse_from_rfc3339(text).is_ok(),
                "{field}: {text}"
            );
        }
    }
    let staged_key = items.iter().find(|k| k["status"] == "staged").unwrap();
    let active_key = items.iter().find(|k| k["status"] == "active").unwrap();
    assert_eq!(active_key["deactivates_at"], staged_key["activates_at"]);
}

both_backends! {
    async fn rotating_keys_makes_the_staged_key_sign_at_once(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let before = ok(&app, Method::GET, "/admin/keys", &root.token, None).await;
        let old = with_status(&before, "active")[0].to_string();
        let staged = with_status(&before, "staged")[0].to_string();
        let alice = app.user_with_tokens("alice").await;

        let rotated = ok(&app, Method::POST, "/admin/keys/rotate", &root.token, None).await;
        assert_eq!(rotated["active_kid"], staged.as_str());
        assert_eq!(with_status(&rotated, "active"), [staged.as_str()]);
        assert_eq!(with_status(&rotated, "previous"), [old.as_str()]);
        assert_eq!(with_status(&rotated, "staged").len(), 1, "a fresh key is staged");

        let bob = app.user_with_tokens("bob").await;
        assert_eq!(kid_of(&bob.access_token), staged);
        let kids = app.jwks_kids().await;
        assert!(kids.contains(&old) && kids.contains(&staged), "{kids:?}");
        // Tokens of the previous key stay good until they expire.
        assert_eq!(app.get_bearer("/userinfo", &alice.access_token).await.status().as_u16(), 200);
        assert_eq!(app.refresh(alice.refresh_token.as_deref().unwrap()).await.status().as_u16(), 200);
    }

    async fn retiring_a_key_drops_it_from_the_jwks_and_its_tokens_stop_working(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let alice = app.user_with_tokens("alice").await;
        let old = kid_of(&alice.access_token);
        let rotated = ok(&app, Method::POST, "/admin/keys/rotate", &root.token, None).await;
        let new = rotated["active_kid"].as_str().unwrap().to_string();
        let root_token = app.login("root", PASSWORD).await.access_token;
        assert_eq!(kid_of(&root_token), new);

        let response = call(&app, Method::DELETE, &format!("/admin/keys/{old}"), Some(&root_token), None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert!(!app.jwks_kids().await.contains(&old));
        assert_error(app.get_bearer("/userinfo", &alice.access_token).await, 401, "invalid_token").await;
        assert_error(app.refresh(alice.refresh_token.as_deref().unwrap()).await, 400, "invalid_grant").await;
        let keys = ok(&app, Method::GET, "/admin/keys", &root_token, None).await;
        assert_eq!(with_status(&keys, "retired"), [old.as_str()]);
        assert_eq!(with_status(&keys, "active"), [new.as_str()]);
        let response = call(&app, Method::DELETE, &format!("/admin/keys/{old}"), Some(&root_token), None).await;
        assert_error(response, 404, "not_found").await;
    }

    async fn retiring_the_active_key_rotates_first(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let old = kid_of(&root.token);
        let response = call(&app, Method::DELETE, &format!("/admin/keys/{old}"), Some(&root.token), None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert!(!app.jwks_kids().await.contains(&old));
        // The admin's own token went with the key.
        assert_error(call(&app, Method::GET, "/admin/keys", Some(&root.token), None).await, 401, "invalid_token").await;
        let token = app.login("root", PASSWORD).await.access_token;
        let new = kid_of(&token);
        assert_ne!(new, old);
        let keys = ok(&app, Method::GET, "/admin/keys", &token, None).await;
        assert_eq!(with_status(&keys, "active"), [new.as_str()]);
        assert_eq!(with_status(&keys, "staged").len(), 1);
        assert_eq!(with_status(&keys, "retired"), [old.as_str()]);
    }
}

#[tokio::test]
async fn retiring_an_unknown_key_is_404() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = admin(&app).await;
    let response = call(
        &app,
        Method::DELETE,
        "/admin/keys/no-such-kid",
        Some(&root.token),
        None,
    )
    .await;
    assert_error(response, 404, "not_found").await;
}
