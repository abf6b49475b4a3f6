//! A submitted migration: its fields checked one by one (each error names its field), then
//! both logins tried in parallel before anything is stored.

use std::time::Duration;

use mailferry_engine::{Account, Side};
use mailferry_imap::{Auth, Endpoint};
use mailferry_store::{EndpointRecord, NewMigration, SealedMigration, Short, StoreError};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::config::ServiceConfig;
use crate::times::parse_time;
use crate::AppState;
use mailferry_engine::account::{mail_endpoint, AccountSpec};

/// The fields of PRODUCT.md's list format, as JSON keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    #[serde(rename = "source.type")]
    pub source_type: Option<String>,
    #[serde(rename = "source.email")]
    pub source_email: Option<String>,
    #[serde(rename = "source.username")]
    pub source_username: Option<String>,
    #[serde(rename = "source.password")]
    pub source_password: Option<String>,
    #[serde(rename = "source.server")]
    pub source_server: Option<String>,
    /// Accept the source server's certificate unverified (lab servers).
    #[serde(rename = "source.insecure")]
    pub source_insecure: Option<bool>,
    /// The source's CalDAV/CardDAV address, over the type's usual one (groupware).
    #[serde(rename = "source.dav")]
    pub source_dav: Option<String>,
    /// The source's ManageSieve server (`host[:port]`), over the mail host's port 4190.
    #[serde(rename = "source.sieve")]
    pub source_sieve: Option<String>,
    #[serde(rename = "target.type")]
    pub target_type: Option<String>,
    #[serde(rename = "target.email")]
    pub target_email: Option<String>,
    #[serde(rename = "target.username")]
    pub target_username: Option<String>,
    #[serde(rename = "target.password")]
    pub target_password: Option<String>,
    #[serde(rename = "target.server")]
    pub target_server: Option<String>,
    #[serde(rename = "target.insecure")]
    pub target_insecure: Option<bool>,
    /// The target's CalDAV/CardDAV address.
    #[serde(rename = "target.dav")]
    pub target_dav: Option<String>,
    /// The target's ManageSieve server.
    #[serde(rename = "target.sieve")]
    pub target_sieve: Option<String>,
    /// `YYYY-MM-DD HH:MM` in the server's time zone, or RFC 3339; empty: now.
    pub startdate: Option<String>,
    /// Optional: when the delta pass runs (after the MX switch).
    pub resyncdate: Option<String>,
    /// Copy the account's filters (Sieve scripts) too, where both sides have ManageSieve.
    /// Default: true.
    pub filters: Option<bool>,
}

/// A field that is wrong, and what is expected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// One side, checked.
#[derive(Debug, Clone)]
pub struct SideInput {
    pub record: EndpointRecord,
    /// The explicit CalDAV/CardDAV address, if one was given.
    pub dav: Option<String>,
    /// The explicit ManageSieve address, if one was given.
    pub sieve: Option<String>,
    pub endpoint: Endpoint,
    pub password: SecretString,
}

impl SideInput {
    pub fn account(&self) -> Account {
        Account {
            endpoint: self.endpoint.clone(),
            auth: Auth::Password {
                user: self.record.username.clone(),
                password: self.password.clone(),
            },
        }
    }
}

/// A submission whose fields are all valid.
#[derive(Debug, Clone)]
pub struct Validated {
    pub source: SideInput,
    pub target: SideInput,
    pub start_at: i64,
    pub resync_at: Option<i64>,
    /// Copy the filters too.
    pub filters: bool,
}

