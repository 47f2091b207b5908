//! OAuth clients: the built-in `first-party` public client, stored clients, their
//! authentication (RFC 6749 §2.3) and administration.

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::clients::{self as client_store, ClientRow};
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

/// Grant types tessera implements.
pub mod grant {
    pub const PASSWORD: &str = "password";
    pub const REFRESH_TOKEN: &str = "refresh_token";
    pub const CLIENT_CREDENTIALS: &str = "client_credentials";
    pub const MFA_OTP: &str = "urn:tessera:params:oauth:grant-type:mfa-otp";
    pub const ALL: [&str; 4] = [PASSWORD, REFRESH_TOKEN, CLIENT_CREDENTIALS, MFA_OTP];
}

/// A client as the rest of tessera sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Client {
    pub client_id: String,
    pub public: bool,
    pub grant_types: Vec<String>,
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_reuse_grace: Option<i64>,
    pub refresh_cookie: bool,
    /// The algorithm that signs this client's tokens; null means the default, RS256.
    pub token_alg: Option<String>,
    /// Unix seconds; shown as RFC 3339 like every other instant of the admin API.
    #[serde(serialize_with = "serialize_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: i64,
    #[serde(skip)]
    secret_hash: Option<String>,
}

fn serialize_rfc3339<S: serde::Serializer>(secs: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::accounts::rfc3339(*secs))
}

impl Client {
    /// The built-in client: public, password/refresh/MFA grants, `TESSERA_SCOPES`.
    pub fn first_party(scopes: &[String]) -> Self {
        Client {
            client_id: FIRST_PARTY.to_string(),
            public: true,
            grant_types: vec![
                grant::PASSWORD.into(),
                grant::REFRESH_TOKEN.into(),
                grant::MFA_OTP.into(),
            ],
            scopes: scopes.to_vec(),
            audience: None,
            access_token_ttl: None,
            refresh_token_ttl: None,
            refresh_reuse_grace: None,
            refresh_cookie: false,
            token_alg: None,
            created_at: 0,
            secret_hash: None,
        }
    }

    /// The algorithm the client asked for, if any (the key ring falls back to RS256 when it
    /// is not configured).
    pub fn signing_alg(&self) -> Option<SigningAlg> {
        self.token_alg.as_deref().and_then(|alg| alg.parse().ok())
    }

    /// True when the client may use `grant_type`.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }

    fn from_row(row: ClientRow) -> Result<Self> {
        Ok(Client {
            grant_types: serde_json::from_str(&row.grant_types)
                .map_err(|e| Error::internal("client grant types", e))?,
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
            created_at: row.created_at,
            secret_hash: row.secret_hash,
        })
    }
}

/// How a request identified its client.
#[derive(Clone, Default)]
pub struct ClientCredentials {
    pub client_id: Option<String>,
    pub secret: Option<String>,
    /// The credentials came in an `Authorization: Basic` header.
    pub basic: bool,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .field("basic", &self.basic)
            .finish_non_exhaustive()
    }
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
    match (client, credentials.secret.as_deref()) {
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
#[derive(Serialize, utoipa::ToSchema)]
pub struct ClientWithSecret {
    #[serde(flatten)]
    pub client: Client,
    /// 256 random bits, base64url; null for a public client.
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
    if new.client_id == FIRST_PARTY {
        return Err(Error::Conflict("first-party is the built-in client".into()));
    }
    let grant_types = new.grant_types.unwrap_or_else(|| {
        if new.public {
            vec![grant::PASSWORD.into(), grant::REFRESH_TOKEN.into()]
        } else {
            vec![grant::CLIENT_CREDENTIALS.into()]
        }
    });
    for g in &grant_types {
        if !grant::ALL.contains(&g.as_str()) {
            return Err(Error::InvalidRequest(format!("unknown grant type `{g}`")));
        }
    }
    if new.public && grant_types.iter().any(|g| g == grant::CLIENT_CREDENTIALS) {
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
    let secret = (!new.public).then(crate::crypto::random_token::<32>);
    let row = ClientRow {
        client_id: new.client_id.clone(),
        secret_hash: secret
            .as_deref()
            .map(|s| crate::crypto::sha256_hex(s.as_bytes())),
        is_public: new.public,
        grant_types: serde_json::to_string(&grant_types)
            .map_err(|e| Error::internal("encoding grant types", e))?,
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

/// Lists stored clients by id, after `cursor`.
pub fn list(conn: &mut DbConnection, cursor: Option<&str>, limit: i64) -> Result<Vec<Client>> {
    client_store::list(conn, cursor, limit)?
        .into_iter()
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
