//! The Active tab (waiting, transferring, waiting for resync, resyncing: progress bar,
//! messages transferred of total, ETA; live through server-sent events; cancel) and the
//! Finished tab (done, failed, cancelled: each one's report per folder and per kind, its
//! problems in plain words; retry, purge).
//!
//! Live updates: the Active page connects to `/ui/active/events`, which every second sends
//! each row's progress cell when it changed (event `p-<id>`), and the whole list only when
//! migrations come, go or change state (event `list`). Swapping just the cells keeps the
//! keyboard focus where it is, on a Cancel button for instance. Without JavaScript the
//! page reloads itself every 10 seconds.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use futures_util::stream::{self, Stream};
use mailferry_engine::filters::FiltersReport;
use mailferry_engine::groupware::{GroupwareCounts, GroupwareReport};
use mailferry_engine::Report;
use mailferry_store::{MigrationRecord, MigrationState};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::session::Session;
use super::{problem_page, render, Frame, Ui};
use crate::now;
use crate::progress::standing;
use crate::times::show_time;
use crate::{control, AppState};

/// How many finished migrations the Finished tab shows unless asked for all.
const FINISHED_SHOWN: usize = 100;
/// How many problems of one kind a report lists before summing up the rest.
const PROBLEMS_LISTED: usize = 20;

/// Which migration, between which accounts, in which state: what a row of the Active tab
/// and an entry of the Finished tab start with.
pub struct Heading {
    pub id: String,
    pub short_id: String,
    pub source: String,
    pub target: String,
    pub state: &'static str,
    pub state_label: &'static str,
}

impl Heading {
    fn of(record: &MigrationRecord) -> Self {
        let (source, target) = accounts(record);
        Self {
            id: record.id.clone(),
            short_id: record.id.chars().take(8).collect(),
            source,
            target,
            state: record.state.as_str(),
            state_label: state_label(record.state),
        }
    }
}

/// One active migration.
pub struct ActiveRow {
    pub heading: Heading,
    /// When it starts or resyncs, for the waiting states.
    pub when: Option<String>,
    pub total: u64,
    pub done: u64,
    pub percent: u64,
    pub bytes: String,
    pub failed: u64,
    pub eta: String,
    /// Calendars, events, contacts, ... transferred of total, where the pass copies them.
    pub groupware: Vec<TallyView>,
}

/// One kind of groupware object: transferred of total.
pub struct TallyView {
    pub label: &'static str,
    pub transferred: u64,
    pub total: u64,
}

/// The kinds that have anything, in a fixed order.
fn tallies(counts: &GroupwareCounts) -> Vec<TallyView> {
    [
        ("Calendars", counts.calendars),
        ("Address books", counts.address_books),
        ("Events", counts.events),
        ("Tasks", counts.tasks),
        ("Journals", counts.journals),
        ("Contacts", counts.contacts),
    ]
    .into_iter()
    .filter(|(_, tally)| tally.total > 0 || tally.transferred > 0)
    .map(|(label, tally)| TallyView {
        label,
        transferred: tally.transferred,
        total: tally.total,
    })
    .collect()
}

#[derive(Template)]
#[template(path = "active.html")]
struct ActivePage {
    frame: Frame,
    rows: Vec<ActiveRow>,
    signature: String,
    highlight: String,
}

#[derive(Template)]
#[template(path = "active_list.html")]
struct ActiveList<'a> {
    rows: &'a [ActiveRow],
    csrf: &'a str,
    highlight: &'a str,
}

#[derive(Template)]
#[template(path = "active_progress.html")]
struct ProgressCell<'a> {
    row: &'a ActiveRow,
}

#[derive(Deserialize, Default)]
pub struct StatusQuery {
    #[serde(default)]
    submitted: Option<String>,
    #[serde(default)]
    notice: Option<String>,
    #[serde(default)]
    all: Option<String>,
    #[serde(default)]
    seen: Option<String>,
    #[serde(default)]
    highlight: Option<String>,
}

