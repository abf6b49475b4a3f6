//! `mailferry batch` and `mailferry licence` through the binary: keys made, issued, added
//! once and listed; lists checked with line, field and masked value; a list submitted to a
//! running `mailferry serve` through its API with a token, and straight into a data
//! directory, within the allowance. No password of a list is ever printed or logged.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mailferry_testkit::dovecot::{
    Dovecot, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, SMALL, SMALL_PASSWORD, USER1,
    USER1_PASSWORD, USER2, USER2_PASSWORD,
};

use crate::common::{free_port, mailferry, stderr, stdout, wait_until};

const LAB_SIGNING_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/licence-lab-signing.key"
);

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

fn failed(output: &std::process::Output, code: i32) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {}\nstderr: {}",
        stdout(output),
        stderr(output)
    );
    let all = stdout(output) + &stderr(output);
    assert!(!all.contains("panicked"), "{all}");
    all
}

#[test]
fn licence_keys_are_made_issued_added_once_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("signing.key");
    let key_path = key_file.to_str().unwrap();
    let public = ok(&mailferry(&["licence", "keygen", "--out", key_path], &[]));
    let public = public.trim();
    assert_eq!(public.len(), 43, "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = failed(
        &mailferry(&["licence", "keygen", "--out", key_path], &[]),
        1,
    );
    assert!(again.contains("never overwritten"), "{again}");

    let issue = |count: &str, signing: &str| {
        mailferry(
            &[
                "licence",
                "issue",
                "--count",
                count,
                "--to",
                "Example Hosting",
                "--signing-key",
                signing,
            ],
            &[],
        )
    };
    let key = ok(&issue("25", key_path));
    let key = key.trim();
    assert!(key.starts_with("mfl1."), "{key}");
    let zero = failed(&issue("0", key_path), 1);
    assert!(zero.contains("--count"), "{zero}");

    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let env = [("MAILFERRY_LICENCE_PUBLIC_KEY", public)];
    let added = ok(&mailferry(
        &["licence", "add", key, "--data-dir", data],
        &env,
    ));
    assert!(added.contains("27 of 27 left"), "{added}");
    let twice = failed(
        &mailferry(&["licence", "add", key, "--data-dir", data], &env),
        1,
    );
    assert!(twice.contains("counts once"), "{twice}");
    // Signed with the lab key, while this service has a public key of its own.
    let lab = ok(&issue("100", LAB_SIGNING_KEY));
    let forged = failed(
        &mailferry(&["licence", "add", lab.trim(), "--data-dir", data], &env),
        1,
    );
    assert!(forged.contains("signature"), "{forged}");
    let bad_public = failed(
        &mailferry(
            &["licence", "list", "--data-dir", data],
            &[("MAILFERRY_LICENCE_PUBLIC_KEY", "not-a-key")],
        ),
        1,
    );
    assert!(
        bad_public.contains("MAILFERRY_LICENCE_PUBLIC_KEY"),
        "{bad_public}"
    );
    let listed = ok(&mailferry(&["licence", "list", "--data-dir", data], &env));
    assert!(
        listed.contains("27 of 27 left") && listed.contains("Example Hosting"),
        "{listed}"
    );
}

#[test]
fn batch_check_names_line_field_and_value_and_never_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        "# two good lines and two bad ones\n\
         imap;ann@old.example;;\"s3cret;one\";old.example;imap;ann@new.example;;s3cret-two;new.example;;\n\
         imap;bob;;s3cret-three;old.example;imap;bob@new.example;;s3cret-four;new.example:0;;\n\
         imap;ann@old.example;;s3cret-five;old.example;imap;cay@new.example;;s3cret-six;new.example;;\n",
    )
    .unwrap();
    let data = dir.path().join("data");
    let out = failed(
        &mailferry(
            &[
                "batch",
                "check",
                list.to_str().unwrap(),
                "--formal-only",
                "--data-dir",
                data.to_str().unwrap(),
            ],
            &[],
        ),
        1,
    );
    for needle in [
        "line 3, source.email = `bob`:",
        "line 3, target.server = `new.example:0`:",
        "line 4: duplicate: the same source account as line 2",
    ] {
        assert!(out.contains(needle), "`{needle}` missing:\n{out}");
    }
    assert!(!out.contains("s3cret"), "a password was printed:\n{out}");

    // The template, its example line uncommented, is clean.
    let template = ok(&mailferry(&["batch", "template"], &[]));
    std::fs::write(&list, template.replace("\n#imap;", "\nimap;")).unwrap();
    let out = ok(&mailferry(
        &[
            "batch",
            "check",
            list.to_str().unwrap(),
            "--formal-only",
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[],
    ));
    assert!(out.contains("clean"), "{out}");
}

/// A `mailferry serve`, stdout and stderr in `log`; killed on drop.
struct Serve {
    child: Child,
}

