//! tessera at an issuer URL that is its real address, for verifiers that follow discovery's
//! `jwks_uri` (the usual helpers use a placeholder issuer), with a handle to stop it.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::ServerHandle;
use tessera::app::Application;
use tessera::config::Settings;

use crate::helpers::*;

/// A running tessera whose issuer is `app.address`, and what stops it.
pub struct Reachable {
    pub app: TestApp,
    pub handle: ServerHandle,
}

/// Spawns tessera on a listener bound first, with the issuer and audience set to its address.
pub async fn spawn_reachable(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Reachable {
    let dir = Arc::new(tempfile::tempdir().expect("creating a temporary folder"));
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let address = format!("http://{}", listener.local_addr().unwrap());
    let mut settings = test_settings(fresh_database(&backend, dir.path()));
    settings.listen = listener.local_addr().unwrap();
    settings.issuer = address.clone();
    settings.audience = address.clone();
    configure(&mut settings);
    let build_settings = settings.clone();
    let app = tokio::task::spawn_blocking(move || {
        Application::build_with_listener(build_settings, listener)
    })
    .await
    .unwrap()
    .expect("starting tessera");
    let handle = app.handle();
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    Reachable {
        app: TestApp {
            address,
            client: reqwest::Client::new(),
            state,
            settings,
            dir,
        },
        handle,
    }
}
