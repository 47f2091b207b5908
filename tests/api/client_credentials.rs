//! `grant_type=client_credentials` (RFC 6749 §4.4): client authentication by Basic header or
//! form, and what the token holds.

use base64::Engine;
use reqwest::Response;
use tessera::clients::NewClient;

use crate::helpers::*;

fn basic(client_id: &str, secret: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    format!("Basic {encoded}")
}

async fn with_basic(app: &TestApp, authorization: &str, form: &[(&str, &str)]) -> Response {
    app.client
        .post(app.url("/oauth/token"))
        .header("authorization", authorization)
        .form(form)
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_client(response: Response) {
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Basic realm="tessera""#
    );
    assert_error(response, 401, "invalid_client").await;
}

both_backends! {
    async fn client_secret_basic_gets_an_access_token_for_the_client_itself(backend) {
        let app = spawn_app(backend).await;
        let secret = app.confidential_client("reports");
        let response = with_basic(&app, &basic("reports", &secret), &[("grant_type", "client_credentials")]).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let tokens = tokens(response).await;
        assert_eq!(tokens.body["token_type"], "Bearer");
        assert_eq!(tokens.body["scope"], "read write");
        assert!(tokens.refresh_token.is_none(), "no refresh token: {}", tokens.body);
        assert!(tokens.body.get("refresh_token").is_none());
        let claims = claims(&tokens.access_token);
        assert_eq!(claims["sub"], "reports");
        assert_eq!(claims["client_id"], "reports");
        assert!(claims.get("sid").is_none(), "no sid: {claims}");
        assert_eq!(claims["scope"], "read write");
        assert_eq!(claims["type"], "access");
        assert_eq!(header(&tokens.access_token)["typ"], "at+jwt");
    }

    async fn client_secret_post_gets_an_access_token_with_a_narrower_scope(backend) {
        let app = spawn_app(backend).await;
        let secret = app.confidential_client("reports");
        let response = app.token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "reports"),
            ("client_secret", &secret),
            ("scope", "read"),
        ]).await;
        assert_eq!(response.status().as_u16(), 200);
        let tokens = tokens(response).await;
        assert_eq!(tokens.body["scope"], "read");
        assert_eq!(claims(&tokens.access_token)["sub"], "reports");
        assert!(tokens.refresh_token.is_none());
    }
}

#[tokio::test]
async fn a_wrong_secret_or_an_unknown_client_is_invalid_client() {
    let app = spawn_app(Backend::Sqlite).await;
    app.confidential_client("reports");
    let form = [("grant_type", "client_credentials")];
    assert_invalid_client(with_basic(&app, &basic("reports", "wrong"), &form).await).await;
    assert_invalid_client(with_basic(&app, &basic("nobody", "wrong"), &form).await).await;
    for (id, secret) in [("reports", "wrong"), ("nobody", "wrong")] {
        let response = app
            .token(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .await;
        assert_invalid_client(response).await;
    }
    // No credentials at all.
    assert_invalid_client(app.token(&form).await).await;
}

#[tokio::test]
async fn a_public_client_may_not_use_client_credentials() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_client(NewClient {
        client_id: "spa".into(),
        public: true,
        ..Default::default()
    });
    let response = app
        .token(&[("grant_type", "client_credentials"), ("client_id", "spa")])
        .await;
    assert_error(response, 400, "unauthorized_client").await;
    let response = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", "first-party"),
        ])
        .await;
    assert_error(response, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn a_confidential_client_without_the_grant_is_unauthorized_client() {
    let app = spawn_app(Backend::Sqlite).await;
    let secret = app
        .create_client(NewClient {
            client_id: "backend".into(),
            public: false,
            grant_types: Some(vec!["password".into(), "refresh_token".into()]),
            ..Default::default()
        })
        .unwrap();
    let response = with_basic(
        &app,
        &basic("backend", &secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_error(response, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn an_unknown_scope_is_invalid_scope() {
    let app = spawn_app(Backend::Sqlite).await;
    let secret = app.confidential_client("reports");
    let response = with_basic(
        &app,
        &basic("reports", &secret),
        &[
            ("grant_type", "client_credentials"),
            ("scope", "read admin"),
        ],
    )
    .await;
    assert_error(response, 400, "invalid_scope").await;
}

#[tokio::test]
async fn basic_and_post_credentials_together_are_invalid_request() {
    let app = spawn_app(Backend::Sqlite).await;
    let secret = app.confidential_client("reports");
    let response = with_basic(
        &app,
        &basic("reports", &secret),
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "reports"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_error(response, 400, "invalid_request").await;
}
