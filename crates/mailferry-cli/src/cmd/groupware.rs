//! Which calendars and contacts go with a run: none, the groupware alone (`--from` and `--to`
//! are `http(s)://` DAV addresses), or mail and groupware (a typed account, or `--from-dav`
//! and `--to-dav`); and the text report of a groupware pass.

use std::time::Duration;

use anyhow::{bail, Context};
use mailferry_dav::{DavEndpoint, DavUrl, ServerKind};
use mailferry_engine::account::server_type::NotDav;
use mailferry_engine::account::{DavProblem, ServerType, TypeError};
use mailferry_engine::groupware::{GroupwareJob, GroupwareReport, GroupwareVerifyReport};
use mailferry_engine::Account;
use mailferry_imap::Auth;
use secrecy::SecretString;

use super::sides::SidesArgs;
use crate::credentials;

/// Whether `--from`/`--to` are DAV addresses (groupware alone).
pub fn is_dav_address(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// One side's DAV settings, as flags or a job file give them.
pub struct DavSide<'a> {
    /// `source` or `target`.
    pub name: &'static str,
    pub server_type: &'a str,
    /// `--from-dav`, or a job file's `dav`/`source_dav`.
    pub explicit: Option<&'a str>,
    pub insecure: bool,
    pub ca_file: Option<&'a std::path::PathBuf>,
}

/// Why a server type gives no account, or no DAV address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeProblem {
    /// Not a server type, or not one this version can migrate (the one table's words).
    Type(TypeError),
    /// Exchange or Microsoft 365: calendars and contacts over EWS or Graph.
    NotDav,
}

/// The server type called `server_type`, from the engine's one table (as the API and lists).
pub fn check_server_type(server_type: &str) -> Result<&'static ServerType, TypeProblem> {
    mailferry_engine::account::server_type(server_type).map_err(TypeProblem::Type)
}

impl DavSide<'_> {
    /// The DAV address of this side with mail on `host`: explicit, else its type's usual one.
    pub fn address(&self, host: &str) -> Result<Option<String>, TypeProblem> {
        check_server_type(self.server_type)?
            .dav_address(host, self.explicit)
            .map_err(|NotDav| TypeProblem::NotDav)
    }

    /// The DAV account of an account that logs in to IMAP with `auth`: the same user and
    /// password, unless `address` names another user. `leave_out` says how to do without
    /// groupware (`--no-groupware`, or the job file's key).
    pub fn endpoint_with_mail(
        &self,
        address: &str,
        auth: &Auth,
        timeout: Duration,
        leave_out: &str,
    ) -> anyhow::Result<DavEndpoint> {
        let kind = check_server_type(self.server_type).map_err(|problem| {
            anyhow::anyhow!(problem.describe(self.name, self.server_type, "type", leave_out))
        })?;
        // The same function as the service's submit check and worker.
        match mailferry_engine::account::dav_endpoint(
            kind,
            address,
            auth,
            self.insecure,
            self.ca_file.cloned(),
            timeout,
        ) {
            Ok(endpoint) => Ok(endpoint),
            Err(DavProblem::Address(error)) => Err(anyhow::Error::new(error)
                .context(format!("the {} CalDAV/CardDAV address is not usable", self.name))),
            Err(DavProblem::NeedsOwnPassword) => bail!(
                "the {} logs in to IMAP with an admin or a token; its calendars and contacts need the account's own password: log in as the user, or {leave_out}",
                self.name
            ),
        }
    }

    fn endpoint(
        &self,
        parsed: DavUrl,
        user: String,
        password: SecretString,
        timeout: Duration,
        server: ServerKind,
    ) -> DavEndpoint {
        DavEndpoint {
            url: parsed.url,
            user,
            password,
            insecure: self.insecure,
            ca_file: self.ca_file.cloned(),
            timeout,
            server,
        }
    }
}

impl TypeProblem {
    /// In words, for the side's type given as `key` (`--from-type`, `type in [source]`).
    pub fn describe(&self, side: &str, server_type: &str, key: &str, leave_out: &str) -> String {
        match self {
            TypeProblem::Type(error) => format!("{key}: {error}"),
            TypeProblem::NotDav => format!(
                "{key} `{server_type}`: the {side}'s calendars and contacts are reached through EWS or Microsoft Graph, which this version does not speak; give its CalDAV/CardDAV address if it has one, or {leave_out} to move the mail alone"
            ),
        }
    }
}

