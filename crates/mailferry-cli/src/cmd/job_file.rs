//! The TOML job file of `mailferry migrate --job FILE.toml`: many accounts, one source server
//! and one target server, the same options for all.
//!
//! ```toml
//! [source]                            # defaults for every account's source side
//! url = "imaps://old.example.com"     # no user here; or imap://host:143 (STARTTLS)
//! insecure = false                    # accept an unverified certificate (lab servers)
//! ca_file = "/path/ca.pem"            # optional: trust these CA certificates
//! auth_as_admin = "master"            # optional: log in as this admin/master user on behalf
//!                                     # of each account; the password is the admin's:
//! admin_password_file = "secrets/master"   # or admin_password_env (or, per account,
//!                                          # source_password_file/_env)
//! type = "kolab"                      # optional, as --from-type: a type with groupware
//!                                     # brings calendars and contacts along (default imap)
//! dav = "https://dav.old.example.com/"     # optional, as --from-dav: the CalDAV/CardDAV
//!                                          # server; no user here, each account logs in as
//!                                          # itself with its own password
//! sieve = "sieve.old.example.com:4190"     # optional, as --from-sieve: the ManageSieve
//!                                          # server (default: the mail host's port 4190)
//!
//! [target]                            # the same keys as [source]
//! url = "imaps://new.example.com"
//!
//! [options]                           # all optional, same meaning as the flags of `migrate`
//! connections = 4
//! include = ["^INBOX"]
//! exclude = ["^Trash"]
//! map = { "Sent Items" = "Sent" }
//! max_size = "25M"                    # or a number of bytes
//! since = "2020-01-01"                # or a TOML date: since = 2020-01-01
//! before = "2026-01-01"
//! sync_deletes = false
//! subscriptions = true
//! max_bandwidth = "10M"               # bytes per second read from the source, per account
//! compress = false                    # true: COMPRESS=DEFLATE where offered, as --compress
//! no_groupware = false                # true: mail only, as --no-groupware
//! no_filters = false                  # true: no Sieve scripts, as --no-filters
//!
//! [[account]]
//! source_user = "alice@old.example.com"
//! source_password_file = "secrets/alice-old"     # or source_password_env = "ALICE_OLD_PW"
//! target_user = "alice@new.example.com"
//! target_password_file = "secrets/alice-new"     # or target_password_env
//! # optional: source_url, target_url (this account on other servers than [source]/[target]);
//! # source_type, target_type, source_dav, target_dav (a user allowed here), no_groupware,
//! # no_filters
//! ```
//!
//! Rules: unknown keys are errors; relative paths are taken from the job file's directory; a
//! password file holds the password on its first line. `source_password = "..."` (and
//! `target_password`, `admin_password`) are accepted with a warning: a password is better kept
//! in a file or an environment variable than in the job file. Command-line flags of
//! `migrate` override `[options]`.
//!
//! Groupware goes with an account as with `--from-type`/`--to-type` and `--from-dav`/
//! `--to-dav`: both sides need a DAV address (given, or the type's usual one on the account's
//! mail host), one side alone is an error, `no_groupware` leaves it out.
//!
//! Everything is checked before any account starts (password files read, environment
//! variables looked up, addresses parsed, patterns compiled); every problem is listed, each
//! with its line and the account and key it belongs to.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Display;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context;
use mailferry_dav::DavUrl;
use mailferry_engine::account::sieve_account;
use mailferry_engine::filters::FiltersJob;
use mailferry_engine::groupware::GroupwareJob;
use mailferry_engine::{Account, CopyOptions};
use mailferry_imap::{Auth, Endpoint, ImapUrl, TlsOptions};
use regex::Regex;
use secrecy::SecretString;
use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use super::groupware::{check_server_type, one_sided, DavSide};
use super::migrate::{parse_day, parse_size};
use crate::credentials;

/// A checked job file: accounts with their credentials read, options compiled.
#[derive(Debug)]
pub struct JobFile {
    pub accounts: Vec<JobAccount>,
    /// Defaults, then `[options]`.
    pub options: CopyOptions,
    /// Things that work but had better be changed (passwords in the file).
    pub warnings: Vec<String>,
}

/// One `[[account]]`.
#[derive(Debug)]
pub struct JobAccount {
    /// 1-based position in the file.
    pub index: usize,
    pub source: Account,
    pub target: Account,
    /// Its calendars and contacts, after the mail (`dry_run` is set when it runs).
    pub groupware: Option<GroupwareJob>,
    /// Its filters, after the groupware.
    pub filters: Option<FiltersJob>,
}

/// What the command line adds to every account's sides.
#[derive(Debug, Clone, Copy, Default)]
pub struct SideFlags {
    pub source_insecure: bool,
    pub target_insecure: bool,
    pub allow_plaintext: bool,
    /// `--no-groupware`: mail only, whatever the file says.
    pub no_groupware: bool,
    /// `--no-filters`: no Sieve scripts, whatever the file says.
    pub no_filters: bool,
    /// `--timeout`, also per DAV request.
    pub timeout_seconds: u64,
}

/// Reads and checks the job file at `path`; environment variables come from the process.
pub fn load(path: &Path, flags: SideFlags) -> anyhow::Result<JobFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the job file `{}`", path.display()))?;
    let base = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    parse(&text, &path.display().to_string(), base, flags, &|name| {
        std::env::var(name).ok()
    })
    .map_err(|problems| {
        let count = problems.len();
        anyhow::anyhow!(
            "the job file `{}` has {count} problem{}; no account was started:\n{}",
            path.display(),
            if count == 1 { "" } else { "s" },
            problems
                .iter()
                .map(|p| format!("  {p}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    })
}

/// `[source]` and `[target]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SideSection {
    url: Option<Spanned<String>>,
    insecure: Option<bool>,
    ca_file: Option<Spanned<PathBuf>>,
    auth_as_admin: Option<Spanned<String>>,
    admin_password: Option<Spanned<String>>,
    admin_password_file: Option<Spanned<PathBuf>>,
    admin_password_env: Option<Spanned<String>>,
    /// As `--from-type`/`--to-type`.
    #[serde(rename = "type")]
    server_type: Option<Spanned<String>>,
    /// As `--from-dav`/`--to-dav`, without a user.
    dav: Option<Spanned<String>>,
    /// As `--from-sieve`/`--to-sieve`: the ManageSieve server (`host[:port]`).
    sieve: Option<Spanned<String>>,
}

/// `[options]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OptionsSection {
    connections: Option<Spanned<usize>>,
    include: Option<Vec<Spanned<String>>>,
    exclude: Option<Vec<Spanned<String>>>,
    map: Option<BTreeMap<String, Spanned<String>>>,
    max_size: Option<Spanned<toml::Value>>,
    since: Option<Spanned<toml::Value>>,
    before: Option<Spanned<toml::Value>>,
    sync_deletes: Option<bool>,
    subscriptions: Option<bool>,
    max_bandwidth: Option<Spanned<toml::Value>>,
    compress: Option<bool>,
    no_groupware: Option<bool>,
    no_filters: Option<bool>,
}

/// One `[[account]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    source_user: Option<Spanned<String>>,
    source_password: Option<Spanned<String>>,
    source_password_file: Option<Spanned<PathBuf>>,
    source_password_env: Option<Spanned<String>>,
    source_url: Option<Spanned<String>>,
    target_user: Option<Spanned<String>>,
    target_password: Option<Spanned<String>>,
    target_password_file: Option<Spanned<PathBuf>>,
    target_password_env: Option<Spanned<String>>,
    target_url: Option<Spanned<String>>,
    source_type: Option<Spanned<String>>,
    source_dav: Option<Spanned<String>>,
    target_type: Option<Spanned<String>>,
    target_dav: Option<Spanned<String>>,
    no_groupware: Option<bool>,
    no_filters: Option<bool>,
}

/// The problems found so far, each rendered as `FILE:LINE:COLUMN: PLACE: MESSAGE` and
/// listed in the order of their lines.
struct Problems<'a> {
    text: &'a str,
    file: &'a str,
    list: Vec<((usize, usize), String)>,
}

