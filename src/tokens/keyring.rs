//! The key ring: signing keys as this instance holds them in memory. It signs with the
//! active key of each configured algorithm (parsed once, used directly: no per-token key
//! parsing), verifies with every published key under that key's one algorithm, and serves
//! the JWKS from a pre-rendered body.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::crypto::MasterKey;
use crate::store::signing_keys::SigningKeyRow;
use crate::tokens::algs::SigningAlg;
use crate::tokens::claims::{ACCESS_TYP, ID_TYP, LOGOUT_TYP, REFRESH_TYP};

/// Allowed clock skew on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// Where a key stands at a given moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    /// Signs new tokens.
    Active,
    /// Published, signs from `activates_at`.
    Staged,
    /// Signs no more; published until its last token expires.
    Previous,
    /// Its tokens have all expired; no longer published.
    Expired,
    /// Dropped at once by an operator.
    Retired,
}

impl KeyStatus {
    /// The status's name, as the admin API and the audit log write it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Staged => "staged",
            KeyStatus::Previous => "previous",
            KeyStatus::Expired => "expired",
            KeyStatus::Retired => "retired",
        }
    }
}

/// One key's place in the timeline (instants in unix milliseconds).
#[derive(Debug, Clone)]
pub struct KeyInfo {
    pub kid: String,
    /// The one algorithm the key signs and verifies with.
    pub alg: String,
    pub status: KeyStatus,
    pub bits: i32,
    pub created_at: i64,
    pub activates_at: i64,
    /// When it stopped (or will stop) signing, if a successor is known.
    pub deactivates_at: Option<i64>,
    /// When it leaves the JWKS, if known.
    pub published_until: Option<i64>,
    pub retired_at: Option<i64>,
}

/// Works out every key's status at `now_ms`, one timeline per algorithm. Key instants are
/// unix milliseconds, so that two rotations within one second still order their keys.
/// `max_token_lifetime_ms` is how long a token signed at the last moment of a key's signing
/// period stays valid.
pub fn classify(rows: &[SigningKeyRow], now_ms: i64, max_token_lifetime_ms: i64) -> Vec<KeyInfo> {
    // RS256 first, then ES256 and EdDSA: the JWKS lists keys in this order, and a naive
    // verifier that takes the first key keeps working when an algorithm is added.
    let mut algs: Vec<&str> = rows.iter().map(|r| r.alg.as_str()).collect();
    algs.sort_unstable_by_key(|alg| {
        (
            alg.parse::<SigningAlg>().ok().is_none(),
            alg.parse::<SigningAlg>().ok(),
            *alg,
        )
    });
    algs.dedup();
    let mut infos = Vec::with_capacity(rows.len());
    for alg in algs {
        let group: Vec<&SigningKeyRow> = rows.iter().filter(|r| r.alg == alg).collect();
        classify_one(&group, now_ms, max_token_lifetime_ms, &mut infos);
    }
    infos
}