impl SidesArgs {
    fn dav_sides(&self) -> [DavSide<'_>; 2] {
        [
            DavSide {
                name: "source",
                server_type: &self.from_type,
                explicit: self.from_dav.as_deref(),
                insecure: self.insecure || self.from_insecure,
                ca_file: self.from_ca_file.as_ref(),
            },
            DavSide {
                name: "target",
                server_type: &self.to_type,
                explicit: self.to_dav.as_deref(),
                insecure: self.insecure || self.to_insecure,
                ca_file: self.to_ca_file.as_ref(),
            },
        ]
    }

    /// `--from`/`--to` as DAV addresses: the groupware-only job (passwords read as for IMAP).
    pub fn groupware_only(&self, id: &str, dry_run: bool) -> anyhow::Result<GroupwareJob> {
        if !is_dav_address(&self.from) || !is_dav_address(&self.to) {
            bail!(
                "--from `{}` and --to `{}` must both be http(s):// CalDAV/CardDAV addresses to migrate calendars and contacts alone; for mail use imap:// or imaps:// on both",
                self.from,
                self.to
            );
        }
        let [source_side, target_side] = self.dav_sides();
        let source = self.dav_endpoint(&source_side, &self.from)?;
        let target = self.dav_endpoint(&target_side, &self.to)?;
        Ok(GroupwareJob {
            id: id.to_string(),
            source,
            target,
            dry_run,
            sync_deletes: false,
        })
    }

    /// The groupware job that goes with a mail run of `source` and `target`, if any: both
    /// sides need a DAV address (their type's, or --from-dav/--to-dav), else it is an error
    /// to have one, unless --no-groupware.
    pub fn groupware_with_mail(
        &self,
        id: &str,
        dry_run: bool,
        source: &Account,
        target: &Account,
    ) -> anyhow::Result<Option<GroupwareJob>> {
        if self.no_groupware {
            return Ok(None);
        }
        let [source_side, target_side] = self.dav_sides();
        let leave_out = "add --no-groupware";
        let address = |side: &DavSide<'_>, host: &str, flag: &str| {
            side.address(host).map_err(|problem| {
                anyhow::anyhow!(problem.describe(side.name, side.server_type, flag, leave_out))
            })
        };
        let addresses = [
            address(&source_side, &source.endpoint.host, "--from-type")?,
            address(&target_side, &target.endpoint.host, "--to-type")?,
        ];
        let timeout = Duration::from_secs(self.timeout);
        match addresses {
            [None, None] => Ok(None),
            [Some(from), Some(to)] => Ok(Some(GroupwareJob {
                id: id.to_string(),
                source: source_side.endpoint_with_mail(&from, &source.auth, timeout, leave_out)?,
                target: target_side.endpoint_with_mail(&to, &target.auth, timeout, leave_out)?,
                dry_run,
                sync_deletes: false,
            })),
            [from, _] => {
                let flag = if from.is_some() {
                    "--to-dav"
                } else {
                    "--from-dav"
                };
                bail!(
                    "{}: give its address with {flag} URL, or leave groupware out with --no-groupware",
                    one_sided(&source_side, &target_side, from.is_some())
                )
            }
        }
    }

    /// A DAV address given as `--from`/`--to` (groupware alone): its user, and the password
    /// from the side's variable, file or a prompt.
    fn dav_endpoint(&self, side: &DavSide<'_>, address: &str) -> anyhow::Result<DavEndpoint> {
        let parsed = DavUrl::parse(address)
            .with_context(|| format!("the {} CalDAV/CardDAV address is not usable", side.name))?;
        let server = check_server_type(side.server_type)
            .map(ServerType::dav_kind)
            .unwrap_or_default();
        let Some(user) = parsed.user.clone() else {
            bail!(
                "the {} address `{address}` names no user: write it as https://USER@HOST/PATH",
                side.name
            );
        };
        let (env, file) = match side.name {
            "source" => (
                "MAILFERRY_FROM_PASSWORD",
                self.from_password_file.as_deref(),
            ),
            _ => ("MAILFERRY_TO_PASSWORD", self.to_password_file.as_deref()),
        };
        let password: SecretString = credentials::secret(
            env,
            file,
            &format!("Password for {user} ({}): ", side.name),
            &format!("{} password", side.name),
        )?;
        Ok(side.endpoint(
            parsed,
            user,
            password,
            Duration::from_secs(self.timeout),
            server,
        ))
    }
}