impl Problems<'_> {
    fn line_column(&self, span: &Range<usize>) -> (usize, usize) {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        (line, column)
    }

    fn location(&self, span: Option<&Range<usize>>) -> String {
        match span {
            Some(span) => {
                let (line, column) = self.line_column(span);
                format!("{}:{line}:{column}", self.file)
            }
            None => self.file.to_string(),
        }
    }

    fn add(&mut self, span: Option<&Range<usize>>, place: &str, message: impl Display) {
        let location = self.location(span);
        let key = span.map_or((0, 0), |s| self.line_column(s));
        self.list
            .push((key, format!("{location}: {place}: {message}")));
    }

    fn into_sorted(mut self) -> Vec<String> {
        self.list.sort_by_key(|(key, _)| *key);
        self.list.into_iter().map(|(_, text)| text).collect()
    }
}

/// The fields serde knows for `T` (those `deny_unknown_fields` accepts).
fn field_names<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    struct Capture<'a>(&'a mut &'static [&'static str]);
    impl<'de> serde::Deserializer<'de> for Capture<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("captured"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Capture(&mut fields));
    fields
}

/// Deserialises one table into `T`: unknown keys are reported (all of them, with their
/// lines) and left out, so the known ones are still checked.
fn section<'i, T: Deserialize<'i> + Default>(
    value: &Spanned<DeValue<'i>>,
    place: &str,
    hint: &str,
    problems: &mut Problems<'_>,
) -> Option<T> {
    let DeValue::Table(table) = value.get_ref() else {
        problems.add(
            Some(&value.span()),
            place,
            format_args!("must be a table ({hint})"),
        );
        return None;
    };
    let known = field_names::<T>();
    for (key, _) in table.iter() {
        if !known.contains(&key.get_ref().as_ref()) {
            problems.add(
                Some(&key.span()),
                place,
                format_args!(
                    "unknown key `{}` (known keys: {})",
                    key.get_ref(),
                    known.join(", ")
                ),
            );
        }
    }
    let clean: DeTable<'i> = table
        .iter()
        .filter(|(key, _)| known.contains(&key.get_ref().as_ref()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let spanned = Spanned::new(value.span(), DeValue::Table(clean));
    match T::deserialize(ValueDeserializer::from(spanned)) {
        Ok(parsed) => Some(parsed),
        Err(error) => {
            problems.add(error.span().as_ref(), place, error.message());
            None
        }
    }
}

/// Parses and checks a job file's text. `file` names it in messages, `base` is where relative
/// paths start, `env` looks up environment variables. Returns every problem on failure.
pub fn parse(
    text: &str,
    file: &str,
    base: &Path,
    flags: SideFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<JobFile, Vec<String>> {
    let mut problems = Problems {
        text,
        file,
        list: Vec::new(),
    };
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(error) => {
            problems.add(error.span().as_ref(), "TOML", error.message());
            return Err(problems.into_sorted());
        }
    };
    let mut warnings = Vec::new();

    let mut source = Some(SideSection::default());
    let mut target = Some(SideSection::default());
    let mut options = Some(OptionsSection::default());
    let mut entries: Vec<(Range<usize>, Option<AccountEntry>)> = Vec::new();
    let mut saw_account = false;
    for (key, value) in root.get_ref().iter() {
        match key.get_ref().as_ref() {
            "source" => source = section(value, "[source]", "[source] url = ...", &mut problems),
            "target" => target = section(value, "[target]", "[target] url = ...", &mut problems),
            "options" => options = section(value, "[options]", "[options] ...", &mut problems),
            "account" => {
                saw_account = true;
                let DeValue::Array(array) = value.get_ref() else {
                    problems.add(
                        Some(&key.span()),
                        "account",
                        "write each account as an [[account]] table (two brackets)",
                    );
                    continue;
                };
                for (i, item) in array.iter().enumerate() {
                    let user = item
                        .get_ref()
                        .get("source_user")
                        .and_then(|u| u.get_ref().as_str());
                    let place = match user {
                        Some(user) => format!("account {} ({user})", i + 1),
                        None => format!("account {}", i + 1),
                    };
                    entries.push((
                        item.span(),
                        section(item, &place, "[[account]]", &mut problems),
                    ));
                }
            }
            other => problems.add(
                Some(&key.span()),
                "top level",
                format_args!(
                    "unknown key `{other}` (known: [source], [target], [options], [[account]])"
                ),
            ),
        }
    }
    if !saw_account {
        problems.add(
            None,
            "top level",
            "no [[account]]: list each account to migrate as an [[account]] table",
        );
    }

    let no_groupware = options
        .as_ref()
        .and_then(|o| o.no_groupware)
        .unwrap_or(false);
    let no_filters = options.as_ref().and_then(|o| o.no_filters).unwrap_or(false);
    let options = options.map(|o| copy_options(&o, &mut problems));
    let source = source
        .as_ref()
        .map(|s| check_side(s, "source", base, env, &mut problems, &mut warnings));
    let target = target
        .as_ref()
        .map(|s| check_side(s, "target", base, env, &mut problems, &mut warnings));

    let mut accounts = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut default_mismatch_reported = false;
    for (i, (span, entry)) in entries.iter().enumerate() {
        let index = i + 1;
        let Some(entry) = entry else { continue };
        let place = match &entry.source_user {
            Some(user) => format!("account {index} ({})", user.get_ref()),
            None => format!("account {index}"),
        };
        let errors_before = problems.list.len();
        let ctx = AccountCtx {
            place: &place,
            span,
            base,
            env,
        };
        let source_account = source.as_ref().and_then(|section| {
            ctx.side(
                section,
                SideEntry {
                    side: "source",
                    user: &entry.source_user,
                    password: &entry.source_password,
                    password_file: &entry.source_password_file,
                    password_env: &entry.source_password_env,
                    url: &entry.source_url,
                    insecure: flags.source_insecure,
                    allow_plaintext: flags.allow_plaintext,
                },
                &mut problems,
                &mut warnings,
            )
        });
        let target_account = target.as_ref().and_then(|section| {
            ctx.side(
                section,
                SideEntry {
                    side: "target",
                    user: &entry.target_user,
                    password: &entry.target_password,
                    password_file: &entry.target_password_file,
                    password_env: &entry.target_password_env,
                    url: &entry.target_url,
                    insecure: flags.target_insecure,
                    allow_plaintext: flags.allow_plaintext,
                },
                &mut problems,
                &mut warnings,
            )
        });
        if problems.list.len() != errors_before {
            continue;
        }
        let (Some(source_defaults), Some(target_defaults)) = (&source, &target) else {
            continue;
        };
        let (Some(source), Some(target)) = (source_account, target_account) else {
            continue;
        };
        let groupware = ctx.groupware(
            [source_defaults, target_defaults],
            entry,
            [&source, &target],
            GroupwareFlags {
                off: flags.no_groupware || entry.no_groupware.unwrap_or(no_groupware),
                timeout: std::time::Duration::from_secs(flags.timeout_seconds),
            },
            &mut default_mismatch_reported,
            &mut problems,
        );
        let Some(groupware) = groupware else {
            continue;
        };
        let filters = if flags.no_filters || entry.no_filters.unwrap_or(no_filters) {
            None
        } else {
            let side_type = |own: &Option<Spanned<String>>, defaults: &SideDefaults<'_>| {
                own.as_ref()
                    .map(|t| t.get_ref().clone())
                    .or_else(|| defaults.server_type.clone().flatten())
                    .unwrap_or_else(|| "imap".into())
            };
            let mut sieve =
                |name: &str, kind: String, defaults: &SideDefaults<'_>, account: &Account| {
                    let kind = mailferry_engine::account::server_type(&kind).ok()?;
                    let address = defaults.section.sieve.as_ref();
                    match sieve_account(kind, account, address.map(|a| a.get_ref().as_str())) {
                        Ok(found) => found,
                        Err(problem) => {
                            problems.add(
                                address.map(|a| a.span()).as_ref(),
                                &place,
                                format_args!("sieve in [{name}]: {}", problem.message),
                            );
                            None
                        }
                    }
                };
            let from = sieve(
                "source",
                side_type(&entry.source_type, source_defaults),
                source_defaults,
                &source,
            );
            let to = sieve(
                "target",
                side_type(&entry.target_type, target_defaults),
                target_defaults,
                &target,
            );
            match (from, to) {
                (Some(from), Some(to)) => Some(FiltersJob::new(
                    "cli",
                    from,
                    to,
                    std::time::Duration::from_secs(flags.timeout_seconds),
                )),
                _ => None,
            }
        };
        let pair = (source.describe(), target.describe());
        if let Some(first) = seen.get(&pair) {
            problems.add(
                Some(span),
                &place,
                format_args!(
                    "the same source and target as account {first} ({} -> {}): list each pair once",
                    pair.0, pair.1
                ),
            );
            continue;
        }
        seen.insert(pair, index);
        accounts.push(JobAccount {
            index,
            source,
            target,
            groupware,
            filters,
        });
    }

    match options {
        Some(options) if problems.list.is_empty() => Ok(JobFile {
            accounts,
            options,
            warnings,
        }),
        _ => Err(problems.into_sorted()),
    }
}

