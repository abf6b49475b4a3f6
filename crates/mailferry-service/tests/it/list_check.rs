//! The formal check of lists, without servers: a 1,000-line list with every kind of error
//! planted reports exactly the planted (line, field) pairs, and a property test mutates
//! valid lines at random and checks both ways: every mutated line reported on the mutated
//! field, no unmutated line reported. Passwords never appear in what the check shows.

use std::collections::BTreeSet;

use mailferry_service::batch::{check_formal, ListFormat, MASK};
use mailferry_service::ServiceConfig;
use proptest::prelude::*;

const NOW: i64 = 1_790_000_000; // 2026-09-21

fn config() -> ServiceConfig {
    let mut config = ServiceConfig::new("/nonexistent".into());
    config.time_zone = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    config
}

/// What a line's planted error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    UnknownType,
    MissingType,
    BadEmail,
    MissingEmail,
    MissingPassword,
    BadHost,
    BadPort,
    MissingServer,
    BadStart,
    BadResync,
    ResyncBeforeStart,
    MissingField,
    ExtraField,
    UnclosedQuote,
    DuplicateSource,
    DuplicateTarget,
}

const FAULTS: [Fault; 16] = [
    Fault::UnknownType,
    Fault::MissingType,
    Fault::BadEmail,
    Fault::MissingEmail,
    Fault::MissingPassword,
    Fault::BadHost,
    Fault::BadPort,
    Fault::MissingServer,
    Fault::BadStart,
    Fault::BadResync,
    Fault::ResyncBeforeStart,
    Fault::MissingField,
    Fault::ExtraField,
    Fault::UnclosedQuote,
    Fault::DuplicateSource,
    Fault::DuplicateTarget,
];

/// A valid line's fields; `i` makes both accounts unique. Passwords hold `;` and `"`, so
/// they are quoted.
fn good_fields(i: usize) -> Vec<String> {
    vec![
        "imap".into(),
        format!("user{i}@old.example"),
        format!("user{i}"),
        format!("\"Pw;{i}\"\"x\""),
        format!("imap{}.old.example", i % 7),
        if i.is_multiple_of(3) { "kolab" } else { "imap" }.into(),
        format!("user{i}@new.example"),
        String::new(),
        format!("\"Tw;{i}\"\"y\""),
        format!("imap.new.example:{}", 990 + i % 5),
        if i.is_multiple_of(2) {
            "2026-12-18 22:00".into()
        } else {
            String::new()
        },
        if i.is_multiple_of(4) {
            "2026-12-21T08:00:00+01:00".into()
        } else {
            String::new()
        },
    ]
}

/// Line `i`'s fields with `fault` planted (`other` is a line it may repeat), and the field
/// the check must name (`line` for the whole line, `duplicate` for a duplicate).
fn faulty(i: usize, fault: Fault, other: usize) -> (String, &'static str) {
    let mut f = good_fields(i);
    let field = match fault {
        Fault::UnknownType => {
            f[5] = "exchnage".into();
            "target.type"
        }
        Fault::MissingType => {
            f[0] = String::new();
            "source.type"
        }
        Fault::BadEmail => {
            f[6] = format!("user{i}-at-new.example");
            "target.email"
        }
        Fault::MissingEmail => {
            f[1] = String::new();
            "source.email"
        }
        Fault::MissingPassword => {
            f[8] = "\"\"".into();
            "target.password"
        }
        Fault::BadHost => {
            f[4] = format!("imap {i}.old.example");
            "source.server"
        }
        Fault::BadPort => {
            f[9] = "imap.new.example:70000".into();
            "target.server"
        }
        Fault::MissingServer => {
            f[4] = String::new();
            "source.server"
        }
        Fault::BadStart => {
            f[10] = "18.12.2026 22:00".into();
            "startdate"
        }
        Fault::BadResync => {
            f[11] = "next monday".into();
            "resyncdate"
        }
        Fault::ResyncBeforeStart => {
            f[10] = "2026-12-18 22:00".into();
            f[11] = "2026-12-18 21:59".into();
            "resyncdate"
        }
        Fault::MissingField => {
            f.pop();
            "line"
        }
        Fault::ExtraField => {
            f.push("x".into());
            "line"
        }
        Fault::UnclosedQuote => {
            f[3] = "\"Pw;open".into();
            "line"
        }
        Fault::DuplicateSource => {
            f[2] = format!("user{other}");
            f[4] = format!("imap{}.old.example", other % 7);
            "duplicate"
        }
        Fault::DuplicateTarget => {
            f[6] = format!("user{other}@new.example");
            f[9] = format!("imap.new.example:{}", 990 + other % 5);
            "duplicate"
        }
    };
    (f.join(";"), field)
}

