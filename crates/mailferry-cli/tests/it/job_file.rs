//! `mailferry migrate --job FILE.toml --jobs N`: many accounts between real Dovecot servers,
//! and a broken job file refused before any server is contacted.

use std::net::TcpListener;
use std::path::Path;

use mailferry_testkit::dovecot::{
    Dovecot, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, USER1, USER1_PASSWORD,
};
use mailferry_testkit::{bulk_corpus, nasty_corpus, Corpus};
use serde_json::Value;

use crate::common::{assert_clean_failure, mailferry, stderr, stdout};

const ACCOUNTS: [(&str, &str); 3] = [
    (ALICE, ALICE_PASSWORD),
    (BOB, BOB_PASSWORD),
    (USER1, USER1_PASSWORD),
];

/// A job file for the three accounts, passwords in files next to it (relative paths).
fn write_job_file(dir: &Path, source: &Dovecot, target: &Dovecot) -> std::path::PathBuf {
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    let mut text = format!(
        "[source]\nurl = \"imap://127.0.0.1:{}\"\ninsecure = true\n\n\
         [target]\nurl = \"imap://127.0.0.1:{}\"\ninsecure = true\n\n\
         [options]\nconnections = 2\n",
        source.imap_port(),
        target.imap_port()
    );
    for (user, password) in ACCOUNTS {
        std::fs::write(
            dir.join(format!("secrets/{user}-old")),
            format!("{password}\n"),
        )
        .unwrap();
        std::fs::write(
            dir.join(format!("secrets/{user}-new")),
            format!("{password}\n"),
        )
        .unwrap();
        text.push_str(&format!(
            "\n[[account]]\nsource_user = \"{user}\"\nsource_password_file = \"secrets/{user}-old\"\n\
             target_user = \"{user}\"\ntarget_password_file = \"secrets/{user}-new\"\n"
        ));
    }
    let path = dir.join("jobs.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn run_job(job: &Path, state: &Path, report: &Path) -> (String, Value) {
    let out = mailferry(
        &[
            "migrate",
            "--job",
            job.to_str().unwrap(),
            "--jobs",
            "2",
            "--state-dir",
            state.to_str().unwrap(),
            "--report",
            report.to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "migrate --job failed ({:?}):\n{}\n{}",
        out.status.code(),
        stdout(&out),
        stderr(&out)
    );
    let json = serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
    (stdout(&out), json)
}

fn total(report: &Value, field: &str) -> u64 {
    report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f[field].as_u64().unwrap_or(0))
        .sum()
}

#[test]
fn three_accounts_two_at_a_time_then_a_rerun_copies_nothing() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpora: [Corpus; 3] = [
        nasty_corpus(false),
        bulk_corpus(7, 150, 4),
        bulk_corpus(8, 60, 2),
    ];
    for ((user, password), corpus) in ACCOUNTS.iter().zip(&corpora) {
        source.fill(user, password, corpus).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let job = write_job_file(dir.path(), &source, &target);
    let state = dir.path().join("state");
    let report = dir.path().join("report.json");

    let (out, first) = run_job(&job, &state, &report);
    let accounts = first.as_array().expect("an array of account reports");
    assert_eq!(accounts.len(), 3, "{first}");
    for (i, ((user, _), corpus)) in ACCOUNTS.iter().zip(&corpora).enumerate() {
        let account = &accounts[i];
        assert_eq!(account["account"], i + 1, "{account}");
        assert_eq!(account["outcome"], "Complete", "{account}");
        assert_eq!(
            total(account, "copied") as usize,
            corpus.message_count(),
            "{account}"
        );
        let line = format!(
            "{user}@127.0.0.1:{} -> {user}@127.0.0.1:{}: {} copied, 0 already present, 0 failed (complete)",
            source.imap_port(),
            target.imap_port(),
            corpus.message_count()
        );
        assert!(out.contains(&line), "lacks `{line}` in:\n{out}");
    }
    assert!(
        out.contains("3 accounts: 3 complete, 0 partial, 0 failed"),
        "{out}"
    );
    // Each account's full report follows the summary lines.
    assert_eq!(out.matches("report: ").count(), 3, "{out}");
    // One state file per pair, named like a single-account run's.
    let mut files: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sqlite"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        ACCOUNTS
            .iter()
            .map(|(user, _)| format!(
                "{user}@127.0.0.1_{}--{user}@127.0.0.1_{}.sqlite",
                source.imap_port(),
                target.imap_port()
            ))
            .collect::<Vec<_>>()
    );

    // Independent check, account by account.
    for (user, password) in ACCOUNTS {
        let from = format!("imap://{user}@127.0.0.1:{}", source.imap_port());
        let to = format!("imap://{user}@127.0.0.1:{}", target.imap_port());
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
                ("MAILFERRY_FROM_PASSWORD", password),
                ("MAILFERRY_TO_PASSWORD", password),
            ],
        );
        let json: Value = serde_json::from_str(&stdout(&out))
            .unwrap_or_else(|e| panic!("verify --json: {e}: {}\n{}", stdout(&out), stderr(&out)));
        assert!(
            out.status.success() && json["differences"] == 0,
            "verify of {user}: {json}"
        );
    }

    let (out, second) = run_job(&job, &state, &report);
    for account in second.as_array().unwrap() {
        assert_eq!(account["outcome"], "Complete", "{account}");
        assert_eq!(
            total(account, "copied"),
            0,
            "a rerun copies nothing: {account}"
        );
    }
    assert!(out.contains(": 0 copied,"), "{out}");
}

