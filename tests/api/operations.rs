//! Operating tessera: Prometheus metrics.

use crate::helpers::*;

fn metric_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_tokens_failures_reuse_and_revocations() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.lockout_threshold = 2).await;
    let tokens = app.user_with_tokens("alice").await;
    for _ in 0..2 {
        app.token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", "wrong password!"),
        ])
        .await;
    }
    let refresh = tokens.refresh_token.unwrap();
    app.refresh(&refresh).await;
    app.refresh(&refresh).await;

    let response = app.get("/metrics").await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = response.text().await.unwrap();
    assert_eq!(
        metric_value(
            &text,
            r#"tessera_tokens_issued_total{grant_type="password"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"tessera_tokens_issued_total{grant_type="refresh_token"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&text, "tessera_login_failures_total"),
        Some(2.0)
    );
    assert_eq!(
        metric_value(&text, "tessera_account_lockouts_total"),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&text, "tessera_refresh_reuse_detected_total"),
        Some(1.0)
    );
    assert_eq!(metric_value(&text, "tessera_revocations_total"), Some(1.0));
    assert_eq!(
        metric_value(
            &text,
            r#"tessera_http_requests_total{method="POST",route="/register",status="201"}"#
        ),
        Some(1.0)
    );
    assert!(text.contains(r#"tessera_http_request_duration_seconds_bucket{route="/oauth/token""#));
    assert!(metric_value(&text, "tessera_signing_key_age_seconds").is_some());
    assert!(metric_value(&text, r#"tessera_db_pool_connections{state="idle"}"#).is_some());
}

#[tokio::test]
async fn with_a_certificate_and_key_tessera_serves_https() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.tls = Some(tessera::config::TlsFiles { cert, key })
    })
    .await;
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let https = app.address.replace("http://", "https://");
    let response = client.get(format!("{https}/healthz")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let jwks: serde_json::Value = client
        .get(format!("{https}/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!jwks["keys"].as_array().unwrap().is_empty());
}

#[test]
fn a_certificate_without_a_key_stops_start_up_naming_the_missing_setting() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .current_dir(dir.path())
        .env("TESSERA_TLS_CERT", dir.path().join("cert.pem"))
        .env_remove("TESSERA_TLS_KEY")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TESSERA_TLS_KEY"));
}

#[tokio::test]
async fn admin_revocations_are_counted_too() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_user("root", &["admin"]);
    let admin = app.login("root", PASSWORD).await;
    let user = app.user_with_tokens("alice").await;
    let sid = claims(&user.access_token)["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let response = app
        .client
        .delete(app.url(&format!("/admin/sessions/{sid}")))
        .bearer_auth(&admin.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let text = app.get("/metrics").await.text().await.unwrap();
    assert_eq!(
        metric_value(&text, "tessera_revocations_total"),
        Some(1.0),
        "{text}"
    );
}
