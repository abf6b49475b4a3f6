//! One folder's pass: EXAMINE the source (QRESYNC from the checkpoint where offered), SELECT
//! the target, check both against the checkpoint, decide the candidates ([`super::plan`]),
//! dedup against the target ([`super::dedup`]), copy ([`super::pipeline`]), flags
//! ([`super::flags`]), deletions ([`super::deletions`]), and save the checkpoint with what the
//! target says it holds.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use mailferry_imap::{FetchRange, MessageMeta, Pool, Resync, Session, Uid, UidSet};
use mailferry_store::{FolderCheckpoint, MappedMessage, MessageState, Store};

use super::dedup::{dedup, same_size_on_target};
use super::deletions::apply_deletions;
use super::flags::{apply_flags, flags_key};
use super::pipeline::copy_messages;
use super::plan::{
    delta_candidates, is_placed, lost_copies, refetch, source_uid_next, target_changed,
};
use super::run::{folder_key, Job};
use crate::error::{EngineError, Side};
use crate::fingerprint::Fingerprint;
use crate::folder_map::FolderMapping;
use crate::progress::Progress;
use crate::report::{FolderReport, MessageProblem};

/// Messages to place, flag changes (source UID, flags), and source UIDs gone.
pub(crate) type SourceChanges = (Vec<MessageMeta>, Vec<(Uid, Vec<String>)>, Vec<Uid>);

/// What every step of one folder's pass works with: the job, its state and counters, the
/// source sessions for big messages, and the folder with its key in the state.
pub(crate) struct FolderPass<'a> {
    pub job: &'a Job,
    pub store: &'a Store,
    pub progress: &'a Progress,
    pub source_pool: &'a Pool,
    pub mapping: &'a FolderMapping,
    /// The folder's key in the state: its raw source name.
    pub key: String,
}

impl<'a> FolderPass<'a> {
    pub(crate) fn new(
        job: &'a Job,
        store: &'a Store,
        progress: &'a Progress,
        source_pool: &'a Pool,
        mapping: &'a FolderMapping,
    ) -> Self {
        Self {
            job,
            store,
            progress,
            source_pool,
            mapping,
            key: folder_key(&mapping.source_raw),
        }
    }
}

/// One folder's pass over a source and a target session.
pub(crate) async fn copy_folder(
    source: &mut Session,
    target: &mut Session,
    pass: &FolderPass<'_>,
    report: &mut FolderReport,
) -> Result<(), EngineError> {
    let (job, store, progress, mapping) = (pass.job, pass.store, pass.progress, pass.mapping);
    let options = &job.options;
    let key = pass.key.clone();
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
    let uid_validity = selected
        .uid_validity
        .ok_or_else(|| EngineError::NoUidValidity {
            side: Side::Source,
            folder: mapping.source_name.clone(),
        })?;
    if let Some(cp) = &checkpoint {
        if cp.source_uidvalidity != uid_validity {
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
        if cp.target_uidvalidity.is_none() || cp.target_uidvalidity != target_selected.uid_validity
        {
            report.notes.push("the target folder's UIDVALIDITY changed: messages are matched again by fingerprint".into());
            store.forget_folder(&job.id, &key).await?;
            checkpoint = None;
        }
    }
    let mut map: HashMap<Uid, MappedMessage> = store
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
            let uids: Vec<Uid> = placed.iter().filter_map(|row| row.target_uid).collect();
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
        seen_uids.extend(fetched.iter().map(|m| m.uid.get()));
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
        seen_uids.extend(all.iter().map(|m| m.uid.get()));
        let present: HashSet<Uid> = all.iter().map(|m| m.uid).collect();
        let vanished = map
            .keys()
            .copied()
            .filter(|uid| !present.contains(uid))
            .collect();
        let unmapped: Vec<Uid> = all
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
                uid: meta.uid.get(),
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
        pass,
        uid_validity,
        to_copy,
        &mut map,
        report,
    )
    .await?;
    apply_flags(target, pass, uid_validity, &flag_changes, &mut map, report).await?;
    apply_deletions(target, pass, uid_validity, &vanished, &map, report).await?;

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
                target_uidvalidity: target_selected.uid_validity,
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
pub(crate) async fn existing_uids(
    session: &mut Session,
    uids: &[Uid],
) -> Result<HashSet<Uid>, mailferry_imap::ImapError> {
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
            found.extend(uids.into_iter().filter_map(Uid::new));
        }
    }
    Ok(found)
}

/// Waits until the selected target folder's UIDNEXT and message count have stayed the same
/// for two seconds (at most half a minute): appends of a dead connection land meanwhile.
pub(crate) async fn wait_until_settled(
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
