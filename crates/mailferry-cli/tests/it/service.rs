//! `mailferry serve` and a separate `mailferry worker` process on one shared PostgreSQL:
//! migrations submitted through the REST API are run by both processes, verified, and both
//! stop cleanly on SIGTERM. And the settings file (`mailferry.toml`) with its layers.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use mailferry_testkit::bulk_corpus;
use mailferry_testkit::dovecot::{
    Dovecot, ALICE, ALICE_PASSWORD, BOB, BOB_PASSWORD, USER1, USER1_PASSWORD,
};
use mailferry_testkit::postgres::Postgres;
use serde_json::{json, Value};

use crate::common::{assert_clean_failure, free_port, mailferry, stderr, stdout, wait_until};

const ADMIN: &str = "admin-pw-service-test";

/// Variables of the outer environment that would change what the binary does.
const CLEARED_ENV: [&str; 16] = [
    "MAILFERRY_CONFIG",
    "MAILFERRY_DATA_DIR",
    "MAILFERRY_DATABASE_URL",
    "MAILFERRY_LISTEN",
    "MAILFERRY_WORKERS",
    "MAILFERRY_CONNECTIONS_PER_MIGRATION",
    "MAILFERRY_PER_HOST_CONNECTIONS",
    "MAILFERRY_LEASE_SECONDS",
    "MAILFERRY_POLL_MS",
    "MAILFERRY_TIME_ZONE",
    "MAILFERRY_NO_INSECURE",
    "MAILFERRY_SECRET_KEY",
    "MAILFERRY_ADMIN_PASSWORD",
    "MAILFERRY_LOG",
    "MAILFERRY_PASSWORD",
    "XDG_DATA_HOME",
];

pub(crate) fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailferry"));
    command.args(args).stdin(Stdio::null());
    for key in CLEARED_ENV {
        command.env_remove(key);
    }
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// A `mailferry` process with stdout and stderr in one log file; killed on drop if it is
/// still running (a failed test leaves nothing behind).
pub(crate) struct Process {
    pub(crate) child: Child,
    log: PathBuf,
}

