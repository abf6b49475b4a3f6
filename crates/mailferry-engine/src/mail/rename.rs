//! A folder renamed at the source between two passes (issue 19). Its state is keyed by the
//! old name, so without this the new name would be a new folder, copied again into a new
//! target folder beside the old copy. A new source folder is the old one renamed when it has
//! the UIDVALIDITY of a folder that is gone from the source (RFC 3501 §6.3.5: RENAME keeps
//! it on Dovecot and Cyrus) and the messages the state recorded for it (same UIDs, sizes and
//! dates). Then the target folder is renamed along where it can be, and the state follows.

use std::collections::{HashMap, HashSet};

use mailferry_imap::{mutf7, FetchRange, Folder, MessageMeta, Session, Uid};
use mailferry_store::{FolderCheckpoint, MappedMessage, Store};

use crate::error::{EngineError, Side};
use crate::fingerprint::Fingerprint;
use crate::folder_map::FolderMapping;

use super::run::Job;

/// What a pass found renamed: per new source folder (its key), the note for the report.
pub(crate) type Renames = HashMap<String, String>;

/// What the plan of a run knows when renames are looked for; the checkpoints and the target's
/// folders are updated to match what was followed.
pub(crate) struct Planned<'a> {
    pub source_folders: &'a [Folder],
    pub mappings: &'a [FolderMapping],
    pub checkpoints: &'a mut HashMap<String, FolderCheckpoint>,
    pub target_folders: &'a mut Vec<Folder>,
}

/// Finds the folders renamed at the source since the last pass and moves their state (and,
/// where it can, their target folder) to the new names.
pub(crate) async fn follow_renames(
    source: &mut Session,
    target: &mut Session,
    store: &Store,
    job: &Job,
    planned: Planned<'_>,
) -> Result<Renames, EngineError> {
    let Planned {
        source_folders,
        mappings,
        checkpoints,
        target_folders,
    } = planned;
    let (job_id, dry_run) = (job.id.as_str(), job.options.dry_run);
    let mut renames = Renames::new();
    let present: HashSet<String> = source_folders.iter().map(|f| key(&f.raw_name)).collect();
    let mut gone: Vec<FolderCheckpoint> = checkpoints
        .values()
        .filter(|cp| !present.contains(&cp.source_folder))
        .cloned()
        .collect();
    for mapping in mappings {
        if gone.is_empty() {
            break;
        }
        let new_key = key(&mapping.source_raw);
        if checkpoints.contains_key(&new_key) {
            continue;
        }
        let Some(uid_validity) = source_folders
            .iter()
            .find(|f| f.raw_name == mapping.source_raw)
            .and_then(|f| f.status.as_ref())
            .and_then(|s| s.uid_validity)
        else {
            continue;
        };
        let matching: Vec<usize> = (0..gone.len())
            .filter(|&i| gone[i].source_uidvalidity == uid_validity)
            .collect();
        let [at] = matching[..] else {
            continue; // none, or more than one: not told apart safely
        };
        let old = gone[at].clone();
        // A crashed first pass of the new name left rows of its own: not a rename to follow.
        if !store
            .mapped_messages(job_id, &new_key, uid_validity)
            .await?
            .is_empty()
        {
            continue;
        }
        let rows = store
            .mapped_messages(job_id, &old.source_folder, uid_validity)
            .await?;
        let selected = source
            .select(&mapping.source_raw, true, None)
            .await
            .map_err(EngineError::imap(Side::Source))?;
        if selected.uid_validity != Some(uid_validity) {
            continue;
        }
        let metas = source
            .fetch_meta(FetchRange::All, None, false)
            .await
            .map_err(EngineError::imap(Side::Source))?;
        if !same_messages(&rows, &metas) {
            continue;
        }
        let old_name = if source.utf8_enabled() {
            old.source_folder.clone()
        } else {
            mutf7::decode_lenient(old.source_folder.as_bytes())
        };
        let old_target = target_folders
            .iter()
            .find(|t| key(&t.raw_name) == old.target_folder)
            .map(|t| t.raw_name.clone());
        let new_target_there = target_folders
            .iter()
            .any(|t| t.raw_name == mapping.target_raw || t.name == mapping.target_name);
        let note = match (old_target, new_target_there) {
            // Both there: the old copy is left as it is, the new name treated as new.
            (Some(_), true) => continue,
            (Some(old_raw), false) => {
                if !dry_run {
                    target
                        .rename(&old_raw, &mapping.target_raw)
                        .await
                        .map_err(EngineError::imap(Side::Target))?;
                    // Children moved along: the target's folders are read again.
                    *target_folders = target
                        .list_folders(true)
                        .await
                        .map_err(EngineError::imap(Side::Target))?;
                }
                format!("renamed at the source from `{old_name}` (same UIDVALIDITY and messages): renamed on the target too, nothing copied again")
            }
            (None, _) => format!("renamed at the source from `{old_name}` (same UIDVALIDITY and messages): its copies are looked for in `{}`", mapping.target_name),
        };
        let target_key = key(&mapping.target_raw);
        if !dry_run {
            store
                .move_folder(job_id, &old.source_folder, &new_key, &target_key)
                .await?;
        }
        checkpoints.remove(&old.source_folder);
        checkpoints.insert(
            new_key.clone(),
            FolderCheckpoint {
                source_folder: new_key.clone(),
                target_folder: target_key,
                ..old
            },
        );
        gone.remove(at);
        renames.insert(new_key, note);
    }
    Ok(renames)
}

