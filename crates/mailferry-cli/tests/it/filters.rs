//! Issue 14: filters (Sieve scripts over ManageSieve) and folder annotations (METADATA)
//! through `mailferry migrate` and `verify`, between two real Dovecot/Pigeonhole servers
//! that differ: the source stores folders as Maildir++ under `INBOX.` and offers one more
//! Sieve extension (vnd.dovecot.debug); the target uses `/` and Exchange's folder names.

use std::path::Path;

use mailferry_testkit::dovecot::{
    Dovecot, Layout, Naming, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD,
};
use serde_json::Value;

use crate::common::{mailferry, stderr, stdout};

const MAIN: &str = "require [\"fileinto\", \"mailbox\"];\r\n\
# Lists into their folder; \"INBOX.Archive\" in a comment stays as it is.\r\n\
if header :contains \"list-id\" \"rust\" {\r\n  fileinto :create \"INBOX.Lists.rust\";\r\n\
} elsif header :is \"subject\" \"INBOX.Archive\" {\r\n  fileinto \"INBOX.Archive\";\r\n\
} elsif mailboxexists \"INBOX.Sent\" {\r\n  fileinto \"INBOX.Sent\";\r\n}\r\n";
const VACATION: &str =
    "require \"vacation\";\r\nvacation :days 7 :subject \"Away\" \"Back on Monday. Grüße\";\r\n";
const DEBUG: &str = "require \"vnd.dovecot.debug\";\r\ndebug_log \"seen\";\r\n";

fn source() -> Dovecot {
    Dovecot::builder()
        .layout(Layout::MaildirPlusPlus)
        .prefix("INBOX.")
        .sieve_extensions("+vnd.dovecot.debug")
        .metadata()
        .start()
        .unwrap()
}

fn target() -> Dovecot {
    Dovecot::builder()
        .naming(Naming::Exchange)
        .metadata()
        .start()
        .unwrap()
}

struct Run {
    code: i32,
    report: Value,
    output: String,
}

/// The two mail accounts, no ManageSieve address.
fn mail_sides(source: &Dovecot, target: &Dovecot) -> Vec<String> {
    vec![
        "--from".into(),
        format!("imap://{USER1}@127.0.0.1:{}", source.imap_port()),
        "--to".into(),
        format!("imap://{USER2}@127.0.0.1:{}", target.imap_port()),
        "--insecure".into(),
    ]
}

/// The two accounts with both servers' ManageSieve ports.
fn sides(source: &Dovecot, target: &Dovecot) -> Vec<String> {
    let mut sides = mail_sides(source, target);
    sides.extend([
        "--from-sieve".into(),
        format!("127.0.0.1:{}", source.sieve_port()),
        "--to-sieve".into(),
        format!("127.0.0.1:{}", target.sieve_port()),
    ]);
    sides
}

fn env() -> [(&'static str, &'static str); 2] {
    [
        ("MAILFERRY_FROM_PASSWORD", USER1_PASSWORD),
        ("MAILFERRY_TO_PASSWORD", USER2_PASSWORD),
    ]
}

fn migrate(source: &Dovecot, target: &Dovecot, state: &Path, extra: &[&str]) -> Run {
    run_migrate(sides(source, target), state, extra)
}

/// `migrate` with `sides`, state in `state`, `extra` flags; what it said and reported.
fn run_migrate(sides: Vec<String>, state: &Path, extra: &[&str]) -> Run {
    let report = state.join("report.json");
    let _ = std::fs::remove_file(&report);
    let mut args = vec!["migrate".to_string()];
    args.extend(sides);
    args.extend([
        "--state-dir".into(),
        state.display().to_string(),
        "--report".into(),
        report.display().to_string(),
        "--quiet".into(),
    ]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailferry(&argv, &env());
    Run {
        code: out.status.code().unwrap_or(-1),
        report: serde_json::from_str(&std::fs::read_to_string(&report).unwrap_or_default())
            .unwrap_or(Value::Null),
        output: format!("{}\n{}", stdout(&out), stderr(&out)),
    }
}

fn script<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["filters"]["scripts"]
        .as_array()
        .unwrap_or_else(|| panic!("no filters in the report: {report:#}"))
        .iter()
        .find(|s| s["source_name"] == name)
        .unwrap_or_else(|| panic!("no script {name}: {report:#}"))
}