fn classify_one(
    rows: &[&SigningKeyRow],
    now: i64,
    max_token_lifetime: i64,
    infos: &mut Vec<KeyInfo>,
) {
    let mut live: Vec<&SigningKeyRow> = rows
        .iter()
        .copied()
        .filter(|r| r.retired_at.is_none())
        .collect();
    live.sort_by_key(|r| (r.activates_at, r.created_at));
    let active_index = live.iter().rposition(|r| r.activates_at <= now);
    infos.extend(live.iter().enumerate().map(|(i, row)| {
        // A key stops signing when its successor activates or when its algorithm was dropped
        // from the configuration, whichever comes first.
        let deactivates_at = match (
            live.get(i + 1).map(|next| next.activates_at),
            row.deactivated_at,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let never_signed = deactivates_at.is_some_and(|end| end <= row.activates_at);
        let published_until = deactivates_at.map(|end| {
            if never_signed {
                end
            } else {
                end + max_token_lifetime + LEEWAY_SECS as i64 * 1000
            }
        });
        let ended = row.deactivated_at.is_some_and(|end| end <= now);
        let status = match active_index {
            _ if ended && never_signed => KeyStatus::Expired,
            Some(a) if i == a && !ended => KeyStatus::Active,
            Some(a) if i > a => KeyStatus::Staged,
            None => KeyStatus::Staged,
            Some(_) if published_until.is_some_and(|until| until > now) => KeyStatus::Previous,
            Some(_) => KeyStatus::Expired,
        };
        KeyInfo {
            kid: row.kid.clone(),
            alg: row.alg.clone(),
            status,
            bits: row.bits,
            created_at: row.created_at,
            activates_at: row.activates_at,
            deactivates_at,
            published_until,
            retired_at: None,
        }
    }));
    infos.extend(
        rows.iter()
            .filter(|r| r.retired_at.is_some())
            .map(|row| KeyInfo {
                kid: row.kid.clone(),
                alg: row.alg.clone(),
                status: KeyStatus::Retired,
                bits: row.bits,
                created_at: row.created_at,
                activates_at: row.activates_at,
                deactivates_at: row.retired_at,
                published_until: row.retired_at,
                retired_at: row.retired_at,
            }),
    );
}

/// A parsed private key of one of the algorithms.
#[derive(Clone)]
enum Signer {
    Rsa(Arc<RsaKeyPair>),
    Ec(Arc<EcdsaKeyPair>),
    Ed(Arc<Ed25519KeyPair>),
}

impl Signer {
    fn parse(alg: SigningAlg, der: &[u8]) -> Result<Self, String> {
        match alg {
            SigningAlg::Rs256 => RsaKeyPair::from_pkcs8(der)
                .map(|k| Signer::Rsa(Arc::new(k)))
                .map_err(|e| format!("not a valid RSA key: {e}")),
            SigningAlg::Es256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map(|k| Signer::Ec(Arc::new(k)))
                .map_err(|e| format!("not a valid P-256 key: {e}")),
            SigningAlg::EdDsa => Ed25519KeyPair::from_pkcs8(der)
                .map(|k| Signer::Ed(Arc::new(k)))
                .map_err(|e| format!("not a valid Ed25519 key: {e}")),
        }
    }

    /// Appends `.` and the base64url signature of `token` to it.
    fn sign_into(&self, rng: &SystemRandom, token: &mut String) -> Result<()> {
        match self {
            Signer::Rsa(key) => {
                let mut signature = vec![0u8; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, rng, token.as_bytes(), &mut signature)
                    .map_err(|_| anyhow!("RSA signing failed"))?;
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(&signature, token);
            }
            Signer::Ec(key) => {
                // The FIXED encoding is JWS's r || s (RFC 7518 §3.4), not DER.
                let signature = key
                    .sign(rng, token.as_bytes())
                    .map_err(|_| anyhow!("ECDSA signing failed"))?;
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.as_ref(), token);
            }
            Signer::Ed(key) => {
                let signature = key.sign(token.as_bytes());
                token.push('.');
                URL_SAFE_NO_PAD.encode_string(signature.as_ref(), token);
            }
        }
        Ok(())
    }
}

/// The active key, ready to sign.
pub struct SigningKey {
    pub kid: String,
    pub activates_at: i64,
    signer: Signer,
    access_header: String,
    refresh_header: String,
    id_header: String,
    logout_header: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("token expired")]
    Expired,
    #[error("token signed by an unknown key")]
    UnknownKid,
    #[error("{0}")]
    Invalid(&'static str),
}

/// What kind of token is signed or a verification expects: it sets the `typ` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
    /// An OpenID Connect ID token (`typ` `JWT`, no `type` claim).
    Id,
    /// A back-channel logout token (`typ` `logout+jwt`, no `type` claim).
    Logout,
}