/// (line, field) of every problem the check reports.
fn reported(text: &str) -> BTreeSet<(usize, String)> {
    let check = check_formal(text, None, &config(), NOW);
    assert_eq!(check.format, ListFormat::Mailferry);
    let shown = serde_json::to_string(&check).unwrap() + &check.problems().join("\n");
    for secret in ["Pw;", "Tw;", "\"x", "Pw;open"] {
        assert!(!shown.contains(secret), "a password shows: {secret}");
    }
    assert!(shown.contains(MASK) || check.lines.iter().all(|l| l.fields.is_empty()));
    let mut out = BTreeSet::new();
    for line in &check.lines {
        for error in &line.errors {
            out.insert((line.line, error.field.clone()));
        }
        if line.duplicate_of.is_some() {
            out.insert((line.line, "duplicate".to_string()));
        }
    }
    out
}

#[test]
fn a_thousand_lines_with_every_error_planted() {
    let mut text = String::from("\u{feff}# mass migration, 1000 lines\r\n");
    let mut planted = BTreeSet::new();
    let mut line_no = 1;
    for i in 0..1000 {
        if i % 100 == 50 {
            text.push_str("\r\n   \r\n# a comment in the middle; with ; and \"\r\n");
            line_no += 3;
        }
        line_no += 1;
        let line = if i % 9 == 4 {
            let fault = FAULTS[(i / 9) % FAULTS.len()];
            let (line, field) = faulty(i, fault, i - 1);
            planted.insert((line_no, field.to_string()));
            line
        } else {
            good_fields(i).join(";")
        };
        text.push_str(&line);
        text.push_str("\r\n");
    }
    assert!(planted.len() > 100);
    let kinds: BTreeSet<&str> = planted.iter().map(|(_, f)| f.as_str()).collect();
    assert!(kinds.len() >= 11, "{kinds:?}");
    assert_eq!(reported(&text), planted);
}

#[test]
fn imapsync_lists_are_read_with_their_defaults() {
    let text = "host1.example;alice@example.com;\"p;1\";host2.example:143;alice;p2;\n\
                host1.example;bob;p3;imaps://host2.example:10993;bob@example.com;p4\n\
                host1.example;carol;p5;host2.example;carol\n";
    let check = check_formal(text, None, &config(), NOW);
    assert_eq!(check.format, ListFormat::Imapsync);
    let errors: Vec<(usize, &str)> = check
        .lines
        .iter()
        .flat_map(|l| l.errors.iter().map(move |e| (l.line, e.field.as_str())))
        .collect();
    assert_eq!(errors, vec![(3, "line")]);
    let first = check.lines[0].validated.as_ref().unwrap();
    assert_eq!(first.source.record.email, "alice@example.com");
    assert_eq!(first.target.record.email, "alice@host2.example");
    assert_eq!(first.target.record.server, "imap://host2.example:143");
    let second = check.lines[1].validated.as_ref().unwrap();
    assert_eq!(second.source.record.email, "bob@host1.example");
    assert_eq!(second.source.record.server, "imaps://host1.example:993");
    assert_eq!(second.target.endpoint.port, 10993);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn mutated_lines_are_reported_and_only_they(
        n in 2usize..40,
        faults in proptest::collection::vec((0usize..40, 0usize..FAULTS.len()), 0..8),
    ) {
        let mut planted = BTreeSet::new();
        let mut lines: Vec<String> = (0..n).map(|i| good_fields(i).join(";")).collect();
        let mut used = BTreeSet::new();
        for (at, fault) in faults {
            // Line 0 is never mutated, so that every duplicate has an earlier line.
            let at = 1 + at % (n - 1);
            if !used.insert(at) {
                continue;
            }
            let (line, field) = faulty(at, FAULTS[fault], 0);
            lines[at] = line;
            planted.insert((at + 1, field.to_string()));
        }
        let text = lines.join("\n");
        prop_assert_eq!(reported(&text), planted);
    }
}
