//! The two sides of `migrate` and `verify`: `--from` and `--to`, each with its own password
//! source, login options and certificate checks.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use mailferry_engine::{Account, CopyOptions};
use mailferry_imap::Security;
use regex::Regex;

use super::endpoint_args::{resolve, ConnectArgs, LoginArgs};

/// Source and target, as `migrate` and `verify` take them.
#[derive(Debug, Clone, Args)]
pub struct SidesArgs {
    /// The source account: imap://USER@HOST[:PORT] (STARTTLS) or imaps://USER@HOST[:PORT];
    /// or https://USER@HOST/PATH (http:// on trusted networks) for its calendars and
    /// contacts alone (CalDAV/CardDAV). Its password comes from MAILFERRY_FROM_PASSWORD,
    /// --from-password-file, or a prompt.
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The target account, like --from; password from MAILFERRY_TO_PASSWORD,
    /// --to-password-file, or a prompt.
    #[arg(long, value_name = "URL")]
    pub to: String,
    #[arg(long, value_name = "FILE")]
    pub from_password_file: Option<PathBuf>,
    #[arg(long, value_name = "FILE")]
    pub to_password_file: Option<PathBuf>,
    /// Log in to the source with the URL's user (an admin or master user) on behalf of this user.
    #[arg(long, value_name = "USER")]
    pub from_auth_as: Option<String>,
    /// Log in to the target with the URL's user (an admin or master user) on behalf of this user.
    #[arg(long, value_name = "USER")]
    pub to_auth_as: Option<String>,
    /// Log in to the source with an OAuth2 token (XOAUTH2) from this file.
    #[arg(long, value_name = "FILE")]
    pub from_oauth2_token_file: Option<PathBuf>,
    /// Log in to the target with an OAuth2 token (XOAUTH2) from this file.
    #[arg(long, value_name = "FILE")]
    pub to_oauth2_token_file: Option<PathBuf>,
    /// Accept unverified TLS certificates on both sides (lab servers).
    #[arg(long)]
    pub insecure: bool,
    /// Accept an unverified TLS certificate on the source only.
    #[arg(long)]
    pub from_insecure: bool,
    /// Accept an unverified TLS certificate on the target only.
    #[arg(long)]
    pub to_insecure: bool,
    /// Trust the CA certificates in this PEM file for the source.
    #[arg(long, value_name = "FILE")]
    pub from_ca_file: Option<PathBuf>,
    /// Trust the CA certificates in this PEM file for the target.
    #[arg(long, value_name = "FILE")]
    pub to_ca_file: Option<PathBuf>,
    /// Log in without TLS where a server offers no STARTTLS (always allowed on loopback).
    #[arg(long)]
    pub allow_plaintext: bool,
    /// Never use TLS on imap:// addresses, even where the server offers STARTTLS: passwords
    /// and mail travel unencrypted. Only for trusted networks and benchmarks on loopback.
    #[arg(long)]
    pub plaintext: bool,
    /// Seconds to wait for a server at each step.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub timeout: u64,
    /// The source's server type (imap, zimbra, kolab, openxchange, nextcloud, sogo, ...): a
    /// type with groupware brings its calendars and contacts along (CalDAV/CardDAV at the
    /// type's usual address on the same host), unless --no-groupware.
    #[arg(long, value_name = "TYPE", default_value = "imap")]
    pub from_type: String,
    /// The target's server type, like --from-type.
    #[arg(long, value_name = "TYPE", default_value = "imap")]
    pub to_type: String,
    /// The source's CalDAV/CardDAV address (https://[USER@]HOST/PATH), over the type's
    /// usual one; with it a plain imap account's groupware is taken too.
    #[arg(long, value_name = "URL")]
    pub from_dav: Option<String>,
    /// The target's CalDAV/CardDAV address, like --from-dav.
    #[arg(long, value_name = "URL")]
    pub to_dav: Option<String>,
    /// Mail only: leave calendars, tasks and contacts alone.
    #[arg(long)]
    pub no_groupware: bool,
    /// The source's ManageSieve server (HOST[:PORT], port 4190 by default), over the mail
    /// host's port 4190: filters come from there.
    #[arg(long, value_name = "HOST:PORT")]
    pub from_sieve: Option<String>,
    /// The target's ManageSieve server, like --from-sieve.
    #[arg(long, value_name = "HOST:PORT")]
    pub to_sieve: Option<String>,
    /// Leave the filters (Sieve scripts: rules, vacation reply, forwarding) alone.
    #[arg(long)]
    pub no_filters: bool,
}

