//! The places test servers run in: their directories' modes, the commands that set them up,
//! their logs, and free loopback ports. Shared by the Dovecot, PostgreSQL and browser
//! harnesses.

use std::collections::HashSet;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;

use crate::error::TestkitError;

pub(crate) fn run_checked(command: &mut Command) -> Result<(), TestkitError> {
    let rendered = format!("{command:?}").replace('"', "");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|error| TestkitError::Command {
            command: rendered.clone(),
            detail: error.to_string(),
        })?;
    if output.status.success() {
        return Ok(());
    }
    Err(TestkitError::Command {
        command: rendered,
        detail: describe_failure(output.status, &output.stderr),
    })
}

pub(crate) fn io_error(action: &'static str, path: &Path, source: io::Error) -> TestkitError {
    TestkitError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), TestkitError> {
    let current = fs::metadata(path)
        .map_err(|source| io_error("inspect", path, source))?
        .permissions()
        .mode();
    if current & 0o7777 == mode {
        return Ok(());
    }
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|source| io_error("change the mode of", path, source))
}

/// The last `lines` lines of a file (at most its last 64 KiB), empty if unreadable.
pub(crate) fn tail_lines(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(64 * 1024)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

pub(crate) fn describe_failure(status: ExitStatus, stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    format!("{status}: {}", stderr.trim())
}

/// Ports handed out in this process, so that two servers starting at once differ.
static RESERVED_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port that was free a moment ago and that no other caller in this process got.
pub(crate) fn free_port() -> Result<u16, TestkitError> {
    let mut reserved = RESERVED_PORTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let reserved = reserved.get_or_insert_with(HashSet::new);
    let mut listeners = Vec::new();
    loop {
        let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(TestkitError::NoFreePort)?;
        let port = listener
            .local_addr()
            .map_err(TestkitError::NoFreePort)?
            .port();
        if reserved.insert(port) {
            return Ok(port);
        }
        listeners.push(listener);
    }
}
