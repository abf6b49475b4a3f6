//! Issue 19: fidelity bugs found by reading the engine, each with a test through the binary
//! against Dovecot (a fault proxy where a fault is needed) that failed before its fix.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mailferry_testkit::dovecot::{
    Dovecot, CAPABILITIES_WITHOUT_LITERAL_PLUS, SMALL, SMALL_PASSWORD, USER1, USER1_PASSWORD, USER2,
};
use mailferry_testkit::{bulk_corpus, Corpus, CorpusFolder};
use serde_json::Value;

use crate::common::{mailferry, stderr, stdout, wait_until};
use crate::migrate::{doveadm_counts, failures, total, Pair};

fn count(server: &Dovecot, user: &str) -> u64 {
    doveadm_counts(server, user).iter().map(|(_, c)| c).sum()
}

/// `migrate` from user1 to `user` (password `password`) on `target`, with `extra` flags;
/// the exit code, the JSON report and what it printed.
fn migrate_to(
    source_port: u16,
    target_port: u16,
    user: &str,
    password: &str,
    state: &Path,
    extra: &[&str],
) -> (i32, Value, String) {
    let report = state.join("report.json");
    let _ = std::fs::remove_file(&report);
    let from = format!("imap://{USER1}@127.0.0.1:{source_port}");
    let to = format!("imap://{user}@127.0.0.1:{target_port}");
    let (state, report_arg) = (state.display().to_string(), report.display().to_string());
    let mut args = vec![
        "migrate",
        "--from",
        &from,
        "--to",
        &to,
        "--insecure",
        "--state-dir",
        &state,
        "--report",
        &report_arg,
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let out = mailferry(
        &args,
        &[
            ("MAILFERRY_FROM_PASSWORD", USER1_PASSWORD),
            ("MAILFERRY_TO_PASSWORD", password),
        ],
    );
    let json = serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
        .unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        json,
        format!("{}\n{}", stdout(&out), stderr(&out)),
    )
}

fn verify_to(source_port: u16, target_port: u16, user: &str, password: &str) -> Value {
    let from = format!("imap://{USER1}@127.0.0.1:{source_port}");
    let to = format!("imap://{user}@127.0.0.1:{target_port}");
    let out = mailferry(
        &[
            "verify",
            "--from",
            &from,
            "--to",
            &to,
            "--insecure",
            "--json",
        ],
        &[
            ("MAILFERRY_FROM_PASSWORD", USER1_PASSWORD),
            ("MAILFERRY_TO_PASSWORD", password),
        ],
    );
    serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("verify --json: {e}: {}\n{}", stdout(&out), stderr(&out)))
}