/// The words for a notice named in the query (a fixed set, so a link cannot put words of
/// its own on the page).
fn notice_text(key: Option<&str>) -> Option<String> {
    let text = match key? {
        "cancelled" => "The migration was cancelled and its credentials erased.",
        "not-cancelled" => "That migration could not be cancelled: it is no longer waiting or running.",
        "purged" => "The migration's personal data (addresses, usernames, servers, report, credentials) was purged; its counts are kept.",
        "not-purged" => "That migration could not be purged: only a finished migration can be.",
        "retried" => "The migration is waiting again; it starts at once.",
        "not-retried" => "That migration cannot be retried: only a failed one whose credentials are still stored can be. Submit it again instead.",
        "missing" => "There is no such migration (any more).",
        _ => return None,
    };
    Some(text.to_string())
}

const ACTIVE_STATES: [MigrationState; 4] = [
    MigrationState::Waiting,
    MigrationState::Transferring,
    MigrationState::WaitingResync,
    MigrationState::Resyncing,
];

const FINISHED_STATES: [MigrationState; 3] = [
    MigrationState::Done,
    MigrationState::Failed,
    MigrationState::Cancelled,
];

fn state_label(state: MigrationState) -> &'static str {
    match state {
        MigrationState::Waiting => "Waiting to start",
        MigrationState::Transferring => "Transferring",
        MigrationState::WaitingResync => "Waiting for resync",
        MigrationState::Resyncing => "Resyncing",
        MigrationState::Done => "Done",
        MigrationState::Failed => "Failed",
        MigrationState::Cancelled => "Cancelled",
    }
}

fn accounts(record: &MigrationRecord) -> (String, String) {
    let show = |side: &Option<mailferry_store::EndpointRecord>| {
        side.as_ref()
            .map_or_else(|| "(purged)".to_string(), |e| e.email.clone())
    };
    (show(&record.source), show(&record.target))
}

/// `1.2 MB`, decimal units as mail programs show them.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `about 3 minutes`.
pub fn human_duration(seconds: u64) -> String {
    match seconds {
        0..=59 => "under a minute".to_string(),
        60..=119 => "about a minute".to_string(),
        120..=3599 => format!("about {} minutes", seconds.div_ceil(60)),
        _ => {
            let minutes = seconds.div_ceil(60);
            format!("about {} h {} min", minutes / 60, minutes % 60)
        }
    }
}

fn active_row(ui: &Ui, record: &MigrationRecord, now: i64) -> ActiveRow {
    let zone = &ui.app.config.time_zone;
    let standing = standing(&ui.app, record, now);
    let progress = standing.progress;
    let when = match record.state {
        MigrationState::Waiting => Some(format!("starts {}", show_time(record.start_at, zone))),
        MigrationState::WaitingResync => record
            .resync_at
            .map(|at| format!("resync {}", show_time(at, zone))),
        _ => None,
    };
    let percent = (progress.messages_done * 100)
        .checked_div(progress.messages_total)
        .unwrap_or(0)
        .min(100);
    let eta = match (record.state, standing.eta_seconds) {
        (MigrationState::Transferring | MigrationState::Resyncing, Some(s)) => human_duration(s),
        (MigrationState::Transferring | MigrationState::Resyncing, None) => {
            "being worked out".to_string()
        }
        _ => "—".to_string(),
    };
    ActiveRow {
        heading: Heading::of(record),
        when,
        total: progress.messages_total,
        done: progress.messages_done,
        percent,
        bytes: format!(
            "{} of {}",
            human_bytes(progress.bytes_done),
            human_bytes(progress.bytes_total)
        ),
        failed: progress.messages_failed,
        eta,
        groupware: standing.groupware.as_ref().map(tallies).unwrap_or_default(),
    }
}

