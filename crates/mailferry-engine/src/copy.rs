//! A run: plan the folders, then copy each folder over a pair of connections, with source
//! FETCH and target APPEND overlapping.
//!
//! Per folder, in order:
//! 1. Skip it when LIST-STATUS shows the same UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ as the
//!    checkpoint of the last completed pass: no command at all for an unchanged folder.
//! 2. EXAMINE the source (with QRESYNC from the checkpoint when the server has it, which
//!    returns flag changes and expunges in the same round trip), SELECT the target.
//! 3. Decide per message: already mapped, to copy, or (first pass, or a crashed one) already
//!    on the target by fingerprint, counted with multiplicity.
//! 4. Copy in batches: write the batch to the map as *pending*, commit, then APPEND
//!    (MULTIAPPEND when offered), then record the outcome. A crash between leaves pending
//!    rows, which the next run looks up on the target before appending again.
//! 5. Apply flag changes, report (and with `sync_deletes` apply) deletions, save the
//!    checkpoint.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mailferry_imap::response::{Code, FolderStatus, Status};
use mailferry_imap::{
    mutf7, AppendOutcome, AppendRequest, FetchRange, Folder, MessageMeta, Pool, Resync, Session,
    SessionOptions, UidSet,
};
use mailferry_store::{FolderCheckpoint, MappedMessage, MessageState, Store};
use tokio::sync::mpsc;

use crate::error::{EngineError, Side};
use crate::fingerprint::{body_hash, Fingerprint};
use crate::folder_map::{map_folders, FolderMapping, NamingScheme};
use crate::mail::plan::{
    delta_candidates, is_placed, lost_copies, refetch, source_uid_next, target_changed,
    why_not_skipped,
};
use crate::options::{Account, CopyOptions};
use crate::progress::Progress;
use crate::report::{FolderReport, MessageProblem, Report};

