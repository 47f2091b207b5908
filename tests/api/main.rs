//! One integration-test binary: each module is one endpoint or flow.

#[macro_use]
mod helpers;

mod foundation;
mod keys;
mod login;
mod reachable;
mod refresh;
mod resource_server;
mod third_party;
