//! What a filters pass did, per script.

use serde::{Deserialize, Serialize};

use crate::report::Outcome;

/// What became of one source script.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScriptOutcome {
    /// Stored on the target.
    #[default]
    Copied,
    /// Our earlier copy replaced by the source's newer version.
    Updated,
    /// The target had it already, byte for byte.
    Present,
    /// Our earlier copy was changed on the target since: kept, the source's new version
    /// not written.
    KeptOnTarget,
    /// The target would not take it (unknown extension, syntax, quota).
    Refused,
    /// Could not be read or written (connection, server error).
    Failed,
    /// A dry run: would be stored.
    Planned,
}

/// One source script.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ScriptReport {
    pub source_name: String,
    /// The name on the target (another one when a different script had the source's name).
    pub target_name: String,
    pub outcome: ScriptOutcome,
    pub bytes: u64,
    /// Active at the source.
    pub active: bool,
    /// Folder names rewritten in it: (source name, target name).
    pub rewrites: Vec<(String, String)>,
    /// Extensions it requires that the target does not announce.
    pub missing_extensions: Vec<String>,
    /// The server's words on a refusal or failure.
    pub error: Option<String>,
    pub notes: Vec<String>,
}

/// The whole filters pass.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FiltersReport {
    pub source: String,
    pub target: String,
    pub dry_run: bool,
    pub scripts: Vec<ScriptReport>,
    /// Why nothing was looked at (the source has no ManageSieve), when so.
    pub skipped: Option<String>,
    /// Remarks not tied to one script (the active script changed on the target ...).
    pub notes: Vec<String>,
    /// What stopped the pass or part of it.
    pub problems: Vec<String>,
    /// [`FiltersReport::tally`] at the end of the pass, for the API and the UI.
    pub counts: FiltersCounts,
}

/// Status counts of a filters pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct FiltersCounts {
    /// Scripts at the source.
    pub total: u64,
    pub copied: u64,
    pub present: u64,
    pub refused: u64,
    pub failed: u64,
}

impl FiltersReport {
    fn count(&self, outcomes: &[ScriptOutcome]) -> u64 {
        self.scripts
            .iter()
            .filter(|s| outcomes.contains(&s.outcome))
            .count() as u64
    }

    pub fn tally(&self) -> FiltersCounts {
        use ScriptOutcome as O;
        FiltersCounts {
            total: self.scripts.len() as u64,
            copied: self.count(&[O::Copied, O::Updated, O::Planned]),
            present: self.count(&[O::Present, O::KeptOnTarget]),
            refused: self.count(&[O::Refused]),
            failed: self.count(&[O::Failed]),
        }
    }

    /// Complete when every script is on the target (or there were none); partial when some
    /// were refused or failed; failed when nothing could be done.
    pub fn outcome(&self) -> Outcome {
        let counts = self.tally();
        let done = counts.copied + counts.present;
        if !self.problems.is_empty() && done == 0 {
            Outcome::Failed
        } else if !self.problems.is_empty() || counts.refused + counts.failed > 0 {
            Outcome::Partial
        } else {
            Outcome::Complete
        }
    }
}
