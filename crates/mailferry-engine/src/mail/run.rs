//! A run of one account's mail: connect, read both sides' folders, map them, follow
//! renames, create what is missing, then hand the folders to workers, one connection pair
//! each, biggest first. Each worker takes folders from a queue and retries one whose
//! connections dropped ([`super::retry`]).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailferry_imap::response::FolderStatus;
use mailferry_imap::{mutf7, Folder, Pool, Session, SessionOptions};
use mailferry_store::{FolderCheckpoint, Store};

use super::folder::{copy_folder, FolderPass};
use super::plan::why_not_skipped;
use super::rename::{follow_renames, Planned};
use super::retry::{backoff, retryable, RETRIES};
use crate::error::{EngineError, Side};
use crate::folder_map::{map_folders, FolderMapping, NamingScheme};
use crate::options::{Account, CopyOptions};
use crate::progress::Progress;
use crate::report::{FolderReport, Report};

/// A migration of one account: source, target, options, and the id its checkpoints use.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub source: Account,
    pub target: Account,
    pub options: CopyOptions,
    /// The connections this job may open, shared with the caller's other jobs.
    pub budget: mailferry_imap::ConnectionBudget,
}

/// Counted round trips, for tests and reports.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct RoundTrips {
    pub source: u64,
    pub target: u64,
}