/// A side section, checked once: its CA file found, the admin's password read.
struct SideDefaults<'a> {
    section: &'a SideSection,
    /// The section's `url`: `Some(None)` when it is given but unusable (reported once).
    url: Option<Option<ImapUrl>>,
    ca_file: Option<PathBuf>,
    /// `Some` when `auth_as_admin` and exactly one admin password are given and usable.
    admin_password: Option<SecretString>,
    /// `type`: `Some(None)` when it is given but unknown (reported once).
    server_type: Option<Option<String>>,
    /// `dav`: `Some(None)` when it is given but unusable (reported once).
    dav: Option<Option<String>>,
}

/// Checks `[source]` or `[target]` itself; what depends on the account is checked per account.
fn check_side<'a>(
    section: &'a SideSection,
    side: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    problems: &mut Problems<'_>,
    warnings: &mut Vec<String>,
) -> SideDefaults<'a> {
    let place = format!("[{side}]");
    let url = section
        .url
        .as_ref()
        .map(|url| check_url(url, "url", side, &place, problems));
    let ca_file = section.ca_file.as_ref().and_then(|file| {
        let path = base.join(file.get_ref());
        if path.is_file() {
            Some(path)
        } else {
            problems.add(
                Some(&file.span()),
                &place,
                format_args!("ca_file `{}` is not a readable file", path.display()),
            );
            None
        }
    });
    let given: Vec<(&str, Range<usize>)> = [
        section
            .admin_password
            .as_ref()
            .map(|p| ("admin_password", p.span())),
        section
            .admin_password_file
            .as_ref()
            .map(|p| ("admin_password_file", p.span())),
        section
            .admin_password_env
            .as_ref()
            .map(|p| ("admin_password_env", p.span())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let names: Vec<&str> = given.iter().map(|(n, _)| *n).collect();
    if let Some(password) = &section.admin_password {
        warnings.push(format!(
            "{}: {place}: admin_password is written in the job file; it is better kept in a \
             file (admin_password_file) or an environment variable (admin_password_env)",
            problems.location(Some(&password.span()))
        ));
    }
    let mut admin_password = None;
    if section.auth_as_admin.is_none() && !given.is_empty() {
        problems.add(
            Some(&given[0].1),
            &place,
            format_args!(
                "{} is set but auth_as_admin is not: name the admin user with auth_as_admin, \
                 or give the password per account",
                names.join(", ")
            ),
        );
    } else if given.len() > 1 {
        problems.add(
            Some(&given[1].1),
            &place,
            format_args!("{}: give only one", names.join(" and ")),
        );
    } else if let Some(p) = &section.admin_password {
        admin_password = Some(SecretString::from(p.get_ref().clone()));
    } else if let Some(file) = &section.admin_password_file {
        admin_password = read_file(base, file, "admin_password_file", &place, problems);
    } else if let Some(name) = &section.admin_password_env {
        admin_password = read_env(env, name, "admin_password_env", &place, problems);
    }
    let server_type = section
        .server_type
        .as_ref()
        .map(|t| check_type(t, "type", side, &place, problems));
    let dav = section
        .dav
        .as_ref()
        .map(|d| check_dav(d, "dav", side, false, &place, problems));
    SideDefaults {
        section,
        url,
        ca_file,
        admin_password,
        server_type,
        dav,
    }
}

/// How a job file leaves groupware out, for messages.
const LEAVE_OUT: &str = "set no_groupware = true (in [options], or for this account)";

/// A known server type (`type`, `source_type`, `target_type`).
fn check_type(
    value: &Spanned<String>,
    key: &str,
    side: &str,
    place: &str,
    problems: &mut Problems<'_>,
) -> Option<String> {
    match check_server_type(value.get_ref()) {
        Ok(kind) => Some(kind.name.to_string()),
        Err(problem) => {
            problems.add(
                Some(&value.span()),
                place,
                problem.describe(side, value.get_ref(), key, LEAVE_OUT),
            );
            None
        }
    }
}

/// A usable CalDAV/CardDAV address (`dav`, `source_dav`, `target_dav`); `user_allowed` for an
/// account's own (its DAV login may differ from its mail login), not for a side's default.
fn check_dav(
    value: &Spanned<String>,
    key: &str,
    side: &str,
    user_allowed: bool,
    place: &str,
    problems: &mut Problems<'_>,
) -> Option<String> {
    match DavUrl::parse(value.get_ref()) {
        // The error shows the address with any password in it masked.
        Err(error) => {
            problems.add(Some(&value.span()), place, format_args!("{key}: {error}"));
            None
        }
        Ok(parsed) if parsed.user.is_some() && !user_allowed => {
            problems.add(
                Some(&value.span()),
                place,
                format_args!(
                    "{key} `{}` names a user: write only http(s)://HOST[:PORT]/PATH; each account \
                     logs in as its {side}_user (or give {side}_dav = \"https://USER@HOST/PATH\" \
                     for one account)",
                    value.get_ref()
                ),
            );
            None
        }
        Ok(_) => Some(value.get_ref().trim().to_string()),
    }
}

/// What decides an account's groupware besides the file's keys.
struct GroupwareFlags {
    /// `no_groupware`: the account's, else `[options]`', or `--no-groupware`.
    off: bool,
    timeout: std::time::Duration,
}

/// One side's groupware settings for one account, and where they came from.
struct SideGroupware {
    name: &'static str,
    server_type: String,
    explicit: Option<String>,
    /// The key of the type, for messages, and its span.
    type_key: String,
    type_span: Option<Range<usize>>,
    /// The span of the key that gives this side a DAV address, when it is a default.
    default_span: Option<Range<usize>>,
    /// Set by the account's own keys (`source_type`, `source_dav`).
    own: bool,
}

fn read_file(
    base: &Path,
    file: &Spanned<PathBuf>,
    key: &str,
    place: &str,
    problems: &mut Problems<'_>,
) -> Option<SecretString> {
    let path = base.join(file.get_ref());
    match credentials::secret("", Some(&path), "", "password") {
        Ok(secret) => Some(secret),
        Err(error) => {
            problems.add(Some(&file.span()), place, format_args!("{key}: {error:#}"));
            None
        }
    }
}

fn read_env(
    env: &dyn Fn(&str) -> Option<String>,
    name: &Spanned<String>,
    key: &str,
    place: &str,
    problems: &mut Problems<'_>,
) -> Option<SecretString> {
    match env(name.get_ref()) {
        Some(value) if !value.is_empty() => Some(SecretString::from(value)),
        _ => {
            problems.add(
                Some(&name.span()),
                place,
                format_args!(
                    "{key}: the environment variable `{}` is not set or empty",
                    name.get_ref()
                ),
            );
            None
        }
    }
}

/// An address without a user: `imaps://host[:port]`.
fn check_url(
    url: &Spanned<String>,
    key: &str,
    side: &str,
    place: &str,
    problems: &mut Problems<'_>,
) -> Option<ImapUrl> {
    match ImapUrl::parse(url.get_ref()) {
        Err(error) => {
            problems.add(Some(&url.span()), place, format_args!("{key}: {error}"));
            None
        }
        Ok(parsed) if parsed.user.is_some() => {
            problems.add(
                Some(&url.span()),
                place,
                format_args!(
                    "{key} `{}` names a user: write only imap(s)://HOST[:PORT] and put the \
                     user in {side}_user",
                    url.get_ref()
                ),
            );
            None
        }
        Ok(parsed) => Some(parsed),
    }
}

/// One account's keys for one side.
struct SideEntry<'a> {
    side: &'static str,
    user: &'a Option<Spanned<String>>,
    password: &'a Option<Spanned<String>>,
    password_file: &'a Option<Spanned<PathBuf>>,
    password_env: &'a Option<Spanned<String>>,
    url: &'a Option<Spanned<String>>,
    insecure: bool,
    allow_plaintext: bool,
}