/// `migrate` with `args` (built by [`Pair::migrate_args`]), expected to exit 0.
pub(crate) fn run_ok(args: &[String], report: &Path) -> Value {
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailferry(&argv, &Pair::env());
    assert!(
        out.status.success(),
        "migrate failed ({:?}):\n{}\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

fn reasons(report: &Value) -> String {
    report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["failed"].as_array().cloned().unwrap_or_default())
        .map(|p| p["reason"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// 19.1: a delta pass killed after some of its batches landed. Its copies are in the state
/// with UIDs above the checkpoint's UIDNEXT; the next pass must not copy them again.
#[test]
fn a_delta_pass_killed_midway_resumes_without_duplicates() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let first = bulk_corpus(191, 100, 1);
    pair.source.fill(USER1, USER1_PASSWORD, &first).unwrap();
    // Every pass through the proxy (one source address, one state); slow only when killed.
    let proxy = Pair::proxy_for(&pair.source);
    let report = pair.state.path().join("delta.json");
    let args = pair.args_via(&report, Some(&proxy), None);
    run_ok(&args, &report);
    let new = bulk_corpus(192, 1200, 1);
    pair.source.fill(USER1, USER1_PASSWORD, &new).unwrap();
    let all = (first.message_count() + new.message_count()) as u64;

    proxy.set_delay(Duration::from_millis(3));
    let mut child = Pair::spawn(&args);
    let landed = wait_until(Duration::from_secs(60), || {
        count(&pair.target, USER2) >= 250
    });
    let alive = child.try_wait().unwrap().is_none();
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(landed, "the delta pass never copied 150 messages");
    assert!(alive, "the delta pass ended before it could be killed");
    assert!(count(&pair.target, USER2) < all, "killed after the end");

    proxy.set_delay(Duration::ZERO);
    let resumed = run_ok(&args, &report);
    assert_eq!(resumed["outcome"], "Complete", "{resumed}");
    pair.assert_verified();
    assert_eq!(
        count(&pair.target, USER2),
        all,
        "every message exactly once"
    );
    let again = run_ok(&args, &report);
    assert_eq!(total(&again, "copied"), 0, "{again}");
}

/// 19.2: messages the target refused (over quota) are tried again by the next pass, although
/// nothing changed at the source; once the quota is raised they go over.
#[test]
fn messages_the_target_refused_are_retried_by_the_next_pass() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpus = bulk_corpus(193, 12, 1);
    assert!(
        corpus.total_bytes() > 40 * 1024,
        "the corpus must overflow the quota"
    );
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let state = tempfile::tempdir().unwrap();
    let ports = (source.imap_port(), target.imap_port());

    let (code, first, out) = migrate_to(ports.0, ports.1, SMALL, SMALL_PASSWORD, state.path(), &[]);
    assert_eq!(code, 3, "partial: {out}");
    let refused = failures(&first);
    assert!(refused > 0, "{first}");
    assert!(reasons(&first).contains("OVERQUOTA"), "{first}");
    assert_eq!(
        total(&first, "copied") as usize + refused,
        corpus.message_count()
    );

    target.set_quota(SMALL, None).unwrap();
    let (code, second, out) =
        migrate_to(ports.0, ports.1, SMALL, SMALL_PASSWORD, state.path(), &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        total(&second, "copied") as usize,
        refused,
        "exactly the refused ones: {second}"
    );
    let verified = verify_to(ports.0, ports.1, SMALL, SMALL_PASSWORD);
    assert_eq!(verified["differences"], 0, "{verified}");
    assert_eq!(count(&target, SMALL) as usize, corpus.message_count());
}

/// 19.4: a target without LITERAL+ may refuse a message before it is sent (here over quota,
/// answered before the `+`). That message fails alone; the folder goes on, on every pass.
#[test]
fn a_message_refused_before_its_literal_fails_alone() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::builder()
        .capabilities(CAPABILITIES_WITHOUT_LITERAL_PLUS)
        .start()
        .unwrap();
    // Small ones that fit the 20 KB quota between big ones that do not.
    let bulk = bulk_corpus(194, 200, 1);
    let mut small: Vec<_> = bulk.folders[0]
        .messages
        .iter()
        .filter(|m| m.bytes.len() < 4_000)
        .take(4)
        .cloned()
        .collect();
    let big: Vec<_> = bulk.folders[0]
        .messages
        .iter()
        .filter(|m| m.bytes.len() > 30_000)
        .take(3)
        .cloned()
        .collect();
    assert!(small.len() == 4 && big.len() == 3);
    let mut messages = Vec::new();
    for (i, m) in big.iter().enumerate() {
        messages.push(m.clone());
        messages.push(small.remove(0));
        if i == 2 {
            messages.push(small.remove(0));
        }
    }
    let corpus = Corpus {
        folders: vec![CorpusFolder {
            name: "INBOX".into(),
            messages,
        }],
    };
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let state = tempfile::tempdir().unwrap();
    let ports = (source.imap_port(), target.imap_port());
    for pass in 0..2 {
        let (code, report, out) =
            migrate_to(ports.0, ports.1, SMALL, SMALL_PASSWORD, state.path(), &[]);
        assert_eq!(code, 3, "pass {pass}: partial: {out}");
        let inbox = &report["folders"][0];
        assert!(
            inbox["error"].is_null(),
            "the folder must not fail: {report}"
        );
        assert_eq!(
            failures(&report),
            3,
            "pass {pass}: the big ones alone: {report}"
        );
        assert!(reasons(&report).contains("OVERQUOTA"), "{report}");
        assert_eq!(
            count(&target, SMALL),
            4,
            "pass {pass}: the small ones are copied"
        );
        if pass == 0 {
            assert_eq!(total(&report, "copied"), 4, "{report}");
        } else {
            assert_eq!(total(&report, "copied"), 0, "nothing twice: {report}");
        }
    }
}

/// 19.4: the source refuses to give one message (a NO that is not throttling): that message
/// fails alone with the server's words, the others are copied, and the next pass copies it.
#[test]
fn a_message_the_source_will_not_give_fails_alone() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(195, 30, 1);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let proxy = Pair::proxy_for(&pair.source);
    // The first body fetch (the whole batch), then the first message asked alone.
    proxy.refuse_commands_containing("BODY.PEEK[])", 2, "SERVERBUG");
    let report_file = pair.state.path().join("refused.json");
    let mut args = pair.args_via(&report_file, Some(&proxy), None);
    args.push("--plaintext".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailferry(&argv, &Pair::env());
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(proxy.refused_commands(), 2);
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&report_file).unwrap()).unwrap();
    assert_eq!(failures(&report), 1, "{report}");
    assert!(reasons(&report).contains("SERVERBUG"), "{report}");
    assert_eq!(
        total(&report, "copied") as usize,
        corpus.message_count() - 1
    );

    // The same address (the same state): the next pass takes it from the state's failures.
    let second = run_ok(&args, &report_file);
    assert_eq!(total(&second, "copied"), 1, "{second}");
    assert_eq!(total(&second, "already_present"), 0, "{second}");
    pair.assert_verified();
    assert_eq!(count(&pair.target, USER2) as usize, corpus.message_count());
}

