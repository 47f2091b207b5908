//! OAuth clients: the built-in `first-party` public client, stored clients, their
//! authentication (RFC 6749 §2.3) and administration.

use crate::error::{Error, Result};
use crate::named::named_enum;
use crate::store::clients::{self as client_store, ClientChanges, ClientRow};
use crate::store::DbConnection;
use crate::tokens::algs::SigningAlg;

/// Splits a scope list on spaces or commas; each scope is RFC 6749 §3.3 `scope-token`.
pub fn parse_scopes(text: &str) -> anyhow::Result<Vec<String>> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in text.split([' ', ',']).filter(|s| !s.is_empty()) {
        if !scope
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '"' && c != '\\')
        {
            anyhow::bail!("`{scope}` is not a valid scope");
        }
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    Ok(scopes)
}

/// The built-in public client used when a request names none.
pub const FIRST_PARTY: &str = "first-party";

/// The built-in public, first-party client of the admin console (SPEC §6.5).
pub const CONSOLE: &str = "console";

/// The longest a console session lasts (its refresh token's lifetime): an admin signs in
/// again at least every 12 hours.
pub const CONSOLE_SESSION_TTL: i64 = 12 * 3600;

/// The console's redirect URI: `{issuer}/console/callback`.
pub fn console_redirect_uri(issuer: &str) -> String {
    format!("{}/console/callback", issuer.trim_end_matches('/'))
}

/// Whether `client_id` names a built-in client, which cannot be created, changed or deleted.
pub fn is_builtin(client_id: &str) -> bool {
    client_id == FIRST_PARTY || client_id == CONSOLE
}

/// `client` with what only the issuer decides filled in: the console's redirect URI,
/// `{issuer}/console/callback`.
pub fn with_issuer(mut client: Client, issuer: &str) -> Client {
    if client.client_id == CONSOLE && client.redirect_uris.is_empty() {
        client.redirect_uris = vec![console_redirect_uri(issuer)];
    }
    client
}

named_enum! {
    /// A grant type tessera implements (RFC 6749 §4, and its own MFA grant), named by its
    /// `grant_type` value (as a client's stored list writes it too); `ALL` is the order
    /// discovery lists them in.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
    pub enum GrantType {
        Password => "password",
        RefreshToken => "refresh_token",
        ClientCredentials => "client_credentials",
        /// The second half of a password login with MFA on.
        MfaOtp => "urn:tessera:params:oauth:grant-type:mfa-otp",
        AuthorizationCode => "authorization_code",
    }
}

impl GrantType {
    /// The grant type a `grant_type` value names, if tessera implements it.
    pub fn parse(name: &str) -> Option<GrantType> {
        GrantType::ALL.into_iter().find(|g| g.as_str() == name)
    }

    /// Parses a client's list; an unknown name is `invalid_request`.
    pub fn parse_all(names: &[String]) -> Result<Vec<GrantType>> {
        names
            .iter()
            .map(|name| {
                GrantType::parse(name)
                    .ok_or_else(|| Error::InvalidRequest(format!("unknown grant type `{name}`")))
            })
            .collect()
    }

    /// The names of `grants`, as stored and shown.
    pub fn names(grants: &[GrantType]) -> Vec<String> {
        grants.iter().map(|g| g.as_str().to_string()).collect()
    }
}

/// A client as the rest of tessera sees it (`http::wire::Client` is its answer).
#[derive(Debug, Clone)]
pub struct Client {
    pub client_id: String,
    pub public: bool,
    pub grant_types: Vec<GrantType>,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_reuse_grace: Option<i64>,
    pub refresh_cookie: bool,
    /// The algorithm that signs this client's tokens; null means the default, RS256.
    pub token_alg: Option<String>,
    /// Shown on the consent page; the client id when absent.
    pub name: Option<String>,
    /// Where `/oauth/authorize` may send the browser back, matched exactly (RFC 8252 §7.3:
    /// any port for a loopback IP literal).
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// First-party clients skip the consent page.
    pub first_party: bool,
    pub backchannel_logout_uri: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    secret_hash: Option<String>,
}

