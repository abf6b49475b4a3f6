//! The REST API under `/api/v1`: JSON in and out, field names as in PRODUCT.md's list
//! format. Auth: the admin's password as HTTP Basic (`admin`), or a bearer token made with
//! `mailferry token create`. Errors are one JSON shape: `{error, side, field, hint, request_id}`.

mod auth;
mod error;
mod live;
mod migrations;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde::Serialize;

use crate::server_type::SERVER_TYPES;
use crate::times::show_time;
use crate::{now, AppState};

pub use auth::{hash_password, new_token, token_hash};
pub use error::ApiError;

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
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_login,
        ));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(live::metrics))
        .merge(api)
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(1024 * 1024))
        .with_state(state)
}

#[derive(Serialize)]
struct Info {
    version: &'static str,
    time_zone: String,
    now: String,
    server_types: Vec<ServerTypeInfo>,
}

#[derive(Serialize)]
struct ServerTypeInfo {
    name: &'static str,
    migrates: &'static str,
}

async fn info(State(state): State<Arc<AppState>>) -> Json<Info> {
    Json(Info {
        version: env!("CARGO_PKG_VERSION"),
        time_zone: state.config.time_zone_name(),
        now: show_time(now(), &state.config.time_zone),
        server_types: SERVER_TYPES
            .iter()
            .map(|(name, migrates)| ServerTypeInfo { name, migrates })
            .collect(),
    })
}