struct AccountCtx<'a> {
    place: &'a str,
    span: &'a Range<usize>,
    base: &'a Path,
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl AccountCtx<'_> {
    /// The account's calendars and contacts: `Some(None)` for none, `None` when there is a
    /// problem (reported). A mismatch that comes from `[source]`/`[target]` alone is the same
    /// for every account without keys of its own: it is reported once (`reported`).
    fn groupware(
        &self,
        defaults: [&SideDefaults<'_>; 2],
        entry: &AccountEntry,
        accounts: [&Account; 2],
        flags: GroupwareFlags,
        reported: &mut bool,
        problems: &mut Problems<'_>,
    ) -> Option<Option<GroupwareJob>> {
        let before = problems.list.len();
        let keys = [
            ("source", &entry.source_type, &entry.source_dav),
            ("target", &entry.target_type, &entry.target_dav),
        ];
        let mut sides = Vec::new();
        let mut unusable_default = false;
        for ((name, own_type, own_dav), defaults) in keys.into_iter().zip(defaults) {
            let section = defaults.section;
            let (server_type, type_key, type_span) = match own_type {
                Some(value) => (
                    check_type(value, &format!("{name}_type"), name, self.place, problems),
                    format!("{name}_type"),
                    Some(value.span()),
                ),
                None => match &defaults.server_type {
                    Some(known) => {
                        unusable_default |= known.is_none();
                        (
                            known.clone(),
                            format!("type in [{name}]"),
                            section.server_type.as_ref().map(|t| t.span()),
                        )
                    }
                    None => (Some("imap".to_string()), format!("type in [{name}]"), None),
                },
            };
            let explicit = match own_dav {
                Some(value) => check_dav(
                    value,
                    &format!("{name}_dav"),
                    name,
                    true,
                    self.place,
                    problems,
                ),
                None => {
                    unusable_default |= matches!(defaults.dav, Some(None));
                    defaults.dav.clone().flatten()
                }
            };
            let default_span = match (own_dav, &section.dav) {
                (None, Some(dav)) => Some(dav.span()),
                (None, None) => type_span.clone().filter(|_| own_type.is_none()),
                _ => None,
            };
            sides.push(SideGroupware {
                name,
                server_type: server_type.unwrap_or_default(),
                explicit,
                type_key,
                type_span,
                default_span,
                own: own_type.is_some() || own_dav.is_some(),
            });
        }
        if problems.list.len() != before || unusable_default {
            return None;
        }
        if flags.off {
            return Some(None);
        }
        let dav_sides: Vec<DavSide<'_>> = sides
            .iter()
            .zip(accounts)
            .map(|(side, account)| DavSide {
                name: side.name,
                server_type: &side.server_type,
                explicit: side.explicit.as_deref(),
                insecure: account.endpoint.tls.insecure,
                ca_file: account.endpoint.tls.ca_file.as_ref(),
            })
            .collect();
        let mut addresses = Vec::new();
        for ((dav, side), account) in dav_sides.iter().zip(&sides).zip(accounts) {
            match dav.address(&account.endpoint.host) {
                Ok(address) => addresses.push(address),
                Err(problem) => {
                    problems.add(
                        side.type_span.as_ref().or(Some(self.span)),
                        self.place,
                        problem.describe(side.name, &side.server_type, &side.type_key, LEAVE_OUT),
                    );
                    return None;
                }
            }
        }
        match (&addresses[0], &addresses[1]) {
            (None, None) => Some(None),
            (Some(from), Some(to)) => {
                let mut endpoints = Vec::new();
                for ((dav, address), account) in dav_sides.iter().zip([from, to]).zip(accounts) {
                    match dav.endpoint_with_mail(address, &account.auth, flags.timeout, LEAVE_OUT) {
                        Ok(endpoint) => endpoints.push(endpoint),
                        Err(error) => {
                            problems.add(Some(self.span), self.place, format_args!("{error:#}"));
                            return None;
                        }
                    }
                }
                let target = endpoints.pop()?;
                let source = endpoints.pop()?;
                Some(Some(GroupwareJob {
                    id: "cli".into(),
                    source,
                    target,
                    dry_run: false,
                    sync_deletes: false,
                }))
            }
            (from, _) => {
                let (has, lacks) = if from.is_some() {
                    (&sides[0], &sides[1])
                } else {
                    (&sides[1], &sides[0])
                };
                let what = one_sided(&dav_sides[0], &dav_sides[1], from.is_some());
                let lacks_name = lacks.name;
                if sides.iter().any(|s| s.own) {
                    problems.add(
                        Some(self.span),
                        self.place,
                        format_args!(
                            "{what}: set dav in [{lacks_name}] or {lacks_name}_dav for this account, or {LEAVE_OUT}"
                        ),
                    );
                } else if !*reported {
                    *reported = true;
                    problems.add(
                        has.default_span.as_ref(),
                        &format!("[{}]", has.name),
                        format_args!(
                            "{what} (for every account without source_dav/target_dav of its own): set dav in [{lacks_name}] (or {lacks_name}_dav per account), or no_groupware = true in [options]"
                        ),
                    );
                }
                None
            }
        }
    }

    /// Builds one side of one account, reporting every problem; `None` if there was one.
    fn side(
        &self,
        defaults: &SideDefaults<'_>,
        entry: SideEntry<'_>,
        problems: &mut Problems<'_>,
        warnings: &mut Vec<String>,
    ) -> Option<Account> {
        let section = defaults.section;
        let side = entry.side;
        let place = self.place;
        let before = problems.list.len();

        // The server.
        let parsed = match (entry.url, &defaults.url) {
            (Some(url), _) => check_url(url, &format!("{side}_url"), side, place, problems),
            (None, Some(parsed)) => parsed.clone(),
            (None, None) => {
                problems.add(
                    Some(self.span),
                    place,
                    format_args!("no {side} server: set url in [{side}] or {side}_url here"),
                );
                None
            }
        };

        // Who logs in.
        let user = match entry.user {
            Some(user) if !user.get_ref().trim().is_empty() => Some(user.get_ref().clone()),
            Some(user) => {
                problems.add(
                    Some(&user.span()),
                    place,
                    format_args!("{side}_user is empty"),
                );
                None
            }
            None => {
                problems.add(
                    Some(self.span),
                    place,
                    format_args!("{side}_user is missing: every account needs one"),
                );
                None
            }
        };
        let own: Vec<(String, Range<usize>)> = [
            entry
                .password
                .as_ref()
                .map(|p| (format!("{side}_password"), p.span())),
            entry
                .password_file
                .as_ref()
                .map(|p| (format!("{side}_password_file"), p.span())),
            entry
                .password_env
                .as_ref()
                .map(|p| (format!("{side}_password_env"), p.span())),
        ]
        .into_iter()
        .flatten()
        .collect();
        if own.len() > 1 {
            let names: Vec<&str> = own.iter().map(|(n, _)| n.as_str()).collect();
            problems.add(
                Some(&own[1].1),
                place,
                format_args!("{}: give only one", names.join(" and ")),
            );
        }
        if let Some(password) = entry.password {
            warnings.push(format!(
                "{}: {place}: {side}_password is written in the job file; it is better kept in \
                 a file ({side}_password_file) or an environment variable ({side}_password_env)",
                problems.location(Some(&password.span()))
            ));
        }
        let admin = section.auth_as_admin.as_ref();
        let password = if let Some(p) = entry.password {
            Some(SecretString::from(p.get_ref().clone()))
        } else if let Some(file) = entry.password_file {
            let key = format!("{side}_password_file");
            read_file(self.base, file, &key, place, problems)
        } else if let Some(name) = entry.password_env {
            let key = format!("{side}_password_env");
            read_env(self.env, name, &key, place, problems)
        } else if admin.is_some()
            && (section.admin_password.is_some()
                || section.admin_password_file.is_some()
                || section.admin_password_env.is_some())
        {
            // Reported once at [source]/[target] when unusable.
            defaults.admin_password.clone()
        } else {
            problems.add(
                Some(self.span),
                place,
                format_args!(
                    "no {side} password: set {side}_password_file or {side}_password_env{}",
                    if admin.is_some() {
                        format!(" (the admin's), or admin_password_file in [{side}]")
                    } else {
                        String::new()
                    }
                ),
            );
            None
        };

        if problems.list.len() != before {
            return None;
        }
        let (parsed, user, password) = (parsed?, user?, password?);
        let auth = match admin {
            Some(admin) => Auth::AsUser {
                admin: admin.get_ref().clone(),
                password,
                authorize_as: user,
            },
            None => Auth::Password { user, password },
        };
        Some(Account {
            endpoint: Endpoint {
                host: parsed.host,
                port: parsed.port,
                security: parsed.security,
                tls: TlsOptions {
                    ca_file: defaults.ca_file.clone(),
                    insecure: section.insecure.unwrap_or(false) || entry.insecure,
                },
                allow_plaintext: entry.allow_plaintext,
            },
            auth,
        })
    }
}