/// `the source (kolab) has calendars and contacts but the target (imap) names no
/// CalDAV/CardDAV server`; `source_has` says which side has them.
pub fn one_sided(source: &DavSide<'_>, target: &DavSide<'_>, source_has: bool) -> String {
    let (has, lacks) = if source_has {
        (source, target)
    } else {
        (target, source)
    };
    format!(
        "the {} ({}) has calendars and contacts but the {} ({}) names no CalDAV/CardDAV server",
        has.name, has.server_type, lacks.name, lacks.server_type
    )
}

/// The groupware part of a report, as text.
pub fn print_groupware(report: &GroupwareReport) {
    let verb = if report.dry_run { "plan" } else { "groupware" };
    println!("{verb}: {} -> {}", report.source, report.target);
    let rows: Vec<(String, &mailferry_engine::groupware::CollectionReport)> = report
        .collections
        .iter()
        .map(|c| {
            let noun = if c.kind == "addressbook" {
                "address book"
            } else {
                "calendar"
            };
            let target = c.target.as_deref().unwrap_or("(none)");
            (format!("{noun} {} -> {target}", c.name), c)
        })
        .collect();
    let width = rows
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(10)
        .max(10);
    println!(
        "{:<width$}  {:>6}  {:>7}  {:>7}  {:>7}  {:>6}",
        "COLLECTION -> TARGET", "COPIED", "UPDATED", "PRESENT", "DELETED", "FAILED"
    );
    for (name, c) in &rows {
        let pad = width.saturating_sub(name.chars().count());
        println!(
            "{name}{}  {:>6}  {:>7}  {:>7}  {:>7}  {:>6}",
            " ".repeat(pad),
            c.copied,
            c.updated,
            c.already_present,
            c.deleted_on_target,
            c.failed.len()
        );
        for note in &c.notes {
            println!("    note: {note}");
        }
        for problem in &c.failed {
            let uid = problem
                .uid
                .as_deref()
                .map(|u| format!(" (UID {u})"))
                .unwrap_or_default();
            println!("    failed {}{uid}: {}", problem.href, problem.reason);
        }
        if let Some(error) = &c.error {
            println!("    error: {error}");
        }
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    let c = &report.counts;
    println!(
        "transferred of total: calendars {}/{}, address books {}/{}, events {}/{}, tasks {}/{}, journals {}/{}, contacts {}/{}",
        c.calendars.transferred,
        c.calendars.total,
        c.address_books.transferred,
        c.address_books.total,
        c.events.transferred,
        c.events.total,
        c.tasks.transferred,
        c.tasks.total,
        c.journals.transferred,
        c.journals.total,
        c.contacts.transferred,
        c.contacts.total
    );
}

/// The groupware part of a verify, as text.
pub fn print_groupware_verify(report: &GroupwareVerifyReport) {
    println!(
        "verify groupware: {} against {}",
        report.source, report.target
    );
    for c in &report.collections {
        let status = match c.differences() {
            0 => "same".to_string(),
            n => format!("{n} differences"),
        };
        println!(
            "{} {} -> {}: {} / {} objects, {status}",
            if c.kind == "addressbook" {
                "address book"
            } else {
                "calendar"
            },
            c.name,
            c.target.as_deref().unwrap_or("(none)"),
            c.source_objects,
            c.target_objects
        );
        if !c.missing.is_empty() {
            println!("    missing on the target: UIDs {:?}", c.missing);
        }
        for d in &c.different {
            println!(
                "    differs: UID {}: source `{}`, target `{}`",
                d.uid, d.source_line, d.target_line
            );
        }
        for (side, href, reason) in &c.unreadable {
            println!("    unreadable on the {side}: {href}: {reason}");
        }
        for note in &c.property_notes {
            println!("    note: {note}");
        }
        if c.only_on_target > 0 {
            println!(
                "    {} objects only on the target (not an error)",
                c.only_on_target
            );
        }
        if let Some(e) = &c.error {
            println!("    error: {e}");
        }
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
}