/// Folder selection, shared by migrate and verify so that both look at the same folders.
#[derive(Debug, Clone, Args)]
pub struct FolderArgs {
    /// Only folders whose source name matches this regular expression (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub include: Vec<String>,
    /// Leave out folders whose source name matches this regular expression (repeatable).
    #[arg(long, value_name = "REGEX")]
    pub exclude: Vec<String>,
    /// Put a source folder into a named target folder: --map "Sent Items=Sent" (repeatable).
    /// Special folders (Sent, Trash, Junk, Drafts, Archive) are mapped by their flags anyway.
    #[arg(long, value_name = "SOURCE=TARGET")]
    pub map: Vec<String>,
}

impl FolderArgs {
    pub fn apply(&self, options: &mut CopyOptions) -> anyhow::Result<()> {
        let compile = |pattern: &String, flag: &str| {
            Regex::new(pattern)
                .with_context(|| format!("--{flag} `{pattern}` is not a valid regular expression"))
        };
        options.include = self
            .include
            .iter()
            .map(|p| compile(p, "include"))
            .collect::<anyhow::Result<_>>()?;
        options.exclude = self
            .exclude
            .iter()
            .map(|p| compile(p, "exclude"))
            .collect::<anyhow::Result<_>>()?;
        options.map = self
            .map
            .iter()
            .map(|m| match m.split_once('=') {
                Some((from, to)) if !from.trim().is_empty() && !to.trim().is_empty() => {
                    Ok((from.trim().to_string(), to.trim().to_string()))
                }
                _ => bail!(
                    "--map `{m}` must be SOURCE=TARGET, for example --map \"Sent Items=Sent\""
                ),
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(())
    }
}

struct SideSpec<'a> {
    url: &'a str,
    name: &'static str,
    env: &'static str,
    password_file: Option<&'a PathBuf>,
    auth_as: Option<&'a String>,
    token_file: Option<&'a PathBuf>,
    insecure: bool,
    ca_file: Option<&'a PathBuf>,
}

impl SidesArgs {
    /// Both accounts, with their credentials read.
    pub fn accounts(&self) -> anyhow::Result<(Account, Account)> {
        // The types first, from the engine's one table (as the API and lists read them).
        for (flag, kind) in [
            ("--from-type", &self.from_type),
            ("--to-type", &self.to_type),
        ] {
            mailferry_engine::account::server_type(kind)
                .map_err(|error| anyhow::anyhow!("{flag}: {error}"))?;
        }
        let source = self.account(SideSpec {
            url: &self.from,
            name: "source",
            env: "MAILFERRY_FROM_PASSWORD",
            password_file: self.from_password_file.as_ref(),
            auth_as: self.from_auth_as.as_ref(),
            token_file: self.from_oauth2_token_file.as_ref(),
            insecure: self.insecure || self.from_insecure,
            ca_file: self.from_ca_file.as_ref(),
        })?;
        let target = self.account(SideSpec {
            url: &self.to,
            name: "target",
            env: "MAILFERRY_TO_PASSWORD",
            password_file: self.to_password_file.as_ref(),
            auth_as: self.to_auth_as.as_ref(),
            token_file: self.to_oauth2_token_file.as_ref(),
            insecure: self.insecure || self.to_insecure,
            ca_file: self.to_ca_file.as_ref(),
        })?;
        Ok((source, target))
    }

    fn account(&self, spec: SideSpec<'_>) -> anyhow::Result<Account> {
        let connect = ConnectArgs {
            insecure: spec.insecure,
            ca_file: spec.ca_file.cloned(),
            allow_plaintext: self.allow_plaintext,
            timeout: self.timeout,
            compress: false,
        };
        let login = LoginArgs {
            password_file: spec.password_file.cloned(),
            auth_as: spec.auth_as.cloned(),
            oauth2_token_file: spec.token_file.cloned(),
            oauthbearer: false,
        };
        let (mut endpoint, auth) = resolve(spec.url, &connect, &login, spec.env, spec.name)?;
        if self.plaintext {
            endpoint.security = match endpoint.security {
                Security::Tls => bail!(
                    "--plaintext cannot apply to the {} address `{}`: imaps:// is TLS; use imap://",
                    spec.name,
                    spec.url
                ),
                _ => Security::Plain,
            };
        }
        Ok(Account { endpoint, auth })
    }
}