impl Client {
    /// The built-in client: public, password/refresh/MFA grants, `TESSERA_SCOPES`.
    pub fn first_party(scopes: &[String]) -> Self {
        Client {
            client_id: FIRST_PARTY.to_string(),
            public: true,
            grant_types: vec![
                GrantType::Password,
                GrantType::RefreshToken,
                GrantType::MfaOtp,
            ],
            scopes: scopes.to_vec(),
            audience: None,
            access_token_ttl: None,
            refresh_token_ttl: None,
            refresh_reuse_grace: None,
            refresh_cookie: false,
            token_alg: None,
            name: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            first_party: true,
            backchannel_logout_uri: None,
            created_at: 0,
            secret_hash: None,
        }
    }

    /// The admin console's client: public, first-party, the authorization code and refresh
    /// grants, no scopes, sessions of at most 12 hours. Its redirect URI comes from the issuer
    /// ([`with_issuer`]) and is exempt from the scheme rule; a grace period lets parallel
    /// console tabs refresh.
    pub fn console(issuer: Option<&str>) -> Self {
        Client {
            client_id: CONSOLE.to_string(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            scopes: Vec::new(),
            refresh_reuse_grace: Some(30),
            refresh_token_ttl: Some(CONSOLE_SESSION_TTL),
            name: Some("Admin console".into()),
            redirect_uris: issuer.map(console_redirect_uri).into_iter().collect(),
            ..Client::first_party(&[])
        }
    }

    /// The algorithm the client asked for, if any (the key ring falls back to RS256 when it
    /// is not configured).
    pub fn signing_alg(&self) -> Option<SigningAlg> {
        self.token_alg.as_deref().and_then(|alg| alg.parse().ok())
    }

    /// The name users see: `name`, or the client id.
    pub fn display_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.client_id)
    }

    /// The registered redirect URI that `requested` names, or the only one when none is
    /// requested.
    pub fn redirect_uri_for(&self, requested: Option<&str>) -> Option<String> {
        match requested {
            None if self.redirect_uris.len() == 1 => Some(self.redirect_uris[0].clone()),
            None => None,
            Some(uri) => self
                .redirect_uris
                .iter()
                .any(|registered| redirect_uri_matches(registered, uri))
                .then(|| uri.to_string()),
        }
    }

    /// True when the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: GrantType) -> bool {
        self.grant_types.contains(&grant_type)
    }

    /// True for a client that signs users in (password, authorization code or MFA grant),
    /// to which `openid` is available unlisted (SPEC §6.3).
    pub fn signs_users_in(&self) -> bool {
        [
            GrantType::Password,
            GrantType::AuthorizationCode,
            GrantType::MfaOtp,
        ]
        .into_iter()
        .any(|g| self.allows_grant(g))
    }

    fn from_row(row: ClientRow) -> Result<Self> {
        Ok(Client {
            grant_types: stored_grants(&row.client_id, &row.grant_types)?,
            scopes: serde_json::from_str(&row.scopes)
                .map_err(|e| Error::internal("client scopes", e))?,
            client_id: row.client_id,
            public: row.is_public,
            audience: row.audience,
            access_token_ttl: row.access_token_ttl,
            refresh_token_ttl: row.refresh_token_ttl,
            refresh_reuse_grace: row.refresh_reuse_grace,
            refresh_cookie: row.refresh_cookie,
            token_alg: row.token_alg,
            name: row.name,
            redirect_uris: serde_json::from_str(&row.redirect_uris)
                .map_err(|e| Error::internal("client redirect URIs", e))?,
            post_logout_redirect_uris: serde_json::from_str(&row.post_logout_redirect_uris)
                .map_err(|e| Error::internal("client post-logout redirect URIs", e))?,
            first_party: row.first_party,
            backchannel_logout_uri: row.backchannel_logout_uri,
            created_at: row.created_at,
            secret_hash: row.secret_hash,
        })
    }
}

/// How a request identified its client.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<secrecy::SecretString>,
    /// The credentials came in an `Authorization: Basic` header.
    pub basic: bool,
}

