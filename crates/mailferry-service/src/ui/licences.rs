//! The Licences tab: remaining of total, the keys added, and adding a key.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use mailferry_store::LicenceRecord;
use serde::Deserialize;

use super::session::Session;
use super::{capitalised, render, Frame, Ui};
use crate::licence::{add_key, allowance, Allowance, LicenceError};
use crate::now;
use crate::times::show_time;

/// A key as the page lists it.
pub struct KeyView {
    pub id: String,
    pub migrations: u64,
    pub issued_to: String,
    pub issued_at: String,
    pub added_at: String,
}

#[derive(Template)]
#[template(path = "licences.html")]
struct LicencesPage {
    frame: Frame,
    allowance: Option<Allowance>,
    keys: Vec<KeyView>,
    /// What was typed, kept after a refusal (a key is no secret).
    key: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct LicencesQuery {
    #[serde(default)]
    added: Option<String>,
}

#[derive(Deserialize)]
pub struct AddForm {
    #[serde(default)]
    key: String,
}

async fn page(
    ui: &Ui,
    session: &Session,
    status: StatusCode,
    notice: Option<String>,
    key: String,
    error: Option<String>,
) -> Response {
    let zone = &ui.app.config.time_zone;
    let logged =
        |e: mailferry_store::StoreError| tracing::error!(error = %e, "cannot read the licences");
    let allowance = allowance(&ui.app.store).await.map_err(logged).ok();
    let keys = ui
        .app
        .store
        .licence_keys()
        .await
        .map_err(logged)
        .unwrap_or_default()
        .into_iter()
        .map(|k: LicenceRecord| KeyView {
            id: k.id,
            migrations: k.migrations,
            issued_to: k.issued_to,
            issued_at: show_time(k.issued_at, zone),
            added_at: show_time(k.added_at, zone),
        })
        .collect::<Vec<_>>();
    let page = LicencesPage {
        frame: Frame::new(ui, "/ui/licences", &session.csrf).notice(notice),
        allowance,
        keys,
        key,
        error,
    };
    render(status, &page)
}

/// `GET /ui/licences`.
pub async fn list(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Query(query): Query<LicencesQuery>,
) -> Response {
    let keys = ui.app.store.licence_keys().await.unwrap_or_default();
    // Only a key that is really there is named, so a link cannot put words on the page.
    let notice = query
        .added
        .and_then(|id| keys.into_iter().find(|k| k.id == id))
        .map(|k| {
            format!(
                "Licence key {} added: {} more migrations.",
                k.id, k.migrations
            )
        });
    page(&ui, &session, StatusCode::OK, notice, String::new(), None).await
}

/// `POST /ui/licences`: verify and add a key.
pub async fn add(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Form(form): Form<AddForm>,
) -> Response {
    if form.key.trim().is_empty() {
        let error = "Paste a licence key (it starts with mfl1.).".to_string();
        return page(
            &ui,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            form.key,
            Some(error),
        )
        .await;
    }
    let added = add_key(
        &ui.app.store,
        &ui.app.config.licence_public_key,
        &form.key,
        now(),
    )
    .await;
    let (status, error) = match added {
        Ok(licence) => {
            tracing::info!(key = %licence.id, migrations = licence.migrations, "licence key added from the web UI");
            return Redirect::to(&format!("/ui/licences?added={}", urlencode(&licence.id)))
                .into_response();
        }
        Err(e @ LicenceError::AlreadyAdded { .. }) => (
            StatusCode::CONFLICT,
            format!(
                "{}. Each key adds its migrations once; ask for a new key for more.",
                capitalised(&e.to_string())
            ),
        ),
        Err(LicenceError::Store(e)) => {
            tracing::error!(error = %e, "cannot add a licence key");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The key could not be stored: the database failed. The service log has the details.".to_string(),
            )
        }
        Err(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "{}. Paste the key exactly as you received it, whole.",
                capitalised(&e.to_string())
            ),
        ),
    };
    page(&ui, &session, status, None, form.key, Some(error)).await
}

/// Percent-encodes everything but unreserved characters (RFC 3986 §2.3).
fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