/// Runs one pass of a job: copies what is missing, applies flag changes, records state.
pub async fn migrate(
    job: &Job,
    store: &Store,
    progress: Arc<Progress>,
) -> Result<(Report, RoundTrips), EngineError> {
    let started = Instant::now();
    let options = &job.options;
    let session_options = SessionOptions {
        timeout: Duration::from_secs(options.timeout_seconds),
        compress: options.compress,
        ..SessionOptions::default()
    };
    // The bandwidth cap applies to what is read from the source, over all its connections.
    let source_options = SessionOptions {
        read_limit: options.max_bandwidth.map(mailferry_imap::RateLimit::new),
        ..session_options.clone()
    };
    let source_pool = Arc::new(Pool::new(
        job.source.endpoint.clone(),
        job.source.auth.clone(),
        source_options,
        &job.budget,
    ));
    let target_pool = Arc::new(Pool::new(
        job.target.endpoint.clone(),
        job.target.auth.clone(),
        session_options,
        &job.budget,
    ));
    let mut report = Report {
        source: job.source.describe(),
        target: job.target.describe(),
        dry_run: options.dry_run,
        ..Report::default()
    };

    // Both sides read once at the start; a connection lost meanwhile (or a server busy) is
    // tried again with backoff, as a folder is.
    let mut attempt = 0;
    let Listed {
        mut source,
        mut target,
        source_scheme,
        target_scheme,
        source_folders,
        mut target_folders,
        subscribed,
        target_subscribed,
    } = loop {
        attempt += 1;
        match list_both(&source_pool, &target_pool, options.subscriptions).await {
            Ok(listed) => break listed,
            Err(e) if retryable(&e) && attempt < RETRIES => {
                let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
                tracing::warn!(error = %describe(&e), retry_in_ms = wait.as_millis() as u64, "connection lost or server busy while reading the folders; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => return Err(e),
        }
    };

    let wanted: Vec<Folder> = source_folders
        .iter()
        .filter(|f| options.wants_folder(&f.name))
        .cloned()
        .collect();
    let mappings = map_folders(
        &wanted,
        &source_scheme,
        &target_folders,
        &target_scheme,
        &options.map,
    );
    let status_of = |raw: &[u8]| {
        source_folders
            .iter()
            .find(|f| f.raw_name == raw)
            .and_then(|f| f.status.clone())
    };
    let mut checkpoints: HashMap<String, FolderCheckpoint> = store
        .folder_checkpoints(&job.id)
        .await?
        .into_iter()
        .map(|cp| (cp.source_folder.clone(), cp))
        .collect();
    let renames = follow_renames(
        &mut source.session,
        &mut target.session,
        store,
        job,
        Planned {
            source_folders: &source_folders,
            mappings: &mappings,
            checkpoints: &mut checkpoints,
            target_folders: &mut target_folders,
        },
    )
    .await?;
    let tallies = store.folder_tallies(&job.id).await?;
    report.folder_rewrite = Some(crate::filters::FolderRewrite::new(
        &mappings,
        &source_scheme,
        &target_scheme,
    ));

    let mut work = Vec::new();
    for mapping in mappings {
        let status = status_of(&mapping.source_raw);
        let target_folder = target_folders
            .iter()
            .find(|t| t.raw_name == mapping.target_raw || t.name == mapping.target_name);
        let exists = target_folder.is_some();
        let key = folder_key(&mapping.source_raw);
        let skip = checkpoints.remove(&key).is_some_and(|cp| {
            why_not_skipped(
                &cp,
                status.as_ref(),
                target_folder.and_then(|t| t.status.as_ref()),
                &folder_key(&mapping.target_raw),
                tallies.get(&key).copied().unwrap_or_default(),
            )
            .is_none()
        });
        let mut folder_report = FolderReport {
            source: mapping.source_name.clone(),
            target: mapping.target_name.clone(),
            source_messages: status
                .as_ref()
                .and_then(|s| s.messages)
                .map_or(0, u64::from),
            source_bytes: status.as_ref().and_then(|s| s.size).unwrap_or(0),
            notes: mapping.note.clone().into_iter().collect(),
            unchanged: skip,
            ..FolderReport::default()
        };
        if let Some(note) = renames.get(&key) {
            folder_report.notes.push(note.clone());
        }
        if skip {
            folder_report.target_messages = target_folder
                .and_then(|t| t.status.as_ref())
                .and_then(|s| s.messages)
                .map(u64::from);
        }
        if !exists {
            folder_report.notes.push("created on the target".into());
            if !options.dry_run {
                if let Err(e) = target
                    .session
                    .create(&mapping.target_raw, mapping.special_use)
                    .await
                {
                    folder_report.error =
                        Some(format!("cannot create the folder on the target: {e}"));
                }
            }
        }
        if options.subscriptions
            && subscribed.contains(&mapping.source_raw)
            && !target_subscribed.contains(&mapping.target_raw)
            && !options.dry_run
        {
            if let Err(e) = target.session.subscribe(&mapping.target_raw).await {
                folder_report
                    .notes
                    .push(format!("subscription not copied: {e}"));
            }
        }
        progress.add_total(folder_report.source_messages, folder_report.source_bytes);
        work.push((mapping, status, folder_report));
    }
    super::annotations::copy_annotations(
        &mut source.session,
        &mut target.session,
        &mut work,
        options.dry_run,
        &mut report,
    )
    .await;
    progress
        .folders_total
        .fetch_add(work.len() as u64, Ordering::Relaxed);
    let mut trips = RoundTrips {
        source: source.session.stats().round_trips,
        target: target.session.stats().round_trips,
    };
    if options.dry_run {
        report.folders = work.into_iter().map(|(_, _, r)| r).collect();
        report.seconds = started.elapsed().as_secs_f64();
        return Ok((report, trips));
    }
    source_pool.put(source);
    target_pool.put(target);

    // Biggest folders first, so the last worker is not left with the largest.
    work.sort_by_key(|(_, status, _)| {
        std::cmp::Reverse(status.as_ref().and_then(|s| s.messages).unwrap_or(0))
    });
    let queue = Arc::new(Mutex::new(VecDeque::from(work)));
    // A worker holds a connection per side; when both sides share a host (or the global
    // cap) they count against the same cap, so a run never asks for more than it allows.
    let same_host = job
        .source
        .endpoint
        .host
        .eq_ignore_ascii_case(&job.target.endpoint.host);
    let per_worker = if same_host { 2 } else { 1 };
    let cap = (job.budget.per_host() / per_worker)
        .min(job.budget.global().map_or(usize::MAX, |g| g / 2))
        .max(1);
    let workers = options
        .connections
        .max(1)
        .min(cap)
        .min(queue.lock().map(|q| q.len()).unwrap_or(1).max(1));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (queue, job, store, progress) =
            (queue.clone(), job.clone(), store.clone(), progress.clone());
        let (source_pool, target_pool) = (source_pool.clone(), target_pool.clone());
        set.spawn(async move {
            worker(queue, &job, &store, &progress, &source_pool, &target_pool).await
        });
    }
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((reports, worker_trips, problem)) => {
                report.folders.extend(reports);
                trips.source += worker_trips.source;
                trips.target += worker_trips.target;
                if let Some(problem) = problem {
                    report.problems.push(problem);
                }
            }
            Err(e) => report
                .problems
                .push(format!("a copy worker stopped unexpectedly: {e}")),
        }
    }
    report.folders.sort_by(|a, b| a.source.cmp(&b.source));
    report.seconds = started.elapsed().as_secs_f64();
    Ok((report, trips))
}

