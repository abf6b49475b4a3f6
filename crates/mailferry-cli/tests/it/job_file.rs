//! `mailferry migrate --job FILE.toml --jobs N`: many accounts between real Dovecot servers,
//! with their calendars and contacts from a real Radicale to real Xandikos servers, and a
//! broken job file refused before any server is contacted.

use std::net::TcpListener;
use std::path::Path;

use mailferry_testkit::dovecot::{
    Dovecot, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, USER1, USER1_PASSWORD,
};
use mailferry_testkit::{
    bulk_corpus, extra_event, groupware_corpus, nasty_corpus, Corpus, DavServer, GroupwareKind,
    DAV_PASSWORD,
};
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

/// The calendars and contacts (`groupware`) of a job file's account report: (copied or
/// updated, failed, events transferred, contacts transferred).
fn groupware_totals(account: &Value) -> (u64, u64, u64, u64) {
    let g = &account["groupware"];
    let sum = |field: &str| {
        g["collections"]
            .as_array()
            .unwrap_or_else(|| panic!("no groupware in {account}"))
            .iter()
            .map(|c| match &c[field] {
                Value::Array(list) => list.len() as u64,
                n => n.as_u64().unwrap_or(0),
            })
            .sum::<u64>()
    };
    (
        sum("copied") + sum("updated"),
        sum("failed"),
        g["counts"]["events"]["transferred"].as_u64().unwrap_or(0),
        g["counts"]["contacts"]["transferred"].as_u64().unwrap_or(0),
    )
}

/// Two accounts with mail (Dovecot to Dovecot) and groupware: one Radicale holds both
/// accounts' calendars (`dav` in `[source]`, each logs in as itself), each goes to a Xandikos
/// of its own (`target_dav` per account). Nothing crosses between the accounts, and a rerun
/// copies nothing of either.
#[test]
fn two_accounts_with_groupware_from_radicale_to_xandikos() {
    let (mail_source, mail_target) = (Dovecot::start().unwrap(), Dovecot::start().unwrap());
    let mut radicale = DavServer::radicale_with_users(&[(BOB, BOB_PASSWORD)]).unwrap();
    let (alice_dav, bob_dav) = (
        DavServer::xandikos().unwrap(),
        DavServer::xandikos().unwrap(),
    );
    // Each account logs in to its calendars with its mail password.
    assert_eq!(ALICE_PASSWORD, DAV_PASSWORD);
    let corpus = groupware_corpus();
    radicale.fill(&corpus).unwrap();
    radicale.log_in_as(BOB, BOB_PASSWORD);
    let bob_calendar = radicale
        .make_collection(
            GroupwareKind::Calendar,
            "bob-work",
            "Bob at work",
            None,
            None,
            &["VEVENT"],
        )
        .unwrap();
    for n in 1..=2 {
        radicale
            .put(
                &format!("{bob_calendar}meeting-{n}.ics"),
                GroupwareKind::Calendar,
                &extra_event(&format!("bob-meeting-{n}@mailferry.test"), "Bob's meeting"),
            )
            .unwrap();
    }
    let mail = [
        (ALICE, ALICE_PASSWORD, bulk_corpus(3, 12, 2)),
        (BOB, BOB_PASSWORD, bulk_corpus(4, 5, 1)),
    ];
    for (user, password, corpus) in &mail {
        mail_source.fill(user, password, corpus).unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("secrets")).unwrap();
    let mut text = format!(
        "[source]\nurl = \"imap://127.0.0.1:{}\"\ninsecure = true\ndav = \"{}\"\n\n\
         [target]\nurl = \"imap://127.0.0.1:{}\"\ninsecure = true\n",
        mail_source.imap_port(),
        radicale.url(),
        mail_target.imap_port()
    );
    for ((user, password, _), target_dav) in mail.iter().zip([&alice_dav, &bob_dav]) {
        std::fs::write(dir.path().join(format!("secrets/{user}")), password).unwrap();
        text.push_str(&format!(
            "\n[[account]]\nsource_user = \"{user}\"\nsource_password_file = \"secrets/{user}\"\n\
             target_user = \"{user}\"\ntarget_password_file = \"secrets/{user}\"\n\
             target_dav = \"{}\"\n",
            target_dav.url()
        ));
    }
    let job = dir.path().join("jobs.toml");
    std::fs::write(&job, text).unwrap();
    let state = dir.path().join("state");
    let report = dir.path().join("report.json");

    let (out, first) = run_job(&job, &state, &report);
    let accounts = first.as_array().expect("an array of account reports");
    assert_eq!(accounts.len(), 2, "{first:#}");
    for (account, (user, _, corpus)) in accounts.iter().zip(&mail) {
        let count = corpus.message_count();
        assert_eq!(account["outcome"], "Complete", "{account:#}");
        assert_eq!(total(account, "copied"), count as u64, "{account:#}");
        assert!(
            out.contains(&format!(
                "{user}@127.0.0.1:{} -> {user}@127.0.0.1:{}: {count} copied, 0 already present, 0 failed; calendars and contacts: ",
                mail_source.imap_port(),
                mail_target.imap_port(),
            )),
            "{out}"
        );
    }
    let objects = corpus.objects().count() as u64;
    assert_eq!(
        groupware_totals(&accounts[0]),
        (objects, 0, 6, 3),
        "{:#}",
        accounts[0]
    );
    assert_eq!(
        groupware_totals(&accounts[1]),
        (2, 0, 2, 0),
        "{:#}",
        accounts[1]
    );
    assert!(out.contains("groupware: alice@127.0.0.1"), "{out}");
    assert!(out.contains("groupware: bob@127.0.0.1"), "{out}");
    // Each account's calendars on its own target, nothing of the other's.
    let team = alice_dav.collection_path(GroupwareKind::Calendar, "team paris");
    assert_eq!(alice_dav.list(&team).unwrap().len(), 6);
    let bob_work = bob_dav.collection_path(GroupwareKind::Calendar, "bob-work");
    assert_eq!(bob_dav.list(&bob_work).unwrap().len(), 2);
    let alice_calendars = alice_dav.collections(&alice_dav.calendar_home()).unwrap();
    assert!(
        !alice_calendars.contains(&bob_work),
        "bob's calendar on alice's server: {alice_calendars:?}"
    );
    let bob_calendars = bob_dav.collections(&bob_dav.calendar_home()).unwrap();
    assert!(
        !bob_calendars.contains(&team),
        "alice's calendar on bob's server: {bob_calendars:?}"
    );

    let (out, second) = run_job(&job, &state, &report);
    for account in second.as_array().unwrap() {
        assert_eq!(account["outcome"], "Complete", "{account:#}");
        assert_eq!(total(account, "copied"), 0, "{account:#}");
        assert_eq!(groupware_totals(account).0, 0, "{account:#}");
    }
    assert_eq!(
        out.matches("calendars and contacts: 0 copied or updated, 0 failed (complete)")
            .count(),
        2,
        "{out}"
    );
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
    // A job file names each side's DAV server and type itself.
    let dav_flag = mailferry(
        &[
            "migrate",
            "--job",
            "x.toml",
            "--to-dav",
            "https://dav.example.com/",
        ],
        &[],
    );
    assert_eq!(dav_flag.status.code(), Some(2));
    assert!(
        stderr(&dav_flag).contains("'--job <FILE>' cannot be used with '--to-dav <URL>'"),
        "{}",
        stderr(&dav_flag)
    );
}
