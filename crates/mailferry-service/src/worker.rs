//! Workers: each takes the next due pass from the store's lease-based queue, runs it with
//! the copy engine, and records the outcome. A lease is renewed while the pass runs; one
//! that is not (the process died) expires and another worker takes the job over, and the
//! engine's checkpoints make the retaken pass resume without loss or duplicates.

use std::sync::Arc;
use std::time::Duration;

use mailferry_engine::filters::FiltersJob;
use mailferry_engine::groupware::GroupwareJob;
use mailferry_engine::{run_account, AccountParts, CopyOptions, Job, Outcome, Progress};
use mailferry_store::{MigrationRecord, MigrationState, Pass};
use secrecy::SecretString;
use tokio::sync::watch;

use crate::{now, AppState};
use mailferry_engine::account::{AccountEndpoints, AccountSpec};

/// Runs `count` workers until `shutdown` turns true; a running pass is given a few seconds
/// to end, then dropped and its lease released (its checkpoints keep what was copied).
pub async fn run_workers(state: Arc<AppState>, count: usize, shutdown: watch::Receiver<bool>) {
    let process = uuid::Uuid::new_v4().simple().to_string();
    let mut set = tokio::task::JoinSet::new();
    for n in 0..count.max(1) {
        let (state, shutdown) = (state.clone(), shutdown.clone());
        let name = format!("{}-{n}", &process[..8]);
        set.spawn(async move { worker(state, name, shutdown).await });
    }
    while set.join_next().await.is_some() {}
}

