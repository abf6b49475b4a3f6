//! Mass migration lists: one migration per line, checked in three steps before anything is
//! stored.
//!
//! 1. [`check_formal`]: each line read ([`split_line`]: `;` between fields, `"` quotes
//!    with `""` inside) and each field checked as a single submission is
//!    ([`crate::submit::validate`]); a line that repeats an earlier line's source or target
//!    account is marked a duplicate as a whole. Passwords are masked in everything shown.
//! 2. [`check_logins`]: both logins of every line, concurrently, at most
//!    [`ServiceConfig::per_host_connections`](crate::ServiceConfig) at once per mail host.
//! 3. [`submit_list`]: the lines whose logins worked, stored together in one transaction,
//!    counted against the allowance; if it cannot cover them all, none is stored.
//!
//! # Formats
//! The list format of PRODUCT.md, 12 fields:
//! `source.type;source.email;source.username;source.password;source.server;target.type;target.email;target.username;target.password;target.server;startdate;resyncdate`.
//! imapsync's, 6 fields: `host1;user1;password1;host2;user2;password2` (a 7th, empty,
//! field from a trailing `;` is allowed), with these defaults: both types `imap`, the user
//! names as logins, each address the user name when it is one, else `user@host`; start now,
//! no resync. Which one a list is in is read off its first line with data ([`ListFormat`]).
//!
//! UTF-8 with or without a byte order mark, LF or CRLF. Blank lines and lines starting with
//! `#` are skipped; line numbers count every line of the file. Unquoted fields are trimmed;
//! a quoted field is taken exactly (a password with spaces at either end must be quoted).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mailferry_engine::Side;
use serde::Serialize;
use tokio::sync::Semaphore;

use crate::config::ServiceConfig;
use crate::submit::{store_validated, validate, FieldError, SideFailure, SubmitRequest, Validated};
use crate::AppState;
use mailferry_engine::account::mail_endpoint;

/// The fields of a line in the list format, in order.
pub const FIELDS: [&str; 12] = [
    "source.type",
    "source.email",
    "source.username",
    "source.password",
    "source.server",
    "target.type",
    "target.email",
    "target.username",
    "target.password",
    "target.server",
    "startdate",
    "resyncdate",
];

/// The fields of an imapsync-style line, in order.
pub const IMAPSYNC_FIELDS: [&str; 6] =
    ["host1", "user1", "password1", "host2", "user2", "password2"];

/// What passwords are shown as.
pub const MASK: &str = "••••••";

/// The template to download: a comment and one example line.
pub const TEMPLATE: &str = "\
# mailferry mass migration list: one migration per line, fields separated by ;
# source.type;source.email;source.username;source.password;source.server;target.type;target.email;target.username;target.password;target.server;startdate;resyncdate
# Types: imap, zimbra, exchange, office365, gmail, kolab, openxchange. Server: host (TLS on 993), host:port, or an imaps:// URL.
# Username empty: the e-mail address. Dates: YYYY-MM-DD HH:MM in the service's time zone, or RFC 3339 with an offset;
# startdate empty: now; resyncdate empty: no delta pass. Quote a field with \" when it holds ; (write \"\" for a \" inside).
# Lines starting with # are skipped. Remove the # of the example line below and put your own values in.
#imap;alice@old.example;;\"pass;word\";imap.old.example;imap;alice@new.example;;secret2;imap.new.example:993;2026-12-18 22:00;2026-12-21 08:00
";

/// Which format a list is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    /// PRODUCT.md's 12 fields.
    Mailferry,
    /// `host1;user1;password1;host2;user2;password2`.
    Imapsync,
}

impl ListFormat {
    fn fields(self) -> &'static [&'static str] {
        match self {
            ListFormat::Mailferry => &FIELDS,
            ListFormat::Imapsync => &IMAPSYNC_FIELDS,
        }
    }

    fn is_password(self, index: usize) -> bool {
        match self {
            ListFormat::Mailferry => index == 3 || index == 8,
            ListFormat::Imapsync => index == 2 || index == 5,
        }
    }

    /// The field of this format that a submission field comes from.
    fn field_name(self, submit_field: &str) -> String {
        match self {
            ListFormat::Mailferry => submit_field.to_string(),
            ListFormat::Imapsync => match submit_field {
                "source.server" | "source.type" => "host1",
                "source.email" | "source.username" => "user1",
                "source.password" => "password1",
                "target.server" | "target.type" => "host2",
                "target.email" | "target.username" => "user2",
                "target.password" => "password2",
                other => other,
            }
            .to_string(),
        }
    }
}

