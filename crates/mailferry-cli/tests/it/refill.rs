//! Issue 18: a rerun into a target that was emptied, recreated or thinned out since the last
//! pass refills it, instead of trusting the state and saying "complete". Each test copies,
//! damages the target behind mailferry's back, and checks the rerun against doveadm's own
//! counts and an independent verify.

use std::time::Duration;

use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2};
use mailferry_testkit::{bulk_corpus, nasty_corpus};
use serde_json::Value;

use crate::common::wait_until;
use crate::fidelity::run_ok;
use crate::migrate::{doveadm_counts, total, Pair};

fn on_target(pair: &Pair) -> u64 {
    doveadm_counts(&pair.target, USER2)
        .iter()
        .map(|(_, c)| c)
        .sum()
}

fn folder<'a>(report: &'a Value, source: &str) -> &'a Value {
    report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == source)
        .unwrap_or_else(|| panic!("no folder {source} in {report}"))
}

#[test]
fn a_rerun_into_a_wiped_target_copies_everything_again() {
    let mut pair = Pair::new(Dovecot::start().unwrap());
    let corpus = nasty_corpus(false);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let first = pair.migrate(&[]);
    assert_eq!(total(&first, "copied") as usize, corpus.message_count());

    // The admin deletes and recreates the target account: every folder comes back empty
    // (or not at all) with a new UIDVALIDITY. Nothing changed at the source.
    pair.target.wipe_account(USER2).unwrap();
    assert_eq!(on_target(&pair), 0, "the wipe left messages behind");

    let rerun = pair.migrate(&[]);
    assert_eq!(rerun["outcome"], "Complete", "{rerun}");
    assert_eq!(
        total(&rerun, "copied") as usize,
        corpus.message_count(),
        "everything is copied again: {rerun}"
    );
    assert!(
        rerun["folders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["unchanged"] == false),
        "no folder may be skipped as unchanged: {rerun}"
    );
    // What the report says is on the target is what the target said.
    assert_eq!(
        total(&rerun, "target_messages") as usize,
        corpus.message_count(),
        "{rerun}"
    );
    pair.assert_verified();
    assert_eq!(on_target(&pair) as usize, corpus.message_count());

    // And the pass after that is quiet again.
    let quiet = pair.migrate(&[]);
    assert_eq!(total(&quiet, "copied"), 0, "{quiet}");
    assert_eq!(on_target(&pair) as usize, corpus.message_count());
}

#[test]
fn a_folder_deleted_or_thinned_on_the_target_only_is_refilled_and_the_rest_left_alone() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = nasty_corpus(false);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    pair.migrate(&[]);

    let deleted = "Archive/2019/Q1";
    let thinned = "INBOX";
    let deleted_count = corpus.folder(deleted).unwrap().messages.len();
    assert!(deleted_count > 0);
    pair.target
        .doveadm(&[
            "mailbox",
            "delete",
            "-u",
            USER2,
            "-r",
            &pair.target.mailbox_name(deleted),
        ])
        .unwrap();
    // Two messages expunged in another folder: it keeps its UIDVALIDITY, holds fewer.
    pair.target
        .doveadm(&["expunge", "-u", USER2, "mailbox", thinned, "uid", "1:2"])
        .unwrap();
    assert_eq!(
        on_target(&pair) as usize,
        corpus.message_count() - deleted_count - 2
    );

    let rerun = pair.migrate(&[]);
    assert_eq!(rerun["outcome"], "Complete", "{rerun}");
    let refilled = folder(&rerun, deleted);
    assert_eq!(
        refilled["copied"].as_u64().unwrap() as usize,
        deleted_count,
        "{refilled}"
    );
    let notes = refilled["notes"].to_string();
    assert!(
        notes.contains("created on the target"),
        "the report says why: {refilled}"
    );
    let inbox = folder(&rerun, thinned);
    assert_eq!(inbox["copied"], 2, "{inbox}");
    assert!(
        inbox["notes"]
            .to_string()
            .contains("no longer in the target folder"),
        "the report says why: {inbox}"
    );
    // Folders the target still held whole are not touched.
    for f in rerun["folders"].as_array().unwrap() {
        if f["source"] != deleted && f["source"] != thinned {
            assert_eq!(f["copied"], 0, "{f}");
        }
    }
    assert_eq!(total(&rerun, "copied") as usize, deleted_count + 2);
    pair.assert_verified();
    assert_eq!(on_target(&pair) as usize, corpus.message_count());
}

#[test]
fn a_refill_killed_midway_resumes_without_loss_or_duplicates() {
    let mut pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(181, 1500, 4);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    // Every pass through one proxy (one source address, one state), slowed down for the
    // refill so that it is still running when it is killed.
    let proxy = Pair::proxy_for(&pair.source);
    let report = pair.state.path().join("killed.json");
    let args = pair.args_via(&report, Some(&proxy), None);
    run_ok(&args, &report);
    pair.target.wipe_account(USER2).unwrap();
    proxy.set_delay(Duration::from_millis(3));
    let mut child = Pair::spawn(&args);
    let started = wait_until(Duration::from_secs(60), || on_target(&pair) >= 100);
    let killed_alive = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(started, "the refill never started");
    assert!(
        killed_alive,
        "the refill finished before it could be killed"
    );
    let midway = on_target(&pair) as usize;
    assert!(
        midway < corpus.message_count(),
        "killed after the end ({midway})"
    );

    proxy.set_delay(Duration::ZERO);
    let resumed = run_ok(&args, &report);
    assert_eq!(resumed["outcome"], "Complete", "{resumed}");
    pair.assert_verified();
    assert_eq!(
        on_target(&pair) as usize,
        corpus.message_count(),
        "every message exactly once"
    );
}