fn key(raw: &[u8]) -> String {
    String::from_utf8_lossy(raw).into_owned()
}

/// Whether the folder holds the messages the state recorded: every recorded UID that is
/// still there has the recorded size and date (the Message-ID is not fetched here), and at
/// least one is (an empty record proves nothing either way, and is taken as the same).
pub(crate) fn same_messages(rows: &[MappedMessage], metas: &[MessageMeta]) -> bool {
    if rows.is_empty() {
        return true;
    }
    let by_uid: HashMap<Uid, &MessageMeta> = metas.iter().map(|m| (m.uid, m)).collect();
    let mut compared = 0;
    for row in rows {
        let Some(meta) = by_uid.get(&row.source_uid) else {
            continue;
        };
        let now = Fingerprint::of(meta).key();
        let size_and_date = |k: &str| k.rsplit_once(':').map(|(head, _)| head.to_string());
        if size_and_date(&now) != size_and_date(&row.fingerprint) {
            return false;
        }
        compared += 1;
    }
    compared > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailferry_store::MessageState;

    fn meta(uid: u32, size: u64, date: &str) -> MessageMeta {
        MessageMeta {
            uid: Uid::new(uid).unwrap(),
            flags: Vec::new(),
            internal_date: date.into(),
            size,
            modseq: None,
            message_id: None,
        }
    }

    fn row(meta: &MessageMeta, with_id: bool) -> MappedMessage {
        let mut with = meta.clone();
        if with_id {
            with.message_id = Some(b"Message-ID: <a@b>".to_vec());
        }
        MappedMessage {
            source_uid: meta.uid,
            fingerprint: Fingerprint::of(&with).key(),
            state: MessageState::Copied,
            target_uid: Some(meta.uid),
            flags: String::new(),
            detail: None,
        }
    }

    #[test]
    fn a_renamed_folder_holds_the_recorded_messages() {
        let a = meta(1, 100, "01-Jan-2020 10:00:00 +0000");
        let b = meta(2, 200, "02-Jan-2020 10:00:00 +0000");
        let rows = vec![row(&a, true), row(&b, false)];
        assert!(same_messages(&rows, &[a.clone(), b.clone()]));
        // One deleted since: the rest still match.
        assert!(same_messages(&rows, std::slice::from_ref(&b)));
        // Other messages under the same UIDs: not the same folder.
        let other = meta(2, 201, "02-Jan-2020 10:00:00 +0000");
        assert!(!same_messages(&rows, &[a.clone(), other]));
        // Nothing in common at all.
        assert!(!same_messages(
            &rows,
            &[meta(9, 100, "01-Jan-2020 10:00:00 +0000")]
        ));
        assert!(same_messages(&[], &[a]));
    }
}