pub(crate) type WorkItem = (FolderMapping, Option<FolderStatus>, FolderReport);

pub(crate) async fn worker(
    queue: Arc<Mutex<VecDeque<WorkItem>>>,
    job: &Job,
    store: &Store,
    progress: &Progress,
    source_pool: &Pool,
    target_pool: &Pool,
) -> (Vec<FolderReport>, RoundTrips, Option<String>) {
    let mut reports = Vec::new();
    let mut trips = RoundTrips::default();
    let mut sessions: Option<(mailferry_imap::Pooled, mailferry_imap::Pooled)> = None;
    while let Some((mapping, _status, mut folder_report)) =
        next_work(&queue).filter(|_| !progress.stopping())
    {
        if folder_report.error.is_some() {
            reports.push(folder_report);
            continue;
        }
        if folder_report.unchanged {
            progress
                .done_messages
                .fetch_add(folder_report.source_messages, Ordering::Relaxed);
            progress
                .done_bytes
                .fetch_add(folder_report.source_bytes, Ordering::Relaxed);
            progress.folders_done.fetch_add(1, Ordering::Relaxed);
            reports.push(folder_report);
            continue;
        }
        // A lost connection is retried on fresh ones, with backoff: the pass is idempotent,
        // so a retry only does what the failed attempt did not finish.
        let mut attempt = 0;
        let planned_notes = folder_report.notes.clone();
        loop {
            attempt += 1;
            if attempt > 1 {
                // What an attempt found wrong is found again by the next (failed messages are
                // tried again): the report says it once, as the last attempt saw it.
                folder_report.failed.clear();
                folder_report.skipped.clear();
                folder_report.notes.clone_from(&planned_notes);
            }
            let (mut source, mut target) = match sessions.take() {
                Some(pair) => pair,
                None => match connect_pair(source_pool, target_pool).await {
                    Ok(pair) => pair,
                    Err(e) => {
                        if retryable(&e) && attempt < RETRIES {
                            backoff(attempt, &mapping, &e).await;
                            continue;
                        }
                        folder_report.error = Some(describe(&e));
                        break;
                    }
                },
            };
            let before = (
                source.session.stats().round_trips,
                target.session.stats().round_trips,
            );
            let pass = FolderPass::new(job, store, progress, source_pool, &mapping);
            let result = copy_folder(
                &mut source.session,
                &mut target.session,
                &pass,
                &mut folder_report,
            )
            .await;
            trips.source += source.session.stats().round_trips - before.0;
            trips.target += target.session.stats().round_trips - before.1;
            match result {
                Ok(()) => {
                    sessions = Some((source, target));
                    folder_report.error = None;
                    break;
                }
                // The connections' state is unknown after an error: they are dropped.
                Err(e) if retryable(&e) && attempt < RETRIES => {
                    backoff(attempt, &mapping, &e).await
                }
                Err(e) => {
                    tracing::warn!(folder = %mapping.source_name, error = %describe(&e), "folder not finished");
                    folder_report.error = Some(describe(&e));
                    break;
                }
            }
        }
        progress.folders_done.fetch_add(1, Ordering::Relaxed);
        reports.push(folder_report);
    }
    if let Some((source, target)) = sessions {
        source_pool.put(source);
        target_pool.put(target);
    }
    (reports, trips, None)
}

