//! Storage: the only module that imports diesel. One query set serves SQLite and PostgreSQL
//! through diesel's `MultiConnection`; where SQL must differ (locks, transaction start) the
//! backend is matched here and nowhere else.

pub mod audit;
pub mod authorization_codes;
pub mod browser_sessions;
pub mod clients;
pub mod consents;
pub mod login_failures;
pub mod mail_tokens;
pub mod mfa;
pub mod outbox;
pub mod prepared;
pub mod rate_limits;
pub mod refresh_tokens;
pub mod revocations;
pub mod revoked_tokens;
pub mod schema;
pub mod session_links;
pub mod sessions;
pub mod signing_keys;
pub mod users;

use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

/// Where the database lives, told by the URL scheme and never guessed.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    // A PostgreSQL URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::Sqlite(path) => write!(f, "Sqlite({})", path.display()),
            DatabaseUrl::Postgres(_) => f.write_str("Postgres(<redacted>)"),
        }
    }
}

impl DatabaseUrl {
    /// Parses `sqlite://PATH`, `postgres://…` or `postgresql://…`.
    pub fn parse(url: &str) -> Result<Self> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                anyhow::bail!("sqlite:// needs a file path");
            }
            Ok(DatabaseUrl::Sqlite(std::path::PathBuf::from(path)))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_string()))
        } else {
            anyhow::bail!("the scheme must be sqlite://, postgres:// or postgresql://")
        }
    }
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// A connection to either backend; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// The connection pool shared by every request.
pub type DbPool = r2d2::Pool<Manager>;
/// A failure to check a connection out of the pool (the database is unreachable).
pub type PoolError = r2d2::PoolError;

/// Connects by the URL's scheme. `DbConnection::establish` would try each backend in turn,
/// so an unreachable PostgreSQL could quietly fall through to SQLite.
#[derive(Debug)]
pub struct Manager {
    url: DatabaseUrl,
}

/// A pooled connection, with what the pool needs to know to skip or force a health check.
pub struct PooledConnection {
    conn: DbConnection,
    /// When it was last known good: connected, or answered the pool's `SELECT 1`. Not moved
    /// on return: the pool cannot tell a clean use from one whose error its caller dropped
    /// (the feed poller, the outbox workers), and a dead connection whose failures refreshed
    /// its trust would be handed out for as long as something failed on it every second.
    last_good: Instant,
    /// A query on it failed as if the server were gone: the pool drops it on return.
    suspect: bool,
}

impl PooledConnection {
    /// Marks the connection as possibly dead, so the pool replaces it instead of handing it
    /// out again (after a database restart every old connection is).
    pub fn mark_suspect(&mut self) {
        self.suspect = true;
    }
}

impl std::ops::Deref for PooledConnection {
    type Target = DbConnection;
    fn deref(&self) -> &DbConnection {
        &self.conn
    }
}

impl std::ops::DerefMut for PooledConnection {
    fn deref_mut(&mut self) -> &mut DbConnection {
        &mut self.conn
    }
}

/// A connection checked within this long is handed out without a `SELECT 1` first: a hot
/// path pays one round trip per connection per second, not one per request, and a
/// connection that failed in a request is dropped on return instead (`mark_suspect`).
const TRUSTED_FOR: Duration = Duration::from_secs(1);

impl ManageConnection for Manager {
    type Connection = PooledConnection;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<PooledConnection, r2d2::Error> {
        let conn = match &self.url {
            DatabaseUrl::Postgres(url) => PgConnection::establish(&with_connect_timeout(url))
                .map(DbConnection::Postgresql)
                .map_err(r2d2::Error::ConnectionError)?,
            DatabaseUrl::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(r2d2::Error::ConnectionError)?;
                // WAL lets readers run beside the one writer; busy_timeout makes writers queue
                // instead of failing at once.
                conn.batch_execute(
                    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;",
                )
                .map_err(r2d2::Error::QueryError)?;
                DbConnection::Sqlite(conn)
            }
        };
        Ok(PooledConnection {
            conn,
            last_good: Instant::now(),
            suspect: false,
        })
    }

    fn is_valid(&self, conn: &mut PooledConnection) -> Result<(), r2d2::Error> {
        if !conn.suspect && conn.last_good.elapsed() < TRUSTED_FOR {
            return Ok(());
        }
        conn.conn
            .batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)?;
        conn.suspect = false;
        conn.last_good = Instant::now();
        Ok(())
    }

    fn has_broken(&self, conn: &mut PooledConnection) -> bool {
        conn.suspect
    }
}

fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        url.to_string()
    } else if url.contains('?') {
        format!("{url}&connect_timeout=3")
    } else {
        format!("{url}?connect_timeout=3")
    }
}

#[derive(Debug)]
struct NoCustomization;
impl CustomizeConnection<PooledConnection, r2d2::Error> for NoCustomization {}

/// Builds the pool. For SQLite the database file is made private first (see
/// [`prepare_sqlite_files`]).
pub fn connect(url: &DatabaseUrl, size: u32) -> Result<DbPool> {
    if let DatabaseUrl::Sqlite(path) = url {
        prepare_sqlite_files(path)?;
    }
    let pool = r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(3))
        .test_on_check_out(true)
        .connection_customizer(Box::new(NoCustomization))
        .build(Manager { url: url.clone() })
        .map_err(|e| anyhow!("cannot connect to the database: {e}"))?;
    Ok(pool)
}

/// Makes the SQLite files readable by their owner only, whatever the umask: the folder, if
/// tessera creates it, gets 0700; the database file is created 0600 before SQLite opens it,
/// and an existing one (or its `-wal`/`-shm`) more open than that is narrowed to 0600. SQLite
/// creates `-wal` and `-shm` later, with the database file's mode (its unix VFS sets it
/// explicitly), so they are 0600 as well.
fn prepare_sqlite_files(path: &std::path::Path) -> Result<()> {
    // SQLite's in-memory database and URI filenames name no file of ours.
    let name = path.to_string_lossy();
    if name == ":memory:" || name.starts_with("file:") {
        return Ok(());
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::crypto::create_private_dir(dir)
            .with_context(|| format!("creating the database folder {}", dir.display()))?;
    }
    private_file()
        .open(path)
        .with_context(|| format!("creating the database file {}", path.display()))?;
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = std::path::PathBuf::from(file);
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private", file.display()))?;
            log::info!("narrowed {} from mode {mode:04o} to 0600", file.display());
        }
    }
    Ok(())
}

/// Options that open a file for writing, creating it with mode 0600 if missing.
fn private_file() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Applies pending migrations for the connection's backend; returns their names.
///
/// Several instances may start at once on one database, and each migration checks what is
/// applied before it runs, so they must migrate in turn: PostgreSQL under an advisory
/// lock, SQLite under an exclusive lock on a file beside the database (its own locks cannot
/// span diesel's per-migration transactions).
pub fn migrate(conn: &mut DbConnection, database: &DatabaseUrl) -> Result<Vec<String>> {
    let _file_lock = match database {
        DatabaseUrl::Sqlite(path) => {
            let mut lock_path = path.clone().into_os_string();
            lock_path.push(".migrate-lock");
            let file = private_file().open(&lock_path).with_context(|| {
                format!("opening the migration lock {}", lock_path.to_string_lossy())
            })?;
            file.lock().context("taking the migration lock")?;
            Some(file)
        }
        DatabaseUrl::Postgres(_) => None,
    };
    let applied = match conn {
        DbConnection::Postgresql(pg) => {
            // Several instances may start at once; the advisory lock makes them migrate in turn.
            pg.batch_execute("SELECT pg_advisory_lock(7301000)")
                .context("taking the migration lock")?;
            let result = pg
                .run_pending_migrations(POSTGRES_MIGRATIONS)
                .map(|v| v.iter().map(|m| m.to_string()).collect());
            let _ = pg.batch_execute("SELECT pg_advisory_unlock(7301000)");
            result
        }
        DbConnection::Sqlite(sqlite) => sqlite
            .run_pending_migrations(SQLITE_MIGRATIONS)
            .map(|v| v.iter().map(|m| m.to_string()).collect()),
    };
    applied.map_err(|e| anyhow!("applying migrations failed: {e}"))
}

/// Named database-wide locks, taken inside [`exclusive_transaction`].
#[derive(Debug, Clone, Copy)]
pub enum Lock {
    /// Signing-key generation and rotation.
    SigningKeys = 7_301_001,
}

/// Runs `f` in a write transaction. On SQLite it is `BEGIN IMMEDIATE`, so it takes the write
/// lock up front: a deferred transaction that reads and then writes fails with SQLITE_BUSY
/// when another writer committed in between, which busy_timeout does not cure.
pub fn transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    match conn {
        DbConnection::Postgresql(_) => conn.transaction(f),
        DbConnection::Sqlite(_) => {
            conn.batch_execute("BEGIN IMMEDIATE")?;
            match f(conn) {
                Ok(value) => match conn.batch_execute("COMMIT") {
                    Ok(()) => Ok(value),
                    Err(e) => {
                        let _ = conn.batch_execute("ROLLBACK");
                        Err(e.into())
                    }
                },
                Err(e) => {
                    let _ = conn.batch_execute("ROLLBACK");
                    Err(e)
                }
            }
        }
    }
}

