//! ES256 and EdDSA beside RS256 (SPEC §6.6): `TESSERA_SIGNING_ALGS`, clients' `token_alg`,
//! one key lifecycle per algorithm, and each `kid` bound to its one algorithm.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use reqwest::Method;
use serde_json::{json, Value};
use tessera::tokens::algs::SigningAlg;
use tessera::tokens::keyring::seal_context;

use crate::admin::{admin, call, ok};
use crate::helpers::*;

/// Test settings with every algorithm configured.
pub fn all_algs(settings: &mut tessera::config::Settings) {
    settings.signing_algs = SigningAlg::ALL.to_vec();
}

/// Creates a client through the admin API; returns its secret (null for a public one).
pub async fn create_client(app: &TestApp, token: &str, body: Value) -> Value {
    let response = call(
        app,
        Method::POST,
        "/admin/clients",
        Some(token),
        Some(&body),
    )
    .await;
    assert_eq!(response.status().as_u16(), 201, "creating {body}");
    response.json().await.unwrap()
}

/// A confidential client_credentials client signed with `alg`; returns its secret.
pub async fn machine_client(app: &TestApp, token: &str, client_id: &str, alg: &str) -> String {
    let created = create_client(
        app,
        token,
        json!({"client_id": client_id, "grant_types": ["client_credentials"],
               "scopes": ["read"], "token_alg": alg}),
    )
    .await;
    assert_eq!(created["token_alg"], alg);
    created["client_secret"].as_str().unwrap().to_string()
}

