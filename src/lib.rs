//! tessera: a standalone token-issuing authorization server.
//!
//! The module map and the rules that hold between modules are in `docs/architecture.md`.

pub mod accounts;
pub mod admin;
pub mod app;
pub mod audit;
pub mod authorize;
pub mod backchannel;
pub mod browser_session;
pub mod cli;
pub mod client_cache;
pub mod clients;
pub mod config;
pub mod consent;
pub mod console;
pub mod crypto;
pub mod error;
pub mod grants;
pub mod http;
pub mod lockout;
pub mod mail;
pub mod metrics;
pub mod mfa;
mod named;
pub mod oidc;
pub mod outbox;
pub mod paging;
pub mod passwords;
pub mod ratelimit;
pub mod recovery;
pub mod revocation_feed;
pub mod session_end;
pub mod sessions;
pub mod state;
pub mod store;
pub mod tls;
pub mod tokens;

/// The current time as unix seconds, the unit of every instant tessera stores.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