/// Finds a client by id; `first-party` is the built-in one.
pub fn find(
    conn: &mut DbConnection,
    client_id: &str,
    first_party_scopes: &[String],
) -> Result<Option<Client>> {
    if client_id == FIRST_PARTY {
        return Ok(Some(Client::first_party(first_party_scopes)));
    }
    if client_id == CONSOLE {
        return Ok(Some(Client::console(None)));
    }
    client_store::find(conn, client_id)?
        .map(Client::from_row)
        .transpose()
}

const BAD_CLIENT: &str = "client authentication failed";

/// Authenticates the client of a request. No credentials at all means the built-in public
/// client; a public client names itself with `client_id`; a confidential one must prove its
/// secret, compared in constant time by SHA-256 hash. Unknown clients cost the same as a
/// wrong secret.
pub fn authenticate(
    conn: &mut DbConnection,
    credentials: &ClientCredentials,
    first_party_scopes: &[String],
) -> Result<Client> {
    let Some(client_id) = credentials.client_id.as_deref() else {
        return Ok(Client::first_party(first_party_scopes));
    };
    let client = find(conn, client_id, first_party_scopes)?;
    check_credentials(client, credentials)
}

/// The rule of [`authenticate`] once the client is looked up (`None`: no such client), for
/// callers that found it elsewhere (the client cache).
pub fn check_credentials(
    client: Option<Client>,
    credentials: &ClientCredentials,
) -> Result<Client> {
    match (
        client,
        credentials
            .secret
            .as_ref()
            .map(secrecy::ExposeSecret::expose_secret),
    ) {
        (Some(client), None) if client.public => Ok(client),
        (Some(client), Some(secret)) if !client.public => {
            let presented = crate::crypto::sha256_hex(secret.as_bytes());
            let stored = client.secret_hash.as_deref().unwrap_or("");
            if crate::crypto::constant_time_eq(presented.as_bytes(), stored.as_bytes()) {
                Ok(client)
            } else {
                Err(Error::InvalidClient(BAD_CLIENT.into()))
            }
        }
        (None, Some(secret)) => {
            let presented = crate::crypto::sha256_hex(secret.as_bytes());
            let _ =
                crate::crypto::constant_time_eq(presented.as_bytes(), DUMMY_SECRET_HASH.as_bytes());
            Err(Error::InvalidClient(BAD_CLIENT.into()))
        }
        _ => Err(Error::InvalidClient(BAD_CLIENT.into())),
    }
}

const DUMMY_SECRET_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A client to create, as the admin API and the CLI describe it.
#[derive(Debug, Clone, Default)]
pub struct NewClient {
    pub client_id: String,
    pub public: bool,
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audience: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_reuse_grace: Option<i64>,
    pub refresh_cookie: bool,
    /// JOSE name of the algorithm for its tokens; `None` for the default.
    pub token_alg: Option<String>,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub first_party: bool,
    pub backchannel_logout_uri: Option<String>,
}

/// Why a redirect URI cannot be registered, or `None` when it can (SPEC §6.2, RFC 8252):
/// `https://`, `http://` on a loopback host, or a private-use scheme with a dot in it
/// (reverse domain name, RFC 8252 §7.1); never a fragment, whitespace or a bare scheme.
pub fn redirect_uri_violation(uri: &str) -> Option<&'static str> {
    if uri.is_empty() || uri.len() > 2000 {
        return Some("must be 1-2000 characters");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("must not contain whitespace");
    }
    if uri.contains('#') {
        return Some("must not contain a fragment");
    }
    let Some((scheme, rest)) = uri.split_once(':') else {
        return Some("must be an absolute URI");
    };
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    if !scheme_ok {
        return Some("has an invalid scheme");
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" => match authority_host(rest) {
            Some(host) if !host.is_empty() => None,
            _ => Some("https URIs need a host"),
        },
        "http" => match authority_host(rest) {
            Some(host) if is_loopback_host(host) => None,
            _ => Some("http is allowed only for loopback hosts (127.0.0.1, [::1], localhost)"),
        },
        _ if scheme.contains('.') => {
            if rest.is_empty() {
                Some("a private-use URI needs a path")
            } else {
                None
            }
        }
        _ => Some(
            "must be https, http on a loopback host, or a private-use scheme like com.example.app",
        ),
    }
}

