//! The OpenAPI document of the API (served at `/api/openapi.json`, browsable with Swagger UI
//! at `/api/docs`). The schemas here describe the JSON the handlers read and write; a unit
//! test keeps [`SubmitRequestDoc`] in step with [`crate::submit::SubmitRequest`], and the
//! integration test `tests/it/openapi.rs` sends requests built from this document.

#![allow(dead_code)] // The doc structs are only read by the derive macros.

use serde::Deserialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mailferry",
        description = "The REST API of `mailferry serve`: submit, watch and manage mail migrations. \
            Log in with HTTP Basic as `admin` and the admin password, or with a bearer token from \
            `mailferry token create`. Every error is one JSON shape (`Error`). Request bodies are \
            limited to 1 MiB (lists: 4 MiB)."
    ),
    paths(
        super::healthz,
        super::live::metrics,
        super::info,
        super::migrations::submit,
        super::migrations::list,
        super::migrations::one,
        super::migrations::cancel,
        super::migrations::retry,
        super::migrations::purge,
        super::live::events,
        super::batch::check,
        super::batch::submit,
        super::batch::template,
        super::licences::list,
        super::licences::add,
    ),
    components(schemas(
        SubmitRequestDoc,
        MigrationDoc,
        ProgressDoc,
        MigrationListDoc,
        ErrorDoc,
        FieldErrorDoc,
        CheckFailureDoc,
        SideFailureDoc,
        InfoDoc,
        ServerTypeDoc,
        AllowanceDoc,
        ListCheckDoc,
        ListOutcomeDoc,
        ListLineDoc,
        ShownFieldDoc,
        LoginFailureDoc,
        SubmittedLineDoc,
        LicencesDoc,
        LicenceKeyDoc,
        AddKeyDoc,
    )),
    modifiers(&SecuritySchemes),
    security(("admin" = []), ("bearer" = [])),
    tags(
        (name = "migrations", description = "Submit, list, inspect, cancel, retry and purge migrations"),
        (name = "lists", description = "Mass migration lists: check, submit, template"),
        (name = "licences", description = "The migration allowance and licence keys"),
        (name = "service", description = "Service information, health, metrics and live events"),
    )
)]
pub struct ApiDoc;

/// The document as served.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut basic = Http::new(HttpAuthScheme::Basic);
        basic.description = Some("user `admin` with the admin password".into());
        components.add_security_scheme("admin", SecurityScheme::Http(basic));
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.description = Some("a token from `mailferry token create`".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    }
}

/// A migration to submit: the fields of the list format, as JSON keys with dots. A missing
/// or wrong value is reported by name in `fields` of a 422 (all of them at once). Unknown
/// keys are refused with a 400 that names them.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(
    as = SubmitRequest,
    example = json!({
        "source.type": "imap", "source.email": "alice@old.example", "source.username": "alice",
        "source.password": "secret-1", "source.server": "imap.old.example",
        "target.type": "imap", "target.email": "alice@new.example", "target.password": "secret-2",
        "target.server": "imap.new.example", "startdate": "2026-12-04 22:00",
        "resyncdate": "2026-12-07 08:00"
    })
)]
pub struct SubmitRequestDoc {
    /// Server type: imap, zimbra, exchange, office365, gmail, kolab or openxchange.
    #[serde(rename = "source.type")]
    source_type: String,
    #[serde(rename = "source.email")]
    #[schema(format = Email)]
    source_email: String,
    /// The login name; default: the e-mail address.
    #[serde(rename = "source.username")]
    source_username: Option<String>,
    #[serde(rename = "source.password")]
    #[schema(format = Password)]
    source_password: String,
    /// `host` (TLS on 993), `host:port` (STARTTLS on 143, TLS otherwise) or an `imap://` /
    /// `imaps://` URL; may be left out for gmail and office365.
    #[serde(rename = "source.server")]
    source_server: Option<String>,
    /// Accept the source server's certificate unverified (lab servers).
    #[serde(rename = "source.insecure")]
    source_insecure: Option<bool>,
    /// The source's CalDAV/CardDAV address (`https://[USER@]HOST/PATH`), for calendars,
    /// tasks and contacts; over the type's usual one (zimbra, kolab, openxchange). With it a
    /// plain `imap` account's groupware is taken too; then `target.dav` is needed as well.
    #[serde(rename = "source.dav")]
    source_dav: Option<String>,
    /// The source's ManageSieve server (`HOST[:PORT]`, port 4190 by default), for its
    /// filters (Sieve scripts); over the mail host's port 4190, which is tried by default for
    /// every type that keeps filters on ManageSieve.
    #[serde(rename = "source.sieve")]
    source_sieve: Option<String>,
    /// Server type, as for the source.
    #[serde(rename = "target.type")]
    target_type: String,
    #[serde(rename = "target.email")]
    #[schema(format = Email)]
    target_email: String,
    #[serde(rename = "target.username")]
    target_username: Option<String>,
    #[serde(rename = "target.password")]
    #[schema(format = Password)]
    target_password: String,
    #[serde(rename = "target.server")]
    target_server: Option<String>,
    #[serde(rename = "target.insecure")]
    target_insecure: Option<bool>,
    /// The target's CalDAV/CardDAV address, as for the source.
    #[serde(rename = "target.dav")]
    target_dav: Option<String>,
    /// The target's ManageSieve server, as for the source.
    #[serde(rename = "target.sieve")]
    target_sieve: Option<String>,
    /// When the first pass starts: `YYYY-MM-DD HH:MM` in the service's time zone, or RFC
    /// 3339; empty or missing: now.
    startdate: Option<String>,
    /// When the delta pass runs (after the MX switch); optional, after `startdate`.
    resyncdate: Option<String>,
    /// Copy the account's filters (Sieve scripts) too, where both sides have ManageSieve.
    /// Default: true.
    filters: Option<bool>,
}

