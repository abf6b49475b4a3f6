//! The store against both of its databases: an SQLite file and a real PostgreSQL 15
//! (started per test by mailferry-testkit). Every story runs unchanged on both.

mod checkpoint;
mod groupware;
mod licence;
mod migration;

use mailferry_store::{Backend, Store};
use mailferry_testkit::Postgres;
use sqlx::Row;

/// A store with whatever keeps its database alive.
pub struct Db {
    pub store: Store,
    url: String,
    _guard: Guard,
}

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres(#[allow(dead_code)] Postgres),
}

impl Db {
    pub async fn sqlite() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.sqlite");
        let store = Store::open_sqlite(&path).await.expect("open sqlite");
        assert_eq!(store.backend(), Backend::Sqlite);
        let secure_delete: i64 = sqlx::query_scalar("PRAGMA secure_delete")
            .fetch_one(store.pool())
            .await
            .expect("pragma");
        assert_eq!(secure_delete, 1, "deleted secrets are overwritten");
        Db {
            store,
            url: format!("sqlite://{}?mode=rwc", path.display()),
            _guard: Guard::Sqlite(dir),
        }
    }

    pub async fn postgres() -> Db {
        let server = Postgres::start().expect("postgres starts");
        let url = server.url();
        let store = Store::connect(&url).await.expect("connect to postgres");
        assert_eq!(store.backend(), Backend::Postgres);
        Db {
            store,
            url,
            _guard: Guard::Postgres(server),
        }
    }

    /// A second, independent connection pool to the same database (another process).
    pub async fn reopen(&self) -> Store {
        Store::connect(&self.url).await.expect("reopen")
    }
}

/// Every table of the schema.
pub async fn tables(store: &Store) -> Vec<String> {
    let sql = match store.backend() {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table'",
        Backend::Postgres => {
            "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = 'public'"
        }
    };
    sqlx::query_scalar(sql)
        .fetch_all(store.pool())
        .await
        .expect("list tables")
}

/// Every text and binary value in every row of every table, for checking what is left.
pub async fn all_stored_values(store: &Store) -> Vec<(String, Vec<u8>)> {
    let mut values = Vec::new();
    for table in tables(store).await {
        let rows = sqlx::query(&format!("SELECT * FROM {table}"))
            .fetch_all(store.pool())
            .await
            .expect("select *");
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                    values.push((table.clone(), text.into_bytes()));
                } else if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                    values.push((table.clone(), bytes));
                }
            }
        }
    }
    values
}
