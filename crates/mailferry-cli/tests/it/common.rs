//! Running the binary and checking what it printed.

use std::process::{Command, Output};

/// Runs `mailferry` with `args` and extra environment; stdin is closed so nothing prompts.
pub fn mailferry(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mailferry"));
    command
        .args(args)
        .stdin(std::process::Stdio::null())
        .env_remove("MAILFERRY_PASSWORD");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("the mailferry binary runs")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The failure must be one clear report: an `error:` line, no panic, no debug dump.
pub fn assert_clean_failure(output: &Output, must_say: &[&str]) {
    let err = stderr(output);
    assert!(
        !output.status.success(),
        "expected failure, got success; stderr: {err}"
    );
    assert_eq!(output.status.code(), Some(1), "exit code; stderr: {err}");
    assert!(
        err.starts_with("error: "),
        "stderr must start with `error: `: {err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
        "a panic: {err}"
    );
    for needle in must_say {
        assert!(err.contains(needle), "stderr lacks `{needle}`: {err}");
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 100 ms until it holds or `limit` has passed; whether it held.
pub fn wait_until(limit: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}
