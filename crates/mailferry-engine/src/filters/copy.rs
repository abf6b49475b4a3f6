//! A filters pass: read every script at the source, write what the target lacks.
//!
//! Per source script, the bytes to store are the script as served with its folder names
//! rewritten ([`super::script`]). Where they go:
//! - a script of the same name on the target with those bytes: present, nothing written;
//! - our own copy from an earlier pass (the state says which name and what was stored),
//!   unchanged there: replaced by the new version; changed there: kept, and said so;
//! - a different script with that name: kept; the copy goes under `name.migrated` (or
//!   `name.migrated-2` ...), unless one of those holds the same bytes already;
//! - else under the source's name.
//!
//! PUTSCRIPT replaces by name, so a crash between the write and its state row is repaired
//! by the next pass finding the same bytes under that name: no state is written ahead.

use sha2::{Digest, Sha256};

use mailferry_sieve::{ScriptEntry, SieveClient, SieveError};
use mailferry_store::{SieveScriptRow, Store};

use super::report::{FiltersReport, ScriptOutcome, ScriptReport};
use super::script::{required_extensions, rewrite_folders};
use super::{FiltersJob, SieveAccount};

/// How long a derived ManageSieve address may take to answer before it counts as absent.
const DERIVED_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Whether connecting failed because nothing usable listens there (refused, dropped by a
/// firewall, no such address, another protocol on the port), not because of a login or TLS
/// problem with a real ManageSieve server.
fn no_managesieve(error: &SieveError) -> bool {
    matches!(
        error,
        SieveError::Resolve { .. }
            | SieveError::Connect { .. }
            | SieveError::NotSieve { .. }
            | SieveError::Closed { .. }
    ) || matches!(error, SieveError::Timeout { during, .. } if !during.contains("TLS"))
}

/// How many `.migrated` names are tried before a script is reported as not stored.
const NEW_NAMES: usize = 20;

/// The names a copy of `name` goes under when a different script holds `name` on the
/// target: `name.migrated`, then `name.migrated-2` ... `name.migrated-20`.
pub(crate) fn migrated_names(name: &str) -> impl Iterator<Item = String> + '_ {
    (1..=NEW_NAMES).map(move |n| match n {
        1 => format!("{name}.migrated"),
        n => format!("{name}.migrated-{n}"),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One side connected and logged in; `Ok(None)` when a derived address refuses the
/// connection (the server has no ManageSieve).
pub(crate) async fn open(
    account: &SieveAccount,
    timeout: std::time::Duration,
) -> Result<Option<SieveClient>, SieveError> {
    // A derived address (the mail host's 4190) is a guess: a firewall that drops it, or
    // another service on that port, means "no ManageSieve here", found out quickly.
    let connect_timeout = if account.derived {
        timeout.min(DERIVED_CONNECT_TIMEOUT)
    } else {
        timeout
    };
    let mut client = match SieveClient::connect(&account.endpoint, connect_timeout).await {
        Ok(client) => client,
        Err(e) if account.derived && no_managesieve(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    client.authenticate(&account.auth).await?;
    Ok(Some(client))
}

/// A ManageSieve error in the report's words: what, and what to do.
pub(crate) fn describe(side: &str, error: &SieveError) -> String {
    format!("{side} ManageSieve: {error} {}", error.hint())
}

/// Every script of one side: (entry, content).
pub(crate) async fn read_all(
    client: &mut SieveClient,
) -> Result<Vec<(ScriptEntry, Vec<u8>)>, SieveError> {
    let mut out = Vec::new();
    for entry in client.list_scripts().await? {
        let content = client.get_script(&entry.name).await?;
        out.push((entry, content));
    }
    Ok(out)
}

/// Runs one filters pass. Never fails as a whole: what went wrong is in the report.
pub async fn copy_filters(job: &FiltersJob, store: &Store) -> FiltersReport {
    let mut report = pass(job, store).await;
    report.counts = report.tally();
    report
}

async fn pass(job: &FiltersJob, store: &Store) -> FiltersReport {
    let mut report = FiltersReport {
        source: job.source.describe(),
        target: job.target.describe(),
        dry_run: job.dry_run,
        ..FiltersReport::default()
    };
    let mut source = match open(&job.source, job.timeout).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            report.skipped = Some(format!(
                "the source has no ManageSieve at {} (nothing answered there): no filters to \
                 copy; give its address with --from-sieve if it listens elsewhere",
                job.source.endpoint.addr()
            ));
            return report;
        }
        Err(e) => {
            report.problems.push(describe("source", &e));
            return report;
        }
    };
    let scripts = match read_all(&mut source).await {
        Ok(scripts) => scripts,
        Err(e) => {
            report.problems.push(describe("source", &e));
            return report;
        }
    };
    let _ = source.logout().await;
    if scripts.is_empty() {
        report.notes.push("the source has no filter scripts".into());
        return report;
    }
    let mut target = match open(&job.target, job.timeout).await {
        Ok(Some(client)) => client,
        Ok(None) => {
            report.problems.push(format!(
                "{} filter scripts not copied: the target has no ManageSieve at {} \
                 (nothing answered there); give its address with --to-sieve, or leave \
                 filters out with --no-filters",
                scripts.len(),
                job.target.endpoint.addr()
            ));
            return report;
        }
        Err(e) => {
            report.problems.push(describe("target", &e));
            return report;
        }
    };
    if let Err(e) = copy_scripts(job, store, &mut target, &scripts, &mut report).await {
        report.problems.push(describe("target", &e));
    }
    let _ = target.logout().await;
    report
}

async fn copy_scripts(
    job: &FiltersJob,
    store: &Store,
    target: &mut SieveClient,
    scripts: &[(ScriptEntry, Vec<u8>)],
    report: &mut FiltersReport,
) -> Result<(), SieveError> {
    // The target's scripts by name, as the SHA-256 of what they hold.
    let mut on_target: Vec<(ScriptEntry, String)> = read_all(target)
        .await?
        .into_iter()
        .map(|(entry, content)| (entry, sha256_hex(&content)))
        .collect();
    let rows = match store.sieve_scripts(&job.id).await {
        Ok(rows) => rows,
        Err(e) => {
            report
                .problems
                .push(format!("cannot read the filters state: {e}"));
            return Ok(());
        }
    };
    let capabilities = target.capabilities().clone();
    for (entry, content) in scripts {
        let rewritten = rewrite_folders(content, &job.rewrite);
        let payload = rewritten.content;
        let hash = sha256_hex(&payload);
        let mut script = ScriptReport {
            source_name: entry.name.clone(),
            target_name: entry.name.clone(),
            bytes: payload.len() as u64,
            active: entry.active,
            rewrites: rewritten.changes,
            ..ScriptReport::default()
        };
        let held = |name: &str| {
            on_target
                .iter()
                .find(|(e, _)| e.name == name)
                .map(|(_, h)| h.clone())
        };
        let row = rows.iter().find(|r| r.source_name == entry.name);
        // Where it goes, and whether a write is needed.
        let write = match row {
            Some(row) => {
                script.target_name.clone_from(&row.target_name);
                match held(&row.target_name) {
                    Some(h) if h == hash => false,
                    Some(h) if h == row.stored_sha256 => {
                        script.outcome = ScriptOutcome::Updated;
                        true
                    }
                    Some(_) => {
                        script.outcome = ScriptOutcome::KeptOnTarget;
                        script.notes.push(format!(
                            "`{}` was changed on the target since it was copied: kept; the \
                             source's newer version was not written",
                            row.target_name
                        ));
                        false
                    }
                    None => true,
                }
            }
            None => match held(&entry.name) {
                None => true,
                Some(h) if h == hash => false,
                Some(_) => {
                    let free = migrated_names(&entry.name).find_map(|name| match held(&name) {
                        None => Some((name, true)),
                        Some(h) if h == hash => Some((name, false)),
                        Some(_) => None,
                    });
                    match free {
                        Some((name, write)) => {
                            script.notes.push(format!(
                                "a different script named `{}` is on the target: kept; the \
                                 source's is stored as `{name}`",
                                entry.name
                            ));
                            script.target_name = name;
                            write
                        }
                        None => {
                            script.outcome = ScriptOutcome::Failed;
                            script.error = Some(format!(
                                "scripts named `{}` and `{0}.migrated` to `{0}.migrated-{NEW_NAMES}` \
                                 are on the target, all different: rename one there and run again",
                                entry.name
                            ));
                            report.scripts.push(script);
                            continue;
                        }
                    }
                }
            },
        };
        if !write {
            if script.outcome != ScriptOutcome::KeptOnTarget {
                script.outcome = ScriptOutcome::Present;
            }
            save(store, job, &script, &hash, report).await;
            report.scripts.push(script);
            continue;
        }
        if job.dry_run {
            script.outcome = ScriptOutcome::Planned;
            report.scripts.push(script);
            continue;
        }
        match target.put_script(&script.target_name, &payload).await? {
            Ok(warnings) => {
                if script.outcome != ScriptOutcome::Updated {
                    script.outcome = ScriptOutcome::Copied;
                }
                if let Some(warnings) = warnings.filter(|w| !w.trim().is_empty()) {
                    script
                        .notes
                        .push(format!("the target warned: {}", warnings.trim()));
                }
                save(store, job, &script, &hash, report).await;
                let was_active = on_target
                    .iter()
                    .any(|(e, _)| e.name == script.target_name && e.active);
                on_target.retain(|(e, _)| e.name != script.target_name);
                on_target.push((
                    ScriptEntry {
                        name: script.target_name.clone(),
                        active: was_active,
                    },
                    hash,
                ));
            }
            Err(refusal) => {
                script.outcome = ScriptOutcome::Refused;
                script.missing_extensions = required_extensions(&payload)
                    .into_iter()
                    .filter(|e| !capabilities.has_extension(e))
                    .collect();
                let mut said = refusal.to_string();
                if !script.missing_extensions.is_empty() {
                    said = format!(
                        "{said} [the target does not offer: {}]",
                        script.missing_extensions.join(", ")
                    );
                }
                script.error = Some(said);
            }
        }
        report.scripts.push(script);
    }
    activate(job, target, &on_target, report).await
}

async fn save(
    store: &Store,
    job: &FiltersJob,
    script: &ScriptReport,
    hash: &str,
    report: &mut FiltersReport,
) {
    if job.dry_run || script.outcome == ScriptOutcome::KeptOnTarget {
        return;
    }
    let row = SieveScriptRow {
        source_name: script.source_name.clone(),
        target_name: script.target_name.clone(),
        stored_sha256: hash.to_string(),
    };
    if let Err(e) = store.save_sieve_script(&job.id, &row).await {
        report
            .problems
            .push(format!("cannot record the filters state: {e}"));
    }
}

/// Makes the target's copy of the source's active script the active one there.
async fn activate(
    job: &FiltersJob,
    target: &mut SieveClient,
    on_target: &[(ScriptEntry, String)],
    report: &mut FiltersReport,
) -> Result<(), SieveError> {
    let Some(active) = report.scripts.iter().find(|s| s.active) else {
        return Ok(());
    };
    let usable = matches!(
        active.outcome,
        ScriptOutcome::Copied
            | ScriptOutcome::Updated
            | ScriptOutcome::Present
            | ScriptOutcome::KeptOnTarget
    );
    if !usable {
        if active.outcome != ScriptOutcome::Planned {
            let note = format!(
                "the source's active script `{}` is not on the target: no script was made active there",
                active.source_name
            );
            report.notes.push(note);
        }
        return Ok(());
    }
    let name = active.target_name.clone();
    let current = on_target
        .iter()
        .find(|(e, _)| e.active)
        .map(|(e, _)| e.name.clone());
    if current.as_deref() == Some(name.as_str()) || job.dry_run {
        return Ok(());
    }
    match target.set_active(&name).await? {
        Ok(()) => {
            if let Some(before) = current {
                report.notes.push(format!(
                    "`{name}` is now the active script on the target, as at the source; `{before}` was active there before and is kept, inactive"
                ));
            }
        }
        Err(refusal) => report.problems.push(format!(
            "the target would not make `{name}` its active script: {refusal}"
        )),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_listening_is_told_apart_from_a_real_server_refusing() {
        let addr = || "mx.example.org:4190".to_string();
        let io = || std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for absent in [
            SieveError::Connect {
                addr: addr(),
                source: io(),
            },
            SieveError::Timeout {
                addr: addr(),
                seconds: 10,
                during: "connecting",
            },
            SieveError::NotSieve {
                addr: addr(),
                greeting: "* OK IMAP4rev1".into(),
            },
        ] {
            assert!(no_managesieve(&absent), "{absent:?}");
        }
        for present in [
            SieveError::LoginRejected {
                addr: addr(),
                user: "alice".into(),
                said: "Authentication failed.".into(),
            },
            SieveError::Certificate {
                addr: addr(),
                reason: "it has expired".into(),
            },
            SieveError::Timeout {
                addr: addr(),
                seconds: 10,
                during: "during the TLS handshake",
            },
        ] {
            assert!(!no_managesieve(&present), "{present:?}");
        }
    }
}
