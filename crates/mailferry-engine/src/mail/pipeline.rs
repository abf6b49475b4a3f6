//! The fetch/append pipeline of a folder: the source is read in batches (big messages in
//! ranges, spooled to disk, spread over idle source sessions) while the target appends the
//! previous batch (MULTIAPPEND where offered, else pipelined APPENDs). Every message is
//! recorded as pending before its APPEND and settled after; one the source will not give or
//! the target refuses fails alone.

use mailferry_imap::UidValidity;
use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use mailferry_imap::response::Status;
use mailferry_imap::{AppendOutcome, AppendRequest, MessageMeta, Pool, Session, Uid, UidSet};
use mailferry_store::{MappedMessage, MessageState};
use tokio::sync::mpsc;

use super::flags::flags_key;
use super::folder::FolderPass;
use super::retry::{throttled, RETRIES};
use crate::error::{EngineError, Side};
use crate::fingerprint::Fingerprint;
use crate::progress::Progress;
use crate::report::{FolderReport, MessageProblem};

/// What the fetcher hands to the appender.
pub(crate) enum Fetched {
    Small(Vec<(MessageMeta, Bytes)>),
    Big(MessageMeta, tempfile::NamedTempFile),
    /// Messages the source would not give, with why: each fails alone (issue 19).
    Failed(Vec<(MessageMeta, String)>),
}

/// Copies `to_copy` from the selected source folder to the selected target folder: the
/// fetcher runs ahead of the appender by a batch or two.
pub(crate) async fn copy_messages(
    source: &mut Session,
    target: &mut Session,
    pass: &FolderPass<'_>,
    uid_validity: UidValidity,
    to_copy: Vec<MessageMeta>,
    map: &mut HashMap<Uid, MappedMessage>,
    report: &mut FolderReport,
) -> Result<(), EngineError> {
    if to_copy.is_empty() {
        return Ok(());
    }
    let (job, store, progress) = (pass.job, pass.store, pass.progress);
    let (source_pool, mapping) = (pass.source_pool, pass.mapping);
    let options = &job.options;
    let key = pass.key.clone();
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
                                uid: meta.uid.get(),
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
pub(crate) async fn fetch_batch(
    source: &mut Session,
    batch: &[MessageMeta],
) -> Result<(HashMap<Uid, Bytes>, HashMap<Uid, String>), EngineError> {
    let mut bodies = HashMap::with_capacity(batch.len());
    let mut refused = HashMap::new();
    let set = UidSet::from_uids(batch.iter().map(|m| m.uid));
    collect_bodies(source, &set, &mut bodies).await?;
    let missing: Vec<Uid> = batch
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
pub(crate) async fn collect_bodies(
    source: &mut Session,
    set: &UidSet,
    bodies: &mut HashMap<Uid, Bytes>,
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
pub(crate) fn source_refusal(error: &EngineError) -> Option<String> {
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
pub(crate) async fn fetch_big(
    source: &mut Session,
    pool: &Pool,
    folder: &[u8],
    uid_validity: UidValidity,
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
pub(crate) const SPREAD_MIN_CHUNKS: u64 = 2;

/// Sessions fetching one message at most.
pub(crate) const SPREAD_MAX_SESSIONS: usize = 4;

/// How often a big message's fetch looks for source sessions fallen idle.
pub(crate) const SPREAD_RECRUIT_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

/// Fetches a big message into `file` piece by piece. `source` starts alone; source sessions
/// the job opened and no longer uses (folders left are fewer than connections), whether
/// idle at the start or falling idle while the message is fetched, open the folder
/// read-only and take pieces too, each as it has room. `false` when the message is not big
/// enough: the caller then fetches it on `source` alone. Never opens a connection, so
/// `--connections` holds.
#[cfg(unix)]
pub(crate) async fn fetch_spread(
    source: &mut Session,
    pool: &Pool,
    folder: &[u8],
    uid_validity: UidValidity,
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
                        if selected.uid_validity == Some(uid_validity) {
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
            mailferry_imap::ImapError::Vanished {
                uid: meta.uid.get(),
            },
        ));
    }
    file.set_len(total).map_err(EngineError::Spool)?;
    if recruited > 0 {
        tracing::info!(
            uid = meta.uid.get(),
            bytes = total,
            connections = recruited + 1,
            "a big message fetched over several connections"
        );
    }
    Ok(true)
}

#[cfg(not(unix))]
pub(crate) async fn fetch_spread(
    _source: &mut Session,
    _pool: &Pool,
    _folder: &[u8],
    _uid_validity: UidValidity,
    _meta: &MessageMeta,
    _chunk: u64,
    _file: &std::fs::File,
) -> Result<bool, EngineError> {
    Ok(false)
}

/// Appends a batch: MULTIAPPEND when offered (all or none; on a refusal, one by one to learn
/// which message it was), else pipelined APPENDs. Messages refused as throttled are sent
/// again after a pause, a few times, before they count as failed.
pub(crate) async fn append_batch(
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
        super::retry::note_throttle_pause();
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

pub(crate) fn pending_row(meta: &MessageMeta) -> MappedMessage {
    MappedMessage {
        source_uid: meta.uid,
        fingerprint: Fingerprint::of(meta).key(),
        state: MessageState::Pending,
        target_uid: None,
        flags: flags_key(&meta.flags),
        detail: None,
    }
}

pub(crate) fn settle(
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
                uid: meta.uid.get(),
                size: meta.size,
                reason: format!("the target refused it: {}", status.said()),
            });
            progress.failed(meta.size);
        }
    }
    row
}