/// Runs `migrate` with `args`, killed if it runs longer than `limit`: (exit code or `None`
/// when it had to be killed, how long it ran, what it printed).
fn run_limited(args: &[String], limit: Duration) -> (Option<i32>, Duration, String) {
    let started = std::time::Instant::now();
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mailferry"))
        .args(args)
        .envs(Pair::env())
        .stdin(Stdio::null())
        .stdout(log.reopen().unwrap())
        .stderr(log.reopen().unwrap())
        .spawn()
        .unwrap();
    let ended = wait_until(limit, || child.try_wait().unwrap().is_some());
    if !ended {
        child.kill().unwrap();
    }
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(log.path()).unwrap_or_default();
    (
        ended.then(|| status.code().unwrap_or(-1)),
        started.elapsed(),
        text,
    )
}

/// 19.6: a source that stops answering in the middle of a copy: the run ends within its
/// timeouts, saying what hung, and a run after the server is back finishes the copy.
#[test]
fn a_stalled_source_times_out_with_a_clear_message_and_a_rerun_finishes() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(198, 400, 1);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let proxy = Pair::proxy_for(&pair.source);
    proxy.set_delay(Duration::from_millis(2));
    let report = pair.state.path().join("stalled.json");
    let mut args = pair.args_via(&report, Some(&proxy), None);
    args.extend(["--timeout".into(), "2".into()]);
    let target = &pair.target;
    let stall = std::thread::scope(|scope| {
        let stalling = scope.spawn(|| {
            let going = wait_until(Duration::from_secs(60), || count(target, USER2) >= 20);
            proxy.stall();
            going
        });
        let run = run_limited(&args, Duration::from_secs(120));
        (stalling.join().unwrap(), run)
    });
    let (going, (code, took, log)) = stall;
    assert!(going, "the copy never got going: {log}");
    assert!(
        code.is_some(),
        "the run hung for {took:?} against a stalled source:\n{log}"
    );
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("did not answer within 2 s"),
        "the log says what hung: {log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    proxy.resume();
    proxy.set_delay(Duration::ZERO);
    let finished = run_ok(&args, &report);
    assert_eq!(finished["outcome"], "Complete", "{finished}");
    pair.assert_verified();
    assert_eq!(count(&pair.target, USER2) as usize, corpus.message_count());
}

/// 19.6: a target that stops reading in the middle of a big APPEND: the write times out
/// (it used to block for ever), and a later run copies the message once.
#[test]
fn a_target_that_stops_reading_mid_append_times_out_and_a_rerun_finishes() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = Corpus {
        folders: vec![CorpusFolder {
            name: "INBOX".into(),
            messages: mailferry_testkit::corpus::big_messages(199, 1, 0),
        }],
    };
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let proxy = Pair::proxy_for(&pair.target);
    let report = pair.state.path().join("stalled.json");
    let mut args = pair.args_via(&report, None, Some(&proxy));
    args.extend(["--timeout".into(), "2".into(), "--plaintext".into()]);
    // Past the logins and into the message.
    proxy.stall_after_upstream_bytes(1_500_000);
    let (code, took, log) = run_limited(&args, Duration::from_secs(120));
    assert!(
        code.is_some(),
        "the run hung for {took:?} against a stalled target:\n{log}"
    );
    assert_ne!(code, Some(0), "{log}");
    assert!(
        log.contains("did not answer within 2 s"),
        "the log says what hung: {log}"
    );

    proxy.resume();
    let finished = run_ok(&args, &report);
    assert_eq!(finished["outcome"], "Complete", "{finished}");
    pair.assert_verified();
    assert_eq!(count(&pair.target, USER2), 1);
}