/// `CopyOptions` from the defaults and `[options]`.
fn copy_options(section: &OptionsSection, problems: &mut Problems<'_>) -> CopyOptions {
    let place = "[options]";
    let mut options = CopyOptions::default();
    if let Some(n) = &section.connections {
        if *n.get_ref() == 0 {
            problems.add(Some(&n.span()), place, "connections must be at least 1");
        }
        options.connections = (*n.get_ref()).max(1);
    }
    let mut compile = |patterns: &Option<Vec<Spanned<String>>>, key: &str| -> Vec<Regex> {
        let mut out = Vec::new();
        for pattern in patterns.iter().flatten() {
            match Regex::new(pattern.get_ref()) {
                Ok(regex) => out.push(regex),
                Err(error) => {
                    // The regex crate's message spans lines; its last one says what is wrong.
                    let text = error.to_string();
                    let reason = text.lines().last().unwrap_or("").trim();
                    problems.add(
                        Some(&pattern.span()),
                        place,
                        format_args!(
                            "{key} `{}` is not a valid regular expression ({})",
                            pattern.get_ref(),
                            reason.trim_start_matches("error: ")
                        ),
                    )
                }
            }
        }
        out
    };
    options.include = compile(&section.include, "include");
    options.exclude = compile(&section.exclude, "exclude");
    for (from, to) in section.map.iter().flatten() {
        if from.trim().is_empty() || to.get_ref().trim().is_empty() {
            problems.add(
                Some(&to.span()),
                place,
                "map: source and target folder names must not be empty",
            );
        } else {
            options
                .map
                .push((from.trim().to_string(), to.get_ref().trim().to_string()));
        }
    }
    let mut size = |value: &Option<Spanned<toml::Value>>, key: &str| -> Option<u64> {
        let value = value.as_ref()?;
        let parsed = match value.get_ref() {
            toml::Value::Integer(n) if *n >= 0 => Ok(*n as u64),
            toml::Value::String(text) => parse_size(text, key).map_err(|e| e.to_string()),
            _ => Err(format!(
                "{key} must be a size such as \"25M\" (K, M, G) or a number of bytes"
            )),
        };
        match parsed {
            Ok(n) => Some(n),
            Err(message) => {
                problems.add(Some(&value.span()), place, message);
                None
            }
        }
    };
    options.max_message_size = size(&section.max_size, "max_size");
    options.max_bandwidth = size(&section.max_bandwidth, "max_bandwidth");
    if options.max_bandwidth == Some(0) {
        problems.add(
            section.max_bandwidth.as_ref().map(|v| v.span()).as_ref(),
            place,
            "max_bandwidth must be more than 0",
        );
    }
    let mut day = |value: &Option<Spanned<toml::Value>>, key: &str| -> Option<i64> {
        let value = value.as_ref()?;
        let text = match value.get_ref() {
            toml::Value::String(text) => text.clone(),
            toml::Value::Datetime(date) if date.time.is_none() && date.offset.is_none() => {
                date.to_string()
            }
            _ => String::new(),
        };
        match parse_day(&text, key) {
            Ok(day) => Some(day),
            Err(error) => {
                problems.add(Some(&value.span()), place, error);
                None
            }
        }
    };
    options.since = day(&section.since, "since");
    options.before = day(&section.before, "before");
    if let Some(v) = section.sync_deletes {
        options.sync_deletes = v;
    }
    if let Some(v) = section.subscriptions {
        options.subscriptions = v;
    }
    if let Some(v) = section.compress {
        options.compress = v;
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = r#"
[source]
url = "imaps://old.example.com"
insecure = true
auth_as_admin = "master"
admin_password_env = "MASTER_PW"

[target]
url = "imap://new.example.com:1143"

[options]
connections = 2
include = ["^INBOX"]
exclude = ["^Trash"]
map = { "Sent Items" = "Sent" }
max_size = "25M"
since = "2020-01-01"
before = 2026-01-01
sync_deletes = true
subscriptions = false
max_bandwidth = "10M"

[[account]]
source_user = "alice@old.example.com"
target_user = "alice@new.example.com"
target_password_file = "secrets/alice-new"

[[account]]
source_user = "bob@old.example.com"
target_user = "bob@new.example.com"
target_password_env = "BOB_NEW_PW"
target_url = "imaps://other.example.com"
"#;

    fn env(name: &str) -> Option<String> {
        match name {
            "MASTER_PW" => Some("masterpw".into()),
            "BOB_NEW_PW" => Some("bobpw".into()),
            _ => None,
        }
    }

    fn parse_in(dir: &Path, text: &str) -> Result<JobFile, Vec<String>> {
        parse(text, "jobs.toml", dir, SideFlags::default(), &env)
    }

    fn secrets_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("secrets")).unwrap();
        std::fs::write(dir.path().join("secrets/alice-new"), "alicepw\n").unwrap();
        dir
    }

    #[test]
    fn a_full_file_parses() {
        let dir = secrets_dir();
        let job = parse_in(dir.path(), FULL).unwrap_or_else(|p| panic!("{p:#?}"));
        assert!(job.warnings.is_empty(), "{:?}", job.warnings);
        let o = &job.options;
        assert_eq!(o.connections, 2);
        assert_eq!(o.include.len(), 1);
        assert_eq!(o.exclude[0].as_str(), "^Trash");
        assert_eq!(o.map, vec![("Sent Items".into(), "Sent".into())]);
        assert_eq!(o.max_message_size, Some(25 * 1024 * 1024));
        assert_eq!(o.max_bandwidth, Some(10 * 1024 * 1024));
        assert_eq!(o.since, Some(parse_day("2020-01-01", "").unwrap()));
        assert_eq!(o.before, Some(parse_day("2026-01-01", "").unwrap()));
        assert!(o.sync_deletes && !o.subscriptions);

        assert_eq!(job.accounts.len(), 2);
        let alice = &job.accounts[0];
        assert_eq!(alice.index, 1);
        assert_eq!(
            alice.source.describe(),
            "alice@old.example.com@old.example.com:993"
        );
        assert!(alice.source.endpoint.tls.insecure);
        assert!(!alice.target.endpoint.tls.insecure);
        match &alice.source.auth {
            Auth::AsUser {
                admin,
                authorize_as,
                password,
            } => {
                assert_eq!(admin, "master");
                assert_eq!(authorize_as, "alice@old.example.com");
                use secrecy::ExposeSecret;
                assert_eq!(password.expose_secret(), "masterpw");
            }
            other => panic!("{other:?}"),
        }
        match &alice.target.auth {
            Auth::Password { user, password } => {
                use secrecy::ExposeSecret;
                assert_eq!(user, "alice@new.example.com");
                assert_eq!(password.expose_secret(), "alicepw");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(alice.target.endpoint.port, 1143);
        let bob = &job.accounts[1];
        assert_eq!(bob.target.endpoint.host, "other.example.com");
        assert_eq!(bob.target.endpoint.port, 993);
    }

    #[test]
    fn every_problem_is_listed_with_line_account_and_key() {
        let dir = secrets_dir();
        let text = r#"
[source]
url = "imaps://old.example.com"
colour = "blue"

[target]
url = "ftp://new.example.com"

[options]
max_size = "lots"
include = ["("]

[[account]]
source_user = "alice"
source_password_env = "NOPE"
target_user = "alice"
target_password_file = "secrets/missing"

[[account]]
source_user = "bob"
source_password = "x"
sorce_url = "imap://x"
target_password_env = "BOB_NEW_PW"
"#;
        let problems = parse_in(dir.path(), text).unwrap_err();
        let all = problems.join("\n");
        let expect = [
            "jobs.toml:4:1: [source]: unknown key `colour`",
            "jobs.toml:10:12: [options]: max_size `lots` must be a number",
            "jobs.toml:11:12: [options]: include `(` is not a valid regular expression (unclosed group)",
            "jobs.toml:15:23: account 1 (alice): source_password_env: the environment variable `NOPE` is not set",
            "jobs.toml:7:7: [target]: url: `ftp://new.example.com` is not an IMAP address",
            "jobs.toml:17:24: account 1 (alice): target_password_file: cannot read",
            "jobs.toml:22:1: account 2 (bob): unknown key `sorce_url`",
            "jobs.toml:19:1: account 2 (bob): target_user is missing",
        ];
        for needle in expect {
            assert!(all.contains(needle), "lacks `{needle}` in:\n{all}");
        }
        // In the order of the lines; the bad [target] url once, not once per account.
        assert!(
            all.find("colour").unwrap() < all.find("ftp://").unwrap(),
            "{all}"
        );
        assert_eq!(all.matches("ftp://").count(), 1, "{all}");
        assert_eq!(problems.len(), 8, "{all}");
    }

    #[test]
    fn syntax_errors_and_wrong_shapes() {
        let dir = tempfile::tempdir().unwrap();
        let problems = parse_in(dir.path(), "[source\nurl = 1").unwrap_err();
        assert!(problems[0].starts_with("jobs.toml:1:"), "{problems:?}");

        let problems = parse_in(dir.path(), "[account]\nsource_user = \"a\"\n").unwrap_err();
        assert!(
            problems[0].contains("[[account]] table (two brackets)"),
            "{problems:?}"
        );

        let problems = parse_in(dir.path(), "[source]\nurl = \"imaps://h\"\n").unwrap_err();
        assert!(problems[0].contains("no [[account]]"), "{problems:?}");

        let problems = parse_in(
            dir.path(),
            "[options]\nconnections = \"four\"\n[[account]]\n",
        )
        .unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("jobs.toml:2:15: [options]: invalid type")),
            "{problems:?}"
        );
    }

    #[test]
    fn users_in_urls_duplicates_and_plain_passwords() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
