//! The places test servers run in: their directories' modes, the commands that set them up,
//! and their logs. Shared by the Dovecot and PostgreSQL harnesses.

use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};

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