pub async fn client_credentials(app: &TestApp, client_id: &str, secret: &str) -> Tokens {
    let response = app
        .token(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .await;
    assert_eq!(response.status().as_u16(), 200);
    tokens(response).await
}

pub async fn jwks(app: &TestApp) -> Value {
    app.get("/.well-known/jwks.json")
        .await
        .json()
        .await
        .unwrap()
}

/// Verifies `token` with Rust's `jsonwebtoken` against the JWK the JWKS publishes for its
/// `kid`, accepting only `alg`, as a Rust resource server would.
pub fn verify_with_jsonwebtoken(
    jwks: &Value,
    token: &str,
    alg: jsonwebtoken::Algorithm,
    aud: &str,
    iss: &str,
) -> Value {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
    let jwk = set.find(&kid).expect("the kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(alg);
    validation.set_audience(&[aud]);
    validation.set_issuer(&[iss]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("jsonwebtoken refused a {alg:?} token: {e}"))
        .claims
}

/// The stored private key (PKCS#8) and algorithm of `kid`, opened with the master key: what
/// an attacker who had it could sign with.
fn private_key(app: &TestApp, kid: &str) -> (String, Vec<u8>) {
    let mut conn = app.state.db.get().unwrap();
    let row = tessera::store::signing_keys::list(&mut conn)
        .unwrap()
        .into_iter()
        .find(|r| r.kid == kid)
        .expect("a stored key");
    let der = app
        .state
        .master_key
        .open(&seal_context(kid), &row.private_sealed)
        .unwrap();
    (row.alg, der)
}

/// A compact JWS of `header` and `claims` signed with the private key of `signing_kid`,
/// whatever the header says.
fn forge(app: &TestApp, header: &Value, claims: &Value, signing_kid: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let (alg, der) = private_key(app, signing_kid);
    let rng = SystemRandom::new();
    let signature = match alg.as_str() {
        "RS256" => {
            let key = RsaKeyPair::from_pkcs8(&der).unwrap();
            let mut sig = vec![0; key.public_modulus_len()];
            key.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut sig)
                .unwrap();
            sig
        }
        "ES256" => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der)
            .unwrap()
            .sign(&rng, input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec(),
        "EdDSA" => Ed25519KeyPair::from_pkcs8(&der)
            .unwrap()
            .sign(input.as_bytes())
            .as_ref()
            .to_vec(),
        other => panic!("unexpected alg {other}"),
    };
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

async fn userinfo_status(app: &TestApp, token: &str) -> u16 {
    app.get_bearer("/userinfo", token).await.status().as_u16()
}

async fn introspect(app: &TestApp, client_id: &str, secret: &str, token: &str) -> Value {
    let response = app
        .client
        .post(app.url("/oauth/introspect"))
        .basic_auth(client_id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    response.json().await.unwrap()
}

fn kid_of(jwks: &Value, alg: &str) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// `GET /admin/keys` entries of `alg` with `status`.
async fn keys_with(app: &TestApp, token: &str, alg: &str, status: &str) -> Vec<String> {
    let keys = ok(app, Method::GET, "/admin/keys", token, None).await;
    keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg && k["status"] == status)
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

both_backends! {
    async fn es256_and_eddsa_clients_get_tokens_that_verify_from_the_jwks(backend) {
        let app = spawn_app_with(backend, all_algs).await;
        let root = admin(&app).await;
        assert_eq!(header(&root.token)["alg"], "RS256", "the built-in client stays on RS256");

        let document: Value = app.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(document["id_token_signing_alg_values_supported"], json!(["RS256", "ES256", "EdDSA"]));

        let keys = jwks(&app).await;
        for key in keys["keys"].as_array().unwrap() {
            assert_eq!(key["use"], "sig");
            assert!(key["kid"].is_string());
            match key["alg"].as_str().unwrap() {
                "RS256" => {
                    assert_eq!(key["kty"], "RSA");
                    assert!(key["n"].is_string() && key["e"].is_string());
                }
                "ES256" => {
                    assert_eq!(key["kty"], "EC");
                    assert_eq!(key["crv"], "P-256");
                    for part in ["x", "y"] {
                        let bytes = URL_SAFE_NO_PAD.decode(key[part].as_str().unwrap()).unwrap();
                        assert_eq!(bytes.len(), 32, "{part} of {key}");
                    }
                    assert!(key.get("n").is_none() && key.get("d").is_none(), "{key}");
                }
                "EdDSA" => {
                    assert_eq!(key["kty"], "OKP");
                    assert_eq!(key["crv"], "Ed25519");
                    assert_eq!(URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap().len(), 32);
                    assert!(key.get("y").is_none() && key.get("d").is_none(), "{key}");
                }
                other => panic!("unexpected alg {other}"),
            }
        }
        let algs: Vec<&str> = keys["keys"].as_array().unwrap().iter().map(|k| k["alg"].as_str().unwrap()).collect();
        assert_eq!(algs, ["RS256", "RS256", "ES256", "ES256", "EdDSA", "EdDSA"], "RS256 keys come first");
        // An active and a staged key per algorithm.
        for alg in ["RS256", "ES256", "EdDSA"] {
            assert_eq!(kid_of(&keys, alg).len(), 2, "{alg} keys in {keys}");
        }

        for (client_id, alg, jwt_alg) in [
            ("ec-service", "ES256", jsonwebtoken::Algorithm::ES256),
            ("ed-service", "EdDSA", jsonwebtoken::Algorithm::EdDSA),
        ] {
            let secret = machine_client(&app, &root.token, client_id, alg).await;
            let issued = client_credentials(&app, client_id, &secret).await;
            let head = header(&issued.access_token);
            assert_eq!(head["alg"], alg);
            assert_eq!(head["typ"], "at+jwt");
            let kid = head["kid"].as_str().unwrap();
            assert_eq!(app.state.keys.active_kid_for(alg.parse().unwrap()).as_deref(), Some(kid));
            assert!(kid_of(&keys, alg).contains(&kid.to_string()));
            let claims = verify_with_jsonwebtoken(&keys, &issued.access_token, jwt_alg, &app.settings.audience, &app.settings.issuer);
            assert_eq!(claims["sub"], client_id);
            // The same token under another algorithm's rules is refused by jsonwebtoken too.
            let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(keys.clone()).unwrap();
            let key = jsonwebtoken::DecodingKey::from_jwk(set.find(kid).unwrap()).unwrap();
            assert!(jsonwebtoken::decode::<Value>(&issued.access_token, &key, &jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256)).is_err());
            // tessera's own verification accepts it.
            let introspected = introspect(&app, client_id, &secret, &issued.access_token).await;
            assert_eq!(introspected["active"], true, "{introspected}");
            assert_eq!(introspected["client_id"], client_id);
        }
        // An RS256 client is unchanged, and a client without token_alg is RS256.
        let secret = machine_client(&app, &root.token, "rsa-service", "RS256").await;
        assert_eq!(header(&client_credentials(&app, "rsa-service", &secret).await.access_token)["alg"], "RS256");
        let created = create_client(&app, &root.token, json!({"client_id": "plain", "grant_types": ["client_credentials"]})).await;
        assert_eq!(created["token_alg"], Value::Null);
        let plain = client_credentials(&app, "plain", created["client_secret"].as_str().unwrap()).await;
        assert_eq!(header(&plain.access_token)["alg"], "RS256");
    }

    async fn an_es256_clients_user_tokens_refresh_and_work_on_tesseras_own_endpoints(backend) {
        let app = spawn_app_with(backend, all_algs).await;
        let root = admin(&app).await;
        create_client(&app, &root.token, json!({
            "client_id": "ec-app", "public": true,
            "grant_types": ["password", "refresh_token"], "token_alg": "ES256",
        })).await;
        let introspector = machine_client(&app, &root.token, "introspector", "EdDSA").await;
        app.create_user("erin", &[]);
        let response = app.token(&[
            ("grant_type", "password"), ("username", "erin"), ("password", PASSWORD), ("client_id", "ec-app"),
        ]).await;
        assert_eq!(response.status().as_u16(), 200);
        let login = tokens(response).await;
        let refresh_token = login.refresh_token.clone().unwrap();
        assert_eq!(header(&login.access_token)["alg"], "ES256");
        assert_eq!(header(&refresh_token)["alg"], "ES256");
        assert_eq!(header(&refresh_token)["typ"], "refresh+jwt");
        assert_eq!(userinfo_status(&app, &login.access_token).await, 200);
        // A refresh token is still not an access token, whatever its algorithm.
        assert_eq!(userinfo_status(&app, &refresh_token).await, 401);

        let refreshed = tokens(app.token(&[
            ("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", "ec-app"),
        ]).await).await;
        assert_eq!(header(&refreshed.access_token)["alg"], "ES256");
        assert_eq!(header(refreshed.refresh_token.as_deref().unwrap())["alg"], "ES256");
        let keys = jwks(&app).await;
        let claims = verify_with_jsonwebtoken(&keys, &refreshed.access_token, jsonwebtoken::Algorithm::ES256, &app.settings.audience, &app.settings.issuer);
        assert_eq!(claims["username"], "erin");
        assert_eq!(claims["fresh"], false);
        let introspected = introspect(&app, "introspector", &introspector, refreshed.refresh_token.as_deref().unwrap()).await;
        assert_eq!(introspected["active"], true, "{introspected}");
        // The spent one is reuse, as with RS256.
        let reused = app.token(&[
            ("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("client_id", "ec-app"),
        ]).await;
        assert_error(reused, 400, "invalid_grant").await;
    }

    async fn each_kid_is_bound_to_its_one_algorithm(backend) {
        let app = spawn_app_with(backend, all_algs).await;
        let root = admin(&app).await;
        let rs_kid = app.state.keys.active_kid_for(SigningAlg::Rs256).unwrap();
        let es_kid = app.state.keys.active_kid_for(SigningAlg::Es256).unwrap();
        let ed_kid = app.state.keys.active_kid_for(SigningAlg::EdDsa).unwrap();
        let mut claims = claims(&root.token);
        claims["jti"] = json!(uuid::Uuid::new_v4().to_string());
        let header_for = |alg: &str, kid: &str| json!({"alg": alg, "typ": "at+jwt", "kid": kid});

        // Controls: each key signing under its own algorithm is accepted, so what follows is
        // refused for the label alone.
        for (alg, kid) in [("RS256", &rs_kid), ("ES256", &es_kid), ("EdDSA", &ed_kid)] {
            let token = forge(&app, &header_for(alg, kid), &claims, kid);
            assert_eq!(userinfo_status(&app, &token).await, 200, "{alg} under its own kid");
        }
        for (label, kid, signer) in [
            // An RS256 kid re-labelled ES256, signed with tessera's own ES256 key.
            ("ES256", &rs_kid, &es_kid),
            // An ES256 kid re-labelled RS256, signed with tessera's own RSA key.
            ("RS256", &es_kid, &rs_kid),
            ("EdDSA", &es_kid, &ed_kid),
            ("ES256", &ed_kid, &es_kid),
            ("EdDSA", &rs_kid, &ed_kid),
            // Label and key agree, but the kid belongs to another key.
            ("RS256", &ed_kid, &rs_kid),
        ] {
            let token = forge(&app, &header_for(label, kid), &claims, signer);
            let response = app.get_bearer("/userinfo", &token).await;
            let body = assert_error(response, 401, "invalid_token").await;
            assert!(body["error_description"].is_string());
        }
        // `none` and HMAC (with the public key as the secret) stay refused.
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let none = format!("{}.{payload}.", URL_SAFE_NO_PAD.encode(header_for("none", &es_kid).to_string()));
        assert_eq!(userinfo_status(&app, &none).await, 401);
        let keys = jwks(&app).await;
        let es_jwk = keys["keys"].as_array().unwrap().iter().find(|k| k["kid"] == es_kid.as_str()).unwrap();
        let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header_for("HS256", &es_kid).to_string()));
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, es_jwk.to_string().as_bytes()),
            input.as_bytes(),
        );
        let hmac = format!("{input}.{}", URL_SAFE_NO_PAD.encode(mac.as_ref()));
        assert_eq!(userinfo_status(&app, &hmac).await, 401);
    }

    async fn keys_rotate_and_retire_per_algorithm(backend) {
        let app = spawn_app_with(backend, all_algs).await;
        let root = admin(&app).await;
        let before: Vec<String> = SigningAlg::ALL.iter().map(|a| app.state.keys.active_kid_for(*a).unwrap()).collect();
        for alg in ["RS256", "ES256", "EdDSA"] {
            assert_eq!(keys_with(&app, &root.token, alg, "active").await.len(), 1, "{alg}");
            assert_eq!(keys_with(&app, &root.token, alg, "staged").await.len(), 1, "{alg}");
        }
        let secret = machine_client(&app, &root.token, "ec-service", "ES256").await;
        let old_es_token = client_credentials(&app, "ec-service", &secret).await.access_token;

        // One algorithm: only its active key changes; the staged one takes over.
        let staged_es = keys_with(&app, &root.token, "ES256", "staged").await;
        let rotated = ok(&app, Method::POST, "/admin/keys/rotate?alg=ES256", &root.token, None).await;
        assert_eq!(rotated["active_kid"], staged_es[0].as_str());
        assert_eq!(rotated["active_kids"], json!({"ES256": staged_es[0]}));
        assert_eq!(app.state.keys.active_kid_for(SigningAlg::Es256), Some(staged_es[0].clone()));
        assert_eq!(app.state.keys.active_kid_for(SigningAlg::Rs256), Some(before[0].clone()));
        assert_eq!(app.state.keys.active_kid_for(SigningAlg::EdDsa), Some(before[2].clone()));
        assert_eq!(keys_with(&app, &root.token, "ES256", "previous").await, vec![before[1].clone()]);
        let new_es_token = client_credentials(&app, "ec-service", &secret).await.access_token;
        assert_eq!(header(&new_es_token)["kid"], staged_es[0].as_str());
        // The previous key still verifies what it signed.
        assert_eq!(introspect(&app, "ec-service", &secret, &old_es_token).await["active"], true);
        assert!(app.jwks_kids().await.contains(&before[1]));

        // Unknown or unconfigured algorithms are refused.
        for bad in ["HS256", "none", "es256", "ES384"] {
            let response = call(&app, Method::POST, &format!("/admin/keys/rotate?alg={bad}"), Some(&root.token), None).await;
            assert_error(response, 400, "invalid_request").await;
        }

        // Every algorithm at once.
        let rotated = ok(&app, Method::POST, "/admin/keys/rotate", &root.token, None).await;
        let active_kids = rotated["active_kids"].as_object().unwrap();
        assert_eq!(active_kids.len(), 3);
        for alg in SigningAlg::ALL {
            let kid = app.state.keys.active_kid_for(alg).unwrap();
            assert_eq!(active_kids[alg.as_str()], kid.as_str());
            assert_eq!(keys_with(&app, &root.token, alg.as_str(), "active").await, vec![kid]);
            assert_eq!(keys_with(&app, &root.token, alg.as_str(), "staged").await.len(), 1);
        }
        assert_eq!(rotated["active_kid"], app.state.keys.active_kid().unwrap().as_str());
        for item in rotated["items"].as_array().unwrap() {
            assert!(["RS256", "ES256", "EdDSA"].contains(&item["alg"].as_str().unwrap()), "{item}");
        }

        // Retiring the active EdDSA key rotates EdDSA alone and drops the key at once.
        let ed_secret = machine_client(&app, &root.token, "ed-service", "EdDSA").await;
        let ed_token = client_credentials(&app, "ed-service", &ed_secret).await.access_token;
        let ed_kid = app.state.keys.active_kid_for(SigningAlg::EdDsa).unwrap();
        let rs_kid = app.state.keys.active_kid_for(SigningAlg::Rs256).unwrap();
        let es_kid = app.state.keys.active_kid_for(SigningAlg::Es256).unwrap();
        let response = call(&app, Method::DELETE, &format!("/admin/keys/{ed_kid}"), Some(&root.token), None).await;
        assert_eq!(response.status().as_u16(), 204);
        assert!(!app.jwks_kids().await.contains(&ed_kid));
        let new_ed = app.state.keys.active_kid_for(SigningAlg::EdDsa).unwrap();
        assert_ne!(new_ed, ed_kid);
        assert_eq!(app.state.keys.active_kid_for(SigningAlg::Rs256), Some(rs_kid));
        assert_eq!(app.state.keys.active_kid_for(SigningAlg::Es256), Some(es_kid));
        assert_eq!(keys_with(&app, &root.token, "EdDSA", "retired").await, vec![ed_kid]);
        assert_eq!(keys_with(&app, &root.token, "EdDSA", "staged").await.len(), 1);
        assert_eq!(introspect(&app, "ed-service", &ed_secret, &ed_token).await["active"], false);
        assert_eq!(header(&client_credentials(&app, "ed-service", &ed_secret).await.access_token)["kid"], new_ed.as_str());
    }

    async fn a_token_alg_that_is_not_configured_is_refused(backend) {
        let app = spawn_app(backend).await;
        let root = admin(&app).await;
        for alg in [json!("ES256"), json!("EdDSA"), json!("HS256"), json!("none"), json!("rs256"), json!(7)] {
            let response = call(&app, Method::POST, "/admin/clients", Some(&root.token), Some(&json!({
                "client_id": "svc", "grant_types": ["client_credentials"], "token_alg": alg,
            }))).await;
            assert_error(response, 400, "invalid_request").await;
        }
        let clients = ok(&app, Method::GET, "/admin/clients", &root.token, None).await;
        let listed: Vec<&Value> = clients["items"].as_array().unwrap().iter().collect();
        assert!(listed.iter().all(|c| c["client_id"] == "console"), "nothing was created: {clients}");
        for alg in ["ES256", "EdDSA"] {
            let response = call(&app, Method::POST, &format!("/admin/keys/rotate?alg={alg}"), Some(&root.token), None).await;
            assert_error(response, 400, "invalid_request").await;
        }
        let document: Value = app.get("/.well-known/oauth-authorization-server").await.json().await.unwrap();
        assert_eq!(document["id_token_signing_alg_values_supported"], json!(["RS256"]));
        let keys = jwks(&app).await;
        assert!(keys["keys"].as_array().unwrap().iter().all(|k| k["alg"] == "RS256" && k["kty"] == "RSA"));
    }

    async fn a_dropped_algorithm_stops_signing_but_its_keys_verify_until_their_tokens_expire(backend) {
        let first = spawn_app_with(backend, all_algs).await;
        let root = admin(&first).await;
        let secret = machine_client(&first, &root.token, "ec-service", "ES256").await;
        let es_token = client_credentials(&first, "ec-service", &secret).await.access_token;
        let es_kid = first.state.keys.active_kid_for(SigningAlg::Es256).unwrap();

        // The same database restarted with RS256 and EdDSA only.
        let mut settings = first.settings.clone();
        settings.signing_algs = vec![SigningAlg::Rs256, SigningAlg::EdDsa];
        let second = start(settings, first.dir.clone()).await;
        assert_eq!(second.state.keys.active_kid_for(SigningAlg::Es256), None);
        let keys = jwks(&second).await;
        assert_eq!(kid_of(&keys, "ES256"), vec![es_kid.clone()], "the active key stays published, the staged one goes");
        assert_eq!(keys_with(&second, &root.token, "ES256", "previous").await, vec![es_kid.clone()]);
        let listed = ok(&second, Method::GET, "/admin/keys", &root.token, None).await;
        let entry = listed["items"].as_array().unwrap().iter().find(|k| k["kid"] == es_kid.as_str()).unwrap().clone();
        assert!(entry["published_until"].is_string(), "{entry}");
        // Its token still verifies, everywhere tessera checks one.
        assert_eq!(introspect(&second, "ec-service", &secret, &es_token).await["active"], true);
        verify_with_jsonwebtoken(&keys, &es_token, jsonwebtoken::Algorithm::ES256, &second.settings.audience, &second.settings.issuer);
        // The client is signed for with RS256 now.
        let now_signed = client_credentials(&second, "ec-service", &secret).await.access_token;
        assert_eq!(header(&now_signed)["alg"], "RS256");
        let document: Value = second.get("/.well-known/openid-configuration").await.json().await.unwrap();
        assert_eq!(document["id_token_signing_alg_values_supported"], json!(["RS256", "EdDSA"]));
        // No ES256 rotation is offered any more.
        let response = call(&second, Method::POST, "/admin/keys/rotate?alg=ES256", Some(&root.token), None).await;
        assert_error(response, 400, "invalid_request").await;
        assert_eq!(second.get("/readyz").await.status().as_u16(), 200);

        // Once its last token has expired the key leaves the JWKS.
        let max_lifetime_ms = second.state.key_policy.max_token_lifetime_ms;
        let later = tessera::tokens::now_ms() + max_lifetime_ms + 31_000;
        let mut conn = second.state.db.get().unwrap();
        let rows = tessera::store::signing_keys::list(&mut conn).unwrap();
        let infos = tessera::tokens::keyring::classify(&rows, later, max_lifetime_ms);
        let info = infos.iter().find(|i| i.kid == es_kid).unwrap();
        assert_eq!(info.status, tessera::tokens::keyring::KeyStatus::Expired);
        // Configured again, ES256 gets a fresh lifecycle.
        let mut settings = second.settings.clone();
        settings.signing_algs = SigningAlg::ALL.to_vec();
        let third = start(settings, first.dir.clone()).await;
        let new_es = third.state.keys.active_kid_for(SigningAlg::Es256).unwrap();
        assert_ne!(new_es, es_kid);
        assert_eq!(header(&client_credentials(&third, "ec-service", &secret).await.access_token)["kid"], new_es.as_str());
    }
}