impl Serve {
    fn start(data: &Path, port: u16, log: &Path, env: &[(&str, &str)]) -> Serve {
        let file = std::fs::File::create(log).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_mailferry"));
        command
            .args([
                "-v",
                "serve",
                "--data-dir",
                data.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--poll-ms",
                "100",
            ])
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command.spawn().unwrap();
        assert!(
            wait_until(Duration::from_secs(30), || std::net::TcpStream::connect((
                "127.0.0.1",
                port
            ))
            .is_ok()),
            "serve did not listen"
        );
        Serve { child }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn batch_submit_through_the_api_and_into_a_data_dir_within_the_allowance() {
    let dovecot = Dovecot::start().unwrap();
    let server = format!("imap://127.0.0.1:{}", dovecot.imap_port());
    let cert = dovecot.cert_pem_path();
    let cert = cert.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let line = |from: &str, from_pw: &str, to: &str, to_pw: &str| {
        format!(
            "imap;{from}@old.example;{from};\"{from_pw}\";{server};imap;{to}@new.example;{to};\"{to_pw}\";{server};;\r\n"
        )
    };
    let wrong = "Wr0ng;Pa55";
    let list = dir.path().join("list.txt");
    std::fs::write(
        &list,
        line(USER1, USER1_PASSWORD, USER2, USER2_PASSWORD)
            + &line(ALICE, ALICE_PASSWORD, BOB, wrong)
            + &line(SMALL, SMALL_PASSWORD, ALICE, ALICE_PASSWORD),
    )
    .unwrap();
    let list = list.to_str().unwrap();
    let secrets = [
        USER1_PASSWORD,
        USER2_PASSWORD,
        ALICE_PASSWORD,
        SMALL_PASSWORD,
        wrong,
    ];

    // Through a running service's API, with a token.
    let data = dir.path().join("service");
    let data_arg = data.to_str().unwrap();
    let env = [
        ("MAILFERRY_ADMIN_PASSWORD", "admin-pw-batch"),
        ("MAILFERRY_CA_FILE", cert),
    ];
    let token = ok(&mailferry(
        &["token", "create", "--data-dir", data_arg],
        &env,
    ));
    let port = free_port();
    let serve = Serve::start(&data, port, &dir.path().join("serve.log"), &env);
    let api = format!("http://127.0.0.1:{port}");
    let out = failed(
        &mailferry(
            &["batch", "submit", list, "--api", &api],
            &[("MAILFERRY_API_TOKEN", token.trim())],
        ),
        3,
    );
    assert!(
        out.contains("line 2: login failed on the target side"),
        "{out}"
    );
    assert!(out.contains("submitted 2 migrations"), "{out}");
    assert!(out.contains("allowance: 0 of 2 left"), "{out}");
    let wrong_token = failed(
        &mailferry(
            &["batch", "submit", list, "--api", &api, "--token", "mf_nope"],
            &[],
        ),
        1,
    );
    assert!(wrong_token.contains("refused the token"), "{wrong_token}");
    drop(serve);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    for text in [&out, &log] {
        for secret in secrets {
            assert!(!text.contains(secret), "`{secret}` leaked:\n{text}");
        }
    }

    // Straight into a data directory: the check names the failing line; the good lines go
    // in within the free allowance, and then the allowance is used up.
    let local = dir.path().join("local");
    let local = local.to_str().unwrap();
    let ca = [("MAILFERRY_CA_FILE", cert)];
    let out = failed(
        &mailferry(&["batch", "check", list, "--data-dir", local], &ca),
        1,
    );
    assert!(
        out.contains("line 2: login failed on the target side"),
        "{out}"
    );
    let good = dir.path().join("good.txt");
    std::fs::write(
        &good,
        line(USER1, USER1_PASSWORD, USER2, USER2_PASSWORD)
            + &line(SMALL, SMALL_PASSWORD, ALICE, ALICE_PASSWORD),
    )
    .unwrap();
    let good = good.to_str().unwrap();
    let out = ok(&mailferry(
        &["batch", "submit", good, "--data-dir", local],
        &ca,
    ));
    assert!(out.contains("submitted 2 migrations"), "{out}");
    // The same list again: its accounts have migrations waiting, so both lines are
    // duplicates of those, and nothing is submitted.
    let out = failed(
        &mailferry(&["batch", "submit", good, "--data-dir", local], &ca),
        1,
    );
    assert!(
        out.contains("line 1: duplicate: the same source account as migration")
            && out.contains("line 2: duplicate: the same source account as migration"),
        "{out}"
    );
    // Other accounts: the allowance is used up.
    let other = dir.path().join("other.txt");
    std::fs::write(&other, line(ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD)).unwrap();
    let out = failed(
        &mailferry(
            &[
                "batch",
                "submit",
                other.to_str().unwrap(),
                "--data-dir",
                local,
            ],
            &ca,
        ),
        1,
    );
    assert!(out.contains("allowance is used up"), "{out}");
    assert!(out.contains("licence add"), "{out}");
}