/// A field as shown: its name and value, a password masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownField {
    pub name: &'static str,
    pub value: String,
}

/// One line with data, checked.
#[derive(Debug, Clone, Serialize)]
pub struct CheckedLine {
    /// Its number in the file (1 is the first line, comments and blanks counted).
    pub line: usize,
    /// Its fields as shown (none when the line could not be split into the right number).
    pub fields: Vec<ShownField>,
    /// What is wrong, per field (`line` for the line as a whole).
    pub errors: Vec<FieldError>,
    /// The earlier line whose source or target account this line repeats.
    pub duplicate_of: Option<usize>,
    /// Which account it repeats: `source` or `target`.
    pub duplicate_side: Option<&'static str>,
    /// The migration, submitted earlier and still waiting or running, whose source or
    /// target account (`duplicate_side`) this line repeats: two migrations of one account
    /// at once could copy the same message twice.
    pub duplicate_of_migration: Option<String>,
    #[serde(skip)]
    pub validated: Option<Validated>,
}

impl CheckedLine {
    /// What it duplicates, in words (`duplicate: the same source account as line 3`).
    pub fn duplicate_text(&self) -> Option<String> {
        let side = self.duplicate_side?;
        if let Some(first) = self.duplicate_of {
            return Some(format!(
                "duplicate: the same {side} account as line {first}"
            ));
        }
        let id = self.duplicate_of_migration.as_deref()?;
        Some(format!(
            "duplicate: the same {side} account as migration {id}, which is still waiting or running; \
             wait until it is finished (or cancel it) before submitting this account again"
        ))
    }

    pub fn is_clean(&self) -> bool {
        self.errors.is_empty()
            && self.duplicate_of.is_none()
            && self.duplicate_of_migration.is_none()
    }
}

/// The formal check of a list.
#[derive(Debug, Clone, Serialize)]
pub struct FormalCheck {
    pub format: ListFormat,
    /// Every line with data, in order.
    pub lines: Vec<CheckedLine>,
    /// Lines with at least one field error.
    pub faulty_lines: usize,
    /// Lines marked as duplicates.
    pub duplicate_lines: usize,
    /// No error and no duplicate, and at least one line.
    pub clean: bool,
}

impl FormalCheck {
    /// As JSON, with `problems` in words.
    pub fn to_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        value["problems"] = serde_json::json!(self.problems());
        value
    }

    /// Every problem, one line of text each (`line 7, source.email: ...`).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.lines.is_empty() {
            out.push("the list has no line with data (only blank lines and # comments)".into());
        }
        for line in &self.lines {
            for error in &line.errors {
                let value = line
                    .fields
                    .iter()
                    .find(|f| f.name == error.field)
                    .map(|f| format!(" = `{}`", f.value))
                    .unwrap_or_default();
                out.push(format!(
                    "line {}, {}{value}: {}",
                    line.line, error.field, error.message
                ));
            }
            if let Some(duplicate) = line.duplicate_text() {
                out.push(format!("line {}: {duplicate}", line.line));
            }
        }
        out
    }
}

/// Splits one line into its fields: `;` between them, a field in `"` quotes taken exactly
/// (`""` is one `"`), others trimmed. `Err` says what is wrong, without the line's text.
pub fn split_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek() == Some(&'"') {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        value.push('"');
                    }
                    Some('"') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(format!(
                            "field {} opens a quote (\") that is not closed: close it, and write \"\" for a quote inside",
                            fields.len() + 1
                        ))
                    }
                }
            }
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            fields.push(value);
            match chars.next() {
                None => return Ok(fields),
                Some(';') => {}
                Some(_) => {
                    return Err(format!(
                        "field {} has text after its closing quote: put the whole field in quotes, with \"\" for a quote inside",
                        fields.len()
                    ))
                }
            }
        } else {
            let mut value = String::new();
            loop {
                match chars.next() {
                    None => {
                        fields.push(value.trim().to_string());
                        return Ok(fields);
                    }
                    Some(';') => break,
                    Some(c) => value.push(c),
                }
            }
            fields.push(value.trim().to_string());
        }
    }
}

