//! One integration-test binary: each module is one endpoint or flow.

#[macro_use]
mod helpers;

mod browser;
mod foundation;
mod login;
mod operations;
mod mfa;
mod refresh;
mod resilience;