impl TokenKind {
    /// The `typ` header tokens of this kind carry.
    pub fn typ(self) -> &'static str {
        match self {
            TokenKind::Access => ACCESS_TYP,
            TokenKind::Refresh => REFRESH_TYP,
            TokenKind::Id => ID_TYP,
            TokenKind::Logout => LOGOUT_TYP,
        }
    }

    /// The value of the `type` claim tessera's own access and refresh tokens carry (for
    /// Flask-JWT-Extended); OpenID Connect tokens have none.
    fn type_claim(self) -> Option<&'static str> {
        match self {
            TokenKind::Access => Some("access"),
            TokenKind::Refresh => Some("refresh"),
            TokenKind::Id | TokenKind::Logout => None,
        }
    }
}

/// The keys at one moment: immutable, swapped whole on reload.
pub struct KeySet {
    /// The active key of each configured algorithm.
    signing: HashMap<SigningAlg, Arc<SigningKey>>,
    /// Every published key, bound to its one algorithm.
    verifying: HashMap<String, (SigningAlg, DecodingKey)>,
    /// `{"keys":[…]}` rendered once.
    pub jwks_body: Arc<String>,
    /// Quoted strong ETag of `jwks_body`.
    pub etag: Arc<String>,
    /// The rows this set was built from and their statuses.
    pub infos: Vec<KeyInfo>,
    rows: Vec<SigningKeyRow>,
    /// Next moment at which time alone changes the set (a staged key activating, an old
    /// one leaving).
    next_change_at: Option<i64>,
}

/// This instance's keys, shared by all workers.
pub struct KeyRing {
    issuer: String,
    /// `TESSERA_SIGNING_ALGS`: only these sign; keys of others are only verified.
    algs: Vec<SigningAlg>,
    master_key: MasterKey,
    max_token_lifetime_ms: i64,
    current: RwLock<Arc<KeySet>>,
    /// Decrypted key pairs by kid, so a reload decrypts only new keys.
    decrypted: Mutex<HashMap<String, Signer>>,
    last_reload: Mutex<Instant>,
    rng: SystemRandom,
}

impl KeyRing {
    /// Builds a ring from the stored rows. Fails when the master key cannot open a key that
    /// may sign: tessera never silently replaces keys it cannot read.
    pub fn new(
        issuer: String,
        algs: Vec<SigningAlg>,
        master_key: MasterKey,
        max_token_lifetime_ms: i64,
        rows: Vec<SigningKeyRow>,
        now_ms: i64,
    ) -> Result<Self> {
        let ring = KeyRing {
            issuer,
            algs,
            master_key,
            max_token_lifetime_ms,
            current: RwLock::new(Arc::new(KeySet::empty())),
            decrypted: Mutex::new(HashMap::new()),
            last_reload: Mutex::new(Instant::now()),
            rng: SystemRandom::new(),
        };
        ring.install(rows, now_ms)?;
        Ok(ring)
    }

    /// The issuer the ring signs as.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The configured signing algorithms.
    pub fn algs(&self) -> &[SigningAlg] {
        &self.algs
    }

    /// The algorithm that signs for a client asking for `wanted`: the default, RS256, when
    /// it asks for none or for one no longer configured.
    pub fn alg_for(&self, wanted: Option<SigningAlg>) -> SigningAlg {
        wanted
            .filter(|alg| self.algs.contains(alg))
            .unwrap_or(SigningAlg::Rs256)
    }

    /// The current set.
    pub fn current(&self) -> Arc<KeySet> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rebuilds the set from `rows` if they changed or time moved the set on.
    pub fn refresh(&self, rows: Vec<SigningKeyRow>, now_ms: i64) -> Result<bool> {
        let now = now_ms;
        *self.last_reload.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        let current = self.current();
        let same_rows = current.rows.len() == rows.len()
            && current.rows.iter().zip(&rows).all(|(a, b)| {
                a.kid == b.kid
                    && a.activates_at == b.activates_at
                    && a.retired_at == b.retired_at
                    && a.deactivated_at == b.deactivated_at
            });
        if same_rows && current.next_change_at.is_none_or(|t| t > now) {
            return Ok(false);
        }
        self.install(rows, now)?;
        Ok(true)
    }