/// The host of `//host[:port]/…`, without port or brackets' contents checked.
fn authority_host(rest: &str) -> Option<&str> {
    let authority = rest.strip_prefix("//")?;
    let authority = authority.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') {
        return None;
    }
    if let Some(bracketed) = authority.strip_prefix('[') {
        let end = bracketed.find(']')?;
        return Some(&authority[..end + 2]);
    }
    Some(authority.split(':').next().unwrap_or(""))
}

fn is_loopback_host(host: &str) -> bool {
    loopback_ip(host) || host.eq_ignore_ascii_case("localhost")
}

fn loopback_ip(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `uri` with the port taken out of its authority, when it is `http://` on a loopback IP
/// literal (RFC 8252 §7.3: native apps listen on whatever port is free).
fn without_loopback_port(uri: &str) -> Option<String> {
    let rest = uri.strip_prefix("http://")?;
    let split = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(split);
    let host = match authority.strip_prefix('[') {
        Some(inner) => &authority[..inner.find(']')? + 2],
        None => authority.split(':').next().unwrap_or(""),
    };
    loopback_ip(host).then(|| format!("http://{host}{tail}"))
}

/// Exact match, except that any port matches for an `http` loopback IP literal.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    match (
        without_loopback_port(registered),
        without_loopback_port(requested),
    ) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

fn check_uris(field: &str, uris: &[String]) -> Result<()> {
    for uri in uris {
        if let Some(why) = redirect_uri_violation(uri) {
            return Err(Error::InvalidRequest(format!(
                "{field}: `{}` {why}",
                uri.chars().take(200).collect::<String>()
            )));
        }
    }
    Ok(())
}

fn check_name(name: &Option<String>) -> Result<()> {
    match name {
        Some(name) if name.chars().count() > 100 || name.chars().any(char::is_control) => {
            Err(Error::InvalidRequest(
                "name must be at most 100 characters, without control characters".into(),
            ))
        }
        _ => Ok(()),
    }
}

