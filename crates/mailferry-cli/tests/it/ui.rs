//! The web UI end to end: the real `mailferry serve` binary, real Dovecot servers on both
//! sides, and a real headless Chromium driven over WebDriver. Each test writes screenshots
//! of the tabs it shows to `docs/screenshots/<tab>.png` (the README shows them).

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use mailferry_testkit::browser::{keys, serve_page};
use mailferry_testkit::dovecot::{
    Dovecot, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD,
};
use mailferry_testkit::{nasty_corpus, Browser};
use serde_json::json;

use crate::common::{free_port, wait_until};
use crate::service::Process;

const ADMIN: &str = "Ui-Admin-Pw-1";
/// The service's zone in these tests, so that times typed into the form mean one thing.
const ZONE: &str = "Europe/Berlin";
const PAGE: Duration = Duration::from_secs(15);

/// `mailferry serve` on a free port with a fresh data directory; the account picker lists
/// `target`'s users.
struct Ui {
    base: String,
    process: Process,
    _dir: tempfile::TempDir,
}

impl Ui {
    /// The service trusts both test servers' certificates (lists have no "unverified
    /// certificate" field).
    fn start(source: &Dovecot, target: &Dovecot) -> Ui {
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("test-servers.pem");
        let mut pems = std::fs::read(source.cert_pem_path()).unwrap();
        pems.extend(std::fs::read(target.cert_pem_path()).unwrap());
        std::fs::write(&ca_file, pems).unwrap();
        let port = free_port();
        let users = target.dir().join("users");
        let target_server = format!("imap://127.0.0.1:{}", target.imap_port());
        let data = dir.path().join("data");
        let process = Process::spawn(
            &[
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--poll-ms",
                "100",
                "--time-zone",
                ZONE,
            ],
            &[
                ("MAILFERRY_ADMIN_PASSWORD", ADMIN),
                ("MAILFERRY_TARGET_USERS_FILE", users.to_str().unwrap()),
                ("MAILFERRY_TARGET_DOMAIN", "new.example"),
                ("MAILFERRY_TARGET_SERVER", &target_server),
                ("MAILFERRY_CA_FILE", ca_file.to_str().unwrap()),
            ],
            &dir.path().join("serve.log"),
        );
        let mut ui = Ui {
            base: format!("http://127.0.0.1:{port}"),
            process,
            _dir: dir,
        };
        let up = wait_until(Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
                || ui.process.child.try_wait().ok().flatten().is_some()
        });
        assert!(
            up && ui.process.child.try_wait().unwrap().is_none(),
            "serve did not start:\n{}",
            ui.process.log()
        );
        ui
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Writes a PNG of the viewport to `docs/screenshots/<name>.png` of the workspace.
fn screenshot(browser: &Browser, name: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/screenshots")
        .join(format!("{name}.png"));
    browser.screenshot(&path).unwrap();
}

/// Waits until the page's text contains `text`.
fn wait_for_text(browser: &Browser, text: &str) {
    browser
        .wait_until(&format!("the text `{text}`"), PAGE, |b| {
            Ok(b.find("body")?.text()?.contains(text))
        })
        .unwrap();
}

fn body(browser: &Browser) -> String {
    browser.find("body").unwrap().text().unwrap()
}

fn value(browser: &Browser, css: &str) -> String {
    browser
        .find(css)
        .unwrap()
        .property("value")
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Sets a field's value by script, where typing is not what a test is about (a
/// `datetime-local` takes keys in the browser's locale; a long list takes a while).
fn set_value(browser: &Browser, id: &str, value: &str) {
    browser
        .execute(
            "document.getElementById(arguments[0]).value = arguments[1];",
            vec![json!(id), json!(value)],
        )
        .unwrap();
}

fn fill(browser: &Browser, css: &str, text: &str) {
    let field = browser.find(css).unwrap();
    field.clear().unwrap();
    field.type_text(text).unwrap();
}

/// A time `seconds` from now as a `datetime-local` value in the service's zone.
fn local_time_in(seconds: i64) -> String {
    jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(seconds))
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get(ZONE).unwrap())
        .strftime("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

/// Every visible form control has a label a screen reader reads out.
fn assert_labelled(browser: &Browser) {
    let unlabelled = browser
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]\
             .filter(e => !e.labels || e.labels.length === 0).map(e => e.id || e.name);",
            vec![],
        )
        .unwrap();
    assert_eq!(
        unlabelled,
        json!([]),
        "controls without a label on {}",
        browser.url().unwrap()
    );
}