/// What a run reads of both sides before it plans.
struct Listed {
    source: mailferry_imap::Pooled,
    target: mailferry_imap::Pooled,
    source_scheme: NamingScheme,
    target_scheme: NamingScheme,
    source_folders: Vec<Folder>,
    target_folders: Vec<Folder>,
    subscribed: Vec<Vec<u8>>,
    target_subscribed: Vec<Vec<u8>>,
}

/// Both sides' naming, folders (with their STATUS: a folder is skipped only when the target
/// is as the last pass left it, too) and subscriptions.
async fn list_both(
    source_pool: &Pool,
    target_pool: &Pool,
    subscriptions: bool,
) -> Result<Listed, EngineError> {
    let (mut source, mut target) = connect_pair(source_pool, target_pool).await?;
    let source_scheme = naming_scheme(&mut source.session)
        .await
        .map_err(EngineError::imap(Side::Source))?;
    let target_scheme = naming_scheme(&mut target.session)
        .await
        .map_err(EngineError::imap(Side::Target))?;
    let source_folders = source
        .session
        .list_folders(true)
        .await
        .map_err(EngineError::imap(Side::Source))?;
    let target_folders = target
        .session
        .list_folders(true)
        .await
        .map_err(EngineError::imap(Side::Target))?;
    let (subscribed, target_subscribed) = if subscriptions {
        (
            source
                .session
                .subscribed()
                .await
                .map_err(EngineError::imap(Side::Source))?,
            target
                .session
                .subscribed()
                .await
                .map_err(EngineError::imap(Side::Target))?,
        )
    } else {
        (Vec::new(), Vec::new())
    };
    Ok(Listed {
        source,
        target,
        source_scheme,
        target_scheme,
        source_folders,
        target_folders,
        subscribed,
        target_subscribed,
    })
}

/// A logged-in session on each side; a failure names its side. Source first, then target,
/// in every worker: with both taken at once, two workers could each hold one side's last
/// permit and wait for the other's.
pub(crate) async fn connect_pair(
    source_pool: &Pool,
    target_pool: &Pool,
) -> Result<(mailferry_imap::Pooled, mailferry_imap::Pooled), EngineError> {
    let source = source_pool
        .get()
        .await
        .map_err(|source| EngineError::Connect {
            side: Side::Source,
            source,
        })?;
    let target = target_pool
        .get()
        .await
        .map_err(|source| EngineError::Connect {
            side: Side::Target,
            source,
        })?;
    Ok((source, target))
}

pub(crate) fn next_work(queue: &Mutex<VecDeque<WorkItem>>) -> Option<WorkItem> {
    queue.lock().ok().and_then(|mut q| q.pop_front())
}

/// An error with its causes, on one line, for reports.
pub fn describe(error: &EngineError) -> String {
    describe_error(error)
}

/// Any error with its causes, on one line: `what failed: why: the server's words`.
pub fn describe_error(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

pub(crate) fn folder_key(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

pub(crate) async fn naming_scheme(
    session: &mut Session,
) -> Result<NamingScheme, mailferry_imap::ImapError> {
    let namespaces = session.namespace().await?;
    let personal = namespaces.and_then(|n| n.personal.into_iter().next());
    let utf8 = session.utf8_enabled();
    let (prefix, delimiter) = match personal {
        Some(ns) => (
            if utf8 {
                String::from_utf8_lossy(&ns.prefix).into_owned()
            } else {
                mutf7::decode_lenient(&ns.prefix)
            },
            ns.delimiter,
        ),
        None => (String::new(), None),
    };
    let delimiter = match delimiter {
        Some(d) => Some(d),
        None => session
            .list_folders(false)
            .await?
            .iter()
            .find_map(|f| f.delimiter),
    };
    Ok(NamingScheme {
        prefix,
        delimiter,
        utf8,
    })
}