/// Checks that `token_alg` names one of the configured algorithms `algs`.
pub fn check_token_alg(token_alg: Option<&str>, algs: &[SigningAlg]) -> Result<()> {
    let Some(name) = token_alg else {
        return Ok(());
    };
    let configured = algs
        .iter()
        .map(|a| a.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match name.parse::<SigningAlg>() {
        Ok(alg) if algs.contains(&alg) => Ok(()),
        _ => Err(Error::InvalidRequest(format!(
            "token_alg must be one of the configured signing algorithms ({configured})"
        ))),
    }
}

/// Names the stored clients whose `token_alg` is not among `algs` in a warning: their tokens
/// are signed with RS256 until the algorithm is configured again.
pub fn warn_unconfigured_token_algs(conn: &mut DbConnection, algs: &[SigningAlg]) -> Result<()> {
    for (client_id, alg) in client_store::token_algs(conn)? {
        if check_token_alg(Some(&alg), algs).is_err() {
            log::warn!(
                "client {client_id} has token_alg {alg}, which is not in TESSERA_SIGNING_ALGS: its tokens are signed with RS256"
            );
        }
    }
    Ok(())
}

/// A client just created or with a new secret: the only moment the secret exists in clear.
pub struct ClientWithSecret {
    pub client: Client,
    /// 256 random bits, base64url; `None` for a public client.
    pub client_secret: Option<String>,
}

fn valid_client_id(client_id: &str) -> bool {
    (1..=128).contains(&client_id.len())
        && client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:@".contains(c))
}

/// Creates a client. A confidential client gets a secret of 256 random bits, returned once.
pub fn create(conn: &mut DbConnection, new: NewClient, now: i64) -> Result<ClientWithSecret> {
    if !valid_client_id(&new.client_id) {
        return Err(Error::InvalidRequest(
            "client_id must be 1-128 characters of letters, digits and ._-:@".into(),
        ));
    }
    if is_builtin(&new.client_id) {
        return Err(Error::Conflict(format!(
            "{} is a built-in client",
            new.client_id
        )));
    }
    let grant_types = match &new.grant_types {
        Some(names) => GrantType::parse_all(names)?,
        None if new.public => vec![GrantType::Password, GrantType::RefreshToken],
        None => vec![GrantType::ClientCredentials],
    };
    if new.public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(Error::InvalidRequest(
            "a public client cannot use client_credentials".into(),
        ));
    }
    let scopes = match new.scopes {
        Some(scopes) => {
            parse_scopes(&scopes.join(" ")).map_err(|e| Error::InvalidRequest(e.to_string()))?
        }
        None => Vec::new(),
    };
    for ttl in [new.access_token_ttl, new.refresh_token_ttl]
        .into_iter()
        .flatten()
    {
        if ttl <= 0 {
            return Err(Error::InvalidRequest(
                "token lifetimes must be positive".into(),
            ));
        }
    }
    if new.refresh_reuse_grace.is_some_and(|g| g < 0) {
        return Err(Error::InvalidRequest(
            "refresh_reuse_grace must not be negative".into(),
        ));
    }
    if let Some(alg) = &new.token_alg {
        alg.parse::<SigningAlg>().map_err(|_| {
            Error::InvalidRequest("token_alg must be one of RS256, ES256, EdDSA".into())
        })?;
    }
    check_uris("redirect_uris", &new.redirect_uris)?;
    check_uris("post_logout_redirect_uris", &new.post_logout_redirect_uris)?;
    if let Some(uri) = &new.backchannel_logout_uri {
        check_uris("backchannel_logout_uri", std::slice::from_ref(uri))?;
    }
    check_name(&new.name)?;
    if grant_types.contains(&GrantType::AuthorizationCode) && new.redirect_uris.is_empty() {
        return Err(Error::InvalidRequest(
            "the authorization_code grant needs at least one redirect URI".into(),
        ));
    }
    let secret = (!new.public).then(crate::crypto::random_token::<32>);
    let row = ClientRow {
        client_id: new.client_id.clone(),
        secret_hash: secret
            .as_deref()
            .map(|s| crate::crypto::sha256_hex(s.as_bytes())),
        is_public: new.public,
        grant_types: json_list(&GrantType::names(&grant_types))?,
        scopes: serde_json::to_string(&scopes)
            .map_err(|e| Error::internal("encoding scopes", e))?,
        audience: new.audience.filter(|a| !a.is_empty()),
        access_token_ttl: new.access_token_ttl,
        refresh_token_ttl: new.refresh_token_ttl,
        refresh_reuse_grace: new.refresh_reuse_grace,
        refresh_cookie: new.refresh_cookie,
        created_at: now,
        updated_at: now,
        token_alg: new.token_alg,
        name: new.name.filter(|n| !n.is_empty()),
        redirect_uris: json_list(&new.redirect_uris)?,
        post_logout_redirect_uris: json_list(&new.post_logout_redirect_uris)?,
        first_party: new.first_party,
        backchannel_logout_uri: new.backchannel_logout_uri.filter(|u| !u.is_empty()),
    };
    match client_store::insert(conn, &row) {
        Ok(()) => {}
        Err(e) if crate::store::is_unique_violation(&e) => {
            return Err(Error::Conflict(format!(
                "client `{}` already exists",
                new.client_id
            )))
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ClientWithSecret {
        client: Client::from_row(row)?,
        client_secret: secret,
    })
}

/// A stored client's grant types. A name this version does not know (written by a newer
/// one) is left out, so the client cannot use it here, and logged.
fn stored_grants(client_id: &str, stored: &str) -> Result<Vec<GrantType>> {
    let names: Vec<String> =
        serde_json::from_str(stored).map_err(|e| Error::internal("client grant types", e))?;
    Ok(names
        .iter()
        .filter_map(|name| {
            let grant = GrantType::parse(name);
            if grant.is_none() {
                log::warn!("client {client_id}: unknown stored grant type `{name}` ignored");
            }
            grant
        })
        .collect())
}

fn json_list(items: &[String]) -> Result<String> {
    serde_json::to_string(items).map_err(|e| Error::internal("encoding a list", e))
}

/// A partial update of a stored client: every field but `client_id` and `public`. For the
/// optional fields, `Some(None)` clears the value.
#[derive(Debug, Clone, Default)]
pub struct ClientPatch {
    pub grant_types: Option<Vec<String>>,
    pub scopes: Option<Vec<String>>,
    pub audience: Option<Option<String>>,
    pub access_token_ttl: Option<Option<i64>>,
    pub refresh_token_ttl: Option<Option<i64>>,
    pub refresh_reuse_grace: Option<Option<i64>>,
    pub refresh_cookie: Option<bool>,
    pub name: Option<Option<String>>,
    pub redirect_uris: Option<Vec<String>>,
    pub post_logout_redirect_uris: Option<Vec<String>>,
    pub first_party: Option<bool>,
    pub backchannel_logout_uri: Option<Option<String>>,
    /// JOSE name of the algorithm for its tokens; `Some(None)` goes back to the default.
    pub token_alg: Option<Option<String>>,
}

/// Applies a patch under the same rules as [`create`]; answers the updated client.
pub fn update(
    conn: &mut DbConnection,
    client_id: &str,
    patch: ClientPatch,
    now: i64,
) -> Result<Client> {
    if is_builtin(client_id) {
        return Err(Error::InvalidRequest(format!(
            "{client_id} is a built-in client and cannot be changed"
        )));
    }
    let current = client_store::find(conn, client_id)?
        .map(Client::from_row)
        .transpose()?
        .ok_or_else(|| Error::NotFound(format!("no client `{client_id}`")))?;
    let grant_types = match &patch.grant_types {
        Some(names) => GrantType::parse_all(names)?,
        None => current.grant_types.clone(),
    };
    if current.public && grant_types.contains(&GrantType::ClientCredentials) {
        return Err(Error::InvalidRequest(
            "a public client cannot use client_credentials".into(),
        ));
    }
    let scopes = patch
        .scopes
        .map(|s| parse_scopes(&s.join(" ")).map_err(|e| Error::InvalidRequest(e.to_string())))
        .transpose()?;
    for ttl in [patch.access_token_ttl, patch.refresh_token_ttl]
        .into_iter()
        .flatten()
        .flatten()
    {
        if ttl <= 0 {
            return Err(Error::InvalidRequest(
                "token lifetimes must be positive".into(),
            ));
        }
    }
    if patch.refresh_reuse_grace.flatten().is_some_and(|g| g < 0) {
        return Err(Error::InvalidRequest(
            "refresh_reuse_grace must not be negative".into(),
        ));
    }
    if let Some(uris) = &patch.redirect_uris {
        check_uris("redirect_uris", uris)?;
    }
    if let Some(uris) = &patch.post_logout_redirect_uris {
        check_uris("post_logout_redirect_uris", uris)?;
    }
    if let Some(Some(uri)) = &patch.backchannel_logout_uri {
        check_uris("backchannel_logout_uri", std::slice::from_ref(uri))?;
    }
    if let Some(name) = &patch.name {
        check_name(name)?;
    }
    if let Some(Some(alg)) = &patch.token_alg {
        alg.parse::<SigningAlg>().map_err(|_| {
            Error::InvalidRequest("token_alg must be one of RS256, ES256, EdDSA".into())
        })?;
    }
    let redirect_uris = patch
        .redirect_uris
        .clone()
        .unwrap_or(current.redirect_uris.clone());
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(Error::InvalidRequest(
            "the authorization_code grant needs at least one redirect URI".into(),
        ));
    }
    let changes = ClientChanges {
        grant_types: patch
            .grant_types
            .is_some()
            .then(|| json_list(&GrantType::names(&grant_types)))
            .transpose()?,
        scopes: scopes.as_deref().map(json_list).transpose()?,
        audience: patch.audience.map(|a| a.filter(|a| !a.is_empty())),
        access_token_ttl: patch.access_token_ttl,
        refresh_token_ttl: patch.refresh_token_ttl,
        refresh_reuse_grace: patch.refresh_reuse_grace,
        refresh_cookie: patch.refresh_cookie,
        name: patch.name.map(|n| n.filter(|n| !n.is_empty())),
        redirect_uris: patch.redirect_uris.as_deref().map(json_list).transpose()?,
        post_logout_redirect_uris: patch
            .post_logout_redirect_uris
            .as_deref()
            .map(json_list)
            .transpose()?,
        first_party: patch.first_party,
        backchannel_logout_uri: patch
            .backchannel_logout_uri
            .map(|u| u.filter(|u| !u.is_empty())),
        token_alg: patch.token_alg.map(|a| a.filter(|a| !a.is_empty())),
        updated_at: Some(now),
    };
    client_store::update(conn, client_id, &changes)?;
    client_store::find(conn, client_id)?
        .map(Client::from_row)
        .transpose()?
        .ok_or_else(|| Error::NotFound(format!("no client `{client_id}`")))
}

