//! `GET /openapi.json`: the document covers exactly the routes the server registers
//! (`tessera::http::ROUTES`, the route table itself), is OpenAPI 3 in structure, describes
//! every error in the contract's shape, and passes openapi-spec-validator.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tessera::http::ROUTES;

use crate::helpers::*;
use crate::third_party::{python, run_script};

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    response.json().await.expect("the document is JSON")
}

/// Every (method, path, operation) of the document.
fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths is an object") {
        for (method, operation) in item.as_object().expect("a path item is an object") {
            if METHODS.contains(&method.as_str()) {
                found.push((method.clone(), path.clone(), operation));
            }
        }
    }
    found
}

/// Follows a local `$ref` (`#/components/...`).
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("non-local $ref {reference}"));
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
            resolve(doc, target)
        }
        None => value,
    }
}

fn is_error_response(doc: &Value, response: &Value) -> bool {
    resolve(doc, response)["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/ErrorBody"
}

#[tokio::test]
async fn the_document_lists_exactly_the_routes_the_server_serves() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| (method.to_string(), path.to_string()))
        .collect();
    assert_eq!(served.len(), ROUTES.len(), "a route is registered twice");
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && not_served.is_empty(),
        "served but not in /openapi.json: {undocumented:?}\n\
         in /openapi.json but not served: {not_served:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_is_routed_to_a_handler() {
    // The other direction at the HTTP level: a documented operation never falls through to
    // the 404 of unknown paths or the 405 of unserved methods.
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    for (method, path, _) in operations(&doc) {
        let concrete = path
            .replace("{id}", "no-such-id")
            .replace("{sid}", "no-such-sid")
            .replace("{kid}", "no-such-kid");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(
            !body.contains("no such endpoint"),
            "{method} {path} is documented but not routed"
        );
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_with_info_servers_schemas_and_responses() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "openapi: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "tessera");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["servers"][0]["url"], app.settings.issuer.as_str());
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    for name in [
        "ErrorBody",
        "TokenForm",
        "TokenResponse",
        "UserView",
        "Client",
    ] {
        assert!(schemas.contains_key(name), "schema {name} is missing");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["bearer"]["bearerFormat"], "JWT");
    assert_eq!(schemes["client_basic"]["scheme"], "basic");
    for (method, path, operation) in operations(&doc) {
        let responses = operation["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path} has no responses"));
        assert!(
            responses
                .keys()
                .any(|status| status.starts_with('2') || status.starts_with('3')),
            "{method} {path} has no success response"
        );
        assert!(
            operation["operationId"].is_string(),
            "{method} {path} has no operationId"
        );
    }
}

#[tokio::test]
async fn every_operation_describes_its_errors_with_the_error_schema() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    let error_body = resolve(&doc, &doc["components"]["schemas"]["ErrorBody"]);
    let required: BTreeSet<&str> = error_body["required"]
        .as_array()
        .expect("ErrorBody.required")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(required, BTreeSet::from(["error", "error_description"]));
    assert!(error_body["properties"]["mfa_token"].is_object());
    let codes = &resolve(&doc, &error_body["properties"]["error"])["enum"];
    for code in [
        "invalid_request",
        "invalid_token",
        "mfa_required",
        "server_error",
    ] {
        assert!(
            codes.as_array().unwrap().contains(&json!(code)),
            "{code} in {codes}"
        );
    }
    for (method, path, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.contains_key("default"),
            "{method} {path} has no default (error) response"
        );
        // The hosted pages answer errors as HTML pages (SPEC §6.2), and say so.
        let page = operation["tags"]
            .as_array()
            .is_some_and(|tags| tags.contains(&json!("pages")));
        for (status, response) in responses {
            if page && (status == "default" || status.starts_with('4') || status.starts_with('5')) {
                assert!(
                    resolve(&doc, response)["content"]["text/html"].is_object(),
                    "{method} {path} {status}: a page's error is an HTML page"
                );
                continue;
            }
            if status == "default" || status.starts_with('4') || status.starts_with('5') {
                assert!(
                    is_error_response(&doc, response),
                    "{method} {path} {status} is not described by ErrorBody"
                );
            }
        }
    }
}