async fn active_rows(ui: &Ui) -> Result<Vec<ActiveRow>, mailferry_store::StoreError> {
    let now = now();
    let mut records = ui.app.store.list_migrations(Some(&ACTIVE_STATES)).await?;
    // Running first, then by when they are due.
    records.sort_by_key(|r| {
        (
            !matches!(
                r.state,
                MigrationState::Transferring | MigrationState::Resyncing
            ),
            r.start_at,
        )
    });
    Ok(records.iter().map(|r| active_row(ui, r, now)).collect())
}

/// Which migrations are listed, in which states: the list is sent again when this changes.
fn signature(rows: &[ActiveRow]) -> String {
    let mut hash = Sha256::new();
    for row in rows {
        hash.update(row.heading.id.as_bytes());
        hash.update(row.heading.state.as_bytes());
        hash.update(row.when.as_deref().unwrap_or("").as_bytes());
    }
    hex::encode(&hash.finalize()[..8])
}

fn database_failed(e: mailferry_store::StoreError) -> Response {
    tracing::error!(error = %e, "the database failed");
    problem_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The migrations could not be read",
        "The database failed; the service log has the details. Try again in a moment.",
    )
}

/// `GET /ui/active`.
pub async fn active(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Query(query): Query<StatusQuery>,
) -> Response {
    let rows = match active_rows(&ui).await {
        Ok(rows) => rows,
        Err(e) => return database_failed(e),
    };
    let mut notice = notice_text(query.notice.as_deref());
    let mut highlight = String::new();
    if let Some(id) = &query.submitted {
        if let Ok(Some(record)) = ui.app.store.migration(id).await {
            let (source, target) = accounts(&record);
            notice = Some(format!(
                "Submitted: {source} → {target}. Both logins worked. It starts {}.",
                if record.start_at <= now() {
                    "now".to_string()
                } else {
                    format!(
                        "at {}",
                        show_time(record.start_at, &ui.app.config.time_zone)
                    )
                }
            ));
            highlight = record.id;
        }
    }
    let page = ActivePage {
        frame: Frame::new(&ui, "/ui/active", &session.csrf).notice(notice),
        signature: signature(&rows),
        rows,
        highlight,
    };
    render(StatusCode::OK, &page)
}

