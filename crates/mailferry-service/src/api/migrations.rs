//! Migrations: submit (with the credential check), list, one with its progress, cancel,
//! retry, purge.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use mailferry_store::{EndpointRecord, MigrationRecord, MigrationState};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::error::{json_rejection, ApiError};
use super::openapi::{ErrorDoc, MigrationDoc, MigrationListDoc, SubmitRequestDoc};
use crate::batch::{active_duplicate_message, ActiveAccounts};
use crate::control;
use crate::progress::standing;
use crate::submit::{check_credentials, store_validated, validate, SubmitRequest};
use crate::times::show_time;
use crate::{now, AppState};

/// The `{id}` of a migration in the path; a path that cannot be read is a 400 in the API's
/// error shape.
pub struct MigrationId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for MigrationId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|r| {
                ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
                    .hint("use the `id` of a migration as listed by GET /api/v1/migrations")
            })?;
        Ok(Self(id))
    }
}

/// Submit a migration. Both logins are tried before anything is stored; a failure names
/// the side and the server's words.
#[utoipa::path(
    post,
    path = "/api/v1/migrations",
    tag = "migrations",
    request_body = SubmitRequestDoc,
    responses(
        (status = 201, description = "Stored; it starts at `startdate`", body = MigrationDoc),
        (status = 400, description = "Not JSON, a wrong type, or an unknown field (named)", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
        (status = 402, description = "The migration allowance is used up: add a licence key", body = ErrorDoc),
        (status = 409, description = "The source or target account (`side`) already has a migration waiting or running", body = ErrorDoc),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorDoc),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorDoc),
        (status = 422, description = "Fields not valid (`fields`), or a login failed (`side`, `check`)", body = ErrorDoc),
    )
)]
pub async fn submit(
    State(state): State<Arc<AppState>>,
    body: Result<Json<SubmitRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(request) = body.map_err(|rejection| {
        json_rejection(rejection, "the request body is not a valid migration", "send JSON with the fields source.type, source.email, source.username, source.password, source.server, the same for target, startdate and resyncdate")
    })?;
    let validated = validate(request, &state.config, now()).map_err(ApiError::invalid_fields)?;
    if let Some((side, id)) = ActiveAccounts::load(&state.store).await?.find(&validated) {
        let mut error = ApiError::new(StatusCode::CONFLICT, active_duplicate_message(side, &id))
            .hint(
                "wait until that migration is finished, or cancel it, then submit this one again",
            );
        error.side = Some(side.to_string());
        return Err(error);
    }
    check_credentials(
        &validated,
        state.config.check_timeout,
        state.config.ca_file.as_deref(),
    )
    .await
    .map_err(ApiError::check_failed)?;
    let id = match store_validated(&state, &[&validated], now()).await? {
        Ok(ids) => ids.into_iter().next().unwrap_or_default(),
        Err(short) => return Err(ApiError::allowance(short)),
    };
    tracing::info!(migration = %id, "migration submitted");
    let record = state
        .store
        .migration(&id)
        .await?
        .ok_or_else(|| ApiError::internal("the migration vanished after it was stored", &id))?;
    Ok((StatusCode::CREATED, Json(view(&state, &record, false))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// `active`, `finished`, or one state name.
    state: Option<String>,
}

/// All migrations, newest first, optionally filtered by state.
#[utoipa::path(
    get,
    path = "/api/v1/migrations",
    tag = "migrations",
    params(("state" = Option<String>, Query, description = "`active`, `finished`, `all`, or a state name (waiting, transferring, waiting_resync, resyncing, done, failed, cancelled)")),
    responses(
        (status = 200, description = "The migrations", body = MigrationListDoc),
        (status = 400, description = "Unknown filter or state", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
    )
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(|r| {
        ApiError::new(StatusCode::BAD_REQUEST, r.body_text())
            .hint("the only filter is ?state=active, finished, or a state name")
    })?;
    let all = MigrationState::ALL;
    let states: Option<Vec<MigrationState>> = match query.state.as_deref() {
        None | Some("") | Some("all") => None,
        Some("active") => Some(all.iter().copied().filter(|s| s.is_active()).collect()),
        Some("finished") => Some(all.iter().copied().filter(|s| s.is_finished()).collect()),
        Some(name) => Some(vec![name.parse::<MigrationState>().map_err(|_| {
            ApiError::new(StatusCode::BAD_REQUEST, format!("`{name}` is not a state")).hint("use active, finished, waiting, transferring, waiting_resync, resyncing, done, failed or cancelled")
        })?]),
    };
    let records = state.store.list_migrations(states.as_deref()).await?;
    let items: Vec<Value> = records.iter().map(|r| view(&state, r, false)).collect();
    Ok(Json(json!({ "migrations": items })))
}

/// One migration with its progress, ETA and report.
#[utoipa::path(
    get,
    path = "/api/v1/migrations/{id}",
    tag = "migrations",
    params(("id" = String, Path, description = "The migration's id")),
    responses(
        (status = 200, description = "The migration", body = MigrationDoc),
        (status = 400, description = "The id cannot be read", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
        (status = 404, description = "No such migration", body = ErrorDoc),
    )
)]
pub async fn one(
    State(state): State<Arc<AppState>>,
    MigrationId(id): MigrationId,
) -> Result<Json<Value>, ApiError> {
    let record = state
        .store
        .migration(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("migration"))?;
    Ok(Json(view(&state, &record, true)))
}

/// Cancel a waiting or running migration; its credentials are erased.
#[utoipa::path(
    post,
    path = "/api/v1/migrations/{id}/cancel",
    tag = "migrations",
    params(("id" = String, Path, description = "The migration's id")),
    responses(
        (status = 200, description = "Cancelled", body = MigrationDoc),
        (status = 400, description = "The id cannot be read", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
        (status = 404, description = "No such migration", body = ErrorDoc),
        (status = 409, description = "Not waiting or running", body = ErrorDoc),
    )
)]
pub async fn cancel(
    State(state): State<Arc<AppState>>,
    MigrationId(id): MigrationId,
) -> Result<Json<Value>, ApiError> {
    if !control::cancel(&state, &id).await? {
        return Err(conflict(
            &state,
            &id,
            "only a waiting or running migration can be cancelled",
        )
        .await);
    }
    one(State(state), MigrationId(id)).await
}

