//! Puts the commit the binary was built from into `mailferry --version`:
//! `MAILFERRY_COMMIT` from the environment (package builds), else `git describe`, else
//! `unknown` (a tarball without .git).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=MAILFERRY_COMMIT");
    // The checkout's HEAD and index: a new commit rebuilds the version.
    for path in ["../../.git/HEAD", "../../.git/index"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = std::env::var("MAILFERRY_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["describe", "--always", "--dirty", "--abbrev=12"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
                .filter(|c| !c.is_empty())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MAILFERRY_COMMIT={commit}");
}
