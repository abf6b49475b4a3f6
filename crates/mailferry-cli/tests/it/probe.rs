//! `mailferry probe` against real Dovecot: STARTTLS, IMAPS with a CA file, a master user,
//! the `INBOX.` namespace, and every way it can fail.

use mailferry_testkit::dovecot::{
    Dovecot, Layout, Naming, MASTER_PASSWORD, MASTER_USER, USER1, USER1_PASSWORD,
};
use mailferry_testkit::nasty_corpus;
use serde_json::Value;

use crate::common::{assert_clean_failure, mailferry, stderr, stdout};

fn filled() -> (Dovecot, usize) {
    let server = Dovecot::start().expect("dovecot starts");
    let corpus = nasty_corpus(false);
    server
        .fill(USER1, USER1_PASSWORD, &corpus)
        .expect("corpus loads");
    (server, corpus.message_count())
}

fn json_of(output: &std::process::Output) -> Value {
    assert!(output.status.success(), "probe failed: {}", stderr(output));
    serde_json::from_str(&stdout(output)).expect("probe --json prints JSON")
}

#[test]
fn starttls_text_report_lists_every_folder_with_counts() {
    let (server, count) = filled();
    let url = format!("imap://{USER1}@127.0.0.1:{}", server.imap_port());
    let out = mailferry(
        &["probe", &url, "--insecure"],
        &[("MAILFERRY_PASSWORD", USER1_PASSWORD)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    println!("{text}");
    for needle in [
        "(TLS)",
        "IMAP4REV1",
        "Projekte Übersicht",
        "日本語",
        "Archive/2019/Q1",
        "\\Sent",
        "\\Trash",
        " ms  login",
    ] {
        assert!(
            text.contains(needle),
            "probe output lacks `{needle}`:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("{count} messages")),
        "total of {count} messages missing:\n{text}"
    );
    assert!(!text.contains(USER1_PASSWORD) && !stderr(&out).contains(USER1_PASSWORD));
}

#[test]
fn imaps_with_ca_file_as_json() {
    let (server, count) = filled();
    let url = format!("imaps://{USER1}@127.0.0.1:{}", server.imaps_port());
    let ca = server.cert_pem_path();
    let report = json_of(&mailferry(
        &["probe", &url, "--ca-file", ca.to_str().unwrap(), "--json"],
        &[("MAILFERRY_PASSWORD", USER1_PASSWORD)],
    ));
    assert_eq!(report["tls"], true);
    assert_eq!(report["account"], USER1);
    assert_eq!(report["total_messages"].as_u64(), Some(count as u64));
    assert!(report["total_bytes"].as_u64().unwrap() > 0);
    assert_eq!(report["namespaces"][0]["separator"], "/");
    let folders = report["folders"].as_array().unwrap();
    let sent = folders
        .iter()
        .find(|f| f["special_use"] == "\\Sent")
        .expect("a \\Sent folder");
    assert_eq!(sent["name"], "Sent");
    let odd = folders
        .iter()
        .find(|f| f["name"] == "Projekte Übersicht")
        .expect("non-ASCII folder");
    assert_eq!(odd["raw_name"], "Projekte &ANw-bersicht");
    let per_folder: u64 = folders.iter().filter_map(|f| f["messages"].as_u64()).sum();
    assert_eq!(per_folder, count as u64);
}

#[test]
fn master_user_acts_as_the_account() {
    let (server, count) = filled();
    let url = format!("imap://{MASTER_USER}@127.0.0.1:{}", server.imap_port());
    let password_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(password_file.path(), format!("{MASTER_PASSWORD}\n")).unwrap();
    let report = json_of(&mailferry(
        &[
            "probe",
            &url,
            "--insecure",
            "--auth-as",
            USER1,
            "--password-file",
            password_file.path().to_str().unwrap(),
            "--json",
        ],
        &[],
    ));
    assert_eq!(report["account"], USER1);
    assert_eq!(report["total_messages"].as_u64(), Some(count as u64));
}

#[test]
fn inbox_prefix_and_dot_separator_are_reported() {
    let server = Dovecot::builder()
        .layout(Layout::MaildirPlusPlus)
        .prefix("INBOX.")
        .naming(Naming::Exchange)
        .start()
        .unwrap();
    let url = format!("imap://{USER1}@127.0.0.1:{}", server.imap_port());
    let report = json_of(&mailferry(
        &["probe", &url, "--insecure", "--json"],
        &[("MAILFERRY_PASSWORD", USER1_PASSWORD)],
    ));
    assert_eq!(report["namespaces"][0]["prefix"], "INBOX.");
    assert_eq!(report["namespaces"][0]["separator"], ".");
    let folders = report["folders"].as_array().unwrap();
    let sent = folders
        .iter()
        .find(|f| f["special_use"] == "\\Sent")
        .expect("a \\Sent folder");
    assert_eq!(sent["name"], "INBOX.Sent Items");
}

#[test]
fn failures_are_one_clear_report() {
    let server = Dovecot::start().unwrap();
    let port = server.imap_port();
    let env = [("MAILFERRY_PASSWORD", "not-the-password")];

    let out = mailferry(
        &[
            "probe",
            &format!("imap://{USER1}@127.0.0.1:{port}"),
            "--insecure",
        ],
        &env,
    );
    assert_clean_failure(
        &out,
        &[
            "cannot log in",
            "rejected the login of `user1`",
            "AUTHENTICATIONFAILED",
            "hint: check the username and password",
        ],
    );
    assert!(!stderr(&out).contains("not-the-password"));

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = mailferry(
        &["probe", &format!("imap://{USER1}@127.0.0.1:{closed}")],
        &env,
    );
    assert_clean_failure(
        &out,
        &[
            "cannot connect to `127.0.0.1:",
            "hint: check the host and port",
        ],
    );

    let out = mailferry(
        &[
            "probe",
            &format!("imaps://{USER1}@127.0.0.1:{}", server.imaps_port()),
        ],
        &[("MAILFERRY_PASSWORD", USER1_PASSWORD)],
    );
    assert_clean_failure(
        &out,
        &[
            "certificate",
            "does not verify",
            "self-signed or a private CA",
            "--ca-file",
            "--insecure",
        ],
    );

    let token = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(token.path(), "ya29.token").unwrap();
    let out = mailferry(
        &[
            "probe",
            &format!("imap://{USER1}@127.0.0.1:{port}"),
            "--insecure",
            "--oauth2-token-file",
            token.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_clean_failure(&out, &["does not support AUTH=XOAUTH2", "an OAuth2 login"]);
    assert!(!stderr(&out).contains("ya29.token"));

    let out = mailferry(&["probe", &format!("imap://127.0.0.1:{port}")], &env);
    assert_clean_failure(&out, &["names no user"]);

    let out = mailferry(
        &[
            "probe",
            &format!("imap://{USER1}@127.0.0.1:{port}"),
            "--insecure",
        ],
        &[],
    );
    assert_clean_failure(&out, &["no server password given", "MAILFERRY_PASSWORD"]);

    let out = mailferry(&["probe", "pop3://x@127.0.0.1"], &env);
    assert_clean_failure(&out, &["imap:// (STARTTLS) or imaps:// (TLS)"]);
}

#[test]
fn compress_turns_on_deflate_and_reports_it() {
    let (server, count) = filled();
    let url = format!("imap://{USER1}@127.0.0.1:{}", server.imap_port());
    let env = [("MAILFERRY_PASSWORD", USER1_PASSWORD)];
    let report = json_of(&mailferry(
        &["probe", &url, "--insecure", "--compress", "--json"],
        &env,
    ));
    assert_eq!(report["compression"], true);
    assert_eq!(report["tls"], true);
    assert_eq!(report["total_messages"].as_u64(), Some(count as u64));
    assert!(report["total_bytes"].as_u64().unwrap() > 0);

    let out = mailferry(&["probe", &url, "--insecure", "--compress"], &env);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("compression  DEFLATE"),
        "{}",
        stdout(&out)
    );

    let report = json_of(&mailferry(&["probe", &url, "--insecure", "--json"], &env));
    assert_eq!(report["compression"], false, "compression is opt-in");
}
