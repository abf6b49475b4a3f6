//! Issue 17: the .deb as an admin installs it, as far as this machine allows: built by
//! packaging/build-deb.sh from the binary under test, unpacked by dpkg into an empty
//! directory root with its own package database (the maintainer scripts, which create a
//! system user, are checked for syntax, not run), then the systemd unit's own command
//! started from that root: it answers /healthz, logs JSON, and stops cleanly on SIGTERM.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{free_port, wait_until};

fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn the_deb_unpacks_into_a_clean_root_and_its_unit_command_serves() {
    assert!(have("dpkg-deb"), "dpkg-deb is needed (Debian's dpkg)");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let work = tempfile::tempdir().unwrap();
    let deb = run(Command::new(repo.join("packaging/build-deb.sh"))
        .args(["--binary", env!("CARGO_BIN_EXE_mailferry"), "--out"])
        .arg(work.path()));
    let deb = deb.trim();
    let info = run(Command::new("dpkg-deb").args(["-I", deb]));
    for field in [
        "Package: mailferry",
        "Depends: libc6 (>= 2.31), adduser",
        "Section: mail",
    ] {
        assert!(info.contains(field), "{field}: {info}");
    }
    let contents = run(Command::new("dpkg-deb").args(["-c", deb]));
    for path in [
        "./usr/bin/mailferry",
        "./lib/systemd/system/mailferry.service",
        "./etc/mailferry/mailferry.toml",
        "./usr/share/man/man1/mailferry.1.gz",
        "./usr/share/man/man1/mailferry-migrate.1.gz",
        "./usr/share/bash-completion/completions/mailferry",
        "./usr/share/zsh/vendor-completions/_mailferry",
        "./usr/share/fish/vendor_completions.d/mailferry.fish",
    ] {
        assert!(contents.contains(path), "{path} missing:\n{contents}");
    }
    for script in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh")
            .arg("-n")
            .arg(repo.join("packaging/debian").join(script)));
    }

    // Install into an empty root with its own dpkg database.
    let root = work.path().join("root");
    let admin = root.join("var/lib/dpkg");
    std::fs::create_dir_all(admin.join("updates")).unwrap();
    std::fs::create_dir_all(admin.join("info")).unwrap();
    std::fs::write(admin.join("status"), "").unwrap();
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .arg(format!("--admindir={}", admin.display()))
        .args([
            "--force-depends",
            "--force-not-root",
            "--force-script-chrootless",
            "--unpack",
            deb,
        ]));
    let status = run(Command::new("dpkg-query")
        .arg(format!("--admindir={}", admin.display()))
        .args(["-W", "-f=${Status} ${Version}", "mailferry"]));
    assert_eq!(status, "install ok unpacked 0.1.0");
    let conffiles = std::fs::read_to_string(admin.join("info/mailferry.conffiles")).unwrap();
    assert!(
        conffiles.contains("/etc/mailferry/mailferry.toml"),
        "{conffiles}"
    );
    // What `dpkg --configure` does before postinst (which is not run here: it would add a
    // system user to this machine): the unpacked conffile takes its place.
    let settings = root.join("etc/mailferry/mailferry.toml");
    std::fs::rename(settings.with_extension("toml.dpkg-new"), &settings).unwrap();
    let binary = root.join("usr/bin/mailferry");
    let version = run(Command::new(&binary).arg("--version"));
    assert!(version.starts_with("mailferry 0.1.0 ("), "{version}");
    assert!(
        !version.contains("(unknown)"),
        "the commit is in the version: {version}"
    );
    let bash =
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/mailferry"))
            .unwrap();
    assert!(
        bash.contains("migrate") && bash.contains("--no-filters"),
        "bash completion"
    );

    // The unit: its own user, its data directory, hardening, and the command it starts.
    let unit = std::fs::read_to_string(root.join("lib/systemd/system/mailferry.service")).unwrap();
    for line in [
        "User=mailferry",
        "StateDirectory=mailferry",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/mailferry",
        "CapabilityBoundingSet=",
        "KillSignal=SIGTERM",
    ] {
        assert!(
            unit.lines().any(|l| l == line),
            "{line} missing from the unit"
        );
    }
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    let environment: Vec<(String, String)> = unit
        .lines()
        .filter_map(|l| l.strip_prefix("Environment="))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let data = work.path().join("var-lib-mailferry");
    let words: Vec<String> = exec
        .split_whitespace()
        .map(|word| match word {
            "/usr/bin/mailferry" => binary.display().to_string(),
            "/var/lib/mailferry" => data.display().to_string(),
            w if w.starts_with("/etc/") => root.join(&w[1..]).display().to_string(),
            w => w.to_string(),
        })
        .collect();
    let port = free_port();
    let log = work.path().join("serve.log");
    let output = std::fs::File::create(&log).unwrap();
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .envs(environment)
        // The unit's settings file says 127.0.0.1:8080; the environment outranks it.
        .env("MAILFERRY_LISTEN", format!("127.0.0.1:{port}"))
        .env_remove("MAILFERRY_DATA_DIR")
        .env_remove("MAILFERRY_DATABASE_URL")
        .stdout(output.try_clone().unwrap())
        .stderr(output)
        .spawn()
        .unwrap();
    let healthy = wait_until(Duration::from_secs(30), || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(|mut s| {
                use std::io::{Read, Write};
                let _ = s.write_all(b"GET /healthz HTTP/1.0\r\n\r\n");
                let mut answer = String::new();
                let _ = s.read_to_string(&mut answer);
                answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
            })
            .unwrap_or(false)
    });
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        healthy,
        "the unit's command did not answer /healthz:\n{text}"
    );
    assert!(data.join("mailferry.sqlite").exists() && data.join("secret.key").exists());
    // JSON logs, as the unit asks: every log line is one JSON object.
    let json_lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    assert!(!json_lines.is_empty(), "no JSON log line:\n{text}");
    for line in &json_lines {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    }
    run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let started = Instant::now();
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        code.success(),
        "serve exited {code} on SIGTERM:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}
