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
    // Both sides' annotations are read pipelined: one round trip per side for all folders.
    let folders: Vec<usize> = (0..work.len())
        .filter(|&i| work[i].2.error.is_none())
        .collect();
    let names: Vec<&[u8]> = folders
        .iter()
        .map(|&i| work[i].0.source_raw.as_slice())
        .collect();
    let read = match source.get_metadata_many(&names).await {
        Ok(read) => read,
        Err(e) => {
            report
                .notes
                .push(format!("folder annotations not read at the source: {e}"));
            return;
        }
    };
    let mut found = Vec::new();
    for (&i, entries) in folders.iter().zip(read) {
        match entries {
            Ok(entries) => {
                let entries: Vec<MetadataEntry> = entries
                    .into_iter()
                    .filter(|e| !e.name.eq_ignore_ascii_case(SPECIAL_USE))
                    .collect();
                if !target.has_metadata() {
                    left += entries.len();
                } else if !entries.is_empty() {
                    found.push((i, entries));
                }
            }
            Err(e) => work[i]
                .2
                .notes
                .push(format!("annotations not read at the source: {e}")),
        }
    }
    let names: Vec<&[u8]> = found
        .iter()
        .map(|(i, _)| work[*i].0.target_raw.as_slice())
        .collect();
    let held = match target.get_metadata_many(&names).await {
        Ok(held) => held,
        Err(e) => {
            report
                .notes
                .push(format!("folder annotations not read on the target: {e}"));
            return;
        }
    };
    for ((i, entries), existing) in found.into_iter().zip(held) {
        let (mapping, _, folder) = &mut work[i];
        let existing = match existing {
            Ok(existing) => existing,
            // A dry run creates no folder: one it would create has nothing yet.
            Err(_) if dry_run => Vec::new(),
            Err(e) => {
                folder
                    .notes
                    .push(format!("annotations not read on the target: {e}"));
                continue;
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
