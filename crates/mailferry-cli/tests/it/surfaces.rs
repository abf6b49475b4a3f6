//! Issue 12: `migrate`'s flags, job files and `batch check` accept and refuse exactly the
//! server types of the engine's one table, as the API does (`mailferry-service` tests/it/
//! surfaces.rs): each is compared with `server_type` over every name of the table, other
//! cases of them, and names that are not types.

use mailferry_engine::account::{server_type, SERVER_TYPES};
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD};

use crate::common::{mailferry, stderr, stdout};

fn names() -> Vec<String> {
    let mut names: Vec<String> = SERVER_TYPES.iter().map(|t| t.name.to_string()).collect();
    names.extend(["IMAP", "Kolab", "imapx", "dav", "ox", "exchange2019"].map(String::from));
    names
}

#[test]
fn flags_job_files_and_lists_take_exactly_the_tables_types() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state").display().to_string();
    let from = format!("imap://{USER1}@127.0.0.1:{}", source.imap_port());
    let to = format!("imap://{USER2}@127.0.0.1:{}", target.imap_port());
    let env = [
        ("MAILFERRY_FROM_PASSWORD", USER1_PASSWORD),
        ("MAILFERRY_TO_PASSWORD", USER2_PASSWORD),
        ("SRC_PW", USER1_PASSWORD),
        ("DST_PW", USER2_PASSWORD),
    ];
    for kind in names() {
        let expected = server_type(&kind).is_ok();

        let flags = mailferry(
            &[
                "migrate",
                "--from",
                &from,
                "--from-type",
                &kind,
                "--to",
                &to,
                "--insecure",
                "--no-groupware",
                "--dry-run",
                "--quiet",
                "--state-dir",
                &state,
            ],
            &env,
        );
        let said = format!("{}{}", stdout(&flags), stderr(&flags));
        assert_eq!(
            flags.status.success(),
            expected,
            "--from-type `{kind}`: {said}"
        );
        if !expected {
            assert!(said.contains("server type"), "{said}");
        }

        let job = dir.path().join("job.toml");
        std::fs::write(
            &job,
            format!(
                "[source]\nurl = \"imap://127.0.0.1:{}\"\ntype = \"{kind}\"\ninsecure = true\n\
                 [target]\nurl = \"imap://127.0.0.1:{}\"\ninsecure = true\n\
                 [options]\nno_groupware = true\n\
                 [[account]]\nsource_user = \"{USER1}\"\nsource_password_env = \"SRC_PW\"\n\
                 target_user = \"{USER2}\"\ntarget_password_env = \"DST_PW\"\n",
                source.imap_port(),
                target.imap_port()
            ),
        )
        .unwrap();
        let job_run = mailferry(
            &[
                "migrate",
                "--job",
                job.to_str().unwrap(),
                "--dry-run",
                "--quiet",
                "--state-dir",
                &state,
            ],
            &env,
        );
        let said = format!("{}{}", stdout(&job_run), stderr(&job_run));
        assert_eq!(
            job_run.status.success(),
            expected,
            "job file type `{kind}`: {said}"
        );

        let list = dir.path().join("list.txt");
        std::fs::write(
            &list,
            format!("{kind};ann@old.example;ann;pw;old.example;imap;ann@new.example;ann;pw;new.example;;\n"),
        )
        .unwrap();
        let checked = mailferry(
            &[
                "batch",
                "check",
                list.to_str().unwrap(),
                "--formal-only",
                "--data-dir",
                dir.path().join("data").to_str().unwrap(),
            ],
            &[],
        );
        let said = format!("{}{}", stdout(&checked), stderr(&checked));
        assert_eq!(
            checked.status.success(),
            expected,
            "list type `{kind}`: {said}"
        );
        if !expected {
            assert!(said.contains("source.type"), "{said}");
        }
    }
}

/// Issue 12: hints name the flags of the side at fault; a CalDAV/CardDAV error's hint is
/// printed too.
#[test]
fn hints_name_the_flags_of_the_side_at_fault() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let state = tempfile::tempdir().unwrap();
    let env = [
        ("MAILFERRY_FROM_PASSWORD", USER1_PASSWORD),
        ("MAILFERRY_TO_PASSWORD", USER2_PASSWORD),
    ];
    // The target's self-signed certificate, not trusted: the target's flags.
    let from = format!("imap://{USER1}@127.0.0.1:{}", source.imap_port());
    let to = format!("imaps://{USER2}@127.0.0.1:{}", target.imaps_port());
    let out = mailferry(
        &[
            "migrate",
            "--from",
            &from,
            "--from-insecure",
            "--to",
            &to,
            "--state-dir",
            state.path().to_str().unwrap(),
            "--quiet",
        ],
        &env,
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("hint:") && err.contains("--to-ca-file") && err.contains("--to-insecure"),
        "{err}"
    );
    assert!(!err.contains("--from-ca-file"), "{err}");

    // A DAV address that cannot be used: its hint is printed.
    let out = mailferry(
        &[
            "migrate",
            "--from",
            "https://alice@dav example/",
            "--to",
            "https://bob@dav.example/",
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
        &env,
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("hint: write it as https://USER@HOST/PATH"),
        "{err}"
    );
}
