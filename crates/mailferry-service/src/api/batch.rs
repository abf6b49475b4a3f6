//! Mass migration lists: check a posted list (formal check, then logins), submit it, and
//! the template to download. The list is the request body as text (`text/plain`, UTF-8).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::openapi::{ErrorDoc, ListCheckDoc, ListOutcomeDoc};
use crate::batch::{check_report, submit_list, ListFormat, ListRefused, TEMPLATE};
use crate::licence::allowance;
use crate::{now, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckQuery {
    /// Also try every line's logins (default: true).
    credentials: Option<bool>,
    /// `auto` (default), `mailferry` or `imapsync`.
    format: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    format: Option<String>,
}

#[allow(clippy::result_large_err)] // an error answers the request; no hot path
fn format(name: Option<&str>) -> Result<Option<ListFormat>, ApiError> {
    match name.unwrap_or("auto") {
        "auto" => Ok(None),
        "mailferry" => Ok(Some(ListFormat::Mailferry)),
        "imapsync" => Ok(Some(ListFormat::Imapsync)),
        other => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("unknown list format `{other}`"),
        )
        .hint("use format=auto, mailferry (12 fields) or imapsync (host1;user1;password1;host2;user2;password2)")),
    }
}

#[allow(clippy::result_large_err)] // an error answers the request; no hot path
fn list_text(body: &Bytes) -> Result<&str, ApiError> {
    std::str::from_utf8(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "the list is not UTF-8 text (byte {} is not)",
                e.valid_up_to() + 1
            ),
        )
        .hint("save the list as UTF-8 (with or without BOM) and post it as the request body")
    })
}

fn query_error(rejection: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, rejection.body_text())
        .hint("the parameters are credentials=true|false and format=auto|mailferry|imapsync")
}

/// Check a list without submitting anything: every line and field, duplicates, and (unless
/// `credentials=false`, and only when the formal check is clean) every line's logins.
#[utoipa::path(
    post,
    path = "/api/v1/lists/check",
    tag = "lists",
    params(
        ("credentials" = Option<bool>, Query, description = "Also try every line's logins (default true)"),
        ("format" = Option<String>, Query, description = "`auto` (default), `mailferry` or `imapsync`"),
    ),
    request_body(content = String, content_type = "text/plain", description = "The list, UTF-8"),
    responses(
        (status = 200, description = "The check: `clean` is true when nothing is wrong", body = ListCheckDoc),
        (status = 400, description = "Not UTF-8, or a bad parameter", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
        (status = 413, description = "Body larger than 4 MiB", body = ErrorDoc),
    )
)]
pub async fn check(
    State(state): State<Arc<AppState>>,
    query: Result<Query<CheckQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let format = format(query.format.as_deref())?;
    let text = list_text(&body)?;
    let out = check_report(
        &state.store,
        text,
        format,
        query.credentials.unwrap_or(true),
        &state.config,
        now(),
    )
    .await?;
    Ok(Json(out))
}

/// Submit a list: the formal check must be clean; then every line's logins are tried, and
/// the lines whose logins worked are stored together (the others are reported by line).
/// When the allowance cannot cover them all, none is stored.
#[utoipa::path(
    post,
    path = "/api/v1/lists",
    tag = "lists",
    params(("format" = Option<String>, Query, description = "`auto` (default), `mailferry` or `imapsync`")),
    request_body(content = String, content_type = "text/plain", description = "The list, UTF-8"),
    responses(
        (status = 201, description = "Stored: the lines submitted, with their ids, and the lines whose logins failed", body = ListOutcomeDoc),
        (status = 400, description = "Not UTF-8, or a bad parameter", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
        (status = 402, description = "The allowance cannot cover the good lines: none stored; `remaining` says how many can be", body = ErrorDoc),
        (status = 413, description = "Body larger than 4 MiB", body = ErrorDoc),
        (status = 422, description = "The formal check found problems (`report`): nothing was tried or stored", body = ErrorDoc),
    )
)]
pub async fn submit(
    State(state): State<Arc<AppState>>,
    query: Result<Query<SubmitQuery>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let format = format(query.format.as_deref())?;
    let text = list_text(&body)?;
    match submit_list(&state, text, format, now()).await {
        Ok(outcome) => {
            let mut out = serde_json::to_value(&outcome).unwrap_or(Value::Null);
            out["allowance"] = json!(allowance(&state.store).await?);
            Ok((StatusCode::CREATED, Json(out)))
        }
        Err(ListRefused::Formal(formal)) => {
            let problems = formal.problems();
            Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the list has {} problems; nothing was submitted; first: {}",
                    problems.len(),
                    problems.first().map(String::as_str).unwrap_or("")
                ),
            )
            .hint("correct the lines listed in `report` (POST /api/v1/lists/check shows the same without submitting) and submit again")
            .report(formal.to_json()))
        }
        Err(ListRefused::Allowance { short, failed }) => {
            Err(ApiError::allowance(short).report(json!({ "logins": { "failed": failed } })))
        }
        Err(ListRefused::Store(e)) => Err(e.into()),
    }
}

/// A template list to download: comments and one example line.
#[utoipa::path(
    get,
    path = "/api/v1/lists/template",
    tag = "lists",
    responses(
        (status = 200, description = "The template", body = String, content_type = "text/plain"),
        (status = 401, description = "Not logged in", body = ErrorDoc),
    )
)]
pub async fn template() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"mailferry-list.txt\"",
            ),
        ],
        TEMPLATE,
    )
}
