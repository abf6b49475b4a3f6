//! What a run did, per folder, in words an admin can act on; serialised for `--report` and
//! the service's store, and read back by the web UI (the one report type: fields missing from
//! an older report take their defaults).

use serde::{Deserialize, Serialize};

/// The whole run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Report {
    pub source: String,
    pub target: String,
    pub dry_run: bool,
    pub folders: Vec<FolderReport>,
    /// Problems not tied to one folder.
    pub problems: Vec<String>,
    /// Remarks not tied to one folder (what this pair of servers cannot carry).
    pub notes: Vec<String>,
    pub seconds: f64,
    /// Calendars, tasks and contacts, when the account has them (after the mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groupware: Option<crate::groupware::GroupwareReport>,
    /// Sieve filter scripts, when the pass looked at them (after the groupware).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filters: Option<crate::filters::FiltersReport>,
    /// How the mail pass mapped folder names, for the filters' `fileinto`; not stored.
    #[serde(skip)]
    pub folder_rewrite: Option<crate::filters::FolderRewrite>,
}

/// One source folder.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FolderReport {
    pub source: String,
    pub target: String,
    /// Messages in the source folder at the start of the pass.
    pub source_messages: u64,
    pub source_bytes: u64,
    /// Messages in the target folder at the end of the pass, as the target said (STATUS),
    /// not as the state remembers; `None` when the folder was not reached.
    pub target_messages: Option<u64>,
    pub copied: u64,
    pub copied_bytes: u64,
    pub already_present: u64,
    pub flags_updated: u64,
    pub deleted_at_source: u64,
    pub deleted_on_target: u64,
    /// Folder annotations (IMAP METADATA) written to the target folder.
    pub annotations_copied: u64,
    pub skipped: Vec<MessageProblem>,
    pub failed: Vec<MessageProblem>,
    /// Name changes and other remarks.
    pub notes: Vec<String>,
    /// The folder could not be processed at all.
    pub error: Option<String>,
    /// Whether nothing needed doing (a delta pass with no change).
    pub unchanged: bool,
}

/// A message that was skipped or failed, with the reason.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MessageProblem {
    pub uid: u32,
    pub size: u64,
    pub reason: String,
}

impl Report {
    pub fn copied(&self) -> u64 {
        self.folders.iter().map(|f| f.copied).sum()
    }
    pub fn already_present(&self) -> u64 {
        self.folders.iter().map(|f| f.already_present).sum()
    }
    pub fn failed(&self) -> u64 {
        self.folders.iter().map(|f| f.failed.len() as u64).sum()
    }
    pub fn skipped(&self) -> u64 {
        self.folders.iter().map(|f| f.skipped.len() as u64).sum()
    }
    /// Everything copied that should be, nothing failed; mail, groupware and filters
    /// together: all complete is complete, all failed is failed, anything else partial.
    pub fn outcome(&self) -> Outcome {
        let mail = self.mail_outcome();
        let parts = [
            self.groupware.as_ref().map(|g| g.outcome()),
            self.filters.as_ref().map(|f| f.outcome()),
        ];
        parts.into_iter().flatten().fold(
            mail,
            |all, part| {
                if part == all {
                    all
                } else {
                    Outcome::Partial
                }
            },
        )
    }
    /// The mail part alone.
    pub fn mail_outcome(&self) -> Outcome {
        if !self.problems.is_empty() || self.folders.iter().any(|f| f.error.is_some()) {
            if self.copied() > 0 || self.already_present() > 0 {
                Outcome::Partial
            } else {
                Outcome::Failed
            }
        } else if self.failed() > 0 || self.skipped() > 0 {
            Outcome::Partial
        } else {
            Outcome::Complete
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// Every message is on the target.
    Complete,
    /// Some messages or folders were skipped or failed; the rest is on the target.
    Partial,
    /// Nothing could be done.
    Failed,
}
