//! Property tests of the library's input-facing functions: token verification on arbitrary
//! and mutated tokens, the configuration parsers, and the username and password rules never
//! panic, and verification never accepts what tessera did not sign.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use proptest::prelude::*;
use tessera::state::AppState;
use tessera::tokens::claims::{AccessClaims, RefreshClaims};
use tessera::tokens::keyring::TokenKind;

use crate::helpers::*;

const ISSUER: &str = "http://tessera.test";

/// One key ring for every case, on a SQLite database of its own.
fn state() -> &'static AppState {
    static STATE: OnceLock<(AppState, tempfile::TempDir)> = OnceLock::new();
    &STATE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let settings =
                test_settings(tessera::store::DatabaseUrl::Sqlite(dir.path().join("t.db")));
            (AppState::open(settings).expect("opening tessera"), dir)
        })
        .0
}

/// A real access token and a real refresh token, signed by the ring.
fn real_tokens() -> &'static (String, String) {
    static TOKENS: OnceLock<(String, String)> = OnceLock::new();
    TOKENS.get_or_init(|| {
        let now = tessera::now();
        let access = AccessClaims {
            iss: ISSUER.into(),
            sub: "9a1c2d7e-0000-4000-8000-000000000001".into(),
            aud: ISSUER.into(),
            exp: now + 900,
            iat: now,
            nbf: now,
            jti: "jti-1".into(),
            client_id: "first-party".into(),
            scope: "profile email".into(),
            roles: vec!["admin".into()],
            sid: Some("sid-1".into()),
            auth_time: Some(now),
            amr: Some(vec!["pwd".into()]),
            username: Some("alice".into()),
            attributes: None,
            token_type: "access".into(),
            fresh: true,
        };
        let refresh = RefreshClaims {
            iss: ISSUER.into(),
            sub: access.sub.clone(),
            aud: ISSUER.into(),
            iat: now,
            exp: now + 3600,
            jti: "jti-2".into(),
            sid: "sid-1".into(),
            client_id: "first-party".into(),
            token_type: "refresh".into(),
        };
        let keys = &state().keys;
        (
            keys.sign(TokenKind::Access, None, &access).unwrap(),
            keys.sign(TokenKind::Refresh, None, &refresh).unwrap(),
        )
    })
}

fn accepts(token: &str) -> bool {
    let keys = &state().keys;
    keys.verify::<AccessClaims>(token, TokenKind::Access, None)
        .is_ok()
        || keys
            .verify::<AccessClaims>(token, TokenKind::Access, Some(ISSUER))
            .is_ok()
        || keys
            .verify::<RefreshClaims>(token, TokenKind::Refresh, Some(ISSUER))
            .is_ok()
        || keys
            .verify::<serde_json::Value>(token, TokenKind::Access, None)
            .is_ok()
}

/// The decoded header, payload and signature of a compact JWS, if it is one.
fn decoded_parts(token: &str) -> Option<Vec<Vec<u8>>> {
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 {
        return None;
    }
    parts
        .iter()
        .map(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn base64url_segment() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..400).prop_map(|bytes| b64(&bytes))
}

/// Headers an attacker would try: other algorithms, `none`, a known kid, wrong `typ`.
fn hostile_header() -> impl Strategy<Value = String> {
    let kid = state().keys.active_kid().unwrap();
    (
        prop::sample::select(vec![
            "RS256", "none", "None", "HS256", "HS512", "ES256", "PS256", "RS512", "EdDSA", "",
        ]),
        prop::sample::select(vec![
            "at+jwt",
            "refresh+jwt",
            "JWT",
            "",
            "AT+JWT",
            "at+jwt\u{0}",
        ]),
        prop::option::of(prop::sample::select(vec![
            kid,
            "unknown".to_string(),
            "../../etc/passwd".to_string(),
            String::new(),
        ])),
    )
        .prop_map(|(alg, typ, kid)| {
            let mut header = serde_json::json!({ "alg": alg, "typ": typ });
            if let Some(kid) = kid {
                header["kid"] = serde_json::json!(kid);
            }
            b64(header.to_string().as_bytes())
        })
}

