//! `mailferry migrate` and `verify` for calendars, tasks and contacts between a real
//! Radicale and a real Xandikos, both ways: the corpus copied, verified equal object by
//! object, a second run copies nothing, a change, an addition and a deletion at the source
//! carried by the next run; bad objects (one that does not parse, one the target refuses)
//! reported one by one in the server's words while the rest is copied; and groupware riding
//! along with a mail migration.

use std::path::Path;

use mailferry_testkit::dovecot::Dovecot;
use mailferry_testkit::{
    event_and_task_in_one, event_with_control_character, extra_event, groupware_corpus,
    two_cards_in_one, DavServer, GroupwareKind, ALICE, ALICE_PASSWORD, DAV_PASSWORD, STANDUP_UID,
};
use serde_json::Value;

use crate::common::{assert_clean_failure, mailferry, stderr, stdout};

const ENV: [(&str, &str); 2] = [
    ("MAILFERRY_FROM_PASSWORD", DAV_PASSWORD),
    ("MAILFERRY_TO_PASSWORD", DAV_PASSWORD),
];

fn migrate(
    source: &DavServer,
    target: &DavServer,
    state: &Path,
    report: &Path,
) -> (i32, String, Value) {
    migrate_with(source, target, state, report, &[])
}

fn migrate_with(
    source: &DavServer,
    target: &DavServer,
    state: &Path,
    report: &Path,
    extra: &[&str],
) -> (i32, String, Value) {
    let (from, to) = (source.account_url(), target.account_url());
    let (state, report_path) = (state.display().to_string(), report.display().to_string());
    let mut args = vec![
        "migrate",
        "--from",
        &from,
        "--to",
        &to,
        "--state-dir",
        &state,
        "--report",
        &report_path,
    ];
    args.extend_from_slice(extra);
    let output = mailferry(&args, &ENV);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(report).unwrap_or_default())
        .unwrap_or(Value::Null);
    (
        output.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&output), stderr(&output)),
        json,
    )
}

fn verify(source: &DavServer, target: &DavServer) -> (i32, String) {
    let output = mailferry(
        &[
            "verify",
            "--from",
            &source.account_url(),
            "--to",
            &target.account_url(),
        ],
        &ENV,
    );
    (
        output.status.code().unwrap_or(-1),
        format!("{}{}", stdout(&output), stderr(&output)),
    )
}

fn sum(report: &Value, field: &str) -> u64 {
    report["collections"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|c| c[field].as_u64().unwrap_or(0))
        .sum()
}