/// 19.9: a second run of the same pair of accounts while the first runs is refused with a
/// clear message, instead of copying alongside it; the first finishes unharmed.
#[test]
fn a_second_run_of_the_same_accounts_at_once_is_refused() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(200, 600, 2);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let proxy = Pair::proxy_for(&pair.source);
    proxy.set_delay(Duration::from_millis(3));
    let report = pair.state.path().join("first.json");
    let args = pair.args_via(&report, Some(&proxy), None);
    let mut first = Pair::spawn(&args);
    assert!(wait_until(Duration::from_secs(60), || count(
        &pair.target,
        USER2
    ) > 0));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let second = mailferry(&argv, &Pair::env());
    let still_running = first.try_wait().unwrap().is_none();
    crate::common::assert_clean_failure(&second, &["another mailferry run", "locked"]);
    assert!(
        still_running,
        "the first run ended before the second was tried"
    );
    let status = first.wait().unwrap();
    assert!(status.success(), "the first run: {status:?}");
    pair.assert_verified();
    assert_eq!(count(&pair.target, USER2) as usize, corpus.message_count());
}

/// 19.8: folders renamed at the source between passes (one alone, and a parent with its
/// children) are followed: renamed on the target too, nothing copied again, said so.
#[test]
fn folders_renamed_at_the_source_are_followed_not_copied_again() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = mailferry_testkit::nasty_corpus(false);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    pair.migrate(&[]);
    let before = count(&pair.target, USER2);
    for (from, to) in [
        ("Projekte Übersicht", "Projekte 2024"),
        ("Archive", "Altes Archiv"),
    ] {
        pair.source
            .doveadm(&["mailbox", "rename", "-u", USER1, from, to])
            .unwrap();
    }
    let report = pair.migrate(&[]);
    assert_eq!(report["outcome"], "Complete", "{report}");
    assert_eq!(
        total(&report, "copied"),
        0,
        "nothing is copied again: {report}"
    );
    let notes = report["folders"].to_string();
    for old in ["Projekte Übersicht", "Archive/2019/Q1"] {
        assert!(
            notes.contains(&format!("renamed at the source from `{old}`")),
            "{old}: {report}"
        );
    }
    assert_eq!(count(&pair.target, USER2), before, "no message twice");
    let names: Vec<String> = doveadm_counts(&pair.target, USER2)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for name in ["Projekte 2024", "Altes Archiv", "Altes Archiv/2019/Q1"] {
        assert!(names.contains(&name.to_string()), "{name}: {names:?}");
    }
    for name in ["Projekte Übersicht", "Archive", "Archive/2019/Q1"] {
        assert!(
            !names.contains(&name.to_string()),
            "{name} is left: {names:?}"
        );
    }
    pair.assert_verified();
    let quiet = pair.migrate(&[]);
    assert_eq!(total(&quiet, "copied"), 0, "{quiet}");
}

/// 19.11: `--compress` turns COMPRESS=DEFLATE on (the README used to claim it while
/// `migrate` never did): the same copy reads far fewer bytes off the wire, and is exact.
#[test]
fn compress_reads_fewer_bytes_off_the_wire_and_copies_exactly() {
    let corpus = bulk_corpus(201, 300, 2);
    let mut wire = Vec::new();
    for compress in [false, true] {
        let pair = Pair::new(Dovecot::start().unwrap());
        pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
        let proxy = Pair::proxy_for(&pair.source);
        let report = pair.state.path().join("compress.json");
        let mut args = pair.args_via(&report, Some(&proxy), None);
        if compress {
            args.push("--compress".into());
        }
        let done = run_ok(&args, &report);
        assert_eq!(total(&done, "copied") as usize, corpus.message_count());
        pair.assert_verified();
        wire.push(proxy.downstream_bytes());
    }
    let (plain, compressed) = (wire[0], wire[1]);
    eprintln!("bytes off the wire: {plain} without --compress, {compressed} with");
    assert!(
        compressed * 10 < plain * 8,
        "with --compress {compressed} bytes came over the wire, without {plain}"
    );
}
