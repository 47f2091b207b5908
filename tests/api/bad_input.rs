//! Garbage in, contract out: randomly generated form and JSON bodies (unknown and known keys,
//! wrong types, huge values, invalid UTF-8, deep nesting, wrong content types) sent to every
//! endpoint that takes a body or changes state. Never a 5xx; every 4xx is the contract's JSON
//! error with a status its code allows. The seed is printed, and `TESSERA_FUZZ_SEED` replays it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::*;

/// How a request authenticates.
#[derive(Clone, Copy, Debug)]
enum Auth {
    None,
    User,
    Admin,
    Client,
}

/// One endpoint: method, path (`{}` is filled with a random or real id), auth, the success
/// statuses it may answer, and how many random bodies it gets.
struct Endpoint {
    method: Method,
    path: &'static str,
    auth: Auth,
    success: &'static [u16],
    cases: usize,
    fields: &'static [&'static str],
}

const fn endpoint(
    method: Method,
    path: &'static str,
    auth: Auth,
    success: &'static [u16],
    cases: usize,
) -> Endpoint {
    Endpoint {
        method,
        path,
        auth,
        success,
        cases,
        fields: fields_of(path),
    }
}

/// The fields an endpoint reads, so that many bodies get past the first check.
const fn fields_of(path: &str) -> &'static [&'static str] {
    match path.as_bytes() {
        b"/oauth/token" => &[
            "grant_type",
            "username",
            "password",
            "scope",
            "client_id",
            "client_secret",
            "refresh_token",
            "mfa_token",
            "otp",
        ],
        b"/oauth/revoke" | b"/oauth/introspect" => {
            &["token", "token_type_hint", "client_id", "client_secret"]
        }
        b"/register" => &["username", "password", "email"],
        b"/account/password" => &["current_password", "new_password"],
        b"/account/mfa/totp/confirm" => &["otp"],
        b"/account/mfa/totp" => &["password", "otp"],
        b"/admin/users/{}" => &["roles", "disabled", "attributes"],
        b"/admin/clients" => &[
            "client_id",
            "public",
            "grant_types",
            "scopes",
            "audience",
            "refresh_cookie",
            "access_token_ttl",
            "refresh_token_ttl",
            "refresh_reuse_grace",
        ],
        _ => &[],
    }
}

fn endpoints() -> Vec<Endpoint> {
    vec![
        endpoint(Method::POST, "/oauth/token", Auth::None, &[200], 300),
        endpoint(Method::POST, "/oauth/token", Auth::Client, &[200], 100),
        endpoint(Method::POST, "/oauth/revoke", Auth::None, &[200], 100),
        endpoint(Method::POST, "/oauth/revoke", Auth::Client, &[200], 60),
        endpoint(Method::POST, "/oauth/introspect", Auth::Client, &[200], 100),
        endpoint(Method::POST, "/oauth/introspect", Auth::None, &[200], 40),
        endpoint(Method::POST, "/register", Auth::None, &[201], 150),
        endpoint(Method::POST, "/userinfo", Auth::User, &[200], 30),
        endpoint(Method::PUT, "/account/password", Auth::User, &[204], 100),
        endpoint(
            Method::DELETE,
            "/account/sessions/{}",
            Auth::User,
            &[204],
            40,
        ),
        endpoint(Method::POST, "/account/mfa/totp", Auth::User, &[200], 20),
        endpoint(
            Method::POST,
            "/account/mfa/totp/confirm",
            Auth::User,
            &[200],
            80,
        ),
        endpoint(Method::DELETE, "/account/mfa/totp", Auth::User, &[204], 60),
        endpoint(Method::PATCH, "/admin/users/{}", Auth::Admin, &[200], 150),
        endpoint(Method::PATCH, "/admin/users/{}", Auth::User, &[], 20),
        endpoint(Method::DELETE, "/admin/users/{}", Auth::Admin, &[204], 30),
        endpoint(
            Method::DELETE,
            "/admin/users/{}/sessions",
            Auth::Admin,
            &[204],
            30,
        ),
        endpoint(
            Method::DELETE,
            "/admin/users/{}/mfa",
            Auth::Admin,
            &[204],
            30,
        ),
        endpoint(
            Method::DELETE,
            "/admin/sessions/{}",
            Auth::Admin,
            &[204],
            30,
        ),
        endpoint(Method::POST, "/admin/clients", Auth::Admin, &[201], 150),
        endpoint(Method::POST, "/admin/clients", Auth::None, &[], 20),
        endpoint(Method::DELETE, "/admin/clients/{}", Auth::Admin, &[204], 30),
        endpoint(
            Method::POST,
            "/admin/clients/{}/secret",
            Auth::Admin,
            &[200],
            30,
        ),
        endpoint(Method::POST, "/admin/keys/rotate", Auth::Admin, &[200], 8),
        endpoint(Method::DELETE, "/admin/keys/{}", Auth::Admin, &[204], 30),
    ]
}