async fn worker(state: Arc<AppState>, name: String, mut shutdown: watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let lease = state.config.lease.as_secs() as i64;
        let claimed = match state
            .store
            .claim_due_capped(&name, now(), lease, state.config.max_passes_per_host)
            .await
        {
            Ok(claimed) => claimed,
            Err(e) => {
                tracing::error!(worker = %name, error = %e, "cannot read the queue");
                None
            }
        };
        let Some((record, pass)) = claimed else {
            tokio::select! {
                _ = tokio::time::sleep(state.config.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        let id = record.id.clone();
        tracing::info!(worker = %name, migration = %id, ?pass, "pass starts");
        let progress = Arc::new(Progress::default());
        // In a task of its own: a panic in the pass (a bug) ends as a failed pass with its
        // lease released, not as a migration stuck in "transferring" (issue 19).
        let run = tokio::spawn({
            let (state, name, progress) = (state.clone(), name.clone(), progress.clone());
            async move { run_pass(&state, &name, record, pass, progress).await }
        });
        let aborter = run.abort_handle();
        let run = async {
            if let Err(error) = run.await {
                if error.is_panic() {
                    panicked(&state, &id, &name, error).await;
                }
            }
        };
        tokio::pin!(run);
        tokio::select! {
            _ = &mut run => {}
            _ = wait_for(&mut shutdown) => {
                // No new batch starts; the batches in flight get the grace period to land,
                // then the pass ends and its lease goes back (run_pass does that when stopped).
                progress.request_stop();
                if tokio::time::timeout(state.config.shutdown_grace, &mut run).await.is_err() {
                    aborter.abort();
                    if let Err(e) = state.store.release_lease(&id, &name).await {
                        tracing::error!(migration = %id, error = %e, "cannot release the lease");
                    }
                }
                tracing::info!(migration = %id, "pass interrupted by shutdown; it resumes on the next start");
                forget_live(&state, &id);
                return;
            }
        }
    }
}

/// Records a pass that panicked as failed, with its lease released and words for the admin.
async fn panicked(state: &AppState, id: &str, worker: &str, error: tokio::task::JoinError) {
    let panic = error.into_panic();
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    tracing::error!(migration = %id, panic = %what, "a pass stopped on an internal error");
    forget_live(state, id);
    let reason = format!(
        "the pass stopped on an internal error of mailferry ({what}); what it copied is kept: retry the migration, and report this error"
    );
    match state
        .store
        .finish_pass(
            id,
            worker,
            MigrationState::Failed,
            Some(&reason),
            None,
            now(),
        )
        .await
    {
        Ok(true) => {}
        // Cancelled meanwhile: the lease goes all the same.
        Ok(false) => {
            let _ = state.store.end_stopped_pass(id, worker, None, now()).await;
        }
        Err(e) => tracing::error!(migration = %id, error = %e, "cannot record the failed pass"),
    }
}

async fn wait_for(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

fn forget_live(state: &AppState, id: &str) {
    if let Ok(mut live) = state.live.lock() {
        live.remove(id);
    }
}

async fn run_pass(
    state: &Arc<AppState>,
    worker: &str,
    record: MigrationRecord,
    pass: Pass,
    progress: Arc<Progress>,
) {
    let id = record.id.clone();
    let outcome = match accounts(state, &record).await {
        Ok((source, target)) => {
            let job = Job {
                id: id.clone(),
                source: source.mail.clone(),
                target: target.mail.clone(),
                options: CopyOptions {
                    connections: state.config.connections_per_migration,
                    per_host_cap: state.config.per_host_connections,
                    ..CopyOptions::default()
                },
                budget: state.budget.clone(),
            };
            if let Ok(mut live) = state.live.lock() {
                live.insert(id.clone(), progress.clone());
            }
            let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let keeper = KeepAlive(keep_alive(
                state.clone(),
                id.clone(),
                worker.to_string(),
                progress.clone(),
                lost.clone(),
            ));
            if state.config.panic_in_pass {
                panic!("fault injected for a test: a panic in the pass");
            }
            // Calendars, tasks and contacts after the mail, when both sides have them.
            let (groupware, problem) = match groupware_job(&record, &source, &target) {
                Ok(groupware) => (groupware, None),
                Err(problem) => (None, Some(problem)),
            };
            // Then the filters, when both sides have ManageSieve.
            let (filters, filters_problem) = match filters_job(&record, &source, &target) {
                // Submitted with `"filters": false`: left alone.
                _ if !record.filters => (None, None),
                Ok(filters) => (filters, None),
                Err(problem) => (None, Some(problem)),
            };
            let parts = AccountParts {
                groupware: groupware.as_ref(),
                filters: filters.as_ref(),
            };
            let mut result = run_account(&job, parts, &state.store, progress.clone()).await;
            if let Ok((report, _)) = &mut result {
                report.problems.extend(problem);
                report.notes.extend(filters_problem);
            }
            drop(keeper);
            save_progress(state, &id, &progress).await;
            forget_live(state, &id);
            // Stopped by a cancel in this process (control::cancel), not by a shutdown: as if
            // the lease had been lost.
            if progress.stopping()
                && !lost.load(std::sync::atomic::Ordering::SeqCst)
                && matches!(
                    state.store.migration(&id).await,
                    Ok(Some(record)) if record.state == MigrationState::Cancelled
                )
            {
                lost.store(true, std::sync::atomic::Ordering::SeqCst);
            }
            if lost.load(std::sync::atomic::Ordering::SeqCst) {
                // Cancelled (or taken over) while it ran: it stopped between batches. What it
                // did is kept in the report; the lease goes now, which frees its accounts.
                let json = result
                    .as_ref()
                    .ok()
                    .and_then(|(report, _)| serde_json::to_string(report).ok());
                if let Err(e) = state
                    .store
                    .end_stopped_pass(&id, worker, json.as_deref(), now())
                    .await
                {
                    tracing::error!(migration = %id, error = %e, "cannot release the lease");
                }
                tracing::info!(migration = %id, "pass stopped: the migration was cancelled or its lease was taken");
                return;
            }
            if progress.stopping() {
                // Stopped by a shutdown: not a result. The job goes back to the queue and the
                // next start carries on from the checkpoints.
                if let Err(e) = state.store.release_lease(&id, worker).await {
                    tracing::error!(migration = %id, error = %e, "cannot release the lease");
                }
                return;
            }
            let last_pass = pass == Pass::Resync || record.resync_at.is_none();
            let retries = if last_pass {
                "retry the migration to try them again (its credentials are kept for that)"
            } else {
                "the resync pass tries them again"
            };
            match result {
                Ok((report, _)) => {
                    let json = serde_json::to_string(&report).ok();
                    let problem = match report.outcome() {
                        Outcome::Complete => None,
                        Outcome::Partial => Some(partial_reason(&report, retries)),
                        Outcome::Failed => Some(
                            report
                                .problems
                                .first()
                                .cloned()
                                .or_else(|| report.folders.iter().find_map(|f| f.error.clone()))
                                .unwrap_or_else(|| "the pass failed".into()),
                        ),
                    };
                    // A last pass that left something behind is not done: it fails, keeping
                    // its credentials, so that a retry can finish it (issue 19).
                    let failed = report.outcome() == Outcome::Failed
                        || (last_pass && report.outcome() == Outcome::Partial);
                    Ok((json, problem, failed))
                }
                Err(e) => {
                    let hint = e.hint(mailferry_engine::account::Surface::Service);
                    let mut reason = mailferry_engine::mail::describe(&e);
                    if let Some(hint) = hint {
                        reason.push_str(&format!(" (what to do: {hint})"));
                    }
                    Err(reason)
                }
            }
        }
        Err(reason) => Err(reason),
    };
    let (state_after, error, report) = match (outcome, pass) {
        (Ok((report, problem, false)), Pass::First) if record.resync_at.is_some() => {
            (MigrationState::WaitingResync, problem, report)
        }
        (Ok((report, problem, false)), _) => (MigrationState::Done, problem, report),
        (Ok((report, problem, true)), _) => (MigrationState::Failed, problem, report),
        (Err(reason), _) => (MigrationState::Failed, Some(reason), None),
    };
    match state
        .store
        .finish_pass(
            &id,
            worker,
            state_after,
            error.as_deref(),
            report.as_deref(),
            now(),
        )
        .await
    {
        Ok(true) => {
            if state_after == MigrationState::Done {
                if let Err(e) = state.store.erase_secrets(&id).await {
                    tracing::error!(migration = %id, error = %e, "cannot erase the credentials");
                }
            }
            tracing::info!(migration = %id, state = state_after.as_str(), "pass ended");
        }
        Ok(false) => {
            tracing::warn!(migration = %id, "the lease was lost while the pass ran; another worker owns the job")
        }
        Err(e) => tracing::error!(migration = %id, error = %e, "cannot record the end of the pass"),
    }
}

/// The keep-alive task, stopped when dropped: also when the pass unwinds from a panic.
struct KeepAlive(tokio::task::JoinHandle<()>);

impl Drop for KeepAlive {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Renews the lease and saves progress while a pass runs. When the lease cannot be renewed
/// (the migration was cancelled, or another worker took it over) the pass is asked to stop
/// between batches and `lost` is set.
fn keep_alive(
    state: Arc<AppState>,
    id: String,
    worker: String,
    progress: Arc<Progress>,
    lost: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let lease = state.config.lease;
        let every = (lease / 3)
            .max(Duration::from_millis(200))
            .min(Duration::from_secs(2));
        loop {
            tokio::time::sleep(every).await;
            match state
                .store
                .renew_lease(&id, &worker, now() + lease.as_secs() as i64)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(migration = %id, "the migration was cancelled or its lease taken over: the pass stops");
                    lost.store(true, std::sync::atomic::Ordering::SeqCst);
                    progress.request_stop();
                    return;
                }
                Err(e) => tracing::error!(migration = %id, error = %e, "cannot renew the lease"),
            }
            save_progress(&state, &id, &progress).await;
        }
    })
}