/// A change to a real token: flip, replace, insert or remove a character, or swap one of its
/// segments for another.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, char),
    Insert(usize, char),
    Remove(usize),
    Truncate(usize),
    FlipBit(usize, u8),
    Segment(usize, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let any_char = prop_oneof![
        prop::sample::select(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ "
                .chars()
                .collect::<Vec<_>>()
        ),
        any::<char>(),
    ];
    prop_oneof![
        (any::<usize>(), any_char.clone()).prop_map(|(i, c)| Mutation::Replace(i, c)),
        (any::<usize>(), any_char).prop_map(|(i, c)| Mutation::Insert(i, c)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        (
            0usize..3,
            prop_oneof![base64url_segment(), hostile_header()]
        )
            .prop_map(|(i, s)| Mutation::Segment(i, s)),
    ]
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let n = chars.len();
    if n == 0 && !matches!(mutation, Mutation::Insert(..) | Mutation::Segment(..)) {
        return token.to_string();
    }
    match mutation {
        Mutation::Replace(i, c) => chars[i % n] = *c,
        Mutation::Insert(i, c) => chars.insert(i % (n + 1), *c),
        Mutation::Remove(i) => {
            chars.remove(i % n);
        }
        Mutation::Truncate(i) => chars.truncate(i % n),
        Mutation::FlipBit(i, bit) => {
            let i = i % n;
            let flipped = (chars[i] as u32) ^ (1 << bit);
            chars[i] = char::from_u32(flipped).unwrap_or('\u{fffd}');
        }
        Mutation::Segment(i, segment) => {
            let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
            let i = (*i).min(parts.len() - 1);
            parts[i] = segment.clone();
            return parts.join(".");
        }
    }
    chars.into_iter().collect()
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 300,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

#[test]
fn the_real_tokens_verify_so_the_properties_below_are_not_vacuous() {
    let (access, refresh) = real_tokens();
    let keys = &state().keys;
    assert!(keys
        .verify::<AccessClaims>(access, TokenKind::Access, Some(ISSUER))
        .is_ok());
    assert!(keys
        .verify::<RefreshClaims>(refresh, TokenKind::Refresh, Some(ISSUER))
        .is_ok());
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn verification_never_panics_or_accepts_arbitrary_strings(token in any::<String>()) {
        prop_assert!(!accepts(&token));
    }

    #[test]
    fn verification_never_accepts_arbitrary_three_part_base64url(
        header in prop_oneof![base64url_segment(), hostile_header()],
        payload in prop_oneof![
            base64url_segment(),
            Just(b64(serde_json::json!({
                "iss": ISSUER, "sub": "x", "aud": ISSUER, "exp": i64::MAX, "type": "access",
                "nbf": 0, "iat": 0, "jti": "j", "client_id": "c", "scope": "", "fresh": true
            }).to_string().as_bytes())),
        ],
        signature in prop_oneof![base64url_segment(), Just(String::new())],
    ) {
        let token = format!("{header}.{payload}.{signature}");
        prop_assert!(!accepts(&token));
    }

    #[test]
    fn mutated_real_tokens_are_never_accepted_unless_they_decode_to_the_original(
        refresh in any::<bool>(),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let (access, refresh_token) = real_tokens();
        let original = if refresh { refresh_token } else { access };
        let mut token = original.clone();
        for m in &mutations {
            token = apply(&token, m);
        }
        if accepts(&token) {
            // Only a change that decodes to the very same bytes may pass.
            prop_assert_eq!(decoded_parts(&token), decoded_parts(original), "accepted {}", token);
        }
    }

    #[test]
    fn configuration_parsers_never_panic(text in any::<String>(), n in any::<u64>(), unit in "[a-z]{0,7}") {
        let _ = tessera::config::parse_duration(&text);
        let _ = tessera::config::parse_duration(&format!("{n}{unit}"));
        let _ = tessera::ratelimit::parse_rate(&text);
        let _ = tessera::ratelimit::parse_rate(&format!("{n}/{unit}"));
        let _ = tessera::clients::parse_scopes(&text);
        let _ = tessera::store::DatabaseUrl::parse(&text);
        let _ = tessera::store::DatabaseUrl::parse(&format!("sqlite://{text}"));
    }

    #[test]
    fn accepted_durations_are_positive_and_at_most_ten_years(n in any::<u64>(), unit in prop::sample::select(vec!["", "s", "m", "h", "d"])) {
        if let Ok(secs) = tessera::config::parse_duration(&format!("{n}{unit}")) {
            prop_assert!((0..=10 * 365 * 86_400).contains(&secs));
        }
    }

    #[test]
    fn accepted_rates_have_a_positive_count_and_period(text in "[0-9]{0,12}/(s|min|h|x|)") {
        if let Ok(Some(rate)) = tessera::ratelimit::parse_rate(&text) {
            prop_assert!(rate.count > 0 && rate.per_secs > 0);
        }
    }

    #[test]
    fn parsed_scopes_are_rfc_6749_scope_tokens(text in any::<String>()) {
        if let Ok(scopes) = tessera::clients::parse_scopes(&text) {
            for scope in scopes {
                prop_assert!(!scope.is_empty());
                prop_assert!(scope.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\'));
            }
        }
    }

    #[test]
    fn username_and_password_rules_never_panic_on_unicode(
        username in any::<String>(),
        password in prop_oneof![any::<String>(), "\\PC{0,200}"],
    ) {
        let verdict = tessera::accounts::username_violation(&username);
        if verdict.is_none() {
            let length = username.chars().count();
            prop_assert!((3..=64).contains(&length));
            prop_assert!(username.chars().all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)));
        }
        let problem = tessera::passwords::policy_violation(&password, &username);
        let length = password.chars().count();
        if problem.is_none() {
            prop_assert!((8..=128).contains(&length));
            prop_assert!(password.to_lowercase() != username.to_lowercase());
        }
        let _ = tessera::accounts::check_registration(&username, &password, Some(&password));
        let _ = tessera::accounts::check_email(&username);
    }
}
