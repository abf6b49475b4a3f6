//! mailferry's store: one schema on an embedded SQLite file or a shared PostgreSQL, through
//! sqlx's `Any` driver with the same queries (`$1` placeholders work on both).
//!
//! # Layout
//! - [`Store`]: opening, and the versioned schema migrations in `migrations/{sqlite,postgres}`.
//! - [`checkpoint`]: the copy engine's checkpoints: folders and the source→target message map.
//! - [`migration`](mod@migration): the service's migrations (queue with leases, progress,
//!   sealed credentials, purge), the admin password hash and API tokens.
//! - [`groupware`](mod@groupware): the groupware checkpoints: collections mapped with their
//!   sync token or ctag, each source object's fate; explicit DAV addresses of migrations.
//! - [`sieve`](mod@sieve): which target script each source Sieve script was stored as.
//! - [`licence`]: licence keys and the migration allowance they add up to.
//!
//! # Contract
//! Every write that the engine relies on to avoid a duplicate is committed before the
//! action it protects (an APPEND) is sent; see [`checkpoint`]. A migration is taken by one
//! worker at a time, under a lease that a crashed worker's successor takes over; see
//! [`Store::claim_due`]. On SQLite, deleted rows are overwritten (`secure_delete`), so
//! erased credentials do not linger in free pages.

pub mod checkpoint;
pub mod groupware;
pub mod licence;
pub mod migration;
pub mod sieve;

use std::path::Path;
use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::AnyPool;

pub use checkpoint::{FolderCheckpoint, FolderTally, MappedMessage, MessageState};
pub use groupware::{DavCollectionCheckpoint, DavObjectRow, DavObjectState};
pub use licence::{AllowanceRecord, LicenceRecord, SealedMigration, Short};
pub use migration::{
    EndpointRecord, MigrationRecord, MigrationState, NewMigration, Pass, ProgressRecord, Totals,
    UnknownState,
};
pub use sieve::SieveScriptRow;