#[tokio::test]
async fn bearer_operations_document_401_and_body_operations_document_400_413_and_415() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    for (method, path, operation) in operations(&doc) {
        let responses = &operation["responses"];
        let bearer = operation["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
        if bearer {
            assert!(responses.get("401").is_some(), "{method} {path}: 401");
        }
        if path.starts_with("/admin/") {
            assert!(bearer, "{method} {path} must require a bearer token");
            assert!(responses.get("403").is_some(), "{method} {path}: 403");
        }
        if let Some(body) = operation.get("requestBody") {
            for status in ["400", "413", "415"] {
                assert!(responses.get(status).is_some(), "{method} {path}: {status}");
            }
            assert!(
                body["content"].as_object().is_some_and(|c| !c.is_empty()),
                "{method} {path}: request body content"
            );
        }
    }
}

#[tokio::test]
async fn bearer_operations_answer_401_without_a_token_as_documented() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (method, path, operation) in operations(&doc) {
        let bearer_only = operation["security"]
            .as_array()
            .is_some_and(|s| !s.is_empty() && s.iter().all(|r| r.get("bearer").is_some()));
        if !bearer_only {
            continue;
        }
        let concrete = path
            .replace("{id}", "no-such-id")
            .replace("{sid}", "no-such-sid")
            .replace("{kid}", "no-such-kid");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().contains_key("www-authenticate"),
            "{method} {path}"
        );
        assert_error(response, 401, "invalid_token").await;
        checked += 1;
    }
    assert!(checked > 20, "only {checked} bearer operations");
}

#[tokio::test]
async fn the_token_endpoint_documents_every_grant_and_the_mfa_required_error() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    let token = &doc["paths"]["/oauth/token"]["post"];
    let body = &token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let form = resolve(&doc, body);
    let grant_types = &resolve(&doc, &form["properties"]["grant_type"])["enum"];
    for grant in [
        "password",
        "refresh_token",
        "client_credentials",
        "urn:tessera:params:oauth:grant-type:mfa-otp",
    ] {
        assert!(
            grant_types.as_array().unwrap().contains(&json!(grant)),
            "{grant} in {grant_types}"
        );
    }
    for field in ["username", "password", "refresh_token", "mfa_token", "otp"] {
        assert!(form["properties"][field].is_object(), "{field}");
    }
    for status in ["400", "401", "403", "429", "503"] {
        assert!(token["responses"].get(status).is_some(), "{status}");
    }
    let discovery = app
        .get("/.well-known/oauth-authorization-server")
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(
        grant_types.as_array().unwrap().len(),
        discovery["grant_types_supported"].as_array().unwrap().len(),
        "the documented grant types are the supported ones"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_spec_validator_accepts_the_document() {
    let Some(python) = python() else { return };
    let app = spawn_app(Backend::Sqlite).await;
    let text = app.get("/openapi.json").await.text().await.unwrap();
    let file = app.dir.path().join("openapi.json");
    std::fs::write(&file, text).unwrap();
    run_script(
        &python,
        "validate_openapi.py",
        &[("OPENAPI_FILE", file.to_str().unwrap())],
    )
    .await;
}

/// The properties and required keys of an object schema, `allOf` parts merged.
fn object_shape<'a>(
    doc: &'a Value,
    schema: &'a Value,
) -> (Vec<(&'a str, &'a Value)>, Vec<&'a str>) {
    let schema = resolve(doc, schema);
    let mut properties = Vec::new();
    let mut required = Vec::new();
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            let (p, r) = object_shape(doc, part);
            properties.extend(p);
            required.extend(r);
        }
    }
    if let Some(map) = schema["properties"].as_object() {
        properties.extend(map.iter().map(|(k, v)| (k.as_str(), v)));
    }
    if let Some(list) = schema["required"].as_array() {
        required.extend(list.iter().filter_map(Value::as_str));
    }
    (properties, required)
}