/// Checks every field; returns all errors at once.
pub fn validate(
    request: SubmitRequest,
    config: &ServiceConfig,
    now: i64,
) -> Result<Validated, Vec<FieldError>> {
    let mut errors = Vec::new();
    let filters = request.filters.unwrap_or(true);
    let source = side(
        "source",
        [
            request.source_type,
            request.source_email,
            request.source_username,
            request.source_password,
            request.source_server,
        ],
        request.source_insecure.unwrap_or(false),
        config,
        &mut errors,
    )
    .map(|mut input| {
        input.dav = dav_field("source", request.source_dav, &mut errors);
        input.sieve = sieve_field("source", request.source_sieve, &input, &mut errors);
        input
    });
    let target = side(
        "target",
        [
            request.target_type,
            request.target_email,
            request.target_username,
            request.target_password,
            request.target_server,
        ],
        request.target_insecure.unwrap_or(false),
        config,
        &mut errors,
    )
    .map(|mut input| {
        input.dav = dav_field("target", request.target_dav, &mut errors);
        input.sieve = sieve_field("target", request.target_sieve, &input, &mut errors);
        input
    });

    let start_at = match request
        .startdate
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => Some(now),
        Some(text) => parse_time(text, &config.time_zone)
            .map_err(|message| {
                errors.push(FieldError {
                    field: "startdate".into(),
                    message,
                })
            })
            .ok(),
    };
    let resync_at = match request
        .resyncdate
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => match parse_time(text, &config.time_zone) {
            Ok(at) if start_at.is_some_and(|start| at <= start) => {
                errors.push(FieldError {
                    field: "resyncdate".into(),
                    message: "the resync must come after the start".into(),
                });
                None
            }
            Ok(at) => Some(at),
            Err(message) => {
                errors.push(FieldError {
                    field: "resyncdate".into(),
                    message,
                });
                None
            }
        },
    };
    match (source, target, start_at) {
        (Some(source), Some(target), Some(start_at)) if errors.is_empty() => {
            if source.record.server == target.record.server
                && source.record.username == target.record.username
                && source.endpoint.port == target.endpoint.port
            {
                return Err(vec![FieldError {
                    field: "target.username".into(),
                    message: "the target is the same account as the source".into(),
                }]);
            }
            Ok(Validated {
                source,
                target,
                start_at,
                resync_at,
                filters,
            })
        }
        _ => Err(errors),
    }
}

fn side(
    name: &str,
    fields: [Option<String>; 5],
    insecure: bool,
    config: &ServiceConfig,
    errors: &mut Vec<FieldError>,
) -> Option<SideInput> {
    let [kind, email, username, password, server] = fields;
    let trimmed = |f: Option<String>| f.map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
    let (kind, email, username, server) = (
        trimmed(kind),
        trimmed(email),
        trimmed(username),
        trimmed(server),
    );
    // A password is taken as given: spaces at either end may be part of it.
    let password = password.filter(|p| !p.is_empty());
    let before = errors.len();
    let mut fail = |field: &str, message: String| {
        errors.push(FieldError {
            field: format!("{name}.{field}"),
            message,
        })
    };
    let kind = kind.unwrap_or_default();
    if kind.is_empty() {
        fail(
            "type",
            format!(
                "the server type is missing: {}",
                mailferry_engine::account::usable_names()
            ),
        );
    }
    let email = email.unwrap_or_default();
    if email.is_empty() {
        fail("email", "the e-mail address is missing".into());
    } else if !is_address(&email) {
        fail(
            "email",
            format!("`{email}` is not an e-mail address (name@domain)"),
        );
    }
    let username = username.unwrap_or_else(|| email.clone());
    if password.is_none() {
        fail("password", "the password is missing".into());
    }
    if insecure && !config.allow_insecure {
        fail(
            "insecure",
            "this service does not allow unverified certificates".into(),
        );
    }
    let endpoint = if kind.is_empty() {
        None
    } else {
        match mail_endpoint(&kind, server.as_deref().unwrap_or(""), insecure) {
            Ok(endpoint) => Some(endpoint),
            Err(problem) => {
                fail(problem.field, problem.message);
                // An unknown type hides nothing else: the server is checked as an IMAP one.
                if problem.field == "type" {
                    if let Some(server) = server.as_deref() {
                        if let Err(also) = mail_endpoint("imap", server, insecure) {
                            fail(also.field, also.message);
                        }
                    }
                }
                None
            }
        }
    };
    if errors.len() > before {
        return None;
    }
    let mut endpoint = endpoint?;
    endpoint.tls.ca_file.clone_from(&config.ca_file);
    Some(SideInput {
        dav: None,
        sieve: None,
        record: EndpointRecord {
            server_type: kind,
            email,
            username,
            server: endpoint_url(&endpoint),
            insecure,
        },
        endpoint,
        password: SecretString::from(password?),
    })
}