/// What can go wrong with the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database `{location}`")]
    Open {
        location: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot create the state directory `{path}`")]
    Directory {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("upgrading the database schema to version {version} failed")]
    Migrate {
        version: u32,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database is at schema version {found}, newer than this mailferry ({known}): upgrade mailferry")]
    TooNew { found: i64, known: u32 },
    #[error("database query failed")]
    Query(#[from] sqlx::Error),
}

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

struct Migration {
    version: u32,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sqlite: include_str!("../migrations/sqlite/0001_checkpoints.sql"),
        postgres: include_str!("../migrations/postgres/0001_checkpoints.sql"),
    },
    Migration {
        version: 2,
        sqlite: include_str!("../migrations/sqlite/0002_service.sql"),
        postgres: include_str!("../migrations/postgres/0002_service.sql"),
    },
    Migration {
        version: 3,
        sqlite: include_str!("../migrations/sqlite/0003_licences.sql"),
        postgres: include_str!("../migrations/postgres/0003_licences.sql"),
    },
    Migration {
        version: 5,
        sqlite: include_str!("../migrations/sqlite/0005_groupware.sql"),
        postgres: include_str!("../migrations/postgres/0005_groupware.sql"),
    },
    Migration {
        version: 6,
        sqlite: include_str!("../migrations/sqlite/0006_target_state.sql"),
        postgres: include_str!("../migrations/postgres/0006_target_state.sql"),
    },
    Migration {
        version: 7,
        sqlite: include_str!("../migrations/sqlite/0007_sieve.sql"),
        postgres: include_str!("../migrations/postgres/0007_sieve.sql"),
    },
    Migration {
        version: 8,
        sqlite: include_str!("../migrations/sqlite/0008_takeovers.sql"),
        postgres: include_str!("../migrations/postgres/0008_takeovers.sql"),
    },
];

/// A connection pool with the schema up to date.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl Store {
    /// Opens (creating it if needed) an SQLite file, in WAL mode. `synchronous=NORMAL`: a
    /// commit survives the process being killed, which is what resumption needs; a power
    /// loss may lose the last commits, which then resume by looking at the target.
    pub async fn open_sqlite(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        Self::connect(&url).await
    }

    /// Connects to `sqlite://...` or `postgres://...`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let location = redact(url);
        let options = AnyConnectOptions::from_str(url).map_err(|source| StoreError::Open {
            location: location.clone(),
            source,
        })?;
        let mut pool_options =
            AnyPoolOptions::new().max_connections(if backend == Backend::Sqlite { 4 } else { 16 });
        if backend == Backend::Sqlite {
            pool_options = pool_options.after_connect(|conn, _| {
                Box::pin(async move {
                    use sqlx::Executor;
                    conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;").await?;
                    Ok(())
                })
            });
        }
        let pool = pool_options
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { location, source })?;
        let store = Self { pool, backend };
        store.migrate().await?;
        Ok(store)
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The newest schema version this build knows (and upgrades a database to).
    pub fn latest_schema_version() -> u32 {
        MIGRATIONS.last().map_or(0, |m| m.version)
    }

    /// The schema version of the database at `url` (`sqlite://PATH` or `postgres://...`),
    /// without changing anything: `None` when it has no schema yet. For `mailferry doctor`.
    pub async fn peek_schema_version(url: &str) -> Result<Option<i64>, StoreError> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await?;
        let found: Result<Option<i64>, sqlx::Error> =
            sqlx::query_scalar("SELECT MAX(version) FROM schema_version")
                .fetch_one(&pool)
                .await;
        pool.close().await;
        match found {
            Ok(version) => Ok(version),
            // No schema_version table: a database nothing was written to yet.
            Err(sqlx::Error::Database(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        use sqlx::Executor;
        self.pool
            .execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .await?;
        let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_version")
            .fetch_all(&self.pool)
            .await?;
        let current = applied.iter().copied().max().unwrap_or(0);
        let known = MIGRATIONS.last().map_or(0, |m| m.version);
        if current > i64::from(known) {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        // Every known migration not applied yet, in order: numbers are reserved per piece of
        // work, so one may land after a higher one (a database at 5 still gets 4).
        for migration in MIGRATIONS
            .iter()
            .filter(|m| !applied.contains(&i64::from(m.version)))
        {
            let sql = match self.backend {
                Backend::Sqlite => migration.sqlite,
                Backend::Postgres => migration.postgres,
            };
            let fail = |source| StoreError::Migrate {
                version: migration.version,
                source,
            };
            let mut tx = self.pool.begin().await.map_err(fail)?;
            for statement in statements(sql) {
                tx.execute(statement.as_str()).await.map_err(fail)?;
            }
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind(i64::from(migration.version))
                .execute(&mut *tx)
                .await
                .map_err(fail)?;
            tx.commit().await.map_err(fail)?;
            tracing::info!(version = migration.version, "database schema upgraded");
        }
        Ok(())
    }
}

/// The statements of a migration file: `--` comments removed, split at `;`.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Rows written or deleted per statement: each statement is a round trip to the database
/// (on SQLite, to its thread). Well under SQLite's oldest limit of 999 parameters with up
/// to 12 per row.
pub(crate) const ROWS_PER_STATEMENT: usize = 80;

/// The last of the rows with the same key, in their order: one statement may not change a
/// row twice (PostgreSQL refuses), and of rows for the same key the last one counts, as it
/// did when they were written one by one.
pub(crate) fn last_of_each<'a, T, K: Eq + std::hash::Hash>(
    rows: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<&'a T> {
    let mut last = std::collections::HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row), i);
    }
    rows.iter()
        .enumerate()
        .filter(|(i, row)| last.get(&key(row)) == Some(i))
        .map(|(_, row)| row)
        .collect()
}

/// Parameter `n` (from 1) of a statement whose parameters all appear in order: `$n` on
/// PostgreSQL, `?` on SQLite, where a numbered parameter costs a scan of all the statement's
/// parameters each time one is bound (quadratic over a statement of many rows).
pub(crate) fn parameter(backend: Backend, n: usize) -> String {
    match backend {
        Backend::Sqlite => "?".to_string(),
        Backend::Postgres => format!("${n}"),
    }
}

/// `($1, ..., $width), ($width+1, ...), ...` for `rows` rows (see [`parameter`]).
pub(crate) fn placeholders(backend: Backend, rows: usize, width: usize) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for column in 0..width {
            if column > 0 {
                out.push_str(", ");
            }
            out.push_str(&parameter(backend, row * width + column + 1));
        }
        out.push(')');
    }
    out
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let (address, query) = match url.split_once('?') {
        Some((address, query)) => (address, Some(query)),
        None => (url, None),
    };
    let mut out = match (address.find("://"), address.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &address[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!(
                "{}://{}:***@{}",
                &address[..scheme_end],
                user,
                &address[at + 1..]
            )
        }
        _ => address.to_string(),
    };
    // `?password=...` (and `sslpassword`) is another way to give it (issue 19).
    if let Some(query) = query {
        let parts: Vec<String> = query
            .split('&')
            .map(|part| match part.split_once('=') {
                Some((name, _)) if name.to_ascii_lowercase().ends_with("password") => {
                    format!("{name}=***")
                }
                _ => part.to_string(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    out
}