async fn save_progress(state: &AppState, id: &str, progress: &Progress) {
    let record = crate::progress::record_of(&progress.snapshot());
    if let Err(e) = state.store.update_progress(id, &record, now()).await {
        tracing::warn!(migration = %id, error = %e, "cannot save progress");
    }
}

/// The groupware job of a migration whose two sides have CalDAV/CardDAV endpoints (from
/// `source.dav` / `target.dav`, or their type's usual address); the accounts' own logins.
fn groupware_job(
    record: &MigrationRecord,
    source: &AccountEndpoints,
    target: &AccountEndpoints,
) -> Result<Option<GroupwareJob>, String> {
    let side = |name: &str, endpoints: &AccountEndpoints| {
        endpoints
            .groupware
            .clone()
            .map_err(|problem| format!("the {name}'s calendars and contacts: {}", problem.message))
    };
    match (side("source", source)?, side("target", target)?) {
        (Some(source), Some(target)) => Ok(Some(GroupwareJob {
            id: record.id.clone(),
            source,
            target,
            dry_run: false,
            // The service has no deletion option yet: kept on the target, as for its mail.
            sync_deletes: false,
        })),
        // Calendars and contacts at the source with nowhere to go: said, not skipped.
        (Some(_), None) => Err(format!(
            "the calendars and contacts of the source ({}) were not copied: the target ({}) has no CalDAV/CardDAV address; submit the migration again with target.dav",
            source.kind, target.kind
        )),
        (None, _) => Ok(None),
    }
}