/// Retry a failed migration whose credentials are still stored.
#[utoipa::path(
    post,
    path = "/api/v1/migrations/{id}/retry",
    tag = "migrations",
    params(("id" = String, Path, description = "The migration's id")),
    responses(
        (status = 200, description = "Waiting again", body = MigrationDoc),
        (status = 400, description = "The id cannot be read", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
        (status = 404, description = "No such migration", body = ErrorDoc),
        (status = 409, description = "Not failed, or its credentials are gone", body = ErrorDoc),
    )
)]
pub async fn retry(
    State(state): State<Arc<AppState>>,
    MigrationId(id): MigrationId,
) -> Result<Json<Value>, ApiError> {
    if !control::retry(&state, &id).await? {
        return Err(conflict(
            &state,
            &id,
            "only a failed migration whose credentials are still stored can be retried",
        )
        .await);
    }
    one(State(state), MigrationId(id)).await
}

/// Purge a finished migration: personal data and credentials erased, counts kept.
#[utoipa::path(
    post,
    path = "/api/v1/migrations/{id}/purge",
    tag = "migrations",
    params(("id" = String, Path, description = "The migration's id")),
    responses(
        (status = 200, description = "Purged", body = MigrationDoc),
        (status = 400, description = "The id cannot be read", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
        (status = 404, description = "No such migration", body = ErrorDoc),
        (status = 409, description = "Not finished", body = ErrorDoc),
    )
)]
pub async fn purge(
    State(state): State<Arc<AppState>>,
    MigrationId(id): MigrationId,
) -> Result<Json<Value>, ApiError> {
    if !control::purge(&state, &id).await? {
        return Err(conflict(&state, &id, "only a finished migration can be purged").await);
    }
    one(State(state), MigrationId(id)).await
}