/// Every per-object problem of a report, over all collections.
fn failures(report: &Value) -> Vec<Value> {
    report["collections"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .flat_map(|c| c["failed"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// How many objects the target holds in the corpus's collection `segment`.
fn on_target(target: &DavServer, kind: GroupwareKind, segment: &str) -> usize {
    target
        .list(&target.collection_path(kind, segment))
        .unwrap()
        .len()
}

/// The whole story from `source` (filled here) to `target`.
fn story(source: &DavServer, target: &DavServer) {
    let corpus = groupware_corpus();
    source.fill(&corpus).unwrap();
    let state = tempfile::tempdir().unwrap();
    let report = state.path().join("report.json");

    let (code, out, json) = migrate(source, target, state.path(), &report);
    assert_eq!(code, 0, "{out}");
    assert_eq!(json["outcome"], "Complete", "{json:#}");
    assert_eq!(
        sum(&json, "copied"),
        corpus.objects().count() as u64,
        "{json:#}"
    );
    let counts = &json["counts"];
    for (kind, n) in [
        ("events", 6),
        ("tasks", 3),
        ("journals", 1),
        ("contacts", 3),
    ] {
        assert_eq!(counts[kind]["total"], n, "{kind}: {json:#}");
        assert_eq!(counts[kind]["transferred"], n, "{kind}: {json:#}");
    }
    assert!(
        out.contains("events 6/6, tasks 3/3, journals 1/1, contacts 3/3"),
        "{out}"
    );
    assert!(out.contains("Équipe Paris & Co — 2024 ✓"), "{out}");

    let (code, out) = verify(source, target);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("\n0 differences"), "{out}");
    assert!(out.contains("Équipe Paris & Co — 2024 ✓"), "{out}");

    // A second run copies nothing.
    let (code, out, json) = migrate(source, target, state.path(), &report);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sum(&json, "copied") + sum(&json, "updated"), 0, "{json:#}");
    assert_eq!(json["counts"]["events"]["transferred"], 6, "{json:#}");

    // Changed, added and deleted at the source: carried by the next run.
    let team = source.collection_path(GroupwareKind::Calendar, "team paris");
    let (_, standup) = corpus.find(STANDUP_UID).unwrap();
    source
        .put(
            &format!("{team}standup.ics"),
            GroupwareKind::Calendar,
            &standup.data.replace("Salle Bleue", "Salle Rouge"),
        )
        .unwrap();
    source
        .put(
            &format!("{team}later.ics"),
            GroupwareKind::Calendar,
            &extra_event("later@mailferry.test", "Planned after the first pass"),
        )
        .unwrap();
    let contacts = source.collection_path(GroupwareKind::AddressBook, "contacts");
    source.delete(&format!("{contacts}bob.vcf")).unwrap();
    let (code, out, json) =
        migrate_with(source, target, state.path(), &report, &["--sync-deletes"]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        (
            sum(&json, "copied"),
            sum(&json, "updated"),
            sum(&json, "deleted_on_target")
        ),
        (1, 1, 1),
        "{json:#}"
    );
    assert_eq!(json["counts"]["events"]["total"], 7, "{json:#}");
    assert_eq!(json["counts"]["contacts"]["total"], 2, "{json:#}");
    let (code, out) = verify(source, target);
    assert_eq!(code, 0, "{out}");
    let target_team = target.collection_path(GroupwareKind::Calendar, "team paris");
    let copy = target
        .get(&format!("{target_team}standup.ics"))
        .unwrap()
        .unwrap();
    assert!(copy.contains("Salle Rouge"), "{copy}");
    assert!(target
        .get(&format!("{target_team}later.ics"))
        .unwrap()
        .is_some());
    let target_book = target.collection_path(GroupwareKind::AddressBook, "contacts");
    assert!(target
        .get(&format!("{target_book}bob.vcf"))
        .unwrap()
        .is_none());

    // A change made on the target alone is what verify reports (exit 3), by UID and line.
    let anna = format!("{target_book}anna.vcf");
    let data = target.get(&anna).unwrap().unwrap();
    target
        .put(
            &anna,
            GroupwareKind::AddressBook,
            &data.replace("Friedrichstraße 12", "Unter den Linden 1"),
        )
        .unwrap();
    let (code, out) = verify(source, target);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("differs: UID anna-3@mailferry.test"), "{out}");
}

#[test]
fn radicale_to_xandikos() {
    story(
        &DavServer::radicale().unwrap(),
        &DavServer::xandikos().unwrap(),
    );
}

#[test]
fn xandikos_to_radicale() {
    story(
        &DavServer::xandikos().unwrap(),
        &DavServer::radicale().unwrap(),
    );
}

const BELL_UID: &str = "fire-drill@mailferry.test";

/// Issue 8: an object the target refuses (Xandikos will not store a control character that
/// Radicale keeps) is reported with its href, UID and the target's words, in the text and
/// the JSON report; everything else is copied and the run ends partial (3). A rerun tries it
/// again and duplicates nothing; fixed at the source, the next run copies it.
#[test]
fn an_object_the_target_refuses_is_reported_and_the_rest_is_copied() {
    let source = DavServer::radicale().unwrap();
    let target = DavServer::xandikos().unwrap();
    let corpus = groupware_corpus();
    source.fill(&corpus).unwrap();
    let bell = format!(
        "{}bell.ics",
        source.collection_path(GroupwareKind::Calendar, "team paris")
    );
    source
        .put(
            &bell,
            GroupwareKind::Calendar,
            &event_with_control_character(BELL_UID),
        )
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let report = state.path().join("report.json");

    let (code, out, json) = migrate(&source, &target, state.path(), &report);
    assert_eq!(code, 3, "{out}");
    assert_eq!(json["outcome"], "Partial", "{json:#}");
    let failed = failures(&json);
    assert_eq!(failed.len(), 1, "{json:#}");
    assert_eq!(failed[0]["href"], bell.as_str(), "{json:#}");
    assert_eq!(failed[0]["uid"], BELL_UID, "{json:#}");
    let reason = failed[0]["reason"].as_str().unwrap();
    for words in [
        "the target refused it",
        "PUT /alice/calendars/team%20paris/bell.ics",
        "412 Precondition Failed: valid-calendar-data",
        "Invalid character",
        "in field SUMMARY",
    ] {
        assert!(reason.contains(words), "lacks `{words}`: {reason}");
    }
    assert!(
        out.contains(&format!("failed {bell} (UID {BELL_UID}): {reason}")),
        "{out}"
    );
    assert!(
        out.contains("failed in") && out.contains(": partial"),
        "{out}"
    );
    assert!(!out.contains(DAV_PASSWORD), "the password leaked: {out}");
    // The rest went on: every corpus object copied, none of the refused one.
    assert_eq!(
        sum(&json, "copied"),
        corpus.objects().count() as u64,
        "{json:#}"
    );
    assert_eq!(json["counts"]["events"]["total"], 7, "{json:#}");
    assert_eq!(json["counts"]["events"]["transferred"], 6, "{json:#}");
    assert_eq!(on_target(&target, GroupwareKind::Calendar, "team paris"), 6);
    assert_eq!(
        on_target(&target, GroupwareKind::AddressBook, "contacts"),
        3
    );

    // A rerun tries the refused object again, and copies nothing twice.
    let (code, out, json) = migrate(&source, &target, state.path(), &report);
    assert_eq!(code, 3, "{out}");
    assert_eq!(sum(&json, "copied") + sum(&json, "updated"), 0, "{json:#}");
    assert_eq!(failures(&json).len(), 1, "{json:#}");
    assert_eq!(on_target(&target, GroupwareKind::Calendar, "team paris"), 6);

    // Fixed at the source: the next run copies it, and only it.
    source
        .put(
            &bell,
            GroupwareKind::Calendar,
            &extra_event(BELL_UID, "Fire drill, bell test"),
        )
        .unwrap();
    let (code, out, json) = migrate(&source, &target, state.path(), &report);
    assert_eq!(code, 0, "{out}");
    assert_eq!(sum(&json, "copied"), 1, "{json:#}");
    assert!(failures(&json).is_empty(), "{json:#}");
    assert_eq!(json["counts"]["events"]["transferred"], 7, "{json:#}");
    assert_eq!(on_target(&target, GroupwareKind::Calendar, "team paris"), 7);
    let (code, out) = verify(&source, &target);
    assert_eq!(code, 0, "{out}");
}

const PLANNING_UID: &str = "planning@mailferry.test";

/// Issue 8, the other way round: a source object that does not parse (two vCards in one
/// resource, which Xandikos keeps) and one the target refuses (an event and a task in one
/// object, which Radicale will not store) are each reported by href, with the UID where
/// there is one and the reason; the rest is copied, the run is partial, a rerun duplicates
/// nothing.
#[test]
fn objects_that_do_not_parse_or_are_refused_are_reported_one_by_one() {
    let source = DavServer::xandikos().unwrap();
    let target = DavServer::radicale().unwrap();
    let corpus = groupware_corpus();
    source.fill(&corpus).unwrap();
    let planning = format!(
        "{}planning.ics",
        source.collection_path(GroupwareKind::Calendar, "team paris")
    );
    source
        .put(
            &planning,
            GroupwareKind::Calendar,
            &event_and_task_in_one(PLANNING_UID),
        )
        .unwrap();
    let glued = format!(
        "{}glued.vcf",
        source.collection_path(GroupwareKind::AddressBook, "contacts")
    );
    source
        .put(
            &glued,
            GroupwareKind::AddressBook,
            &two_cards_in_one("glued-1@mailferry.test", "glued-2@mailferry.test"),
        )
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let report = state.path().join("report.json");

    for pass in ["first", "rerun"] {
        let (code, out, json) = migrate(&source, &target, state.path(), &report);
        assert_eq!(code, 3, "{pass}: {out}");
        assert_eq!(json["outcome"], "Partial", "{pass}: {json:#}");
        let failed = failures(&json);
        assert_eq!(failed.len(), 2, "{pass}: {json:#}");
        let by_href = |href: &str| {
            failed
                .iter()
                .find(|f| f["href"] == href)
                .unwrap_or_else(|| panic!("{pass}: no problem for {href}: {json:#}"))
        };
        let glued_problem = by_href(&glued);
        assert!(glued_problem["uid"].is_null(), "{glued_problem}");
        assert_eq!(
            glued_problem["reason"],
            "it does not parse: it holds more than one calendar or card"
        );
        assert!(
            out.contains(&format!(
                "failed {glued}: it does not parse: it holds more than one calendar or card"
            )),
            "{pass}: {out}"
        );
        let planning_problem = by_href(&planning);
        assert_eq!(planning_problem["uid"], PLANNING_UID, "{planning_problem}");
        let reason = planning_problem["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("the target refused it: the DAV server answered PUT /alice/team%20paris/planning.ics with 400 Bad Request"),
            "{reason}"
        );
        assert!(
            out.contains(&format!("failed {planning} (UID {PLANNING_UID}): {reason}")),
            "{pass}: {out}"
        );
        let copied = if pass == "first" {
            corpus.objects().count() as u64
        } else {
            0
        };
        assert_eq!(
            sum(&json, "copied") + sum(&json, "updated"),
            copied,
            "{pass}: {json:#}"
        );
        assert_eq!(json["counts"]["contacts"]["total"], 4, "{pass}: {json:#}");
        assert_eq!(
            json["counts"]["contacts"]["transferred"], 3,
            "{pass}: {json:#}"
        );
        assert_eq!(on_target(&target, GroupwareKind::Calendar, "team paris"), 6);
        assert_eq!(
            on_target(&target, GroupwareKind::AddressBook, "contacts"),
            3
        );
    }
}

#[test]
fn a_wrong_dav_password_is_one_clear_error_naming_the_side() {
    let source = DavServer::radicale().unwrap();
    let target = DavServer::xandikos().unwrap();
    let state = tempfile::tempdir().unwrap();
    let report = state.path().join("r.json");
    let output = mailferry(
        &[
            "migrate",
            "--from",
            &source.account_url(),
            "--to",
            &target.account_url(),
            "--state-dir",
            &state.path().display().to_string(),
            "--report",
            &report.display().to_string(),
        ],
        &[
            ("MAILFERRY_FROM_PASSWORD", "wrong-secret-123"),
            ("MAILFERRY_TO_PASSWORD", DAV_PASSWORD),
        ],
    );
    let out = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("on the source server"), "{out}");
    assert!(out.contains("refused the login of `alice`"), "{out}");
    assert!(
        !out.contains("wrong-secret-123"),
        "the password leaked: {out}"
    );
}