#[test]
fn a_broken_job_file_lists_every_problem_and_contacts_no_server() {
    // A listening socket nobody accepts on: a connection attempt would show in its backlog.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw"), "secret\n").unwrap();
    let job = dir.path().join("broken.toml");
    std::fs::write(
        &job,
        format!(
            r#"[source]
url = "imap://127.0.0.1:{port}"

[target]
url = "imap://127.0.0.1:{port}"

[[account]]
source_user = "alice"
source_password_file = "pw"
target_user = "alice"
target_password_file = "pw"
target_pasword_env = "TYPO"

[[account]]
source_user = "bob"
source_password_file = "pw"
target_password_file = "pw"

[[account]]
source_user = "carol"
source_password_file = "pw"
source_url = "imap://carol@127.0.0.1:{port}/INBOX"
target_user = "carol"
target_password_file = "pw"
"#
        ),
    )
    .unwrap();
    let state = dir.path().join("state");
    let out = mailferry(
        &[
            "migrate",
            "--job",
            job.to_str().unwrap(),
            "--jobs",
            "2",
            "--state-dir",
            state.to_str().unwrap(),
            "--quiet",
        ],
        &[],
    );
    let file = job.display().to_string();
    assert_clean_failure(
        &out,
        &[
            "problems; no account was started",
            &format!("{file}:12:1: account 1 (alice): unknown key `target_pasword_env`"),
            &format!("{file}:14:1: account 2 (bob): target_user is missing"),
            &format!("{file}:22:14: account 3 (carol): source_url: `imap://carol@127.0.0.1"),
        ],
    );
    let err = stderr(&out);
    assert_eq!(err.matches("\n  ").count(), 3, "three problems: {err}");
    assert!(!err.to_lowercase().contains("connect"), "{err}");
    assert!(
        listener.accept().is_err(),
        "no server may be contacted: {err}"
    );
    assert!(!state.exists(), "no state was written");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn job_and_from_to_are_alternatives() {
    let neither = mailferry(&["migrate"], &[]);
    assert_eq!(neither.status.code(), Some(2));
    assert!(
        stderr(&neither).contains("<--from <URL>|--job <FILE>>"),
        "{}",
        stderr(&neither)
    );
    let both = mailferry(
        &[
            "migrate",
            "--job",
            "x.toml",
            "--from",
            "imap://a@h",
            "--to",
            "imap://b@h",
        ],
        &[],
    );
    assert_eq!(both.status.code(), Some(2));
    assert!(
        stderr(&both).contains("cannot be used with"),
        "{}",
        stderr(&both)
    );
    let jobs_alone = mailferry(
        &[
            "migrate",
            "--from",
            "imap://a@h",
            "--to",
            "imap://b@h",
            "--jobs",
            "2",
        ],
        &[],
    );
    assert_clean_failure(&jobs_alone, &["--jobs goes with --job"]);
}