/// A `source.dav` / `target.dav` field: empty is none, else an http(s) address.
fn dav_field(side: &str, value: Option<String>, errors: &mut Vec<FieldError>) -> Option<String> {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())?;
    match mailferry_dav::DavUrl::parse(&value) {
        Ok(_) => Some(value),
        Err(e) => {
            errors.push(FieldError {
                field: format!("{side}.dav"),
                message: e.to_string(),
            });
            None
        }
    }
}

/// A `source.sieve` / `target.sieve` field: empty is none, else `host[:port]`.
fn sieve_field(
    side: &str,
    value: Option<String>,
    input: &SideInput,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let value = value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())?;
    let kind = mailferry_engine::account::server_type(&input.record.server_type).ok()?;
    match mailferry_engine::account::sieve_account(kind, &input.account(), Some(&value)) {
        Ok(_) => Some(value),
        Err(problem) => {
            errors.push(FieldError {
                field: format!("{side}.sieve"),
                message: problem.message,
            });
            None
        }
    }
}

/// The endpoint as a URL, so that its TLS mode survives storage.
fn endpoint_url(endpoint: &Endpoint) -> String {
    let scheme = match endpoint.security {
        mailferry_imap::Security::Tls => "imaps",
        mailferry_imap::Security::StartTls | mailferry_imap::Security::Plain => "imap",
    };
    format!("{scheme}://{}", endpoint.addr())
}

fn is_address(text: &str) -> bool {
    match text.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// Seals both passwords of each migration and stores them all, or none when the allowance
/// cannot cover them all; returns the new ids in the order given.
pub async fn store_validated(
    state: &AppState,
    validated: &[&Validated],
    now: i64,
) -> Result<Result<Vec<String>, Short>, StoreError> {
    let mut news = Vec::with_capacity(validated.len());
    let mut sealed = Vec::with_capacity(validated.len());
    for v in validated {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let seal = |input: &SideInput, side: &str| {
            state.sealer.seal(
                input.password.expose_secret().as_bytes(),
                &format!("{id}/{side}"),
            )
        };
        sealed.push([
            ("source", seal(&v.source, "source")),
            ("target", seal(&v.target, "target")),
        ]);
        news.push(NewMigration {
            id,
            source: v.source.record.clone(),
            target: v.target.record.clone(),
            start_at: v.start_at,
            resync_at: v.resync_at,
            created_at: now,
            filters: v.filters,
            // In the same transaction: a worker never sees the migration without them.
            // Explicit ManageSieve addresses ride along as `source.sieve`/`target.sieve`.
            dav: [("source", &v.source), ("target", &v.target)]
                .into_iter()
                .flat_map(|(side, input)| {
                    [
                        input.dav.clone().map(|url| (side.to_string(), url)),
                        input
                            .sieve
                            .clone()
                            .map(|url| (format!("{side}.sieve"), url)),
                    ]
                })
                .flatten()
                .collect(),
        });
    }
    let batch: Vec<SealedMigration> = news
        .iter()
        .zip(&sealed)
        .map(|(new, sealed)| (new, &sealed[..]))
        .collect();
    let stored = state
        .store
        .insert_migrations(&batch, crate::licence::FREE_MIGRATIONS)
        .await?;
    Ok(stored.map(|()| news.into_iter().map(|n| n.id).collect()))
}

/// Why a credential check failed: which side, in words, with a hint.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckFailure {
    /// `source`, `target` or `both`.
    pub side: String,
    pub reasons: Vec<SideFailure>,
}

/// One login that failed: the engine's, the same for single submissions, lists and the CLI.
pub type SideFailure = mailferry_engine::account::LoginFailure;

impl SideInput {
    /// The side as the worker will read it back from the store (the same [`AccountSpec`]).
    pub fn spec(&self, ca_file: Option<&std::path::Path>) -> AccountSpec {
        AccountSpec {
            server_type: self.record.server_type.clone(),
            server: self.record.server.clone(),
            username: self.record.username.clone(),
            password: self.password.clone(),
            insecure: self.record.insecure,
            ca_file: ca_file.map(std::path::Path::to_path_buf),
            dav: self.dav.clone(),
            sieve: self.sieve.clone(),
        }
    }

