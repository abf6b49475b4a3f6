//! Live counters of a run, shared with whatever displays them (a progress bar, the API).

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated as the run goes; all monotonic except the totals, which grow as
/// folders are planned.
#[derive(Debug, Default)]
pub struct Progress {
    pub total_messages: AtomicU64,
    pub total_bytes: AtomicU64,
    pub done_messages: AtomicU64,
    pub done_bytes: AtomicU64,
    pub copied_messages: AtomicU64,
    pub copied_bytes: AtomicU64,
    pub failed_messages: AtomicU64,
    pub folders_total: AtomicU64,
    pub folders_done: AtomicU64,
    /// Set to ask the run to stop: batches already fetched are still appended, no new one is
    /// started, and unfinished folders keep no checkpoint, so the next run carries on.
    pub stop: std::sync::atomic::AtomicBool,
    /// The groupware counts so far (calendars, events, tasks, contacts), once that pass runs.
    pub groupware: std::sync::Mutex<Option<crate::groupware::GroupwareCounts>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProgressSnapshot {
    pub total_messages: u64,
    pub total_bytes: u64,
    pub done_messages: u64,
    pub done_bytes: u64,
    pub copied_messages: u64,
    pub copied_bytes: u64,
    pub failed_messages: u64,
    pub folders_total: u64,
    pub folders_done: u64,
}

impl Progress {
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    pub fn add_total(&self, messages: u64, bytes: u64) {
        self.total_messages.fetch_add(messages, Ordering::Relaxed);
        self.total_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    /// A message handled without copying (already there, skipped, failed).
    pub fn handled(&self, bytes: u64) {
        self.done_messages.fetch_add(1, Ordering::Relaxed);
        self.done_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn copied(&self, bytes: u64) {
        self.handled(bytes);
        self.copied_messages.fetch_add(1, Ordering::Relaxed);
        self.copied_bytes.fetch_add(bytes, Ordering::Relaxed);
    }
    pub fn failed(&self, bytes: u64) {
        self.handled(bytes);
        self.failed_messages.fetch_add(1, Ordering::Relaxed);
    }
    pub fn set_groupware(&self, counts: crate::groupware::GroupwareCounts) {
        if let Ok(mut slot) = self.groupware.lock() {
            *slot = Some(counts);
        }
    }
    /// The groupware counts so far, if a groupware pass has started.
    pub fn groupware(&self) -> Option<crate::groupware::GroupwareCounts> {
        self.groupware.lock().ok().and_then(|slot| *slot)
    }
    pub fn snapshot(&self) -> ProgressSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProgressSnapshot {
            total_messages: get(&self.total_messages),
            total_bytes: get(&self.total_bytes),
            done_messages: get(&self.done_messages),
            done_bytes: get(&self.done_bytes),
            copied_messages: get(&self.copied_messages),
            copied_bytes: get(&self.copied_bytes),
            failed_messages: get(&self.failed_messages),
            folders_total: get(&self.folders_total),
            folders_done: get(&self.folders_done),
        }
    }
}
