//! A throw-away PostgreSQL 15 cluster on loopback, one per test, stopped on drop.
//!
//! The recipe is the verified one in `/work/shared/test-servers/README.md` ("PostgreSQL
//! 15"): `initdb` and `pg_ctl` from `/usr/lib/postgresql/15/bin`, run as the system user
//! `postgres` (through `runuser` when we are root) in a directory of its own under
//! `/tmp/mailferry-testkit`, listening on a free port of 127.0.0.1 with `trust`
//! authentication and `fsync=off`, with the database [`DATABASE`] created.
//!
//! ```no_run
//! use mailferry_testkit::Postgres;
//!
//! let server = Postgres::start()?;
//! println!("{}", server.url()); // postgres://postgres@127.0.0.1:PORT/mailferry
//! assert_eq!(server.psql("select 1")?, "1");
//! # Ok::<(), mailferry_testkit::TestkitError>(())
//! ```

use crate::sandbox::{free_port, io_error, run_checked, set_mode, tail_lines};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::TestkitError;

/// The database every instance has.
pub const DATABASE: &str = "mailferry";
/// The superuser (no password: `trust` authentication on loopback).
pub const POSTGRES_USER: &str = "postgres";

/// Where Debian's `postgresql-15` puts the server programs.
const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// Where instance directories live; every parent must be searchable by `postgres`.
const ROOT_DIR: &str = "/tmp/mailferry-testkit";
/// Set to `1` to keep each instance's directory after drop.
const KEEP_ENV: &str = "MAILFERRY_KEEP_SERVERS";
/// `pg_ctl -t`: seconds to wait for start and stop.
const PG_CTL_TIMEOUT: &str = "30";
/// Attempts with fresh ports when another process took ours first.
const START_ATTEMPTS: u32 = 3;

/// A running PostgreSQL 15 on 127.0.0.1 with the database [`DATABASE`]. Dropping it stops
/// the server (`pg_ctl -m fast stop`) and removes its directory unless
/// `MAILFERRY_KEEP_SERVERS=1`.
#[derive(Debug)]
pub struct Postgres {
    /// `None` once the directory has been handed over to `MAILFERRY_KEEP_SERVERS`.
    temp_dir: Option<tempfile::TempDir>,
    dir: PathBuf,
    port: u16,
    /// Run the server programs as `postgres` through `runuser` (we are root).
    as_postgres: bool,
    running: bool,
}

