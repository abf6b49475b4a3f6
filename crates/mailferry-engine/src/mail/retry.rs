//! What is tried again and how: a lost connection, a throttling answer (RFC 5530 `LIMIT`,
//! `UNAVAILABLE`, Gmail's `THROTTLED`) and Dovecot's `ALREADYEXISTS` race are retried with
//! backoff; everything else fails the folder, or the one message, at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use mailferry_imap::response::{Code, Status};

use super::run::describe;
use crate::error::EngineError;
use crate::folder_map::FolderMapping;

/// Pauses this process made because a server said "not now" (throttling), for the metrics.
static THROTTLE_PAUSES: AtomicU64 = AtomicU64::new(0);

/// How many times this process paused for a throttling server since it started.
pub fn throttle_pauses() -> u64 {
    THROTTLE_PAUSES.load(Ordering::Relaxed)
}

pub(crate) fn note_throttle_pause() {
    THROTTLE_PAUSES.fetch_add(1, Ordering::Relaxed);
}

/// Attempts per folder when connections drop.
pub(crate) const RETRIES: u32 = 4;

pub(crate) fn retryable(error: &EngineError) -> bool {
    error.imap_error().is_some_and(|e| {
        e.is_connection_lost()
            || matches!(e, mailferry_imap::ImapError::Connect { .. })
            || matches!(e, mailferry_imap::ImapError::Command { status, .. } if throttled(status))
            // Dovecot races when two sessions first open an auto-created special folder
            // (listed, not yet on disk): one SELECT gets NO [ALREADYEXISTS]. Again works.
            || matches!(e, mailferry_imap::ImapError::Command { command, status, .. }
                if command.starts_with("SELECT") && matches!(&status.code, Some(Code::Other { name, .. }) if name == "ALREADYEXISTS"))
    })
}

/// Whether a server's NO means "not now": rate limits and temporary unavailability
/// (RFC 5530 LIMIT and UNAVAILABLE, Gmail's THROTTLED, Exchange's "Server Unavailable").
pub(crate) fn throttled(status: &Status) -> bool {
    let text = status.text.to_ascii_lowercase();
    matches!(status.code, Some(Code::Limit) | Some(Code::Unavailable))
        || matches!(&status.code, Some(Code::Other { name, .. }) if name == "THROTTLED" || name == "INUSE")
        || text.contains("server unavailable")
        || text.contains("throttl")
}

pub(crate) async fn backoff(attempt: u32, mapping: &FolderMapping, error: &EngineError) {
    if error.imap_error().is_some_and(
        |e| matches!(e, mailferry_imap::ImapError::Command { status, .. } if throttled(status)),
    ) {
        note_throttle_pause();
    }
    let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
    tracing::warn!(folder = %mapping.source_name, error = %describe(error), retry_in_ms = wait.as_millis() as u64, "connection lost or server busy; retrying the folder");
    tokio::time::sleep(wait).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use mailferry_imap::response::StatusKind;

    fn no(code: Option<Code>, text: &str) -> Status {
        Status {
            kind: StatusKind::No,
            code,
            text: text.into(),
        }
    }

    #[test]
    fn throttling_answers_are_told_apart_from_refusals() {
        assert!(throttled(&no(Some(Code::Limit), "Too many commands")));
        assert!(throttled(&no(Some(Code::Unavailable), "Try again")));
        assert!(throttled(&no(
            Some(Code::Other {
                name: "THROTTLED".into(),
                args: String::new()
            }),
            "Slow down"
        )));
        assert!(throttled(&no(None, "Server Unavailable. 15")));
        assert!(!throttled(&no(Some(Code::OverQuota), "Quota exceeded")));
        assert!(!throttled(&no(Some(Code::TooBig), "Message too large")));
        assert!(!throttled(&no(None, "Invalid message")));
    }
}
