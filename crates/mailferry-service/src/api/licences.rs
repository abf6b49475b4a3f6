//! Licence keys and the allowance: remaining of total, the keys added, adding one.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{json_rejection, ApiError};
use super::openapi::{AddKeyDoc, ErrorDoc, LicencesDoc};
use crate::licence::{add_key, allowance, LicenceError};
use crate::times::show_time;
use crate::{now, AppState};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    key: String,
}

async fn licences_json(state: &AppState) -> Result<Value, ApiError> {
    let keys: Vec<Value> = state
        .store
        .licence_keys()
        .await?
        .into_iter()
        .map(|k| {
            json!({
                "id": k.id,
                "migrations": k.migrations,
                "issued_to": k.issued_to,
                "issued_at": show_time(k.issued_at, &state.config.time_zone),
                "added_at": show_time(k.added_at, &state.config.time_zone),
            })
        })
        .collect();
    Ok(json!({ "allowance": allowance(&state.store).await?, "keys": keys }))
}

/// The allowance (free, licensed, total, used, remaining) and the keys added.
#[utoipa::path(
    get,
    path = "/api/v1/licences",
    tag = "licences",
    responses(
        (status = 200, description = "Allowance and keys", body = LicencesDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
    )
)]
pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    Ok(Json(licences_json(&state).await?))
}

/// Add a licence key: verified against this service's licence public key; a key counts once.
#[utoipa::path(
    post,
    path = "/api/v1/licences",
    tag = "licences",
    request_body = AddKeyDoc,
    responses(
        (status = 201, description = "Added: the allowance and keys now", body = LicencesDoc),
        (status = 400, description = "Not JSON, or no `key`", body = ErrorDoc),
        (status = 401, description = "Not logged in", body = ErrorDoc),
        (status = 409, description = "This key was added before", body = ErrorDoc),
        (status = 413, description = "Body larger than 1 MiB", body = ErrorDoc),
        (status = 415, description = "Not `Content-Type: application/json`", body = ErrorDoc),
        (status = 422, description = "Not a key, changed, or signed for another operator", body = ErrorDoc),
    )
)]
pub async fn add(
    State(state): State<Arc<AppState>>,
    body: Result<Json<AddKey>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(body) = body.map_err(|r| {
        json_rejection(
            r,
            "the request body is not a licence key",
            "send JSON {\"key\": \"mfl1....\"}",
        )
    })?;
    match add_key(
        &state.store,
        &state.config.licence_public_key,
        &body.key,
        now(),
    )
    .await
    {
        Ok(licence) => {
            tracing::info!(key = %licence.id, migrations = licence.migrations, "licence key added");
            Ok((StatusCode::CREATED, Json(licences_json(&state).await?)))
        }
        Err(e @ LicenceError::AlreadyAdded { .. }) => {
            Err(ApiError::new(StatusCode::CONFLICT, e.to_string())
                .hint("each key adds its migrations once; ask for a new key for more"))
        }
        Err(LicenceError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            .hint("paste the key exactly as you received it; a key is issued for one operator's public key")),
    }
}