/// The lines with data: (line number, text), without a byte order mark or CR.
fn data_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| {
            let start = line.trim_start();
            !start.is_empty() && !start.starts_with('#')
        })
}

/// The format of a list, read off its first line with data (12 fields or 6).
pub fn detect_format(text: &str) -> ListFormat {
    match data_lines(text).next().map(|(_, l)| split_line(l)) {
        Some(Ok(fields)) if fields.len() == 6 || (fields.len() == 7 && fields[6].is_empty()) => {
            ListFormat::Imapsync
        }
        _ => ListFormat::Mailferry,
    }
}

fn request_from(format: ListFormat, fields: &[String]) -> SubmitRequest {
    let some = |s: &String| Some(s.clone());
    match format {
        ListFormat::Mailferry => SubmitRequest {
            source_type: some(&fields[0]),
            source_email: some(&fields[1]),
            source_username: some(&fields[2]),
            source_password: some(&fields[3]),
            source_server: some(&fields[4]),
            target_type: some(&fields[5]),
            target_email: some(&fields[6]),
            target_username: some(&fields[7]),
            target_password: some(&fields[8]),
            target_server: some(&fields[9]),
            startdate: some(&fields[10]),
            resyncdate: some(&fields[11]),
            ..SubmitRequest::default()
        },
        ListFormat::Imapsync => {
            let address = |user: &str, host: &str| {
                let host = host
                    .split("://")
                    .last()
                    .unwrap_or(host)
                    .split(':')
                    .next()
                    .unwrap_or(host);
                match (user.contains('@'), user.is_empty() || host.is_empty()) {
                    (true, _) | (_, true) => user.to_string(),
                    (false, false) => format!("{user}@{host}"),
                }
            };
            SubmitRequest {
                source_type: Some("imap".into()),
                source_email: Some(address(&fields[1], &fields[0])),
                source_username: some(&fields[1]),
                source_password: some(&fields[2]),
                source_server: some(&fields[0]),
                target_type: Some("imap".into()),
                target_email: Some(address(&fields[4], &fields[3])),
                target_username: some(&fields[4]),
                target_password: some(&fields[5]),
                target_server: some(&fields[3]),
                ..SubmitRequest::default()
            }
        }
    }
}

/// Replaces a line's passwords wherever they appear in what is shown of it.
fn scrub(text: &str, passwords: &[&str]) -> String {
    let mut text = text.to_string();
    for password in passwords.iter().filter(|p| !p.is_empty()) {
        if password.chars().count() >= 4 {
            text = text.replace(password, MASK);
        } else {
            text = text.replace(&format!("`{password}`"), &format!("`{MASK}`"));
        }
    }
    text
}

/// Who an account is, for finding duplicates: host, port and login, in lower case; the
/// server as written when it cannot be read (the line has an error there anyway).
fn account_key(kind: &str, server: &str, login: &str) -> Option<String> {
    let login = login.trim().to_lowercase();
    if login.is_empty() {
        return None;
    }
    let kind = if kind.trim().is_empty() {
        "imap"
    } else {
        kind.trim()
    };
    let server = mail_endpoint(kind, server, false)
        .or_else(|_| mail_endpoint("imap", server, false))
        .map(|e| e.addr())
        .unwrap_or_else(|_| server.trim().to_string());
    Some(format!("{}|{login}", server.to_lowercase()))
}

