//! The life of migrations in the service's queue, told once and run on both backends:
//! claims under contention, leases that run out, the resync pass, cancel/retry rules,
//! erasing credentials and purging personal data.

use std::collections::HashMap;

use mailferry_store::{
    EndpointRecord, FolderCheckpoint, MappedMessage, MessageState, MigrationState, NewMigration,
    Pass, ProgressRecord, Store,
};

use crate::{all_stored_values, Db};

const NOW: i64 = 1_700_000_000;
const LEASE: i64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_story_on_sqlite() {
    migration_story(Db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn migration_story_on_postgres() {
    migration_story(Db::postgres().await).await;
}

/// The personal strings of migration `id`, all distinct from other migrations'.
fn personal(id: &str) -> Vec<String> {
    vec![
        format!("{id}.alice@old.example"),
        format!("{id}-alice-login"),
        format!("imap.{id}-old.example:993"),
        format!("{id}.alice@new.example"),
        format!("{id}-alice-new-login"),
        format!("imap.{id}-new.example:993"),
    ]
}

pub(crate) fn new_migration(
    id: &str,
    start_at: i64,
    resync_at: Option<i64>,
    created_at: i64,
) -> NewMigration {
    let p = personal(id);
    NewMigration {
        id: id.to_string(),
        source: EndpointRecord {
            server_type: "dovecot".into(),
            email: p[0].clone(),
            username: p[1].clone(),
            server: p[2].clone(),
            insecure: false,
        },
        target: EndpointRecord {
            server_type: "generic".into(),
            email: p[3].clone(),
            username: p[4].clone(),
            server: p[5].clone(),
            insecure: true,
        },
        start_at,
        resync_at,
        created_at,
        dav: Vec::new(),
        filters: true,
    }
}

/// Sealed secrets are binary: NUL bytes, invalid UTF-8, every byte value.
fn sealed(id: &str, side: &str) -> Vec<u8> {
    let mut bytes = vec![0u8, 0xff, 0xfe, 0x80, 0];
    bytes.extend(format!("{id}/{side}").bytes());
    bytes.extend(0..=255u8);
    bytes
}

pub(crate) async fn insert(store: &Store, new: &NewMigration) {
    let secrets = [
        ("source", sealed(&new.id, "source")),
        ("target", sealed(&new.id, "target")),
    ];
    store
        .insert_migrations(&[(new, &secrets)], 1_000)
        .await
        .expect("insert")
        .expect("within the allowance");
}

async fn get(store: &Store, id: &str) -> mailferry_store::MigrationRecord {
    store
        .migration(id)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("migration {id} exists"))
}

async fn secret_rows(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM migration_secret")
        .fetch_one(store.pool())
        .await
        .expect("count secrets")
}

async fn migration_story(db: Db) {
    let store = &db.store;

    // --- Submit: one due now, one in the future, one due now with a resync later.
    let due = new_migration("due", NOW - 5, None, NOW - 30);
    let later = new_migration("later", NOW + 3600, None, NOW - 20);
    let resync = new_migration("resync", NOW - 1, Some(NOW + 600), NOW - 10);
    for new in [&due, &later, &resync] {
        insert(store, new).await;
    }
    let record = get(store, "due").await;
    assert_eq!(record.state, MigrationState::Waiting);
    assert_eq!(record.source.as_ref(), Some(&due.source));
    assert_eq!(record.target.as_ref(), Some(&due.target));
    assert_eq!(
        (
            record.start_at,
            record.resync_at,
            record.created_at,
            record.updated_at
        ),
        (NOW - 5, None, NOW - 30, NOW - 30)
    );
    assert_eq!(
        (record.started_at, record.finished_at, record.attempts),
        (None, None, 0)
    );
    assert_eq!(record.progress, ProgressRecord::default());
    assert!(!record.purged && record.error.is_none() && record.report_json.is_none());
    assert_eq!(record.lease_owner, None);
    assert_eq!(get(store, "resync").await.resync_at, Some(NOW + 600));
    assert_eq!(store.migration("nope").await.unwrap(), None);
    assert_eq!(
        store.secrets("due").await.unwrap(),
        vec![
            ("source".to_string(), sealed("due", "source")),
            ("target".to_string(), sealed("due", "target")),
        ]
    );

    // One transaction: a bad secret leaves no migration behind; ids are unique.
    let bad = new_migration("bad", NOW, None, NOW);
    let used = store.allowance().await.unwrap().used;
    let sideways = [("source", vec![1]), ("sideways", vec![2])];
    assert!(store
        .insert_migrations(&[(&bad, &sideways)], 1_000)
        .await
        .is_err());
    assert_eq!(store.migration("bad").await.unwrap(), None);
    assert!(store.secrets("bad").await.unwrap().is_empty());
    assert!(store
        .insert_migrations(&[(&due, &[])], 1_000)
        .await
        .is_err());
    assert_eq!(
        store.allowance().await.unwrap().used,
        used,
        "a failed insert is not counted"
    );

    // Newest first, filtered by state.
    let ids = |records: Vec<mailferry_store::MigrationRecord>| {
        records.into_iter().map(|r| r.id).collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list_migrations(None).await.unwrap()),
        ["resync", "later", "due"]
    );
    assert_eq!(
        ids(store
            .list_migrations(Some(&[MigrationState::Waiting, MigrationState::Done]))
            .await
            .unwrap()),
        ["resync", "later", "due"]
    );
    assert!(store
        .list_migrations(Some(&[MigrationState::Done]))
        .await
        .unwrap()
        .is_empty());
    assert!(store.list_migrations(Some(&[])).await.unwrap().is_empty());

    // --- Two worker processes (two pools), eight workers racing: each due migration is
    // claimed exactly once, the future one not at all.
    let other_process = db.reopen().await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = if n % 2 == 0 {
            store.clone()
        } else {
            other_process.clone()
        };
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{n}");
            let mut claims = Vec::new();
            while let Some((record, pass)) = store.claim_due(&worker, NOW, LEASE).await.unwrap() {
                claims.push((record.id, pass, worker.clone(), record.lease_owner));
            }
            claims
        }));
    }
    let mut claims = Vec::new();
    for task in tasks {
        claims.extend(task.await.expect("worker task"));
    }
    claims.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(claims.len(), 2, "{claims:?}");
    assert_eq!(
        claims
            .iter()
            .map(|c| (c.0.as_str(), c.1))
            .collect::<Vec<_>>(),
        [("due", Pass::First), ("resync", Pass::First)]
    );
    for (_, _, worker, owner) in &claims {
        assert_eq!(owner.as_deref(), Some(worker.as_str()));
    }
    let owner: HashMap<String, String> = claims
        .iter()
        .map(|(id, _, worker, _)| (id.clone(), worker.clone()))
        .collect();
    assert_eq!(store.claim_due("late", NOW, LEASE).await.unwrap(), None);
    let record = get(store, "due").await;
    assert_eq!(record.state, MigrationState::Transferring);
    assert_eq!(record.lease_owner.as_ref(), Some(&owner["due"]));
    assert_eq!(
        (record.lease_until, record.started_at, record.attempts),
        (Some(NOW + LEASE), Some(NOW), 1)
    );
    assert_eq!(get(store, "later").await.state, MigrationState::Waiting);

    // --- Leases: the owner renews, nobody else can; a lease that runs out is taken over.
    assert!(store
        .renew_lease("due", &owner["due"], NOW + 120)
        .await
        .unwrap());
    assert!(!store
        .renew_lease("due", "intruder", NOW + 999)
        .await
        .unwrap());
    assert!(store
        .renew_lease("resync", &owner["resync"], NOW + 1000)
        .await
        .unwrap());
    assert_eq!(store.claim_due("w9", NOW + 120, LEASE).await.unwrap(), None);
    let (record, pass) = store
        .claim_due("w9", NOW + 121, LEASE)
        .await
        .unwrap()
        .expect("the expired lease is taken over");
    assert_eq!((record.id.as_str(), pass), ("due", Pass::First));
    assert_eq!(record.state, MigrationState::Transferring);
    assert_eq!(record.lease_owner.as_deref(), Some("w9"));
    assert_eq!(
        (record.lease_until, record.started_at, record.attempts),
        (Some(NOW + 121 + LEASE), Some(NOW), 2)
    );
    assert!(!store
        .renew_lease("due", &owner["due"], NOW + 200)
        .await
        .unwrap());
    assert!(!store
        .finish_pass(
            "due",
            &owner["due"],
            MigrationState::Done,
            None,
            None,
            NOW + 122
        )
        .await
        .unwrap());

    // --- Progress, then the first pass of `due` ends: done, credentials erased.
    let progress = ProgressRecord {
        messages_total: 10,
        messages_done: 9,
        messages_copied: 7,
        bytes_total: 5_000_000_000,
        bytes_done: 4_000_000_000,
        messages_failed: 1,
    };
    store
        .update_progress("due", &progress, NOW + 125)
        .await
        .unwrap();
    let record = get(store, "due").await;
    assert_eq!(record.progress, progress);
    assert_eq!(record.updated_at, NOW + 125);
    let report_due = r#"{"copied":7,"folder":"due.alice@old.example/INBOX"}"#;
    assert!(store
        .finish_pass(
            "due",
            "w9",
            MigrationState::Done,
            Some("1 message refused by due-alice-new-login's server"),
            Some(report_due),
            NOW + 130
        )
        .await
        .unwrap());
    let record = get(store, "due").await;
    assert_eq!(record.state, MigrationState::Done);
    assert_eq!(record.finished_at, Some(NOW + 130));
    assert_eq!((record.lease_owner, record.lease_until), (None, None));
    assert_eq!(record.report_json.as_deref(), Some(report_due));
    assert!(record.error.is_some());
    assert!(store.secrets("due").await.unwrap().is_empty());
    // A finished pass cannot be finished or renewed again.
    assert!(!store
        .finish_pass("due", "w9", MigrationState::Failed, None, None, NOW + 131)
        .await
        .unwrap());
    assert!(!store.renew_lease("due", "w9", NOW + 999).await.unwrap());

    // The engine left checkpoints for `due` (and a folder name with the address in it).
    let folder = "due.alice@old.example/INBOX".to_string();
    store
        .save_folder_checkpoint(
            "due",
            &FolderCheckpoint {
                source_folder: folder.clone(),
                source_uidvalidity: mailferry_imap::UidValidity::new(1).unwrap(),
                target_folder: "INBOX/due-alice-new-login".into(),
                target_uidvalidity: mailferry_imap::UidValidity::new(2),
                source_uidnext: 11,
                source_modseq: None,
                target_uidnext: None,
                target_messages: None,
            },
        )
        .await
        .unwrap();
    store
        .record_messages(
            "due",
            &folder,
            mailferry_imap::UidValidity::new(1).unwrap(),
            &[MappedMessage {
                source_uid: mailferry_imap::Uid::new(3).unwrap(),
                fingerprint: "fp".into(),
                state: MessageState::Failed,
                target_uid: None,
                flags: String::new(),
                detail: Some("NO quota of imap.due-new.example:993 exceeded".into()),
            }],
        )
        .await
        .unwrap();

    // --- `resync`: first pass done, waits for its resync time, then the resync pass.
    let report_first = r#"{"pass":"first"}"#;
    assert!(store
        .finish_pass(
            "resync",
            &owner["resync"],
            MigrationState::WaitingResync,
            None,
            Some(report_first),
            NOW + 140
        )
        .await
        .unwrap());
    let record = get(store, "resync").await;
    assert_eq!(record.state, MigrationState::WaitingResync);
    assert_eq!((record.finished_at, record.lease_owner), (None, None));
    assert_eq!(store.secrets("resync").await.unwrap().len(), 2);
    assert_eq!(store.claim_due("w1", NOW + 599, LEASE).await.unwrap(), None);
    let (record, pass) = store
        .claim_due("w1", NOW + 600, LEASE)
        .await
        .unwrap()
        .expect("resync is due");
    assert_eq!((record.id.as_str(), pass), ("resync", Pass::Resync));
    assert_eq!(record.state, MigrationState::Resyncing);
    assert_eq!((record.started_at, record.attempts), (Some(NOW), 2));
    // A graceful shutdown gives it back as it was; the next worker resumes the same pass.
    store.release_lease("resync", "someone else").await.unwrap();
    assert_eq!(get(store, "resync").await.state, MigrationState::Resyncing);
    store.release_lease("resync", "w1").await.unwrap();
    let record = get(store, "resync").await;
    assert_eq!(record.state, MigrationState::WaitingResync);
    assert_eq!((record.lease_owner, record.lease_until), (None, None));
    let (record, pass) = store
        .claim_due("w2", NOW + 601, LEASE)
        .await
        .unwrap()
        .expect("released resync is due again");
    assert_eq!((record.id.as_str(), pass), ("resync", Pass::Resync));
    // The resync pass fails without a report: the first pass's report stays.
    assert!(store
        .finish_pass(
            "resync",
            "w2",
            MigrationState::Failed,
            Some("login to imap.resync-new.example:993 refused"),
            None,
            NOW + 700
        )
        .await
        .unwrap());
    let record = get(store, "resync").await;
    assert_eq!(record.state, MigrationState::Failed);
    assert_eq!(record.finished_at, Some(NOW + 700));
    assert_eq!(record.report_json.as_deref(), Some(report_first));
    assert_eq!(
        store.secrets("resync").await.unwrap().len(),
        2,
        "kept for retry"
    );

    // --- Cancel and retry rules.
    assert!(
        !store.cancel("resync", NOW + 710).await.unwrap(),
        "failed is finished"
    );
    assert!(
        !store.cancel("due", NOW + 710).await.unwrap(),
        "done is finished"
    );
    assert!(!store.cancel("nope", NOW + 710).await.unwrap());
    assert!(
        !store.retry("due", NOW + 710).await.unwrap(),
        "only failed ones"
    );
    assert!(!store.retry("nope", NOW + 710).await.unwrap());
    assert!(store.retry("resync", NOW + 800).await.unwrap());
    let record = get(store, "resync").await;
    assert_eq!(record.state, MigrationState::Waiting);
    assert_eq!(
        (record.start_at, record.error, record.finished_at),
        (NOW + 800, None, None)
    );
    assert!(!store.retry("resync", NOW + 801).await.unwrap());
    assert!(store.cancel("resync", NOW + 810).await.unwrap());
    let record = get(store, "resync").await;
    assert_eq!(record.state, MigrationState::Cancelled);
    assert_eq!(record.finished_at, Some(NOW + 810));
    assert!(store.secrets("resync").await.unwrap().is_empty());
    assert!(!store.cancel("resync", NOW + 811).await.unwrap());
    assert!(!store.retry("resync", NOW + 811).await.unwrap());
    assert_eq!(store.claim_due("w1", NOW + 900, LEASE).await.unwrap(), None);

    // `later`: taken, given back on shutdown (→ waiting), taken again, fails; with its
    // credentials erased it cannot be retried.
    let (record, pass) = store
        .claim_due("w3", NOW + 3600, LEASE)
        .await
        .unwrap()
        .expect("later is due");
    assert_eq!((record.id.as_str(), pass), ("later", Pass::First));
    store.release_lease("later", "w3").await.unwrap();
    assert_eq!(get(store, "later").await.state, MigrationState::Waiting);
    let (record, _) = store
        .claim_due("w4", NOW + 3601, LEASE)
        .await
        .unwrap()
        .expect("later is due again");
    assert_eq!((record.id.as_str(), record.attempts), ("later", 2));
    assert!(store
        .finish_pass(
            "later",
            "w4",
            MigrationState::Failed,
            Some("later-alice-login: authentication failed"),
            None,
            NOW + 3602
        )
        .await
        .unwrap());
    store.erase_secrets("later").await.unwrap();
    assert!(store.secrets("later").await.unwrap().is_empty());
    assert!(!store.retry("later", NOW + 3700).await.unwrap());
    assert_eq!(get(store, "later").await.state, MigrationState::Failed);

    // A running pass that is cancelled: its worker learns it from renew_lease and cannot
    // finish it.
    let active = new_migration("active", NOW, Some(NOW + 10), NOW + 4000);
    insert(store, &active).await;
    let (record, _) = store
        .claim_due("w5", NOW + 4000, LEASE)
        .await
        .unwrap()
        .expect("active is due");
    assert_eq!(record.id, "active");
    assert!(store.cancel("active", NOW + 4001).await.unwrap());
    assert!(!store.renew_lease("active", "w5", NOW + 4100).await.unwrap());
    assert!(!store
        .finish_pass("active", "w5", MigrationState::Done, None, None, NOW + 4002)
        .await
        .unwrap());
    let record = get(store, "active").await;
    assert_eq!(record.state, MigrationState::Cancelled);
    // The lease stays until the worker ends the stopped pass (its accounts stay busy).
    assert_eq!(record.lease_owner.as_deref(), Some("w5"));
    store
        .end_stopped_pass("active", "w5", None, NOW + 4003)
        .await
        .unwrap();
    assert_eq!(get(store, "active").await.lease_owner, None);

    // One that stays waiting, whose personal data must survive the purges.
    let keep = new_migration("keep", NOW + 99_999, None, NOW + 5000);
    insert(store, &keep).await;
    assert_eq!(
        secret_rows(store).await,
        2,
        "only `keep` still has credentials"
    );
    store.erase_secrets("keep").await.unwrap();
    assert_eq!(
        secret_rows(store).await,
        0,
        "erase_secrets leaves no secret rows"
    );
    insert(
        store,
        &new_migration("keep2", NOW + 99_999, None, NOW + 5001),
    )
    .await;

    // --- Purge: only finished ones; personal data gone, counts and times kept.
    let before = get(store, "due").await;
    assert!(!store.purge("keep").await.unwrap(), "active");
    assert!(!store.purge("nope").await.unwrap());
    for id in ["due", "resync", "later", "active"] {
        assert!(store.purge(id).await.unwrap(), "{id}");
    }
    assert!(store.purge("due").await.unwrap(), "purging twice is fine");
    let record = get(store, "due").await;
    assert!(record.purged);
    assert_eq!((record.source, record.target), (None, None));
    assert_eq!((record.report_json, record.error), (None, None));
    assert_eq!(record.state, MigrationState::Done);
    assert_eq!(record.progress, progress);
    assert_eq!(
        (
            record.start_at,
            record.created_at,
            record.started_at,
            record.finished_at,
            record.attempts
        ),
        (
            before.start_at,
            before.created_at,
            before.started_at,
            before.finished_at,
            before.attempts
        )
    );
    assert!(store.folder_checkpoints("due").await.unwrap().is_empty());
    assert!(store
        .mapped_messages("due", &folder, mailferry_imap::UidValidity::new(1).unwrap())
        .await
        .unwrap()
        .is_empty());
    assert!(!store.retry("later", NOW + 9000).await.unwrap());
    assert_eq!(
        store.list_migrations(None).await.unwrap().len(),
        6,
        "purged ones are still listed"
    );

    // No table holds any personal string of a purged migration; `keep2`'s are still there
    // (so the search does look at everything), and `keep2` still has its credentials.
    let values = all_stored_values(store).await;
    let contains = |needle: &str| {
        values
            .iter()
            .filter(|(_, value)| value.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .map(|(table, _)| table.clone())
            .collect::<Vec<_>>()
    };
    for id in ["due", "resync", "later", "active"] {
        for needle in personal(id).iter().map(String::as_str).chain([
            format!("{id}-alice").as_str(),
            format!("{id}/source").as_str(),
        ]) {
            assert!(
                contains(needle).is_empty(),
                "`{needle}` is still stored in {:?}",
                contains(needle)
            );
        }
    }
    for needle in personal("keep2") {
        assert!(!contains(&needle).is_empty(), "`{needle}` not found");
    }
    assert!(
        !contains("keep2/source").is_empty(),
        "sealed secrets are searched"
    );

    // --- Counts for metrics: every state, zeros included.
    let counts = store.counts().await.unwrap();
    assert_eq!(
        counts,
        vec![
            (MigrationState::Waiting, 2),
            (MigrationState::Transferring, 0),
            (MigrationState::WaitingResync, 0),
            (MigrationState::Resyncing, 0),
            (MigrationState::Done, 1),
            (MigrationState::Failed, 1),
            (MigrationState::Cancelled, 2),
        ]
    );

    // --- The admin's password hash and API tokens.
    assert_eq!(store.admin_password_hash().await.unwrap(), None);
    store
        .set_admin_password_hash("$argon2id$one")
        .await
        .unwrap();
    store
        .set_admin_password_hash("$argon2id$two")
        .await
        .unwrap();
    assert_eq!(
        store.admin_password_hash().await.unwrap().as_deref(),
        Some("$argon2id$two")
    );
    assert_eq!(store.token_name("h1").await.unwrap(), None);
    store.insert_token("ci", "h1", NOW).await.unwrap();
    store.insert_token("ops", "h2", NOW).await.unwrap();
    assert_eq!(store.token_name("h1").await.unwrap().as_deref(), Some("ci"));
    assert_eq!(
        store.token_name("h2").await.unwrap().as_deref(),
        Some("ops")
    );
    assert!(store.insert_token("again", "h1", NOW).await.is_err());
    assert_eq!(
        other_process.token_name("h1").await.unwrap().as_deref(),
        Some("ci")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_workers_claim_each_job_once_on_sqlite() {
    many_workers_claim_each_job_once(Db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_workers_claim_each_job_once_on_postgres() {
    many_workers_claim_each_job_once(Db::postgres().await).await;
}

/// 40 due jobs, 8 workers in two processes: every job is taken exactly once.
async fn many_workers_claim_each_job_once(db: Db) {
    const JOBS: usize = 40;
    for n in 0..JOBS {
        let id = format!("job{n:02}");
        insert(&db.store, &new_migration(&id, NOW - n as i64, None, NOW)).await;
    }
    let other_process = db.reopen().await;
    let mut tasks = Vec::new();
    for n in 0..8 {
        let store = if n % 2 == 0 {
            db.store.clone()
        } else {
            other_process.clone()
        };
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            while let Some((record, _)) =
                store.claim_due(&format!("w{n}"), NOW, LEASE).await.unwrap()
            {
                ids.push(record.id);
                tokio::task::yield_now().await;
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.expect("worker task"));
    }
    ids.sort();
    let expected: Vec<String> = (0..JOBS).map(|n| format!("job{n:02}")).collect();
    assert_eq!(ids, expected);
    let counts = db.store.counts().await.unwrap();
    assert_eq!(counts[1], (MigrationState::Transferring, JOBS as u64));
}

#[tokio::test]
async fn one_account_is_in_one_pass_at_a_time_on_sqlite() {
    one_account_is_in_one_pass_at_a_time(Db::sqlite().await).await;
}

#[tokio::test]
async fn one_account_is_in_one_pass_at_a_time_on_postgres() {
    one_account_is_in_one_pass_at_a_time(Db::postgres().await).await;
}

/// Two migrations into one target account (two sources merged) are both due: the second
/// waits while the first is in its pass under a live lease, and is taken once that pass
/// ends, or once its lease has run out. Another account's migration is not held up.
async fn one_account_is_in_one_pass_at_a_time(db: Db) {
    let store = &db.store;
    let first = new_migration("merge-a", NOW - 30, None, NOW - 30);
    let mut second = new_migration("merge-b", NOW - 20, None, NOW - 20);
    second.target = first.target.clone();
    let other = new_migration("other", NOW - 10, None, NOW - 10);
    for m in [&first, &second, &other] {
        insert(store, m).await;
    }
    let claim = |worker: &'static str, now: i64| async move {
        store
            .claim_due(worker, now, LEASE)
            .await
            .unwrap()
            .map(|(record, _)| record.id)
    };
    assert_eq!(claim("w1", NOW).await.as_deref(), Some("merge-a"));
    // merge-b shares merge-a's target: skipped for the next due one.
    assert_eq!(claim("w2", NOW).await.as_deref(), Some("other"));
    assert_eq!(claim("w3", NOW).await, None);
    // The leases run out (the workers died): both merges are due, one of them is taken
    // (merge-b, waiting since before merge-a's lease ended), and the other waits behind it.
    let later = NOW + LEASE + 1;
    assert_eq!(claim("w4", later).await.as_deref(), Some("merge-b"));
    assert_eq!(claim("w5", later).await.as_deref(), Some("other"));
    assert_eq!(claim("w6", later).await, None);
    // merge-b's pass ends: merge-a goes again.
    assert!(store
        .finish_pass("merge-b", "w4", MigrationState::Done, None, None, later)
        .await
        .unwrap());
    assert_eq!(claim("w7", later).await.as_deref(), Some("merge-a"));
}

#[tokio::test]
async fn a_cancelled_pass_keeps_its_account_busy_until_it_stops_on_sqlite() {
    a_cancelled_pass_keeps_its_account_busy_until_it_stops(Db::sqlite().await).await;
}

#[tokio::test]
async fn a_cancelled_pass_keeps_its_account_busy_until_it_stops_on_postgres() {
    a_cancelled_pass_keeps_its_account_busy_until_it_stops(Db::postgres().await).await;
}

/// Issue 19: a migration cancelled while its pass runs keeps its lease (and so its accounts)
/// until the worker has stopped it; its renewal fails, which is how the worker learns of it.
async fn a_cancelled_pass_keeps_its_account_busy_until_it_stops(db: Db) {
    let store = &db.store;
    let running = new_migration("running", NOW - 30, None, NOW - 30);
    let mut again = new_migration("again", NOW - 20, None, NOW - 20);
    again.source = running.source.clone();
    insert(store, &running).await;
    let (record, _) = store.claim_due("w1", NOW, LEASE).await.unwrap().unwrap();
    assert_eq!(record.id, "running");
    insert(store, &again).await;
    assert!(store.cancel("running", NOW + 1).await.unwrap());
    // The worker's next renewal fails: it stops the pass.
    assert!(!store
        .renew_lease("running", "w1", NOW + LEASE)
        .await
        .unwrap());
    // Meanwhile the same source account is not taken by another migration.
    assert!(store
        .claim_due("w2", NOW + 2, LEASE)
        .await
        .unwrap()
        .is_none());
    store
        .end_stopped_pass("running", "w1", Some("{\"folders\":[]}"), NOW + 3)
        .await
        .unwrap();
    let cancelled = store.migration("running").await.unwrap().unwrap();
    assert_eq!(cancelled.state, MigrationState::Cancelled);
    assert_eq!(cancelled.lease_owner, None);
    assert_eq!(cancelled.report_json.as_deref(), Some("{\"folders\":[]}"));
    let (record, _) = store
        .claim_due("w2", NOW + 4, LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.id, "again");
}

/// `claim_due_capped`: no more passes on one server than the cap, over all workers.
async fn passes_per_host_are_capped(db: Db) {
    let store = &db.store;
    for id in ["c1", "c2", "c3"] {
        let mut new = new_migration(id, 0, None, 0);
        // One source server for all three; their targets differ.
        new.source.server = "imap.shared.example:993".into();
        insert(store, &new).await;
    }
    let (first, _) = store
        .claim_due_capped("w1", 10, 60, 2)
        .await
        .unwrap()
        .unwrap();
    let (second, _) = store
        .claim_due_capped("w2", 10, 60, 2)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(first.id, second.id);
    assert!(
        store
            .claim_due_capped("w3", 10, 60, 2)
            .await
            .unwrap()
            .is_none(),
        "two passes run on imap.shared.example: a third waits"
    );
    // Uncapped, it would be taken.
    assert!(store
        .claim_due_capped("w3", 10, 60, 0)
        .await
        .unwrap()
        .is_some());
    // A lease that ran out no longer counts: at 100 the three leases (until 70) are gone.
    assert!(store
        .claim_due_capped("w4", 100, 60, 2)
        .await
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn passes_per_host_are_capped_on_sqlite() {
    passes_per_host_are_capped(Db::sqlite().await).await;
}

#[tokio::test]
async fn passes_per_host_are_capped_on_postgres() {
    passes_per_host_are_capped(Db::postgres().await).await;
}
