//! Issue 17: an upgrade as an admin does it. A database made by the previous release's
//! schema (version 6: before filters and lease takeovers), with a migration waiting in it,
//! is opened by this release, which upgrades the schema at start; its workers then finish
//! the migration. On SQLite and on PostgreSQL.

use std::time::Duration;

use mailferry_service::Sealer;
use mailferry_store::Store;
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD};
use mailferry_testkit::{bulk_corpus, Postgres};
use sqlx::any::AnyPoolOptions;
use sqlx::Executor;

use crate::common::Service;

/// The schema files of the previous release (1, 2, 3, 5, 6), per backend.
fn previous_schema(postgres: bool) -> Vec<(i64, &'static str)> {
    macro_rules! files {
        ($dir:literal) => {
            vec![
                (
                    1,
                    include_str!(concat!(
                        "../../../mailferry-store/migrations/",
                        $dir,
                        "/0001_checkpoints.sql"
                    )),
                ),
                (
                    2,
                    include_str!(concat!(
                        "../../../mailferry-store/migrations/",
                        $dir,
                        "/0002_service.sql"
                    )),
                ),
                (
                    3,
                    include_str!(concat!(
                        "../../../mailferry-store/migrations/",
                        $dir,
                        "/0003_licences.sql"
                    )),
                ),
                (
                    5,
                    include_str!(concat!(
                        "../../../mailferry-store/migrations/",
                        $dir,
                        "/0005_groupware.sql"
                    )),
                ),
                (
                    6,
                    include_str!(concat!(
                        "../../../mailferry-store/migrations/",
                        $dir,
                        "/0006_target_state.sql"
                    )),
                ),
            ]
        };
    }
    if postgres {
        files!("postgres")
    } else {
        files!("sqlite")
    }
}

/// Writes the previous release's schema and one waiting migration of user1 to user2 on
/// `source`/`target`, its passwords sealed with `sealer`, as that release stored them.
async fn old_database(
    url: &str,
    postgres: bool,
    sealer: &Sealer,
    source: &Dovecot,
    target: &Dovecot,
) {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await
        .unwrap();
    pool.execute("CREATE TABLE schema_version (version BIGINT NOT NULL)")
        .await
        .unwrap();
    for (version, sql) in previous_schema(postgres) {
        let code: String = sql
            .lines()
            .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
            .collect::<Vec<_>>()
            .join("\n");
        for statement in code.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            pool.execute(statement)
                .await
                .unwrap_or_else(|e| panic!("{statement}: {e}"));
        }
        sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
            .bind(version)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO migration (id, state, source_server_type, source_email, source_username, \
         source_server, source_insecure, target_server_type, target_email, target_username, \
         target_server, target_insecure, start_at, created_at, updated_at) \
         VALUES ('old1', 'waiting', 'imap', 'user1@old.example', $1, $2, 1, 'imap', \
         'user2@new.example', $3, $4, 1, 0, 0, 0)",
    )
    .bind(USER1)
    .bind(format!("imap://127.0.0.1:{}", source.imap_port()))
    .bind(USER2)
    .bind(format!("imap://127.0.0.1:{}", target.imap_port()))
    .execute(&pool)
    .await
    .unwrap();
    for (side, password) in [("source", USER1_PASSWORD), ("target", USER2_PASSWORD)] {
        sqlx::query(
            "INSERT INTO migration_secret (migration_id, side, sealed) VALUES ('old1', $1, $2)",
        )
        .bind(side)
        .bind(sealer.seal(password.as_bytes(), &format!("old1/{side}")))
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE allowance SET used = 1")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

async fn upgrade_then_finish(url: String, postgres: bool) {
    let (source, target) = (Dovecot::start().unwrap(), Dovecot::start().unwrap());
    let corpus = bulk_corpus(7, 60, 2);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sealer = Sealer::load_or_create(&dir.path().join("secret.key")).unwrap();
    old_database(&url, postgres, &sealer, &source, &target).await;
    assert_eq!(Store::peek_schema_version(&url).await.unwrap(), Some(6));

    // This release opens it: the schema goes to the newest version, the migration stays.
    let store = Store::connect(&url).await.unwrap();
    assert_eq!(
        Store::peek_schema_version(&url).await.unwrap(),
        Some(i64::from(Store::latest_schema_version()))
    );
    assert!(Store::latest_schema_version() > 6);
    let service = Service::start_on(dir, store, |_| {}).await;
    let done = service
        .wait_for_state("old1", "done", Duration::from_secs(120))
        .await;
    assert_eq!(
        done["migration"]["progress"]["messages_copied"].as_u64(),
        Some(corpus.message_count() as u64),
        "{done:#}"
    );
    let (_, list) = service.get("/api/v1/migrations").await;
    assert_eq!(list["migrations"].as_array().unwrap().len(), 1, "{list:#}");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_previous_release_sqlite_database_is_upgraded_and_its_waiting_migration_finished() {
    let scratch = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite://{}?mode=rwc",
        scratch.path().join("old.sqlite").display()
    );
    upgrade_then_finish(url, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_previous_release_postgres_database_is_upgraded_and_its_waiting_migration_finished() {
    let postgres = Postgres::start().unwrap();
    upgrade_then_finish(postgres.url(), true).await;
}