/// Mail from Dovecot to Dovecot, groupware from Radicale to Xandikos, in one run.
#[test]
fn mail_migration_takes_groupware_along_unless_told_not_to() {
    let (mail_source, mail_target) = (Dovecot::start().unwrap(), Dovecot::start().unwrap());
    let (dav_source, dav_target) = (
        DavServer::radicale().unwrap(),
        DavServer::xandikos().unwrap(),
    );
    dav_source.fill(&groupware_corpus()).unwrap();
    let state = tempfile::tempdir().unwrap();
    let report = state.path().join("r.json");
    let from = format!("imap://{ALICE}@127.0.0.1:{}", mail_source.imap_port());
    let to = format!("imap://{ALICE}@127.0.0.1:{}", mail_target.imap_port());
    let env = [
        ("MAILFERRY_FROM_PASSWORD", ALICE_PASSWORD),
        ("MAILFERRY_TO_PASSWORD", ALICE_PASSWORD),
    ];
    let state_dir = state.path().display().to_string();
    let report_path = report.display().to_string();
    let base = [
        "--from",
        &from,
        "--to",
        &to,
        "--insecure",
        "--state-dir",
        &state_dir,
    ];

    // A typed source with groupware and a target without: refused up front, nothing runs.
    let mut args = vec!["migrate"];
    args.extend(base);
    args.extend(["--from-type", "kolab"]);
    let output = mailferry(&args, &env);
    assert_clean_failure(&output, &["--to-dav", "--no-groupware"]);

    let mut args = vec!["migrate"];
    args.extend(base);
    let (from_dav, to_dav) = (dav_source.url(), dav_target.url());
    args.extend([
        "--from-dav",
        &from_dav,
        "--to-dav",
        &to_dav,
        "--report",
        &report_path,
    ]);
    let output = mailferry(&args, &env);
    let out = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{out}");
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(
        json["folders"].as_array().is_some_and(|f| !f.is_empty()),
        "{json:#}"
    );
    assert_eq!(
        json["groupware"]["counts"]["events"]["transferred"], 6,
        "{json:#}"
    );
    assert_eq!(
        json["groupware"]["counts"]["contacts"]["transferred"], 3,
        "{json:#}"
    );
    assert!(out.contains("groupware: alice@127.0.0.1"), "{out}");

    let mut args = vec!["verify"];
    args.extend(base[..5].iter().copied());
    args.extend(["--from-dav", &from_dav, "--to-dav", &to_dav]);
    let output = mailferry(&args, &env);
    let out = format!("{}{}", stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(0), "{out}");
    assert!(out.contains("verify groupware:"), "{out}");

    let mut args = vec!["migrate"];
    args.extend(base);
    args.extend([
        "--from-dav",
        &from_dav,
        "--to-dav",
        &to_dav,
        "--no-groupware",
        "--report",
        &report_path,
    ]);
    let output = mailferry(&args, &env);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert!(json.get("groupware").is_none(), "{json:#}");
}