/// Node to run `tests/node/` scripts with, once `npm install` has run there; `None` (skip)
/// otherwise, unless `TESSERA_REQUIRE_NODE=1` says CI must run them.
fn node() -> Option<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let installed = root
        .join("tests/node/node_modules/jose/package.json")
        .exists();
    let node = std::env::var("TESSERA_TEST_NODE").unwrap_or_else(|_| "node".into());
    let runs = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if installed && runs {
        return Some(node.into());
    }
    if std::env::var("TESSERA_REQUIRE_NODE").is_ok_and(|v| v == "1") {
        panic!(
            "TESSERA_REQUIRE_NODE=1 but node or tests/node/node_modules (npm install) is missing"
        );
    }
    eprintln!("skipped: node or tests/node/node_modules is missing");
    None
}

/// A reachable tessera with every algorithm and one client_credentials token per algorithm.
async fn tokens_per_alg() -> (crate::reachable::Reachable, [(&'static str, String); 3]) {
    let tessera = crate::reachable::spawn_reachable(Backend::Sqlite, all_algs).await;
    let app = &tessera.app;
    let root = admin(app).await;
    let mut out = Vec::new();
    for (name, alg) in [
        ("ES256_TOKEN", "ES256"),
        ("EDDSA_TOKEN", "EdDSA"),
        ("RS256_TOKEN", "RS256"),
    ] {
        let client_id = format!("svc-{}", alg.to_lowercase());
        let secret = machine_client(app, &root.token, &client_id, alg).await;
        out.push((
            name,
            client_credentials(app, &client_id, &secret)
                .await
                .access_token,
        ));
    }
    let tokens: [(&'static str, String); 3] = out.try_into().unwrap();
    (tessera, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyjwt_and_jwcrypto_verify_es256_and_eddsa_tokens_from_the_jwks() {
    let Some(python) = crate::third_party::python() else {
        return;
    };
    let (tessera, tokens) = tokens_per_alg().await;
    let mut env: Vec<(&str, &str)> = tokens.iter().map(|(n, t)| (*n, t.as_str())).collect();
    env.push(("TESSERA_ISSUER", &tessera.app.address));
    crate::third_party::run_script(&python, "verify_algs.py", &env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_jose_verifies_es256_and_eddsa_tokens_from_the_jwks() {
    let Some(node) = node() else { return };
    let (tessera, tokens) = tokens_per_alg().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut command = tokio::process::Command::new(node);
    command
        .arg("verify_algs.mjs")
        .current_dir(root.join("tests/node"))
        .env("TESSERA_ISSUER", &tessera.app.address)
        .kill_on_drop(true);
    for (name, token) in &tokens {
        command.env(name, token);
    }
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), command.output())
        .await
        .expect("verify_algs.mjs did not finish")
        .expect("running node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "verify_algs.mjs failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("9 checks passed"), "{stdout}\n{stderr}");
}
