//! The Information tab: the server's time zone and time, the version, the server types and
//! what each migrates, and where the API is documented.

use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;

use super::session::Session;
use super::{render, Frame, Ui};
use crate::now;
use crate::times::show_time;
use mailferry_engine::account::SERVER_TYPES;

#[derive(Template)]
#[template(path = "information.html")]
struct InformationPage {
    frame: Frame,
    now: String,
    server_types: Vec<(&'static str, &'static str)>,
    picker: Option<String>,
}

/// `GET /ui/information`.
pub async fn page(State(ui): State<Arc<Ui>>, Extension(session): Extension<Session>) -> Response {
    let config = &ui.app.config;
    let picker = config.target_accounts.as_ref().map(|t| match &t.list {
        super::accounts::AccountList::PasswdFile(path) => {
            format!("the users of {}", path.display())
        }
        super::accounts::AccountList::Doveadm(None) => "doveadm user '*'".to_string(),
        super::accounts::AccountList::Doveadm(Some(config)) => {
            format!("doveadm -c {} user '*'", config.display())
        }
    });
    let page = InformationPage {
        frame: Frame::new(&ui, "/ui/information", &session.csrf),
        now: show_time(now(), &config.time_zone),
        server_types: SERVER_TYPES.iter().map(|t| (t.name, t.summary)).collect(),
        picker,
    };
    render(StatusCode::OK, &page)
}