fn annotation(server: &Dovecot, user: &str, folder: &str, key: &str) -> String {
    server
        .doveadm(&["mailbox", "metadata", "get", "-u", user, folder, key])
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn scripts_the_active_one_a_refusal_and_renamed_folders_then_a_rerun_copies_nothing() {
    let (source, target) = (source(), target());
    for folder in ["INBOX.Archive", "INBOX.Lists", "INBOX.Lists.rust"] {
        source
            .doveadm(&["mailbox", "create", "-u", USER1, folder])
            .unwrap();
    }
    source
        .doveadm(&[
            "mailbox",
            "metadata",
            "set",
            "-u",
            USER1,
            "INBOX.Archive",
            "/private/comment",
            "old mail, kept",
        ])
        .unwrap();
    source.put_sieve_script(USER1, "main", MAIN, true).unwrap();
    source
        .put_sieve_script(USER1, "vacation", VACATION, false)
        .unwrap();
    source
        .put_sieve_script(USER1, "debugging", DEBUG, false)
        .unwrap();
    source
        .put_sieve_script(USER1, "shared", "discard;\r\n", false)
        .unwrap();
    // The target holds a different script of one of those names, and an active one.
    target
        .put_sieve_script(USER2, "shared", "keep;\r\n", true)
        .unwrap();
    let source_before = source.sieve_scripts(USER1).unwrap();
    let state = tempfile::tempdir().unwrap();

    // A dry run writes nothing and says what would be stored.
    let dry = migrate(&source, &target, state.path(), &["--dry-run"]);
    assert_eq!(
        script(&dry.report, "main")["outcome"],
        "planned",
        "{}",
        dry.output
    );
    assert_eq!(
        target.sieve_scripts(USER2).unwrap(),
        vec![("shared".into(), true)]
    );

    let first = migrate(&source, &target, state.path(), &[]);
    assert_eq!(
        first.code, 3,
        "one script is refused: partial\n{}",
        first.output
    );
    let report = &first.report;
    assert_eq!(report["filters"]["counts"]["total"], 4, "{report:#}");
    assert_eq!(report["filters"]["counts"]["copied"], 3, "{report:#}");
    assert_eq!(report["filters"]["counts"]["refused"], 1, "{report:#}");
    let refused = script(report, "debugging");
    assert_eq!(refused["outcome"], "refused");
    assert_eq!(
        refused["missing_extensions"],
        serde_json::json!(["vnd.dovecot.debug"])
    );
    let said = refused["error"].as_str().unwrap();
    assert!(
        said.contains("unknown Sieve capability"),
        "the server's words: {said}"
    );
    assert!(said.contains("vnd.dovecot.debug"), "{said}");
    assert!(first.output.contains("debugging"), "{}", first.output);
    // Folder names follow the mail's mapping: separator, prefix and Exchange's Sent Items.
    let main = script(report, "main");
    assert_eq!(main["outcome"], "copied");
    let rewrites: Vec<(String, String)> = serde_json::from_value(main["rewrites"].clone()).unwrap();
    assert!(
        rewrites.contains(&("INBOX.Lists.rust".into(), "Lists/rust".into()))
            && rewrites.contains(&("INBOX.Archive".into(), "Archive".into()))
            && rewrites.contains(&("INBOX.Sent".into(), "Sent Items".into())),
        "{rewrites:?}"
    );
    let stored = target.sieve_script(USER2, "main").unwrap();
    assert!(
        stored.contains("fileinto :create \"Lists/rust\";"),
        "{stored}"
    );
    assert!(stored.contains("mailboxexists \"Sent Items\""), "{stored}");
    assert!(
        stored.contains("\"INBOX.Archive\" in a comment"),
        "{stored}"
    );
    assert!(
        stored.contains(":is \"subject\" \"INBOX.Archive\""),
        "{stored}"
    );
    // The other script named `shared` is kept; ours is stored beside it.
    assert_eq!(script(report, "shared")["target_name"], "shared.migrated");
    assert_eq!(
        target.sieve_script(USER2, "shared").unwrap().trim(),
        "keep;"
    );
    assert_eq!(
        target
            .sieve_script(USER2, "shared.migrated")
            .unwrap()
            .trim(),
        "discard;"
    );
    assert_eq!(
        target
            .sieve_script(USER2, "vacation")
            .unwrap()
            .replace("\r\n", "\n"),
        VACATION.replace("\r\n", "\n")
    );
    let mut on_target = target.sieve_scripts(USER2).unwrap();
    on_target.sort();
    assert_eq!(
        on_target,
        vec![
            ("main".to_string(), true),
            ("shared".to_string(), false),
            ("shared.migrated".to_string(), false),
            ("vacation".to_string(), false),
        ],
        "the source's active script is the target's active one"
    );
    assert!(
        report["filters"]["notes"]
            .to_string()
            .contains("`shared` was active there before"),
        "{report:#}"
    );
    // Folder annotations went along.
    assert_eq!(
        annotation(&target, USER2, "Archive", "/private/comment"),
        "old mail, kept"
    );
    let archive = report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["target"] == "Archive")
        .unwrap();
    assert_eq!(archive["annotations_copied"], 1, "{archive:#}");
    // Nothing changed at the source.
    assert_eq!(source.sieve_scripts(USER1).unwrap(), source_before);
    assert_eq!(
        source
            .sieve_script(USER1, "main")
            .unwrap()
            .replace("\r\n", "\n"),
        MAIN.replace("\r\n", "\n")
    );

    // A rerun writes nothing.
    let again = migrate(&source, &target, state.path(), &[]);
    assert_eq!(again.code, 3, "{}", again.output);
    let counts = &again.report["filters"]["counts"];
    assert_eq!(counts["copied"], 0, "{:#}", again.report);
    assert_eq!(counts["present"], 3, "{:#}", again.report);
    assert_eq!(target.sieve_scripts(USER2).unwrap().len(), 4);
    let annotations: u64 = again.report["folders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["annotations_copied"].as_u64().unwrap())
        .sum();
    assert_eq!(annotations, 0);

    // verify compares the scripts: only the refused one is missing.
    let mut args = vec!["verify".to_string()];
    args.extend(sides(&source, &target));
    args.push("--json".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailferry(&argv, &env());
    let json: Value =
        serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stdout(&out)));
    assert_eq!(
        json["filters"]["missing"],
        serde_json::json!(["debugging"]),
        "{json:#}"
    );
    assert!(
        json["filters"]["matching"]
            .to_string()
            .contains("shared.migrated"),
        "{json:#}"
    );
    assert!(
        json["filters"]["different"].as_array().unwrap().is_empty(),
        "{json:#}"
    );
    assert_eq!(out.status.code(), Some(3));

    // A delta pass: our own copy is updated when the source changed; a copy edited on
    // the target since is kept.
    let vacation2 = VACATION.replace("Monday", "Tuesday");
    source
        .put_sieve_script(USER1, "vacation", &vacation2, false)
        .unwrap();
    let delta = migrate(&source, &target, state.path(), &[]);
    assert_eq!(
        script(&delta.report, "vacation")["outcome"],
        "updated",
        "{:#}",
        delta.report
    );
    assert!(target
        .sieve_script(USER2, "vacation")
        .unwrap()
        .contains("Tuesday"));
    target
        .put_sieve_script(USER2, "vacation", "keep;\r\n", false)
        .unwrap();
    source
        .put_sieve_script(
            USER1,
            "vacation",
            &VACATION.replace("Monday", "Friday"),
            false,
        )
        .unwrap();
    let kept = migrate(&source, &target, state.path(), &[]);
    let vacation = script(&kept.report, "vacation");
    assert_eq!(vacation["outcome"], "kept_on_target", "{:#}", kept.report);
    assert!(vacation["notes"]
        .to_string()
        .contains("changed on the target"));
    assert_eq!(
        target.sieve_script(USER2, "vacation").unwrap().trim(),
        "keep;"
    );

    // --no-filters leaves them alone.
    let without = migrate(&source, &target, state.path(), &["--no-filters"]);
    assert_eq!(without.code, 0, "{}", without.output);
    assert!(without.report["filters"].is_null(), "{:#}", without.report);
}