/// Statuses each error code may come with (SPEC §3 and §5).
fn code_allows(code: &str, status: u16) -> bool {
    match code {
        "invalid_request" => matches!(status, 400 | 405 | 409 | 413 | 415),
        "invalid_grant"
        | "unauthorized_client"
        | "unsupported_grant_type"
        | "invalid_scope"
        | "weak_password" => status == 400,
        "invalid_client" | "invalid_token" => status == 401,
        "insufficient_scope" | "forbidden" | "mfa_required" => status == 403,
        "not_found" => status == 404,
        "username_taken" => status == 409,
        "rate_limited" => status == 429,
        _ => false,
    }
}

/// What the generator draws from: field names tessera reads, values that mean something to
/// it, and ids that exist.
struct Pools {
    keys: Vec<String>,
    values: Vec<String>,
    ids: Vec<String>,
}

fn random_string(rng: &mut StdRng, max: usize) -> String {
    let len = rng.gen_range(0..=max);
    (0..len)
        .map(|_| match rng.gen_range(0..10) {
            0 => rng.gen::<char>(),
            1 => *[
                '\u{0}', '"', '\\', '&', '=', '%', '+', ' ', '\n', '\u{feff}', '\u{202e}',
            ]
            .get(rng.gen_range(0..11))
            .unwrap(),
            2 => char::from_u32(rng.gen_range(0x80..0x800)).unwrap_or('é'),
            _ => rng.gen_range(b'!'..=b'~') as char,
        })
        .collect()
}

fn pick<'a>(rng: &mut StdRng, items: &'a [String]) -> &'a str {
    &items[rng.gen_range(0..items.len())]
}

fn value_text(rng: &mut StdRng, pools: &Pools) -> String {
    match rng.gen_range(0..12) {
        0..=4 => pick(rng, &pools.values).to_string(),
        5 if rng.gen_bool(0.1) => "x".repeat(rng.gen_range(60_000..70_000)),
        5 => format!("user{}", rng.gen::<u32>()),
        6 => "a".repeat(rng.gen_range(60..300)),
        7 => String::new(),
        _ => random_string(rng, 40),
    }
}

fn key_text(rng: &mut StdRng, pools: &Pools) -> String {
    if rng.gen_bool(0.8) {
        pick(rng, &pools.keys).to_string()
    } else {
        random_string(rng, 12)
    }
}

fn json_value(rng: &mut StdRng, pools: &Pools, depth: u32) -> Value {
    match rng.gen_range(0..10) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => json!(rng.gen::<i64>()),
        3 => json!(rng.gen::<f64>() * 1e300),
        4 if depth < 4 => Value::Array(
            (0..rng.gen_range(0..4))
                .map(|_| json_value(rng, pools, depth + 1))
                .collect(),
        ),
        5 if depth < 4 => json_object(rng, pools, depth + 1),
        _ => json!(value_text(rng, pools)),
    }
}

fn json_object(rng: &mut StdRng, pools: &Pools, depth: u32) -> Value {
    let mut map = serde_json::Map::new();
    for _ in 0..rng.gen_range(0..6) {
        map.insert(key_text(rng, pools), json_value(rng, pools, depth));
    }
    Value::Object(map)
}