/// The formal check of a whole list: every line, every field; duplicates. `format`
/// `None`: read off the list ([`detect_format`]).
pub fn check_formal(
    text: &str,
    format: Option<ListFormat>,
    config: &ServiceConfig,
    now: i64,
) -> FormalCheck {
    let format = format.unwrap_or_else(|| detect_format(text));
    let names = format.fields();
    let mut lines = Vec::new();
    let mut sources: HashMap<String, usize> = HashMap::new();
    let mut targets: HashMap<String, usize> = HashMap::new();
    for (number, raw) in data_lines(text) {
        let mut checked = CheckedLine {
            line: number,
            fields: Vec::new(),
            errors: Vec::new(),
            duplicate_of: None,
            duplicate_side: None,
            duplicate_of_migration: None,
            validated: None,
        };
        let fields = match split_line(raw) {
            Ok(mut fields) => {
                if format == ListFormat::Imapsync && fields.len() == 7 && fields[6].is_empty() {
                    fields.pop();
                }
                fields
            }
            Err(message) => {
                checked.errors.push(FieldError {
                    field: "line".into(),
                    message,
                });
                lines.push(checked);
                continue;
            }
        };
        if fields.len() != names.len() {
            let what = match format {
                ListFormat::Mailferry => "source.type;source.email;source.username;source.password;source.server;target.type;target.email;target.username;target.password;target.server;startdate;resyncdate",
                ListFormat::Imapsync => "host1;user1;password1;host2;user2;password2",
            };
            checked.errors.push(FieldError {
                field: "line".into(),
                message: format!(
                    "the line has {} fields, {} expected: {what} (quote a field that holds ;)",
                    fields.len(),
                    names.len()
                ),
            });
            lines.push(checked);
            continue;
        }
        let passwords: Vec<&str> = fields
            .iter()
            .enumerate()
            .filter(|(i, _)| format.is_password(*i))
            .map(|(_, p)| p.as_str())
            .collect();
        checked.fields = names
            .iter()
            .zip(&fields)
            .enumerate()
            .map(|(i, (name, value))| ShownField {
                name,
                value: match (format.is_password(i), value.is_empty()) {
                    (true, false) => MASK.to_string(),
                    (true, true) => String::new(),
                    (false, _) => scrub(value, &passwords),
                },
            })
            .collect();
        let request = request_from(format, &fields);
        let keys = [
            (
                "source",
                account_key(
                    request.source_type.as_deref().unwrap_or(""),
                    request.source_server.as_deref().unwrap_or(""),
                    &login(&request.source_username, &request.source_email),
                ),
            ),
            (
                "target",
                account_key(
                    request.target_type.as_deref().unwrap_or(""),
                    request.target_server.as_deref().unwrap_or(""),
                    &login(&request.target_username, &request.target_email),
                ),
            ),
        ];
        match validate(request, config, now) {
            Ok(validated) => checked.validated = Some(validated),
            Err(errors) => {
                let mut seen = Vec::new();
                for error in errors {
                    let field = format.field_name(&error.field);
                    let message = scrub(&error.message, &passwords);
                    if !seen.contains(&(field.clone(), message.clone())) {
                        seen.push((field.clone(), message.clone()));
                        checked.errors.push(FieldError { field, message });
                    }
                }
            }
        }
        for (side, key) in keys {
            let Some(key) = key else { continue };
            let seen = if side == "source" {
                &mut sources
            } else {
                &mut targets
            };
            match seen.get(&key) {
                Some(first) if checked.duplicate_of.is_none() => {
                    checked.duplicate_of = Some(*first);
                    checked.duplicate_side = Some(side);
                }
                Some(_) => {}
                None => {
                    seen.insert(key, number);
                }
            }
        }
        lines.push(checked);
    }
    let faulty_lines = lines.iter().filter(|l| !l.errors.is_empty()).count();
    let duplicate_lines = lines.iter().filter(|l| l.duplicate_of.is_some()).count();
    FormalCheck {
        format,
        clean: !lines.is_empty() && faulty_lines == 0 && duplicate_lines == 0,
        lines,
        faulty_lines,
        duplicate_lines,
    }
}

fn login(username: &Option<String>, email: &Option<String>) -> String {
    username
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .or(email.as_deref())
        .unwrap_or("")
        .to_string()
}

/// The source and target accounts of the migrations still waiting or running, each with
/// the first such migration's id.
#[derive(Debug, Default)]
pub struct ActiveAccounts {
    sources: HashMap<String, String>,
    targets: HashMap<String, String>,
}

impl ActiveAccounts {
    pub async fn load(store: &mailferry_store::Store) -> Result<Self, mailferry_store::StoreError> {
        let mut accounts = ActiveAccounts::default();
        for (id, source, target) in store.active_accounts().await? {
            if let Some(k) = record_key(&source) {
                accounts.sources.entry(k).or_insert_with(|| id.clone());
            }
            if let Some(k) = record_key(&target) {
                accounts.targets.entry(k).or_insert(id);
            }
        }
        Ok(accounts)
    }

    /// The side (`source` or `target`) and the id of an active migration that has the same
    /// account as `validated` on that side.
    pub fn find(&self, validated: &Validated) -> Option<(&'static str, String)> {
        [
            ("source", &validated.source.record, &self.sources),
            ("target", &validated.target.record, &self.targets),
        ]
        .into_iter()
        .find_map(|(side, record, seen)| Some((side, seen.get(&record_key(record)?)?.clone())))
    }
}

