//! `mailferry serve` killed with SIGKILL in the middle of a transfer, then started again:
//! the migration finishes with nothing lost and nothing twice. And no planted secret ever
//! shows up in the service's logs or answers.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mailferry_testkit::bulk_corpus;
use mailferry_testkit::dovecot::{Dovecot, USER1, USER1_PASSWORD, USER2, USER2_PASSWORD};
use serde_json::{json, Value};

use crate::common::{free_port, mailferry, stderr, stdout, wait_until};

const ADMIN: &str = "Adm1n-Planted-Secret";
const WRONG: &str = "Wr0ng-Planted-Secret";

fn start_serve(data: &Path, port: u16, log: &Path) -> Child {
    start_serve_with_lease(data, port, log, 2)
}

fn start_serve_with_lease(data: &Path, port: u16, log: &Path, lease: u64) -> Child {
    start_serve_with(data, port, log, lease, 5)
}

fn start_serve_with(data: &Path, port: u16, log: &Path, lease: u64, grace: u64) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Command::new(env!("CARGO_BIN_EXE_mailferry"))
        .args([
            "-vv",
            "serve",
            "--data-dir",
            data.to_str().unwrap(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .args([
            "--workers",
            "1",
            "--lease-seconds",
            &lease.to_string(),
            "--poll-ms",
            "100",
        ])
        .env("MAILFERRY_ADMIN_PASSWORD", ADMIN)
        .env("MAILFERRY_SHUTDOWN_GRACE_SECONDS", grace.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

/// One HTTP request with curl: (status, JSON body).
fn http(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let mut command = Command::new("curl");
    command.args([
        "-s",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        "-u",
        &format!("admin:{ADMIN}"),
        url,
    ]);
    if let Some(body) = body {
        command.args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            &body.to_string(),
        ]);
    }
    let out = command.output().expect("curl runs (package curl)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (
        code.trim().parse().unwrap_or(0),
        serde_json::from_str(body).unwrap_or(Value::Null),
    )
}

#[test]
fn serve_killed_mid_transfer_resumes_to_done_without_duplicates_and_never_logs_secrets() {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpus = bulk_corpus(31, 2500, 4);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut serve = start_serve(data.path(), port, &log);
    assert!(
        wait_until(Duration::from_secs(20), || http(
            "GET",
            &format!("{base}/healthz"),
            None
        )
        .0 == 200
            || http("GET", &format!("{base}/api/v1/info"), None).0 == 200),
        "serve did not start: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    let submission = |target_password: &str| {
        json!({
            "source.type": "imap", "source.email": "user1@old.example", "source.username": USER1, "source.password": USER1_PASSWORD,
            "source.server": format!("imap://127.0.0.1:{}", source.imap_port()), "source.insecure": true,
            "target.type": "imap", "target.email": "user2@new.example", "target.username": USER2, "target.password": target_password,
            "target.server": format!("imap://127.0.0.1:{}", target.imap_port()), "target.insecure": true,
        })
    };
    // A wrong password, planted: it must appear nowhere.
    let (status, refused) = http(
        "POST",
        &format!("{base}/api/v1/migrations"),
        Some(&submission(WRONG)),
    );
    assert_eq!(status, 422, "{refused}");
    assert!(!refused.to_string().contains(WRONG));

    let (status, created) = http(
        "POST",
        &format!("{base}/api/v1/migrations"),
        Some(&submission(USER2_PASSWORD)),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let one = format!("{base}/api/v1/migrations/{id}");
    let mid_transfer = wait_until(Duration::from_secs(60), || {
        let (_, m) = http("GET", &one, None);
        m["state"] == "transferring"
            && m["progress"]["messages_transferred"].as_u64().unwrap_or(0) > 200
    });
    assert!(
        mid_transfer,
        "never saw the transfer under way: {}",
        http("GET", &one, None).1
    );
    serve.kill().unwrap(); // SIGKILL
    serve.wait().unwrap();
    let (_, at_kill) = http("GET", &one, None);
    assert_eq!(at_kill, Value::Null, "the service is really gone");

    let mut again = start_serve(data.path(), port, &log);
    let finished = wait_until(Duration::from_secs(120), || {
        http("GET", &one, None).1["state"] == "done"
    });
    let (_, last) = http("GET", &one, None);
    assert!(
        finished,
        "the migration did not finish after the restart: {last}"
    );
    assert!(
        last["attempts"].as_u64().unwrap_or(0) >= 2,
        "taken over after the kill: {last}"
    );
    // The operators see the takeover in the metrics.
    let metrics = Command::new("curl")
        .args(["-s", &format!("{base}/metrics")])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.contains("mailferry_lease_takeovers_total 1"),
        "{metrics}"
    );
    again.kill().unwrap();
    again.wait().unwrap();

    let verify = mailferry(
        &[
            "verify",
            "--from",
            &format!("imap://{USER1}@127.0.0.1:{}", source.imap_port()),
            "--to",
            &format!("imap://{USER2}@127.0.0.1:{}", target.imap_port()),
            "--insecure",
        ],
        &[
            ("MAILFERRY_FROM_PASSWORD", USER1_PASSWORD),
            ("MAILFERRY_TO_PASSWORD", USER2_PASSWORD),
        ],
    );
    assert!(
        verify.status.success(),
        "verify after the crash: {}\n{}",
        stdout(&verify),
        stderr(&verify)
    );

    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(
        logs.contains("pass starts"),
        "the log has the service's own lines"
    );
    for secret in [WRONG, ADMIN, USER1_PASSWORD, USER2_PASSWORD] {
        assert!(
            !logs.contains(secret),
            "the secret `{secret}` is in the service log"
        );
    }
}

#[test]
fn sigterm_mid_transfer_releases_the_lease_so_a_restart_resumes_at_once() {
    sigterm_then_restart(0);
}

#[test]
fn sigterm_lets_batches_in_flight_land_then_releases_the_lease() {
    sigterm_then_restart(10);
}

/// SIGTERM mid-transfer with a shutdown grace of `grace` seconds: 0 stops the pass at once,
/// more lets the batches in flight land before the pass ends by itself.
fn sigterm_then_restart(grace: u64) {
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let corpus = bulk_corpus(41, 2500, 4);
    source.fill(USER1, USER1_PASSWORD, &corpus).unwrap();
    let data = tempfile::tempdir().unwrap();
    let log = data.path().join("serve.log");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // A lease of a minute: only a released lease lets the restart resume within seconds.
    // With a grace of 0 the pass is cut at once; with more, it stops between batches.
    let mut serve = start_serve_with(data.path(), port, &log, 60, grace);
    assert!(wait_until(Duration::from_secs(20), || http(
        "GET",
        &format!("{base}/api/v1/info"),
        None
    )
    .0 == 200));
    let body = json!({
        "source.type": "imap", "source.email": "user1@old.example", "source.username": USER1, "source.password": USER1_PASSWORD,
        "source.server": format!("imap://127.0.0.1:{}", source.imap_port()), "source.insecure": true,
        "target.type": "imap", "target.email": "user2@new.example", "target.username": USER2, "target.password": USER2_PASSWORD,
        "target.server": format!("imap://127.0.0.1:{}", target.imap_port()), "target.insecure": true,
    });
    let (status, created) = http("POST", &format!("{base}/api/v1/migrations"), Some(&body));
    assert_eq!(status, 201, "{created}");
    let one = format!(
        "{base}/api/v1/migrations/{}",
        created["id"].as_str().unwrap()
    );
    assert!(wait_until(Duration::from_secs(60), || {
        let (_, m) = http("GET", &one, None);
        m["state"] == "transferring"
            && m["progress"]["messages_transferred"].as_u64().unwrap_or(0) > 200
    }));
    let stopping = Instant::now();
    Command::new("kill")
        .args(["-TERM", &serve.id().to_string()])
        .status()
        .unwrap();
    let status = serve.wait().unwrap();
    assert!(
        status.success(),
        "serve exits cleanly on SIGTERM: {status:?}"
    );
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "shutdown took {:?}",
        stopping.elapsed()
    );

    let mut again = start_serve_with_lease(data.path(), port, &log, 60);
    let resumed = wait_until(Duration::from_secs(30), || {
        http("GET", &one, None).1["state"] == "done"
    });
    let (_, last) = http("GET", &one, None);
    again.kill().unwrap();
    again.wait().unwrap();
    assert!(
        resumed,
        "not done within 30 s of the restart (a lease left behind would hold it for 60 s): {last}"
    );
    let verify = mailferry(
        &[
            "verify",
            "--from",
            &format!("imap://{USER1}@127.0.0.1:{}", source.imap_port()),
            "--to",
            &format!("imap://{USER2}@127.0.0.1:{}", target.imap_port()),
            "--insecure",
        ],
        &[
            ("MAILFERRY_FROM_PASSWORD", USER1_PASSWORD),
            ("MAILFERRY_TO_PASSWORD", USER2_PASSWORD),
        ],
    );
    assert!(
        verify.status.success(),
        "verify after the restart: {}\n{}",
        stdout(&verify),
        stderr(&verify)
    );
}
