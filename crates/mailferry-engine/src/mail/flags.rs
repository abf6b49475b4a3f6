//! Flag changes at the source carried to our copies (UID STORE), and the form flags take in
//! the message map (sorted, `\\Recent` left out).

use mailferry_imap::UidValidity;
use std::collections::HashMap;

use mailferry_imap::{Session, Uid, UidSet};
use mailferry_store::{MappedMessage, MessageState};

use super::folder::FolderPass;
use crate::error::{EngineError, Side};
use crate::report::FolderReport;

/// Flags as kept in the map: sorted, `\Recent` left out.
pub(crate) fn flags_key(flags: &[String]) -> String {
    let mut flags: Vec<&str> = flags
        .iter()
        .map(String::as_str)
        .filter(|f| !f.eq_ignore_ascii_case("\\Recent"))
        .collect();
    flags.sort_unstable();
    flags.dedup();
    flags.join(" ")
}

pub(crate) fn flags_of(key: &str) -> Vec<String> {
    key.split(' ')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect()
}

/// Sets on our copies the flags that changed at the source (`changes`: source UID, flags).
pub(crate) async fn apply_flags(
    target: &mut Session,
    pass: &FolderPass<'_>,
    uid_validity: UidValidity,
    changes: &[(Uid, Vec<String>)],
    map: &mut HashMap<Uid, MappedMessage>,
    report: &mut FolderReport,
) -> Result<(), EngineError> {
    let (job, store, key) = (pass.job, pass.store, pass.key.as_str());
    let mut by_flags: HashMap<String, Vec<Uid>> = HashMap::new();
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

#[cfg(test)]
mod tests {
    use super::*;

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
