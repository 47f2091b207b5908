//! One integration-test binary: each module is one endpoint or flow.

#[macro_use]
mod helpers;

mod admin;
mod admin_audit;
mod admin_clients;
mod admin_keys;
mod admin_users;
mod browser;
mod cli;
mod client_credentials;
mod foundation;
mod keys;
mod login;
mod mfa;
mod operations;
mod reachable;
mod refresh;
mod resilience;
mod resource_server;
mod third_party;
