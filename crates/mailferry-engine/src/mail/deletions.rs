//! Messages deleted at the source since the last pass: counted, and deleted on the target
//! with `sync_deletes` (UID EXPUNGE, so that nothing else goes).

use mailferry_imap::UidValidity;
use std::collections::HashMap;

use mailferry_imap::{Session, Uid, UidSet};
use mailferry_store::MappedMessage;

use super::folder::FolderPass;
use super::plan::is_placed;
use crate::error::{EngineError, Side};
use crate::report::FolderReport;

/// Counts (and with `sync_deletes` carries) what vanished at the source since the last pass.
pub(crate) async fn apply_deletions(
    target: &mut Session,
    pass: &FolderPass<'_>,
    uid_validity: UidValidity,
    vanished: &[Uid],
    map: &HashMap<Uid, MappedMessage>,
    report: &mut FolderReport,
) -> Result<(), EngineError> {
    let (job, store, key) = (pass.job, pass.store, pass.key.as_str());
    let gone: Vec<Uid> = vanished
        .iter()
        .copied()
        .filter(|uid| map.contains_key(uid))
        .collect();
    if gone.is_empty() {
        return Ok(());
    }
    // Only messages that are on the target count; a failed one that is gone now is just
    // forgotten.
    let placed: Vec<Uid> = gone
        .iter()
        .copied()
        .filter(|uid| map.get(uid).is_some_and(is_placed))
        .collect();
    report.deleted_at_source += placed.len() as u64;
    if !placed.is_empty() && job.options.sync_deletes {
        let targets: Vec<Uid> = placed
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