    /// True when the last reload is older than `min_interval`: an unknown `kid` triggers a
    /// reload at most that often.
    pub fn may_reload(&self, min_interval: Duration) -> bool {
        self.last_reload
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            >= min_interval
    }

    fn install(&self, rows: Vec<SigningKeyRow>, now_ms: i64) -> Result<()> {
        let now = now_ms;
        let infos = classify(&rows, now, self.max_token_lifetime_ms);
        let mut decrypted = self.decrypted.lock().unwrap_or_else(|e| e.into_inner());
        let mut signing = HashMap::new();
        let mut verifying = HashMap::new();
        let mut jwks = Vec::new();
        let mut next_change_at: Option<i64> = None;
        let mut note_change = |t: i64| {
            if t > now {
                next_change_at = Some(next_change_at.map_or(t, |c| c.min(t)));
            }
        };
        for info in &infos {
            let Some(row) = rows.iter().find(|r| r.kid == info.kid) else {
                continue;
            };
            if !matches!(
                info.status,
                KeyStatus::Active | KeyStatus::Staged | KeyStatus::Previous
            ) {
                continue;
            }
            if info.status == KeyStatus::Staged {
                note_change(info.activates_at);
            }
            if let Some(until) = info.published_until {
                note_change(until);
            }
            if let Some(end) = row.deactivated_at {
                note_change(end);
            }
            let alg: SigningAlg = row
                .alg
                .parse()
                .map_err(|e| anyhow!("signing key {} has an unknown algorithm: {e}", row.kid))?;
            let signs_here = self.algs.contains(&alg);
            // Keys that sign now or soon are opened now, so a wrong master key is found at
            // start-up rather than at the moment of rotation.
            if signs_here
                && matches!(info.status, KeyStatus::Active | KeyStatus::Staged)
                && !decrypted.contains_key(&row.kid)
            {
                let der = self.master_key.open(&seal_context(&row.kid), &row.private_sealed).map_err(|_| {
                    anyhow!("the master key cannot decrypt signing key {}: is TESSERA_MASTER_KEY (or its file) the one this database was created with?", row.kid)
                })?;
                let signer = Signer::parse(alg, &der)
                    .map_err(|e| anyhow!("signing key {} is {e}", row.kid))?;
                decrypted.insert(row.kid.clone(), signer);
            }
            if signs_here && info.status == KeyStatus::Active {
                let signer = decrypted
                    .get(&row.kid)
                    .cloned()
                    .ok_or_else(|| anyhow!("active key {} was not decrypted", row.kid))?;
                signing.insert(
                    alg,
                    Arc::new(SigningKey {
                        kid: row.kid.clone(),
                        activates_at: row.activates_at,
                        signer,
                        access_header: encode_header(alg, ACCESS_TYP, &row.kid),
                        refresh_header: encode_header(alg, REFRESH_TYP, &row.kid),
                        id_header: encode_header(alg, ID_TYP, &row.kid),
                        logout_header: encode_header(alg, LOGOUT_TYP, &row.kid),
                    }),
                );
            }
            let (decoding, jwk) = public_key(alg, row)
                .map_err(|e| anyhow!("signing key {} has a bad public part: {e}", row.kid))?;
            verifying.insert(row.kid.clone(), (alg, decoding));
            jwks.push(jwk);
        }
        decrypted.retain(|kid, _| {
            infos
                .iter()
                .any(|i| &i.kid == kid && matches!(i.status, KeyStatus::Active | KeyStatus::Staged))
        });
        let jwks_body = serde_json::json!({ "keys": jwks }).to_string();
        let etag = format!(
            "\"{}\"",
            &crate::crypto::sha256_hex(jwks_body.as_bytes())[..32]
        );
        let set = KeySet {
            signing,
            verifying,
            jwks_body: Arc::new(jwks_body),
            etag: Arc::new(etag),
            infos,
            rows,
            next_change_at,
        };
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// Signs `claims` with the active key of `alg` (see [`KeyRing::alg_for`]) into a
    /// compact JWS.
    pub fn sign<T: Serialize>(
        &self,
        kind: TokenKind,
        alg: Option<SigningAlg>,
        claims: &T,
    ) -> Result<String> {
        let alg = self.alg_for(alg);
        let set = self.current();
        let key = set
            .signing
            .get(&alg)
            .ok_or_else(|| anyhow!("no active {alg} signing key"))?;
        let payload = serde_json::to_vec(claims)?;
        let header = match kind {
            TokenKind::Access => &key.access_header,
            TokenKind::Refresh => &key.refresh_header,
            TokenKind::Id => &key.id_header,
            TokenKind::Logout => &key.logout_header,
        };
        let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 360);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        key.signer.sign_into(&self.rng, &mut token)?;
        Ok(token)
    }

