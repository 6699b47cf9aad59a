//! Storage with diesel on SQLite (embedded default) or PostgreSQL (production). Both backends
//! share one set of table definitions and one body of query code: the `on_conn!` and
//! `write_tx!` macros compile the same statements once per backend.

pub mod audit;
pub mod clients;
pub mod identity;
pub mod indicators;
pub mod operations;
pub mod packages;
pub mod records;
pub mod screening;
pub mod tables;
pub mod transfers;
pub mod tx;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use records::{Change, Profile, StoredVersion};
pub use tx::{
    Applied, PreparedRecord, RecordOutcome, TransferTx, WriteTx, in_town_write_transaction,
    in_transfer_transaction, in_write_transaction,
};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] diesel::result::Error),
    #[error("database connection error: {0}")]
    Connection(String),
    #[error("{0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Invalid(String),
    /// Well-formed, but it contradicts what the hub holds (unknown child, town, record).
    #[error("{0}")]
    Unprocessable(String),
    /// The workflow inside a write transaction asked for it to be undone (an atomic batch
    /// with a rejected record); the workflow answers for itself, so this never reaches a
    /// client.
    #[error("rolled back by the workflow")]
    RolledBack,
    /// A conditional write found the record other than expected (`records::Expected`);
    /// nothing was written. `None`: no such record.
    #[error("the record is not in the expected state")]
    PreconditionFailed {
        current: Option<records::RecordState>,
    },
}

impl From<diesel::r2d2::PoolError> for StoreError {
    fn from(e: diesel::r2d2::PoolError) -> Self {
        StoreError::Connection(e.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
enum Pool {
    Sqlite(diesel::r2d2::Pool<ConnectionManager<SqliteConnection>>),
    Pg(diesel::r2d2::Pool<ConnectionManager<PgConnection>>),
}

/// A pooled connection to whichever backend the hub runs on.
pub enum DbConn {
    Sqlite(PooledConnection<ConnectionManager<SqliteConnection>>),
    Pg(PooledConnection<ConnectionManager<PgConnection>>),
}

impl DbConn {
    /// Let transactions on this connection reach the hub's keys (see `keys::KeysInScope`).
    fn attach(&mut self, keys: &std::sync::Arc<crate::keys::HubKeys>) {
        match self {
            DbConn::Sqlite(p) => PooledConnection::extensions_mut(p).insert(keys.clone()),
            DbConn::Pg(p) => PooledConnection::extensions_mut(p).insert(keys.clone()),
        };
    }

    /// The keys of the hub this connection belongs to.
    pub fn keys(&self) -> StoreResult<std::sync::Arc<crate::keys::HubKeys>> {
        match self {
            DbConn::Sqlite(p) => attached_keys(p),
            DbConn::Pg(p) => attached_keys(p),
        }
        .ok_or_else(|| StoreError::Invalid("this connection carries no hub keys".into()))
    }
}

/// The keys `DbConn::attach` gave a pooled connection.
pub fn attached_keys<M: diesel::r2d2::ManageConnection>(
    pooled: &PooledConnection<M>,
) -> Option<std::sync::Arc<crate::keys::HubKeys>> {
    PooledConnection::extensions(pooled)
        .get::<std::sync::Arc<crate::keys::HubKeys>>()
        .cloned()
}

/// Run `$body` with `$c` bound to the concrete diesel connection.
#[macro_export]
macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Sqlite(pooled) => {
                let $c: &mut diesel::SqliteConnection = &mut *pooled;
                $body
            }
            $crate::store::DbConn::Pg(pooled) => {
                let $c: &mut diesel::PgConnection = &mut *pooled;
                $body
            }
        }
    };
}

