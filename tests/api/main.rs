//! One integration-test binary: each module is one endpoint or flow.

#[macro_use]
mod helpers;

mod admin;
mod admin_audit;
mod admin_clients;
mod admin_keys;
mod admin_users;
mod cli;
mod client_credentials;
mod foundation;
mod login;
mod refresh;
