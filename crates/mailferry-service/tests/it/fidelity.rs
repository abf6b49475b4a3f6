//! Regression tests of fidelity bugs through the service (issues 18 and 19), against real
//! Dovecot servers, each checked with an independent verify.

use std::time::Duration;

use mailferry_engine::verify::verify;
use mailferry_engine::CopyOptions;
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD};
use mailferry_testkit::nasty_corpus;
use serde_json::json;

use crate::api::{account, submission};
use crate::common::Service;

fn target_count(target: &Dovecot) -> u64 {
    let names = target.doveadm(&["mailbox", "list", "-u", USER2]).unwrap();
    names
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(|name| {
            let out = target
                .doveadm(&[
                    "-f", "flow", "mailbox", "status", "-u", USER2, "messages", name,
                ])
                .unwrap();
            out.trim()
                .rsplit_once("messages=")
                .and_then(|(_, n)| n.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum()
}

/// Issue 18: the target account is deleted and recreated between the first pass and the
/// resync (nothing new at the source). The resync must copy everything again, not report
/// "done" over an empty account.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_resync_into_a_recreated_target_copies_everything_again() {
    let source = Dovecot::start().unwrap();
    let mut target = Dovecot::start().unwrap();
    let corpus = nasty_corpus(false);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let service = Service::start().await;

    let mut body = submission(&source, &target, USER2_PASSWORD);
    let resync = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(8))
        .unwrap();
    body["resyncdate"] = json!(resync.to_string());
    let (status, created) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    service
        .wait_for_state(&id, "waiting_resync", Duration::from_secs(60))
        .await;
    target.wipe_account(USER2).unwrap();
    assert_eq!(target_count(&target), 0);
    assert!(
        jiff::Timestamp::now() < resync,
        "the first pass took so long that the resync was due before the target was wiped"
    );

    let done = service
        .wait_for_state(&id, "done", Duration::from_secs(60))
        .await;
    let migration = &done["migration"];
    assert_eq!(
        migration["progress"]["messages_copied"].as_u64(),
        Some(corpus.message_count() as u64),
        "the resync copied everything again: {migration}"
    );
    assert_eq!(target_count(&target), corpus.message_count() as u64);
    let differences = verify(
        &account(&source, USER1, USER1_PASSWORD),
        &account(&target, USER2, USER2_PASSWORD),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(differences.differences(), 0, "{differences:?}");
    service.stop().await;
}
