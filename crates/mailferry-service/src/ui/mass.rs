//! The Mass migration tab: paste or upload a list, see the formal check as a table (each
//! faulty field red with its error beside it, duplicate lines blue), then submit: every
//! line's logins are tried, the good lines are stored together within the allowance, and
//! each line's result is shown. A template list can be downloaded.
//!
//! A checked list is kept in memory (for [`PENDING_LIFETIME`], for the session that checked
//! it) under a random token, so that the submit step needs no second upload and no password
//! is ever written into a page. With JavaScript the check swaps only the result area, so
//! the pasted text stays in its box for corrections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::session::{random_token, same_token, Session};
use super::{render, Frame, Ui};
use crate::batch::{
    check_formal, check_list, submit_list, CheckedLine, FormalCheck, ListFormat, ListRefused,
    FIELDS, IMAPSYNC_FIELDS, TEMPLATE,
};
use crate::licence::{allowance, short_message, Allowance};
use crate::now;

/// How long a checked list waits for its submission.
pub const PENDING_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// Checked lists waiting to be submitted, by token.
#[derive(Default)]
pub struct PendingLists {
    lists: Mutex<HashMap<String, PendingList>>,
}

struct PendingList {
    text: Zeroizing<String>,
    /// The CSRF token of the session that checked it: no other session may submit it.
    session: String,
    expires: Instant,
}

impl PendingLists {
    fn keep(&self, text: String, session: &Session) -> String {
        let token = random_token();
        if let Ok(mut lists) = self.lists.lock() {
            let now = Instant::now();
            lists.retain(|_, l| l.expires > now);
            lists.insert(
                token.clone(),
                PendingList {
                    text: Zeroizing::new(text),
                    session: session.csrf.clone(),
                    expires: now + PENDING_LIFETIME,
                },
            );
        }
        token
    }

    /// Takes the list out (it is submitted once).
    fn take(&self, token: &str, session: &Session) -> Option<Zeroizing<String>> {
        let mut lists = self.lists.lock().ok()?;
        let fits = lists
            .get(token)
            .is_some_and(|l| l.expires > Instant::now() && same_token(&l.session, &session.csrf));
        if !fits {
            return None;
        }
        lists.remove(token).map(|l| l.text)
    }
}

/// A cell of the checked list.
pub struct CellView {
    pub value: String,
    pub error: Option<String>,
}

/// A row of the checked list.
pub struct LineView {
    pub line: usize,
    pub cells: Vec<CellView>,
    /// Errors of the line as a whole (it could not be split into fields), or of fields
    /// that have no column.
    pub line_errors: Vec<String>,
    pub duplicate: Option<String>,
}

impl LineView {
    pub fn faulty(&self) -> bool {
        !self.line_errors.is_empty() || self.cells.iter().any(|c| c.error.is_some())
    }
}

/// The formal check as the page shows it.
pub struct CheckView {
    pub format: &'static str,
    pub columns: Vec<&'static str>,
    pub lines: Vec<LineView>,
    pub faulty: usize,
    pub duplicates: usize,
    pub clean: bool,
    /// The token to submit the list with, when it is clean.
    pub token: String,
}

/// One line's result after submitting.
pub struct ResultView {
    pub line: usize,
    pub accounts: String,
    pub submitted: bool,
    pub words: String,
}

#[derive(Template)]
#[template(path = "mass.html")]
struct MassPage {
    frame: Frame,
    allowance: Option<Allowance>,
    outcome: Outcome,
}

#[derive(Template)]
#[template(path = "mass_outcome.html")]
struct OutcomeFragment<'a> {
    outcome: &'a Outcome,
    csrf: &'a str,
}

/// What the result area shows.
#[derive(Default)]
pub struct Outcome {
    /// A problem with the request itself (no list, not UTF-8, ...).
    pub problem: Option<String>,
    pub check: Option<CheckView>,
    pub results: Vec<ResultView>,
    /// The allowance refused the list, or the database failed.
    pub refused: Option<String>,
    pub submitted: usize,
}

fn column_names(format: ListFormat) -> Vec<&'static str> {
    match format {
        ListFormat::Mailferry => FIELDS.to_vec(),
        ListFormat::Imapsync => IMAPSYNC_FIELDS.to_vec(),
    }
}

