//! The web UI under `/ui`: server-rendered pages (askama templates in `templates/`), with
//! htmx and server-sent events for the live parts, behind the admin login. Every asset is
//! embedded in the binary; the pages load nothing from elsewhere, and the basic forms work
//! without JavaScript.
//!
//! # Layout
//! - [`session`](self::session): login sessions (in memory), the session cookie, CSRF
//!   tokens, the login rate limit, and the middleware that guards every tab.
//! - [`login`](self::login): the login page and logging out.
//! - [`migration`](self::migration): the Migration tab, the single form, checked and
//!   submitted in one action; with the account picker of [`accounts`](self::accounts).
//! - [`mass`](self::mass): the Mass migration tab: a list checked formally (faulty fields
//!   red, duplicates blue), then submitted with each line's login result.
//! - [`licences`](self::licences): the Licences tab: remaining of total, keys, adding one.
//! - [`status`](self::status): the Active tab (live through server-sent events, cancel) and
//!   the Finished tab (reports, retry, purge).
//! - [`information`](self::information): the Information tab.
//! - [`assets`](self::assets): htmx, its SSE extension, our script and stylesheet.
//!
//! # Contract
//! Every `POST` under `/ui` carries the session's CSRF token (a form field `csrf`, or the
//! `X-CSRF-Token` header htmx sends) and, when the browser names it, an `Origin` equal to
//! the page's own; anything else is refused with a 403 page before a handler runs.
//! Passwords typed into a form are never written back into a page, a log or a message.

pub mod accounts;
mod assets;
mod information;
mod licences;
mod login;
mod mass;
mod migration;
mod session;
mod status;

use std::sync::Arc;

use askama::Template;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::api::LIST_BODY_LIMIT;
use crate::AppState;

pub use session::{client_address, LoginLimiter, Sessions};

/// What the UI's handlers share.
pub struct Ui {
    pub app: Arc<AppState>,
    pub sessions: Sessions,
    pending: mass::PendingLists,
}

/// The UI's routes, for [`crate::api::router`] to merge.
pub fn router(app: Arc<AppState>) -> Router<Arc<AppState>> {
    let ui = Arc::new(Ui {
        app,
        sessions: Sessions::default(),
        pending: mass::PendingLists::default(),
    });
    let tabs = Router::new()
        .route(
            "/ui/migration",
            get(migration::page).post(migration::submit),
        )
        .route(
            "/ui/mass",
            get(mass::form)
                .post(mass::check)
                .layer(DefaultBodyLimit::max(LIST_BODY_LIMIT)),
        )
        .route("/ui/mass/submit", post(mass::submit))
        .route("/ui/mass/template", get(mass::template))
        .route("/ui/licences", get(licences::list).post(licences::add))
        .route("/ui/active", get(status::active))
        .route("/ui/active/events", get(status::active_events))
        .route("/ui/migrations/{id}/cancel", post(status::cancel))
        .route("/ui/migrations/{id}/retry", post(status::retry))
        .route("/ui/migrations/{id}/purge", post(status::purge))
        .route("/ui/finished", get(status::finished))
        .route("/ui/information", get(information::page))
        .route("/ui/logout", post(login::logout))
        .route_layer(middleware::from_fn_with_state(
            ui.clone(),
            session::require_session,
        ));
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(login::home))
        .route("/ui/login", get(login::page).post(login::submit))
        .route("/ui/assets/{name}", get(assets::serve))
        .route("/ui/{*rest}", get(not_found).post(not_found))
        .merge(tabs)
        .layer(middleware::from_fn(security_headers))
        .with_state(ui)
}

/// The tabs, in the order the navigation shows them.
const TABS: [(&str, &str); 6] = [
    ("/ui/migration", "Migration"),
    ("/ui/mass", "Mass migration"),
    ("/ui/active", "Active"),
    ("/ui/finished", "Finished"),
    ("/ui/licences", "Licences"),
    ("/ui/information", "Information"),
];

/// One link of the navigation.
pub struct TabLink {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// What every page around its content shows: the navigation with the current tab, the
/// CSRF token for its forms, and a notice after an action.
pub struct Frame {
    pub title: String,
    pub tabs: Vec<TabLink>,
    pub csrf: String,
    pub notice: Option<String>,
    pub version: &'static str,
    pub time_zone: String,
}

impl Frame {
    /// The frame of the tab at `href`, for a logged-in session.
    pub fn new(ui: &Ui, href: &str, csrf: &str) -> Self {
        let title = TABS
            .iter()
            .find(|(h, _)| *h == href)
            .map_or("mailferry", |(_, label)| label)
            .to_string();
        Self {
            title,
            tabs: TABS
                .iter()
                .map(|(h, label)| TabLink {
                    href: h,
                    label,
                    current: *h == href,
                })
                .collect(),
            csrf: csrf.to_string(),
            notice: None,
            version: env!("CARGO_PKG_VERSION"),
            time_zone: ui.app.config.time_zone_name(),
        }
    }

    pub fn notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }
}

/// `text` with its first letter in upper case (messages of the library start in lower case).
pub fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A rendered page with its status; a template that fails to render is a 500 page (and
/// a log line), never a panic.
pub fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page could not be rendered");
            problem_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "This page could not be shown",
                "The service log has the details.",
            )
        }
    }
}

#[derive(Template)]
#[template(path = "problem.html")]
struct ProblemPage<'a> {
    title: &'a str,
    detail: &'a str,
    request_id: String,
}

/// A page for a refused or failed request, outside the tabs (no session needed): what
/// happened, what to do, and a request id to find it in the log.
pub fn problem_page(status: StatusCode, title: &str, detail: &str) -> Response {
    let request_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    if status.is_server_error() {
        tracing::error!(request_id, title, "page failed");
    } else {
        tracing::info!(request_id, status = status.as_u16(), title, "page refused");
    }
    let page = ProblemPage {
        title,
        detail,
        request_id,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(_) => (status, title.to_string()).into_response(),
    }
}

/// The page for a form or upload larger than `limit` bytes (the router refuses it before
/// any handler runs).
pub fn too_large(limit: u64) -> Response {
    problem_page(
        StatusCode::PAYLOAD_TOO_LARGE,
        "This is more than the service takes at once",
        &format!(
            "The form or file is larger than {} MiB. Split a long list into parts and check each. Nothing was changed.",
            limit / (1024 * 1024)
        ),
    )
}

async fn not_found() -> Response {
    problem_page(
        StatusCode::NOT_FOUND,
        "There is no such page",
        "Use the tabs at the top, or start again at /ui/.",
    )
}

/// Headers every UI answer carries: scripts, styles and connections only from this
/// service (no inline script), no framing, no sniffing, no caching of pages.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/ui/assets/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !is_asset {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
