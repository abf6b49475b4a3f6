//! Folder annotations (IMAP METADATA, RFC 5464): Kolab's `/shared/vendor/kolab/folder-type`,
//! comments, colours. Copied folder by folder where both sides speak METADATA, after the
//! folders exist on the target; an entry the target already holds with the same value is
//! not written again. Where only the source has them, the report says how many stayed.
//! `/private/specialuse` (RFC 6154's special-use as an annotation) is left to the folder
//! mapping, which matches special folders by their flag and creates them with CREATE (USE):
//! it is neither written nor counted.

use mailferry_imap::{MetadataEntry, Session, SetOutcome};

use super::run::WorkItem;
use crate::report::Report;

/// Carried by the folder mapping, not by SETMETADATA.
const SPECIAL_USE: &str = "/private/specialuse";

/// Copies the annotations of every folder in `work`; counts go into each folder's report.
pub(crate) async fn copy_annotations(
    source: &mut Session,
    target: &mut Session,
    work: &mut [WorkItem],
    dry_run: bool,
    report: &mut Report,
) {
    if source.capabilities().has("ANNOTATEMORE") && !source.has_metadata() {
        report.notes.push(
            "the source has folder annotations over ANNOTATEMORE (the draft before RFC 5464), \
             which this version does not read: they were not copied"
                .into(),
        );
        return;
    }
    if !source.has_metadata() {
        return;
    }
    let mut left = 0usize;
    for (mapping, _, folder) in work.iter_mut() {
        if folder.error.is_some() {
            continue;
        }
        let entries = match source.get_metadata(&mapping.source_raw).await {
            Ok(entries) => entries
                .into_iter()
                .filter(|e| !e.name.eq_ignore_ascii_case(SPECIAL_USE))
                .collect::<Vec<_>>(),
            Err(e) => {
                folder
                    .notes
                    .push(format!("annotations not read at the source: {e}"));
                continue;
            }
        };
        if entries.is_empty() {
            continue;
        }
        if !target.has_metadata() {
            left += entries.len();
            continue;
        }
        let existing = if dry_run && folder.notes.iter().any(|n| n == "created on the target") {
            Vec::new()
        } else {
            match target.get_metadata(&mapping.target_raw).await {
                Ok(existing) => existing,
                Err(e) => {
                    folder
                        .notes
                        .push(format!("annotations not read on the target: {e}"));
                    continue;
                }
            }
        };
        for entry in entries {
            if existing.contains(&entry) {
                continue;
            }
            if dry_run {
                folder.annotations_copied += 1;
                continue;
            }
            match target.set_metadata(&mapping.target_raw, &entry).await {
                Ok(SetOutcome::Stored) => folder.annotations_copied += 1,
                Ok(SetOutcome::Refused(said)) => folder.notes.push(refused(&entry, &said)),
                Err(e) => {
                    folder
                        .notes
                        .push(format!("annotation `{}` not copied: {e}", entry.name));
                    break;
                }
            }
        }
    }
    if left > 0 {
        report.notes.push(format!(
            "{left} folder annotations (IMAP METADATA) stay at the source: the target does not \
             offer METADATA"
        ));
    }
}

fn refused(entry: &MetadataEntry, said: &str) -> String {
    format!(
        "annotation `{}` not copied: the target refused it ({said})",
        entry.name
    )
}
