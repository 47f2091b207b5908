//! `GET /oauth/authorize` (RFC 6749 §4.1, RFC 7636, RFC 9207, SPEC §6.2) without HTTP: which
//! errors may be redirected, what the browser must do next (sign in, consent), and the
//! one-time codes. The token endpoint's half is `grants::authorization_code`.

use crate::browser_session::BrowserSession;
use crate::clients::{self, Client, GrantType};
use crate::error::{Error, Result};
use crate::store::authorization_codes::{self as code_store, AuthorizationCode};
use crate::store::{self, DbConnection};

/// How long a code may wait for its exchange.
pub const CODE_TTL: i64 = 60;

/// The parameters of an authorization request, as sent.
#[derive(Debug, Clone, Default)]
pub struct AuthorizationRequest {
    pub response_type: Option<String>,
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub scope: Option<String>,
    pub state: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub login_hint: Option<String>,
    /// Parameters that appeared more than once (RFC 6749 §3.1: an error).
    pub repeated: Vec<String>,
}

impl AuthorizationRequest {
    /// Reads a query string; unknown parameters are ignored (RFC 6749 §3.1).
    pub fn parse(query: &str) -> Self {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        let mut request = AuthorizationRequest::default();
        for (name, value) in pairs {
            let slot = match name.as_str() {
                "response_type" => &mut request.response_type,
                "client_id" => &mut request.client_id,
                "redirect_uri" => &mut request.redirect_uri,
                "scope" => &mut request.scope,
                "state" => &mut request.state,
                "code_challenge" => &mut request.code_challenge,
                "code_challenge_method" => &mut request.code_challenge_method,
                "nonce" => &mut request.nonce,
                "prompt" => &mut request.prompt,
                "max_age" => &mut request.max_age,
                "login_hint" => &mut request.login_hint,
                _ => continue,
            };
            if slot.is_some() {
                request.repeated.push(name);
            } else if !value.is_empty() {
                *slot = Some(value);
            }
        }
        request
    }
}

/// An error that must not be redirected: shown to the user as a page.
#[derive(Debug)]
pub enum PageError {
    /// 400: unknown client or a redirect URI not registered for it.
    BadRequest(String),
    /// 503: the client could not be checked.
    Unavailable,
}

/// An error answered by redirecting to the client (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone)]
pub struct RedirectError {
    pub code: &'static str,
    pub description: String,
}

impl RedirectError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        RedirectError {
            code,
            description: description.into(),
        }
    }

    /// What a domain error becomes on the redirect.
    pub fn from_error(error: &Error) -> Self {
        match error {
            Error::Unavailable => Self::new(
                "temporarily_unavailable",
                "the server cannot answer now; try again",
            ),
            Error::InvalidScope(m) => Self::new("invalid_scope", m.clone()),
            _ => Self::new("server_error", "the request could not be completed"),
        }
    }
}

/// A request whose client and redirect URI were checked: errors may now be redirected.
#[derive(Debug, Clone)]
pub struct Target {
    pub client: Client,
    pub redirect_uri: String,
    /// The request named `redirect_uri` (so the token request must repeat it).
    pub redirect_uri_sent: bool,
    pub state: Option<String>,
}

/// Checks the client and the redirect URI: until both are known good nothing may be
/// redirected (RFC 6749 §4.1.2.1). `scopes` are the configured ones (`TESSERA_SCOPES`), and
/// `issuer` fills in the console's redirect URI.
pub fn check_target(
    conn: &mut DbConnection,
    scopes: &[String],
    issuer: &str,
    request: &AuthorizationRequest,
) -> std::result::Result<Target, PageError> {
    if request
        .repeated
        .iter()
        .any(|p| p == "client_id" || p == "redirect_uri")
    {
        return Err(PageError::BadRequest(
            "The request names its client or redirect URI more than once.".into(),
        ));
    }
    let client_id = request
        .client_id
        .as_deref()
        .ok_or_else(|| PageError::BadRequest("The request does not name a client.".into()))?;
    let client = match clients::find(conn, client_id, scopes) {
        Ok(Some(client)) => clients::with_issuer(client, issuer),
        Ok(None) => {
            return Err(PageError::BadRequest(
                "The application that sent you here is not known to this server.".into(),
            ))
        }
        Err(Error::Unavailable) => return Err(PageError::Unavailable),
        Err(e) => {
            log::error!("checking an authorization request's client: {e}");
            return Err(PageError::Unavailable);
        }
    };
    let redirect_uri = client
        .redirect_uri_for(request.redirect_uri.as_deref())
        .ok_or_else(|| {
            PageError::BadRequest(match request.redirect_uri {
                Some(_) => {
                    "The address this application asked to return to is not registered for it."
                        .into()
                }
                None => "The request does not say where to return to.".into(),
            })
        })?;
    Ok(Target {
        client,
        redirect_uri_sent: request.redirect_uri.is_some(),
        redirect_uri,
        state: request.state.clone(),
    })
}