/// Like [`transaction`], holding the named lock until it ends, so that work such as key
/// generation happens once however many instances attempt it at the same moment. SQLite's
/// `BEGIN IMMEDIATE` already serialises all writers.
pub fn exclusive_transaction<T, E>(
    conn: &mut DbConnection,
    lock: Lock,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<DieselError>,
{
    transaction(conn, |conn| {
        if let DbConnection::Postgresql(pg) = conn {
            diesel::sql_query(format!("SELECT pg_advisory_xact_lock({})", lock as i64))
                .execute(pg)?;
        }
        f(conn)
    })
}

/// How many rows one purge statement deletes at most.
pub const PURGE_BATCH: i64 = 1000;

/// Runs a deleting batch (the keys of at most [`PURGE_BATCH`] rows, then their deletion)
/// until one comes back short; returns the total. Each batch commits on its own, so a purge of a big
/// backlog never holds a lock for long, and other writers interleave between batches.
pub fn in_batches(mut batch: impl FnMut() -> QueryResult<usize>) -> QueryResult<usize> {
    let mut total = 0;
    loop {
        let deleted = batch()?;
        total += deleted;
        if (deleted as i64) < PURGE_BATCH {
            return Ok(total);
        }
    }
}

/// Checks that the database answers.
pub fn ping(conn: &mut DbConnection) -> Result<(), DieselError> {
    conn.batch_execute("SELECT 1")
}

/// Whether the database answers, decided within about `wait`: an idle connection that
/// answers `SELECT 1` says yes; a pool whose every connection is in use says yes as well
/// (busy is not down: a slow statement or a held lock keeps them, and an instance taken out
/// of rotation for it would only push its load onto the others, which share the database);
/// a pool with no connection asks for a new one and says no if none comes within `wait`.
pub fn reachable(pool: &DbPool, wait: Duration) -> bool {
    let answers = |mut conn: r2d2::PooledConnection<Manager>| {
        let ok = ping(&mut conn).is_ok();
        if !ok {
            conn.mark_suspect();
        }
        ok
    };
    if let Some(conn) = pool.try_get() {
        return answers(conn);
    }
    if pool.state().connections > 0 {
        return true;
    }
    pool.get_timeout(wait).is_ok_and(answers)
}

/// True when the error says the database cannot be reached right now (as opposed to a bug
/// or a constraint), so the client gets 503 and may retry.
pub fn is_unavailable(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            message.contains("database is locked")
                || message.contains("terminating connection")
                || message.contains("connection")
                || message.contains("server closed")
                || message.contains("shutting down")
                || message.contains("the database system is")
                // Out of space (SQLITE_FULL; PostgreSQL's disk_full, 53100) or of connection
                // slots (too_many_connections, 53300): both pass once the operator acts.
                || message.contains("database or disk is full")
                || message.contains("no space left on device")
                || message.contains("could not extend file")
                || message.contains("too many clients")
                || message.contains("remaining connection slots")
        }
        DieselError::BrokenTransactionManager => true,
        _ => false,
    }
}

/// True when the error is a unique-constraint violation.
pub fn is_unique_violation(error: &DieselError) -> bool {
    matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The result of one storage call; the error stays diesel's so callers can tell a lost
/// connection (`is_unavailable`) from a constraint violation.
pub type QueryResult<T> = std::result::Result<T, DieselError>;

// The domain error learns about storage failures here, so that only `store` names diesel.
impl From<DieselError> for crate::error::Error {
    fn from(error: DieselError) -> Self {
        if is_unavailable(&error) {
            log::warn!("database unavailable: {error}");
            crate::error::Error::Unavailable
        } else {
            crate::error::Error::Internal(
                anyhow::Error::new(error).context("database query failed"),
            )
        }
    }
}

impl From<PoolError> for crate::error::Error {
    fn from(error: PoolError) -> Self {
        log::warn!("database unavailable: {error}");
        crate::error::Error::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_need_a_known_scheme() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/t.db").unwrap(),
            DatabaseUrl::Sqlite("data/t.db".into())
        );
        assert!(DatabaseUrl::parse("mysql://x").is_err());
        assert!(DatabaseUrl::parse("data/t.db").is_err());
    }
}
