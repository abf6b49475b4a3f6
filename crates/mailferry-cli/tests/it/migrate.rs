//! `mailferry migrate` and `mailferry verify` between real Dovecot servers: the nasty corpus,
//! reruns, kills, a half-full target, other layouts, deltas and memory.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mailferry_testkit::dovecot::{
    Dovecot, Layout, Naming, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD,
};
use mailferry_testkit::{bulk_corpus, nasty_corpus, Corpus};
use serde_json::Value;

use crate::common::{mailferry, stderr, stdout};

pub(crate) struct Pair {
    pub(crate) source: Dovecot,
    pub(crate) target: Dovecot,
    pub(crate) state: tempfile::TempDir,
}

impl Pair {
    pub(crate) fn new(target: Dovecot) -> Self {
        Self {
            source: Dovecot::start().unwrap(),
            target,
            state: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn sides(&self) -> Vec<String> {
        vec![
            "--from".into(),
            format!("imap://{USER1}@127.0.0.1:{}", self.source.imap_port()),
            "--to".into(),
            format!("imap://{USER2}@127.0.0.1:{}", self.target.imap_port()),
            "--insecure".into(),
        ]
    }

    pub(crate) fn env() -> [(&'static str, &'static str); 2] {
        [
            ("MAILFERRY_FROM_PASSWORD", USER1_PASSWORD),
            ("MAILFERRY_TO_PASSWORD", USER2_PASSWORD),
        ]
    }

    pub(crate) fn migrate_args(&self, report: &Path) -> Vec<String> {
        let mut args = vec!["migrate".to_string()];
        args.extend(self.sides());
        args.extend([
            "--state-dir".into(),
            self.state.path().display().to_string(),
            "--report".into(),
            report.display().to_string(),
            "--quiet".into(),
        ]);
        args
    }

    /// A fault proxy in front of the source (or the target).
    pub(crate) fn proxy_for(server: &Dovecot) -> mailferry_testkit::proxy::FaultProxy {
        mailferry_testkit::proxy::FaultProxy::start(
            format!("127.0.0.1:{}", server.imap_port()).parse().unwrap(),
        )
    }

    /// [`Pair::migrate_args`] with the source and/or the target reached through proxies.
    pub(crate) fn args_via(
        &self,
        report: &Path,
        source: Option<&mailferry_testkit::proxy::FaultProxy>,
        target: Option<&mailferry_testkit::proxy::FaultProxy>,
    ) -> Vec<String> {
        let mut args = self.migrate_args(report);
        if let Some(proxy) = source {
            args[2] = format!("imap://{USER1}@127.0.0.1:{}", proxy.port());
        }
        if let Some(proxy) = target {
            args[4] = format!("imap://{USER2}@127.0.0.1:{}", proxy.port());
        }
        args
    }

    /// `mailferry` with `args` and the pair's passwords, in the background, output dropped:
    /// to be killed mid-way.
    pub(crate) fn spawn(args: &[String]) -> std::process::Child {
        Command::new(env!("CARGO_BIN_EXE_mailferry"))
            .args(args)
            .envs(Self::env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// Runs migrate, expects exit 0, returns the JSON report.
    pub(crate) fn migrate(&self, extra: &[&str]) -> Value {
        let report = self.state.path().join("report.json");
        let mut args = self.migrate_args(&report);
        args.extend(extra.iter().map(|s| s.to_string()));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mailferry(&argv, &Self::env());
        assert!(
            out.status.success(),
            "migrate failed ({:?}):\n{}\n{}",
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap()
    }

    /// Runs verify; returns (exit success, JSON).
    pub(crate) fn verify(&self) -> (bool, Value) {
        let mut args = vec!["verify".to_string()];
        args.extend(self.sides());
        args.push("--json".into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = mailferry(&argv, &Self::env());
        let json = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("verify --json: {e}: {}\n{}", stdout(&out), stderr(&out)));
        (out.status.success(), json)
    }

    pub(crate) fn assert_verified(&self) {
        let (ok, json) = self.verify();
        assert!(
            ok && json["differences"] == 0,
            "verify found differences: {}",
            serde_json::to_string_pretty(&json).unwrap()
        );
    }
}

pub(crate) fn total(report: &Value, field: &str) -> u64 {
    report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[field].as_u64().unwrap_or(0))
        .sum()
}

pub(crate) fn failures(report: &Value) -> usize {
    report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["failed"].as_array().map_or(0, Vec::len))
        .sum()
}

/// Messages per folder as doveadm sees them: independent of mailferry.
pub(crate) fn doveadm_counts(server: &Dovecot, user: &str) -> Vec<(String, u64)> {
    let names = server.doveadm(&["mailbox", "list", "-u", user]).unwrap();
    let mut counts: Vec<(String, u64)> = names
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .filter_map(|name| {
            let out = server
                .doveadm(&[
                    "-f", "flow", "mailbox", "status", "-u", user, "messages", name,
                ])
                .ok()?;
            let n = out.trim().rsplit_once("messages=")?.1.parse().ok()?;
            Some((name.to_string(), n))
        })
        .collect();
    counts.sort();
    counts
}

#[test]
fn nasty_corpus_into_inbox_dot_exchange_layout_then_rerun_copies_nothing() {
    let target = Dovecot::builder()
        .layout(Layout::MaildirPlusPlus)
        .prefix("INBOX.")
        .naming(Naming::Exchange)
        .start()
        .unwrap();
    let pair = Pair::new(target);
    let corpus = nasty_corpus(false);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();

    let first = pair.migrate(&[]);
    assert_eq!(first["outcome"], "Complete", "{first}");
    assert_eq!(total(&first, "copied") as usize, corpus.message_count());
    pair.assert_verified();

    // Mapped as expected: special folders by flag, hierarchy with the target's separator.
    let counts = doveadm_counts(&pair.target, USER2);
    let count_of = |name: &str| counts.iter().find(|(n, _)| n == name).map(|(_, c)| *c);
    let expected = |name: &str| corpus.folder(name).map_or(0, |f| f.messages.len() as u64);
    assert_eq!(
        count_of("INBOX.Sent Items"),
        Some(expected("Sent")),
        "{counts:?}"
    );
    assert_eq!(
        count_of("INBOX.Archive.2019.Q1"),
        Some(expected("Archive/2019/Q1")),
        "{counts:?}"
    );
    assert_eq!(
        count_of("INBOX.Projekte Übersicht"),
        Some(expected("Projekte Übersicht")),
        "{counts:?}"
    );
    assert_eq!(count_of("INBOX"), Some(expected("INBOX")));
    assert_eq!(
        counts.iter().map(|(_, c)| c).sum::<u64>() as usize,
        corpus.message_count()
    );

    let second = pair.migrate(&[]);
    assert_eq!(
        total(&second, "copied"),
        0,
        "a rerun copies nothing: {second}"
    );
    assert_eq!(doveadm_counts(&pair.target, USER2), counts);
    pair.assert_verified();
}

#[test]
fn into_a_target_already_holding_half_adds_only_what_is_missing() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = nasty_corpus(false);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    // The target already holds every other message of each folder (identical copies included).
    let half = Corpus {
        folders: corpus
            .folders
            .iter()
            .map(|f| mailferry_testkit::CorpusFolder {
                name: f.name.clone(),
                messages: f.messages.iter().step_by(2).cloned().collect(),
            })
            .collect(),
    };
    pair.target.fill(USER2, USER2_PASSWORD, &half).unwrap();

    let report = pair.migrate(&[]);
    assert_eq!(
        total(&report, "already_present") as usize,
        half.message_count(),
        "{report}"
    );
    assert_eq!(
        total(&report, "copied") as usize,
        corpus.message_count() - half.message_count()
    );
    pair.assert_verified();
    let on_target: u64 = doveadm_counts(&pair.target, USER2)
        .iter()
        .map(|(_, c)| c)
        .sum();
    assert_eq!(
        on_target as usize,
        corpus.message_count(),
        "no duplicate on the target"
    );
}

#[test]
fn killed_at_random_moments_then_finished_leaves_no_duplicate() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(7, 1500, 6);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let report = pair.state.path().join("killed.json");
    let args = pair.migrate_args(&report);
    let mut delays = vec![150u64, 350, 600, 900, 1300];
    // A fixed seed per run of the suite would hide timing bugs; vary by process id.
    let shift = u64::from(std::process::id() % 97);
    for d in delays.iter_mut() {
        *d += shift;
    }
    let mut kills = 0;
    for delay in delays {
        let mut child = Pair::spawn(&args);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(
        kills >= 2,
        "the run must have been killed mid-way at least twice (was {kills})"
    );
    let last = pair.migrate(&[]);
    assert_eq!(last["outcome"], "Complete");
    pair.assert_verified();
    let on_target: u64 = doveadm_counts(&pair.target, USER2)
        .iter()
        .map(|(_, c)| c)
        .sum();
    assert_eq!(
        on_target as usize,
        corpus.message_count(),
        "every message exactly once"
    );
}

#[test]
fn delta_pass_moves_exactly_the_changes_and_unchanged_folders_cost_nothing() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(11, 800, 2);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    pair.migrate(&[]);

    // 200 new messages and 200 flag changes at the source.
    let new = bulk_corpus(12, 200, 2);
    pair.source.fill(USER1, USER1_PASSWORD, &new).unwrap();
    pair.source
        .doveadm(&[
            "flags", "add", "-u", USER1, "$Delta", "mailbox", "INBOX", "uid", "1:200",
        ])
        .unwrap();
    let inbox_before = corpus.folder("INBOX").unwrap().messages.len();
    assert!(
        inbox_before >= 200,
        "the corpus needs 200 messages in INBOX"
    );

    let delta = pair.migrate(&[]);
    assert_eq!(total(&delta, "copied"), 200, "{delta}");
    assert_eq!(total(&delta, "flags_updated"), 200, "{delta}");
    assert_eq!(failures(&delta), 0);
    pair.assert_verified();

    let quiet = pair.migrate(&[]);
    assert_eq!(total(&quiet, "copied"), 0);
    assert!(
        quiet["folders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["unchanged"] == true),
        "{quiet}"
    );
    // Connect, login, capabilities, namespace, list and LSUB: no command per folder.
    let trips = &quiet["round_trips"];
    assert!(
        trips["source"].as_u64().unwrap() <= 10 && trips["target"].as_u64().unwrap() <= 10,
        "round trips: {trips}"
    );
}

#[test]
fn a_25_mb_message_is_streamed_with_little_memory() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = nasty_corpus(true);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let report = pair.migrate(&[]);
    assert_eq!(total(&report, "copied") as usize, corpus.message_count());
    let peak = report["peak_rss_bytes"]
        .as_u64()
        .expect("peak memory is reported");
    assert!(
        peak < 60 * 1024 * 1024,
        "peak memory {} MB",
        peak / 1024 / 1024
    );
    pair.assert_verified();
}

#[test]
fn big_messages_are_fetched_over_the_connections_other_folders_left_idle() {
    let pair = Pair::new(Dovecot::start().unwrap());
    // A one-message folder finishes long before INBOX (200 messages, then two big ones)
    // is done with its big messages: its connection pair falls idle meanwhile. Behind a
    // proxy that slows every connection to a few MB/s, as a distant server does, the big
    // messages take seconds, whatever the machine's load.
    let mut corpus = bulk_corpus(31, 200, 1);
    let big = mailferry_testkit::corpus::big_messages(31, 2, 200);
    corpus.folders[0].messages.extend(big.iter().cloned());
    let mut small = bulk_corpus(32, 1, 1).folders.remove(0);
    small.name = "Small".into();
    corpus.folders.push(small);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let proxy = mailferry_testkit::proxy::FaultProxy::start(
        format!("127.0.0.1:{}", pair.source.imap_port())
            .parse()
            .unwrap(),
    );
    proxy.set_delay(std::time::Duration::from_millis(2));
    let report_file = pair.state.path().join("spread.json");
    let mut args = pair.migrate_args(&report_file);
    args[2] = format!("imap://{USER1}@127.0.0.1:{}", proxy.port());
    args.extend(["--connections".into(), "2".into(), "-v".into()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailferry(&argv, &Pair::env());
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    let log = stderr(&out);
    let spread = log
        .lines()
        .filter(|l| l.contains("a big message fetched over several connections"))
        .count();
    assert!(spread >= 1, "no big message was spread:\n{log}");
    assert!(
        proxy.peak_connections() <= 2,
        "--connections 2 holds at the source: {} at once",
        proxy.peak_connections()
    );
    // Byte-identical, each exactly once, and a rerun copies nothing.
    pair.assert_verified();
    let on_target: u64 = doveadm_counts(&pair.target, USER2)
        .iter()
        .map(|(_, c)| c)
        .sum();
    assert_eq!(on_target as usize, corpus.message_count());
    let again = pair.migrate(&[]);
    assert_eq!(total(&again, "copied"), 0);
}

#[test]
fn verify_finds_missing_duplicated_and_changed_messages() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = nasty_corpus(false);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    pair.migrate(&[]);
    pair.assert_verified();
    // Damage the target behind mailferry's back: one message gone, one twice, one flag off.
    pair.target
        .doveadm(&["expunge", "-u", USER2, "mailbox", "Archive", "uid", "1"])
        .unwrap();
    let dup = Corpus {
        folders: vec![mailferry_testkit::CorpusFolder {
            name: "Sent".into(),
            messages: vec![corpus.folder("Sent").unwrap().messages[0].clone()],
        }],
    };
    pair.target.fill(USER2, USER2_PASSWORD, &dup).unwrap();
    pair.target
        .doveadm(&[
            "flags", "add", "-u", USER2, "$Changed", "mailbox", "INBOX", "uid", "2",
        ])
        .unwrap();
    let (ok, json) = pair.verify();
    assert!(!ok);
    let folder = |name: &str| {
        json["folders"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["source"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(
        folder("Archive")["missing"].as_array().unwrap().len(),
        1,
        "{json}"
    );
    assert_eq!(
        folder("Sent")["duplicated"].as_array().unwrap().len(),
        1,
        "{json}"
    );
    assert_eq!(
        folder("INBOX")["other_flags"].as_array().unwrap().len(),
        1,
        "{json}"
    );
    assert_eq!(json["differences"], 3);
}

#[test]
fn a_connection_cut_mid_transfer_is_retried_and_nothing_is_lost_or_doubled() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(21, 600, 3);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let proxy = mailferry_testkit::proxy::FaultProxy::start(
        format!("127.0.0.1:{}", pair.source.imap_port())
            .parse()
            .unwrap(),
    );
    // Cut the source connection carrying the 4th megabyte, mid-FETCH.
    proxy.cut_after_bytes(4 * 1024 * 1024);
    let report_file = pair.state.path().join("cut.json");
    let mut args = pair.migrate_args(&report_file);
    args[2] = format!("imap://{USER1}@127.0.0.1:{}", proxy.port());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailferry(&argv, &Pair::env());
    assert!(
        out.status.success(),
        "migrate through a cut connection: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("retrying the folder"),
        "the cut must have been noticed: {}",
        stderr(&out)
    );
    assert!(
        proxy.connections() > 2,
        "a new connection was opened after the cut"
    );
    pair.assert_verified();
    let on_target: u64 = doveadm_counts(&pair.target, USER2)
        .iter()
        .map(|(_, c)| c)
        .sum();
    assert_eq!(on_target as usize, corpus.message_count());
}

/// Dovecot does not throttle on request: a proxy in front of each side answers some
/// commands `NO [LIMIT]` (RFC 5530) without carrying them out, as a throttling server does.
#[test]
fn throttling_answers_on_either_side_are_backed_off_and_nothing_is_lost_or_doubled() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(23, 300, 3);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let proxy = |port: u16| {
        mailferry_testkit::proxy::FaultProxy::start(format!("127.0.0.1:{port}").parse().unwrap())
    };
    let (source, target) = (
        proxy(pair.source.imap_port()),
        proxy(pair.target.imap_port()),
    );
    // Body fetches at the source, folder selection at the target.
    source.refuse_commands("UID FETCH", 3);
    target.refuse_commands("SELECT", 2);
    let report_file = pair.state.path().join("throttled.json");
    let mut args = pair.migrate_args(&report_file);
    args[2] = format!("imap://{USER1}@127.0.0.1:{}", source.port());
    args[4] = format!("imap://{USER2}@127.0.0.1:{}", target.port());
    // In the clear, so that the proxies see the commands.
    args.push("--plaintext".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailferry(&argv, &Pair::env());
    assert!(
        out.status.success(),
        "migrate against throttling servers: {}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert_eq!(source.refused_commands(), 3, "{}", stderr(&out));
    assert_eq!(target.refused_commands(), 2, "{}", stderr(&out));
    let log = stderr(&out);
    assert!(
        log.matches("server busy").count() >= 5 && log.contains("LIMIT"),
        "each throttling answer is logged and backed off from: {log}"
    );
    pair.assert_verified();
    let on_target: u64 = doveadm_counts(&pair.target, USER2)
        .iter()
        .map(|(_, c)| c)
        .sum();
    assert_eq!(on_target as usize, corpus.message_count());
}

#[test]
fn a_uidvalidity_change_at_the_source_is_matched_by_fingerprint_not_copied_again() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = nasty_corpus(false);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    pair.migrate(&[]);
    // Recreate a source folder with the same messages: new UIDVALIDITY, new UIDs.
    pair.source
        .doveadm(&["mailbox", "delete", "-u", USER1, "-r", "Archive/2019/Q1"])
        .unwrap();
    let again = Corpus {
        folders: vec![corpus.folder("Archive/2019/Q1").unwrap().clone()],
    };
    pair.source.fill(USER1, USER1_PASSWORD, &again).unwrap();
    let report = pair.migrate(&[]);
    let folder = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == "Archive/2019/Q1")
        .unwrap()
        .clone();
    assert_eq!(folder["copied"], 0, "{folder}");
    assert_eq!(
        folder["already_present"].as_u64().unwrap() as usize,
        again.message_count(),
        "{folder}"
    );
    assert!(
        folder["notes"].to_string().contains("UIDVALIDITY"),
        "{folder}"
    );
    pair.assert_verified();
}

#[test]
fn plaintext_is_used_only_when_asked_for() {
    let pair = Pair::new(Dovecot::start().unwrap());
    pair.source
        .fill(USER1, USER1_PASSWORD, &nasty_corpus(false))
        .unwrap();
    // Only mailferry logs in to the target. Dovecot writes its log through a separate
    // process: wait until the number of login lines stops growing.
    let logins = |server: &Dovecot| -> Vec<String> {
        let read = || -> Vec<String> {
            std::fs::read_to_string(server.log_path())
                .unwrap()
                .lines()
                .filter(|l| l.contains("Login: user=<user2>"))
                .map(str::to_string)
                .collect()
        };
        let mut last = read();
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = read();
            if now.len() == last.len() {
                return now;
            }
            last = now;
        }
    };
    pair.migrate(&[]);
    let with_tls = logins(&pair.target);
    assert!(
        !with_tls.is_empty() && with_tls.iter().all(|l| l.contains("TLS")),
        "STARTTLS is used when offered: {with_tls:?}"
    );
    pair.migrate(&["--plaintext"]);
    let all = logins(&pair.target);
    let plain: Vec<&String> = all[with_tls.len()..].iter().collect();
    assert!(
        !plain.is_empty() && plain.iter().all(|l| !l.contains("TLS")),
        "--plaintext logs in without TLS: {plain:?}"
    );
}

#[test]
fn max_bandwidth_caps_what_is_read_from_the_source() {
    let pair = Pair::new(Dovecot::start().unwrap());
    let corpus = bulk_corpus(51, 200, 2);
    pair.source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let megabytes = corpus.total_bytes() as f64 / 1_048_576.0;
    assert!(
        megabytes > 4.0,
        "the corpus must be several MB, is {megabytes:.1}"
    );
    let started = std::time::Instant::now();
    let report = pair.migrate(&["--max-bandwidth", "1M"]);
    let seconds = started.elapsed().as_secs_f64();
    assert_eq!(total(&report, "copied") as usize, corpus.message_count());
    // At 1 MiB/s after a one-second burst, the copy cannot be faster than this.
    assert!(
        seconds >= megabytes - 1.5,
        "{megabytes:.1} MB under a 1 MiB/s cap took only {seconds:.1} s"
    );
    pair.assert_verified();
}

#[test]
fn a_delta_pass_does_not_copy_a_new_message_the_target_already_has() {
    let pair = Pair::new(Dovecot::start().unwrap());
    pair.source
        .fill(USER1, USER1_PASSWORD, &nasty_corpus(false))
        .unwrap();
    pair.migrate(&[]);
    let message = |id: &str| {
        mailferry_testkit::CorpusMessage {
        bytes: format!("From: a@example.test\r\nTo: b@example.test\r\nSubject: {id}\r\nMessage-ID: <{id}@example.test>\r\n\r\nBody of {id}.\r\n").into_bytes(),
        flags: vec!["\\Seen".into()],
        internal_date: "05-Mar-2026 10:00:00 +0000".into(),
    }
    };
    let inbox = |messages| Corpus {
        folders: vec![mailferry_testkit::CorpusFolder {
            name: "INBOX".into(),
            messages,
        }],
    };
    // Delivered to both servers after the first pass (an MX switch in between), and one only
    // to the source.
    pair.source
        .fill(
            USER1,
            USER1_PASSWORD,
            &inbox(vec![message("both"), message("source-only")]),
        )
        .unwrap();
    pair.target
        .fill(USER2, USER2_PASSWORD, &inbox(vec![message("both")]))
        .unwrap();
    let delta = pair.migrate(&[]);
    let folder = delta["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["source"] == "INBOX")
        .unwrap()
        .clone();
    assert_eq!(folder["copied"], 1, "{folder}");
    assert_eq!(folder["already_present"], 1, "{folder}");
    pair.assert_verified();
}
