//! Browser clients: the refresh token as an `HttpOnly` cookie with a CSRF cookie bound to
//! the session, refresh and log-out from the cookie, and CORS.

use reqwest::Response;
use serde_json::Value;

use crate::helpers::*;

const SPA: &str = "spa";
const ORIGIN: &str = "https://app.example";

/// A `Set-Cookie` header, split into its value and attributes.
#[derive(Debug)]
struct SetCookie {
    value: String,
    attributes: Vec<String>,
}

impl SetCookie {
    fn has(&self, attribute: &str) -> bool {
        self.attributes
            .iter()
            .any(|a| a.eq_ignore_ascii_case(attribute))
    }

    fn attribute(&self, name: &str) -> Option<String> {
        self.attributes.iter().find_map(|a| {
            a.split_once('=')
                .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        })
    }
}

fn set_cookie(response: &Response, name: &str) -> Option<SetCookie> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|text| {
            let mut parts = text.split(';').map(str::trim);
            let (key, value) = parts.next()?.split_once('=')?;
            (key == name).then(|| SetCookie {
                value: value.to_string(),
                attributes: parts.map(String::from).collect(),
            })
        })
}

/// The cookies a browser would hold after a token response.
struct Jar {
    refresh: String,
    csrf: String,
}

impl Jar {
    fn from(response: &Response) -> Jar {
        Jar {
            refresh: set_cookie(response, "tessera_refresh")
                .expect("refresh cookie")
                .value,
            csrf: set_cookie(response, "tessera_csrf")
                .expect("csrf cookie")
                .value,
        }
    }

    fn header(&self) -> String {
        format!(
            "tessera_refresh={}; tessera_csrf={}",
            self.refresh, self.csrf
        )
    }
}

impl TestApp {
    fn spa_client(&self) {
        self.create_client(tessera::clients::NewClient {
            client_id: SPA.into(),
            public: true,
            refresh_cookie: true,
            grant_types: Some(vec!["password".into(), "refresh_token".into()]),
            scopes: Some(vec!["profile".into()]),
            ..Default::default()
        });
    }

    /// Registers a user and logs in through the cookie client.
    async fn spa_login(&self, username: &str) -> Response {
        self.spa_client();
        self.register(username, PASSWORD).await;
        let response = self
            .token(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", PASSWORD),
                ("client_id", SPA),
            ])
            .await;
        assert_eq!(response.status().as_u16(), 200, "cookie client login");
        response
    }

    async fn cookie_refresh(&self, cookies: &str, csrf_header: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url("/oauth/token"))
            .header("cookie", cookies)
            .form(&[("grant_type", "refresh_token"), ("client_id", SPA)]);
        if let Some(csrf) = csrf_header {
            request = request.header("x-csrf-token", csrf);
        }
        request.send().await.unwrap()
    }

    /// Logs out from the cookie (`POST /oauth/revoke` without `token`), from `origin`.
    async fn cookie_logout(&self, cookies: &str, csrf_header: Option<&str>) -> Response {
        let mut request = self
            .client
            .post(self.url("/oauth/revoke"))
            .header("cookie", cookies)
            .header("origin", "https://evil.example")
            .form(&[("client_id", SPA)]);
        if let Some(csrf) = csrf_header {
            request = request.header("x-csrf-token", csrf);
        }
        request.send().await.unwrap()
    }

    async fn spa_login_again(&self, username: &str) -> Jar {
        let response = self
            .token(&[
                ("grant_type", "password"),
                ("username", username),
                ("password", PASSWORD),
                ("client_id", SPA),
            ])
            .await;
        assert_eq!(response.status().as_u16(), 200, "cookie client login");
        Jar::from(&response)
    }

    async fn preflight(&self, origin: &str) -> Response {
        self.client
            .request(reqwest::Method::OPTIONS, self.url("/oauth/token"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, x-csrf-token, authorization",
            )
            .send()
            .await
            .unwrap()
    }
}

