//! The allowance holds exactly, on both backends: all or nothing per submission, a key
//! counts once, concurrent submissions from two pools never take more than what is left,
//! and a purge keeps the count.

use mailferry_store::{EndpointRecord, LicenceRecord, NewMigration, SealedMigration, Short, Store};

use crate::Db;

const FREE: u64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allowance_holds_exactly_on_sqlite() {
    allowance_holds_exactly(Db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn allowance_holds_exactly_on_postgres() {
    allowance_holds_exactly(Db::postgres().await).await;
}

fn side(name: &str) -> EndpointRecord {
    EndpointRecord {
        server_type: "imap".into(),
        email: format!("{name}@example.com"),
        username: name.into(),
        server: "imaps://mail.example.com:993".into(),
        insecure: false,
    }
}

fn migration(id: &str) -> NewMigration {
    NewMigration {
        id: id.into(),
        source: side(&format!("{id}-old")),
        target: side(&format!("{id}-new")),
        start_at: 1,
        resync_at: None,
        created_at: 1,
        dav: Vec::new(),
        filters: true,
    }
}

async fn submit(store: &Store, ids: &[String]) -> Result<(), Short> {
    let news: Vec<NewMigration> = ids.iter().map(|id| migration(id)).collect();
    let secrets = [("source", vec![1u8]), ("target", vec![2u8])];
    let batch: Vec<SealedMigration> = news.iter().map(|n| (n, &secrets[..])).collect();
    store.insert_migrations(&batch, FREE).await.expect("insert")
}

fn key(id: &str, migrations: u64) -> LicenceRecord {
    LicenceRecord {
        id: id.into(),
        migrations,
        issued_to: "Example Hosting".into(),
        issued_at: 10,
        added_at: 20,
        key_text: format!("key-{id}"),
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

async fn stored(store: &Store) -> usize {
    store.list_migrations(None).await.unwrap().len()
}

async fn allowance_holds_exactly(db: Db) {
    let store = &db.store;
    let start = store.allowance().await.unwrap();
    assert_eq!((start.used, start.licensed), (0, 0));

    // Three do not fit in the free two: none is stored or counted.
    assert_eq!(
        submit(store, &ids("a", 3)).await,
        Err(Short {
            remaining: 2,
            wanted: 3
        })
    );
    assert_eq!(stored(store).await, 0);
    assert_eq!(store.allowance().await.unwrap().used, 0);
    submit(store, &ids("a", 2)).await.unwrap();
    assert_eq!(
        submit(store, &ids("b", 1)).await,
        Err(Short {
            remaining: 0,
            wanted: 1
        })
    );

    // A key counts once.
    assert!(store.add_licence_key(&key("k1", 5)).await.unwrap());
    assert!(!store.add_licence_key(&key("k1", 5)).await.unwrap());
    assert!(store.add_licence_key(&key("k2", 10)).await.unwrap());
    let keys = store.licence_keys().await.unwrap();
    assert_eq!(keys, vec![key("k1", 5), key("k2", 10)]);
    let now = store.allowance().await.unwrap();
    assert_eq!((now.used, now.licensed), (2, 15));

    // 30 submissions of one at once, from two pools: exactly the 15 left get through.
    let other = db.reopen().await;
    let tasks: Vec<_> = (0..30)
        .map(|i| {
            let store = if i % 2 == 0 {
                store.clone()
            } else {
                other.clone()
            };
            tokio::spawn(async move {
                loop {
                    let news = [migration(&format!("c{i}"))];
                    let secrets = [("source", vec![1u8])];
                    match store.insert_migrations(&[(&news[0], &secrets)], FREE).await {
                        Ok(outcome) => break outcome.is_ok(),
                        // SQLite: a writer that lost the race is told to try again.
                        Err(e) if e.to_string().contains("locked") => {
                            tokio::time::sleep(std::time::Duration::from_millis(5)).await
                        }
                        Err(e) => panic!("insert: {e}"),
                    }
                }
            })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        accepted += usize::from(task.await.unwrap());
    }
    assert_eq!(accepted, 15);
    assert_eq!(stored(store).await, 17);
    let full = store.allowance().await.unwrap();
    assert_eq!((full.used, full.licensed), (17, 15));

    // Metrics sums: every one waiting since start_at 1.
    let totals = store.totals(100).await.unwrap();
    assert_eq!((totals.messages_copied, totals.queue_lag_seconds), (0, 99));

    // A purge removes personal data, not the count.
    store.cancel("a0", 30).await.unwrap();
    assert!(store.purge("a0").await.unwrap());
    assert_eq!(store.allowance().await.unwrap().used, 17);
}
