//! Live status: server-sent events with the progress of active migrations, and Prometheus
//! metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::stream::{self, Stream};
use mailferry_store::MigrationState;
use serde_json::json;

use super::error::ApiError;
use super::openapi::ErrorDoc;
use crate::progress::standing;
use crate::{now, AppState};

/// `GET /api/v1/events`: every second, one `progress` event per active migration
/// (`{id, state, messages_total, messages_transferred, bytes_total, bytes_transferred}`).
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "service",
    responses(
        (status = 200, description = "Server-sent events: every second one `progress` event per active migration, data `{id, state, messages_total, messages_transferred, bytes_total, bytes_transferred}`", body = String, content_type = "text/event-stream"),
        (status = 401, description = "Not logged in", body = ErrorDoc),
    )
)]
pub async fn events(
    State(state): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let stream = stream::unfold((state, true), |(state, first)| async move {
        if !first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let active: Vec<MigrationState> = [
            MigrationState::Waiting,
            MigrationState::Transferring,
            MigrationState::WaitingResync,
            MigrationState::Resyncing,
        ]
        .to_vec();
        let records = state
            .store
            .list_migrations(Some(&active))
            .await
            .unwrap_or_default();
        let events: Vec<Result<Event, Infallible>> = records
            .iter()
            .map(|record| {
                let p = standing(&state, record, now()).progress;
                let data = json!({
                    "id": record.id, "state": record.state.as_str(),
                    "messages_total": p.messages_total, "messages_transferred": p.messages_done,
                    "bytes_total": p.bytes_total, "bytes_transferred": p.bytes_done,
                });
                Ok(Event::default().event("progress").data(data.to_string()))
            })
            .collect();
        Some((stream::iter(events), (state, false)))
    });
    Sse::new(futures_util::StreamExt::flatten(stream)).keep_alive(KeepAlive::default())
}

/// The reasons failed migrations are counted by, in `mailferry_failed_migrations`.
const FAILURE_REASONS: [&str; 7] = [
    "login",
    "connection",
    "tls",
    "credentials",
    "quota",
    "partial",
    "other",
];

/// Which of [`FAILURE_REASONS`] a failed migration's error text is.
fn failure_reason(text: &str) -> &'static str {
    let text = text.to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| text.contains(w));
    if any(&[
        "rejected the login",
        "authentication failed",
        "login failed",
    ]) {
        "login"
    } else if any(&["certificate", "tls handshake"]) {
        "tls"
    } else if any(&[
        "cannot connect",
        "did not answer",
        "closed the connection",
        "cannot find the address",
        "connection",
    ]) {
        "connection"
    } else if any(&["credentials"]) {
        "credentials"
    } else if any(&["quota"]) {
        "quota"
    } else if any(&[
        "could not be copied",
        "were refused",
        "not copied",
        "see the report",
    ]) {
        "partial"
    } else {
        "other"
    }
}

/// `GET /metrics`: Prometheus text format. Counts only, never personal data.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "Prometheus text format: migrations by state, queue depth and lag, passes running, messages and bytes copied, errors, failed migrations by reason, lease takeovers, throttling pauses", body = String, content_type = "text/plain"),
        (status = 500, description = "The database failed", body = ErrorDoc),
    )
)]
pub async fn metrics(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    // Counts and sums from the database: a scrape never loads the migrations themselves.
    let counts = state.store.counts().await?;
    let totals = state.store.totals(now()).await?;
    let mut out = String::new();
    out.push_str(
        "# HELP mailferry_migrations Migrations by state.\n# TYPE mailferry_migrations gauge\n",
    );
    for (s, n) in &counts {
        out.push_str(&format!(
            "mailferry_migrations{{state=\"{}\"}} {n}\n",
            s.as_str()
        ));
    }
    let copied = totals.messages_copied;
    let bytes = totals.bytes_done;
    let failed_messages = totals.messages_failed;
    let lag = totals.queue_lag_seconds;
    out.push_str(&format!("# HELP mailferry_messages_copied_total Messages copied.\n# TYPE mailferry_messages_copied_total counter\nmailferry_messages_copied_total {copied}\n"));
    out.push_str(&format!("# HELP mailferry_bytes_transferred_total Bytes handled.\n# TYPE mailferry_bytes_transferred_total counter\nmailferry_bytes_transferred_total {bytes}\n"));
    out.push_str(&format!("# HELP mailferry_errors_total Errors by kind.\n# TYPE mailferry_errors_total counter\nmailferry_errors_total{{kind=\"message\"}} {failed_messages}\n"));
    out.push_str(&format!(
        "mailferry_errors_total{{kind=\"migration\"}} {}\n",
        counts
            .iter()
            .find(|(s, _)| *s == MigrationState::Failed)
            .map_or(0, |(_, n)| *n)
    ));
    out.push_str(&format!("# HELP mailferry_queue_lag_seconds How long the longest-due pass has waited for a worker.\n# TYPE mailferry_queue_lag_seconds gauge\nmailferry_queue_lag_seconds {lag}\n"));
    let running: u64 = counts
        .iter()
        .filter(|(s, _)| matches!(s, MigrationState::Transferring | MigrationState::Resyncing))
        .map(|(_, n)| *n)
        .sum();
    out.push_str(&format!(
        "# HELP mailferry_queue_depth Passes due now that no worker has taken yet.\n# TYPE mailferry_queue_depth gauge\nmailferry_queue_depth {}\n\
         # HELP mailferry_passes_running Passes running (first passes and resyncs), over all workers.\n# TYPE mailferry_passes_running gauge\nmailferry_passes_running {running}\n\
         # HELP mailferry_lease_takeovers_total Passes taken over by another worker after their lease ran out.\n# TYPE mailferry_lease_takeovers_total counter\nmailferry_lease_takeovers_total {}\n\
         # HELP mailferry_throttle_pauses_total Pauses this process made for a throttling server (LIMIT, UNAVAILABLE, THROTTLED).\n# TYPE mailferry_throttle_pauses_total counter\nmailferry_throttle_pauses_total {}\n",
        totals.queue_depth,
        totals.lease_takeovers,
        mailferry_engine::mail::throttle_pauses(),
    ));
    out.push_str("# HELP mailferry_failed_migrations Failed migrations by reason.\n# TYPE mailferry_failed_migrations gauge\n");
    let mut reasons: Vec<(&str, u64)> = FAILURE_REASONS.iter().map(|r| (*r, 0)).collect();
    for text in state.store.failure_texts().await? {
        let reason = failure_reason(&text);
        if let Some(slot) = reasons.iter_mut().find(|(r, _)| *r == reason) {
            slot.1 += 1;
        }
    }
    for (reason, n) in reasons {
        out.push_str(&format!(
            "mailferry_failed_migrations{{reason=\"{reason}\"}} {n}\n"
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_counted_by_reason() {
        for (text, reason) in [
            ("cannot log in to the source: `h:993` rejected the login of `a`: AUTHENTICATE failed", "login"),
            ("cannot connect to the target server: cannot connect to `h:143`", "connection"),
            ("the TLS certificate of `h:993` does not verify: it has expired", "tls"),
            ("the source credentials are no longer stored (erased or purged)", "credentials"),
            ("3 messages could not be copied and 0 folders had errors: see the report", "partial"),
            ("NO [OVERQUOTA] Quota exceeded", "quota"),
            ("the pass stopped on an internal error", "other"),
        ] {
            assert_eq!(failure_reason(text), reason, "{text}");
            assert!(FAILURE_REASONS.contains(&reason));
        }
    }
}