/// Lists stored clients by id, after `cursor`.
pub fn list(conn: &mut DbConnection, cursor: Option<&str>, limit: i64) -> Result<Vec<Client>> {
    client_store::list(conn, cursor, limit)?
        .into_iter()
        .filter(|row| !is_builtin(&row.client_id))
        .map(Client::from_row)
        .collect()
}

/// Deletes a client; false when there was none.
pub fn delete(conn: &mut DbConnection, client_id: &str) -> Result<bool> {
    Ok(client_store::delete(conn, client_id)? > 0)
}

/// Gives a confidential client a new secret, returned once; the old one stops working.
pub fn rotate_secret(
    conn: &mut DbConnection,
    client_id: &str,
    now: i64,
) -> Result<ClientWithSecret> {
    let row = client_store::find(conn, client_id)?
        .ok_or_else(|| Error::NotFound(format!("no client `{client_id}`")))?;
    if row.is_public {
        return Err(Error::InvalidRequest(
            "a public client has no secret".into(),
        ));
    }
    let secret = crate::crypto::random_token::<32>();
    client_store::set_secret_hash(
        conn,
        client_id,
        &crate::crypto::sha256_hex(secret.as_bytes()),
        now,
    )?;
    let row = client_store::find(conn, client_id)?
        .ok_or_else(|| Error::NotFound(format!("no client `{client_id}`")))?;
    Ok(ClientWithSecret {
        client: Client::from_row(row)?,
        client_secret: Some(secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grant_type_reads_back_from_its_name_and_no_other_name_is_one() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
        }
        assert_eq!(GrantType::parse("implicit"), None);
        assert_eq!(GrantType::parse("Password"), None);
        assert!(GrantType::parse_all(&["password".into(), "implicit".into()]).is_err());
    }

    #[test]
    fn redirect_uris_follow_rfc_8252() {
        for ok in [
            "https://app.example.com/cb",
            "https://app.example.com:8443/cb?x=1",
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/cb",
            "http://[::1]:8080/cb",
            "http://localhost:3000/cb",
            "com.example.app:/oauth2redirect",
        ] {
            assert_eq!(redirect_uri_violation(ok), None, "{ok}");
        }
        for bad in [
            "",
            "https://app.example.com/cb#frag",
            "http://app.example.com/cb",
            "http://127.0.0.1.evil.com/cb",
            "https:///cb",
            "https://user@evil.com/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "/relative",
            "com.example.app:",
            "https://a.example/ cb",
        ] {
            assert!(redirect_uri_violation(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn loopback_ip_literals_match_any_port_everything_else_exactly() {
        assert!(redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:51234/cb"
        ));
        assert!(redirect_uri_matches(
            "http://[::1]:80/cb",
            "http://[::1]:9/cb"
        ));
        assert!(!redirect_uri_matches(
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5/cb2"
        ));
        assert!(!redirect_uri_matches(
            "http://localhost:3000/cb",
            "http://localhost:3001/cb"
        ));
        assert!(!redirect_uri_matches(
            "https://a.example/cb",
            "https://a.example/cb/"
        ));
        assert!(!redirect_uri_matches(
            "https://a.example/cb",
            "https://a.example/cb?x=1"
        ));
        assert!(!redirect_uri_matches(
            "https://a.example:1/cb",
            "https://a.example:2/cb"
        ));
    }
}