#[test]
fn a_server_without_managesieve_on_the_default_port_is_a_note_not_an_error() {
    let (source, target) = (Dovecot::start().unwrap(), Dovecot::start().unwrap());
    let state = tempfile::tempdir().unwrap();
    // No --from-sieve: the mail host's port 4190, where nothing listens here.
    let run = run_migrate(mail_sides(&source, &target), state.path(), &[]);
    assert_eq!(run.code, 0, "{}", run.output);
    let skipped = run.report["filters"]["skipped"]
        .as_str()
        .unwrap_or_default();
    assert!(
        skipped.contains("no ManageSieve at 127.0.0.1:4190"),
        "{:#}",
        run.report
    );
    assert!(run.output.contains("--from-sieve"), "{}", run.output);
    // A given address that does not answer is an error of the filters, with what to do.
    let closed = format!("127.0.0.1:{}", crate::common::free_port());
    let to_sieve = format!("127.0.0.1:{}", target.sieve_port());
    let run = run_migrate(
        mail_sides(&source, &target),
        state.path(),
        &["--from-sieve", &closed, "--to-sieve", &to_sieve],
    );
    assert_eq!(run.code, 3, "{}", run.output);
    let problem = run.report["filters"]["problems"][0]
        .as_str()
        .unwrap_or_default();
    assert!(
        problem.starts_with(
            "source ManageSieve: Cannot connect to the ManageSieve server `127.0.0.1:"
        ),
        "{:#}",
        run.report
    );
    // A bad address is refused before anything runs, naming the flag.
    let mut args = vec!["migrate".to_string()];
    args.extend(mail_sides(&source, &target));
    args.extend(["--to-sieve".into(), "https://sieve.example/".into()]);
    args.extend(["--state-dir".into(), state.path().display().to_string()]);
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = mailferry(&argv, &env());
    crate::common::assert_clean_failure(&out, &["--to-sieve", "sieve://"]);
}

#[test]
fn annotations_a_target_without_metadata_cannot_take_are_a_note() {
    let source = Dovecot::builder().metadata().start().unwrap();
    let target = Dovecot::start().unwrap();
    source
        .doveadm(&["mailbox", "create", "-u", USER1, "Projects"])
        .unwrap();
    for (key, value) in [("/private/comment", "mine"), ("/shared/comment", "ours")] {
        source
            .doveadm(&[
                "mailbox", "metadata", "set", "-u", USER1, "Projects", key, value,
            ])
            .unwrap();
    }
    let state = tempfile::tempdir().unwrap();
    let run = migrate(&source, &target, state.path(), &["--no-filters"]);
    assert_eq!(run.code, 0, "{}", run.output);
    assert!(
        run.report["notes"]
            .to_string()
            .contains("2 folder annotations (IMAP METADATA) stay at the source"),
        "{:#}",
        run.report
    );
    assert!(
        run.output.contains("note: 2 folder annotations"),
        "{}",
        run.output
    );
}
