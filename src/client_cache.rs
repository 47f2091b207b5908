//! The client cache: stored clients kept in memory, so that authenticating a client (every
//! client_credentials, refresh, code exchange, introspection and revocation request) costs
//! no database round trip.
//!
//! What it holds is the client row as the database has it, the SHA-256 hash of a
//! confidential client's secret included: never a presented secret, never the outcome of a
//! check. Every request still hashes the secret it presents and compares in constant time.
//!
//! When it forgets (docs/security.md): every change to the `clients` table bumps a change
//! counter in the same transaction (a database trigger, so no code path can skip it), and
//! each instance reads the counter on every key poll (`TESSERA_KEY_POLL_INTERVAL`), clearing
//! the cache when it moved. The instance that makes a change through its admin API also
//! clears its own cache as soon as the change is committed. A cache whose last successful
//! check is older than two poll intervals is not used at all, so an instance cut off from
//! the counter falls back to reading every client. Unknown client ids are never cached (a
//! new client works everywhere at once, and nobody can fill memory with made-up ids), and a
//! secret that does not match the cached row is checked against the database before it is
//! refused (a secret rotated elsewhere works everywhere at once).

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::clients::{self, Client, ClientCredentials, FIRST_PARTY};
use crate::error::Result;
use crate::store::{self, DbConnection};

/// At most this many clients are kept; past it, lookups of the rest read the database.
const CAPACITY: usize = 10_000;

/// Stored clients by id, valid while the change counter stays put.
#[derive(Debug)]
pub struct ClientCache {
    inner: RwLock<Inner>,
    /// How old the last check of the change counter may be for the cache to be used.
    max_age: Duration,
}

#[derive(Debug, Default)]
struct Inner {
    clients: HashMap<String, Client>,
    /// Bumped by every clearing, so that a row read before a clearing is not put back
    /// after it.
    generation: u64,
    /// The change counter as last read.
    version: Option<i64>,
    /// When the last successful check of the counter started.
    checked_at: Option<Instant>,
}

impl Inner {
    fn is_fresh(&self, max_age: Duration) -> bool {
        self.checked_at.is_some_and(|at| at.elapsed() <= max_age)
    }
}

impl ClientCache {
    /// An empty cache for an instance polling every `poll_interval`; it is used only after
    /// the first [`ClientCache::sync`].
    pub fn new(poll_interval: Duration) -> Self {
        ClientCache {
            inner: RwLock::new(Inner::default()),
            max_age: poll_interval.saturating_mul(2) + Duration::from_secs(1),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock leaves nothing half-written that matters: at worst
        // a cleared map.
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads the change counter and clears the cache if it moved; returns true when it did.
    /// Called at start-up and on every key poll.
    pub fn sync(&self, conn: &mut DbConnection) -> Result<bool> {
        let started = Instant::now();
        let version = store::clients::change_count(conn)?;
        let mut inner = self.write();
        let moved = inner.version != Some(version);
        if moved {
            inner.clients.clear();
            inner.generation += 1;
            inner.version = Some(version);
        }
        // Everything committed before `started` is reflected in `version`.
        inner.checked_at = Some(started);
        Ok(moved)
    }

    /// Forgets every client at once: called by the instance that changed one, after the
    /// change is committed.
    pub fn invalidate(&self) {
        let mut inner = self.write();
        inner.clients.clear();
        inner.generation += 1;
    }

    /// How many clients are cached now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.read().clients.len()
    }

    /// True when no client is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn cached(&self, client_id: &str) -> Option<Client> {
        let inner = self.read();
        if !inner.is_fresh(self.max_age) {
            return None;
        }
        inner.clients.get(client_id).cloned()
    }

    fn generation(&self) -> u64 {
        self.read().generation
    }

    /// Keeps `client` unless the cache was cleared since `generation` (the row may predate
    /// the change that cleared it) or is not fresh.
    fn keep(&self, generation: u64, client: &Client) {
        let mut inner = self.write();
        if inner.generation != generation || !inner.is_fresh(self.max_age) {
            return;
        }
        if inner.clients.len() < CAPACITY || inner.clients.contains_key(&client.client_id) {
            inner
                .clients
                .insert(client.client_id.clone(), client.clone());
        }
    }

    /// Reads a stored client from the database and keeps it.
    fn load(
        &self,
        conn: &mut DbConnection,
        client_id: &str,
        first_party_scopes: &[String],
    ) -> Result<Option<Client>> {
        let generation = self.generation();
        let client = clients::find(conn, client_id, first_party_scopes)?;
        if let Some(client) = &client {
            self.keep(generation, client);
        }
        Ok(client)
    }

    /// [`clients::find`] through the cache.
    pub fn find(
        &self,
        conn: &mut DbConnection,
        client_id: &str,
        first_party_scopes: &[String],
    ) -> Result<Option<Client>> {
        if client_id == FIRST_PARTY {
            return clients::find(conn, client_id, first_party_scopes);
        }
        match self.cached(client_id) {
            Some(client) => Ok(Some(client)),
            None => self.load(conn, client_id, first_party_scopes),
        }
    }

    /// The client `credentials` authenticate, if it is cached and its secret matches; `None`
    /// means "ask [`ClientCache::authenticate`]", never "refused". No database work.
    pub fn authenticate_cached(&self, credentials: &ClientCredentials) -> Option<Client> {
        let client_id = credentials.client_id.as_deref()?;
        if client_id == FIRST_PARTY || credentials.secret.is_none() {
            return None;
        }
        clients::check_credentials(Some(self.cached(client_id)?), credentials).ok()
    }

    /// [`clients::authenticate`] through the cache: the same rules and the same answers. A
    /// secret that does not match the cached row is checked once more against the database.
    pub fn authenticate(
        &self,
        conn: &mut DbConnection,
        credentials: &ClientCredentials,
        first_party_scopes: &[String],
    ) -> Result<Client> {
        let client_id = match credentials.client_id.as_deref() {
            Some(id) if id != FIRST_PARTY => id,
            _ => return clients::authenticate(conn, credentials, first_party_scopes),
        };
        if let Some(client) = self.cached(client_id) {
            if let Ok(client) = clients::check_credentials(Some(client), credentials) {
                return Ok(client);
            }
        }
        let client = self.load(conn, client_id, first_party_scopes)?;
        clients::check_credentials(client, credentials)
    }
}
