//! The groupware checkpoints round-trip on both backends.

use mailferry_store::{
    DavCollectionCheckpoint, DavObjectRow, DavObjectState, MigrationState, Store,
};

use crate::migration::{insert, new_migration};
use crate::Db;

async fn story(store: &Store) {
    let job = "job-1";
    assert_eq!(store.dav_collection(job, "/a/cal/").await.unwrap(), None);
    let mut checkpoint = DavCollectionCheckpoint {
        source_href: "/a/cal/".into(),
        kind: "calendar".into(),
        target_href: "/b/calendars/cal/".into(),
        sync_token: None,
        ctag: Some("c1".into()),
        target_state: None,
    };
    store.save_dav_collection(job, &checkpoint).await.unwrap();
    checkpoint.sync_token = Some("http://x/sync/2".into());
    checkpoint.target_state = Some("ctag:t7".into());
    store.save_dav_collection(job, &checkpoint).await.unwrap();
    assert_eq!(
        store.dav_collection(job, "/a/cal/").await.unwrap(),
        Some(checkpoint.clone())
    );

    let mut row = DavObjectRow {
        source_href: "/a/cal/e%201.ics".into(),
        uid: "e1@x".into(),
        kind: "event".into(),
        source_etag: Some("\"s1\"".into()),
        target_href: Some("/b/calendars/cal/e%201.ics".into()),
        target_etag: None,
        state: DavObjectState::Pending,
        detail: None,
    };
    let other = DavObjectRow {
        source_href: "/a/cal/t.ics".into(),
        uid: "t@x".into(),
        kind: "task".into(),
        state: DavObjectState::Failed,
        detail: Some("415 Unsupported Media Type".into()),
        ..row.clone()
    };
    store
        .record_dav_objects(job, "/a/cal/", &[row.clone(), other.clone()])
        .await
        .unwrap();
    row.state = DavObjectState::Copied;
    row.target_etag = Some("\"t1\"".into());
    store
        .record_dav_objects(job, "/a/cal/", std::slice::from_ref(&row))
        .await
        .unwrap();
    assert_eq!(
        store.dav_objects(job, "/a/cal/").await.unwrap(),
        vec![row.clone(), other.clone()]
    );
    assert!(store
        .dav_objects("job-2", "/a/cal/")
        .await
        .unwrap()
        .is_empty());
    store
        .forget_dav_objects(job, "/a/cal/", std::slice::from_ref(&other.source_href))
        .await
        .unwrap();
    assert_eq!(
        store.dav_objects(job, "/a/cal/").await.unwrap(),
        vec![row.clone()]
    );

    // A migration's explicit DAV addresses are stored with it; purging it erases them and
    // its groupware checkpoints, not another job's.
    let mut new = new_migration("m1", 0, None, 0);
    new.dav = vec![
        ("target".to_string(), "http://t/".to_string()),
        ("source".to_string(), "http://h/".to_string()),
    ];
    insert(store, &new).await;
    assert_eq!(
        store.migration_dav("m1").await.unwrap(),
        vec![
            ("source".to_string(), "http://h/".to_string()),
            ("target".to_string(), "http://t/".to_string())
        ]
    );
    store.save_dav_collection("m1", &checkpoint).await.unwrap();
    store
        .record_dav_objects("m1", "/a/cal/", std::slice::from_ref(&row))
        .await
        .unwrap();
    // Filters: where each script went and what was stored; saving again replaces.
    let mut script = mailferry_store::SieveScriptRow {
        source_name: "vacation".into(),
        target_name: "vacation".into(),
        stored_sha256: "aa".into(),
    };
    store.save_sieve_script("m1", &script).await.unwrap();
    script.target_name = "vacation.migrated".into();
    script.stored_sha256 = "bb".into();
    store.save_sieve_script("m1", &script).await.unwrap();
    store.save_sieve_script(job, &script).await.unwrap();
    assert_eq!(
        store.sieve_scripts("m1").await.unwrap(),
        vec![script.clone()]
    );
    let (claimed, _) = store.claim_due("w", 1, 60).await.unwrap().unwrap();
    assert_eq!(claimed.id, "m1");
    assert!(store
        .finish_pass("m1", "w", MigrationState::Done, None, None, 2)
        .await
        .unwrap());
    assert!(store.purge("m1").await.unwrap());
    assert!(store.migration_dav("m1").await.unwrap().is_empty());
    assert_eq!(store.dav_collection("m1", "/a/cal/").await.unwrap(), None);
    assert!(store.dav_objects("m1", "/a/cal/").await.unwrap().is_empty());
    assert_eq!(store.dav_objects(job, "/a/cal/").await.unwrap(), vec![row]);
    assert!(store.sieve_scripts("m1").await.unwrap().is_empty());
    assert_eq!(store.sieve_scripts(job).await.unwrap(), vec![script]);
}

#[tokio::test]
async fn groupware_checkpoints_on_sqlite() {
    story(&Db::sqlite().await.store).await;
}

#[tokio::test]
async fn groupware_checkpoints_on_postgres() {
    story(&Db::postgres().await.store).await;
}