/// Percent-encodes every byte, so that a value travels whole (invalid UTF-8 included).
fn percent(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

const FORM: &str = "application/x-www-form-urlencoded";
const JSON: &str = "application/json";

/// A body of the endpoint's own fields, each present or not, mostly with meaningful values
/// and sometimes (JSON) of the wrong type.
fn structured(rng: &mut StdRng, pools: &Pools, fields: &[&str]) -> (Vec<u8>, Option<&'static str>) {
    let chosen: Vec<&str> = fields
        .iter()
        .copied()
        .filter(|_| rng.gen_bool(0.7))
        .collect();
    let grant_types = [
        "password",
        "refresh_token",
        "client_credentials",
        "urn:tessera:params:oauth:grant-type:mfa-otp",
    ];
    let text = |rng: &mut StdRng, field: &str| {
        if field == "grant_type" && rng.gen_bool(0.8) {
            grant_types[rng.gen_range(0..grant_types.len())].to_string()
        } else {
            value_text(rng, pools)
        }
    };
    // The OAuth endpoints take forms only, the admin API JSON only.
    let form = if fields.contains(&"grant_type") || fields.contains(&"token") {
        true
    } else if fields.contains(&"roles") || fields.contains(&"public") {
        false
    } else {
        rng.gen_bool(0.5)
    };
    if form {
        let pairs: Vec<(&str, String)> = chosen
            .iter()
            .map(|field| (*field, text(rng, field)))
            .collect();
        (
            serde_urlencoded::to_string(&pairs).unwrap().into_bytes(),
            Some(FORM),
        )
    } else {
        let mut map = serde_json::Map::new();
        for field in chosen {
            let value = match rng.gen_range(0..8) {
                0 => json_value(rng, pools, 0),
                1 => json!([value_text(rng, pools), value_text(rng, pools)]),
                2 => json!(rng.gen::<bool>()),
                3 => json!(rng.gen_range(-100i64..100_000)),
                4 => json_object(rng, pools, 2),
                _ => json!(text(rng, field)),
            };
            map.insert(field.to_string(), value);
        }
        (Value::Object(map).to_string().into_bytes(), Some(JSON))
    }
}

/// A random body and the content type it is sent with (`None`: no header).
fn body(rng: &mut StdRng, pools: &Pools, fields: &[&str]) -> (Vec<u8>, Option<&'static str>) {
    if !fields.is_empty() && rng.gen_bool(0.6) {
        return structured(rng, pools, fields);
    }
    match rng.gen_range(0..12) {
        // Well-formed forms of mostly meaningful keys and values.
        0..=3 => {
            let pairs: Vec<(String, String)> = (0..rng.gen_range(0..7))
                .map(|_| (key_text(rng, pools), value_text(rng, pools)))
                .collect();
            (
                serde_urlencoded::to_string(&pairs).unwrap().into_bytes(),
                Some(FORM),
            )
        }
        // Forms with invalid UTF-8 and stray separators.
        4 => {
            let mut text = String::new();
            for _ in 0..rng.gen_range(1..5) {
                let key = key_text(rng, pools);
                let raw: Vec<u8> = (0..rng.gen_range(0..20)).map(|_| rng.gen()).collect();
                text.push_str(&format!("{}={}&", percent(key.as_bytes()), percent(&raw)));
            }
            text.push_str(["%", "%G1", "&&==", "=", "a=%FF%FE", ""][rng.gen_range(0..6)]);
            (text.into_bytes(), Some(FORM))
        }
        // JSON objects with wrong types and nesting.
        5..=7 => (
            json_object(rng, pools, 0).to_string().into_bytes(),
            Some(JSON),
        ),
        // JSON that is not an object, nested too deep, or broken.
        8 => {
            let text = match rng.gen_range(0..5) {
                0 => json_value(rng, pools, 0).to_string(),
                1 => "[".repeat(rng.gen_range(100..3000)),
                2 => format!("{}1{}", "[".repeat(200), "]".repeat(200)),
                3 => {
                    // Cut anywhere, in the middle of a UTF-8 sequence too.
                    let mut full = json_object(rng, pools, 0).to_string().into_bytes();
                    full.truncate(full.len() / 2);
                    return (full, Some(JSON));
                }
                _ => r#"{"username": "a", "username": "b", "password": 1e999}"#.to_string(),
            };
            (text.into_bytes(), Some(JSON))
        }
        // Raw bytes, invalid UTF-8 included, as JSON.
        9 => {
            let mut bytes = br#"{"username":""#.to_vec();
            bytes.extend((0..rng.gen_range(0..50)).map(|_| rng.gen::<u8>()));
            bytes.extend_from_slice(br#""}"#);
            (bytes, Some(JSON))
        }
        // Content types tessera does not take.
        _ => {
            let types = [
                "text/plain",
                "multipart/form-data; boundary=x",
                "application/json; charset=latin1",
                "application/x-www-form-urlencoded; charset=utf-16",
                "application/problem+json",
                "*/*",
            ];
            let pairs = json_object(rng, pools, 0).to_string().into_bytes();
            if rng.gen_bool(0.2) {
                (pairs, None)
            } else {
                (pairs, Some(types[rng.gen_range(0..types.len())]))
            }
        }
    }
}

/// A random path segment: a real id, a random UUID, or something hostile.
fn path_id(rng: &mut StdRng, pools: &Pools) -> String {
    match rng.gen_range(0..5) {
        0 => pick(rng, &pools.ids).to_string(),
        1 => uuid::Uuid::new_v4().to_string(),
        2 => percent(random_string(rng, 30).as_bytes()),
        3 => "%FF%FE%00".to_string(),
        _ => ["..", "%2e%2e", "a%2Fb", "x".repeat(3000).as_str(), "%25"][rng.gen_range(0..5)]
            .to_string(),
    }
}

/// What came back: the request described, status, body, content type, endpoint index.
type Answer = (String, u16, Vec<u8>, Option<String>, usize);

struct Credentials {
    user_token: String,
    admin_token: String,
    client_id: String,
    client_secret: String,
}

async fn send(
    app: &TestApp,
    endpoint: &Endpoint,
    credentials: &Credentials,
    rng: &mut StdRng,
    pools: &Pools,
) -> (String, u16, Vec<u8>, Option<String>) {
    let path = endpoint.path.replace("{}", &path_id(rng, pools));
    let (bytes, content_type) = body(rng, pools, endpoint.fields);
    let mut request = app
        .client
        .request(endpoint.method.clone(), app.url(&path))
        .timeout(Duration::from_secs(20))
        .body(bytes);
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request = match endpoint.auth {
        Auth::None if rng.gen_bool(0.2) => request.header(
            "authorization",
            ["Bearer", "Basic", "Basic !!!", "Bearer a.b.c", "Basic Og=="][rng.gen_range(0..5)],
        ),
        Auth::None => request,
        Auth::User => request.bearer_auth(&credentials.user_token),
        Auth::Admin => request.bearer_auth(&credentials.admin_token),
        Auth::Client => {
            request.basic_auth(&credentials.client_id, Some(&credentials.client_secret))
        }
    };
    if rng.gen_bool(0.1) {
        let value = value_text(rng, pools)
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != ';')
            .take(2000)
            .collect::<String>();
        request = request
            .header("cookie", format!("tessera_refresh={value}; tessera_csrf=x"))
            .header("x-csrf-token", "x");
    }
    let described = format!(
        "{} {}",
        endpoint.method,
        path.chars().take(80).collect::<String>()
    );
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = response.bytes().await.unwrap_or_default().to_vec();
    (described, status, body, content_type)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_bodies_never_get_a_5xx_and_every_error_has_the_contract_shape() {
    let app = spawn_app_with(Backend::Sqlite, |settings| {
        settings.workers = 2;
    })
    .await;
    let admin_id = app.create_user("root", &["admin"]);
    let admin_token = app.login("root", PASSWORD).await.access_token;
    app.register("fuzzer", PASSWORD).await;
    let user_token = app.login("fuzzer", PASSWORD).await.access_token;
    let victim = app.register("victim", PASSWORD).await;
    let victim_refresh = app.login("victim", PASSWORD).await.refresh_token.unwrap();
    let client_secret = app.confidential_client("svc");
    let kid = app.state.keys.active_kid().unwrap();

    let seed: u64 = std::env::var("TESSERA_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("bad-input seed: {seed} (TESSERA_FUZZ_SEED={seed} replays it)");

    let pools = Arc::new(Pools {
        keys: [
            "grant_type",
            "username",
            "password",
            "scope",
            "client_id",
            "client_secret",
            "refresh_token",
            "mfa_token",
            "otp",
            "token",
            "token_type_hint",
            "email",
            "current_password",
            "new_password",
            "roles",
            "disabled",
            "attributes",
            "public",
            "grant_types",
            "scopes",
            "audience",
            "refresh_cookie",
            "access_token_ttl",
            "refresh_token_ttl",
            "refresh_reuse_grace",
        ]
        .map(String::from)
        .to_vec(),
        values: vec![
            "password".into(),
            "refresh_token".into(),
            "client_credentials".into(),
            "urn:tessera:params:oauth:grant-type:mfa-otp".into(),
            "authorization_code".into(),
            "fuzzer".into(),
            "victim".into(),
            "FUZZER".into(),
            "root".into(),
            PASSWORD.into(),
            "profile email".into(),
            "profile admin".into(),
            "read".into(),
            "svc".into(),
            "first-party".into(),
            client_secret.clone(),
            victim_refresh.clone(),
            user_token.clone(),
            format!("{victim_refresh}x"),
            "123456".into(),
            "access_token".into(),
            "-1".into(),
            "9223372036854775807".into(),
            "true".into(),
            "null".into(),
            "a@b".into(),
            "new-client".into(),
        ],
        // Not the admin, the fuzzing user, `svc` or a live key: changing those would only
        // turn the rest of the run into 401s.
        ids: vec![
            victim["id"].as_str().unwrap().into(),
            "first-party".into(),
            "missing".into(),
            format!("{admin_id}x"),
            format!("{kid}x"),
        ],
    });
    let credentials = Arc::new(Credentials {
        user_token,
        admin_token,
        client_id: "svc".into(),
        client_secret,
    });

    let started = Instant::now();
    let app = Arc::new(app);
    let endpoints = Arc::new(endpoints());
    let jobs: Vec<(usize, u64)> = endpoints
        .iter()
        .enumerate()
        .flat_map(|(i, e)| (0..e.cases).map(move |n| (i, seed ^ ((i as u64) << 32) ^ n as u64)))
        .collect();
    let total = jobs.len();
    let results: Vec<Answer> = futures_util::stream::iter(jobs)
        .map(|(i, case_seed)| {
            let (app, endpoints, credentials, pools) = (
                app.clone(),
                endpoints.clone(),
                credentials.clone(),
                pools.clone(),
            );
            async move {
                let mut rng = StdRng::seed_from_u64(case_seed);
                let (what, status, body, content_type) =
                    send(&app, &endpoints[i], &credentials, &mut rng, &pools).await;
                (what, status, body, content_type, i)
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert_eq!(results.len(), total);

    let mut failures = Vec::new();
    for (what, status, body, content_type, i) in &results {
        let endpoint = &endpoints[*i];
        let problem = if *status >= 500 {
            Some("a 5xx".to_string())
        } else if (200..300).contains(status) {
            (!endpoint.success.contains(status))
                .then(|| format!("success status {status} is not one this endpoint answers"))
        } else if (400..500).contains(status) {
            let json: Option<Value> = serde_json::from_slice(body).ok();
            match json {
                _ if !content_type
                    .as_deref()
                    .is_some_and(|t| t.starts_with("application/json")) =>
                {
                    Some(format!("a {status} that is not JSON ({content_type:?})"))
                }
                Some(json)
                    if json["error"].is_string() && json["error_description"].is_string() =>
                {
                    let code = json["error"].as_str().unwrap();
                    (!code_allows(code, *status))
                        .then(|| format!("`{code}` does not go with {status}"))
                }
                _ => Some(format!("a {status} without error and error_description")),
            }
        } else {
            Some(format!("unexpected status {status}"))
        };
        if let Some(problem) = problem {
            failures.push(format!(
                "{what}: {problem}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ));
        }
    }
    let mut histogram = std::collections::BTreeMap::new();
    for (_, status, body, _, i) in &results {
        let code = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|b| b["error"].as_str().map(str::to_string))
            .unwrap_or_default();
        let endpoint = &endpoints[*i];
        *histogram
            .entry(format!(
                "{} {} {:?} {status} {code}",
                endpoint.method, endpoint.path, endpoint.auth
            ))
            .or_insert(0) += 1;
    }
    for (key, count) in &histogram {
        eprintln!("{count:5} {key}");
    }
    eprintln!(
        "{total} random requests in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "seed {seed}: {} of {total} answers broke the contract:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // The server is still whole: it answers, and a new user can register and log in.
    assert_eq!(app.get("/readyz").await.status().as_u16(), 200);
    app.user_with_tokens("afterwards").await;
}
