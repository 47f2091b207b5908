//! `GET /openapi.json`: the OpenAPI 3 document, generated from the handlers'
//! `#[utoipa::path]` attributes and the wire types' `ToSchema` derives, rendered once at
//! start-up and served from memory. The reusable error responses live here too.
//! `tests/api/openapi.rs` holds the document to `http::ROUTES` in both directions.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::{Modify, OpenApi};

use crate::http::error::{ErrorBody, ErrorCode};
use crate::http::{
    account, admin, console, email, health, metadata, mfa, pages, revocations, token,
};

/// The rendered document, shared by the workers (`Bytes`: each answer shares the buffer).
pub struct Document(pub web::Bytes);

impl Document {
    /// Builds the document for a server whose public address is `issuer`.
    pub fn render(issuer: &str) -> anyhow::Result<Self> {
        let mut api = ApiDoc::openapi();
        api.servers = Some(vec![Server::new(issuer)]);
        Ok(Document(web::Bytes::from(api.to_json()?)))
    }
}

/// The OpenAPI 3 document of every endpoint.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "The OpenAPI document", content_type = "application/json",
            body = Object),
        (status = "default", response = responses::OtherError),
    ),
)]
pub async fn document(doc: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .content_type("application/json")
        .body(doc.0.clone())
}

/// Security schemes: `bearer` (an access token) and `client_basic` (client_secret_basic).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                utoipa::openapi::security::HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An RS256 access token (`typ` `at+jwt`) from `/oauth/token`. \
                         Refresh tokens are refused.",
                    ))
                    .build(),
            ),
        );
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some(
            "client_secret_basic (RFC 6749 §2.3.1): the form-urlencoded client id and secret. \
             client_secret_post (`client_id` and `client_secret` in the form) is accepted too."
                .into(),
        );
        components.add_security_scheme("client_basic", SecurityScheme::Http(basic));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tessera",
        description = "A standalone token-issuing authorization server: RS256 JWT access and \
            refresh tokens, JWKS, rotation and revocation.\n\n\
            Every error, everywhere, is JSON `{\"error\", \"error_description\"}` (schema \
            `ErrorBody`). A method a path does not serve answers 405 `invalid_request`; an \
            unexpected failure answers 500 `server_error`.",
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        document,
        metadata::discovery,
        metadata::openid_configuration,
        metadata::jwks,
        token::issue_token,
        token::revoke,
        token::introspect,
        revocations::revocations,
        account::register,
        account::userinfo,
        account::userinfo_post,
        account::list_sessions,
        account::revoke_all_sessions,
        account::revoke_session,
        account::change_password,
        email::change_email,
        email::request_verification,
        email::forgot_password,
        email::reset_password,
        pages::recovery::verify_email,
        pages::recovery::forgot_form,
        pages::recovery::reset_form,
        pages::account::list_consents,
        pages::account::withdraw_consent,
        pages::authorize::authorize,
        pages::authorize::consent,
        pages::login::login_form,
        pages::login::login,
        pages::login::signup_form,
        pages::login::signup,
        pages::login::logout,
        pages::end_session::logout_get,
        pages::end_session::logout_post,
        pages::account::account,
        pages::account::account_action,
        pages::stylesheet,
        console::stylesheet,
        console::overview,
        console::callback,
        console::logout,
        console::users::list,
        console::users::create,
        console::users::show,
        console::users::act,
        console::clients::list,
        console::clients::create,
        console::clients::act,
        console::keys::list,
        console::keys::act,
        console::audit::list,
        mfa::enrol,
        mfa::confirm,
        mfa::disable,
        mfa::admin_reset,
        admin::list_users,
        admin::create_user,
        admin::get_user,
        admin::update_user,
        admin::delete_user,
        admin::list_user_sessions,
        admin::revoke_user_sessions,
        admin::revoke_session,
        admin::list_clients,
        admin::create_client,
        admin::get_client,
        admin::update_client,
        admin::delete_client,
        admin::rotate_client_secret,
        admin::list_keys,
        admin::rotate_keys,
        admin::retire_key,
        admin::list_audit,
    ),
    components(
        schemas(ErrorBody, ErrorCode),
        responses(
            responses::Unauthorized,
            responses::InvalidClient,
            responses::AdminOnly,
            responses::NotFound,
            responses::PayloadTooLarge,
            responses::UnsupportedMediaType,
            responses::RateLimited,
            responses::Unavailable,
            responses::OtherError,
        ),
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "discovery", description = "RFC 8414 metadata and the JWKS"),
        (name = "oauth", description = "The token, revocation and introspection endpoints"),
        (name = "account", description = "Registration and self-service for a signed-in user"),
        (name = "mfa", description = "TOTP two-factor authentication"),
        (name = "admin", description = "Administration (bearer token with role `admin`)"),
        (name = "pages", description = "Browser-facing HTML: the authorization endpoint and the hosted sign-in, consent and account pages. Their errors are HTML pages, not JSON"),
    ),
)]
struct ApiDoc;