impl Postgres {
    /// Initialises a cluster, starts it and creates [`DATABASE`]; returns once it accepts
    /// connections (about a second).
    pub fn start() -> Result<Self, TestkitError> {
        let bin = Path::new(BIN_DIR);
        for program in ["initdb", "pg_ctl", "createdb", "psql"] {
            let path = bin.join(program);
            if !path.is_file() {
                return Err(TestkitError::PostgresNotInstalled { missing: path });
            }
        }
        let as_postgres = running_as_root();
        if as_postgres {
            ensure_postgres_user()?;
        }

        let root = Path::new(ROOT_DIR);
        fs::create_dir_all(root).map_err(|source| io_error("create", root, source))?;
        set_mode(root, 0o755)?;
        let temp_dir = tempfile::Builder::new()
            .prefix("postgres-")
            .tempdir_in(root)
            .map_err(|source| io_error("create a directory in", root, source))?;
        let dir = temp_dir.path().to_path_buf();
        set_mode(&dir, 0o755)?;
        let socket_dir = dir.join("sock");
        fs::create_dir(&socket_dir).map_err(|source| io_error("create", &socket_dir, source))?;
        if as_postgres {
            run_checked(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{POSTGRES_USER}:{POSTGRES_USER}"))
                    .arg(&dir),
            )?;
        }

        let mut server = Postgres {
            temp_dir: Some(temp_dir),
            dir,
            port: 0,
            as_postgres,
            running: false,
        };
        server.initdb()?;
        let mut attempt = 1;
        loop {
            server.port = free_port()?;
            match server.pg_ctl_start() {
                Ok(()) => break,
                Err(_)
                    if attempt < START_ATTEMPTS
                        && tail_lines(&server.dir.join("postgres.log"), 30)
                            .contains("Address already in use") =>
                {
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
        server.running = true;
        server.create_database(DATABASE)?;
        Ok(server)
    }

    /// `postgres://postgres@127.0.0.1:PORT/mailferry`.
    pub fn url(&self) -> String {
        self.url_for(DATABASE)
    }

    /// The URL of another database of this server (see [`Postgres::create_database`]).
    pub fn url_for(&self, database: &str) -> String {
        format!(
            "postgres://{POSTGRES_USER}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The instance directory: `data/`, `sock/`, `postgres.log`, ...
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Creates another database (`createdb`).
    pub fn create_database(&self, name: &str) -> Result<(), TestkitError> {
        run_checked(
            Command::new(Path::new(BIN_DIR).join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
                .args(["-U", POSTGRES_USER, name]),
        )
    }

    /// Runs `sql` in [`DATABASE`] with `psql` (not through sqlx, so that tests check the
    /// code under test against something else); returns its unaligned, tuples-only output,
    /// trimmed: `"1"` for `select 1`.
    pub fn psql(&self, sql: &str) -> Result<String, TestkitError> {
        let mut command = Command::new(Path::new(BIN_DIR).join("psql"));
        command
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.url())
            .arg("-c")
            .arg(sql);
        let rendered = format!("psql -c {sql:?}");
        let output =
            command
                .stdin(Stdio::null())
                .output()
                .map_err(|error| TestkitError::Command {
                    command: rendered.clone(),
                    detail: error.to_string(),
                })?;
        if !output.status.success() {
            return Err(TestkitError::Command {
                command: rendered,
                detail: format!(
                    "{}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    }

    fn initdb(&self) -> Result<(), TestkitError> {
        let data = self.dir.join("data");
        let status = self
            .server_command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", POSTGRES_USER, "--auth=trust", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"])
            .stdout(self.log_file("initdb.log")?)
            .stderr(self.log_file("initdb.log")?)
            .status();
        self.check("initdb", status)
    }

    fn pg_ctl_start(&self) -> Result<(), TestkitError> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off",
            self.port,
            self.dir.join("sock").display()
        );
        // pg_ctl's output goes to a file, not a pipe: the server it starts inherits it
        // and would keep a pipe open forever.
        let status = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(self.dir.join("postgres.log"))
            .args(["-w", "-t", PG_CTL_TIMEOUT, "-o", &options, "start"])
            .stdout(self.log_file("pg_ctl.log")?)
            .stderr(self.log_file("pg_ctl.log")?)
            .status();
        self.check("pg_ctl start", status)
    }

    fn check(
        &self,
        what: &str,
        status: io::Result<std::process::ExitStatus>,
    ) -> Result<(), TestkitError> {
        let reason = match status {
            Ok(status) if status.success() => return Ok(()),
            Ok(status) => format!("`{what}` failed ({status})"),
            Err(error) => format!("cannot run `{what}`: {error}"),
        };
        Err(TestkitError::PostgresStart {
            dir: self.dir.clone(),
            reason,
            log_tail: self.log_tail(),
        })
    }

    /// A server program, as `postgres` when we are root, in the instance directory (the
    /// `postgres` user may not be able to enter the current one).
    fn server_command(&self, program: &str) -> Command {
        let path = Path::new(BIN_DIR).join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", POSTGRES_USER, "--"]).arg(path);
            command
        } else {
            Command::new(path)
        };
        command.current_dir(&self.dir).stdin(Stdio::null());
        command
    }

    fn log_file(&self, name: &str) -> Result<fs::File, TestkitError> {
        let path = self.dir.join(name);
        fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|source| io_error("create", &path, source))
    }

    fn log_tail(&self) -> String {
        let mut out = String::new();
        for name in ["initdb.log", "pg_ctl.log", "postgres.log"] {
            let tail = tail_lines(&self.dir.join(name), 30);
            if !tail.is_empty() {
                let _ = writeln!(out, "{name}:\n{tail}");
            }
        }
        if out.is_empty() {
            out.push_str("(all logs are empty)");
        }
        out
    }

    fn stop(&mut self) {
        if !std::mem::take(&mut self.running) {
            return;
        }
        let stopped = self
            .server_command("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "-t", PG_CTL_TIMEOUT, "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !stopped {
            // The first line of postmaster.pid is the postmaster's pid.
            let pid_file = self.dir.join("data").join("postmaster.pid");
            if let Some(pid) = fs::read_to_string(pid_file)
                .ok()
                .and_then(|text| text.lines().next()?.trim().parse::<u32>().ok())
            {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        if std::env::var(KEEP_ENV).is_ok_and(|value| value == "1") {
            if let Some(temp_dir) = self.temp_dir.take() {
                let kept = temp_dir.keep();
                eprintln!(
                    "mailferry-testkit: kept postgres directory {}",
                    kept.display()
                );
            }
        }
        // Otherwise dropping `temp_dir` removes the directory.
    }
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

fn ensure_postgres_user() -> Result<(), TestkitError> {
    let exists = Command::new("id")
        .args(["-u", POSTGRES_USER])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if exists {
        Ok(())
    } else {
        Err(TestkitError::Command {
            command: format!("id -u {POSTGRES_USER}"),
            detail: "the system user `postgres` does not exist: run scripts/install-test-deps.sh \
                     (Debian package postgresql-15 creates it)"
                .to_string(),
        })
    }
}
