//! One integration-test binary: each module is one endpoint or flow.

#[macro_use]
mod helpers;

mod foundation;
mod keys;
mod login;
mod refresh;
