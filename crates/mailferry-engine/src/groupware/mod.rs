//! Groupware: every calendar (events, tasks, journals) and address book of an account,
//! from a CalDAV/CardDAV source to a CalDAV/CardDAV target, with [`mailferry_dav`].
//!
//! # Layout
//! - [`copy`]: a pass ([`copy::copy_groupware`]): collections matched or created, objects
//!   deduplicated by UID, changes found by sync token, ctag or ETags, checkpoints in
//!   [`mailferry_store`] written ahead of every PUT.
//! - [`verify`]: an independent comparison, object by object, of normalised iCalendar and
//!   vCard.
//! - [`report`]: what a pass did and the status counts.
//!
//! # Contract
//! The source is only read. A new object goes to the target with `If-None-Match: *` and
//! only when no object with its UID is there; an update or a deletion goes with `If-Match`
//! on the ETag we last saw there, so what someone changed on the target is kept.

pub mod copy;
pub mod report;
pub mod verify;

use mailferry_dav::{Collection, CollectionKind, DavEndpoint};

pub use copy::copy_groupware;
pub use report::{CollectionReport, GroupwareCounts, GroupwareReport, ObjectProblem, Tally};
pub use verify::{verify_groupware, CollectionComparison, GroupwareVerifyReport};

/// One groupware migration: both DAV accounts.
#[derive(Debug, Clone)]
pub struct GroupwareJob {
    /// The state key (the mail job's id, so both live in one state).
    pub id: String,
    pub source: DavEndpoint,
    pub target: DavEndpoint,
    /// Plan only: count, create nothing, write nothing.
    pub dry_run: bool,
    /// Delete on the target what was deleted at the source (as mail's `--sync-deletes`);
    /// without it such objects are kept there and named in a note.
    pub sync_deletes: bool,
}

/// The target collection a source collection goes to, when no state says: the same kind
/// with the same display name, else with the same last path segment; `taken` are target
/// hrefs already chosen for other source collections.
pub fn match_target<'a>(
    source: &Collection,
    targets: &'a [Collection],
    taken: &[String],
) -> Option<&'a Collection> {
    let free = |t: &&Collection| t.kind == source.kind && !taken.contains(&t.href);
    let name = source
        .display_name
        .as_deref()
        .map(|n| n.trim().to_lowercase());
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        let by_name = targets.iter().filter(free).find(|t| {
            t.display_name
                .as_deref()
                .is_some_and(|n| n.trim().to_lowercase() == name)
        });
        if by_name.is_some() {
            return by_name;
        }
    }
    let segment = source.segment();
    targets.iter().filter(free).find(|t| t.segment() == segment)
}

/// A last path segment for a new collection: the source's, or with `-2`, `-3`... when a
/// target collection has it already.
pub fn free_segment(source: &Collection, targets: &[Collection]) -> String {
    let base = source.segment();
    let base = if base.trim().is_empty() {
        match source.kind {
            Some(CollectionKind::AddressBook) => "contacts".to_string(),
            _ => "calendar".to_string(),
        }
    } else {
        base
    };
    let used = |s: &str| targets.iter().any(|t| t.segment() == s);
    if !used(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|s| !used(s))
        .unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collection(href: &str, kind: CollectionKind, name: Option<&str>) -> Collection {
        Collection {
            href: href.into(),
            kind: Some(kind),
            display_name: name.map(str::to_string),
            ..Collection::default()
        }
    }

    #[test]
    fn targets_match_by_name_then_segment_and_kind() {
        let targets = vec![
            collection("/t/calendar/", CollectionKind::Calendar, Some("calendar")),
            collection("/t/work/", CollectionKind::Calendar, Some("Équipe Paris")),
            collection("/t/contacts/", CollectionKind::AddressBook, Some("x")),
        ];
        let source = collection("/s/team/", CollectionKind::Calendar, Some("équipe paris "));
        assert_eq!(
            match_target(&source, &targets, &[]).unwrap().href,
            "/t/work/"
        );
        assert!(match_target(&source, &targets, &["/t/work/".into()]).is_none());
        let by_segment = collection("/s/calendar/", CollectionKind::Calendar, None);
        assert_eq!(
            match_target(&by_segment, &targets, &[]).unwrap().href,
            "/t/calendar/"
        );
        let book = collection("/s/calendar/", CollectionKind::AddressBook, None);
        assert!(match_target(&book, &targets, &[]).is_none());
        assert_eq!(free_segment(&by_segment, &targets), "calendar-2");
        assert_eq!(free_segment(&source, &targets), "team");
    }
}