[source]
url = "imaps://alice@old.example.com"
[target]
url = "imaps://new.example.com"
[[account]]
source_user = "a"
source_password = "pw"
target_user = "a"
target_password = "pw"
target_password_env = "BOB_NEW_PW"
"#;
        let problems = parse_in(dir.path(), text).unwrap_err();
        let all = problems.join("\n");
        assert!(all.contains("names a user"), "{all}");
        assert!(
            all.contains("target_password and target_password_env: give only one"),
            "{all}"
        );

        let text = r#"
[source]
url = "imaps://old.example.com"
[target]
url = "imaps://new.example.com"
[[account]]
source_user = "a"
source_password = "pw"
target_user = "a"
target_password_env = "BOB_NEW_PW"
[[account]]
source_user = "a"
source_password_env = "BOB_NEW_PW"
target_user = "a"
target_password_env = "BOB_NEW_PW"
"#;
        let problems = parse_in(dir.path(), text).unwrap_err();
        assert!(
            problems[0].contains("account 2 (a): the same source and target as account 1"),
            "{problems:?}"
        );

        let ok = text.replace(
            "[[account]]\nsource_user = \"a\"\nsource_password_env",
            "[[account]]\nsource_user = \"b\"\nsource_password_env",
        );
        let job = parse_in(dir.path(), &ok).unwrap();
        assert_eq!(job.accounts.len(), 2);
        assert_eq!(job.warnings.len(), 1);
        assert!(
            job.warnings[0].starts_with(
                "jobs.toml:8:19: account 1 (a): source_password is written in the job file"
            ),
            "{:?}",
            job.warnings
        );
    }

    const GROUPWARE: &str = r#"
