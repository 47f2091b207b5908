//! Start-up: `Application` opens the state ([`crate::state`]), starts the background work
//! (key polling and rotation, purges, the outbox workers, the revocation feed's poller) and
//! binds the HTTP server; the CLI uses [`AppState::open`] alone.

use std::net::TcpListener;
use std::sync::{Arc, Weak};
use std::time::Duration;

use actix_web::dev::Server;
use anyhow::{Context, Result};

use crate::config::Settings;
use crate::state::{AppState, Role};

/// Runs key sync every poll interval and purges hourly, until the state is dropped.
fn spawn_upkeep(state: Weak<AppState>, poll: Duration) {
    std::thread::Builder::new()
        .name("tessera-upkeep".into())
        .spawn(move || {
            let mut last_purge = std::time::Instant::now();
            loop {
                std::thread::sleep(poll);
                let Some(state) = state.upgrade() else { break };
                // First, so that a slow key change cannot delay it.
                if let Err(e) = state.sync_clients() {
                    log::warn!("client cache check failed: {e:#}");
                }
                match state.sync_keys() {
                    Ok(true) => log::info!(
                        "signing keys changed; now signing with {:?}",
                        state.keys.active_kid()
                    ),
                    Ok(false) => {}
                    Err(e) => log::warn!("key sync failed: {e:#}"),
                }
                if last_purge.elapsed() >= Duration::from_secs(3600) {
                    last_purge = std::time::Instant::now();
                    if let Err(e) = state.purge() {
                        log::warn!("purge failed: {e:#}");
                    }
                }
            }
        })
        .expect("spawning the upkeep thread");
}

/// A bound, not yet running, HTTP server (and the management server, when configured).
pub struct Application {
    port: u16,
    server: Server,
    management: Option<(u16, Server)>,
    state: Arc<AppState>,
}

impl Application {
    /// Opens the state and binds the listener (port 0 picks a free port).
    pub fn build(settings: Settings) -> Result<Self> {
        let listener = TcpListener::bind(settings.listen)
            .with_context(|| format!("cannot listen on {} (TESSERA_LISTEN)", settings.listen))?;
        Self::build_with_listener(settings, listener)
    }

    /// Like [`Application::build`] on a listener the caller bound.
    pub fn build_with_listener(settings: Settings, listener: TcpListener) -> Result<Self> {
        let port = listener.local_addr()?.port();
        let management_listener = settings
            .management_listen
            .map(|addr| {
                TcpListener::bind(addr)
                    .with_context(|| format!("cannot listen on {addr} (TESSERA_MANAGEMENT_LISTEN)"))
            })
            .transpose()?;
        let state = Arc::new(AppState::open_as(settings, Role::Server)?);
        spawn_upkeep(
            Arc::downgrade(&state),
            Duration::from_secs(state.settings.key_poll_interval as u64),
        );
        crate::outbox::spawn_workers(&state.outbox, state.db.clone())
            .context("spawning the outbox workers")?;
        crate::revocation_feed::watch::spawn_poller(Arc::downgrade(&state.feed), state.db.clone())
            .context("starting the revocation feed poller")?;
        let server = crate::http::server(state.clone(), listener)?;
        let management = match management_listener {
            Some(listener) => {
                let port = listener.local_addr()?.port();
                Some((
                    port,
                    crate::http::management_server(state.clone(), listener)?,
                ))
            }
            None => None,
        };
        Ok(Application {
            port,
            server,
            management,
            state,
        })
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the management listener, when there is one.
    pub fn management_port(&self) -> Option<u16> {
        self.management.as_ref().map(|(port, _)| *port)
    }

    /// A handle that stops the server (tests stop an instance to see what outlives it); the
    /// management server stops with it.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The shared state, for tests that look inside.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until the process is told to stop. When one of the two servers stops, the
    /// other is stopped too: a half-running instance would pass one probe and fail the rest.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Some((_, management)) = self.management else {
            return self.server.await;
        };
        let public_handle = self.server.handle();
        let management_handle = management.handle();
        let public = async move {
            let result = self.server.await;
            management_handle.stop(true).await;
            result
        };
        let management = async move {
            let result = management.await;
            public_handle.stop(true).await;
            result
        };
        let (public, management) = futures_util::future::join(public, management).await;
        public.and(management)
    }
}