/// `GET /ui/active/events`: the live feed of the Active tab.
pub async fn active_events(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Query(query): Query<StatusQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct Feed {
        ui: Arc<Ui>,
        csrf: String,
        highlight: String,
        listed: String,
        cells: HashMap<String, String>,
        first: bool,
    }
    let feed = Feed {
        ui,
        csrf: session.csrf,
        highlight: query.highlight.unwrap_or_default(),
        listed: query.seen.unwrap_or_default(),
        cells: HashMap::new(),
        first: true,
    };
    let stream = stream::unfold(feed, |mut feed| async move {
        if !feed.first {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        feed.first = false;
        let mut events = Vec::new();
        if let Ok(rows) = active_rows(&feed.ui).await {
            let listed = signature(&rows);
            let cells: HashMap<String, String> = rows
                .iter()
                .filter_map(|row| {
                    Some((row.heading.id.clone(), ProgressCell { row }.render().ok()?))
                })
                .collect();
            if listed != feed.listed {
                let list = ActiveList {
                    rows: &rows,
                    csrf: &feed.csrf,
                    highlight: &feed.highlight,
                };
                if let Ok(html) = list.render() {
                    events.push(Ok(Event::default().event("list").data(html)));
                    feed.listed = listed;
                }
            } else {
                for (id, html) in &cells {
                    if feed.cells.get(id) != Some(html) {
                        events.push(Ok(Event::default()
                            .event(format!("p-{id}"))
                            .data(html.clone())));
                    }
                }
            }
            feed.cells = cells;
        }
        Some((stream::iter(events), feed))
    });
    Sse::new(futures_util::StreamExt::flatten(stream)).keep_alive(KeepAlive::default())
}

/// A folder of a report.
pub struct FolderRow {
    pub source: String,
    pub target: String,
    pub messages: u64,
    pub copied: u64,
    pub already_present: u64,
    pub failed: usize,
    pub skipped: usize,
    pub error: Option<String>,
}

/// A kind of data of a report: mail, then calendars, address books, events, tasks,
/// journals and contacts where the account had groupware.
pub struct KindRow {
    pub kind: &'static str,
    pub total: u64,
    /// On the target after the pass: copied now, or before, or there already.
    pub on_target: u64,
    /// Copied by this pass, where the report counts that per kind (mail).
    pub copied: Option<u64>,
    pub failed: Option<u64>,
}

/// A calendar or address book of a report.
pub struct CollectionRow {
    pub kind: &'static str,
    pub name: String,
    pub objects: u64,
    pub copied: u64,
    pub updated: u64,
    pub already_present: u64,
    pub failed: usize,
    pub error: Option<String>,
}

/// One finished migration.
pub struct FinishedItem {
    pub heading: Heading,
    pub with_resync: bool,
    pub finished: String,
    pub copied: u64,
    pub already_present: u64,
    pub failed: u64,
    pub purged: bool,
    pub problems: Vec<String>,
    pub folders: Vec<FolderRow>,
    pub kinds: Vec<KindRow>,
    pub collections: Vec<CollectionRow>,
    pub has_report: bool,
    pub seconds: String,
}

#[derive(Template)]
#[template(path = "finished.html")]
struct FinishedPage {
    frame: Frame,
    items: Vec<FinishedItem>,
    hidden: usize,
}

fn finished_item(zone: &jiff::tz::TimeZone, record: &MigrationRecord) -> FinishedItem {
    let mut problems = Vec::new();
    if let Some(error) = &record.error {
        problems.push(error.clone());
    }
    let unreadable = |e: serde_json::Error| {
        format!("The report of this migration could not be read ({e}); GET /api/v1/migrations/{} shows it as stored.", record.id)
    };
    // The engine's own report type; its groupware part read on its own, so that one this
    // version cannot read still leaves the mail part shown.
    let stored: Option<serde_json::Value> =
        match record.report_json.as_deref().map(serde_json::from_str) {
            Some(Ok(value)) => Some(value),
            Some(Err(e)) => {
                problems.push(unreadable(e));
                None
            }
            None => None,
        };
    let (report, groupware_json) = match stored {
        Some(serde_json::Value::Object(mut fields)) => {
            let groupware = fields.remove("groupware");
            match serde_json::from_value::<Report>(serde_json::Value::Object(fields)) {
                Ok(report) => (Some(report), groupware),
                Err(e) => {
                    problems.push(unreadable(e));
                    (None, None)
                }
            }
        }
        _ => (None, None),
    };
    let groupware: Option<GroupwareReport> = match groupware_json
        .filter(|g| !g.is_null())
        .map(serde_json::from_value)
    {
        Some(Ok(groupware)) => Some(groupware),
        Some(Err(e)) => {
            problems.push(unreadable(e));
            None
        }
        None => None,
    };
    let mut folders = Vec::new();
    let (mut total, mut copied, mut already_present, mut failed) = (0, 0, 0, 0);
    if let Some(report) = &report {
        problems.extend(report.problems.iter().cloned());
        let mut listed = 0;
        let mut unlisted = 0;
        for folder in &report.folders {
            if let Some(error) = &folder.error {
                problems.push(format!("Folder {}: {error}", folder.source));
            }
            for (what, list) in [
                ("was not copied", &folder.failed),
                ("was skipped", &folder.skipped),
            ] {
                for problem in list {
                    if listed < PROBLEMS_LISTED {
                        problems.push(format!(
                            "Folder {}, message UID {} ({}) {what}: {}",
                            folder.source,
                            problem.uid,
                            human_bytes(problem.size),
                            problem.reason
                        ));
                        listed += 1;
                    } else {
                        unlisted += 1;
                    }
                }
            }
            total += folder.source_messages;
            copied += folder.copied;
            already_present += folder.already_present;
            failed += folder.failed.len() as u64;
            folders.push(FolderRow {
                source: folder.source.clone(),
                target: folder.target.clone(),
                messages: folder.source_messages,
                copied: folder.copied,
                already_present: folder.already_present,
                failed: folder.failed.len(),
                skipped: folder.skipped.len(),
                error: folder.error.clone(),
            });
        }
        if unlisted > 0 {
            problems.push(format!(
                "… and {unlisted} more messages that were not copied or were skipped (the API's report lists them all)."
            ));
        }
    }
    let mut kinds = Vec::new();
    let mut collections = Vec::new();
    if report.is_some() {
        kinds.push(KindRow {
            kind: "Mail (messages)",
            total,
            on_target: copied + already_present,
            copied: Some(copied),
            failed: Some(failed),
        });
    } else {
        (copied, failed) = (
            record.progress.messages_copied,
            record.progress.messages_failed,
        );
    }
    if let Some(groupware) = &groupware {
        problems.extend(groupware_problems(groupware));
        kinds.extend(tallies(&groupware.tally()).into_iter().map(|t| KindRow {
            kind: t.label,
            total: t.total,
            on_target: t.transferred,
            copied: None,
            failed: None,
        }));
        collections = groupware
            .collections
            .iter()
            .map(|c| CollectionRow {
                kind: if c.kind == "addressbook" {
                    "Address book"
                } else {
                    "Calendar"
                },
                name: c.name.clone(),
                objects: c.source_objects,
                copied: c.copied,
                updated: c.updated,
                already_present: c.already_present,
                failed: c.failed.len(),
                error: c.error.clone(),
            })
            .collect();
    }
    if let Some(filters) = report.as_ref().and_then(|r| r.filters.as_ref()) {
        problems.extend(filters_problems(filters));
        if filters.skipped.is_none() && !filters.scripts.is_empty() {
            let counts = filters.tally();
            kinds.push(KindRow {
                kind: "Filters (Sieve scripts)",
                total: counts.total,
                on_target: counts.copied + counts.present,
                copied: Some(counts.copied),
                failed: Some(counts.refused + counts.failed),
            });
        }
    }
    FinishedItem {
        heading: Heading::of(record),
        with_resync: record.resync_at.is_some() && record.state == MigrationState::Done,
        finished: record
            .finished_at
            .map_or_else(String::new, |at| show_time(at, zone)),
        copied,
        already_present,
        failed,
        purged: record.purged,
        problems,
        has_report: report.is_some(),
        seconds: report
            .as_ref()
            .map_or_else(String::new, |r| human_duration(r.seconds as u64)),
        folders,
        kinds,
        collections,
    }
}

/// A filters report's problems in words: the pass's own, each script the target refused
/// or that failed, with the server's words.
fn filters_problems(report: &FiltersReport) -> Vec<String> {
    let mut out = report.problems.clone();
    for script in &report.scripts {
        if let Some(error) = &script.error {
            out.push(format!(
                "Filter script {} was not copied: {}",
                script.source_name,
                error.lines().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    out
}

/// A groupware report's problems in words: the pass's own, each broken calendar or address
/// book, and the objects that did not copy (the first [`PROBLEMS_LISTED`]).
fn groupware_problems(report: &GroupwareReport) -> Vec<String> {
    let mut out = report.problems.clone();
    let mut objects = 0;
    for collection in &report.collections {
        if let Some(error) = &collection.error {
            out.push(format!("{} {}: {error}", collection.kind, collection.name));
        }
        for problem in &collection.failed {
            objects += 1;
            if objects <= PROBLEMS_LISTED {
                out.push(format!(
                    "{} {}, {} was not copied: {}",
                    collection.kind,
                    collection.name,
                    problem.uid.as_deref().unwrap_or(&problem.href),
                    problem.reason
                ));
            }
        }
    }
    if objects > PROBLEMS_LISTED {
        out.push(format!(
            "… and {} more calendar or contact entries that were not copied (the API's report lists them all).",
            objects - PROBLEMS_LISTED
        ));
    }
    out
}

/// `GET /ui/finished`.
pub async fn finished(
    State(ui): State<Arc<Ui>>,
    Extension(session): Extension<Session>,
    Query(query): Query<StatusQuery>,
) -> Response {
    let mut records = match ui.app.store.list_migrations(Some(&FINISHED_STATES)).await {
        Ok(records) => records,
        Err(e) => return database_failed(e),
    };
    records.sort_by_key(|r| std::cmp::Reverse(r.finished_at.unwrap_or(r.updated_at)));
    let hidden = if query.all.is_some() {
        0
    } else {
        records.len().saturating_sub(FINISHED_SHOWN)
    };
    records.truncate(records.len() - hidden);
    let page = FinishedPage {
        frame: Frame::new(&ui, "/ui/finished", &session.csrf)
            .notice(notice_text(query.notice.as_deref())),
        items: records
            .iter()
            .map(|r| finished_item(&ui.app.config.time_zone, r))
            .collect(),
        hidden,
    };
    render(StatusCode::OK, &page)
}

/// Ids are what the store made (hex); anything else is no migration of ours.
fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric())
}

/// `POST /ui/migrations/{id}/cancel`: as the API's cancel; the credentials are erased.
pub async fn cancel(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    act(
        &ui,
        &id,
        control::cancel,
        "/ui/active?notice=cancelled",
        "/ui/active?notice=not-cancelled",
    )
    .await
}

/// `POST /ui/migrations/{id}/retry`: a failed migration whose credentials are kept.
pub async fn retry(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    act(
        &ui,
        &id,
        control::retry,
        "/ui/active?notice=retried",
        "/ui/finished?notice=not-retried",
    )
    .await
}

/// `POST /ui/migrations/{id}/purge`: personal data erased, counts kept.
pub async fn purge(State(ui): State<Arc<Ui>>, Path(id): Path<String>) -> Response {
    act(
        &ui,
        &id,
        control::purge,
        "/ui/finished?notice=purged",
        "/ui/finished?notice=not-purged",
    )
    .await
}

/// Runs one of [`control`]'s actions and goes on to `done`, or to `refused` when the
/// migration's state does not allow it (or there is no such migration).
async fn act<'a, F, Fut>(ui: &'a Ui, id: &'a str, action: F, done: &str, refused: &str) -> Response
where
    F: FnOnce(&'a AppState, &'a str) -> Fut,
    Fut: std::future::Future<Output = Result<bool, mailferry_store::StoreError>>,
{
    let missing = format!("{}?notice=missing", refused.split('?').next().unwrap_or(""));
    if !plausible_id(id) {
        return Redirect::to(&missing).into_response();
    }
    match action(&ui.app, id).await {
        Ok(true) => {
            tracing::info!(migration = %id, then = done, "action from the web UI");
            Redirect::to(done).into_response()
        }
        Ok(false) => Redirect::to(refused).into_response(),
        Err(e) => database_failed(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(report: serde_json::Value) -> MigrationRecord {
        let side = |email: &str| mailferry_store::EndpointRecord {
            server_type: "imap".into(),
            email: email.into(),
            username: email.into(),
            server: "imaps://mail.example:993".into(),
            insecure: false,
        };
        MigrationRecord {
            id: "0123456789abcdef".into(),
            state: MigrationState::Done,
            source: Some(side("anna@old.example")),
            target: Some(side("anna@new.example")),
            start_at: 1_800_000_000,
            resync_at: None,
            created_at: 1_800_000_000,
            updated_at: 1_800_000_100,
            started_at: Some(1_800_000_000),
            finished_at: Some(1_800_000_100),
            error: None,
            progress: mailferry_store::ProgressRecord::default(),
            report_json: Some(report.to_string()),
            purged: false,
            attempts: 1,
            lease_owner: None,
            lease_until: None,
            filters: true,
        }
    }

    #[test]
    fn a_report_shows_mail_and_groupware_per_kind_and_its_problems_in_words() {
        let report = serde_json::json!({
            "source": "s", "target": "t", "dry_run": false, "seconds": 75.0, "problems": [],
            "folders": [
                {"source": "INBOX", "target": "INBOX", "source_messages": 10, "copied": 8,
                 "already_present": 1, "failed": [{"uid": 7, "size": 2048, "reason": "the target refused it: NO [LIMIT] too big"}],
                 "skipped": []},
                {"source": "Sent", "target": "Sent Items", "source_messages": 2, "copied": 2}
            ],
            "groupware": {
                "source": "s", "target": "t", "dry_run": false, "problems": [], "seconds": 3.0,
                "counts": {"calendars": {"total": 0, "transferred": 0}, "address_books": {"total": 0, "transferred": 0},
                           "events": {"total": 0, "transferred": 0}, "tasks": {"total": 0, "transferred": 0},
                           "journals": {"total": 0, "transferred": 0}, "contacts": {"total": 0, "transferred": 0}},
                "collections": [
                    {"kind": "calendar", "name": "Team Ü", "source": "/anna/team/", "target": "/anna/team/",
                     "created": true, "delta": "full", "source_objects": 3, "copied": 2, "updated": 0,
                     "already_present": 0, "unchanged": 0, "deleted_on_target": 0,
                     "failed": [{"href": "/anna/team/x.ics", "uid": "x-1", "reason": "the server answered 507"}],
                     "notes": [], "error": null,
                     "kinds": {"event": {"total": 3, "transferred": 2}}},
                    {"kind": "addressbook", "name": "Contacts", "source": "/anna/book/", "target": null,
                     "created": false, "delta": "full", "source_objects": 4, "copied": 0, "updated": 0,
                     "already_present": 0, "unchanged": 0, "deleted_on_target": 0, "failed": [],
                     "notes": [], "error": "the target has no address book home",
                     "kinds": {"contact": {"total": 4, "transferred": 0}}}
                ]
            }
        });
        let zone = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let item = finished_item(&zone, &record(report));
        assert_eq!((item.copied, item.already_present, item.failed), (10, 1, 1));
        let kinds: Vec<(&str, u64, u64)> = item
            .kinds
            .iter()
            .map(|k| (k.kind, k.total, k.on_target))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("Mail (messages)", 12, 11),
                ("Calendars", 1, 1),
                ("Address books", 1, 0),
                ("Events", 3, 2),
                ("Contacts", 4, 0)
            ]
        );
        assert_eq!(item.collections.len(), 2);
        assert_eq!(
            item.collections[1].error.as_deref(),
            Some("the target has no address book home")
        );
        let words = item.problems.join("\n");
        assert!(
            words.contains(
                "Folder INBOX, message UID 7 (2.0 kB) was not copied: the target refused it"
            ),
            "{words}"
        );
        assert!(
            words.contains("calendar Team Ü, x-1 was not copied: the server answered 507"),
            "{words}"
        );
        assert!(
            words.contains("addressbook Contacts: the target has no address book home"),
            "{words}"
        );
        assert_eq!(item.seconds, "about a minute");

        // A report that cannot be read is said so, not dropped in silence.
        let mut broken = record(serde_json::json!({}));
        broken.report_json = Some("{\"folders\": 7}".into());
        let item = finished_item(&zone, &broken);
        assert!(!item.has_report);
        assert!(
            item.problems[0].starts_with("The report of this migration could not be read"),
            "{:?}",
            item.problems
        );
    }

    #[test]
    fn sizes_and_durations_read_naturally() {
        assert_eq!(human_bytes(999), "999 bytes");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
        assert_eq!(human_duration(30), "under a minute");
        assert_eq!(human_duration(150), "about 3 minutes");
        assert_eq!(human_duration(3 * 3600 + 600), "about 3 h 10 min");
        assert!(notice_text(Some("<script>")).is_none());
        assert!(plausible_id("0123abcd") && !plausible_id("../x") && !plausible_id(""));
    }
}
