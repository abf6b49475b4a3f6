//! `mailferry doctor`: what an admin runs when the service misbehaves, or before starting
//! it: the data directory, the database and its schema, the sealing key and whether it opens
//! the stored credentials, and the mail servers of the migrations waiting or running. Each
//! line says `ok`, `warning` or `problem`, a problem with what to do; nothing is changed
//! (the database is only read: a schema upgrade is left to `serve`). Exit 0 without
//! problems, 1 with.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use mailferry_imap::{Session, SessionOptions};
use mailferry_service::Sealer;
use mailferry_store::{MigrationState, Store};

use super::serve::{data_dir, layer_file, DataArgs};

/// Check a data directory, its database, its key and the servers it will talk to.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Seconds to wait for each mail server.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub timeout: u64,
}

#[derive(Default)]
struct Findings {
    problems: usize,
    warnings: usize,
}

impl Findings {
    fn ok(&self, what: impl std::fmt::Display) {
        println!("ok: {what}");
    }
    fn warn(&mut self, what: impl std::fmt::Display) {
        self.warnings += 1;
        println!("warning: {what}");
    }
    fn problem(&mut self, what: impl std::fmt::Display, todo: &str) {
        self.problems += 1;
        println!("problem: {what}\n    what to do: {todo}");
    }
}