    /// The RS256 kid that signs now (the default algorithm's).
    pub fn active_kid(&self) -> Option<String> {
        self.active_kid_for(SigningAlg::Rs256)
    }

    /// The kid that signs `alg` now.
    pub fn active_kid_for(&self, alg: SigningAlg) -> Option<String> {
        self.current().signing.get(&alg).map(|k| k.kid.clone())
    }

    /// When the active RS256 key started signing (unix milliseconds).
    pub fn active_since(&self) -> Option<i64> {
        self.current()
            .signing
            .get(&SigningAlg::Rs256)
            .map(|k| k.activates_at)
    }

    /// Verifies a token of `kind`: a known `kid` and exactly that key's algorithm (so no
    /// `none`, no HMAC, no re-labelling), the right `typ`, `iss`, `exp` and `nbf` (30 s
    /// leeway), and `aud` when `audience` is given.
    pub fn verify<T: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
        audience: Option<&str>,
    ) -> Result<T, VerifyError> {
        match audience {
            Some(aud) => self.verify_audiences(token, kind, &[aud]),
            None => self.verify_audiences(token, kind, &[]),
        }
    }

    /// Like [`KeyRing::verify`], with `aud` one of `audiences` (any audience when empty).
    pub fn verify_audiences<T: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
        audiences: &[&str],
    ) -> Result<T, VerifyError> {
        self.verify_checked(token, kind, audiences, true)
    }

    /// Like [`KeyRing::verify_audiences`] but an expired token passes: for an
    /// `id_token_hint` (OpenID Connect RP-Initiated Logout 1.0 §2), which names who is
    /// signing out, often well after the token's `exp`. Everything else is checked.
    pub fn verify_ignoring_expiry<T: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
        audiences: &[&str],
    ) -> Result<T, VerifyError> {
        self.verify_checked(token, kind, audiences, false)
    }

    fn verify_checked<T: DeserializeOwned>(
        &self,
        token: &str,
        kind: TokenKind,
        audiences: &[&str],
        check_exp: bool,
    ) -> Result<T, VerifyError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| VerifyError::Invalid("malformed token"))?;
        if !matches!(
            header.alg,
            Algorithm::RS256 | Algorithm::ES256 | Algorithm::EdDSA
        ) {
            return Err(VerifyError::Invalid("unsupported token algorithm"));
        }
        if header.typ.as_deref() != Some(kind.typ()) {
            return Err(VerifyError::Invalid(match kind {
                TokenKind::Access => "not an access token",
                TokenKind::Refresh => "not a refresh token",
                TokenKind::Id => "not an ID token",
                TokenKind::Logout => "not a logout token",
            }));
        }
        let kid = header.kid.ok_or(VerifyError::Invalid("token has no kid"))?;
        let set = self.current();
        let (key_alg, key) = set.verifying.get(&kid).ok_or(VerifyError::UnknownKid)?;
        if header.alg != key_alg.jsonwebtoken() {
            return Err(VerifyError::Invalid(
                "token algorithm does not match its key",
            ));
        }
        let mut validation = Validation::new(key_alg.jsonwebtoken());
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_exp = check_exp;
        validation.set_issuer(&[&self.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        if audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(audiences);
        }
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation).map_err(
            |e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => VerifyError::Expired,
                jsonwebtoken::errors::ErrorKind::ImmatureSignature => {
                    VerifyError::Invalid("token not yet valid")
                }
                jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                    VerifyError::Invalid("bad token signature")
                }
                jsonwebtoken::errors::ErrorKind::InvalidIssuer => {
                    VerifyError::Invalid("token from another issuer")
                }
                jsonwebtoken::errors::ErrorKind::InvalidAudience => {
                    VerifyError::Invalid("token for another audience")
                }
                _ => VerifyError::Invalid("malformed token"),
            },
        )?;
        if let Some(wanted_type) = kind.type_claim() {
            if data.claims.get("type").and_then(|t| t.as_str()) != Some(wanted_type) {
                return Err(VerifyError::Invalid("wrong token type"));
            }
        }
        serde_json::from_value(data.claims)
            .map_err(|_| VerifyError::Invalid("malformed token claims"))
    }
}

