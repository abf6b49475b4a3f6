//! Regression tests of fidelity bugs through the service (issues 18 and 19), against real
//! Dovecot servers, each checked with an independent verify.

use std::time::Duration;

use mailferry_engine::verify::verify;
use mailferry_engine::CopyOptions;
use mailferry_testkit::dovecot::{
    Dovecot, SMALL, SMALL_PASSWORD, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD,
};
use mailferry_testkit::nasty_corpus;
use mailferry_testkit::proxy::FaultProxy;
use serde_json::json;

use crate::api::{account, submission};
use crate::common::Service;

fn target_count(target: &Dovecot) -> u64 {
    count_of(target, USER2)
}

fn count_of(target: &Dovecot, user: &str) -> u64 {
    let names = target.doveadm(&["mailbox", "list", "-u", user]).unwrap();
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

fn proxied(body: &mut serde_json::Value, side: &str, proxy: &FaultProxy) {
    body[format!("{side}.server")] = json!(format!("imap://127.0.0.1:{}", proxy.port()));
}

/// Issue 19: a last pass that leaves messages behind (the target over quota) is not "done":
/// it fails with words that say so, keeps its credentials, and a retry after the quota was
/// raised copies exactly what was left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partial_last_pass_fails_and_its_retry_finishes_it() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpus = mailferry_testkit::bulk_corpus(196, 12, 1);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let service = Service::start().await;
    let mut body = submission(&source, &target, SMALL_PASSWORD);
    body["target.username"] = json!(SMALL);
    let (status, created) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    let failed = service
        .wait_for_state(&id, "failed", Duration::from_secs(60))
        .await;
    let migration = &failed["migration"];
    let error = migration["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("could not be copied") && error.contains("retry"),
        "{migration}"
    );
    let left = migration["progress"]["messages_failed"].as_u64().unwrap();
    assert!(left > 0, "{migration}");
    assert_eq!(
        service.store.secrets(&id).await.unwrap().len(),
        2,
        "the credentials are kept for the retry"
    );

    target.set_quota(SMALL, None).unwrap();
    let (status, retried) = service
        .post(&format!("/api/v1/migrations/{id}/retry"), json!({}))
        .await;
    assert_eq!(status, 200, "{retried}");
    let done = service
        .wait_for_state(&id, "done", Duration::from_secs(60))
        .await;
    assert_eq!(
        done["migration"]["progress"]["messages_copied"].as_u64(),
        Some(left),
        "the retry copied exactly what was left: {done}"
    );
    let differences = verify(
        &account(&source, USER1, USER1_PASSWORD),
        &account(&target, SMALL, SMALL_PASSWORD),
        &CopyOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(differences.differences(), 0, "{differences:?}");
    assert!(service.store.secrets(&id).await.unwrap().is_empty());
    service.stop().await;
}

/// Issue 19: cancelling a running migration stops its pass within seconds (between batches,
/// nothing half-done), and its account stays busy until the pass has stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_stops_a_running_pass_and_frees_its_account_only_then() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpus = mailferry_testkit::bulk_corpus(197, 1500, 2);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let proxy = FaultProxy::start(format!("127.0.0.1:{}", source.imap_port()).parse().unwrap());
    proxy.set_delay(Duration::from_millis(3));
    // A lease long enough that a loaded machine's late renewal is no take-over.
    let service = Service::start_with(|config| config.lease = Duration::from_secs(30)).await;
    let mut body = submission(&source, &target, USER2_PASSWORD);
    proxied(&mut body, "source", &proxy);
    let (status, created) = service.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    service
        .wait_for_state(&id, "transferring", Duration::from_secs(30))
        .await;
    let started = std::time::Instant::now();
    while target_count(&target) < 50 {
        if started.elapsed() > Duration::from_secs(90) {
            let (_, migration) = service.get(&format!("/api/v1/migrations/{id}")).await;
            let log = |d: &Dovecot| {
                let text = std::fs::read_to_string(d.log_path()).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            };
            panic!(
                "no progress in 90 s: {migration}\nsource log:\n{}\ntarget log:\n{}",
                log(&source),
                log(&target)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let (status, cancelled) = service
        .post(&format!("/api/v1/migrations/{id}/cancel"), json!({}))
        .await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(cancelled["state"], "cancelled");
    // Until its pass has stopped, the migration keeps its lease: its account is busy.
    let record = service.store.migration(&id).await.unwrap().unwrap();
    assert!(
        record.lease_owner.is_some(),
        "the running pass keeps its lease until it stops: {record:?}"
    );
    let stopped = std::time::Instant::now();
    loop {
        let record = service.store.migration(&id).await.unwrap().unwrap();
        if record.lease_owner.is_none() {
            break;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(15),
            "the cancelled pass is still running after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Stopped: no more connections to the source, nothing more lands on the target.
    let settled = std::time::Instant::now();
    while proxy.live_connections() > 0 {
        assert!(
            settled.elapsed() < Duration::from_secs(10),
            "the cancelled pass keeps {} source connections",
            proxy.live_connections()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = target_count(&target);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        target_count(&target),
        after,
        "messages still land after the pass stopped"
    );
    assert!(
        after < corpus.message_count() as u64,
        "the pass finished before the cancel took effect"
    );
    let record = service.store.migration(&id).await.unwrap().unwrap();
    assert_eq!(record.state.as_str(), "cancelled");
    assert!(service.store.secrets(&id).await.unwrap().is_empty());
    service.stop().await;
}

/// Issue 19: a panic in a pass (a bug) ends it as failed, with its lease released and words
/// for the admin, instead of leaving it "transferring" with a lease renewed forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_panic_in_a_pass_fails_it_and_releases_its_lease() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let service = Service::start_with(|config| config.panic_in_pass = true).await;
    let (status, created) = service
        .post(
            "/api/v1/migrations",
            submission(&source, &target, USER2_PASSWORD),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let failed = service
        .wait_for_state(&id, "failed", Duration::from_secs(30))
        .await;
    let error = failed["migration"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("internal error"), "{failed}");
    let record = service.store.migration(&id).await.unwrap().unwrap();
    assert_eq!(record.lease_owner, None, "{record:?}");
    assert_eq!(record.lease_until, None, "{record:?}");
    // It stays failed: nothing renews a lease or takes it again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let record = service.store.migration(&id).await.unwrap().unwrap();
    assert_eq!(record.state.as_str(), "failed");
    assert_eq!(record.attempts, 1);
    service.stop().await;
}

/// Issue 19: failed logins sent all at once cannot pass the limit together (they used to be
/// counted only after each password check), and the right password afterwards waits too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_sent_at_once_do_not_pass_the_login_limit() {
    let service = Service::start().await;
    let attempts = (0..20).map(|i| {
        let client = service.client.clone();
        let url = format!("{}/api/v1/migrations", service.base);
        async move {
            client
                .get(url)
                .basic_auth("admin", Some(format!("wrong-{i}")))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(checked + refused, 20, "{statuses:?}");
    assert!(
        checked <= 5,
        "at most 5 passwords are checked per address and window: {statuses:?}"
    );
    let right = service
        .client
        .get(format!("{}/api/v1/migrations", service.base))
        .basic_auth("admin", Some(crate::common::ADMIN))
        .send()
        .await
        .unwrap();
    assert_eq!(
        right.status().as_u16(),
        429,
        "the address waits out its window"
    );
    service.stop().await;
}