/// Run `$body` in one write transaction. SQLite takes the write lock up front (`BEGIN
/// IMMEDIATE`) so concurrent writers wait instead of failing; PostgreSQL takes the locks of
/// [`pg_write_locks`] first. `write_tx!(conn, town = code, |c| …)` is a transaction that writes
/// to that town only: on PostgreSQL it runs beside the transactions of other towns.
#[macro_export]
macro_rules! write_tx {
    ($conn:expr, |$c:ident| $body:expr) => {
        $crate::write_tx!(@locked $conn, None, |$c| $body)
    };
    ($conn:expr, town = $town:expr, |$c:ident| $body:expr) => {
        $crate::write_tx!(@locked $conn, Some($town), |$c| $body)
    };
    (@locked $conn:expr, $town:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Sqlite(pooled) => {
                let _keys = $crate::keys::KeysInScope::enter($crate::store::attached_keys(pooled));
                let conn: &mut diesel::SqliteConnection = &mut *pooled;
                conn.immediate_transaction(|$c| $body)
            }
            $crate::store::DbConn::Pg(pooled) => {
                let _keys = $crate::keys::KeysInScope::enter($crate::store::attached_keys(pooled));
                let conn: &mut diesel::PgConnection = &mut *pooled;
                conn.transaction(|$c| {
                    $crate::store::pg_write_locks($c, $town)?;
                    $body
                })
            }
        }
    };
}

