//! One integration-test binary: each module is one endpoint or flow.

#[macro_use]
mod helpers;

mod abuse;
mod admin;
mod admin_audit;
mod admin_clients;
mod admin_keys;
mod admin_users;
mod algs;
mod architecture;
mod authorize;
mod backchannel;
mod bad_input;
mod browser;
mod browser_console;
mod browser_pages;
mod cli;
mod client_cache;
mod client_credentials;
mod console;
mod crash;
mod foundation;
mod instances;
mod keys;
mod lockout;
mod login;
mod mail;
mod mfa;
mod oidc;
mod openapi;
mod operations;
mod outbox;
mod postgres_tls;
mod private_postgres;
mod properties;
mod reachable;
mod refresh;
mod refresh_state;
mod resilience;
mod resource_server;
mod revocation_feed;
mod revocation_verifiers;
mod shared_limits;
mod statements;
mod third_party;