/// Error responses several operations share, each in the `ErrorBody` shape.
pub mod responses {
    use utoipa::openapi::content::ContentBuilder;
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::response::{Response, ResponseBuilder};
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{Ref, RefOr};
    use utoipa::ToResponse;

    fn error(description: &str, headers: &[(&str, &str)]) -> Response {
        let mut response = ResponseBuilder::new().description(description).content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        );
        for (name, text) in headers {
            response = response.header(
                *name,
                HeaderBuilder::new()
                    .schema(ObjectBuilder::new().schema_type(Type::String))
                    .description(Some(*text))
                    .build(),
            );
        }
        response.build()
    }

    macro_rules! error_response {
        ($(#[$doc:meta])* $name:ident, $description:literal $(, $header:literal => $text:literal)*) => {
            $(#[$doc])*
            pub struct $name;

            impl<'r> ToResponse<'r> for $name {
                fn response() -> (&'r str, RefOr<Response>) {
                    (stringify!($name), error($description, &[$(($header, $text)),*]).into())
                }
            }
        };
    }

    error_response!(
        /// 401 on a bearer-protected endpoint.
        Unauthorized,
        "`invalid_token`: the bearer token is missing (\"missing bearer token\"), malformed, \
         badly signed, expired, revoked, a refresh token, or its user is gone or disabled",
        "WWW-Authenticate" => "`Bearer realm=\"tessera\"`, with `error=\"invalid_token\"` when a token was sent"
    );
    error_response!(
        /// 401 for bad client credentials.
        InvalidClient,
        "`invalid_client`: client authentication failed",
        "WWW-Authenticate" => "`Basic realm=\"tessera\"`"
    );
    error_response!(
        /// 403 for a valid token without the `admin` role.
        AdminOnly,
        "`forbidden`: the token's user does not hold the `admin` role"
    );
    error_response!(
        /// 404.
        NotFound,
        "`not_found`: no such resource"
    );
    error_response!(
        /// 413.
        PayloadTooLarge,
        "`invalid_request`: the request body is larger than 64 KiB"
    );
    error_response!(
        /// 415.
        UnsupportedMediaType,
        "`invalid_request`: the body has a content type this endpoint does not take"
    );
    error_response!(
        /// 429.
        RateLimited,
        "`rate_limited`: too many attempts from this address, or the account is locked",
        "Retry-After" => "Seconds to wait"
    );
    error_response!(
        /// 503.
        Unavailable,
        "`temporarily_unavailable`: the database cannot be reached",
        "Retry-After" => "Seconds to wait"
    );
    error_response!(
        /// Every operation's `default`: whatever else goes wrong keeps the shape.
        OtherError,
        "Any other error, in the same shape; an unexpected failure is 500 `server_error` \
         (logged, never detailed)"
    );
    /// What every `/admin` operation can answer besides its own: 401 (no live admin token),
    /// 403 (not an admin now), 503 and the default; references to the shared responses.
    pub struct AdminErrors;

    impl utoipa::IntoResponses for AdminErrors {
        fn responses() -> std::collections::BTreeMap<String, RefOr<Response>> {
            [
                ("401", "Unauthorized"),
                ("403", "AdminOnly"),
                ("503", "Unavailable"),
                ("default", "OtherError"),
            ]
            .into_iter()
            .map(|(status, name)| {
                (
                    status.to_string(),
                    RefOr::Ref(Ref::from_response_name(name)),
                )
            })
            .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::http::error::ErrorCode;

    #[test]
    fn every_error_code_tessera_answers_is_in_the_documented_enum() {
        let doc: serde_json::Value =
            serde_json::from_slice(&Document::render("http://tessera.test").unwrap().0).unwrap();
        let codes = doc["components"]["schemas"]["ErrorCode"]["enum"]
            .as_array()
            .unwrap()
            .clone();
        let errors = [
            Error::InvalidRequest(String::new()),
            Error::InvalidClient(String::new()),
            Error::InvalidGrant(String::new()),
            Error::UnauthorizedClient(String::new()),
            Error::UnsupportedGrantType(String::new()),
            Error::InvalidScope(String::new()),
            Error::invalid_token("x"),
            Error::InsufficientScope(String::new()),
            Error::UsernameTaken,
            Error::WeakPassword(String::new()),
            Error::RateLimited { retry_after: 1 },
            Error::MfaRequired {
                mfa_token: String::new().into(),
            },
            Error::NotFound(String::new()),
            Error::Forbidden(String::new()),
            Error::Conflict(String::new()),
            Error::Unavailable,
            Error::bug("x", "y"),
        ];
        for error in errors {
            let code = serde_json::to_value(ErrorCode::of(&error)).unwrap();
            assert!(codes.contains(&code), "{code} is not documented");
        }
    }
}