[source]
url = "imaps://old.example.com"
type = "kolab"
[target]
url = "imaps://new.example.com"
dav = "https://dav.new.example.com/remote.php/dav"
[[account]]
source_user = "alice"
source_password_env = "MASTER_PW"
target_user = "alice@new.example.com"
target_password_env = "BOB_NEW_PW"
[[account]]
source_user = "bob"
source_password_env = "MASTER_PW"
target_user = "bob"
target_password_env = "BOB_NEW_PW"
no_groupware = true
[[account]]
source_user = "carol"
source_password_env = "MASTER_PW"
target_user = "carol"
target_password_env = "BOB_NEW_PW"
target_type = "nextcloud"
target_dav = "https://carol.dav@cloud.example.com/dav/"
"#;

    #[test]
    fn filters_from_types_and_sieve_addresses() {
        let dir = tempfile::tempdir().unwrap();
        let text = GROUPWARE
            .replacen(
                "type = \"kolab\"",
                "type = \"kolab\"\nsieve = \"sieve.old.example.com:2000\"",
                1,
            )
            .replacen(
                "no_groupware = true",
                "no_groupware = true\nno_filters = true",
                1,
            );
        let job = parse_in(dir.path(), &text).unwrap_or_else(|p| panic!("{p:#?}"));
        let alice = job.accounts[0].filters.as_ref().expect("alice's filters");
        assert_eq!(alice.source.endpoint.addr(), "sieve.old.example.com:2000");
        assert!(!alice.source.derived);
        assert_eq!(alice.target.endpoint.addr(), "new.example.com:4190");
        assert!(alice.target.derived);
        assert_eq!(alice.target.auth.account(), "alice@new.example.com");
        assert!(job.accounts[1].filters.is_none(), "bob: no_filters");
        // A target type without ManageSieve: no filters job (said at run time by type).
        let zimbra = text.replacen("target_type = \"nextcloud\"", "target_type = \"zimbra\"", 1);
        let job = parse_in(dir.path(), &zimbra).unwrap_or_else(|p| panic!("{p:#?}"));
        assert!(job.accounts[2].filters.is_none());
        // A bad address is a problem with its line.
        let bad = GROUPWARE.replacen(
            "type = \"kolab\"",
            "type = \"kolab\"\nsieve = \"https://x/\"",
            1,
        );
        let problems = parse_in(dir.path(), &bad).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.contains(":5:") && p.contains("sieve in [source]")),
            "{problems:#?}"
        );
    }

    #[test]
    fn groupware_from_types_and_addresses_per_side_and_account() {
        let dir = tempfile::tempdir().unwrap();
        let job = parse_in(dir.path(), GROUPWARE).unwrap_or_else(|p| panic!("{p:#?}"));
        let alice = job.accounts[0]
            .groupware
            .as_ref()
            .expect("alice's groupware");
        // Kolab's usual address on the mail host; each side logs in as the account.
        assert_eq!(alice.source.url.as_str(), "https://old.example.com/iRony/");
        assert_eq!(alice.source.user, "alice");
        assert_eq!(alice.source.server, mailferry_dav::ServerKind::Kolab);
        assert_eq!(
            alice.target.url.as_str(),
            "https://dav.new.example.com/remote.php/dav/"
        );
        assert_eq!(alice.target.user, "alice@new.example.com");
        use secrecy::ExposeSecret;
        assert_eq!(alice.target.password.expose_secret(), "bobpw");
        assert!(job.accounts[1].groupware.is_none(), "bob: no_groupware");
        let carol = job.accounts[2]
            .groupware
            .as_ref()
            .expect("carol's groupware");
        assert_eq!(carol.target.user, "carol.dav");
        assert_eq!(carol.target.server, mailferry_dav::ServerKind::Nextcloud);
        assert_eq!(carol.target.url.host_str(), Some("cloud.example.com"));

        // --no-groupware: none at all.
        let flags = SideFlags {
            no_groupware: true,
            ..SideFlags::default()
        };
        let job = parse(GROUPWARE, "jobs.toml", dir.path(), flags, &env).unwrap();
        assert!(job.accounts.iter().all(|a| a.groupware.is_none()));
        // [options] no_groupware = true, and one account takes it back.
        let text = format!("[options]\nno_groupware = true\n{GROUPWARE}").replacen(
            "source_user = \"alice\"",
            "no_groupware = false\nsource_user = \"alice\"",
            1,
        );
        let job = parse_in(dir.path(), &text).unwrap_or_else(|p| panic!("{p:#?}"));
        assert!(job.accounts[0].groupware.is_some());
        assert!(job.accounts[2].groupware.is_none());
    }

    #[test]
    fn groupware_problems_name_the_line_account_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
