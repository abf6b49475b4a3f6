//! The REST API under `/api/v1`: JSON in and out, field names as in PRODUCT.md's list
//! format. Auth: the admin's password as HTTP Basic (`admin`), or a bearer token made with
//! `mailferry token create`. Errors are one JSON shape: `{error, side, field, hint, request_id}`.
//! The OpenAPI document is at `/api/openapi.json` and Swagger UI at `/api/docs` (no login).

mod auth;
mod batch;
mod error;
mod licences;
mod live;
mod migrations;
pub mod openapi;

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa_swagger_ui::SwaggerUi;

use crate::times::show_time;
use crate::{now, AppState};
use mailferry_engine::account::SERVER_TYPES;

pub use auth::{hash_password, new_token, token_hash, verify_password};
pub use error::ApiError;

/// The largest request body taken (1 MiB); larger ones get a 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// The largest list taken by `/api/v1/lists` (4 MiB, some 25,000 lines).
pub const LIST_BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Where lists are posted.
const LISTS: &str = "/api/v1/lists";

/// All routes.
pub fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/api/v1/info", get(info))
        .route(
            "/api/v1/migrations",
            post(migrations::submit).get(migrations::list),
        )
        .route("/api/v1/migrations/{id}", get(migrations::one))
        .route("/api/v1/migrations/{id}/cancel", post(migrations::cancel))
        .route("/api/v1/migrations/{id}/retry", post(migrations::retry))
        .route("/api/v1/migrations/{id}/purge", post(migrations::purge))
        .route("/api/v1/events", get(live::events))
        .route(
            LISTS,
            post(batch::submit).layer(DefaultBodyLimit::max(LIST_BODY_LIMIT)),
        )
        .route(
            "/api/v1/lists/check",
            post(batch::check).layer(DefaultBodyLimit::max(LIST_BODY_LIMIT)),
        )
        .route("/api/v1/lists/template", get(batch::template))
        .route("/api/v1/licences", get(licences::list).post(licences::add))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_login,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(live::metrics))
        .merge(api)
        .merge(crate::ui::router(state.clone()))
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", openapi::document()))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(refuse_large_bodies))
        .with_state(state)
}

/// How much of a too-large body is read (and dropped) before the 413, so that the client,
/// still sending, gets the answer rather than a reset connection. Beyond it, the
/// connection is cut.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;

/// Refuses a body larger than [`BODY_LIMIT`] on every route, before login and whether or
/// not the route reads a body, with or without a `Content-Length`; smaller bodies are
/// passed on as read.
async fn refuse_large_bodies(request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    // Lists, through the API or the web UI's Mass migration tab, may be larger.
    let path = request.uri().path();
    let limit = if path.starts_with(LISTS) || path == "/ui/mass" {
        LIST_BODY_LIMIT
    } else {
        BODY_LIMIT
    } as u64;
    // A page for the web UI, JSON for the API.
    let too_large = |ui: bool| {
        if ui {
            crate::ui::too_large(limit)
        } else {
            error::body_too_large(limit).into_response()
        }
    };
    let ui = path.starts_with("/ui/");
    if announced.is_some_and(|length| length > DRAIN_LIMIT) {
        return too_large(ui);
    }
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut kept = Vec::new();
    let mut seen: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return ApiError::new(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
            .into_response();
        };
        seen += chunk.len() as u64;
        if seen <= limit {
            kept.extend_from_slice(&chunk);
        } else if seen > DRAIN_LIMIT {
            break;
        }
    }
    if seen > limit {
        return too_large(ui);
    }
    next.run(Request::from_parts(parts, Body::from(kept))).await
}

/// Liveness: `ok` while the process serves requests.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "service",
    security(()),
    responses((status = 200, description = "The service is up", body = String, content_type = "text/plain"))
)]
async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize)]
struct Info {
    version: &'static str,
    time_zone: String,
    now: String,
    server_types: Vec<ServerTypeInfo>,
    allowance: crate::licence::Allowance,
}

#[derive(Serialize)]
struct ServerTypeInfo {
    name: &'static str,
    migrates: &'static str,
}

/// The service's version, time zone, current time, the server types it knows and the
/// migration allowance (remaining of total).
#[utoipa::path(
    get,
    path = "/api/v1/info",
    tag = "service",
    responses(
        (status = 200, description = "About this service", body = openapi::InfoDoc),
        (status = 401, description = "Not logged in", body = openapi::ErrorDoc),
    )
)]
async fn info(State(state): State<Arc<AppState>>) -> Result<Json<Info>, ApiError> {
    Ok(Json(Info {
        version: env!("CARGO_PKG_VERSION"),
        time_zone: state.config.time_zone_name(),
        now: show_time(now(), &state.config.time_zone),
        server_types: SERVER_TYPES
            .iter()
            .map(|t| ServerTypeInfo {
                name: t.name,
                migrates: t.summary,
            })
            .collect(),
        allowance: crate::licence::allowance(&state.store).await?,
    }))
}
