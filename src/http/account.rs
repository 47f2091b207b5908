//! Self-service: `POST /register`, `GET /userinfo`, `/account/sessions`,
//! `PUT /account/password`.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::accounts::{self, rfc3339};
use crate::app::AppState;
use crate::audit::{self, kind, Event};
use crate::error::Error;
use crate::grants::RequestContext;
use crate::http::extract::{client_ip, user_agent, JsonOrForm};
use crate::http::token::limit_attempts;
use crate::http::{authenticate, blocking};
use crate::sessions;
use crate::store::users;

/// The registration body.
#[derive(Deserialize)]
pub struct RegisterBody {
    username: Option<String>,
    password: Option<String>,
    email: Option<String>,
}

/// `POST /register` → 201 `{"id","username","created_at"}`.
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonOrForm(body): JsonOrForm<RegisterBody>,
) -> Result<HttpResponse, Error> {
    if !state.settings.registration_open {
        return Err(Error::Forbidden("registration is closed".into()));
    }
    let ip = client_ip(&req, &state.settings);
    limit_attempts(&state, ip)?;
    let username = body
        .username
        .ok_or_else(|| Error::InvalidRequest("missing `username`".into()))?;
    let password = body
        .password
        .ok_or_else(|| Error::InvalidRequest("missing `password`".into()))?;
    let email = body.email.filter(|e| !e.is_empty());
    accounts::check_registration(&username, &password, email.as_deref())?;
    let lookup = username.clone();
    if blocking(&state, move |conn, _| {
        Ok(users::find_by_username(conn, &lookup)?)
    })
    .await?
    .is_some()
    {
        return Err(Error::UsernameTaken);
    }
    let hash = state
        .hasher
        .run(move |hasher| hasher.hash(&password))
        .await??;
    let context = RequestContext {
        ip: ip.map(|ip| ip.to_string()),
        user_agent: user_agent(&req),
    };
    let user = blocking(&state, move |conn, _| {
        let now = crate::now();
        crate::store::transaction(conn, |conn| {
            let user = accounts::create_user(conn, &username, &hash, email.as_deref(), &[], now)?;
            audit::record(
                conn,
                Event::new(kind::REGISTER)
                    .actor(&user.id)
                    .user(&user.id)
                    .ip(context.ip.clone()),
                now,
            )?;
            Ok(user)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(
        json!({ "id": user.id, "username": user.username, "created_at": rfc3339(user.created_at) }),
    ))
}

/// `GET /userinfo` (and `POST`, as OpenID Connect allows).
pub async fn userinfo(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let (user, mfa_enabled) = blocking(&state, move |conn, _| {
        let user = sessions::token_user(conn, &claims)?;
        let mfa_enabled = crate::mfa::is_enabled(conn, &user.id)?;
        Ok((user, mfa_enabled))
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(accounts::userinfo(&user, mfa_enabled)))
}

/// Paging parameters.
#[derive(Deserialize)]
pub struct PageQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

impl PageQuery {
    /// `limit`: default 50, at most 500.
    pub fn limit(&self) -> Result<i64, Error> {
        match self.limit {
            None => Ok(50),
            Some(n) if (1..=500).contains(&n) => Ok(n),
            Some(_) => Err(Error::InvalidRequest(
                "limit must be between 1 and 500".into(),
            )),
        }
    }
}

/// `GET /account/sessions`: the caller's live sessions, `current` marking this one.
pub async fn list_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let limit = query.limit()?;
    let cursor = query.cursor.clone();
    let (items, next) = blocking(&state, move |conn, _| {
        sessions::list_for_user(
            conn,
            &claims.sub,
            claims.sid.as_deref(),
            cursor.as_deref(),
            limit,
            crate::now(),
        )
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "items": items, "next_cursor": next })))
}

/// `DELETE /account/sessions/{sid}`: ends one of the caller's sessions.
pub async fn revoke_session(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let sid = path.into_inner();
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    blocking(&state, move |conn, _| {
        sessions::revoke_session(conn, &sid, Some(&claims.sub), &claims.sub, ip, crate::now())
    })
    .await?;
    state.metrics.revocations.inc();
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /account/sessions`: log out everywhere, this session included.
pub async fn revoke_all_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    let revoked = blocking(&state, move |conn, _| {
        sessions::revoke_all_sessions(conn, &claims.sub, None, &claims.sub, ip, crate::now())
    })
    .await?;
    state.metrics.revocations.inc_by(revoked as u64);
    Ok(HttpResponse::NoContent().finish())
}

/// The password change body.
#[derive(Deserialize)]
pub struct PasswordBody {
    current_password: Option<String>,
    new_password: Option<String>,
}

/// `PUT /account/password`: checks the current password and the policy, then revokes every
/// other session.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    JsonOrForm(body): JsonOrForm<PasswordBody>,
) -> Result<HttpResponse, Error> {
    let claims = authenticate(&req, &state).await?;
    let current = body
        .current_password
        .ok_or_else(|| Error::InvalidRequest("missing `current_password`".into()))?;
    let new_password = body
        .new_password
        .ok_or_else(|| Error::InvalidRequest("missing `new_password`".into()))?;
    let lookup = claims.clone();
    let user = blocking(&state, move |conn, _| sessions::token_user(conn, &lookup)).await?;
    if let Some(until) = user.locked_until.filter(|until| *until > crate::now()) {
        return Err(Error::RateLimited {
            retry_after: (until - crate::now()) as u64,
        });
    }
    if let Some(problem) = crate::passwords::policy_violation(&new_password, &user.username) {
        return Err(Error::WeakPassword(problem.into()));
    }
    let stored = user.password_hash.clone();
    let (ok, new_hash) = state
        .hasher
        .run(move |hasher| {
            let ok = hasher.verify(&current, &stored);
            (ok, ok.then(|| hasher.hash(&new_password)))
        })
        .await?;
    let ip = client_ip(&req, &state.settings).map(|ip| ip.to_string());
    if !ok {
        let context = RequestContext {
            ip,
            user_agent: None,
        };
        blocking(&state, move |conn, state| {
            crate::grants::password::record_failure(
                conn,
                state,
                &user,
                &claims.client_id,
                &context,
                crate::now(),
            )
        })
        .await?;
        return Err(Error::InvalidGrant("current password is incorrect".into()));
    }
    let new_hash = new_hash.ok_or_else(|| Error::internal("hashing", "no hash"))??;
    blocking(&state, move |conn, _| {
        accounts::set_password(
            conn,
            &user.id,
            &new_hash,
            claims.sid.as_deref(),
            &user.id,
            ip,
            crate::now(),
        )
        .map(|_| ())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
