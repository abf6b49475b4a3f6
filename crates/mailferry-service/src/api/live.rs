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

/// `GET /metrics`: Prometheus text format. Counts only, never personal data.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "service",
    security(()),
    responses(
        (status = 200, description = "Prometheus text format: migrations by state, messages and bytes copied, errors, queue lag", body = String, content_type = "text/plain"),
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
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
