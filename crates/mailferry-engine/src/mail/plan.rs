//! The decisions of a mail pass that need no server: whether a folder can be skipped, which
//! source messages are candidates, which copies the target lost, how far a folder was seen.
//! Pure functions over what the servers and the state said, so each rule is unit-tested.

use std::collections::{HashMap, HashSet};

use mailferry_imap::response::FolderStatus;
use mailferry_imap::{MessageMeta, Selected, Uid};
use mailferry_store::{FolderCheckpoint, FolderTally, MappedMessage, MessageState};

/// Whether a row's message is on the target (copied by us, or found there).
pub(crate) fn is_placed(row: &MappedMessage) -> bool {
    matches!(row.state, MessageState::Copied | MessageState::Present)
}

/// Why a folder cannot be skipped, or `None` when nothing changed on either side since the
/// last completed pass and nothing is left to retry: then no command is sent for it.
///
/// The target is part of the rule (issue 18): a target folder that was deleted, recreated
/// (new UIDVALIDITY) or changed at all (UIDNEXT or message count) is looked at again, since
/// the state alone cannot tell whether our copies are still there.
pub(crate) fn why_not_skipped(
    checkpoint: &FolderCheckpoint,
    source: Option<&FolderStatus>,
    target: Option<&FolderStatus>,
    target_name: &str,
    tally: FolderTally,
) -> Option<&'static str> {
    let Some(source) = source else {
        return Some("the source folder's status is unknown");
    };
    if checkpoint.target_folder != target_name {
        return Some("the folder goes to another target folder than last time");
    }
    if source.uid_validity != Some(checkpoint.source_uidvalidity)
        || source.uid_next != Some(checkpoint.source_uidnext)
        || checkpoint.source_modseq.is_none()
        || source.highest_modseq != checkpoint.source_modseq
    {
        return Some("the source folder changed");
    }
    if tally.unsettled > 0 {
        return Some("messages that failed or were not confirmed are tried again");
    }
    let Some(target) = target else {
        return Some("the target folder is missing");
    };
    if target.uid_validity.is_none() || target.uid_validity != checkpoint.target_uidvalidity {
        return Some("the target folder was recreated");
    }
    if checkpoint.target_uidnext.is_none()
        || target.uid_next != checkpoint.target_uidnext
        || target.messages != checkpoint.target_messages
    {
        return Some("the target folder changed");
    }
    if u64::from(target.messages.unwrap_or(0)) < tally.placed {
        return Some("the target folder holds fewer messages than were placed there");
    }
    None
}

/// Whether the selected target folder is not as the last completed pass left it, so that
/// our copies in it must be looked for before they are trusted.
pub(crate) fn target_changed(checkpoint: &FolderCheckpoint, target: &Selected) -> bool {
    checkpoint.target_uidnext.is_none()
        || checkpoint.target_uidnext != target.uid_next
        || checkpoint.target_messages != Some(target.exists)
}

/// The rows whose copy is no longer on the target: placed rows with a target UID that the
/// target does not have (`existing` is what a UID SEARCH over their UIDs found).
pub(crate) fn lost_copies(map: &HashMap<Uid, MappedMessage>, existing: &HashSet<Uid>) -> Vec<Uid> {
    let mut lost: Vec<Uid> = map
        .values()
        .filter(|row| is_placed(row))
        .filter(|row| row.target_uid.is_some_and(|uid| !existing.contains(&uid)))
        .map(|row| row.source_uid)
        .collect();
    lost.sort_unstable();
    lost
}

/// Source messages of a delta pass to consider: those at or above the checkpoint's UIDNEXT
/// that are not already on the target by the map. Rows can be there although the UID is that
/// high (issue 19): mail that arrived while the last pass ran, a folder retried within a
/// pass, a pass interrupted after some batches.
pub(crate) fn delta_candidates(
    fetched: Vec<MessageMeta>,
    uid_next: u32,
    map: &HashMap<Uid, MappedMessage>,
) -> Vec<MessageMeta> {
    fetched
        .into_iter()
        .filter(|meta| meta.uid.get() >= uid_next)
        .filter(|meta| map.get(&meta.uid).is_none_or(|row| !is_placed(row)))
        .collect()
}

