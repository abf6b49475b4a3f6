//! The Migration tab: the single form. Source and target (type, address, username,
//! password, server), start and resync time in the server's time zone, the allowance at
//! the top. One button checks and submits: field errors are shown beside their fields, a
//! failed login names its side and the server's words, and everything typed is kept except
//! the passwords.

use std::collections::HashMap;
use std::sync::Arc;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::accounts::{LocalAccount, TargetAccounts};
use super::session::Session;
use super::{capitalised, render, Frame, Ui};
use crate::batch::ActiveAccounts;
use crate::licence::{allowance, short_message, Allowance};
use crate::now;
use crate::submit::{check_credentials, store_validated, validate, SubmitRequest};
use crate::times::show_time;
use mailferry_engine::account::{Mail, SERVER_TYPES};

/// What the form sends. Every field is text; `action` is `pick` when the account picker's
/// button (for browsers without JavaScript) was used instead of Submit. The CSRF token was
/// checked before (and is ignored here).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct MigrationForm {
    #[serde(rename = "source.type")]
    source_type: String,
    #[serde(rename = "source.email")]
    source_email: String,
    #[serde(rename = "source.username")]
    source_username: String,
    #[serde(rename = "source.password")]
    source_password: String,
    #[serde(rename = "source.server")]
    source_server: String,
    #[serde(rename = "source.insecure")]
    source_insecure: Option<String>,
    #[serde(rename = "target.type")]
    target_type: String,
    #[serde(rename = "target.email")]
    target_email: String,
    #[serde(rename = "target.username")]
    target_username: String,
    #[serde(rename = "target.password")]
    target_password: String,
    #[serde(rename = "target.server")]
    target_server: String,
    #[serde(rename = "target.insecure")]
    target_insecure: Option<String>,
    startdate: String,
    resyncdate: String,
    pick: String,
    action: String,
}

impl MigrationForm {
    fn blank() -> Self {
        Self {
            source_type: "imap".into(),
            target_type: "imap".into(),
            ..Self::default()
        }
    }

    fn request(&self) -> SubmitRequest {
        let text = |v: &str| Some(v.to_string());
        SubmitRequest {
            source_type: text(&self.source_type),
            source_email: text(&self.source_email),
            source_username: text(&self.source_username),
            source_password: text(&self.source_password),
            source_server: text(&self.source_server),
            source_insecure: Some(self.source_insecure.is_some()),
            target_type: text(&self.target_type),
            target_email: text(&self.target_email),
            target_username: text(&self.target_username),
            target_password: text(&self.target_password),
            target_server: text(&self.target_server),
            target_insecure: Some(self.target_insecure.is_some()),
            startdate: text(&self.startdate),
            resyncdate: text(&self.resyncdate),
            source_dav: None,
            target_dav: None,
            source_sieve: None,
            target_sieve: None,
            filters: None,
        }
    }
}

/// One form control.
pub struct FieldView {
    pub name: String,
    pub id: String,
    pub label: &'static str,
    /// `text`, `email`, `password`, `datetime-local`, `select` or `checkbox`.
    pub kind: &'static str,
    pub value: String,
    pub checked: bool,
    pub options: Vec<OptionView>,
    pub autocomplete: &'static str,
    pub hint: Option<String>,
    pub error: Option<String>,
}

impl FieldView {
    /// The ids the control is described by: its hint and its error.
    pub fn described_by(&self) -> String {
        let mut ids = Vec::new();
        if self.hint.is_some() {
            ids.push(format!("{}-hint", self.id));
        }
        if self.error.is_some() {
            ids.push(format!("{}-error", self.id));
        }
        ids.join(" ")
    }
}

pub struct OptionView {
    pub value: String,
    pub label: String,
    pub selected: bool,
    pub disabled: bool,
}

/// A fieldset: the source or the target.
pub struct SideView {
    pub name: &'static str,
    pub legend: &'static str,
    pub fields: Vec<FieldView>,
}

/// A problem in the summary at the top, linking to its field.
pub struct ProblemView {
    pub anchor: String,
    pub text: String,
}

/// A failed login: the side and the server's words.
pub struct LoginFailureView {
    pub headline: String,
    pub reasons: Vec<String>,
    pub hints: Vec<String>,
}

#[derive(Template)]
#[template(path = "migration.html")]
struct MigrationPage {
    frame: Frame,
    allowance: Option<Allowance>,
    sides: Vec<SideView>,
    times: Vec<FieldView>,
    problems: Vec<ProblemView>,
    login_failure: Option<LoginFailureView>,
    refused: Option<String>,
    accounts: AccountsView,
    now: String,
}

/// The account picker's state for the page.
#[derive(Default)]
pub struct AccountsView {
    /// Configured at all.
    pub configured: bool,
    pub accounts: Vec<LocalAccount>,
    /// Why the accounts could not be listed.
    pub error: Option<String>,
    pub picked: String,
}

