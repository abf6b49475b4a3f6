//! Groupware passes between a real Radicale and a real Xandikos: the corpus copied and
//! verified equal, a second pass copies nothing, source changes carried by the delta
//! pass, nothing written twice into a target that has objects already.

use std::time::Duration;

use mailferry_dav::{DavEndpoint, DavUrl, ServerKind};
use mailferry_engine::groupware::{copy_groupware, verify_groupware, GroupwareJob};
use mailferry_engine::Progress;
use mailferry_store::Store;
use mailferry_testkit::{
    extra_event, groupware_corpus, DavServer, GroupwareKind, DAV_PASSWORD, DAV_USER, STANDUP_UID,
};

fn endpoint(server: &DavServer) -> DavEndpoint {
    DavEndpoint {
        url: DavUrl::parse(&server.url()).unwrap().url,
        user: DAV_USER.into(),
        password: DAV_PASSWORD.to_string().into(),
        insecure: false,
        ca_file: None,
        timeout: Duration::from_secs(30),
        server: ServerKind::Generic,
    }
}

async fn state() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("state.sqlite"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn radicale_to_xandikos_copy_verify_rerun_and_delta() {
    let source = DavServer::radicale().unwrap();
    let target = DavServer::xandikos().unwrap();
    let corpus = groupware_corpus();
    source.fill(&corpus).unwrap();
    let (_dir, store) = state().await;
    let job = GroupwareJob {
        id: "j".into(),
        source: endpoint(&source),
        target: endpoint(&target),
        dry_run: false,
        sync_deletes: false,
    };
    let progress = Progress::default();

    let first = copy_groupware(&job, &store, &progress).await;
    assert!(first.problems.is_empty(), "{:#?}", first.problems);
    for c in &first.collections {
        assert!(c.error.is_none() && c.failed.is_empty(), "{c:#?}");
    }
    assert_eq!(
        first.copied(),
        corpus.objects().count() as u64,
        "{first:#?}"
    );
    assert_eq!(first.counts.events.total, 6);
    assert_eq!(first.counts.events.transferred, 6);
    assert_eq!(first.counts.tasks.transferred, 3);
    assert_eq!(first.counts.contacts.transferred, 3);
    assert_eq!(first.counts.calendars.transferred, 2);
    assert_eq!(first.counts.address_books.transferred, 1);
    assert_eq!(progress.groupware(), Some(first.counts));

    let verified = verify_groupware(&job).await;
    assert_eq!(verified.differences(), 0, "{verified:#?}");
    let equal: u64 = verified.collections.iter().map(|c| c.equal).sum();
    assert_eq!(equal, corpus.objects().count() as u64, "{verified:#?}");

    // Second pass: nothing to copy, found by sync token without listing.
    let second = copy_groupware(&job, &store, &progress).await;
    assert_eq!(second.copied(), 0, "{second:#?}");
    assert!(
        second.collections.iter().all(|c| c.delta == "sync-token"),
        "{second:#?}"
    );
    assert_eq!(second.counts, first.counts);

    // At the source: one event changed, one added, one contact deleted.
    let team = source.collection_path(GroupwareKind::Calendar, "team paris");
    let (_, standup) = corpus.find(STANDUP_UID).unwrap();
    source
        .put(
            &format!("{team}standup.ics"),
            GroupwareKind::Calendar,
            &standup.data.replace("team Paris", "team Paris and Lyon"),
        )
        .unwrap();
    source
        .put(
            &format!("{team}new%20one.ics"),
            GroupwareKind::Calendar,
            &extra_event("added-later@mailferry.test", "Added after the first pass"),
        )
        .unwrap();
    let contacts = source.collection_path(GroupwareKind::AddressBook, "contacts");
    source.delete(&format!("{contacts}chandra.vcf")).unwrap();

    // Deletions carried, as asked for.
    let deleting = GroupwareJob {
        sync_deletes: true,
        ..job.clone()
    };
    let delta = copy_groupware(&deleting, &store, &progress).await;
    let team_report = delta
        .collections
        .iter()
        .find(|c| c.name.starts_with("Équipe"))
        .unwrap();
    assert_eq!(
        (team_report.copied, team_report.updated),
        (1, 1),
        "{team_report:#?}"
    );
    let book = delta
        .collections
        .iter()
        .find(|c| c.kind == "addressbook")
        .unwrap();
    assert_eq!(book.deleted_on_target, 1, "{book:#?}");
    assert_eq!(delta.counts.events.total, 7);
    assert_eq!(delta.counts.contacts.total, 2);
    let verified = verify_groupware(&job).await;
    assert_eq!(verified.differences(), 0, "{verified:#?}");
    let xandikos_team = target.collection_path(GroupwareKind::Calendar, "team paris");
    let moved = target
        .get(&format!("{xandikos_team}standup.ics"))
        .unwrap()
        .unwrap();
    assert!(moved.contains("Lyon"), "{moved}");

    // A fresh state (deleted state file) against the filled target copies nothing twice.
    let (_dir2, fresh) = state().await;
    let again = copy_groupware(&job, &fresh, &progress).await;
    assert_eq!(again.copied(), 0, "{again:#?}");
    assert_eq!(
        again
            .collections
            .iter()
            .map(|c| c.already_present)
            .sum::<u64>(),
        (corpus.objects().count() + 1 - 1) as u64
    );
    for collection in &corpus.collections {
        let path = target.collection_path(collection.kind, collection.segment);
        let listed = target.list(&path).unwrap();
        let expected = match collection.segment {
            "team paris" => collection.objects.len() + 1,
            "contacts" => collection.objects.len() - 1,
            _ => collection.objects.len(),
        };
        assert_eq!(listed.len(), expected, "{path}: {listed:?}");
    }

    // Verify sees a change made on the target alone, and names the line.
    let anna = target.collection_path(GroupwareKind::AddressBook, "contacts");
    let data = target.get(&format!("{anna}anna.vcf")).unwrap().unwrap();
    target
        .put(
            &format!("{anna}anna.vcf"),
            GroupwareKind::AddressBook,
            &data.replace("Head of IT", "Head of Sales"),
        )
        .unwrap();
    let verified = verify_groupware(&job).await;
    assert_eq!(verified.differences(), 1, "{verified:#?}");
    let book = verified
        .collections
        .iter()
        .find(|c| c.kind == "addressbook")
        .unwrap();
    assert!(
        book.different[0].source_line.contains("Head of IT"),
        "{book:#?}"
    );
    assert!(
        book.different[0].target_line.contains("Head of Sales"),
        "{book:#?}"
    );
}

/// Issue 18: a target that lost a calendar (deleted and recreated by its admin) or single
/// objects since the last pass gets them again, where the state alone would say "unchanged".
/// Issue 19: objects deleted at the source are kept on the target unless deletions are asked
/// for.
#[tokio::test]
async fn a_target_that_lost_a_calendar_or_objects_gets_them_again_and_deletions_wait_for_the_opt_in(
) {
    let source = DavServer::radicale().unwrap();
    let target = DavServer::xandikos().unwrap();
    let corpus = groupware_corpus();
    source.fill(&corpus).unwrap();
    let (_dir, store) = state().await;
    let job = GroupwareJob {
        id: "j".into(),
        source: endpoint(&source),
        target: endpoint(&target),
        dry_run: false,
        sync_deletes: false,
    };
    let progress = Progress::default();
    let first = copy_groupware(&job, &store, &progress).await;
    assert_eq!(
        first.copied(),
        corpus.objects().count() as u64,
        "{first:#?}"
    );

    // On the target only: the team calendar deleted whole, one contact deleted.
    let team = target.collection_path(GroupwareKind::Calendar, "team paris");
    let team_count = target.list(&team).unwrap().len();
    assert!(team_count > 0);
    target.delete(&team).unwrap();
    let book = target.collection_path(GroupwareKind::AddressBook, "contacts");
    target.delete(&format!("{book}anna.vcf")).unwrap();

    let refill = copy_groupware(&job, &store, &progress).await;
    assert!(refill.problems.is_empty(), "{:#?}", refill.problems);
    let team_report = refill
        .collections
        .iter()
        .find(|c| c.name.starts_with("Équipe"))
        .unwrap();
    assert_eq!(
        team_report.copied as usize, team_count,
        "the lost calendar is refilled: {team_report:#?}"
    );
    assert!(
        team_report.notes.iter().any(|n| n.contains("gone")),
        "{team_report:#?}"
    );
    let book_report = refill
        .collections
        .iter()
        .find(|c| c.kind == "addressbook")
        .unwrap();
    assert_eq!(book_report.copied, 1, "{book_report:#?}");
    assert!(
        book_report
            .notes
            .iter()
            .any(|n| n.contains("no longer in the target")),
        "{book_report:#?}"
    );
    // The other calendar was left alone.
    assert_eq!(refill.copied() as usize, team_count + 1, "{refill:#?}");
    let verified = verify_groupware(&job).await;
    assert_eq!(verified.differences(), 0, "{verified:#?}");

    // A quiet pass after that copies nothing.
    let quiet = copy_groupware(&job, &store, &progress).await;
    assert_eq!(quiet.copied(), 0, "{quiet:#?}");

    // Deleted at the source: kept on the target, counted, and said.
    let contacts = source.collection_path(GroupwareKind::AddressBook, "contacts");
    source.delete(&format!("{contacts}chandra.vcf")).unwrap();
    let delta = copy_groupware(&job, &store, &progress).await;
    let book_report = delta
        .collections
        .iter()
        .find(|c| c.kind == "addressbook")
        .unwrap();
    assert_eq!(
        (book_report.deleted_at_source, book_report.deleted_on_target),
        (1, 0),
        "{book_report:#?}"
    );
    assert!(
        book_report
            .notes
            .iter()
            .any(|n| n.contains("kept on the target")),
        "{book_report:#?}"
    );
    assert!(
        target
            .list(&book)
            .unwrap()
            .iter()
            .any(|h| h.ends_with("chandra.vcf")),
        "the target keeps the contact"
    );
}