fn line_view(line: &CheckedLine, columns: &[&'static str]) -> LineView {
    let mut line_errors = Vec::new();
    let cells = if line.fields.is_empty() {
        Vec::new()
    } else {
        columns
            .iter()
            .map(|name| CellView {
                value: line
                    .fields
                    .iter()
                    .find(|f| f.name == *name)
                    .map(|f| f.value.clone())
                    .unwrap_or_default(),
                error: {
                    let words: Vec<&str> = line
                        .errors
                        .iter()
                        .filter(|e| e.field == *name)
                        .map(|e| e.message.as_str())
                        .collect();
                    (!words.is_empty()).then(|| words.join("; "))
                },
            })
            .collect()
    };
    for error in &line.errors {
        if line.fields.is_empty() || !columns.contains(&error.field.as_str()) {
            line_errors.push(if error.field == "line" {
                error.message.clone()
            } else {
                format!("{}: {}", error.field, error.message)
            });
        }
    }
    let duplicate = line.duplicate_text().map(|text| super::capitalised(&text));
    LineView {
        line: line.line,
        cells,
        line_errors,
        duplicate,
    }
}

fn check_view(check: &FormalCheck, token: String) -> CheckView {
    let columns = column_names(check.format);
    CheckView {
        format: match check.format {
            ListFormat::Mailferry => "mailferry (12 fields)",
            ListFormat::Imapsync => "imapsync (host1;user1;password1;host2;user2;password2)",
        },
        lines: check.lines.iter().map(|l| line_view(l, &columns)).collect(),
        columns,
        faulty: check.faulty_lines,
        duplicates: check.duplicate_lines,
        clean: check.clean,
        token,
    }
}

/// Source → target of a line, as shown (for the results).
fn accounts_of(line: &CheckedLine) -> String {
    let shown = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| {
                line.fields
                    .iter()
                    .find(|f| f.name == *n && !f.value.is_empty())
                    .map(|f| f.value.clone())
            })
            .unwrap_or_default()
    };
    format!(
        "{} → {}",
        shown(["source.email", "user1"]),
        shown(["target.email", "user2"])
    )
}

async fn page(ui: &Ui, session: &Session, status: StatusCode, outcome: Outcome) -> Response {
    let allowance = allowance(&ui.app.store).await.ok();
    render(
        status,
        &MassPage {
            frame: Frame::new(ui, "/ui/mass", &session.csrf),
            allowance,
            outcome,
        },
    )
}

/// The result area alone for htmx (which swaps it in and leaves the pasted text be), the
/// whole page otherwise.
async fn answer(
    ui: &Ui,
    session: &Session,
    headers: &HeaderMap,
    status: StatusCode,
    outcome: Outcome,
) -> Response {
    if headers.contains_key("hx-request") {
        // htmx swaps only 2xx answers by default; the status is in the words.
        return render(
            StatusCode::OK,
            &OutcomeFragment {
                outcome: &outcome,
                csrf: &session.csrf,
            },
        );
    }
    page(ui, session, status, outcome).await
}

/// `GET /ui/mass`.
pub async fn form(State(ui): State<Arc<Ui>>, Extension(session): Extension<Session>) -> Response {
    page(&ui, &session, StatusCode::OK, Outcome::default()).await
}

/// `GET /ui/mass/template`: the template list, as the API gives it.
pub async fn template() -> Response {
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
        .into_response()
}

/// The list of a check request: the uploaded file if one was chosen, else the pasted text.
async fn list_text(mut multipart: Multipart) -> Result<String, String> {
    let mut pasted = String::new();
    let mut file: Option<(String, Vec<u8>)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(format!("The form could not be read: {}", e.body_text())),
        };
        match field.name() {
            Some("list") => {
                pasted = field
                    .text()
                    .await
                    .map_err(|e| format!("The pasted list could not be read: {}", e.body_text()))?;
            }
            Some("file") => {
                let name = field.file_name().unwrap_or("").to_string();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| format!("The file could not be read: {}", e.body_text()))?;
                if !bytes.is_empty() {
                    file = Some((name, bytes.to_vec()));
                }
            }
            _ => {}
        }
    }
    match file {
        Some((name, bytes)) => String::from_utf8(bytes).map_err(|e| {
            format!(
                "The file {name} is not UTF-8 text (byte {} is not): save it as UTF-8 text or CSV and upload it again.",
                e.utf8_error().valid_up_to() + 1
            )
        }),
        None if pasted.trim().is_empty() => Err(
            "There is no list: paste one into the box or choose a file, then check it.".into(),
        ),
        None => Ok(pasted),
    }
}