/// `GET /ui/migration`: the empty form.
pub async fn page(State(ui): State<Arc<Ui>>, Extension(session): Extension<Session>) -> Response {
    let form = MigrationForm::blank();
    let view = build(&ui, &session, &form, HashMap::new()).await;
    render(StatusCode::OK, &view)
}

/// `POST /ui/migration`: check and submit, or fill the target from the picker.
pub async fn submit(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Form(mut form): Form<MigrationForm>,
) -> Response {
    if form.action == "pick" {
        if let Some(account) = picked_account(&ui, &form.pick).await {
            form.target_username = account.username;
            if !account.email.is_empty() {
                form.target_email = account.email;
            }
            if let Some(server) = ui
                .app
                .config
                .target_accounts
                .as_ref()
                .and_then(|t| t.server.clone())
            {
                form.target_server = server;
            }
        }
        let view = build(&ui, &session, &form, HashMap::new()).await;
        return render(StatusCode::OK, &view);
    }
    let validated = match validate(form.request(), &ui.app.config, now()) {
        Ok(validated) => validated,
        Err(errors) => {
            let errors = errors.into_iter().map(|e| (e.field, e.message)).collect();
            let view = build(&ui, &session, &form, errors).await;
            return render(StatusCode::UNPROCESSABLE_ENTITY, &view);
        }
    };
    let active = match ActiveAccounts::load(&ui.app.store).await {
        Ok(active) => active.find(&validated),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the stored migrations");
            return store_failed(&ui, &session, &form).await;
        }
    };
    if let Some((side, id)) = active {
        let mut view = build(&ui, &session, &form, HashMap::new()).await;
        view.refused = Some(format!(
            "Not submitted: {}. Wait until it is finished (the Active tab shows it), or cancel it, then submit this one again.",
            crate::batch::active_duplicate_message(side, &id)
        ));
        return render(StatusCode::CONFLICT, &view);
    }
    if let Err(failure) = check_credentials(
        &validated,
        ui.app.config.check_timeout,
        ui.app.config.ca_file.as_deref(),
    )
    .await
    {
        let mut errors = HashMap::new();
        for reason in &failure.reasons {
            errors.insert(
                format!("{}.password", reason.side),
                format!(
                    "The {} server refused this login: check the username and password, and enter the password again.",
                    reason.side
                ),
            );
        }
        let mut view = build(&ui, &session, &form, errors).await;
        // The failure box says it all; the password fields are only marked.
        view.problems.clear();
        view.login_failure = Some(LoginFailureView {
            headline: format!(
                "The login failed on the {} side. Nothing was submitted.",
                match failure.side.as_str() {
                    "both" => "source and the target",
                    side => side,
                }
            ),
            reasons: failure
                .reasons
                .iter()
                .map(|r| format!("{}: {}", capitalised(&r.side.to_string()), r.reason))
                .collect(),
            hints: failure
                .reasons
                .iter()
                .filter_map(|r| r.hint.clone())
                .collect(),
        });
        return render(StatusCode::UNPROCESSABLE_ENTITY, &view);
    }
    match store_validated(&ui.app, &[&validated], now()).await {
        Ok(Ok(ids)) => {
            let id = ids.into_iter().next().unwrap_or_default();
            tracing::info!(migration = %id, "migration submitted from the web UI");
            Redirect::to(&format!("/ui/active?submitted={id}")).into_response()
        }
        Ok(Err(short)) => {
            let mut view = build(&ui, &session, &form, HashMap::new()).await;
            view.refused = Some(format!(
                "{}. Add a licence key on the Licences tab; keys add up.",
                capitalised(&short_message(short))
            ));
            render(StatusCode::PAYMENT_REQUIRED, &view)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot store a migration");
            store_failed(&ui, &session, &form).await
        }
    }
}

/// The form again, saying the database failed and nothing was submitted.
async fn store_failed(ui: &Ui, session: &Session, form: &MigrationForm) -> Response {
    let mut view = build(ui, session, form, HashMap::new()).await;
    view.refused = Some(
        "The migration could not be stored: the database failed. The service log has the details; nothing was submitted."
            .into(),
    );
    render(StatusCode::INTERNAL_SERVER_ERROR, &view)
}

async fn picked_account(ui: &Ui, username: &str) -> Option<LocalAccount> {
    let accounts = ui.app.config.target_accounts.as_ref()?;
    accounts
        .list()
        .await
        .ok()?
        .into_iter()
        .find(|a| a.username == username)
}

async fn accounts_view(config: Option<&TargetAccounts>, picked: &str) -> AccountsView {
    let Some(config) = config else {
        return AccountsView::default();
    };
    match config.list().await {
        Ok(accounts) => AccountsView {
            configured: true,
            accounts,
            error: None,
            picked: picked.to_string(),
        },
        Err(error) => AccountsView {
            configured: true,
            accounts: Vec::new(),
            error: Some(error.to_string()),
            picked: picked.to_string(),
        },
    }
}

