//! Which calendars and contacts go with a run: none, the groupware alone (`--from` and `--to`
//! are `http(s)://` DAV addresses), or mail and groupware (a typed account, or `--from-dav`
//! and `--to-dav`); and the text report of a groupware pass.

use std::time::Duration;

use anyhow::{bail, Context};
use mailferry_dav::{DavEndpoint, DavUrl, ServerKind};
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

/// One side's DAV settings.
struct DavSide<'a> {
    name: &'static str,
    server_type: &'a str,
    explicit: Option<&'a str>,
    insecure: bool,
    ca_file: Option<&'a std::path::PathBuf>,
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
        let source = self.dav_endpoint(&source_side, &self.from, None)?;
        let target = self.dav_endpoint(&target_side, &self.to, None)?;
        Ok(GroupwareJob {
            id: id.to_string(),
            source,
            target,
            dry_run,
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
        let addresses = [
            dav_address(&source_side, &source.endpoint.host)?,
            dav_address(&target_side, &target.endpoint.host)?,
        ];
        match addresses {
            [None, None] => Ok(None),
            [Some(from), Some(to)] => Ok(Some(GroupwareJob {
                id: id.to_string(),
                source: self.dav_endpoint(&source_side, &from, Some(&source.auth))?,
                target: self.dav_endpoint(&target_side, &to, Some(&target.auth))?,
                dry_run,
            })),
            [from, _] => {
                let (has, lacks, flag) = if from.is_some() {
                    (&source_side, &target_side, "--to-dav")
                } else {
                    (&target_side, &source_side, "--from-dav")
                };
                bail!(
                    "the {} ({}) has calendars and contacts but the {} ({}) names no CalDAV/CardDAV server: give its address with {flag} URL, or leave groupware out with --no-groupware",
                    has.name,
                    has.server_type,
                    lacks.name,
                    lacks.server_type
                )
            }
        }
    }

    fn dav_endpoint(
        &self,
        side: &DavSide<'_>,
        address: &str,
        auth: Option<&Auth>,
    ) -> anyhow::Result<DavEndpoint> {
        let parsed = DavUrl::parse(address)
            .with_context(|| format!("the {} CalDAV/CardDAV address is not usable", side.name))?;
        let server = ServerKind::parse(side.server_type).unwrap_or_default();
        let (user, password) = match auth {
            // With mail: the account's own login, unless the DAV address names another user.
            Some(Auth::Password { user, password }) => {
                (parsed.user.clone().unwrap_or_else(|| user.clone()), password.clone())
            }
            Some(Auth::AsUser {
                admin,
                password,
                authorize_as,
            }) if server == ServerKind::Kolab => {
                // iRony's kolab_auth_proxy: `admin**user` (SERVERTYPES.md §2).
                (format!("{admin}**{authorize_as}"), password.clone())
            }
            Some(_) => bail!(
                "the {} logs in to IMAP with an admin or a token; its calendars and contacts need the account's own password: log in as the user, or use --no-groupware",
                side.name
            ),
            None => {
                let Some(user) = parsed.user.clone() else {
                    bail!(
                        "the {} address `{address}` names no user: write it as https://USER@HOST/PATH",
                        side.name
                    );
                };
                let (env, file) = match side.name {
                    "source" => ("MAILFERRY_FROM_PASSWORD", self.from_password_file.as_deref()),
                    _ => ("MAILFERRY_TO_PASSWORD", self.to_password_file.as_deref()),
                };
                let password: SecretString = credentials::secret(
                    env,
                    file,
                    &format!("Password for {user} ({}): ", side.name),
                    &format!("{} password", side.name),
                )?;
                (user, password)
            }
        };
        Ok(DavEndpoint {
            url: parsed.url,
            user,
            password,
            insecure: side.insecure,
            ca_file: side.ca_file.cloned(),
            timeout: Duration::from_secs(self.timeout),
            server,
        })
    }
}

/// The DAV address of a side with mail: explicit, else its type's usual one on its host.
fn dav_address(side: &DavSide<'_>, host: &str) -> anyhow::Result<Option<String>> {
    if let Some(explicit) = side.explicit {
        return Ok(Some(explicit.to_string()));
    }
    match side.server_type {
        "imap" | "gmail" | "pop3" | "maildir" | "mbox" => Ok(None),
        "exchange" | "office365" => bail!(
            "the {} is {}: its calendars and contacts are reached through EWS or Microsoft Graph, which this version does not speak; add --no-groupware to move the mail alone",
            side.name,
            side.server_type
        ),
        other => match ServerKind::parse(other) {
            Some(kind) => Ok(kind.default_url(host)),
            None => bail!(
                "--{}-type `{other}` is not a server type: use imap, zimbra, kolab, openxchange, nextcloud, sogo, radicale, baikal, exchange, office365 or gmail",
                if side.name == "source" { "from" } else { "to" }
            ),
        },
    }
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