/// A migration as the API shows it: never a password. Times are shown in the service's
/// time zone. After a purge, the personal fields are null and `purged` is true.
#[derive(ToSchema)]
#[schema(as = Migration)]
pub struct MigrationDoc {
    id: String,
    /// waiting, transferring, waiting_resync, resyncing, done, failed or cancelled.
    state: String,
    #[schema(rename = "source.type")]
    source_type: Option<String>,
    #[schema(rename = "source.email")]
    source_email: Option<String>,
    #[schema(rename = "source.username")]
    source_username: Option<String>,
    /// The endpoint as a URL (`imap://` or `imaps://`).
    #[schema(rename = "source.server")]
    source_server: Option<String>,
    #[schema(rename = "target.type")]
    target_type: Option<String>,
    #[schema(rename = "target.email")]
    target_email: Option<String>,
    #[schema(rename = "target.username")]
    target_username: Option<String>,
    #[schema(rename = "target.server")]
    target_server: Option<String>,
    startdate: String,
    resyncdate: Option<String>,
    created: String,
    started: Option<String>,
    finished: Option<String>,
    /// Why it failed, in the server's words.
    error: Option<String>,
    purged: bool,
    /// Whether its passes copy the account's filters (submitted `filters`, default true).
    copy_filters: bool,
    attempts: i64,
    progress: ProgressDoc,
    /// Calendars, address books, events, tasks, journals and contacts, each as
    /// `{total, transferred}`, once a groupware pass has run (else null).
    #[schema(value_type = Option<Object>)]
    groupware: Option<serde_json::Value>,
    /// Filter scripts (Sieve) of the last pass, `{total, copied, present, refused, failed}`,
    /// when it looked at them (else null).
    #[schema(value_type = Option<Object>)]
    filters: Option<serde_json::Value>,
    /// Only on `GET /api/v1/migrations/{id}` (and the actions): the run's report, or null.
    #[schema(value_type = Option<Object>)]
    report: Option<serde_json::Value>,
}

#[derive(ToSchema)]
#[schema(as = Progress)]
pub struct ProgressDoc {
    messages_total: u64,
    messages_transferred: u64,
    messages_remaining: u64,
    messages_copied: u64,
    messages_failed: u64,
    bytes_total: u64,
    bytes_transferred: u64,
    /// Estimated seconds to go, while active.
    eta_seconds: Option<u64>,
    /// Whether the counts come from a pass running in this process now.
    live: bool,
}

#[derive(ToSchema)]
#[schema(as = MigrationList)]
pub struct MigrationListDoc {
    migrations: Vec<MigrationDoc>,
}

/// Every error of the API.
#[derive(ToSchema)]
#[schema(
    as = Error,
    example = json!({"error": "migration not found", "side": null, "field": null, "hint": null, "request_id": "3f2a9c0d1b7e"})
)]
pub struct ErrorDoc {
    /// What went wrong, in words.
    error: String,
    /// `source`, `target` or `both` when a login failed.
    side: Option<String>,
    /// The first field that is wrong.
    field: Option<String>,
    /// What to do about it.
    hint: Option<String>,
    /// Every field that is wrong (422 on submit).
    #[schema(nullable = false)]
    fields: Option<Vec<FieldErrorDoc>>,
    /// The failed credential check (422 on submit).
    #[schema(nullable = false)]
    check: Option<CheckFailureDoc>,
    /// What is left of the allowance (402).
    #[schema(nullable = false)]
    remaining: Option<u64>,
    /// A refused list's check (422 on `POST /api/v1/lists`) or its failed logins (402).
    #[schema(nullable = false, value_type = Option<Object>)]
    report: Option<serde_json::Value>,
    /// Names this request in the service log.
    request_id: String,
}

#[derive(ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorDoc {
    field: String,
    message: String,
}

#[derive(ToSchema)]
#[schema(as = CheckFailure)]
pub struct CheckFailureDoc {
    /// `source`, `target` or `both`.
    side: String,
    reasons: Vec<SideFailureDoc>,
}