/// The page for `form` with `errors` (field name → message).
async fn build(
    ui: &Ui,
    session: &Session,
    form: &MigrationForm,
    errors: HashMap<String, String>,
) -> MigrationPage {
    let config = &ui.app.config;
    let allowance = match allowance(&ui.app.store).await {
        Ok(allowance) => Some(allowance),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the allowance");
            None
        }
    };
    let sides = vec![
        side_view(
            "source",
            "Source: the old mailbox",
            [
                &form.source_type,
                &form.source_email,
                &form.source_username,
                &form.source_server,
            ],
            form.source_insecure.is_some(),
            config.allow_insecure,
            &errors,
        ),
        side_view(
            "target",
            "Target: the new mailbox",
            [
                &form.target_type,
                &form.target_email,
                &form.target_username,
                &form.target_server,
            ],
            form.target_insecure.is_some(),
            config.allow_insecure,
            &errors,
        ),
    ];
    let zone = config.time_zone_name();
    let times = vec![
        FieldView {
            name: "startdate".into(),
            id: "startdate".into(),
            label: "Start (date and time)",
            kind: "datetime-local",
            value: form.startdate.clone(),
            checked: false,
            options: Vec::new(),
            autocomplete: "off",
            hint: Some(format!(
                "In the server's time zone, {zone}. Empty: start as soon as possible."
            )),
            error: errors.get("startdate").cloned(),
        },
        FieldView {
            name: "resyncdate".into(),
            id: "resyncdate".into(),
            label: "Resync (date and time, optional)",
            kind: "datetime-local",
            value: form.resyncdate.clone(),
            checked: false,
            options: Vec::new(),
            autocomplete: "off",
            hint: Some(format!(
                "In the server's time zone, {zone}. A second pass copies what arrived since the first, e.g. after the MX switch. Empty: no resync."
            )),
            error: errors.get("resyncdate").cloned(),
        },
    ];
    let mut problems = Vec::new();
    for field in sides
        .iter()
        .flat_map(|s| s.fields.iter())
        .chain(times.iter())
    {
        if let Some(error) = &field.error {
            problems.push(ProblemView {
                anchor: field.id.clone(),
                text: format!("{}: {error}", problem_label(&field.name, field.label)),
            });
        }
    }
    // Errors on fields the form has no control for (none today) are not lost.
    for (name, error) in &errors {
        if !problems.iter().any(|p| p.anchor == name.replace('.', "-")) {
            problems.push(ProblemView {
                anchor: "form".into(),
                text: format!("{name}: {error}"),
            });
        }
    }
    MigrationPage {
        frame: Frame::new(ui, "/ui/migration", &session.csrf),
        allowance,
        sides,
        times,
        problems,
        login_failure: None,
        refused: None,
        accounts: accounts_view(config.target_accounts.as_ref(), &form.pick).await,
        now: show_time(now(), &config.time_zone),
    }
}

fn problem_label(name: &str, label: &str) -> String {
    match name.split_once('.') {
        Some((side, _)) => format!("{} {}", capitalised(side), label.to_lowercase()),
        None => label.to_string(),
    }
}

fn side_view(
    side: &'static str,
    legend: &'static str,
    [kind, email, username, server]: [&String; 4],
    insecure: bool,
    allow_insecure: bool,
    errors: &HashMap<String, String>,
) -> SideView {
    let field = |name: &str,
                 label: &'static str,
                 kind: &'static str,
                 value: &str,
                 autocomplete: &'static str,
                 hint: Option<&str>| FieldView {
        name: format!("{side}.{name}"),
        id: format!("{side}-{name}"),
        label,
        kind,
        value: value.to_string(),
        checked: false,
        options: Vec::new(),
        autocomplete,
        hint: hint.map(str::to_string),
        error: errors.get(&format!("{side}.{name}")).cloned(),
    };
    let mut type_field = field("type", "Server type", "select", kind, "off", None);
    type_field.options = SERVER_TYPES
        .iter()
        .map(|t| {
            let name = t.name;
            let unsupported = matches!(t.mail, Mail::NotYet(_));
            OptionView {
                value: name.to_string(),
                label: if unsupported {
                    format!("{name} (not yet)")
                } else {
                    name.to_string()
                },
                selected: name == kind.as_str(),
                disabled: unsupported,
            }
        })
        .collect();
    let mut fields = vec![
        type_field,
        field("email", "E-mail address", "email", email, "off", None),
        field(
            "username",
            "Username",
            "text",
            username,
            "off",
            Some("Empty: the e-mail address."),
        ),
        field("password", "Password", "password", "", "new-password", None),
        field(
            "server",
            "Server",
            "text",
            server,
            "off",
            Some("A host name (TLS on port 993), host:port, or an imap:// or imaps:// URL. Office 365 and Gmail need none."),
        ),
    ];
    if allow_insecure {
        let mut check = field(
            "insecure",
            "Accept an unverified certificate (lab servers only)",
            "checkbox",
            "on",
            "off",
            None,
        );
        check.checked = insecure;
        fields.push(check);
    }
    SideView {
        name: side,
        legend,
        fields,
    }
}
