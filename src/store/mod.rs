//! Storage with diesel on SQLite (embedded default) or PostgreSQL (production). Both backends
//! share one set of table definitions and one body of query code: the `on_conn!` and
//! `write_tx!` macros compile the same statements once per backend.

pub mod clients;
pub mod identity;
pub mod indicators;
pub mod packages;
pub mod records;
pub mod tables;
pub mod transfers;

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

pub use records::{Applied, Change, PreparedRecord, Profile, RecordOutcome, StoredVersion};

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
/// IMMEDIATE`) so concurrent writers wait instead of failing; PostgreSQL takes a transaction
/// advisory lock so change-feed sequence numbers commit in order (a consumer reading after a
/// cursor never misses a change that commits later with a smaller number).
#[macro_export]
macro_rules! write_tx {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConn::Sqlite(pooled) => {
                let conn: &mut diesel::SqliteConnection = &mut *pooled;
                conn.immediate_transaction(|$c| $body)
            }
            $crate::store::DbConn::Pg(pooled) => {
                let conn: &mut diesel::PgConnection = &mut *pooled;
                conn.transaction(|$c| {
                    diesel::sql_query("SELECT pg_advisory_xact_lock(7401)").execute($c)?;
                    $body
                })
            }
        }
    };
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

#[derive(Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Open (creating the SQLite file and its directory if needed) and apply migrations.
    pub fn open(location: &Location) -> StoreResult<Store> {
        let pool = match location {
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
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Connection(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                Pool::Sqlite(
                    diesel::r2d2::Pool::builder()
                        .max_size(8)
                        .connection_timeout(Duration::from_secs(30))
                        .connection_customizer(Box::new(SqlitePragmas))
                        .build(ConnectionManager::new(path.to_string_lossy()))
                        .map_err(|e| StoreError::Connection(e.to_string()))?,
                )
            }
        };
        let store = Store { pool };
        store.migrate()?;
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Pg(_) => Backend::Postgres,
        }
    }

    pub fn conn(&self) -> StoreResult<DbConn> {
        Ok(match &self.pool {
            Pool::Sqlite(p) => DbConn::Sqlite(p.get()?),
            Pool::Pg(p) => DbConn::Pg(p.get()?),
        })
    }

    /// Apply pending migrations; returns how many ran.
    pub fn migrate(&self) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        let ran = match &mut conn {
            DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
            DbConn::Pg(c) => c.run_pending_migrations(PG_MIGRATIONS).map(|v| v.len()),
        };
        ran.map_err(|e| StoreError::Connection(format!("migration failed: {e}")))
    }

    /// Is the database reachable and answering?
    pub fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn()?;
        on_conn!(&mut conn, |c| diesel::sql_query("SELECT 1").execute(c))?;
        Ok(())
    }
}

pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}
