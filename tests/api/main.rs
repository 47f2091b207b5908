//! One integration-test binary: each module is one endpoint or flow.

#[macro_use]
mod helpers;

mod browser;
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