impl Process {
    pub(crate) fn spawn(args: &[&str], env: &[(&str, &str)], log: &Path) -> Process {
        let file = std::fs::File::create(log).unwrap();
        let child = command(args, env)
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the mailferry binary starts");
        Process {
            child,
            log: log.to_path_buf(),
        }
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status within `limit` (None: still running).
    fn terminate(&mut self, limit: Duration) -> Option<ExitStatus> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub(crate) fn assert_stops_cleanly(&mut self, what: &str) {
        let status = self.terminate(Duration::from_secs(15));
        assert!(
            status.is_some_and(|s| s.code() == Some(0)),
            "{what} did not exit 0 within 15 s of SIGTERM ({status:?}); log:\n{}",
            self.log()
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The lab key pair's signing key (docs/): anyone may sign with it; services accept its keys
/// unless given a licence public key of their own.
pub(crate) const LAB_SIGNING_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../docs/licence-lab-signing.key"
);

/// Base64 of 32 random bytes, for MAILFERRY_SECRET_KEY.
fn random_key() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = uuid::Uuid::new_v4().as_bytes().to_vec();
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A small blocking client for the API.
struct Api {
    base: String,
    client: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Api {
    fn new(port: u16) -> Api {
        Api {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// (status, JSON body); status 0 when nothing answers.
    fn request(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> (u16, Value) {
        self.runtime.block_on(async {
            let mut request = self
                .client
                .request(method, format!("{}{path}", self.base))
                .basic_auth("admin", Some(ADMIN));
            if let Some(body) = body {
                request = request.json(body);
            }
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    (status, response.json().await.unwrap_or(Value::Null))
                }
                Err(_) => (0, Value::Null),
            }
        })
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, path, None)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.request(reqwest::Method::POST, path, Some(body))
    }

    /// Waits until `/api/v1/info` answers 200 and returns it.
    fn wait_ready(&self, process: &mut Process) -> Value {
        let started = Instant::now();
        loop {
            let (status, info) = self.get("/api/v1/info");
            if status == 200 {
                return info;
            }
            if let Some(status) = process.child.try_wait().unwrap() {
                panic!(
                    "serve exited ({status}) before answering:\n{}",
                    process.log()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "serve did not answer on {} within 30 s:\n{}",
                self.base,
                process.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn serve_and_a_separate_worker_share_postgres_and_both_run_migrations() {
    let postgres = Postgres::start().unwrap();
    let source = Dovecot::start().unwrap();
    let target = Dovecot::start().unwrap();
    let users = [
        (USER1, USER1_PASSWORD, 11),
        (ALICE, ALICE_PASSWORD, 12),
        (BOB, BOB_PASSWORD, 13),
    ];
    let mut expected = Vec::new();
    for (user, password, seed) in users {
        let corpus = bulk_corpus(seed, 400, 3);
        source.fill(user, password, &corpus).unwrap();
        expected.push(corpus.message_count() as u64);
    }

    let dirs = tempfile::tempdir().unwrap();
    let (d1, d2) = (dirs.path().join("d1"), dirs.path().join("d2"));
    let key = random_key();
    let url = postgres.url();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = [
        ("MAILFERRY_SECRET_KEY", key.as_str()),
        ("MAILFERRY_ADMIN_PASSWORD", ADMIN),
    ];
    let mut serve = Process::spawn(
        &[
            "-v",
            "serve",
            "--database-url",
            &url,
            "--data-dir",
            d1.to_str().unwrap(),
            "--listen",
            &listen,
            "--workers",
            "1",
            "--poll-ms",
            "100",
        ],
        &env,
        &dirs.path().join("serve.log"),
    );
    let api = Api::new(port);
    api.wait_ready(&mut serve);
    // The worker gets the key but not the admin password: it needs no login.
    let mut worker = Process::spawn(
        &[
            "-v",
            "worker",
            "--database-url",
            &url,
            "--data-dir",
            d2.to_str().unwrap(),
            "--workers",
            "2",
            "--poll-ms",
            "100",
        ],
        &env[..1],
        &dirs.path().join("worker.log"),
    );
    assert!(
        wait_until(Duration::from_secs(20), || worker
            .log()
            .contains("mailferry worker: 2 workers")),
        "the worker did not start:\n{}",
        worker.log()
    );
    assert!(
        !d2.join("secret.key").exists(),
        "the worker uses MAILFERRY_SECRET_KEY, not a key file of its own"
    );

    // All three are due at the same moment: the service's single worker can take only one
    // of them, so the worker process runs at least one.
    let start = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_secs(6))
        .unwrap()
        .to_string();
    // Three migrations: more than the free two. A lab-signed key for 10 more.
    let key = mailferry(
        &[
            "licence",
            "issue",
            "--count",
            "10",
            "--to",
            "tests",
            "--signing-key",
            LAB_SIGNING_KEY,
        ],
        &[],
    );
    assert!(key.status.success(), "{}", stderr(&key));
    let (status, added) = api.post("/api/v1/licences", &json!({ "key": stdout(&key).trim() }));
    assert_eq!(status, 201, "{added}");
    let mut ids = Vec::new();
    for (user, password, _) in users {
        let body = json!({
            "source.type": "imap", "source.email": format!("{user}@old.example"),
            "source.username": user, "source.password": password,
            "source.server": format!("imap://127.0.0.1:{}", source.imap_port()), "source.insecure": true,
            "target.type": "imap", "target.email": format!("{user}@new.example"),
            "target.username": user, "target.password": password,
            "target.server": format!("imap://127.0.0.1:{}", target.imap_port()), "target.insecure": true,
            "startdate": start,
        });
        let (status, created) = api.post("/api/v1/migrations", &body);
        assert_eq!(status, 201, "{created}\n{}", serve.log());
        ids.push(created["id"].as_str().unwrap().to_string());
    }

    for (id, count) in ids.iter().zip(&expected) {
        let path = format!("/api/v1/migrations/{id}");
        let mut last = Value::Null;
        let done = wait_until(Duration::from_secs(180), || {
            last = api.get(&path).1;
            last["state"] == "done" || last["state"] == "failed"
        });
        assert!(
            done && last["state"] == "done",
            "migration {id} did not finish: {last}\nserve:\n{}\nworker:\n{}",
            serve.log(),
            worker.log()
        );
        assert_eq!(
            last["progress"]["messages_copied"].as_u64(),
            Some(*count),
            "{last}"
        );
    }

    let ran_by = |log: &str| -> Vec<String> {
        ids.iter()
            .filter(|id| {
                log.lines()
                    .any(|line| line.contains("pass starts") && line.contains(id.as_str()))
            })
            .cloned()
            .collect()
    };
    let (by_serve, by_worker) = (ran_by(&serve.log()), ran_by(&worker.log()));
    assert!(
        !by_worker.is_empty(),
        "the worker process ran none of {ids:?} (serve ran {by_serve:?}):\n{}",
        worker.log()
    );
    let mut all: Vec<String> = by_serve.iter().chain(&by_worker).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        ids.len(),
        "serve {by_serve:?}, worker {by_worker:?}"
    );

    for (user, password, _) in users {
        let verify = command(
            &[
                "verify",
                "--from",
                &format!("imap://{user}@127.0.0.1:{}", source.imap_port()),
                "--to",
                &format!("imap://{user}@127.0.0.1:{}", target.imap_port()),
                "--insecure",
            ],
            &[
                ("MAILFERRY_FROM_PASSWORD", password),
                ("MAILFERRY_TO_PASSWORD", password),
            ],
        )
        .output()
        .unwrap();
        assert!(
            verify.status.success(),
            "verify {user}: {}\n{}",
            stdout(&verify),
            stderr(&verify)
        );
    }

    worker.assert_stops_cleanly("mailferry worker");
    serve.assert_stops_cleanly("mailferry serve");
}

#[test]
fn worker_without_database_url_fails_naming_the_flag() {
    let data = tempfile::tempdir().unwrap();
    let output = command(
        &["worker", "--data-dir", data.path().to_str().unwrap()],
        &[],
    )
    .output()
    .unwrap();
    assert_clean_failure(&output, &["--database-url"]);
}

#[test]
fn settings_file_in_the_data_dir_is_read_under_env_and_flags() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let file = data.path().join("mailferry.toml");
    let port = free_port();
    std::fs::write(
        &file,
        format!(
            "# settings\nlisten = \"127.0.0.1:{port}\"\ntime_zone = \"Europe/Berlin\"\n\
             poll_ms = 100\ncolour = \"blue\"\n"
        ),
    )
    .unwrap();
    let admin = [("MAILFERRY_ADMIN_PASSWORD", ADMIN)];

    // The file alone: its port and zone, and a warning about the unknown key.
    let mut serve = Process::spawn(
        &["serve", "--data-dir", dir],
        &admin,
        &data.path().join("serve1.log"),
    );
    let info = Api::new(port).wait_ready(&mut serve);
    assert_eq!(info["time_zone"], "Europe/Berlin", "{info}");
    let log = serve.log();
    let warning = log
        .lines()
        .find(|line| line.contains("warning") && line.contains("`colour`"))
        .unwrap_or_else(|| panic!("no warning about `colour`:\n{log}"));
    assert!(warning.contains(file.to_str().unwrap()), "{warning}");
    assert!(warning.contains("line 5"), "{warning}");
    serve.assert_stops_cleanly("serve with the file");

    // Flags override the file.
    let other = free_port();
    let mut serve = Process::spawn(
        &[
            "serve",
            "--data-dir",
            dir,
            "--listen",
            &format!("127.0.0.1:{other}"),
            "--time-zone",
            "America/New_York",
        ],
        &admin,
        &data.path().join("serve2.log"),
    );
    let info = Api::new(other).wait_ready(&mut serve);
    assert_eq!(info["time_zone"], "America/New_York", "{info}");
    assert_eq!(
        Api::new(port).get("/api/v1/info").0,
        0,
        "not on the file's port"
    );
    serve.assert_stops_cleanly("serve with flags");

    // The environment overrides the file too; the file still gives the port.
    let mut serve = Process::spawn(
        &["serve", "--data-dir", dir],
        &[admin[0], ("MAILFERRY_TIME_ZONE", "Asia/Tokyo")],
        &data.path().join("serve3.log"),
    );
    let info = Api::new(port).wait_ready(&mut serve);
    assert_eq!(info["time_zone"], "Asia/Tokyo", "{info}");
    serve.assert_stops_cleanly("serve with the environment");
}

#[test]
fn settings_file_with_a_wrong_type_fails_naming_key_file_and_line() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("elsewhere.toml");
    std::fs::write(&file, "time_zone = \"UTC\"\nworkers = \"two\"\n").unwrap();
    let output = command(
        &[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--data-dir",
            data.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[("MAILFERRY_ADMIN_PASSWORD", ADMIN)],
    )
    .output()
    .unwrap();
    assert_clean_failure(&output, &["`workers`", file.to_str().unwrap(), "line 2"]);

    // A --config that does not exist is an error, not silently skipped.
    let missing = data.path().join("missing.toml");
    let output = command(&["worker", "--config", missing.to_str().unwrap()], &[])
        .output()
        .unwrap();
    assert_clean_failure(&output, &[missing.to_str().unwrap()]);
}