async fn conflict(state: &AppState, id: &str, rule: &str) -> ApiError {
    match state.store.migration(id).await {
        Ok(Some(record)) => ApiError::new(
            StatusCode::CONFLICT,
            format!("{rule}; this one is {}", record.state.as_str()),
        ),
        Ok(None) => ApiError::not_found("migration"),
        Err(e) => e.into(),
    }
}

#[derive(Serialize)]
struct ProgressView {
    messages_total: u64,
    messages_transferred: u64,
    messages_remaining: u64,
    messages_copied: u64,
    messages_failed: u64,
    bytes_total: u64,
    bytes_transferred: u64,
    eta_seconds: Option<u64>,
    live: bool,
}

/// A migration as the API shows it: never a password.
fn view(state: &AppState, record: &MigrationRecord, with_report: bool) -> Value {
    let zone = &state.config.time_zone;
    let standing = standing(state, record, now());
    let progress = standing.progress;
    let mut out = Map::new();
    out.insert("id".into(), record.id.clone().into());
    out.insert("state".into(), record.state.as_str().into());
    for (side, endpoint) in [("source", &record.source), ("target", &record.target)] {
        side_fields(&mut out, side, endpoint.as_ref());
    }
    out.insert("startdate".into(), show_time(record.start_at, zone).into());
    out.insert(
        "resyncdate".into(),
        record.resync_at.map(|t| show_time(t, zone)).into(),
    );
    out.insert("created".into(), show_time(record.created_at, zone).into());
    out.insert(
        "started".into(),
        record.started_at.map(|t| show_time(t, zone)).into(),
    );
    out.insert(
        "finished".into(),
        record.finished_at.map(|t| show_time(t, zone)).into(),
    );
    out.insert("error".into(), record.error.clone().into());
    out.insert("purged".into(), record.purged.into());
    out.insert("copy_filters".into(), record.filters.into());
    out.insert("attempts".into(), record.attempts.into());
    let progress = ProgressView {
        messages_total: progress.messages_total,
        messages_transferred: progress.messages_done,
        messages_remaining: standing.remaining,
        messages_copied: progress.messages_copied,
        messages_failed: progress.messages_failed,
        bytes_total: progress.bytes_total,
        bytes_transferred: progress.bytes_done,
        eta_seconds: standing.eta_seconds,
        live: standing.live,
    };
    out.insert(
        "progress".into(),
        serde_json::to_value(progress).unwrap_or(Value::Null),
    );
    // Groupware counts: live while a pass runs, else from the last pass's report.
    let groupware = standing
        .groupware
        .and_then(|counts| serde_json::to_value(counts).ok());
    out.insert("groupware".into(), groupware.unwrap_or(Value::Null));
    // Filter scripts of the last pass: {total, copied, present, refused, failed}.
    let filters = standing
        .filters
        .and_then(|counts| serde_json::to_value(counts).ok());
    out.insert("filters".into(), filters.unwrap_or(Value::Null));
    if with_report {
        let report = record
            .report_json
            .as_deref()
            .and_then(|r| serde_json::from_str::<Value>(r).ok())
            .unwrap_or(Value::Null);
        out.insert("report".into(), report);
    }
    Value::Object(out)
}

fn side_fields(out: &mut Map<String, Value>, side: &str, endpoint: Option<&EndpointRecord>) {
    out.insert(
        format!("{side}.type"),
        endpoint.map(|e| e.server_type.clone()).into(),
    );
    out.insert(
        format!("{side}.email"),
        endpoint.map(|e| e.email.clone()).into(),
    );
    out.insert(
        format!("{side}.username"),
        endpoint.map(|e| e.username.clone()).into(),
    );
    out.insert(
        format!("{side}.server"),
        endpoint.map(|e| e.server.clone()).into(),
    );
}