/// Why a pass is partial, part by part (mail, groupware, filters), with what to do.
fn partial_reason(report: &mailferry_engine::Report, retries: &str) -> String {
    let mut parts = Vec::new();
    let folders = report.folders.iter().filter(|f| f.error.is_some()).count();
    if report.failed() + report.skipped() > 0 || folders > 0 || !report.problems.is_empty() {
        parts.push(format!(
            "{} messages could not be copied and {folders} folders had errors",
            report.failed()
        ));
    }
    if let Some(groupware) = report
        .groupware
        .as_ref()
        .filter(|g| g.outcome() != Outcome::Complete)
    {
        parts.push(format!(
            "{} calendar or contact objects could not be copied and {} calendars or address books had errors",
            groupware.failed(),
            groupware.collections.iter().filter(|c| c.error.is_some()).count()
                + groupware.problems.len()
        ));
    }
    if let Some(filters) = report
        .filters
        .as_ref()
        .filter(|f| f.outcome() != Outcome::Complete)
    {
        let counts = filters.tally();
        parts.push(format!(
            "{} filter scripts were refused by the target or could not be copied{}",
            counts.refused + counts.failed,
            if filters.problems.is_empty() {
                ""
            } else {
                " and the filters pass had problems"
            }
        ));
    }
    if parts.is_empty() {
        parts.push("some of the account could not be copied".into());
    }
    format!("{}: see the report; {retries}", parts.join(", "))
}

/// The filters job of a migration whose two sides have ManageSieve (given as `source.sieve`
/// / `target.sieve`, or the mail host's port 4190 by their type's rule).
fn filters_job(
    record: &MigrationRecord,
    source: &AccountEndpoints,
    target: &AccountEndpoints,
) -> Result<Option<FiltersJob>, String> {
    let side = |name: &str, endpoints: &AccountEndpoints| {
        endpoints
            .filters
            .clone()
            .map_err(|problem| format!("the {name}'s filters: {}", problem.message))
    };
    match (side("source", source)?, side("target", target)?) {
        (Some(source), Some(target)) => Ok(Some(FiltersJob::new(
            record.id.clone(),
            source,
            target,
            Duration::from_secs(60),
        ))),
        (Some(source), None) => Err(format!(
            "filters (Sieve scripts) were not looked at: the target ({}) keeps its filters elsewhere{}",
            target.kind,
            if source.derived { "" } else { "; the source's are at source.sieve" }
        )),
        (None, _) => Ok(None),
    }
}

/// Both sides' endpoints, from the stored record, its sealed passwords and its explicit DAV
/// addresses, through the same [`AccountSpec`] the submit check used.
async fn accounts(
    state: &AppState,
    record: &MigrationRecord,
) -> Result<(AccountEndpoints, AccountEndpoints), String> {
    let secrets = state
        .store
        .secrets(&record.id)
        .await
        .map_err(|e| format!("cannot read the stored credentials: {e}"))?;
    let explicit = state
        .store
        .migration_dav(&record.id)
        .await
        .map_err(|e| format!("cannot read the calendar and contacts addresses: {e}"))?;
    let mut out = Vec::new();
    for (side, endpoint) in [("source", &record.source), ("target", &record.target)] {
        let endpoint = endpoint
            .as_ref()
            .ok_or("the migration's account data was purged")?;
        let sealed = secrets.iter().find(|(s, _)| s == side).map(|(_, v)| v).ok_or_else(|| format!("the {side} credentials are no longer stored (erased or purged): submit the migration again"))?;
        let password = state
            .sealer
            .open(sealed, &format!("{}/{side}", record.id))
            .map_err(|e| format!("the {side} credentials cannot be opened: {e}"))?;
        let password = String::from_utf8(password.to_vec())
            .map_err(|_| format!("the {side} credentials are damaged"))?;
        let spec = AccountSpec {
            server_type: endpoint.server_type.clone(),
            server: endpoint.server.clone(),
            username: endpoint.username.clone(),
            password: SecretString::from(password),
            insecure: endpoint.insecure,
            ca_file: state.config.ca_file.clone(),
            dav: explicit
                .iter()
                .find(|(s, _)| s == side)
                .map(|(_, url)| url.clone()),
            sieve: explicit
                .iter()
                .find(|(s, _)| *s == format!("{side}.sieve"))
                .map(|(_, url)| url.clone()),
        };
        out.push(
            spec.endpoints(Duration::from_secs(60))
                .map_err(|p| format!("the {side} {}: {}", p.field, p.message))?,
        );
    }
    let target = out.pop().expect("two sides");
    let source = out.pop().expect("two sides");
    Ok((source, target))
}