/// `POST /ui/mass`: the formal check; a clean list is kept for the submit step.
pub async fn check(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Response {
    let text = match list_text(multipart).await {
        Ok(text) => text,
        Err(problem) => {
            let outcome = Outcome {
                problem: Some(problem),
                ..Outcome::default()
            };
            return answer(&ui, &session, &headers, StatusCode::BAD_REQUEST, outcome).await;
        }
    };
    let formal = match check_list(&ui.app.store, &text, None, &ui.app.config, now()).await {
        Ok(formal) => formal,
        Err(error) => {
            tracing::error!(error = %error, "a list could not be checked against the stored migrations");
            let outcome = Outcome {
                problem: Some(
                    "The list could not be checked: the service's database could not be read. Try again; if it persists, see the service's log.".into(),
                ),
                ..Outcome::default()
            };
            return answer(
                &ui,
                &session,
                &headers,
                StatusCode::INTERNAL_SERVER_ERROR,
                outcome,
            )
            .await;
        }
    };
    let token = if formal.clean {
        ui.pending.keep(text, &session)
    } else {
        String::new()
    };
    let status = if formal.clean {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let outcome = Outcome {
        check: Some(check_view(&formal, token)),
        ..Outcome::default()
    };
    answer(&ui, &session, &headers, status, outcome).await
}

#[derive(Deserialize)]
pub struct SubmitForm {
    #[serde(default)]
    list: String,
}

/// `POST /ui/mass/submit`: logins tried per line, the good lines stored together.
pub async fn submit(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    headers: HeaderMap,
    Form(form): Form<SubmitForm>,
) -> Response {
    let Some(text) = ui.pending.take(&form.list, &session) else {
        let outcome = Outcome {
            problem: Some(format!(
                "This list is no longer waiting to be submitted (it was submitted already, or it was checked more than {} minutes ago, or in another session). Check it again.",
                PENDING_LIFETIME.as_secs() / 60
            )),
            ..Outcome::default()
        };
        return answer(&ui, &session, &headers, StatusCode::CONFLICT, outcome).await;
    };
    let now = now();
    let formal = check_formal(&text, None, &ui.app.config, now);
    let accounts = |line: usize| {
        formal
            .lines
            .iter()
            .find(|l| l.line == line)
            .map(accounts_of)
            .unwrap_or_default()
    };
    let failures = |failed: &[crate::batch::LoginFailure]| -> Vec<ResultView> {
        failed
            .iter()
            .map(|f| ResultView {
                line: f.line,
                accounts: accounts(f.line),
                submitted: false,
                words: format!(
                    "Not submitted: the login failed on the {} side. {}",
                    if f.side == "both" {
                        "source and the target"
                    } else {
                        f.side.as_str()
                    },
                    f.reasons
                        .iter()
                        .map(|r| format!("{}: {}", r.side, r.reason))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            })
            .collect()
    };
    let (status, outcome) = match submit_list(&ui.app, &text, None, now).await {
        Ok(done) => {
            let mut results: Vec<ResultView> = done
                .submitted
                .iter()
                .map(|s| ResultView {
                    line: s.line,
                    accounts: accounts(s.line),
                    submitted: true,
                    words: format!("Submitted (#{}).", s.id.chars().take(8).collect::<String>()),
                })
                .collect();
            results.extend(failures(&done.failed));
            results.sort_by_key(|r| r.line);
            (
                StatusCode::OK,
                Outcome {
                    submitted: done.submitted.len(),
                    results,
                    ..Outcome::default()
                },
            )
        }
        Err(ListRefused::Formal(formal)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Outcome {
                check: Some(check_view(&formal, String::new())),
                ..Outcome::default()
            },
        ),
        Err(ListRefused::Allowance { short, failed }) => (
            StatusCode::PAYMENT_REQUIRED,
            Outcome {
                refused: Some(format!(
                    "Nothing was submitted: {}. Add a licence key on the Licences tab, then check the list again.",
                    short_message(short)
                )),
                results: failures(&failed),
                ..Outcome::default()
            },
        ),
        Err(ListRefused::Store(e)) => {
            tracing::error!(error = %e, "cannot store a list");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Outcome {
                    refused: Some(
                        "Nothing was submitted: the database failed. The service log has the details."
                            .into(),
                    ),
                    ..Outcome::default()
                },
            )
        }
    };
    answer(&ui, &session, &headers, status, outcome).await
}