/// [`account_key`] of a stored side: the login is the user name, or the address without one.
fn record_key(e: &mailferry_store::EndpointRecord) -> Option<String> {
    let login = if e.username.is_empty() {
        &e.email
    } else {
        &e.username
    };
    account_key(&e.server_type, &e.server, login)
}

/// Why a single migration repeats an active one, in words (the API's 409, the form's box).
pub fn active_duplicate_message(side: &str, id: &str) -> String {
    format!(
        "the {side} account already has a migration that is still waiting or running ({id}); \
         two migrations of one account at once could copy a message twice"
    )
}

/// Marks the lines that repeat the source or target account of a migration still waiting
/// or running (submitted earlier, in another list or alone), and counts them as duplicates.
pub async fn mark_active_duplicates(
    store: &mailferry_store::Store,
    check: &mut FormalCheck,
) -> Result<(), mailferry_store::StoreError> {
    let accounts = ActiveAccounts::load(store).await?;
    for line in check
        .lines
        .iter_mut()
        .filter(|l| l.duplicate_side.is_none())
    {
        let Some(validated) = &line.validated else {
            continue;
        };
        if let Some((side, id)) = accounts.find(validated) {
            line.duplicate_side = Some(side);
            line.duplicate_of_migration = Some(id);
        }
    }
    check.duplicate_lines = check
        .lines
        .iter()
        .filter(|l| l.duplicate_side.is_some())
        .count();
    check.clean = check.clean && check.duplicate_lines == 0;
    Ok(())
}

/// [`check_formal`], then [`mark_active_duplicates`].
pub async fn check_list(
    store: &mailferry_store::Store,
    text: &str,
    format: Option<ListFormat>,
    config: &ServiceConfig,
    now: i64,
) -> Result<FormalCheck, mailferry_store::StoreError> {
    let mut check = check_formal(text, format, config, now);
    mark_active_duplicates(store, &mut check).await?;
    Ok(check)
}

/// A whole check, as JSON: the formal check (duplicates of waiting and running migrations
/// included) and, when it is clean and `logins` is asked for, every line's logins
/// (`logins`: `{checked, failed}`, else null); `clean` covers both.
pub async fn check_report(
    store: &mailferry_store::Store,
    text: &str,
    format: Option<ListFormat>,
    logins: bool,
    config: &ServiceConfig,
    now: i64,
) -> Result<serde_json::Value, mailferry_store::StoreError> {
    let formal = check_list(store, text, format, config, now).await?;
    let mut report = formal.to_json();
    let mut failed_logins = 0;
    report["logins"] = if logins && formal.clean {
        let failed = check_logins(
            &formal.lines,
            config.per_host_connections,
            config.check_timeout,
            config.ca_file.clone(),
        )
        .await;
        failed_logins = failed.len();
        serde_json::json!({ "checked": formal.lines.len(), "failed": failed })
    } else {
        serde_json::Value::Null
    };
    report["clean"] = serde_json::json!(formal.clean && failed_logins == 0);
    Ok(report)
}

/// A line whose logins failed.
#[derive(Debug, Clone, Serialize)]
pub struct LoginFailure {
    pub line: usize,
    /// `source`, `target` or `both`.
    pub side: String,
    pub reasons: Vec<SideFailure>,
}