/// Logs in on the login page with the keyboard: the password field has the focus.
fn log_in(browser: &Browser, ui: &Ui) {
    browser.goto(&ui.url("/ui/")).unwrap();
    browser.wait_for("#password", PAGE).unwrap();
    assert_eq!(browser.title().unwrap(), "Log in · mailferry");
    assert_eq!(
        browser.focused_id().unwrap().as_deref(),
        Some("password"),
        "the password field has the focus"
    );
    browser.press(ADMIN).unwrap();
    browser.press(keys::ENTER).unwrap();
    browser.wait_for("h1", PAGE).unwrap();
    wait_for_text(browser, "migrations remaining");
    assert!(browser.url().unwrap().ends_with("/ui/migration"));
}

/// Fills the Migration form: the source (`user@old.example`) typed in, the target picked
/// from the local accounts and its password typed, and on both sides "unverified
/// certificate" ticked (the test servers' certificates are self-signed).
fn fill_migration(
    browser: &Browser,
    source_server: &str,
    (user, password): (&str, &str),
    (target_user, target_password): (&str, &str),
) {
    fill(browser, "#source-email", &format!("{user}@old.example"));
    fill(browser, "#source-username", user);
    fill(browser, "#source-password", password);
    fill(browser, "#source-server", source_server);
    browser
        .find(&format!("#target-pick option[value={target_user}]"))
        .unwrap()
        .click()
        .unwrap();
    fill(browser, "#target-password", target_password);
    for side in ["source", "target"] {
        let insecure = browser.find(&format!("#{side}-insecure")).unwrap();
        if insecure.property("checked").unwrap() != json!(true) {
            insecure.click().unwrap();
        }
    }
}

