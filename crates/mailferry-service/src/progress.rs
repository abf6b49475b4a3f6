//! Where a migration stands: its counters (live from a pass running in this process, else
//! the last ones saved), the estimated time to the end of the pass, and its groupware
//! counts. The API, its event stream and the web UI show the same numbers from here.

use mailferry_engine::filters::FiltersCounts;
use mailferry_engine::groupware::GroupwareCounts;
use mailferry_engine::ProgressSnapshot;
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
    /// Calendars, address books, events, tasks, journals and contacts: live while a pass of
    /// this process copies groupware, else from the last pass's report.
    pub groupware: Option<GroupwareCounts>,
    /// Filter scripts of the last pass, when it looked at them.
    pub filters: Option<FiltersCounts>,
}

/// The counters as the store keeps them.
pub fn record_of(snapshot: &ProgressSnapshot) -> ProgressRecord {
    ProgressRecord {
        messages_total: snapshot.total_messages,
        messages_done: snapshot.done_messages,
        messages_copied: snapshot.copied_messages,
        bytes_total: snapshot.total_bytes,
        bytes_done: snapshot.done_bytes,
        messages_failed: snapshot.failed_messages,
    }
}

/// The standing of `record` at `now` (Unix seconds).
pub fn standing(state: &AppState, record: &MigrationRecord, now: i64) -> Standing {
    let live = state.live_progress(&record.id);
    let progress = match &live {
        Some(p) => record_of(&p.snapshot()),
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
    // The last pass's report, read once for both parts' counts.
    let report: Option<serde_json::Value> = record
        .report_json
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    let groupware = live
        .as_ref()
        .and_then(|p| p.groupware())
        .or_else(|| reported_groupware(report.as_ref()?));
    Standing {
        progress,
        live: live.is_some(),
        remaining,
        eta_seconds,
        groupware,
        filters: report.as_ref().and_then(reported_filters),
    }
}

/// The filters counts of the last pass's report, if it looked at filters.
fn reported_filters(report: &serde_json::Value) -> Option<FiltersCounts> {
    let filters = report.get("filters")?;
    if filters.get("skipped").is_some_and(|s| !s.is_null()) {
        return None;
    }
    serde_json::from_value(filters.get("counts")?.clone()).ok()
}

/// The groupware counts of the last pass's report, if it had any.
fn reported_groupware(report: &serde_json::Value) -> Option<GroupwareCounts> {
    serde_json::from_value(report.get("groupware")?.get("counts")?.clone()).ok()
}