pub async fn run(mut args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut found = Findings::default();
    if let Err(e) = layer_file(&mut args.data, None, None) {
        found.problem(
            format!("the settings file cannot be read: {e:#}"),
            "fix the file (flat TOML, keys as in `mailferry serve --help`)",
        );
    }
    let dir = data_dir(&args.data)?;
    check_dir(&dir, &mut found);
    let sealer = check_key(&dir, &mut found);
    let url = match &args.data.database_url {
        Some(url) => url.clone(),
        None => format!("sqlite://{}", dir.join("mailferry.sqlite").display()),
    };
    if let Some(store) = check_database(&url, &dir, &mut found).await {
        check_migrations(&store, sealer.as_ref(), args.timeout, &mut found).await;
    }
    println!(
        "\n{} problem(s), {} warning(s)",
        found.problems, found.warnings
    );
    Ok(if found.problems == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check_dir(dir: &Path, found: &mut Findings) {
    if !dir.is_dir() {
        found.problem(
            format!("the data directory `{}` does not exist", dir.display()),
            "start `mailferry serve` once (it creates it), or point --data-dir at the right one",
        );
        return;
    }
    let probe = dir.join(".mailferry-doctor");
    match std::fs::write(&probe, b"") {
        Ok(()) => {
            let _ = std::fs::remove_file(&probe);
            found.ok(format!("data directory `{}` is writable", dir.display()));
        }
        Err(e) => found.problem(
            format!(
                "the data directory `{}` is not writable: {e}",
                dir.display()
            ),
            "run as the service's user (`sudo -u mailferry mailferry doctor`), or fix the owner",
        ),
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(dir) {
            if meta.permissions().mode() & 0o077 != 0 {
                found.warn(format!(
                    "the data directory `{}` can be read by other users (mode {:o}): `chmod 700` it",
                    dir.display(),
                    meta.permissions().mode() & 0o777
                ));
            }
        }
    }
}

fn check_key(dir: &Path, found: &mut Findings) -> Option<Sealer> {
    let path = dir.join("secret.key");
    if std::env::var_os("MAILFERRY_SECRET_KEY").is_none() && !path.exists() {
        found.warn(format!(
            "no sealing key at `{}` and MAILFERRY_SECRET_KEY is not set: `serve` creates one; stored credentials sealed with another key would not open",
            path.display()
        ));
        return None;
    }
    #[cfg(unix)]
    if std::env::var_os("MAILFERRY_SECRET_KEY").is_none() {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.permissions().mode() & 0o077 != 0 {
                found.problem(
                    format!(
                        "the sealing key `{}` can be read by other users (mode {:o})",
                        path.display(),
                        meta.permissions().mode() & 0o777
                    ),
                    "`chmod 600` it: whoever reads it can open every stored password",
                );
            }
        }
    }
    match Sealer::load_or_create(&path) {
        Ok(sealer) => {
            found.ok("the sealing key loads");
            Some(sealer)
        }
        Err(e) => {
            found.problem(
                format!("the sealing key cannot be used: {e}"),
                "restore the key file from a backup (32 bytes, base64); without it stored credentials cannot be opened",
            );
            None
        }
    }
}

async fn check_database(url: &str, dir: &Path, found: &mut Findings) -> Option<Store> {
    let shown = mailferry_store::redact(url);
    if url.starts_with("sqlite://") && !dir.join("mailferry.sqlite").exists() {
        found.warn(format!(
            "no database yet at {shown}: `serve` creates it at its first start"
        ));
        return None;
    }
    let known = i64::from(Store::latest_schema_version());
    match Store::peek_schema_version(url).await {
        Err(e) => {
            found.problem(
                format!("the database {shown} cannot be opened: {e}"),
                "check --database-url (host, user, password, database name) and that the database server runs",
            );
            None
        }
        Ok(None) => {
            found.warn(format!(
                "the database {shown} has no schema yet: `serve` creates it"
            ));
            None
        }
        Ok(Some(version)) if version > known => {
            found.problem(
                format!("the database {shown} is at schema version {version}, newer than this mailferry knows ({known})"),
                "run the mailferry release that wrote it, or a newer one",
            );
            None
        }
        Ok(Some(version)) if version < known => {
            found.warn(format!(
                "the database {shown} is at schema version {version}; `serve` or `worker` upgrades it to {known} at start (take a backup first)"
            ));
            None
        }
        Ok(Some(version)) => {
            found.ok(format!("database {shown}, schema version {version}"));
            match Store::connect(url).await {
                Ok(store) => Some(store),
                Err(e) => {
                    found.problem(
                        format!("the database {shown} cannot be opened: {e}"),
                        "check that no other program holds it locked",
                    );
                    None
                }
            }
        }
    }
}

async fn check_migrations(
    store: &Store,
    sealer: Option<&Sealer>,
    timeout: u64,
    found: &mut Findings,
) {
    let active = [
        MigrationState::Waiting,
        MigrationState::Transferring,
        MigrationState::WaitingResync,
        MigrationState::Resyncing,
    ];
    let records = match store.list_migrations(Some(&active)).await {
        Ok(records) => records,
        Err(e) => {
            found.problem(
                format!("the migrations cannot be read: {e}"),
                "check the database",
            );
            return;
        }
    };
    found.ok(format!("{} migrations waiting or running", records.len()));
    // Credentials: each active migration's must open with this key.
    if let Some(sealer) = sealer {
        let mut unopened = Vec::new();
        for record in &records {
            let secrets = store.secrets(&record.id).await.unwrap_or_default();
            let opens = secrets.len() == 2
                && secrets.iter().all(|(side, sealed)| {
                    sealer
                        .open(sealed, &format!("{}/{side}", record.id))
                        .is_ok()
                });
            if !opens {
                unopened.push(record.id.clone());
            }
        }
        if unopened.is_empty() {
            found.ok(
                "the stored credentials of every waiting or running migration open with this key",
            );
        } else {
            found.problem(
                format!(
                    "{} migrations have credentials this key cannot open (or none stored): {}",
                    unopened.len(),
                    unopened.join(", ")
                ),
                "use the key they were sealed with (MAILFERRY_SECRET_KEY or secret.key from a backup), or cancel them and submit them again",
            );
        }
    }
    // Servers: every distinct mail server once, TCP and TLS, no login.
    let mut servers: Vec<(String, String, bool)> = Vec::new();
    for record in &records {
        for side in [&record.source, &record.target].into_iter().flatten() {
            let key = (side.server_type.clone(), side.server.clone(), side.insecure);
            if !servers.contains(&key) {
                servers.push(key);
            }
        }
    }
    let options = SessionOptions {
        timeout: Duration::from_secs(timeout),
        ..SessionOptions::default()
    };
    for (kind, server, insecure) in servers {
        let endpoint =
            match mailferry_engine::account::mail_endpoint(&kind, &server, insecure) {
                Ok(endpoint) => endpoint,
                Err(p) => {
                    found.problem(
                    format!("the server `{server}` ({kind}) cannot be used: {}", p.message),
                    "cancel the migrations that name it and submit them again with a usable server",
                );
                    continue;
                }
            };
        match Session::connect(&endpoint, options.clone()).await {
            Ok(session) => {
                let tls = if session.is_tls() { "TLS" } else { "no TLS" };
                found.ok(format!("mail server {} answers ({tls})", endpoint.addr()));
                session.logout().await;
            }
            Err(e) => found.problem(
                format!("the mail server {} cannot be reached: {e}", endpoint.addr()),
                &e.hint().unwrap_or_else(|| {
                    "check the address, the port and the firewall between this machine and the server".into()
                }),
            ),
        }
    }
}