impl KeySet {
    fn empty() -> Self {
        KeySet {
            signing: HashMap::new(),
            verifying: HashMap::new(),
            jwks_body: Arc::new(r#"{"keys":[]}"#.to_string()),
            etag: Arc::new("\"empty\"".to_string()),
            infos: Vec::new(),
            rows: Vec::new(),
            next_change_at: None,
        }
    }

    /// True when the default algorithm, RS256, has a key that signs.
    pub fn can_sign(&self) -> bool {
        self.signing.contains_key(&SigningAlg::Rs256)
    }

    /// True when every one of `algs` has a key that signs.
    pub fn can_sign_all(&self, algs: &[SigningAlg]) -> bool {
        algs.iter().all(|alg| self.signing.contains_key(alg))
    }
}

/// The verifying key and the JWK of a stored key's public part.
fn public_key(
    alg: SigningAlg,
    row: &SigningKeyRow,
) -> Result<(DecodingKey, serde_json::Value), String> {
    let part = |value: &Option<String>, name: &str| {
        value
            .clone()
            .ok_or_else(|| format!("{} key without `{name}`", alg.as_str()))
    };
    match alg {
        SigningAlg::Rs256 => {
            let decoding = DecodingKey::from_rsa_components(&row.public_n, &row.public_e)
                .map_err(|e| e.to_string())?;
            let jwk = serde_json::json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": row.kid,
                "n": row.public_n, "e": row.public_e,
            });
            Ok((decoding, jwk))
        }
        SigningAlg::Es256 => {
            let (x, y) = (part(&row.public_x, "x")?, part(&row.public_y, "y")?);
            let decoding = DecodingKey::from_ec_components(&x, &y).map_err(|e| e.to_string())?;
            let jwk = serde_json::json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": row.kid,
                "x": x, "y": y,
            });
            Ok((decoding, jwk))
        }
        SigningAlg::EdDsa => {
            let x = part(&row.public_x, "x")?;
            let decoding = DecodingKey::from_ed_components(&x).map_err(|e| e.to_string())?;
            let jwk = serde_json::json!({
                "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": row.kid,
                "x": x,
            });
            Ok((decoding, jwk))
        }
    }
}

fn encode_header(alg: SigningAlg, typ: &str, kid: &str) -> String {
    let header = serde_json::json!({ "alg": alg.as_str(), "typ": typ, "kid": kid });
    URL_SAFE_NO_PAD.encode(header.to_string())
}

/// Associated data binding a sealed private key to its kid.
pub fn seal_context(kid: &str) -> String {
    format!("tessera signing key {kid}")
}