both_backends! {
    async fn cookie_clients_get_the_refresh_token_as_an_http_only_cookie(backend) {
        let app = spawn_app(backend).await;
        let response = app.spa_login("alice").await;
        let refresh = set_cookie(&response, "tessera_refresh").expect("tessera_refresh is set");
        let csrf = set_cookie(&response, "tessera_csrf").expect("tessera_csrf is set");
        let body: Value = response.json().await.unwrap();
        assert!(body.get("refresh_token").is_none(), "no refresh_token in {body}");
        assert!(body["access_token"].is_string());
        assert_eq!(claims(&refresh.value)["type"], "refresh");
        assert!(refresh.has("HttpOnly") && refresh.has("Secure") && refresh.has("SameSite=Strict"));
        assert_eq!(refresh.attribute("Path").as_deref(), Some("/oauth"));
        let max_age: i64 = refresh.attribute("Max-Age").unwrap().parse().unwrap();
        assert!(max_age > 29 * 86_400 && max_age <= 30 * 86_400);
        assert!(!csrf.has("HttpOnly"), "scripts must read the CSRF cookie");
        assert!(csrf.has("Secure") && csrf.has("SameSite=Strict"));
        assert_eq!(csrf.attribute("Path").as_deref(), Some("/"));
        assert!(csrf.value.len() >= 32);
    }

    async fn refreshing_from_the_cookie_with_the_csrf_header_rotates_the_cookie(backend) {
        let app = spawn_app(backend).await;
        let jar = Jar::from(&app.spa_login("alice").await);
        let response = app.cookie_refresh(&jar.header(), Some(&jar.csrf)).await;
        assert_eq!(response.status().as_u16(), 200);
        let next = Jar::from(&response);
        assert_ne!(next.refresh, jar.refresh);
        assert_eq!(next.csrf, jar.csrf, "other tabs keep a working CSRF value");
        let body: Value = response.json().await.unwrap();
        assert!(body.get("refresh_token").is_none());
        assert_eq!(claims(body["access_token"].as_str().unwrap())["fresh"], false);
        let spent = app.cookie_refresh(&jar.header(), Some(&jar.csrf)).await;
        assert_error(spent, 400, "invalid_grant").await;
    }

    async fn refreshing_from_the_cookie_without_the_csrf_header_is_refused(backend) {
        let app = spawn_app(backend).await;
        let jar = Jar::from(&app.spa_login("alice").await);
        let response = app.cookie_refresh(&jar.header(), None).await;
        assert_error(response, 400, "invalid_request").await;
        let response = app.cookie_refresh(&jar.header(), Some("not-the-csrf-value")).await;
        assert_error(response, 400, "invalid_request").await;
        let no_csrf_cookie = format!("tessera_refresh={}", jar.refresh);
        let response = app.cookie_refresh(&no_csrf_cookie, Some(&jar.csrf)).await;
        assert_error(response, 400, "invalid_request").await;
        // The refusals spent nothing.
        let response = app.cookie_refresh(&jar.header(), Some(&jar.csrf)).await;
        assert_eq!(response.status().as_u16(), 200);
    }

    async fn logging_out_revokes_the_cookie_session_and_clears_both_cookies(backend) {
        let app = spawn_app(backend).await;
        let jar = Jar::from(&app.spa_login("alice").await);
        let response = app
            .client
            .post(app.url("/oauth/revoke"))
            .header("cookie", jar.header())
            .header("x-csrf-token", &jar.csrf)
            .form(&[("client_id", SPA)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let refresh = set_cookie(&response, "tessera_refresh").expect("refresh cookie cleared");
        let csrf = set_cookie(&response, "tessera_csrf").expect("csrf cookie cleared");
        assert_eq!((refresh.value.as_str(), csrf.value.as_str()), ("", ""));
        assert_eq!(refresh.attribute("Max-Age").as_deref(), Some("0"));
        assert_eq!(csrf.attribute("Max-Age").as_deref(), Some("0"));
        assert_eq!(refresh.attribute("Path").as_deref(), Some("/oauth"));
        assert_eq!(csrf.attribute("Path").as_deref(), Some("/"));
        let response = app.cookie_refresh(&jar.header(), Some(&jar.csrf)).await;
        assert_error(response, 400, "invalid_grant").await;
    }

    async fn logging_out_from_the_cookie_without_the_csrf_header_is_refused_and_revokes_nothing(backend) {
        let app = spawn_app(backend).await;
        let jar = Jar::from(&app.spa_login("alice").await);
        for header in [None, Some("not-the-csrf-value"), Some("")] {
            let response = app.cookie_logout(&jar.header(), header).await;
            assert!(set_cookie(&response, "tessera_refresh").is_none(), "cookies cleared");
            assert_error(response, 400, "invalid_request").await;
        }
        let no_csrf_cookie = format!("tessera_refresh={}", jar.refresh);
        let response = app.cookie_logout(&no_csrf_cookie, Some(&jar.csrf)).await;
        assert_error(response, 400, "invalid_request").await;
        // The session lives on: it still refreshes.
        let response = app.cookie_refresh(&jar.header(), Some(&jar.csrf)).await;
        assert_eq!(response.status().as_u16(), 200);
    }

    async fn csrf_values_are_bound_to_the_session(backend) {
        let app = spawn_app(backend).await;
        let alice = Jar::from(&app.spa_login("alice").await);
        app.register("bob", PASSWORD).await;
        let bob = app.spa_login_again("bob").await;
        assert_ne!(alice.csrf, bob.csrf);
        // A pair chosen by someone else (a sibling subdomain can set cookies), another
        // session's value, or a value issued before values were bound to sessions (random,
        // like this one): refused on refresh and on logout.
        let chosen = tessera::crypto::random_token::<32>();
        for value in [chosen.as_str(), bob.csrf.as_str()] {
            let cookies = format!("tessera_refresh={}; tessera_csrf={value}", alice.refresh);
            assert_error(app.cookie_refresh(&cookies, Some(value)).await, 400, "invalid_request").await;
            assert_error(app.cookie_logout(&cookies, Some(value)).await, 400, "invalid_request").await;
        }
        // The right value in the header but another in the cookie, or the reverse.
        let cookies = format!("tessera_refresh={}; tessera_csrf={chosen}", alice.refresh);
        assert_error(app.cookie_refresh(&cookies, Some(&alice.csrf)).await, 400, "invalid_request").await;
        assert_error(app.cookie_refresh(&alice.header(), Some(&chosen)).await, 400, "invalid_request").await;
        // Nothing was spent or revoked; the next login sets a value of its own that works.
        assert_eq!(app.cookie_refresh(&alice.header(), Some(&alice.csrf)).await.status().as_u16(), 200);
        let again = app.spa_login_again("alice").await;
        assert_ne!(again.csrf, alice.csrf);
        assert_ne!(again.csrf, chosen);
        let response = app.cookie_refresh(&again.header(), Some(&again.csrf)).await;
        assert_eq!(response.status().as_u16(), 200);
        assert_eq!(Jar::from(&response).csrf, again.csrf);
    }

    async fn mfa_logins_of_cookie_clients_deliver_the_cookie(backend) {
        let app = spawn_app(backend).await;
        app.spa_client();
        let (mut authenticator, _) = app.user_with_mfa("alice").await;
        let mfa_token = app.mfa_token_for("alice", &[("client_id", SPA)]).await;
        let response = app
            .token(&[
                ("grant_type", "urn:tessera:params:oauth:grant-type:mfa-otp"),
                ("mfa_token", &mfa_token),
                ("otp", &authenticator.next_code().await),
                ("client_id", SPA),
            ])
            .await;
        assert_eq!(response.status().as_u16(), 200);
        let jar = Jar::from(&response);
        let body: Value = response.json().await.unwrap();
        assert!(body.get("refresh_token").is_none());
        assert_eq!(claims(&jar.refresh)["client_id"], SPA);
    }
}

#[tokio::test]
async fn malformed_cookies_of_other_applications_do_not_hide_tesseras() {
    let app = spawn_app(Backend::Sqlite).await;
    let jar = Jar::from(&app.spa_login("alice").await);
    // A pair without `=` and one with an empty name, as other software on the host may
    // set: a reader that gave up on the whole header at either would sign everyone out.
    let cookies = format!("legacy_flag; {}; =orphan", jar.header());
    let response = app.cookie_refresh(&cookies, Some(&jar.csrf)).await;
    assert_eq!(response.status().as_u16(), 200);
}

#[tokio::test]
async fn cookies_drop_secure_only_when_cookie_secure_is_false() {
    let app = spawn_app_with(Backend::Sqlite, |settings| settings.cookie_secure = false).await;
    let response = app.spa_login("alice").await;
    let refresh = set_cookie(&response, "tessera_refresh").unwrap();
    let csrf = set_cookie(&response, "tessera_csrf").unwrap();
    assert!(!refresh.has("Secure") && !csrf.has("Secure"));
    assert!(refresh.has("HttpOnly") && refresh.has("SameSite=Strict"));
}

#[tokio::test]
async fn other_clients_still_get_the_refresh_token_in_the_body() {
    let app = spawn_app(Backend::Sqlite).await;
    app.register("alice", PASSWORD).await;
    let response = app
        .token(&[
            ("grant_type", "password"),
            ("username", "alice"),
            ("password", PASSWORD),
        ])
        .await;
    assert!(set_cookie(&response, "tessera_refresh").is_none());
    assert!(tokens(response).await.refresh_token.is_some());
}

#[tokio::test]
async fn a_refresh_with_neither_token_nor_cookie_is_invalid_request() {
    let app = spawn_app(Backend::Sqlite).await;
    let response = app.token(&[("grant_type", "refresh_token")]).await;
    assert_error(response, 400, "invalid_request").await;
    let response = app
        .post_form("/oauth/revoke", &[("client_id", "first-party")])
        .await;
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn preflights_from_allowed_origins_allow_credentials_and_the_csrf_header() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.cors_origins = vec![ORIGIN.into()]
    })
    .await;
    let response = app.preflight(ORIGIN).await;
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(headers["access-control-allow-origin"], ORIGIN);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["authorization", "content-type", "x-csrf-token"] {
        assert!(allowed.contains(header), "{header} in {allowed}");
    }
}

#[tokio::test]
async fn preflights_from_other_origins_get_no_cors_headers_and_a_json_error() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.cors_origins = vec![ORIGIN.into()]
    })
    .await;
    let response = app.preflight("https://evil.example").await;
    assert!(response
        .headers()
        .keys()
        .all(|name| !name.as_str().starts_with("access-control-allow")));
    assert_error(response, 400, "invalid_request").await;
}

#[tokio::test]
async fn responses_to_allowed_origins_carry_the_cors_headers() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.cors_origins = vec![ORIGIN.into()]
    })
    .await;
    let allowed = app
        .client
        .get(app.url("/healthz"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(
        allowed.headers()["access-control-allow-credentials"],
        "true"
    );
    let refused = app
        .client
        .get(app.url("/healthz"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(refused
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}