/// The locks a PostgreSQL write transaction takes before anything else (held until it ends).
/// A transaction that writes to one town only takes the hub's write lock shared, then the
/// town's own lock (the lock of its audit chain): transactions of different towns run side by
/// side, while those of one town follow each other — so the change-feed numbers a town's
/// transactions draw (`record_versions.seq`) commit in order, and a consumer reading the
/// town's feed after a cursor never misses a change that commits later with a smaller number.
/// Every other write transaction takes the write lock exclusively and runs alone.
pub fn pg_write_locks(conn: &mut PgConnection, town: Option<&str>) -> QueryResult<()> {
    let Some(town) = town else {
        return diesel::sql_query("SELECT pg_advisory_xact_lock(7401)")
            .execute(conn)
            .map(|_| ());
    };
    diesel::sql_query("SELECT pg_advisory_xact_lock_shared(7401)").execute(conn)?;
    audit::ChainLock::lock_chain(conn, town)
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        // WAL lets readers run beside the single writer; FULL sync makes every commit
        // durable; the busy timeout makes writers queue rather than fail.
        // (`batch_execute`: a prepared statement would run only the first pragma.)
        use diesel::connection::SimpleConnection;
        conn.batch_execute(
            "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
             PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

#[derive(Debug)]
struct PgSettings;

impl CustomizeConnection<PgConnection, diesel::r2d2::Error> for PgSettings {
    fn on_acquire(&self, conn: &mut PgConnection) -> Result<(), diesel::r2d2::Error> {
        // diesel caches prepared statements per connection; a generic plan made while a table
        // was still empty (sequential scan) would otherwise be kept as the table grows.
        diesel::sql_query("SET plan_cache_mode = force_custom_plan")
            .execute(conn)
            .map(|_| ())
            .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// Where the hub keeps its data: a PostgreSQL URL, or a SQLite file in the data directory.
#[derive(Debug, Clone)]
pub enum Location {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Location {
    pub fn resolve(database_url: Option<&str>, data_dir: &Path) -> Location {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Location::Postgres(url.to_string())
            }
            Some(url) => Location::Sqlite(PathBuf::from(url.trim_start_matches("sqlite://"))),
            None => Location::Sqlite(data_dir.join("kodomo-hub.sqlite3")),
        }
    }
}

/// Connections of the pool: at most `max`, `in_use` of them lent out now.
#[derive(Debug, Clone, Copy)]
pub struct PoolUsage {
    pub max: u32,
    pub in_use: u32,
}

impl PoolUsage {
    /// Every connection is lent out: the next request waits for one.
    pub fn saturated(&self) -> bool {
        self.in_use >= self.max
    }
}

#[derive(Clone)]
pub struct Store {
    pool: Pool,
    keys: std::sync::Arc<crate::keys::HubKeys>,
    /// Where the keys are kept (a key rotation replaces the signing key file).
    key_paths: crate::keys::KeyPaths,
}

impl Store {
    /// Open (creating the SQLite file and its directory if needed), apply migrations, load the
    /// hub's keys from `key_paths` (creating them on a new hub; see `keys::load`) and convert
    /// audit entries written before the trail was keyed.
    pub fn open(location: &Location, key_paths: &crate::keys::KeyPaths) -> StoreResult<Store> {
        let pool = Pool::open(location)?;
        migrate(&pool)?;
        let mut conn = connect(&pool)?;
        let keys = std::sync::Arc::new(crate::keys::load(&mut conn, key_paths)?);
        conn.attach(&keys);
        let converted = crate::store::audit::key_legacy_entries(&mut conn, &keys.audit)?;
        if converted > 0 {
            tracing::info!(
                converted,
                "audit entries written before the trail was keyed now belong to keyed chains"
            );
        }
        Ok(Store {
            pool,
            keys,
            key_paths: key_paths.clone(),
        })
    }

    /// Apply pending migrations only; returns how many ran. Keys are neither read nor made
    /// (`migrate` may run from a machine that does not hold the hub's key files); the hub's
    /// next start does the rest.
    pub fn migrate_only(location: &Location) -> StoreResult<usize> {
        migrate(&Pool::open(location)?)
    }

    /// The keys of the hub this store belongs to.
    pub fn keys(&self) -> &crate::keys::HubKeys {
        &self.keys
    }

    /// Where the hub's key files are.
    pub fn key_paths(&self) -> &crate::keys::KeyPaths {
        &self.key_paths
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Pg(_) => Backend::Postgres,
        }
    }

    /// A pooled connection, carrying this hub's keys for the transactions run on it.
    pub fn conn(&self) -> StoreResult<DbConn> {
        let mut conn = connect(&self.pool)?;
        conn.attach(&self.keys);
        Ok(conn)
    }

    /// Is the database reachable and answering within `wait` (including the wait for a
    /// pooled connection)?
    pub fn ping(&self, wait: Duration) -> StoreResult<()> {
        let mut conn = match &self.pool {
            Pool::Sqlite(p) => DbConn::Sqlite(p.get_timeout(wait)?),
            Pool::Pg(p) => DbConn::Pg(p.get_timeout(wait)?),
        };
        on_conn!(&mut conn, |c| diesel::sql_query("SELECT 1").execute(c))?;
        Ok(())
    }

    /// How busy the connection pool is.
    pub fn pool_usage(&self) -> PoolUsage {
        let (state, max) = match &self.pool {
            Pool::Sqlite(p) => (p.state(), p.max_size()),
            Pool::Pg(p) => (p.state(), p.max_size()),
        };
        PoolUsage {
            max,
            in_use: state.connections - state.idle_connections,
        }
    }
}

impl Pool {
    /// A connection pool for `location` (creating the SQLite file and its directory, private
    /// to the hub's user).
    fn open(location: &Location) -> StoreResult<Pool> {
        Ok(match location {
            Location::Postgres(url) => Pool::Pg(
                diesel::r2d2::Pool::builder()
                    .max_size(8)
                    .connection_timeout(Duration::from_secs(10))
                    .connection_customizer(Box::new(PgSettings))
                    .build(ConnectionManager::new(url))
                    .map_err(|e| StoreError::Connection(e.to_string()))?,
            ),
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    crate::keys::ensure_private_dir(dir)?;
                }
                create_private_file(path)?;
                Pool::Sqlite(
                    diesel::r2d2::Pool::builder()
                        .max_size(8)
                        .connection_timeout(Duration::from_secs(30))
                        .connection_customizer(Box::new(SqlitePragmas))
                        .build(ConnectionManager::new(path.to_string_lossy()))
                        .map_err(|e| StoreError::Connection(e.to_string()))?,
                )
            }
        })
    }
}

fn connect(pool: &Pool) -> StoreResult<DbConn> {
    Ok(match pool {
        Pool::Sqlite(p) => DbConn::Sqlite(p.get()?),
        Pool::Pg(p) => DbConn::Pg(p.get()?),
    })
}

/// Apply pending migrations; returns how many ran.
fn migrate(pool: &Pool) -> StoreResult<usize> {
    let ran = match &mut connect(pool)? {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len()),
    };
    ran.map_err(|e| StoreError::Connection(format!("migration failed: {e}")))
}

/// Create the SQLite database file readable by the hub's user only (0600) before SQLite opens
/// it (SQLite gives its WAL and shared-memory files the database file's permissions), and
/// tighten an existing one.
fn create_private_file(path: &Path) -> StoreResult<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StoreError::Connection(format!("cannot open {}: {e}", path.display())))?;
    crate::keys::make_private(path)
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
