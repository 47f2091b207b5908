//! Who may use the admin API, and the helpers the other `admin_*` test modules share.

use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::helpers::*;

/// An admin's user id and access token.
pub struct Admin {
    pub id: String,
    pub token: String,
}

/// Creates user `root` with the admin role and logs it in.
pub async fn admin(app: &TestApp) -> Admin {
    let id = app.create_user("root", &["admin"]);
    let token = app.login("root", PASSWORD).await.access_token;
    Admin { id, token }
}

/// Sends `method path` with the bearer token and, if given, a JSON body.
pub async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Response {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request failed")
}

/// `call` that expects a 2xx answer and returns its JSON body (`Null` for 204).
pub async fn ok(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> Value {
    let response = call(app, method.clone(), path, Some(token), body).await;
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    }
}

/// Every admin route of the server's route table (so a new one cannot be left out), its
/// path parameters filled in, with a plausible body.
pub fn routes() -> Vec<(Method, String, Option<Value>)> {
    let id = "00000000-0000-0000-0000-000000000000";
    let routes: Vec<(Method, String, Option<Value>)> = tessera::http::ROUTES
        .iter()
        .filter(|(_, path)| tessera::http::is_admin_path(path))
        .map(|(method, template)| {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            let mut path = String::new();
            let mut rest = *template;
            while let Some(open) = rest.find('{') {
                let close = rest[open..].find('}').unwrap() + open;
                path.push_str(&rest[..open]);
                path.push_str(if template.starts_with("/admin/clients") {
                    "sneaky"
                } else {
                    id
                });
                rest = &rest[close + 1..];
            }
            path.push_str(rest);
            let body = match (method.as_str(), *template) {
                ("PATCH", "/admin/users/{id}") => Some(json!({"roles": ["admin"]})),
                ("POST", "/admin/clients") => Some(json!({"client_id": "sneaky"})),
                _ => None,
            };
            (method, path, body)
        })
        .collect();
    assert!(
        routes.len() >= 17,
        "the admin routes were found: {routes:?}"
    );
    routes
}

#[tokio::test]
async fn every_admin_route_asks_for_a_bearer_token() {
    let app = spawn_app(Backend::Sqlite).await;
    for (method, path, body) in routes() {
        let response = call(&app, method.clone(), &path, None, body.as_ref()).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer realm="tessera""#,
            "{method} {path}"
        );
        assert_error(response, 401, "invalid_token").await;
    }
}

#[tokio::test]
async fn every_admin_route_refuses_a_user_without_the_admin_role() {
    let app = spawn_app(Backend::Sqlite).await;
    let tokens = app.user_with_tokens("mallory").await;
    let keys_before = app.state.keys.active_kid();
    for (method, path, body) in routes() {
        let response = call(
            &app,
            method.clone(),
            &path,
            Some(&tokens.access_token),
            body.as_ref(),
        )
        .await;
        let body = assert_error(response, 403, "forbidden").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("admin"),
            "{method} {path}"
        );
    }
    // Nothing was done on the way to the refusal.
    assert_eq!(app.state.keys.active_kid(), keys_before);
    let admin = admin(&app).await;
    let clients = ok(&app, Method::GET, "/admin/clients", &admin.token, None).await;
    let listed: Vec<&Value> = clients["items"].as_array().unwrap().iter().collect();
    assert_eq!(
        listed.len(),
        1,
        "only the built-in console client: {clients}"
    );
    assert_eq!(listed[0]["client_id"], "console");
}

#[tokio::test]
async fn a_client_credentials_token_cannot_use_the_admin_api() {
    let app = spawn_app(Backend::Sqlite).await;
    let secret = app.confidential_client("robot");
    let response = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "robot"),
            ("client_secret", &secret),
        ])
        .await;
    let token = tokens(response).await.access_token;
    let response = call(&app, Method::GET, "/admin/users", Some(&token), None).await;
    assert_error(response, 403, "forbidden").await;
}

#[tokio::test]
async fn a_refresh_token_is_not_accepted_as_an_admin_bearer_token() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("root", &["admin"]);
    let tokens = app.login("root", PASSWORD).await;
    let response = call(
        &app,
        Method::GET,
        "/admin/users",
        tokens.refresh_token.as_deref(),
        None,
    )
    .await;
    assert_error(response, 401, "invalid_token").await;
}

both_backends! {
    async fn a_demoted_admin_gets_403_on_every_admin_route(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let deputy_id = app.create_user("deputy", &["admin"]);
        let victim_id = app.create_user("victim", &[]);
        let deputy = app.login("deputy", PASSWORD).await.access_token;
        ok(&app, Method::GET, "/admin/users", &deputy, None).await;
        ok(&app, Method::PATCH, &format!("/admin/users/{deputy_id}"), &root.token, Some(&json!({"roles": []}))).await;
        for (method, path, body) in routes() {
            // A real victim where the path names a user, so that a missed check would act.
            let path = path.replace("00000000-0000-0000-0000-000000000000", &victim_id);
            let response = call(&app, method.clone(), &path, Some(&deputy), body.as_ref()).await;
            assert_eq!(response.status().as_u16(), 403, "{method} {path}");
            assert_error(response, 403, "forbidden").await;
        }
        // The token itself is still valid: only the authority went.
        assert_eq!(app.get_bearer("/userinfo", &deputy).await.status().as_u16(), 200);
        let victim = ok(&app, Method::GET, &format!("/admin/users/{victim_id}"), &root.token, None).await;
        assert_eq!(victim["username"], "victim", "the victim was not deleted");
    }

    async fn taking_the_admin_role_away_takes_effect_before_the_token_expires(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        let other_id = app.create_user("deputy", &["admin"]);
        let deputy = app.login("deputy", PASSWORD).await.access_token;
        ok(&app, Method::GET, "/admin/users", &deputy, None).await;
        ok(&app, Method::PATCH, &format!("/admin/users/{other_id}"), &root.token, Some(&json!({"roles": []}))).await;
        let response = call(&app, Method::GET, "/admin/users", Some(&deputy), None).await;
        assert_error(response, 403, "forbidden").await;
    }
}