/// Source UIDs below the checkpoint's UIDNEXT to fetch again on a delta pass: the failed and
/// unconfirmed ones, and those whose copy the target lost.
pub(crate) fn refetch(map: &HashMap<Uid, MappedMessage>, uid_next: u32, lost: &[Uid]) -> Vec<Uid> {
    let mut uids: Vec<Uid> = map
        .values()
        .filter(|row| !is_placed(row) && row.source_uid.get() < uid_next)
        .map(|row| row.source_uid)
        .chain(lost.iter().copied().filter(|uid| uid.get() < uid_next))
        .collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// The UIDNEXT to record for the source folder: the server's, else one past the highest UID
/// this pass saw, else the last one recorded. Never 1 for a folder with messages, which would
/// make every later pass fetch the whole folder.
pub(crate) fn source_uid_next(
    from_server: Option<u32>,
    seen: impl IntoIterator<Item = u32>,
    previous: Option<u32>,
) -> u32 {
    if let Some(next) = from_server {
        return next;
    }
    let highest = seen.into_iter().max().map(|uid| uid.saturating_add(1));
    highest.into_iter().chain(previous).max().unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(n: u32) -> mailferry_imap::UidValidity {
        mailferry_imap::UidValidity::new(n).unwrap()
    }

    fn checkpoint() -> FolderCheckpoint {
        FolderCheckpoint {
            source_folder: "INBOX".into(),
            source_uidvalidity: v(7),
            target_folder: "INBOX".into(),
            target_uidvalidity: Some(v(9)),
            source_uidnext: 101,
            source_modseq: Some(500),
            target_uidnext: Some(201),
            target_messages: Some(100),
        }
    }

    fn source() -> FolderStatus {
        FolderStatus {
            messages: Some(100),
            uid_next: Some(101),
            uid_validity: Some(v(7)),
            highest_modseq: Some(500),
            ..FolderStatus::default()
        }
    }

    fn target() -> FolderStatus {
        FolderStatus {
            messages: Some(100),
            uid_next: Some(201),
            uid_validity: Some(v(9)),
            ..FolderStatus::default()
        }
    }

    fn placed(count: u64) -> FolderTally {
        FolderTally {
            placed: count,
            unsettled: 0,
        }
    }

    fn u(n: u32) -> Uid {
        Uid::new(n).unwrap()
    }

    fn uids(all: &[u32]) -> Vec<Uid> {
        all.iter().copied().map(u).collect()
    }

    fn row(uid: u32, state: MessageState, target_uid: Option<u32>) -> MappedMessage {
        MappedMessage {
            source_uid: u(uid),
            fingerprint: String::new(),
            state,
            target_uid: target_uid.map(u),
            flags: String::new(),
            detail: None,
        }
    }

    fn meta(uid: u32) -> MessageMeta {
        MessageMeta {
            uid: u(uid),
            flags: Vec::new(),
            internal_date: String::new(),
            size: 10,
            modseq: None,
            message_id: None,
        }
    }

    #[test]
    fn a_folder_is_skipped_only_when_both_sides_are_as_they_were() {
        let cp = checkpoint();
        let skip = |s: &FolderStatus, t: Option<&FolderStatus>, tally| {
            why_not_skipped(&cp, Some(s), t, "INBOX", tally)
        };
        assert_eq!(skip(&source(), Some(&target()), placed(100)), None);

        let mut s = source();
        s.uid_next = Some(102);
        assert_eq!(
            skip(&s, Some(&target()), placed(100)),
            Some("the source folder changed")
        );
        let mut s = source();
        s.highest_modseq = Some(501);
        assert!(skip(&s, Some(&target()), placed(100)).is_some());

        // Issue 18: the target emptied, recreated, missing, or changed.
        assert_eq!(
            skip(&source(), None, placed(100)),
            Some("the target folder is missing")
        );
        let mut t = target();
        t.uid_validity = Some(v(10));
        assert_eq!(
            skip(&source(), Some(&t), placed(100)),
            Some("the target folder was recreated")
        );
        let mut t = target();
        t.messages = Some(98);
        assert_eq!(
            skip(&source(), Some(&t), placed(100)),
            Some("the target folder changed")
        );
        let mut t = target();
        t.uid_next = Some(205);
        assert!(skip(&source(), Some(&t), placed(100)).is_some());
        // A checkpoint from before the target's state was recorded is not trusted.
        let old = FolderCheckpoint {
            target_uidnext: None,
            target_messages: None,
            ..checkpoint()
        };
        assert!(
            why_not_skipped(&old, Some(&source()), Some(&target()), "INBOX", placed(100)).is_some()
        );
        // Fewer messages than placed, however the counters agree.
        assert!(skip(&source(), Some(&target()), placed(101)).is_some());

        // Issue 19: failed or unconfirmed messages are tried again.
        let tally = FolderTally {
            placed: 99,
            unsettled: 1,
        };
        assert_eq!(
            skip(&source(), Some(&target()), tally),
            Some("messages that failed or were not confirmed are tried again")
        );
        // Without mod-sequences a source change cannot be seen: never skipped.
        let no_modseq = FolderCheckpoint {
            source_modseq: None,
            ..checkpoint()
        };
        assert!(why_not_skipped(
            &no_modseq,
            Some(&source()),
            Some(&target()),
            "INBOX",
            placed(100)
        )
        .is_some());
        assert!(
            why_not_skipped(&cp, Some(&source()), Some(&target()), "Other", placed(100)).is_some()
        );
        assert!(why_not_skipped(&cp, None, Some(&target()), "INBOX", placed(100)).is_some());
    }

    #[test]
    fn a_target_folder_is_changed_unless_uidnext_and_count_are_as_recorded() {
        let cp = checkpoint();
        let mut selected = Selected {
            uid_validity: Some(v(9)),
            uid_next: Some(201),
            exists: 100,
            ..Selected::default()
        };
        assert!(!target_changed(&cp, &selected));
        selected.exists = 99;
        assert!(target_changed(&cp, &selected));
        selected.exists = 100;
        selected.uid_next = Some(202);
        assert!(target_changed(&cp, &selected));
    }

    #[test]
    fn lost_copies_are_the_placed_rows_whose_target_uid_is_gone() {
        let map: HashMap<Uid, MappedMessage> = [
            row(1, MessageState::Copied, Some(11)),
            row(2, MessageState::Present, Some(12)),
            row(3, MessageState::Copied, Some(13)),
            row(4, MessageState::Failed, None),
            row(5, MessageState::Copied, None),
        ]
        .into_iter()
        .map(|r| (r.source_uid, r))
        .collect();
        let existing: HashSet<Uid> = uids(&[11, 13]).into_iter().collect();
        assert_eq!(lost_copies(&map, &existing), uids(&[2]));
        assert_eq!(lost_copies(&map, &HashSet::new()), uids(&[1, 2, 3]));
    }

    #[test]
    fn delta_candidates_leave_out_what_the_map_has_placed() {
        let map: HashMap<Uid, MappedMessage> = [
            row(101, MessageState::Copied, Some(1)),
            row(102, MessageState::Failed, None),
            row(103, MessageState::Pending, None),
            row(104, MessageState::Present, Some(2)),
        ]
        .into_iter()
        .map(|r| (r.source_uid, r))
        .collect();
        let fetched = (99..=106).map(meta).collect();
        let found: Vec<u32> = delta_candidates(fetched, 101, &map)
            .iter()
            .map(|m| m.uid.get())
            .collect();
        assert_eq!(found, vec![102, 103, 105, 106]);
    }

    #[test]
    fn refetch_takes_unsettled_and_lost_rows_below_uidnext() {
        let map: HashMap<Uid, MappedMessage> = [
            row(5, MessageState::Failed, None),
            row(6, MessageState::Pending, None),
            row(7, MessageState::Copied, Some(1)),
            row(150, MessageState::Failed, None),
        ]
        .into_iter()
        .map(|r| (r.source_uid, r))
        .collect();
        assert_eq!(refetch(&map, 101, &uids(&[7, 5, 200])), uids(&[5, 6, 7]));
    }

    #[test]
    fn a_missing_uidnext_is_never_recorded_as_one() {
        assert_eq!(source_uid_next(Some(50), [10, 60], Some(5)), 50);
        assert_eq!(source_uid_next(None, [10, 60, 3], Some(5)), 61);
        assert_eq!(source_uid_next(None, [], Some(40)), 40);
        assert_eq!(source_uid_next(None, [], None), 1);
        assert_eq!(source_uid_next(None, [u32::MAX], None), u32::MAX);
    }
}