/// Checks that `value` has the keys `schema` requires and no key it does not describe,
/// down through nested objects and arrays.
fn assert_conforms(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    match value {
        Value::Object(map) => {
            let (properties, required) = object_shape(doc, schema);
            if properties.is_empty() {
                return; // a free-form object (custom attributes, audit details)
            }
            for key in &required {
                assert!(
                    map.contains_key(*key),
                    "{at}: `{key}` is required but absent"
                );
            }
            for (key, item) in map {
                let property = properties
                    .iter()
                    .find(|(name, _)| name == key)
                    .unwrap_or_else(|| panic!("{at}: `{key}` is not in the schema"));
                assert_conforms(doc, property.1, item, &format!("{at}.{key}"));
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_conforms(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

/// The schema of `method path`'s `status` JSON response.
fn response_schema<'a>(doc: &'a Value, method: &str, path: &str, status: &str) -> &'a Value {
    let response = resolve(doc, &doc["paths"][path][method]["responses"][status]);
    let schema = &response["content"]["application/json"]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} {status} has no JSON schema"
    );
    schema
}

#[tokio::test]
async fn answers_have_the_documented_shapes() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    let check = |method: &str, path: &str, status: &str, body: &Value| {
        let schema = response_schema(&doc, method, path, status);
        assert_conforms(&doc, schema, body, &format!("{method} {path} {status}"));
    };
    let get_json = |path: &'static str, token: Option<String>| {
        let app = &app;
        async move {
            let request = app.client.get(app.url(path));
            let request = match token {
                Some(token) => request.bearer_auth(token),
                None => request,
            };
            request.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };

    check("get", "/healthz", "200", &get_json("/healthz", None).await);
    check("get", "/readyz", "200", &get_json("/readyz", None).await);
    let discovery = get_json("/.well-known/openid-configuration", None).await;
    check(
        "get",
        "/.well-known/openid-configuration",
        "200",
        &discovery,
    );
    let jwks = get_json("/.well-known/jwks.json", None).await;
    check("get", "/.well-known/jwks.json", "200", &jwks);

    let registered = app
        .post_json(
            "/register",
            &json!({ "username": "dora", "password": PASSWORD }),
        )
        .await;
    assert_eq!(registered.status(), StatusCode::CREATED);
    check(
        "post",
        "/register",
        "201",
        &registered.json().await.unwrap(),
    );
    let taken = app
        .post_json(
            "/register",
            &json!({ "username": "dora", "password": PASSWORD }),
        )
        .await;
    check("post", "/register", "409", &taken.json().await.unwrap());

    let login = app.login("dora", PASSWORD).await;
    check("post", "/oauth/token", "200", &login.body);
    let token = Some(login.access_token.clone());
    check(
        "get",
        "/userinfo",
        "200",
        &get_json("/userinfo", token.clone()).await,
    );
    let sessions = get_json("/account/sessions", token).await;
    check("get", "/account/sessions", "200", &sessions);

    let secret = app.confidential_client("inspector");
    let introspection = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth("inspector", Some(&secret))
        .form(&[("token", login.access_token.as_str())])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(introspection["active"], true);
    check("post", "/oauth/introspect", "200", &introspection);

    app.create_user("root", &["admin"]);
    let admin = app.login("root", PASSWORD).await;
    let admin_token = Some(admin.access_token.clone());
    for path in [
        "/admin/users",
        "/admin/clients",
        "/admin/keys",
        "/admin/audit",
    ] {
        let page = get_json(path, admin_token.clone()).await;
        assert!(
            page["items"].as_array().is_some_and(|i| !i.is_empty()),
            "{path}: {page}"
        );
        check("get", path, "200", &page);
    }

    let unauthorized = app.get("/userinfo").await;
    check(
        "get",
        "/userinfo",
        "401",
        &unauthorized.json().await.unwrap(),
    );
}

#[tokio::test]
async fn a_jwks_with_every_algorithm_has_the_documented_shape() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.signing_algs = tessera::tokens::algs::SigningAlg::ALL.to_vec()
    })
    .await;
    let doc = document(&app).await;
    let jwks: Value = app
        .get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap();
    let types: BTreeSet<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|key| key["kty"].as_str())
        .collect();
    assert_eq!(types, BTreeSet::from(["EC", "OKP", "RSA"]));
    let schema = response_schema(&doc, "get", "/.well-known/jwks.json", "200");
    assert_conforms(&doc, schema, &jwks, "get /.well-known/jwks.json 200");
}

#[tokio::test]
async fn every_admin_operation_documents_the_shared_admin_answers() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc = document(&app).await;
    let admin: Vec<_> = operations(&doc)
        .into_iter()
        .filter(|(_, path, _)| path.starts_with("/admin"))
        .collect();
    assert!(admin.len() >= 19, "{} admin operations", admin.len());
    for (method, path, operation) in admin {
        for status in ["401", "403", "503", "default"] {
            let response = resolve(&doc, &operation["responses"][status]);
            assert!(
                is_error_response(&doc, response),
                "{method} {path} does not document {status} in the error shape"
            );
        }
    }
}