/// Tries both logins of every clean line, concurrently, at most `per_host` at once against
/// one mail host. Returns the lines whose logins failed, in line order.
pub async fn check_logins(
    lines: &[CheckedLine],
    per_host: usize,
    timeout: Duration,
    ca_file: Option<std::path::PathBuf>,
) -> Vec<LoginFailure> {
    let mut hosts: HashMap<String, Arc<Semaphore>> = HashMap::new();
    let mut tasks = Vec::new();
    for line in lines {
        let Some(validated) = line.validated.clone() else {
            continue;
        };
        for (side, input) in [
            (Side::Source, validated.source.clone()),
            (Side::Target, validated.target.clone()),
        ] {
            let host = hosts
                .entry(input.endpoint.addr().to_lowercase())
                .or_insert_with(|| Arc::new(Semaphore::new(per_host.max(1))))
                .clone();
            let number = line.line;
            let ca_file = ca_file.clone();
            tasks.push(tokio::spawn(async move {
                let _permit = host.acquire_owned().await;
                // Every login of the side, as for a single submission (and the CLI).
                (number, input.check(side, timeout, ca_file.as_deref()).await)
            }));
        }
    }
    let mut failed: Vec<LoginFailure> = Vec::new();
    for task in tasks {
        let (line, outcome) = match task.await {
            Ok(done) => done,
            Err(e) => {
                tracing::error!(error = %e, "a login check task failed");
                continue;
            }
        };
        let Err(failures) = outcome else { continue };
        for failure in failures {
            match failed.iter_mut().find(|f| f.line == line) {
                Some(entry) => {
                    if entry.reasons.iter().any(|r| r.side != failure.side) {
                        entry.side = "both".into();
                    }
                    entry.reasons.push(failure);
                }
                None => failed.push(LoginFailure {
                    line,
                    side: failure.side.to_string(),
                    reasons: vec![failure],
                }),
            }
        }
    }
    failed.sort_by_key(|f| f.line);
    failed
}

/// What became of a submitted list.
#[derive(Debug, Clone, Serialize)]
pub struct ListOutcome {
    pub format: ListFormat,
    /// The lines stored, with their migration ids.
    pub submitted: Vec<SubmittedLine>,
    /// The lines whose logins failed: not stored.
    pub failed: Vec<LoginFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubmittedLine {
    pub line: usize,
    pub id: String,
}

/// Why a list was not submitted.
#[derive(Debug)]
pub enum ListRefused {
    /// The formal check found problems: nothing was tried.
    Formal(FormalCheck),
    /// The allowance cannot cover the lines whose logins worked: none was stored.
    Allowance {
        short: mailferry_store::Short,
        failed: Vec<LoginFailure>,
    },
    Store(mailferry_store::StoreError),
}

/// Checks a list formally, then every line's logins, then stores the lines whose logins
/// worked in one transaction, counted against the allowance.
pub async fn submit_list(
    state: &AppState,
    text: &str,
    format: Option<ListFormat>,
    now: i64,
) -> Result<ListOutcome, ListRefused> {
    let formal = check_list(&state.store, text, format, &state.config, now)
        .await
        .map_err(ListRefused::Store)?;
    if !formal.clean {
        return Err(ListRefused::Formal(formal));
    }
    let failed = check_logins(
        &formal.lines,
        state.config.per_host_connections,
        state.config.check_timeout,
        state.config.ca_file.clone(),
    )
    .await;
    let good: Vec<&CheckedLine> = formal
        .lines
        .iter()
        .filter(|l| !failed.iter().any(|f| f.line == l.line))
        .collect();
    let validated: Vec<&Validated> = good.iter().filter_map(|l| l.validated.as_ref()).collect();
    let ids = if validated.is_empty() {
        Vec::new()
    } else {
        match store_validated(state, &validated, now).await {
            Ok(Ok(ids)) => ids,
            Ok(Err(short)) => return Err(ListRefused::Allowance { short, failed }),
            Err(e) => return Err(ListRefused::Store(e)),
        }
    };
    tracing::info!(
        submitted = ids.len(),
        failed = failed.len(),
        "migration list submitted"
    );
    Ok(ListOutcome {
        format: formal.format,
        submitted: good
            .iter()
            .zip(ids)
            .map(|(line, id)| SubmittedLine {
                line: line.line,
                id,
            })
            .collect(),
        failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_with_quotes() {
        assert_eq!(split_line("a; b ;c").unwrap(), ["a", "b", "c"]);
        assert_eq!(
            split_line(r#"x;"pa;ss""word ";y"#).unwrap(),
            ["x", "pa;ss\"word ", "y"]
        );
        assert_eq!(split_line("a;;").unwrap(), ["a", "", ""]);
        assert_eq!(split_line(r#"a;b"c"#).unwrap(), ["a", "b\"c"]);
        assert!(split_line(r#"a;"open"#).unwrap_err().contains("field 2"));
        assert!(split_line(r#""a"b;c"#).unwrap_err().contains("field 1"));
    }

    #[test]
    fn lines_bom_crlf_comments() {
        let text = "\u{feff}# comment\r\n\r\n  \r\na;b\r\n#x\nc;d";
        let lines: Vec<_> = data_lines(text).collect();
        assert_eq!(lines, vec![(4, "a;b"), (6, "c;d")]);
    }
}