#[test]
fn a_wrong_password_names_the_side_then_a_migration_runs_live_to_finished_with_counts_and_is_purged(
) {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpus = nasty_corpus(false);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    source.fill(ALICE, ALICE_PASSWORD, &corpus).unwrap();
    let expected = corpus.message_count();
    let ui = Ui::start(&source, &target);
    let browser = Browser::start().unwrap();
    let source_server = format!("imap://127.0.0.1:{}", source.imap_port());

    // The login page, then the keyboard logs in.
    browser.goto(&ui.url("/ui/login")).unwrap();
    screenshot(&browser, "login");
    log_in(&browser, &ui);
    assert!(body(&browser).contains("2 of 2 migrations remaining"));
    assert!(body(&browser).contains("Server time zone: Europe/Berlin"));
    assert_labelled(&browser);
    screenshot(&browser, "migration");
    // The first Tab reaches the skip link, which takes the keyboard to the content.
    browser.press(keys::TAB).unwrap();
    let skip = browser.focused().unwrap();
    assert_eq!(skip.text().unwrap(), "Skip to the content");
    browser.press(keys::ENTER).unwrap();
    assert_eq!(browser.focused_id().unwrap().as_deref(), Some("main"));

    // The picker fills the target's address, username and server from Dovecot's users file.
    let options: Vec<String> = browser
        .find_all("#target-pick option")
        .unwrap()
        .iter()
        .map(|o| o.attribute("value").unwrap().unwrap_or_default())
        .collect();
    for user in ["alice", "bob", "user1", "user2"] {
        assert!(options.iter().any(|o| o == user), "{user} in {options:?}");
    }
    browser
        .find("#target-pick option[value=user2]")
        .unwrap()
        .click()
        .unwrap();
    assert_eq!(value(&browser, "#target-email"), "user2@new.example");
    assert_eq!(value(&browser, "#target-username"), USER2);
    assert_eq!(
        value(&browser, "#target-server"),
        format!("imap://127.0.0.1:{}", target.imap_port())
    );

    // A wrong target password: the target side is named, the typed fields are kept, the
    // passwords are not.
    fill_migration(
        &browser,
        &source_server,
        (USER1, USER1_PASSWORD),
        (USER2, "Wrong-Target-Pw"),
    );
    browser.find("#submit").unwrap().click().unwrap();
    let failure = browser.wait_for("#login-failure", PAGE).unwrap();
    let words = failure.text().unwrap();
    assert!(
        words.contains("The login failed on the target side. Nothing was submitted.")
            && words.contains("Target: ")
            && !words.contains("Source: "),
        "{words}"
    );
    browser
        .wait_until("the failure to have the focus", PAGE, |b| {
            b.find("#login-failure")?.has_focus()
        })
        .unwrap();
    let target_password = browser.find("#target-password").unwrap();
    assert_eq!(
        target_password
            .attribute("aria-invalid")
            .unwrap()
            .as_deref(),
        Some("true")
    );
    assert!(browser
        .find("#target-password-error")
        .unwrap()
        .text()
        .unwrap()
        .contains("refused this login"));
    assert_eq!(value(&browser, "#source-email"), "user1@old.example");
    assert_eq!(value(&browser, "#target-email"), "user2@new.example");
    assert_eq!(value(&browser, "#source-password"), "");
    assert_eq!(value(&browser, "#target-password"), "");
    assert!(!browser.source().unwrap().contains("Wrong-Target-Pw"));
    assert!(!browser.source().unwrap().contains(USER1_PASSWORD));
    screenshot(&browser, "migration-login-failed");

    // Right passwords, a start a few seconds ahead: the Active tab shows it waiting, then
    // it goes by itself (server-sent events, no reload) once it is done.
    fill(&browser, "#source-password", USER1_PASSWORD);
    fill(&browser, "#target-password", USER2_PASSWORD);
    set_value(&browser, "startdate", &local_time_in(8));
    browser.find("#submit").unwrap().click().unwrap();
    browser.wait_for(".notice", PAGE).unwrap();
    assert!(browser.url().unwrap().contains("/ui/active?submitted="));
    let notice = browser.find(".notice").unwrap().text().unwrap();
    assert!(
        notice.contains("Submitted: user1@old.example → user2@new.example"),
        "{notice}"
    );
    let url = browser.url().unwrap();
    let row_id = format!("m-{}", url.rsplit('=').next().unwrap());
    let row = browser.find(&format!("#{row_id}")).unwrap();
    assert!(
        row.text().unwrap().contains("Waiting to start"),
        "{}",
        row.text().unwrap()
    );
    assert_eq!(
        row.attribute("class").unwrap().as_deref(),
        Some("state-waiting highlight")
    );
    browser
        .execute("window.stillTheSamePage = true;", vec![])
        .unwrap();
    browser
        .wait_until(
            "the migration to leave the Active tab",
            Duration::from_secs(60),
            |b| Ok(b.find_all(&format!("#{row_id}"))?.is_empty()),
        )
        .unwrap_or_else(|e| panic!("{e}\nserve log:\n{}", ui.process.log()));
    assert_eq!(
        browser
            .execute("return window.stillTheSamePage === true;", vec![])
            .unwrap(),
        json!(true),
        "the list changed live, without a reload"
    );
    wait_for_text(&browser, "No migration is active");

    // Finished: done, with the corpus's count copied and a report per folder.
    browser.goto(&ui.url("/ui/finished")).unwrap();
    let article = browser.wait_for("article.finished", PAGE).unwrap();
    assert!(
        article.text().unwrap().contains("Done"),
        "{}",
        article.text().unwrap()
    );
    assert_eq!(
        article.find(".copied").unwrap().text().unwrap(),
        expected.to_string()
    );
    assert_eq!(article.find(".failed").unwrap().text().unwrap(), "0");
    article.find("summary").unwrap().click().unwrap();
    let report = article.find("table.folders").unwrap().text().unwrap();
    for folder in &corpus.folders {
        // Rendered text folds runs of spaces, as HTML does.
        let shown = folder.name.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(report.contains(&shown), "{shown} in the report:\n{report}");
    }
    let status = target
        .doveadm(&[
            "-f", "tab", "mailbox", "status", "-u", USER2, "messages", "*",
        ])
        .unwrap();
    let on_target: usize = status
        .lines()
        .skip(1)
        .filter_map(|l| l.rsplit('\t').next()?.trim().parse::<usize>().ok())
        .sum();
    assert_eq!(on_target, expected, "what the target holds: {status}");
    screenshot(&browser, "finished");

    // A second one with its resync tomorrow: after its first pass it waits on the Active
    // tab with a full bar; the allowance is used up.
    browser.goto(&ui.url("/ui/migration")).unwrap();
    browser.wait_for("#form", PAGE).unwrap();
    fill_migration(
        &browser,
        &source_server,
        (ALICE, ALICE_PASSWORD),
        (ALICE, ALICE_PASSWORD),
    );
    set_value(&browser, "resyncdate", &local_time_in(86_400));
    browser.find("#submit").unwrap().click().unwrap();
    browser.wait_for(".notice", PAGE).unwrap();
    browser
        .wait_until("the first pass to end", Duration::from_secs(60), |b| {
            Ok(b.find("body")?.text()?.contains("Waiting for resync"))
        })
        .unwrap_or_else(|e| panic!("{e}\nserve log:\n{}", ui.process.log()));
    wait_for_text(
        &browser,
        &format!("{expected} of {expected} messages (100 %)"),
    );
    screenshot(&browser, "active");
    assert_labelled(&browser);

    // Cancel it from the keyboard: its Cancel button, then Enter.
    let cancel = browser
        .find("button[aria-label='Cancel the migration of alice@old.example']")
        .unwrap();
    cancel.focus().unwrap();
    browser.press(keys::ENTER).unwrap();
    wait_for_text(
        &browser,
        "The migration was cancelled and its credentials erased.",
    );
    wait_for_text(&browser, "No migration is active");

    // Finished: the cancelled one and the done one; purging keeps the counts.
    browser.goto(&ui.url("/ui/finished")).unwrap();
    browser.wait_for("article.finished", PAGE).unwrap();
    let articles = browser.find_all("article.finished").unwrap();
    assert_eq!(articles.len(), 2);
    assert!(articles[0].text().unwrap().contains("Cancelled"));
    browser
        .find("button[aria-label='Purge the personal data of the migration of user1@old.example']")
        .unwrap()
        .click()
        .unwrap();
    wait_for_text(&browser, "its counts are kept");
    let purged = browser.find_all("article.finished").unwrap()[1]
        .text()
        .unwrap();
    assert!(
        purged.contains("(purged) → (purged)")
            && purged.contains(&format!("{expected} messages copied")),
        "{purged}"
    );
    assert!(!browser.source().unwrap().contains("user1@old.example"));

    browser.goto(&ui.url("/ui/information")).unwrap();
    browser.wait_for("#time-zone", PAGE).unwrap();
    assert_eq!(browser.find("#time-zone").unwrap().text().unwrap(), ZONE);
    assert_labelled(&browser);
    screenshot(&browser, "information");

    // The allowance is used up: good logins, and still nothing is stored, in words.
    browser.goto(&ui.url("/ui/migration")).unwrap();
    wait_for_text(&browser, "0 of 2 migrations remaining");
    fill_migration(
        &browser,
        &source_server,
        (USER1, USER1_PASSWORD),
        (BOB, BOB_PASSWORD),
    );
    browser.find("#submit").unwrap().click().unwrap();
    let refused = browser.wait_for("#refused", PAGE).unwrap().text().unwrap();
    assert!(
        refused.contains("The migration allowance is used up")
            && refused.contains("Add a licence key on the Licences tab"),
        "{refused}"
    );
    assert_eq!(value(&browser, "#target-email"), "bob@new.example");

    // On a phone the two sides stack and every field stays reachable.
    browser.set_window_size(390, 844).unwrap();
    browser.goto(&ui.url("/ui/migration")).unwrap();
    browser.wait_for("#form", PAGE).unwrap();
    let width = browser
        .execute("return document.documentElement.scrollWidth;", vec![])
        .unwrap();
    assert!(
        width.as_u64().unwrap() <= 390,
        "no sideways scrolling: {width}"
    );
    screenshot(&browser, "migration-phone");
    drop(browser);
    let mut process = ui.process;
    process.assert_stops_cleanly("serve");
}

