//! Where a migration stands: its counters (live from a pass running in this process, else
//! the last ones saved) and the estimated time to the end of the pass. The API and the web
//! UI show the same numbers from here.

use mailferry_engine::groupware::GroupwareCounts;
use mailferry_store::{MigrationRecord, ProgressRecord};

use crate::AppState;

/// A migration's counters and ETA, now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub progress: ProgressRecord,
    /// The counters come from a pass running in this process.
    pub live: bool,
    /// Messages of the pass not handled yet.
    pub remaining: u64,
    /// Seconds to the end of the pass, from the pace so far (active migrations only).
    pub eta_seconds: Option<u64>,
    /// Calendars, address books, events, tasks, journals and contacts so far, while a pass
    /// of this process copies groupware.
    pub groupware: Option<GroupwareCounts>,
}

/// The standing of `record` at `now` (Unix seconds).
pub fn standing(state: &AppState, record: &MigrationRecord, now: i64) -> Standing {
    let live = state.live_progress(&record.id);
    let progress = match &live {
        Some(p) => {
            let s = p.snapshot();
            ProgressRecord {
                messages_total: s.total_messages,
                messages_done: s.done_messages,
                messages_copied: s.copied_messages,
                bytes_total: s.total_bytes,
                bytes_done: s.done_bytes,
                messages_failed: s.failed_messages,
            }
        }
        None => record.progress,
    };
    let remaining = progress
        .messages_total
        .saturating_sub(progress.messages_done);
    let eta_seconds = match (record.started_at, record.state.is_active()) {
        (Some(started), true) if progress.messages_done > 0 => {
            let elapsed = (now - started).max(1) as f64;
            Some((remaining as f64 * elapsed / progress.messages_done as f64) as u64)
        }
        _ => None,
    };
    Standing {
        progress,
        groupware: live.as_ref().and_then(|p| p.groupware()),
        live: live.is_some(),
        remaining,
        eta_seconds,
    }
}