    /// The side's CalDAV/CardDAV endpoint when an address was given for it (`source.dav`),
    /// built as the worker builds it; `Err` in words when it cannot be. (A type's usual
    /// address is tried only when the pass runs: refusing it here would refuse mail-only
    /// migrations of servers whose DAV is elsewhere.)
    pub fn dav_endpoint(
        &self,
        ca_file: Option<&std::path::Path>,
        timeout: Duration,
    ) -> Option<Result<mailferry_dav::DavEndpoint, String>> {
        self.dav.as_ref()?;
        match self.spec(ca_file).endpoints(timeout) {
            Ok(endpoints) => endpoints.groupware.map_err(|p| p.message).transpose(),
            Err(problem) => Some(Err(problem.message)),
        }
    }

    /// Tries every login of this side at once (IMAP, and DAV where an address was given),
    /// within `timeout` each.
    pub async fn check(
        &self,
        side: Side,
        timeout: Duration,
        ca_file: Option<&std::path::Path>,
    ) -> Result<(), Vec<SideFailure>> {
        let dav = match self.dav_endpoint(ca_file, timeout).transpose() {
            Ok(dav) => dav,
            Err(reason) => {
                return Err(vec![SideFailure {
                    side,
                    reason: format!("calendars and contacts (CalDAV/CardDAV): {reason}"),
                    hint: None,
                }])
            }
        };
        mailferry_engine::account::check_account(
            side,
            &self.account(),
            dav.as_ref(),
            timeout,
            mailferry_engine::account::Surface::Service,
        )
        .await
    }
}

/// Tries both sides' logins at once, each within `timeout`: IMAP, and CalDAV/CardDAV on a
/// side given an explicit address (`source.dav`, `target.dav`), with the CA certificates of
/// `ca_file` trusted there as for the mail servers. A side fails when either of its logins
/// does; every reason is kept.
pub async fn check_credentials(
    validated: &Validated,
    timeout: Duration,
    ca_file: Option<&std::path::Path>,
) -> Result<(), CheckFailure> {
    let (source, target) = tokio::join!(
        validated.source.check(Side::Source, timeout, ca_file),
        validated.target.check(Side::Target, timeout, ca_file),
    );
    let reasons: Vec<SideFailure> = [source.err(), target.err()]
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    let Some(first) = reasons.first() else {
        return Ok(());
    };
    let side = if reasons.iter().all(|r| r.side == first.side) {
        first.side.to_string()
    } else {
        "both".into()
    };
    Err(CheckFailure { side, reasons })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> SubmitRequest {
        SubmitRequest {
            source_type: Some("imap".into()),
            source_email: Some("alice@old.example".into()),
            source_password: Some("pw1".into()),
            source_server: Some("old.example:993".into()),
            target_type: Some("imap".into()),
            target_email: Some("alice@new.example".into()),
            target_password: Some("pw2".into()),
            target_server: Some("new.example".into()),
            ..SubmitRequest::default()
        }
    }

    #[test]
    fn every_field_error_is_named() {
        let config = ServiceConfig::new("/tmp".into());
        assert!(validate(good(), &config, 1000).is_ok());
        let bad = SubmitRequest {
            source_type: Some("imapx".into()),
            source_email: Some("alice".into()),
            source_password: None,
            target_server: Some("".into()),
            startdate: Some("tomorrow".into()),
            ..good()
        };
        let errors = validate(bad, &config, 1000).unwrap_err();
        let mut fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        fields.sort_unstable();
        assert_eq!(
            fields,
            vec![
                "source.email",
                "source.password",
                "source.type",
                "startdate",
                "target.server"
            ]
        );
        let early = SubmitRequest {
            startdate: Some("2030-01-02T00:00:00Z".into()),
            resyncdate: Some("2030-01-01T00:00:00Z".into()),
            ..good()
        };
        assert_eq!(
            validate(early, &config, 1000).unwrap_err()[0].field,
            "resyncdate"
        );
    }
}
