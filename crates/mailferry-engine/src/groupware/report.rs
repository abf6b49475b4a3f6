//! What a groupware pass did, per calendar and address book, and the counts the status
//! shows: calendars, address books, events, tasks, journals and contacts, transferred of
//! total.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::report::Outcome;

/// Transferred of total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub total: u64,
    /// On the target now: copied by this or an earlier pass, or there already.
    pub transferred: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.total += other.total;
        self.transferred += other.transferred;
    }
}

/// The status counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupwareCounts {
    pub calendars: Tally,
    pub address_books: Tally,
    pub events: Tally,
    pub tasks: Tally,
    pub journals: Tally,
    pub contacts: Tally,
}

/// An object that could not be copied, and why (in the server's words where it spoke).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectProblem {
    /// The object's href at the source.
    pub href: String,
    pub uid: Option<String>,
    pub reason: String,
}

/// One source calendar or address book.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CollectionReport {
    /// `calendar` or `addressbook`.
    pub kind: String,
    /// Its display name (or last path segment).
    pub name: String,
    pub source: String,
    pub target: Option<String>,
    /// Created on the target by this pass.
    pub created: bool,
    /// How changes were found: `full` listing, `sync-token` (RFC 6578) or `ctag`.
    pub delta: String,
    /// Objects in the source collection.
    pub source_objects: u64,
    pub copied: u64,
    pub updated: u64,
    /// Found on the target with the same UID; not copied again.
    pub already_present: u64,
    /// Copied by an earlier pass and unchanged since.
    pub unchanged: u64,
    /// Copied by an earlier pass and deleted at the source since.
    #[serde(default)]
    pub deleted_at_source: u64,
    /// Of those, deleted on the target too (with `sync_deletes`).
    pub deleted_on_target: u64,
    pub failed: Vec<ObjectProblem>,
    pub notes: Vec<String>,
    /// The collection could not be processed at all.
    pub error: Option<String>,
    /// Per object kind (`event`, `task`, `journal`, `contact`, `other`).
    pub kinds: BTreeMap<String, Tally>,
}

/// The whole groupware pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct GroupwareReport {
    pub source: String,
    pub target: String,
    pub dry_run: bool,
    pub collections: Vec<CollectionReport>,
    /// Problems not tied to one collection (discovery, login).
    pub problems: Vec<String>,
    pub counts: GroupwareCounts,
    pub seconds: f64,
}

impl GroupwareReport {
    /// The counts, from the collections.
    pub fn tally(&self) -> GroupwareCounts {
        let mut counts = GroupwareCounts::default();
        for collection in &self.collections {
            let done = Tally {
                total: 1,
                transferred: u64::from(collection.error.is_none() && collection.target.is_some()),
            };
            if collection.kind == "addressbook" {
                counts.address_books.add(done);
            } else {
                counts.calendars.add(done);
            }
            for (kind, tally) in &collection.kinds {
                match kind.as_str() {
                    "event" => counts.events.add(*tally),
                    "task" => counts.tasks.add(*tally),
                    "journal" => counts.journals.add(*tally),
                    "contact" => counts.contacts.add(*tally),
                    _ => {}
                }
            }
        }
        counts
    }

    pub fn copied(&self) -> u64 {
        self.collections.iter().map(|c| c.copied + c.updated).sum()
    }

    pub fn failed(&self) -> u64 {
        self.collections.iter().map(|c| c.failed.len() as u64).sum()
    }

    pub fn outcome(&self) -> Outcome {
        let broken = self
            .collections
            .iter()
            .filter(|c| c.error.is_some())
            .count();
        if !self.problems.is_empty() || broken == self.collections.len() && broken > 0 {
            Outcome::Failed
        } else if broken > 0 || self.failed() > 0 {
            Outcome::Partial
        } else {
            Outcome::Complete
        }
    }
}