/// A migration of one account: source, target, options, and the id its checkpoints use.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub source: Account,
    pub target: Account,
    pub options: CopyOptions,
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
    let source_pool = Arc::new(Pool::with_global_cap(
        job.source.endpoint.clone(),
        job.source.auth.clone(),
        source_options,
        options.per_host_cap,
        options.global_cap,
    ));
    let target_pool = Arc::new(Pool::with_global_cap(
        job.target.endpoint.clone(),
        job.target.auth.clone(),
        session_options,
        options.per_host_cap,
        options.global_cap,
    ));
    let mut report = Report {
        source: job.source.describe(),
        target: job.target.describe(),
        dry_run: options.dry_run,
        ..Report::default()
    };

    let (mut source, mut target) = connect_pair(&source_pool, &target_pool).await?;
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
    // With their STATUS (in the LIST itself under LIST-STATUS): a folder is skipped only when
    // the target is as the last pass left it, too.
    let mut target_folders = target
        .session
        .list_folders(true)
        .await
        .map_err(EngineError::imap(Side::Target))?;
    let (subscribed, target_subscribed) = if options.subscriptions {
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
    let renames = crate::mail::rename::follow_renames(
        &mut source.session,
        &mut target.session,
        store,
        &job.id,
        &source_folders,
        &mappings,
        &mut checkpoints,
        &mut target_folders,
        options.dry_run,
    )
    .await?;
    let tallies = store.folder_tallies(&job.id).await?;

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
    let cap = (options.per_host_cap / per_worker)
        .min(options.global_cap.map_or(usize::MAX, |g| g / 2))
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

type WorkItem = (FolderMapping, Option<FolderStatus>, FolderReport);

async fn worker(
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
            let result = copy_folder(
                &mut source.session,
                &mut target.session,
                source_pool,
                job,
                store,
                progress,
                &mapping,
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

/// A logged-in session on each side; a failure names its side. Source first, then target,
/// in every worker: with both taken at once, two workers could each hold one side's last
/// permit and wait for the other's.
async fn connect_pair(
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

/// Attempts per folder when connections drop.
const RETRIES: u32 = 4;

fn next_work(queue: &Mutex<VecDeque<WorkItem>>) -> Option<WorkItem> {
    queue.lock().ok().and_then(|mut q| q.pop_front())
}

fn retryable(error: &EngineError) -> bool {
    error.imap_error().is_some_and(|e| {
        e.is_connection_lost()
            || matches!(e, mailferry_imap::ImapError::Connect { .. })
            || matches!(e, mailferry_imap::ImapError::Command { status, .. } if throttled(status))
            // Dovecot races when two sessions first open an auto-created special folder
            // (listed, not yet on disk): one SELECT gets NO [ALREADYEXISTS]. Again works.
            || matches!(e, mailferry_imap::ImapError::Command { command, status, .. }
                if command.starts_with("SELECT") && matches!(&status.code, Some(Code::Other { name, .. }) if name == "ALREADYEXISTS"))
    })
}

/// Whether a server's NO means "not now": rate limits and temporary unavailability
/// (RFC 5530 LIMIT and UNAVAILABLE, Gmail's THROTTLED, Exchange's "Server Unavailable").
pub(crate) fn throttled(status: &Status) -> bool {
    let text = status.text.to_ascii_lowercase();
    matches!(status.code, Some(Code::Limit) | Some(Code::Unavailable))
        || matches!(&status.code, Some(Code::Other { name, .. }) if name == "THROTTLED" || name == "INUSE")
        || text.contains("server unavailable")
        || text.contains("throttl")
}

async fn backoff(attempt: u32, mapping: &FolderMapping, error: &EngineError) {
    let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
    tracing::warn!(folder = %mapping.source_name, error = %describe(error), retry_in_ms = wait.as_millis() as u64, "connection lost or server busy; retrying the folder");
    tokio::time::sleep(wait).await;
}

/// An error with its causes, on one line, for reports.
pub fn describe(error: &EngineError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn folder_key(raw: &[u8]) -> String {
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

/// Flags as kept in the map: sorted, `\Recent` left out.
fn flags_key(flags: &[String]) -> String {
    let mut flags: Vec<&str> = flags
        .iter()
        .map(String::as_str)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    flags.sort_unstable();
    flags.dedup();
    flags.join(" ")
}

fn flags_of(key: &str) -> Vec<String> {
    key.split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// Messages to place, flag changes (source UID, flags), and source UIDs gone.
type SourceChanges = (Vec<MessageMeta>, Vec<(u32, Vec<String>)>, Vec<u32>);

/// What the fetcher hands to the appender.
enum Fetched {
    Small(Vec<(MessageMeta, Bytes)>),
    Big(MessageMeta, tempfile::NamedTempFile),
    /// Messages the source would not give, with why: each fails alone (issue 19).
    Failed(Vec<(MessageMeta, String)>),
}

#[allow(clippy::too_many_arguments)]
async fn copy_folder(
    source: &mut Session,
    target: &mut Session,
    source_pool: &Pool,
    job: &Job,
    store: &Store,
    progress: &Progress,
    mapping: &FolderMapping,
    report: &mut FolderReport,
) -> Result<(), EngineError> {
    let options = &job.options;
    let key = folder_key(&mapping.source_raw);
    let mut checkpoint = store.folder_checkpoint(&job.id, &key).await?;
    let resync = checkpoint.as_ref().and_then(|cp| {
        cp.source_modseq.map(|modseq| Resync {
            uid_validity: cp.source_uidvalidity,
            modseq,
        })
    });
    let selected = source
        .select(&mapping.source_raw, true, resync)
        .await
        .map_err(EngineError::imap(Side::Source))?;
    report.source_messages = u64::from(selected.exists);
    if let Some(cp) = &checkpoint {
        if cp.source_uidvalidity != selected.uid_validity {
            report.notes.push("the source folder's UIDVALIDITY changed: its messages are matched again by fingerprint".into());
            store.forget_folder(&job.id, &key).await?;
            checkpoint = None;
        }
    }
    let target_selected = target
        .select(&mapping.target_raw, false, None)
        .await
        .map_err(EngineError::imap(Side::Target))?;
    if let Some(cp) = &checkpoint {
        if cp.target_uidvalidity != Some(target_selected.uid_validity) {
            report.notes.push("the target folder's UIDVALIDITY changed: messages are matched again by fingerprint".into());
            store.forget_folder(&job.id, &key).await?;
            checkpoint = None;
        }
    }
    let uid_validity = selected.uid_validity;
    let mut map: HashMap<u32, MappedMessage> = store
        .mapped_messages(&job.id, &key, uid_validity)
        .await?
        .into_iter()
        .map(|m| (m.source_uid, m))
        .collect();

    // Issue 18: the target folder may have lost what we copied into it since the last pass
    // (messages deleted there, a backup restored without them). When it is not as that pass
    // left it, our copies are looked for by UID; those gone are copied again.
    let mut lost = Vec::new();
    if checkpoint
        .as_ref()
        .is_some_and(|cp| target_changed(cp, &target_selected))
    {
        let placed: Vec<&MappedMessage> = map.values().filter(|row| is_placed(row)).collect();
        let unknown_place = placed.iter().filter(|row| row.target_uid.is_none()).count();
        if unknown_place > 0 && (target_selected.exists as usize) < placed.len() {
            // Copies without a target UID (no UIDPLUS) cannot be looked for one by one: the
            // whole folder is matched again by fingerprint.
            report.notes.push(format!("the target folder holds {} messages, fewer than the {} copied there before: its messages are matched again by fingerprint", target_selected.exists, placed.len()));
            store.forget_folder(&job.id, &key).await?;
            checkpoint = None;
            map.clear();
        } else {
            let uids: Vec<u32> = placed.iter().filter_map(|row| row.target_uid).collect();
            let existing = existing_uids(target, &uids)
                .await
                .map_err(EngineError::imap(Side::Target))?;
            lost = lost_copies(&map, &existing);
            if !lost.is_empty() {
                report.notes.push(format!(
                    "{} messages copied earlier are no longer in the target folder: copied again",
                    lost.len()
                ));
                store
                    .delete_messages(&job.id, &key, uid_validity, &lost)
                    .await?;
                for uid in &lost {
                    map.remove(uid);
                }
            }
        }
    }

    // The Message-ID (an extra header read of every message on the source) is only needed to
    // find copies already on the target: on a first pass into a non-empty folder, or after
    // a crash left appends unconfirmed.
    let has_pending = map.values().any(|m| m.state == MessageState::Pending);
    let mut target_selected = target_selected;
    if has_pending {
        // An APPEND sent by a run that was killed may still be in the server's input buffer,
        // to be stored after we look. Wait until the folder stops changing first.
        wait_until_settled(target, &mapping.target_raw)
            .await
            .map_err(EngineError::imap(Side::Target))?;
        target_selected = target
            .select(&mapping.target_raw, false, None)
            .await
            .map_err(EngineError::imap(Side::Target))?;
        report.notes.push("an earlier run was interrupted: its unconfirmed messages were looked up on the target first".into());
    }
    let needs_dedup = (checkpoint.is_none() || has_pending) && target_selected.exists > 0;
    // On a delta pass into a non-empty folder, new source messages are looked up on the target
    // too (a message delivered to both), among target messages of the same sizes only.
    let delta_lookup = !needs_dedup && checkpoint.is_some() && target_selected.exists > 0;
    let wants_ids = needs_dedup || delta_lookup;
    // What is at the source: everything (first pass, or no QRESYNC), or only what changed.
    let quick =
        checkpoint.is_some() && resync.is_some() && source.enabled().iter().any(|c| c == "QRESYNC");
    let mut seen_uids: Vec<u32> = Vec::new();
    let (candidates, flag_changes, vanished): SourceChanges = if quick {
        let cp = checkpoint.as_ref().expect("quick implies a checkpoint");
        let fetched = source
            .fetch_meta(FetchRange::From(cp.source_uidnext.max(1)), None, wants_ids)
            .await
            .map_err(EngineError::imap(Side::Source))?;
        seen_uids.extend(fetched.iter().map(|m| m.uid));
        seen_uids.push(cp.source_uidnext.saturating_sub(1));
        let mut new = delta_candidates(fetched, cp.source_uidnext, &map);
        let retry = refetch(&map, cp.source_uidnext, &lost);
        if !retry.is_empty() {
            let set = UidSet::from_uids(retry);
            new.extend(
                source
                    .fetch_meta(FetchRange::Uids(&set), None, wants_ids)
                    .await
                    .map_err(EngineError::imap(Side::Source))?,
            );
        }
        let changes = selected
            .changed
            .iter()
            .filter_map(|f| Some((f.uid?, f.flags.clone()?)))
            .collect();
        // Only UIDs the map knows matter; the set may hold huge ranges (RFC 7162 §3.2.10
        // lets a server name UIDs that never existed), so it is never listed out.
        let vanished = map
            .keys()
            .copied()
            .filter(|uid| selected.vanished.contains(*uid))
            .collect();
        (new, changes, vanished)
    } else {
        let all = source
            .fetch_meta(FetchRange::All, None, false)
            .await
            .map_err(EngineError::imap(Side::Source))?;
        seen_uids.extend(all.iter().map(|m| m.uid));
        let present: HashSet<u32> = all.iter().map(|m| m.uid).collect();
        let vanished = map
            .keys()
            .copied()
            .filter(|uid| !present.contains(uid))
            .collect();
        let unmapped: Vec<u32> = all
            .iter()
            .filter(|m| {
                map.get(&m.uid).is_none_or(|row| {
                    matches!(row.state, MessageState::Pending | MessageState::Failed)
                })
            })
            .map(|m| m.uid)
            .collect();
        let changes = all
            .iter()
            .filter(|m| map.contains_key(&m.uid))
            .map(|m| (m.uid, m.flags.clone()))
            .collect();
        let mut new = Vec::new();
        if !unmapped.is_empty() {
            let set = UidSet::from_uids(unmapped);
            new = source
                .fetch_meta(FetchRange::Uids(&set), None, wants_ids)
                .await
                .map_err(EngineError::imap(Side::Source))?;
        }
        (new, changes, vanished)
    };

    // Filters: date window and size limit.
    let mut to_place = Vec::new();
    let mut outside_window = 0u64;
    for meta in candidates {
        let date = mailferry_imap::datetime::internal_date_to_unix(&meta.internal_date);
        if options
            .since
            .is_some_and(|since| date.is_some_and(|d| d < since))
            || options
                .before
                .is_some_and(|before| date.is_some_and(|d| d >= before))
        {
            outside_window += 1;
            progress.handled(meta.size);
            continue;
        }
        if options.max_message_size.is_some_and(|max| meta.size > max) {
            report.skipped.push(MessageProblem {
                uid: meta.uid,
                size: meta.size,
                reason: format!(
                    "larger than the limit of {} bytes",
                    options.max_message_size.unwrap_or(0)
                ),
            });
            progress.handled(meta.size);
            continue;
        }
        to_place.push(meta);
    }
    if outside_window > 0 {
        report.notes.push(format!(
            "{outside_window} messages outside the date window were left out"
        ));
    }

    // Dedup against the target when it may hold copies we do not know of.
    let mut to_copy = Vec::new();
    let target_metas = if needs_dedup && !to_place.is_empty() {
        Some(
            target
                .fetch_meta(FetchRange::All, None, true)
                .await
                .map_err(EngineError::imap(Side::Target))?,
        )
    } else if delta_lookup && !to_place.is_empty() {
        Some(
            same_size_on_target(target, &to_place)
                .await
                .map_err(EngineError::imap(Side::Target))?,
        )
    } else {
        None
    };
    if let Some(target_metas) = target_metas {
        let placed = dedup(
            source,
            target,
            &map,
            to_place,
            options.chunk_size,
            target_metas,
        )
        .await?;
        let mut rows = Vec::new();
        for (meta, found) in placed {
            match found {
                Some((target_uid, target_flags)) => {
                    let was_ours = map
                        .get(&meta.uid)
                        .is_some_and(|m| m.state == MessageState::Pending);
                    let row = MappedMessage {
                        source_uid: meta.uid,
                        fingerprint: Fingerprint::of(&meta).key(),
                        state: if was_ours {
                            MessageState::Copied
                        } else {
                            MessageState::Present
                        },
                        target_uid: Some(target_uid),
                        flags: flags_key(&target_flags),
                        detail: None,
                    };
                    if was_ours {
                        report.copied += 1;
                        report.copied_bytes += meta.size;
                        progress.copied(meta.size);
                    } else {
                        report.already_present += 1;
                        progress.handled(meta.size);
                    }
                    map.insert(meta.uid, row.clone());
                    rows.push(row);
                }
                None => to_copy.push(meta),
            }
        }
        store
            .record_messages(&job.id, &key, uid_validity, &rows)
            .await?;
    } else {
        to_copy = to_place;
    }

    copy_messages(
        source,
        target,
        source_pool,
        job,
        store,
        progress,
        mapping,
        uid_validity,
        to_copy,
        &mut map,
        report,
    )
    .await?;
    apply_flags(
        target,
        job,
        store,
        &key,
        uid_validity,
        &flag_changes,
        &mut map,
        report,
    )
    .await?;
    apply_deletions(
        target,
        job,
        store,
        &key,
        uid_validity,
        &vanished,
        &map,
        report,
    )
    .await?;

    // What the target holds now, as it says: the report's count, and the checkpoint's
    // picture of the target for the next pass's skip.
    let after = target
        .status(&mapping.target_raw)
        .await
        .map_err(EngineError::imap(Side::Target))?;
    report.target_messages = after.messages.map(u64::from);
    let placed = map.values().filter(|row| is_placed(row)).count() as u64;
    let short = after.messages.is_some_and(|n| u64::from(n) < placed);
    if short {
        report.error = Some(format!(
            "the target folder holds {} messages, fewer than the {placed} this migration placed there: something deleted messages there while the pass ran; run again to copy them back",
            after.messages.unwrap_or(0)
        ));
    }
    store
        .save_folder_checkpoint(
            &job.id,
            &FolderCheckpoint {
                source_folder: key,
                source_uidvalidity: uid_validity,
                target_folder: folder_key(&mapping.target_raw),
                target_uidvalidity: Some(target_selected.uid_validity),
                source_uidnext: source_uid_next(
                    selected.uid_next,
                    seen_uids,
                    checkpoint.as_ref().map(|cp| cp.source_uidnext),
                ),
                source_modseq: selected.highest_modseq,
                // A short folder is not trusted by the next pass's skip.
                target_uidnext: after.uid_next.filter(|_| !short),
                target_messages: after.messages.filter(|_| !short),
            },
        )
        .await?;
    Ok(())
}

/// Which of `uids` the selected folder has (`UID SEARCH UID <set>`).
async fn existing_uids(
    session: &mut Session,
    uids: &[u32],
) -> Result<HashSet<u32>, mailferry_imap::ImapError> {
    if uids.is_empty() {
        return Ok(HashSet::new());
    }
    let set = UidSet::from_uids(uids.iter().copied());
    let done = session
        .run_ok("UID SEARCH", format!("UID SEARCH UID {set}\r\n").as_bytes())
        .await?;
    let mut found = HashSet::new();
    for item in done.data {
        if let mailferry_imap::response::Untagged::Search(uids) = item {
            found.extend(uids);
        }
    }
    Ok(found)
}

/// Waits until the selected target folder's UIDNEXT and message count have stayed the same
/// for two seconds (at most half a minute): appends of a dead connection land meanwhile.
async fn wait_until_settled(
    target: &mut Session,
    folder: &[u8],
) -> Result<(), mailferry_imap::ImapError> {
    let mut last = target.status(folder).await?;
    let mut stable_since = tokio::time::Instant::now();
    let deadline = stable_since + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = target.status(folder).await?;
        if (now.uid_next, now.messages) != (last.uid_next, last.messages) {
            last = now;
            stable_since = tokio::time::Instant::now();
        } else if stable_since.elapsed() >= Duration::from_secs(2) {
            break;
        }
    }
    Ok(())
}

/// Pairs source messages with target messages not yet claimed, by fingerprint, one for
/// one (multiplicity counts); where there is no Message-ID the bodies' hashes decide.
async fn dedup(
    source: &mut Session,
    target: &mut Session,
    map: &HashMap<u32, MappedMessage>,
    candidates: Vec<MessageMeta>,
    chunk: u64,
    target_metas: Vec<MessageMeta>,
) -> Result<Vec<(MessageMeta, Option<(u32, Vec<String>)>)>, EngineError> {
    let claimed: HashSet<u32> = map
        .values()
        .filter(|m| matches!(m.state, MessageState::Copied | MessageState::Present))
        .filter_map(|m| m.target_uid)
        .collect();
    let mut available: HashMap<Fingerprint, VecDeque<&MessageMeta>> = HashMap::new();
    for meta in target_metas.iter().filter(|m| !claimed.contains(&m.uid)) {
        available
            .entry(Fingerprint::of(meta))
            .or_default()
            .push_back(meta);
    }
    // Messages without a Message-ID: compare bodies of the candidates.
    let ambiguous: Vec<u32> = candidates
        .iter()
        .filter(|m| {
            Fingerprint::of(m).message_id.is_none() && available.contains_key(&Fingerprint::of(m))
        })
        .map(|m| m.uid)
        .collect();
    let (source_hashes, target_hashes) = if ambiguous.is_empty() {
        (HashMap::new(), HashMap::new())
    } else {
        let target_uids: Vec<u32> = candidates
            .iter()
            .filter(|m| ambiguous.contains(&m.uid))
            .flat_map(|m| {
                available
                    .get(&Fingerprint::of(m))
                    .into_iter()
                    .flatten()
                    .map(|t| t.uid)
            })
            .collect();
        let sizes = |metas: &[MessageMeta]| {
            metas
                .iter()
                .map(|m| (m.uid, m.size))
                .collect::<HashMap<_, _>>()
        };
        (
            hash_bodies(source, &ambiguous, &sizes(&candidates), chunk)
                .await
                .map_err(EngineError::imap(Side::Source))?,
            hash_bodies(target, &target_uids, &sizes(&target_metas), chunk)
                .await
                .map_err(EngineError::imap(Side::Target))?,
        )
    };
    let mut out = Vec::with_capacity(candidates.len());
    // Pending ones first: they were ours, and should claim their own copy.
    let mut ordered = candidates;
    ordered.sort_by_key(|m| {
        (
            map.get(&m.uid)
                .is_none_or(|r| r.state != MessageState::Pending),
            m.uid,
        )
    });
    for meta in ordered {
        let fingerprint = Fingerprint::of(&meta);
        let found = available.get_mut(&fingerprint).and_then(|queue| {
            let position = match source_hashes.get(&meta.uid) {
                Some(hash) => queue
                    .iter()
                    .position(|t| target_hashes.get(&t.uid) == Some(hash))?,
                None if fingerprint.message_id.is_none() => return None,
                None => 0,
            };
            queue.remove(position)
        });
        let found = found.map(|t| (t.uid, t.flags.clone()));
        out.push((meta, found));
    }
    Ok(out)
}

/// The target messages with the sizes of `candidates` (pipelined `UID SEARCH LARGER n-1
/// SMALLER n+1`, answered from the server's cached sizes), with their Message-IDs.
async fn same_size_on_target(
    target: &mut Session,
    candidates: &[MessageMeta],
) -> Result<Vec<MessageMeta>, mailferry_imap::ImapError> {
    let mut sizes: Vec<u64> = candidates
        .iter()
        .map(|m| m.size)
        .filter(|s| *s > 0)
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut tags = Vec::with_capacity(sizes.len());
    for size in sizes {
        tags.push(
            target
                .send(format!("UID SEARCH LARGER {} SMALLER {}\r\n", size - 1, size + 1).as_bytes())
                .await?,
        );
    }
    let mut uids = Vec::new();
    for tag in tags {
        let done = target.wait(&tag).await?;
        for item in done.data {
            if let mailferry_imap::response::Untagged::Search(found) = item {
                uids.extend(found);
            }
        }
    }
    if uids.is_empty() {
        return Ok(Vec::new());
    }
    let set = UidSet::from_uids(uids);
    target.fetch_meta(FetchRange::Uids(&set), None, true).await
}

/// SHA-256 of the bodies of `uids` in the selected folder.
async fn hash_bodies(
    session: &mut Session,
    uids: &[u32],
    sizes: &HashMap<u32, u64>,
    chunk: u64,
) -> Result<HashMap<u32, [u8; 32]>, mailferry_imap::ImapError> {
    let mut out = HashMap::new();
    let (small, big): (Vec<u32>, Vec<u32>) = uids
        .iter()
        .partition(|uid| sizes.get(uid).copied().unwrap_or(0) <= chunk);
    for part in small.chunks(100) {
        let tag = session
            .start_fetch_bodies(&UidSet::from_uids(part.iter().copied()))
            .await?;
        while let Some(fetch) = session.next_fetch(&tag).await? {
            if let (Some(uid), Some(data)) =
                (fetch.uid, fetch.section("").and_then(|s| s.data.clone()))
            {
                out.insert(uid, body_hash(&data));
            }
        }
    }
    for uid in big {
        let hasher = session
            .fetch_body_partial(uid, sizes.get(&uid).copied(), chunk, HashWriter::default())
            .await?;
        out.insert(uid, hasher.finish());
    }
    Ok(out)
}

#[derive(Default)]
pub(crate) struct HashWriter(sha2::Sha256);

impl HashWriter {
    pub(crate) fn finish(self) -> [u8; 32] {
        use sha2::Digest;
        self.0.finalize().into()
    }
}

impl Write for HashWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest;
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn copy_messages(
    source: &mut Session,
    target: &mut Session,
    source_pool: &Pool,
    job: &Job,
    store: &Store,
    progress: &Progress,
    mapping: &FolderMapping,
    uid_validity: u32,
    to_copy: Vec<MessageMeta>,
    map: &mut HashMap<u32, MappedMessage>,
    report: &mut FolderReport,
) -> Result<(), EngineError> {
    if to_copy.is_empty() {
        return Ok(());
    }
    let options = &job.options;
    let key = folder_key(&mapping.source_raw);
    let (sender, mut receiver) = mpsc::channel::<Fetched>(2);
    let spool = options.spool_dir.clone();

    let fetcher = async move {
        let mut batch: Vec<MessageMeta> = Vec::new();
        let mut batch_bytes = 0u64;
        let mut pending = to_copy.into_iter().peekable();
        loop {
            if progress.stopping() {
                // What was fetched is still appended (the channel drains); nothing new starts.
                return Err(EngineError::Stopped);
            }
            let next = pending.next();
            let flush = match &next {
                None => true,
                Some(meta) => {
                    meta.size > options.chunk_size
                        || batch.len() >= options.batch_messages
                        || batch_bytes + meta.size > options.batch_bytes
                }
            };
            if flush && !batch.is_empty() {
                let (mut bodies, refused) = fetch_batch(source, &batch).await?;
                let mut failed = Vec::new();
                let mut items = Vec::with_capacity(batch.len());
                for meta in batch.drain(..) {
                    match bodies.remove(&meta.uid) {
                        Some(body) => items.push((meta, body)),
                        None => {
                            let reason = refused.get(&meta.uid).cloned().unwrap_or_else(|| {
                                "the source did not send it (deleted at the source while the pass ran?)".into()
                            });
                            failed.push((meta, reason));
                        }
                    }
                }
                batch_bytes = 0;
                if !failed.is_empty() && sender.send(Fetched::Failed(failed)).await.is_err() {
                    return Ok(());
                }
                if sender.send(Fetched::Small(items)).await.is_err() {
                    return Ok(());
                }
            }
            let Some(meta) = next else { break };
            if meta.size > options.chunk_size {
                let fetched = fetch_big(
                    source,
                    source_pool,
                    &mapping.source_raw,
                    uid_validity,
                    &meta,
                    options.chunk_size,
                    spool.as_deref(),
                )
                .await;
                let sent = match fetched {
                    Ok(file) => sender.send(Fetched::Big(meta, file)).await,
                    Err(error) => match source_refusal(&error) {
                        // This message alone: the session is read clean and goes on.
                        Some(reason) => {
                            source
                                .drain()
                                .await
                                .map_err(EngineError::imap(Side::Source))?;
                            sender.send(Fetched::Failed(vec![(meta, reason)])).await
                        }
                        None => return Err(error),
                    },
                };
                if sent.is_err() {
                    return Ok(());
                }
            } else {
                batch_bytes += meta.size;
                batch.push(meta);
            }
        }
        Ok::<(), EngineError>(())
    };

    let appender = async {
        let multiappend = target.capabilities().has("MULTIAPPEND");
        while let Some(fetched) = receiver.recv().await {
            match fetched {
                Fetched::Small(items) => {
                    if items.is_empty() {
                        continue;
                    }
                    let pending: Vec<MappedMessage> =
                        items.iter().map(|(meta, _)| pending_row(meta)).collect();
                    store
                        .record_messages(&job.id, &key, uid_validity, &pending)
                        .await?;
                    let requests: Vec<AppendRequest> = items
                        .iter()
                        .map(|(meta, body)| AppendRequest {
                            flags: &meta.flags,
                            internal_date: Some(&meta.internal_date),
                            data: body,
                        })
                        .collect();
                    let outcomes =
                        append_batch(target, &mapping.target_raw, &requests, multiappend).await?;
                    let rows: Vec<MappedMessage> = items
                        .iter()
                        .zip(outcomes)
                        .map(|((meta, _), outcome)| settle(meta, outcome, progress, report))
                        .collect();
                    store
                        .record_messages(&job.id, &key, uid_validity, &rows)
                        .await?;
                    for row in rows {
                        map.insert(row.source_uid, row);
                    }
                }
                Fetched::Failed(items) => {
                    let rows: Vec<MappedMessage> = items
                        .iter()
                        .map(|(meta, reason)| {
                            let mut row = pending_row(meta);
                            row.state = MessageState::Failed;
                            row.detail = Some(reason.clone());
                            report.failed.push(MessageProblem {
                                uid: meta.uid,
                                size: meta.size,
                                reason: reason.clone(),
                            });
                            progress.failed(meta.size);
                            row
                        })
                        .collect();
                    store
                        .record_messages(&job.id, &key, uid_validity, &rows)
                        .await?;
                    for row in rows {
                        map.insert(row.source_uid, row);
                    }
                }
                Fetched::Big(meta, file) => {
                    store
                        .record_messages(&job.id, &key, uid_validity, &[pending_row(&meta)])
                        .await?;
                    let size = file.as_file().metadata().map_err(EngineError::Spool)?.len();
                    let reader =
                        tokio::fs::File::from_std(file.reopen().map_err(EngineError::Spool)?);
                    let reader = tokio::io::BufReader::with_capacity(256 * 1024, reader);
                    let outcome = target
                        .append_stream(
                            &mapping.target_raw,
                            &meta.flags,
                            Some(&meta.internal_date),
                            size,
                            reader,
                        )
                        .await
                        .map_err(EngineError::imap(Side::Target))?;
                    let row = settle(&meta, outcome, progress, report);
                    store
                        .record_messages(&job.id, &key, uid_validity, std::slice::from_ref(&row))
                        .await?;
                    map.insert(row.source_uid, row);
                }
            }
        }
        Ok::<(), EngineError>(())
    };
    let (fetched, appended) = tokio::join!(fetcher, appender);
    appended?;
    fetched
}

/// Bodies of a batch of small messages by UID, and why the source would not give some. A
/// batch the source refuses (a NO that is not throttling), or that comes back short, is asked
/// again message by message, so that one bad message fails alone.
async fn fetch_batch(
    source: &mut Session,
    batch: &[MessageMeta],
) -> Result<(HashMap<u32, Bytes>, HashMap<u32, String>), EngineError> {
    let mut bodies = HashMap::with_capacity(batch.len());
    let mut refused = HashMap::new();
    let set = UidSet::from_uids(batch.iter().map(|m| m.uid));
    collect_bodies(source, &set, &mut bodies).await?;
    let missing: Vec<u32> = batch
        .iter()
        .map(|m| m.uid)
        .filter(|uid| !bodies.contains_key(uid))
        .collect();
    if missing.is_empty() {
        return Ok((bodies, refused));
    }
    for uid in missing {
        if let Some(status) = collect_bodies(source, &UidSet::from_uids([uid]), &mut bodies).await?
        {
            refused.insert(
                uid,
                format!("the source refused to give it: {}", status.said()),
            );
        }
    }
    Ok((bodies, refused))
}

/// `UID FETCH <set> (BODY.PEEK[])` into `bodies`; the server's refusal when it said NO (a
/// throttling NO is an error: the folder is retried after a pause).
async fn collect_bodies(
    source: &mut Session,
    set: &UidSet,
    bodies: &mut HashMap<u32, Bytes>,
) -> Result<Option<Status>, EngineError> {
    let tag = source
        .start_fetch_bodies(set)
        .await
        .map_err(EngineError::imap(Side::Source))?;
    loop {
        match source.next_fetch(&tag).await {
            Ok(Some(fetch)) => {
                if let (Some(uid), Some(data)) =
                    (fetch.uid, fetch.section("").and_then(|s| s.data.clone()))
                {
                    bodies.insert(uid, data);
                }
            }
            Ok(None) => return Ok(None),
            Err(mailferry_imap::ImapError::Command { status, .. }) if !throttled(&status) => {
                return Ok(Some(*status))
            }
            Err(error) => return Err(EngineError::imap(Side::Source)(error)),
        }
    }
}

/// Why the source would not give one message, when the error is about that message alone
/// (a NO that is not throttling, or the message gone): it then fails alone.
fn source_refusal(error: &EngineError) -> Option<String> {
    match error {
        EngineError::Imap {
            side: Side::Source,
            source: mailferry_imap::ImapError::Command { status, .. },
        } if !throttled(status) => {
            Some(format!("the source refused to give it: {}", status.said()))
        }
        EngineError::Imap {
            side: Side::Source,
            source: mailferry_imap::ImapError::Vanished { .. },
        } => Some("the source did not send it (deleted at the source while the pass ran?)".into()),
        _ => None,
    }
}

/// A big message spooled to a temporary file: spread over idle source sessions when it is
/// big enough, else fetched in ranges on `source` alone.
async fn fetch_big(
    source: &mut Session,
    pool: &Pool,
    folder: &[u8],
    uid_validity: u32,
    meta: &MessageMeta,
    chunk: u64,
    spool: Option<&std::path::Path>,
) -> Result<tempfile::NamedTempFile, EngineError> {
    let file = match spool {
        Some(dir) => tempfile::NamedTempFile::new_in(dir),
        None => tempfile::NamedTempFile::new(),
    }
    .map_err(EngineError::Spool)?;
    let spread = fetch_spread(
        source,
        pool,
        folder,
        uid_validity,
        meta,
        chunk,
        file.as_file(),
    )
    .await?;
    if !spread {
        let writer = std::io::BufWriter::with_capacity(
            256 * 1024,
            file.reopen().map_err(EngineError::Spool)?,
        );
        let mut writer = source
            .fetch_body_partial(meta.uid, Some(meta.size), chunk, writer)
            .await
            .map_err(EngineError::imap(Side::Source))?;
        writer.flush().map_err(EngineError::Spool)?;
    }
    Ok(file)
}

/// A message of at least this many chunks is fetched piece by piece, so that source sessions
/// falling idle meanwhile can take pieces of it.
const SPREAD_MIN_CHUNKS: u64 = 2;
/// Sessions fetching one message at most.
const SPREAD_MAX_SESSIONS: usize = 4;
/// How often a big message's fetch looks for source sessions fallen idle.
const SPREAD_RECRUIT_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Fetches a big message into `file` piece by piece. `source` starts alone; source sessions
/// the job opened and no longer uses (folders left are fewer than connections), whether
/// idle at the start or falling idle while the message is fetched, open the folder
/// read-only and take pieces too, each as it has room. `false` when the message is not big
/// enough: the caller then fetches it on `source` alone. Never opens a connection, so
/// `--connections` holds.
#[cfg(unix)]
async fn fetch_spread(
    source: &mut Session,
    pool: &Pool,
    folder: &[u8],
    uid_validity: u32,
    meta: &MessageMeta,
    chunk: u64,
    file: &std::fs::File,
) -> Result<bool, EngineError> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    use std::os::unix::fs::FileExt;
    use std::sync::Mutex;
    let chunk = chunk.max(1);
    if meta.size < SPREAD_MIN_CHUNKS * chunk {
        return Ok(false);
    }
    let count = meta.size.div_ceil(chunk);
    let queue: Mutex<std::collections::VecDeque<(u64, u64)>> =
        Mutex::new((0..count).map(|i| (i * chunk, chunk)).collect());
    let take = || queue.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
    let left = || !queue.lock().unwrap_or_else(|p| p.into_inner()).is_empty();
    let write = |offset: u64, data: &[u8]| file.write_all_at(data, offset);

    let primary = async { source.fetch_body_pieces(meta.uid, take, write).await };
    // Recruits idle sessions while pieces are left and runs them; each goes back to the pool
    // when the queue is empty. On an error the helpers are dropped (closed): their state is
    // unknown.
    let helpers = async {
        let mut running = FuturesUnordered::new();
        let mut lengths = Vec::new();
        let mut recruited = 0usize;
        loop {
            if left() && running.len() + 1 < SPREAD_MAX_SESSIONS {
                if let Some(mut idle) = pool.try_idle() {
                    // A session whose folder cannot be opened as it was is dropped (closed).
                    if let Ok(selected) = idle.session.select(folder, true, None).await {
                        if selected.uid_validity == uid_validity {
                            recruited += 1;
                            running.push(async move {
                                let got =
                                    idle.session.fetch_body_pieces(meta.uid, take, write).await;
                                (idle, got)
                            });
                        }
                    }
                    continue;
                }
            }
            if running.is_empty() && !left() {
                break;
            }
            tokio::select! {
                Some((idle, got)) = running.next(), if !running.is_empty() => {
                    lengths.extend(got?);
                    pool.put(idle);
                }
                () = tokio::time::sleep(SPREAD_RECRUIT_EVERY), if left() => {}
                else => break,
            }
        }
        Ok::<_, mailferry_imap::ImapError>((lengths, recruited))
    };
    let (first, others) = tokio::join!(primary, helpers);
    let mut lengths: HashMap<u64, u64> = first
        .map_err(EngineError::imap(Side::Source))?
        .into_iter()
        .collect();
    let (others, recruited) = others.map_err(EngineError::imap(Side::Source))?;
    lengths.extend(others);

    // The message ends at the first piece that came back short. If none did, the server's
    // size was too small: the rest is fetched here, piece by piece, until one is short.
    let mut total = 0;
    let mut ended = false;
    for i in 0..count {
        let offset = i * chunk;
        let length = lengths.get(&offset).copied().unwrap_or(0);
        total = offset + length;
        if length < chunk {
            ended = true;
            break;
        }
    }
    while !ended {
        let mut asked = Some((total, chunk));
        let got = source
            .fetch_body_pieces(meta.uid, || asked.take(), write)
            .await
            .map_err(EngineError::imap(Side::Source))?;
        let length = got.first().map_or(0, |(_, length)| *length);
        total += length;
        ended = length < chunk;
    }
    if total == 0 {
        return Err(EngineError::imap(Side::Source)(
            mailferry_imap::ImapError::Vanished { uid: meta.uid },
        ));
    }
    file.set_len(total).map_err(EngineError::Spool)?;
    if recruited > 0 {
        tracing::info!(
            uid = meta.uid,
            bytes = total,
            connections = recruited + 1,
            "a big message fetched over several connections"
        );
    }
    Ok(true)
}

#[cfg(not(unix))]
async fn fetch_spread(
    _source: &mut Session,
    _pool: &Pool,
    _folder: &[u8],
    _uid_validity: u32,
    _meta: &MessageMeta,
    _chunk: u64,
    _file: &std::fs::File,
) -> Result<bool, EngineError> {
    Ok(false)
}

/// Appends a batch: MULTIAPPEND when offered (all or none; on a refusal, one by one to learn
/// which message it was), else pipelined APPENDs. Messages refused as throttled are sent
/// again after a pause, a few times, before they count as failed.
async fn append_batch(
    target: &mut Session,
    folder: &[u8],
    requests: &[AppendRequest<'_>],
    multiappend: bool,
) -> Result<Vec<AppendOutcome>, EngineError> {
    let mut outcomes: Vec<AppendOutcome> = if multiappend && requests.len() > 1 {
        match target
            .multiappend(folder, requests)
            .await
            .map_err(EngineError::imap(Side::Target))?
        {
            Ok(landed) if landed.len() == requests.len() => {
                landed.into_iter().map(|a| Ok(Some(a))).collect()
            }
            Ok(_) => requests.iter().map(|_| Ok(None)).collect(),
            Err(_) => target
                .append_many(folder, requests, 16)
                .await
                .map_err(EngineError::imap(Side::Target))?,
        }
    } else {
        target
            .append_many(folder, requests, 16)
            .await
            .map_err(EngineError::imap(Side::Target))?
    };
    for attempt in 1..RETRIES {
        let again: Vec<usize> = outcomes
            .iter()
            .enumerate()
            .filter(|(_, o)| matches!(o, Err(status) if throttled(status)))
            .map(|(i, _)| i)
            .collect();
        if again.is_empty() {
            break;
        }
        let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
        tracing::warn!(
            messages = again.len(),
            retry_in_ms = wait.as_millis() as u64,
            "the target is throttling; pausing"
        );
        tokio::time::sleep(wait).await;
        let retry: Vec<AppendRequest> = again.iter().map(|&i| requests[i]).collect();
        let retried = target
            .append_many(folder, &retry, 16)
            .await
            .map_err(EngineError::imap(Side::Target))?;
        for (i, outcome) in again.into_iter().zip(retried) {
            outcomes[i] = outcome;
        }
    }
    Ok(outcomes)
}

fn pending_row(meta: &MessageMeta) -> MappedMessage {
    MappedMessage {
        source_uid: meta.uid,
        fingerprint: Fingerprint::of(meta).key(),
        state: MessageState::Pending,
        target_uid: None,
        flags: flags_key(&meta.flags),
        detail: None,
    }
}

fn settle(
    meta: &MessageMeta,
    outcome: AppendOutcome,
    progress: &Progress,
    report: &mut FolderReport,
) -> MappedMessage {
    let mut row = pending_row(meta);
    match outcome {
        Ok(landed) => {
            row.state = MessageState::Copied;
            row.target_uid = landed.map(|a| a.uid);
            report.copied += 1;
            report.copied_bytes += meta.size;
            progress.copied(meta.size);
        }
        Err(status) => {
            row.state = MessageState::Failed;
            row.detail = Some(status.said());
            report.failed.push(MessageProblem {
                uid: meta.uid,
                size: meta.size,
                reason: format!("the target refused it: {}", status.said()),
            });
            progress.failed(meta.size);
        }
    }
    row
}

#[allow(clippy::too_many_arguments)]
async fn apply_flags(
    target: &mut Session,
    job: &Job,
    store: &Store,
    key: &str,
    uid_validity: u32,
    changes: &[(u32, Vec<String>)],
    map: &mut HashMap<u32, MappedMessage>,
    report: &mut FolderReport,
) -> Result<(), EngineError> {
    let mut by_flags: HashMap<String, Vec<u32>> = HashMap::new();
    let mut updated = Vec::new();
    for (uid, flags) in changes {
        let Some(row) = map.get_mut(uid) else {
            continue;
        };
        if !matches!(row.state, MessageState::Copied | MessageState::Present) {
            continue;
        }
        let wanted = flags_key(flags);
        if wanted == row.flags {
            continue;
        }
        let Some(target_uid) = row.target_uid else {
            report.notes.push(format!("flags of UID {uid} not updated: the target did not say where the message landed (no UIDPLUS)"));
            continue;
        };
        by_flags.entry(wanted.clone()).or_default().push(target_uid);
        row.flags = wanted;
        updated.push(row.clone());
    }
    for (flags, uids) in by_flags {
        let set = UidSet::from_uids(uids.iter().copied());
        target
            .uid_store(&set, "FLAGS.SILENT", &flags_of(&flags))
            .await
            .map_err(EngineError::imap(Side::Target))?;
        report.flags_updated += uids.len() as u64;
    }
    store
        .record_messages(&job.id, key, uid_validity, &updated)
        .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn apply_deletions(
    target: &mut Session,
    job: &Job,
    store: &Store,
    key: &str,
    uid_validity: u32,
    vanished: &[u32],
    map: &HashMap<u32, MappedMessage>,
    report: &mut FolderReport,
) -> Result<(), EngineError> {
    let gone: Vec<u32> = vanished
        .iter()
        .copied()
        .filter(|uid| map.contains_key(uid))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    // Only messages that are on the target count; a failed one that is gone now is just
    // forgotten.
    let placed: Vec<u32> = gone
        .iter()
        .copied()
        .filter(|uid| map.get(uid).is_some_and(is_placed))
        .collect();
    report.deleted_at_source += placed.len() as u64;
    if !placed.is_empty() && job.options.sync_deletes {
        let targets: Vec<u32> = placed
            .iter()
            .filter_map(|uid| map.get(uid).and_then(|m| m.target_uid))
            .collect();
        if !targets.is_empty() {
            if !target.capabilities().has("UIDPLUS") {
                report.notes.push("deletions not applied: the target lacks UIDPLUS (UID EXPUNGE), and a plain EXPUNGE could remove other messages".into());
            } else {
                let set = UidSet::from_uids(targets.iter().copied());
                target
                    .uid_store(&set, "+FLAGS.SILENT", &["\\Deleted".to_string()])
                    .await
                    .map_err(EngineError::imap(Side::Target))?;
                target
                    .run_ok("UID EXPUNGE", format!("UID EXPUNGE {set}\r\n").as_bytes())
                    .await
                    .map_err(EngineError::imap(Side::Target))?;
                report.deleted_on_target += targets.len() as u64;
            }
        }
    } else if !placed.is_empty() {
        report.notes.push(format!("{} messages were deleted at the source and kept on the target (use --sync-deletes to delete them there too)", placed.len()));
    }
    store
        .delete_messages(&job.id, key, uid_validity, &gone)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailferry_imap::response::StatusKind;

    fn no(code: Option<Code>, text: &str) -> Status {
        Status {
            kind: StatusKind::No,
            code,
            text: text.into(),
        }
    }

    #[test]
    fn throttling_answers_are_told_apart_from_refusals() {
        assert!(throttled(&no(Some(Code::Limit), "Too many commands")));
        assert!(throttled(&no(Some(Code::Unavailable), "Try again")));
        assert!(throttled(&no(
            Some(Code::Other {
                name: "THROTTLED".into(),
                args: String::new()
            }),
            "Slow down"
        )));
        assert!(throttled(&no(None, "Server Unavailable. 15")));
        assert!(!throttled(&no(Some(Code::OverQuota), "Quota exceeded")));
        assert!(!throttled(&no(Some(Code::TooBig), "Message too large")));
        assert!(!throttled(&no(None, "Invalid message")));
    }

    #[test]
    fn flags_are_kept_sorted_without_recent() {
        let key = flags_key(&[
            "\\Seen".into(),
            "$Forwarded".into(),
            "\\Recent".into(),
            "\\Seen".into(),
        ]);
        assert_eq!(key, "$Forwarded \\Seen");
        assert_eq!(
            flags_of(&key),
            vec!["$Forwarded".to_string(), "\\Seen".to_string()]
        );
        assert_eq!(flags_of(""), Vec::<String>::new());
    }
}