[source]
url = "imaps://old.example.com"
type = "kollab"
[target]
url = "imaps://new.example.com"
dav = "https://alice:secret-dav-pw@dav.new.example.com/"
[[account]]
source_user = "alice"
source_password_env = "MASTER_PW"
target_user = "alice"
target_password_env = "BOB_NEW_PW"
source_type = "radicale"
source_dav = "ftp://dav.old.example.com/"
"#;
        let problems = parse_in(dir.path(), text).unwrap_err();
        let all = problems.join("\n");
        let expect = [
            "jobs.toml:4:8: [source]: type: `kollab` is not a server type: use one of imap, zimbra,",
            "jobs.toml:7:7: [target]: dav: `https://alice:***@dav.new.example.com/` is not a usable CalDAV/CardDAV address",
            "jobs.toml:14:14: account 1 (alice): source_dav: `ftp://dav.old.example.com/` is not a usable CalDAV/CardDAV address: it must start with https://",
        ];
        for needle in expect {
            assert!(all.contains(needle), "lacks `{needle}` in:\n{all}");
        }
        assert!(!all.contains("secret-dav-pw"), "{all}");
        assert_eq!(problems.len(), 3, "{all}");

        // One side with groupware, the other without: from the defaults, said once for all.
        let one_sided = r#"
[source]
url = "imaps://old.example.com"
type = "zimbra"
[target]
url = "imaps://new.example.com"
[[account]]
source_user = "alice"
source_password_env = "MASTER_PW"
target_user = "alice"
target_password_env = "BOB_NEW_PW"
[[account]]
source_user = "bob"
source_password_env = "MASTER_PW"
target_user = "bob"
target_password_env = "BOB_NEW_PW"
[[account]]
source_user = "carol"
source_password_env = "MASTER_PW"
target_user = "carol"
target_password_env = "BOB_NEW_PW"
target_type = "exchange"
[[account]]
source_user = "dave"
source_password_env = "MASTER_PW"
target_user = "dave"
target_password_env = "BOB_NEW_PW"
source_dav = "https://dav.old.example.com/"
source_type = "imap"
"#;
        let problems = parse_in(dir.path(), one_sided).unwrap_err();
        let all = problems.join("\n");
        let expect = [
            "jobs.toml:4:8: [source]: the source (zimbra) has calendars and contacts but the target (imap) names no CalDAV/CardDAV server (for every account without source_dav/target_dav of its own): set dav in [target] (or target_dav per account), or no_groupware = true in [options]",
            "jobs.toml:22:15: account 3 (carol): target_type `exchange`: the target's calendars and contacts are reached through EWS or Microsoft Graph",
            "jobs.toml:23:1: account 4 (dave): the source (imap) has calendars and contacts but the target (imap) names no CalDAV/CardDAV server: set dav in [target] or target_dav for this account, or set no_groupware = true (in [options], or for this account)",
        ];
        for needle in expect {
            assert!(all.contains(needle), "lacks `{needle}` in:\n{all}");
        }
        assert_eq!(problems.len(), 3, "{all}");

        // An admin login has no password of the account for its calendars (Kolab aside).
        let admin = r#"
[source]
url = "imaps://old.example.com"
auth_as_admin = "master"
admin_password_env = "MASTER_PW"
dav = "https://dav.old.example.com/"
[target]
url = "imaps://new.example.com"
dav = "https://dav.new.example.com/"
[[account]]
source_user = "alice"
target_user = "alice"
target_password_env = "BOB_NEW_PW"
"#;
        let problems = parse_in(dir.path(), admin).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with("jobs.toml:10:1: account 1 (alice): the source logs in to IMAP with an admin or a token; its calendars and contacts need the account's own password"),
            "{problems:?}"
        );
        let kolab = admin.replace("dav = \"https://dav.old.example.com/\"", "type = \"kolab\"");
        let job = parse_in(dir.path(), &kolab).unwrap_or_else(|p| panic!("{p:#?}"));
        let groupware = job.accounts[0].groupware.as_ref().unwrap();
        assert_eq!(groupware.source.user, "master**alice");

        // A default address names no user: each account logs in as itself.
        let user = admin.replace(
            "https://dav.new.example.com/",
            "https://bob@dav.new.example.com/",
        );
        let problems = parse_in(dir.path(), &user).unwrap_err();
        assert!(
            problems.iter().any(|p| p.starts_with(
                "jobs.toml:9:7: [target]: dav `https://bob@dav.new.example.com/` names a user"
            )),
            "{problems:?}"
        );
    }

    #[test]
    fn the_known_keys_are_the_struct_fields() {
        assert_eq!(field_names::<SideSection>().len(), 10);
        assert!(field_names::<SideSection>().contains(&"sieve"));
        assert!(field_names::<OptionsSection>().contains(&"no_filters"));
        assert!(field_names::<AccountEntry>().contains(&"no_filters"));
        assert!(field_names::<SideSection>().contains(&"type"));
        assert!(field_names::<AccountEntry>().contains(&"target_dav"));
        assert!(field_names::<OptionsSection>().contains(&"no_groupware"));
        assert!(field_names::<AccountEntry>().contains(&"target_password_env"));
        assert!(field_names::<OptionsSection>().contains(&"max_bandwidth"));
    }
}