/// A valid authorization request.
#[derive(Debug, Clone)]
pub struct Validated {
    pub target: Target,
    pub scope: Vec<String>,
    pub code_challenge: String,
    pub nonce: Option<String>,
    pub prompt_none: bool,
    pub prompt_login: bool,
    pub prompt_consent: bool,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

/// True for 43–128 characters of RFC 7636's unreserved alphabet (verifiers and
/// challenges alike).
pub fn pkce_shaped(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Checks everything but the client and redirect URI; errors are redirected.
pub fn validate(
    target: Target,
    request: &AuthorizationRequest,
) -> std::result::Result<Validated, Box<(Target, RedirectError)>> {
    macro_rules! fail {
        ($code:literal, $($arg:tt)*) => {
            return Err(Box::new((target, RedirectError::new($code, format!($($arg)*)))))
        };
    }
    if let Some(name) = request.repeated.first() {
        fail!("invalid_request", "`{name}` is given more than once");
    }
    match request.response_type.as_deref() {
        None => fail!("invalid_request", "missing `response_type`"),
        Some("code") => {}
        Some(_) => fail!(
            "unsupported_response_type",
            "only response_type=code is supported"
        ),
    }
    if !target.client.allows_grant(GrantType::AuthorizationCode) {
        fail!(
            "unauthorized_client",
            "this client may not use the authorization code flow"
        );
    }
    let Some(challenge) = request.code_challenge.clone() else {
        fail!(
            "invalid_request",
            "PKCE is required: missing `code_challenge`"
        );
    };
    match request.code_challenge_method.as_deref() {
        Some("S256") => {}
        None => fail!(
            "invalid_request",
            "PKCE is required: `code_challenge_method` must be S256"
        ),
        Some(_) => fail!(
            "invalid_request",
            "only code_challenge_method=S256 is supported"
        ),
    }
    if !pkce_shaped(&challenge) {
        fail!(
            "invalid_request",
            "`code_challenge` must be 43-128 characters of A-Z a-z 0-9 - . _ ~"
        );
    }
    let requested = request.scope.as_deref();
    let client = &target.client;
    let allowed = crate::oidc::allowed_scopes(&client.scopes, client.signs_users_in(), requested);
    let scope = match crate::grants::resolve_scope(requested, &allowed) {
        Ok(scope) => scope,
        Err(e) => {
            let error = RedirectError::from_error(&e);
            return Err(Box::new((target, error)));
        }
    };
    let (mut none, mut login, mut consent) = (false, false, false);
    for value in request.prompt.as_deref().unwrap_or("").split(' ') {
        match value {
            "" => {}
            "none" => none = true,
            "login" => login = true,
            "consent" => consent = true,
            _ => fail!("invalid_request", "unsupported prompt value"),
        }
    }
    if none && (login || consent) {
        fail!(
            "invalid_request",
            "prompt=none cannot be combined with other values"
        );
    }
    let max_age = match request.max_age.as_deref() {
        None => None,
        Some(text) => match text.parse::<i64>() {
            Ok(age) if age >= 0 => Some(age),
            _ => fail!(
                "invalid_request",
                "`max_age` must be a non-negative integer"
            ),
        },
    };
    for (name, value) in [("state", &request.state), ("nonce", &request.nonce)] {
        if value.as_ref().is_some_and(|v| v.len() > 1024) {
            fail!("invalid_request", "`{name}` is longer than 1024 characters");
        }
    }
    Ok(Validated {
        scope,
        code_challenge: challenge,
        nonce: request.nonce.clone(),
        prompt_none: none,
        prompt_login: login,
        prompt_consent: consent,
        max_age,
        login_hint: request.login_hint.clone().filter(|h| h.len() <= 256),
        target,
    })
}

/// What the browser does next.
#[derive(Debug)]
pub enum Next {
    /// To the sign-in page, and back to this request afterwards.
    SignIn,
    /// Show the consent page.
    Consent,
    /// Back to the client with this code.
    Code(String),
    /// Back to the client with this error.
    Error(RedirectError),
}

/// Decides a valid request for the browser session it came with (if any).
pub fn decide(
    conn: &mut DbConnection,
    request: &Validated,
    session: Option<&BrowserSession>,
    now: i64,
) -> Result<Next> {
    let Some(session) = session else {
        return Ok(sign_in_or(request));
    };
    // prompt=login and max_age are met by a sign-in made for this very request, which
    // comes back here with the mark still unspent.
    let just_signed_in = session.just_signed_in(conn, now)?;
    let too_old = request
        .max_age
        .is_some_and(|age| now - session.auth_time > age);
    if (request.prompt_login || too_old) && !just_signed_in {
        return Ok(sign_in_or(request));
    }
    let covered = crate::consent::covered(
        conn,
        &session.user.id,
        &request.target.client,
        &request.scope,
    )?;
    if !covered || (request.prompt_consent && !request.target.client.first_party) {
        if request.prompt_none {
            return Ok(Next::Error(RedirectError::new(
                "consent_required",
                "the user has not allowed this application yet",
            )));
        }
        return Ok(Next::Consent);
    }
    issue_code(conn, request, session, now).map(Next::Code)
}

fn sign_in_or(request: &Validated) -> Next {
    if request.prompt_none {
        Next::Error(RedirectError::new(
            "login_required",
            "the user is not signed in",
        ))
    } else {
        Next::SignIn
    }
}

/// Issues a one-time code (256 random bits, stored as SHA-256) bound to everything the
/// token request must match. The first code after a sign-in spends the sign-in's `fresh`
/// mark in the same transaction.
pub fn issue_code(
    conn: &mut DbConnection,
    request: &Validated,
    session: &BrowserSession,
    now: i64,
) -> Result<String> {
    let code = crate::crypto::random_token::<32>();
    store::transaction(conn, |conn| -> Result<()> {
        let fresh = session.take_fresh(conn)?;
        code_store::insert(
            conn,
            &AuthorizationCode {
                code_hash: code_hash(&code),
                client_id: request.target.client.client_id.clone(),
                user_id: session.user.id.clone(),
                redirect_uri: request.target.redirect_uri.clone(),
                redirect_uri_sent: request.target.redirect_uri_sent,
                code_challenge: request.code_challenge.clone(),
                scope: request.scope.join(" "),
                nonce: request.nonce.clone(),
                auth_time: session.auth_time,
                amr: serde_json::to_string(&session.amr)
                    .map_err(|e| Error::internal("encoding amr", e))?,
                fresh,
                expires_at: now + CODE_TTL,
                used_at: None,
                session_id: None,
                browser_session_id: Some(session.session_id.clone()),
            },
        )?;
        Ok(())
    })?;
    Ok(code)
}

/// How a code is stored.
pub fn code_hash(code: &str) -> String {
    crate::crypto::sha256_hex(code.as_bytes())
}

/// `redirect_uri` with the response parameters added to its query.
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let query = serde_urlencoded::to_string(params).unwrap_or_default();
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    format!("{redirect_uri}{separator}{query}")
}

/// The success redirect: `code`, `state` (when sent) and `iss` (RFC 9207).
pub fn code_redirect(target: &Target, code: &str, issuer: &str) -> String {
    let mut params = vec![("code", code)];
    if let Some(state) = &target.state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    redirect_with(&target.redirect_uri, &params)
}

/// The error redirect: `error`, `error_description`, `state` (when sent) and `iss`.
pub fn error_redirect(target: &Target, error: &RedirectError, issuer: &str) -> String {
    let mut params = vec![
        ("error", error.code),
        ("error_description", error.description.as_str()),
    ];
    if let Some(state) = &target.state {
        params.push(("state", state));
    }
    params.push(("iss", issuer));
    redirect_with(&target.redirect_uri, &params)
}

/// A denial on the consent page.
pub fn access_denied() -> RedirectError {
    RedirectError::new("access_denied", "the user denied the request")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_values_are_43_to_128_unreserved_characters() {
        assert!(pkce_shaped(&"a".repeat(43)));
        assert!(pkce_shaped(&"A-._~9".repeat(20)));
        assert!(!pkce_shaped(&"a".repeat(42)));
        assert!(!pkce_shaped(&"a".repeat(129)));
        assert!(!pkce_shaped(&format!("{}+", "a".repeat(43))));
    }

    #[test]
    fn repeated_parameters_are_noticed_and_unknown_ones_ignored() {
        let request = AuthorizationRequest::parse("client_id=a&x=1&scope=s&scope=t");
        assert_eq!(request.client_id.as_deref(), Some("a"));
        assert_eq!(request.repeated, vec!["scope".to_string()]);
    }

    #[test]
    fn response_parameters_extend_an_existing_query() {
        assert_eq!(
            redirect_with("https://a.example/cb?x=1", &[("code", "c d")]),
            "https://a.example/cb?x=1&code=c+d"
        );
    }
}
