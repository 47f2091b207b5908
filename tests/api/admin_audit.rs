//! `/admin/audit`: every admin action is recorded with the admin as actor, filters, and paging.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::admin::{admin, call, ok};
use crate::admin_users::all_pages;
use crate::helpers::*;

async fn events(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let page = ok(
        app,
        Method::GET,
        &format!("/admin/audit?limit=500&{query}"),
        token,
        None,
    )
    .await;
    page["items"].as_array().unwrap().clone()
}

both_backends! {
    async fn every_admin_action_is_audited_with_the_admin_as_actor(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let alice = app.create_user("alice", &[]);
        let bob = app.create_user("bob", &[]);
        let tokens = app.login("bob", PASSWORD).await;
        let bob_sid = claims(&tokens.access_token)["sid"].as_str().unwrap().to_string();
        let t = &root.token;
        ok(&app, Method::PATCH, &format!("/admin/users/{alice}"), t, Some(&json!({"roles": ["editor"], "disabled": true}))).await;
        ok(&app, Method::DELETE, &format!("/admin/sessions/{bob_sid}"), t, None).await;
        app.login("bob", PASSWORD).await;
        ok(&app, Method::DELETE, &format!("/admin/users/{bob}/sessions"), t, None).await;
        let created = ok(&app, Method::POST, "/admin/clients", t, Some(&json!({"client_id": "svc"}))).await;
        let rotated = ok(&app, Method::POST, "/admin/clients/svc/secret", t, None).await;
        ok(&app, Method::DELETE, "/admin/clients/svc", t, None).await;
        let old_kid = header(t)["kid"].as_str().unwrap().to_string();
        let rotation = ok(&app, Method::POST, "/admin/keys/rotate", t, None).await;
        ok(&app, Method::DELETE, &format!("/admin/keys/{old_kid}"), t, None).await;
        // Retiring the old key ended this token; the admin logs in again.
        let t = &app.login("root", PASSWORD).await.access_token;
        ok(&app, Method::DELETE, &format!("/admin/users/{bob}"), t, None).await;

        let expected = [
            ("user_updated", Some(alice.as_str()), None),
            ("session_revoked", Some(bob.as_str()), None),
            ("client_created", None, Some("svc")),
            ("client_secret_rotated", None, Some("svc")),
            ("client_deleted", None, Some("svc")),
            ("key_rotated", None, None),
            ("key_retired", None, None),
            ("user_deleted", Some(bob.as_str()), None),
        ];
        for (kind, user, client) in expected {
            let found = events(&app, t, &format!("type={kind}")).await;
            assert!(!found.is_empty(), "no {kind} event");
            for event in &found {
                assert_eq!(event["type"], kind);
                assert_eq!(event["actor"], root.id.as_str(), "{event}");
                assert_eq!(event["ip"], "127.0.0.1", "{event}");
                if let Some(user) = user {
                    assert_eq!(event["user_id"], user, "{event}");
                }
                if let Some(client) = client {
                    assert_eq!(event["client_id"], client, "{event}");
                }
            }
        }
        assert_eq!(events(&app, t, "type=session_revoked").await.len(), 2);
        let updated = &events(&app, t, "type=user_updated").await[0];
        assert_eq!(updated["details"]["disabled"], true);
        assert_eq!(updated["details"]["roles"], json!(["editor"]));
        let retired = &events(&app, t, "type=key_retired").await[0];
        assert_eq!(retired["details"]["kid"], old_kid.as_str());
        let rotated_event = &events(&app, t, "type=key_rotated").await[0];
        assert_eq!(rotated_event["details"]["active_kid"], rotation["active_kid"]);

        // No secret ever reaches the audit log.
        let everything = serde_json::to_string(&events(&app, t, "").await).unwrap();
        for secret in [&created["client_secret"], &rotated["client_secret"]] {
            assert!(!everything.contains(secret.as_str().unwrap()));
        }
        assert!(!everything.contains(PASSWORD));
    }

    async fn audit_pages_return_every_event_exactly_once_newest_first(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        for name in ["user1", "user2", "user3", "user4", "user5", "user6", "user7"] {
            app.register(name, PASSWORD).await;
        }
        let all = events(&app, &root.token, "").await;
        assert!(all.len() >= 8, "7 registrations and the admin's login");
        let (paged, pages) = all_pages(&app, "/admin/audit?limit=3", &root.token).await;
        assert_eq!(pages, all.len().div_ceil(3));
        assert_eq!(paged, all);
        let ids: Vec<i64> = paged.iter().map(|e| e["id"].as_i64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
        let (registrations, pages) = all_pages(&app, "/admin/audit?limit=3&type=register", &root.token).await;
        assert_eq!((registrations.len(), pages), (7, 3));
    }
}

#[tokio::test]
async fn audit_events_are_filtered_by_user_type_and_time() {
    let app = spawn_app(Backend::Sqlite).await;
    let root = admin(&app).await;
    let alice = app.register("alice", PASSWORD).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.login("alice", PASSWORD).await;
    let _ = app
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "not the password"),
        ])
        .await;
    let t = &root.token;
    let mine = events(&app, t, &format!("user={alice}")).await;
    let kinds: Vec<&str> = mine.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["login_failed", "login", "register"]);
    let logins = events(&app, t, &format!("user={alice}&type=login")).await;
    assert_eq!(logins.len(), 1);
    let first = &mine[2];
    assert!(first["at"].as_str().unwrap().ends_with('Z'));

    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        events(&app, t, &format!("since={}", now + 60)).await,
        Vec::<Value>::new()
    );
    assert_eq!(
        events(&app, t, &format!("until={}", now - 3600)).await,
        Vec::<Value>::new()
    );
    let window = format!(
        "user={alice}&since={}&until={}",
        now - 3600,
        url::form_urlencoded::byte_serialize(
            chrono::DateTime::from_timestamp(now + 60, 0)
                .unwrap()
                .to_rfc3339()
                .as_bytes()
        )
        .collect::<String>()
    );
    assert_eq!(events(&app, t, &window).await.len(), 3);

    for query in ["since=yesterday", "until=2024-13-01", "cursor=abc"] {
        let response = call(
            &app,
            Method::GET,
            &format!("/admin/audit?{query}"),
            Some(t),
            None,
        )
        .await;
        assert_error(response, 400, "invalid_request").await;
    }
}
