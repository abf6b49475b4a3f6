//! The engine's checkpoints round-trip on both backends.

use mailferry_store::{FolderCheckpoint, FolderTally, MappedMessage, MessageState};

use crate::Db;

fn v(n: u32) -> mailferry_imap::UidValidity {
    mailferry_imap::UidValidity::new(n).unwrap()
}

fn u(n: u32) -> mailferry_imap::Uid {
    mailferry_imap::Uid::new(n).unwrap()
}

#[tokio::test]
async fn checkpoints_and_map_round_trip_on_sqlite() {
    checkpoints_and_map_round_trip(Db::sqlite().await).await;
}

#[tokio::test]
async fn checkpoints_and_map_round_trip_on_postgres() {
    checkpoints_and_map_round_trip(Db::postgres().await).await;
}

async fn checkpoints_and_map_round_trip(db: Db) {
    let store = &db.store;
    assert_eq!(store.folder_checkpoint("j", "INBOX").await.unwrap(), None);
    let cp = FolderCheckpoint {
        source_folder: "INBOX".into(),
        source_uidvalidity: v(4_000_000_000),
        target_folder: "INBOX".into(),
        target_uidvalidity: Some(v(7)),
        source_uidnext: 12,
        source_modseq: Some(1 << 40),
        target_uidnext: Some(13),
        target_messages: Some(11),
    };
    store.save_folder_checkpoint("j", &cp).await.unwrap();
    store.save_folder_checkpoint("j", &cp).await.unwrap();
    assert_eq!(
        store.folder_checkpoint("j", "INBOX").await.unwrap(),
        Some(cp.clone())
    );
    assert_eq!(
        store.folder_checkpoints("j").await.unwrap(),
        vec![cp.clone()]
    );
    let row = |uid: u32, state| MappedMessage {
        source_uid: u(uid),
        fingerprint: format!("fp{uid}"),
        state,
        target_uid: None,
        flags: "\\Seen".into(),
        detail: None,
    };
    store
        .record_messages(
            "j",
            "INBOX",
            cp.source_uidvalidity,
            &[row(1, MessageState::Pending), row(2, MessageState::Pending)],
        )
        .await
        .unwrap();
    let mut done = row(1, MessageState::Copied);
    done.target_uid = Some(u(40));
    let mut failed = row(3, MessageState::Failed);
    failed.detail = Some("NO [OVERQUOTA] Quota exceeded".into());
    store
        .record_messages(
            "j",
            "INBOX",
            cp.source_uidvalidity,
            &[done.clone(), failed.clone()],
        )
        .await
        .unwrap();
    let rows = store
        .mapped_messages("j", "INBOX", cp.source_uidvalidity)
        .await
        .unwrap();
    assert_eq!(rows, vec![done, row(2, MessageState::Pending), failed]);
    // One copied, one pending and one failed: one placed, two unsettled.
    let tallies = store.folder_tallies("j").await.unwrap();
    assert_eq!(
        tallies.get("INBOX"),
        Some(&FolderTally {
            placed: 1,
            unsettled: 2
        })
    );
    assert_eq!(tallies.len(), 1);
    store
        .delete_messages("j", "INBOX", cp.source_uidvalidity, &[u(2), u(3)])
        .await
        .unwrap();
    assert_eq!(
        store
            .mapped_messages("j", "INBOX", cp.source_uidvalidity)
            .await
            .unwrap()
            .len(),
        1
    );
    store.forget_folder("j", "INBOX").await.unwrap();
    assert!(store
        .mapped_messages("j", "INBOX", cp.source_uidvalidity)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.folder_checkpoint("j", "INBOX").await.unwrap(), None);
    // Reopening keeps the schema version and does not migrate twice.
    store.save_folder_checkpoint("j", &cp).await.unwrap();
    let again = db.reopen().await;
    assert_eq!(
        again.folder_checkpoint("j", "INBOX").await.unwrap(),
        Some(cp)
    );
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM schema_version ORDER BY version")
            .fetch_all(again.pool())
            .await
            .unwrap();
    // Every migration applied once, in order, none twice on reopening.
    assert!(versions.len() >= 3, "{versions:?}");
    // (Numbers may have gaps: each piece of work keeps the number reserved for it.)
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "{versions:?}");
}

#[tokio::test]
async fn many_rows_at_once_on_sqlite() {
    many_rows_at_once(Db::sqlite().await).await;
}

#[tokio::test]
async fn many_rows_at_once_on_postgres() {
    many_rows_at_once(Db::postgres().await).await;
}

/// More rows than one statement holds, a message named twice in one call (the last row
/// counts), and deletions of more than one statement's worth.
async fn many_rows_at_once(db: Db) {
    let store = &db.store;
    let row = |uid: u32, state, target_uid: Option<u32>| MappedMessage {
        source_uid: u(uid),
        fingerprint: format!("fp{uid}"),
        state,
        target_uid: target_uid.map(u),
        flags: format!("$K{uid}"),
        detail: uid.is_multiple_of(7).then(|| format!("detail {uid}")),
    };
    let pending: Vec<MappedMessage> = (1..=333)
        .map(|uid| row(uid, MessageState::Pending, None))
        .collect();
    store
        .record_messages("j", "F", v(9), &pending)
        .await
        .unwrap();
    let mut settled: Vec<MappedMessage> = (1..=333)
        .map(|uid| row(uid, MessageState::Copied, Some(uid + 1000)))
        .collect();
    // UID 5 twice: first failed, then copied; the copied row is the one kept.
    settled.insert(0, row(5, MessageState::Failed, None));
    store
        .record_messages("j", "F", v(9), &settled)
        .await
        .unwrap();
    let rows = store.mapped_messages("j", "F", v(9)).await.unwrap();
    let expected: Vec<MappedMessage> = (1..=333)
        .map(|uid| row(uid, MessageState::Copied, Some(uid + 1000)))
        .collect();
    assert_eq!(rows, expected);
    let gone: Vec<mailferry_imap::Uid> = (1..=333).filter(|uid| uid % 3 != 0).map(u).collect();
    store.delete_messages("j", "F", v(9), &gone).await.unwrap();
    let left: Vec<u32> = store
        .mapped_messages("j", "F", v(9))
        .await
        .unwrap()
        .iter()
        .map(|r| r.source_uid.get())
        .collect();
    assert_eq!(
        left,
        (1..=333).filter(|uid| uid % 3 == 0).collect::<Vec<_>>()
    );
    // Another folder's and another job's rows are not touched by either.
    store
        .record_messages("j", "G", v(9), &pending[..3])
        .await
        .unwrap();
    store
        .record_messages("k", "F", v(9), &pending[..3])
        .await
        .unwrap();
    store
        .delete_messages("j", "F", v(9), &[u(1), u(2), u(3)])
        .await
        .unwrap();
    assert_eq!(
        store.mapped_messages("j", "G", v(9)).await.unwrap().len(),
        3
    );
    assert_eq!(
        store.mapped_messages("k", "F", v(9)).await.unwrap().len(),
        3
    );
}