#[derive(ToSchema)]
#[schema(as = SideFailure)]
pub struct SideFailureDoc {
    /// `Source` or `Target`.
    side: String,
    reason: String,
    hint: Option<String>,
}

#[derive(ToSchema)]
#[schema(as = Info)]
pub struct InfoDoc {
    version: String,
    /// The zone times are read and shown in.
    time_zone: String,
    now: String,
    server_types: Vec<ServerTypeDoc>,
    allowance: AllowanceDoc,
}

#[derive(ToSchema)]
#[schema(as = ServerType)]
pub struct ServerTypeDoc {
    name: String,
    migrates: String,
}

/// Remaining of total: `total` is `free` plus what the licence keys add.
#[derive(ToSchema)]
#[schema(as = Allowance)]
pub struct AllowanceDoc {
    free: u64,
    licensed: u64,
    total: u64,
    used: u64,
    remaining: u64,
}

/// A list's check. `clean`: no field error, no duplicate and (when tried) no failed login.
#[derive(ToSchema)]
#[schema(as = ListCheck)]
pub struct ListCheckDoc {
    /// `mailferry` (12 fields) or `imapsync` (6 fields).
    format: String,
    clean: bool,
    faulty_lines: u64,
    duplicate_lines: u64,
    /// Every problem in words: `line 7, source.email = `alice`: ...`.
    problems: Vec<String>,
    lines: Vec<ListLineDoc>,
    /// The login check (null when not tried: `credentials=false`, or the formal check failed).
    #[schema(value_type = Option<Object>)]
    logins: Option<serde_json::Value>,
}

/// One line with data.
#[derive(ToSchema)]
#[schema(as = ListLine)]
pub struct ListLineDoc {
    /// Its number in the file (comments and blank lines counted).
    line: u64,
    /// Its fields, passwords masked; empty when the line could not be split.
    fields: Vec<ShownFieldDoc>,
    /// Per field; `line` for the line as a whole.
    errors: Vec<FieldErrorDoc>,
    /// The earlier line whose account this one repeats.
    duplicate_of: Option<u64>,
    /// `source` or `target`.
    duplicate_side: Option<String>,
    /// The migration, still waiting or running, whose account this line repeats (submitted
    /// earlier, in another list or alone).
    duplicate_of_migration: Option<String>,
}

#[derive(ToSchema)]
#[schema(as = ShownField)]
pub struct ShownFieldDoc {
    name: String,
    value: String,
}

/// A line whose login failed.
#[derive(ToSchema)]
#[schema(as = LoginFailure)]
pub struct LoginFailureDoc {
    line: u64,
    /// `source`, `target` or `both`.
    side: String,
    reasons: Vec<SideFailureDoc>,
}

#[derive(ToSchema)]
#[schema(as = SubmittedLine)]
pub struct SubmittedLineDoc {
    line: u64,
    id: String,
}

/// A submitted list.
#[derive(ToSchema)]
#[schema(as = ListOutcome)]
pub struct ListOutcomeDoc {
    format: String,
    submitted: Vec<SubmittedLineDoc>,
    /// Lines not stored because a login failed.
    failed: Vec<LoginFailureDoc>,
    allowance: AllowanceDoc,
}

#[derive(ToSchema)]
#[schema(as = Licences)]
pub struct LicencesDoc {
    allowance: AllowanceDoc,
    keys: Vec<LicenceKeyDoc>,
}

#[derive(ToSchema)]
#[schema(as = LicenceKey)]
pub struct LicenceKeyDoc {
    id: String,
    migrations: u64,
    issued_to: String,
    issued_at: String,
    added_at: String,
}

/// A licence key to add, as issued (`mfl1.` ...).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[schema(as = AddKey, example = json!({"key": "mfl1.eyJpZCI6ImV4YW1wbGUifQ.c2lnbmF0dXJl"}))]
pub struct AddKeyDoc {
    key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented submit fields are exactly the ones the handler accepts: serde names
    /// the accepted fields when it refuses an unknown one.
    #[test]
    fn submit_request_doc_matches_the_accepted_fields() {
        let doc = serde_json::to_value(document()).unwrap();
        let mut documented: Vec<String> = doc["components"]["schemas"]["SubmitRequest"]
            ["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        documented.sort();
        assert_eq!(
            doc["components"]["schemas"]["SubmitRequest"]["additionalProperties"],
            serde_json::json!(false)
        );
        let refusal = serde_json::from_str::<crate::submit::SubmitRequest>(r#"{"-": 1}"#)
            .unwrap_err()
            .to_string();
        let expected = refusal.split("expected one of ").nth(1).unwrap();
        let mut accepted: Vec<String> = expected
            .split(", ")
            .map(|f| {
                f.split('`')
                    .nth(1)
                    .unwrap_or_else(|| panic!("{refusal}"))
                    .to_string()
            })
            .collect();
        accepted.sort();
        assert_eq!(documented, accepted);
    }
}
