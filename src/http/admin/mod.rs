//! The admin API under `/admin`: users, sessions, clients, signing keys and the audit log,
//! for bearer tokens with the `admin` role. Handlers parse, call `crate::admin`, and answer;
//! the rules and the audit trail live there.
//! One file per resource; the shared answers are here.

mod audit;
mod clients;
mod keys;
mod sessions;
mod users;

pub use audit::*;
pub use clients::*;
pub use keys::*;
pub use sessions::*;
pub use users::*;

use actix_web::http::header;
use actix_web::HttpResponse;

fn json_ok(body: impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body)
}

fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}