/// One list line in PRODUCT.md's format, start now, no resync.
fn list_line(
    source: &Dovecot,
    target: &Dovecot,
    user: &str,
    password: &str,
    target_password: &str,
) -> String {
    format!(
        "imap;{user}@old.example;{user};{password};imap://127.0.0.1:{};imap;{user}@new.example;{user};{target_password};imap://127.0.0.1:{};;",
        source.imap_port(),
        target.imap_port()
    )
}

/// Puts `text` into the list box (the typing of it is not what is tested) and checks it.
fn check_list(browser: &Browser, text: &str) {
    set_value(browser, "list", text);
    browser.find("#check").unwrap().click().unwrap();
}

#[test]
fn a_list_with_errors_shows_red_fields_and_blue_duplicates_and_a_licence_key_lets_it_in() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let ui = Ui::start(&source, &target);
    let browser = Browser::start().unwrap();
    log_in(&browser, &ui);

    // A list with a faulty line, a duplicate and a line with too few fields.
    browser.goto(&ui.url("/ui/mass")).unwrap();
    browser.wait_for("#list", PAGE).unwrap();
    let good = list_line(&source, &target, USER1, USER1_PASSWORD, USER1_PASSWORD);
    let faulty = format!(
        "imap;user2-at-old;{USER2};{USER2_PASSWORD};imap://127.0.0.1:{};imapx;user2@new.example;{USER2};{USER2_PASSWORD};imap://127.0.0.1:{};;",
        source.imap_port(),
        target.imap_port()
    );
    let duplicate = list_line(&source, &target, USER1, USER1_PASSWORD, "other")
        .replace("user1@new.example;user1;", "bob@new.example;bob;");
    let text =
        format!("# our customer's mailboxes\n{good}\n{faulty}\n{duplicate}\nimap;only;three\n");
    check_list(&browser, &text);
    let problems = browser.wait_for("#check-problems", PAGE).unwrap();
    assert!(
        problems
            .text()
            .unwrap()
            .contains("Nothing was submitted: 2 lines have errors and 1 line is a duplicate."),
        "{}",
        problems.text().unwrap()
    );
    let red = "rgba(253, 236, 234, 1)";
    let blue = "rgba(227, 237, 252, 1)";
    let bad: Vec<_> = browser.find_all("#line-3 td.bad").unwrap();
    assert_eq!(bad.len(), 2, "the two faulty fields of line 3");
    let words: Vec<String> = bad.iter().map(|c| c.text().unwrap()).collect();
    assert!(
        words[0].contains("user2-at-old") && words[0].contains("is not an e-mail address"),
        "{words:?}"
    );
    assert!(
        words[1].contains("imapx") && words[1].contains("is not a server type"),
        "{words:?}"
    );
    for cell in &bad {
        assert_eq!(cell.css("background-color").unwrap(), red);
    }
    assert!(
        !browser
            .find("#line-3")
            .unwrap()
            .text()
            .unwrap()
            .contains(USER2_PASSWORD),
        "passwords are masked"
    );
    assert!(browser.find_all("#line-2 td.bad").unwrap().is_empty());
    let duplicate_row = browser.find("#line-4.duplicate").unwrap();
    assert!(duplicate_row
        .text()
        .unwrap()
        .contains("Duplicate: the same source account as line 2"));
    assert_eq!(
        duplicate_row
            .find("td")
            .unwrap()
            .css("background-color")
            .unwrap(),
        blue
    );
    assert!(browser
        .find("#line-5 td.bad")
        .unwrap()
        .text()
        .unwrap()
        .contains("the line has 3 fields, 12 expected"));
    assert_eq!(
        value(&browser, "#list"),
        text,
        "the pasted text stays in its box for corrections"
    );
    assert!(
        browser.find_all("#submit-list").unwrap().is_empty(),
        "no submit for a faulty list"
    );
    screenshot(&browser, "mass");

    // Three good lines and one with a wrong target password: more than the two free ones.
    let list = [
        good.clone(),
        list_line(&source, &target, USER2, USER2_PASSWORD, USER2_PASSWORD),
        list_line(&source, &target, ALICE, ALICE_PASSWORD, ALICE_PASSWORD),
        list_line(&source, &target, "bob", "bobpw", "Wrong-Bob-Pw"),
    ]
    .join("\n");
    check_list(&browser, &list);
    browser.wait_for("#check-clean", PAGE).unwrap();
    browser.find("#submit-list").unwrap().click().unwrap();
    let refused = browser.wait_for("#list-refused", PAGE).unwrap();
    assert!(
        refused.text().unwrap().contains(
            "Nothing was submitted: the migration allowance has 2 migrations left, and this submission needs 3"
        ),
        "{}",
        refused.text().unwrap()
    );
    assert!(browser
        .find("#result-4")
        .unwrap()
        .text()
        .unwrap()
        .contains("the login failed on the target side"));

    // Licences: a changed key is refused, a whole one raises the counter from 2 to 7.
    browser.goto(&ui.url("/ui/licences")).unwrap();
    wait_for_text(&browser, "2 of 2 migrations remaining");
    let issued = crate::common::mailferry(
        &[
            "licence",
            "issue",
            "--count",
            "5",
            "--to",
            "UI test",
            "--signing-key",
            crate::service::LAB_SIGNING_KEY,
        ],
        &[],
    );
    assert!(
        issued.status.success(),
        "{}",
        crate::common::stderr(&issued)
    );
    let key = crate::common::stdout(&issued).trim().to_string();
    let mut changed = key.clone();
    let last = changed.pop().unwrap();
    changed.push(if last == 'A' { 'B' } else { 'A' });
    fill(&browser, "#key", &changed);
    browser.find("#add-key").unwrap().click().unwrap();
    let error = browser.wait_for("#key-error", PAGE).unwrap();
    assert!(
        error.text().unwrap().contains("signature does not match"),
        "{}",
        error.text().unwrap()
    );
    wait_for_text(&browser, "2 of 2 migrations remaining");
    fill(&browser, "#key", &key);
    browser.find("#add-key").unwrap().click().unwrap();
    browser.wait_for(".notice", PAGE).unwrap();
    assert!(body(&browser).contains("added: 5 more migrations"));
    assert_eq!(
        browser
            .find("#allowance .remaining")
            .unwrap()
            .text()
            .unwrap(),
        "7"
    );
    assert_eq!(
        browser.find("#allowance .total").unwrap().text().unwrap(),
        "7"
    );
    assert_eq!(browser.find_all("table.keys tbody tr").unwrap().len(), 1);
    screenshot(&browser, "licences");

    // The same list again: three submitted, the fourth named with its side.
    browser.goto(&ui.url("/ui/mass")).unwrap();
    browser.wait_for("#list", PAGE).unwrap();
    check_list(&browser, &list);
    browser.wait_for("#check-clean", PAGE).unwrap();
    browser.find("#submit-list").unwrap().click().unwrap();
    let count = browser.wait_for("#submitted-count", PAGE).unwrap();
    assert!(
        count
            .text()
            .unwrap()
            .contains("3 of 4 migrations submitted"),
        "{}",
        count.text().unwrap()
    );
    for line in 1..=3 {
        assert!(browser
            .find(&format!("#result-{line}"))
            .unwrap()
            .text()
            .unwrap()
            .contains("Submitted (#"));
    }
    let failed = browser.find("#result-4").unwrap().text().unwrap();
    assert!(
        failed.contains("bob@old.example → bob@new.example")
            && failed.contains("Not submitted: the login failed on the target side")
            && !failed.contains("Wrong-Bob-Pw"),
        "{failed}"
    );
    assert_eq!(
        value(&browser, "#list"),
        "",
        "the submitted list left the box"
    );
    screenshot(&browser, "mass-submitted");
    browser.goto(&ui.url("/ui/licences")).unwrap();
    wait_for_text(&browser, "4 of 7 migrations remaining");

    // A form forged by another site's page (same site, other port: the cookie goes along)
    // is refused, and changes nothing.
    // A page on another origin (another port of 127.0.0.1: the same site, so the browser
    // sends the SameSite=Strict cookie) whose form posts itself at once.
    let forger = serve_page(format!(
        "<!doctype html><html><body><form id=f method=post action=\"{}\">\
         <input name=key value=forged></form>\
         <script>document.getElementById('f').submit()</script></body></html>",
        ui.url("/ui/licences")
    ))
    .unwrap();
    browser.goto(&forger).unwrap();
    wait_for_text(&browser, "This form was refused");
    browser.goto(&ui.url("/ui/licences")).unwrap();
    wait_for_text(&browser, "4 of 7 migrations remaining");
    drop(browser);
    let mut process = ui.process;
    process.assert_stops_cleanly("serve");
}
