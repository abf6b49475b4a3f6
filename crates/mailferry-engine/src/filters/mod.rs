//! Filters: every Sieve script of an account (its filters, vacation reply, forwarding), from
//! a ManageSieve source to a ManageSieve target, with [`mailferry_sieve`].
//!
//! # Layout
//! - [`copy`]: a pass ([`copy_filters`]): scripts copied as served (folder names rewritten by
//!   the mail's mapping), the active one set active, a different script of the same name on
//!   the target kept and the copy stored under a new name.
//! - [`script`]: what is read in a script without running it: its `require`s and the folders
//!   it files into.
//! - [`verify`]: an independent comparison of both sides' scripts.
//! - [`report`]: what a pass did.
//!
//! # Contract
//! The source is only read (LISTSCRIPTS, GETSCRIPT). On the target a script is written only
//! under a name that is free or holds our own unchanged copy: what someone wrote there is
//! never overwritten. A rerun writes nothing when nothing changed.

pub mod copy;
pub mod report;
pub mod script;
pub mod verify;

use std::time::Duration;

use mailferry_imap::Auth;
use mailferry_sieve::SieveEndpoint;

pub use copy::copy_filters;
pub use report::{FiltersCounts, FiltersReport, ScriptOutcome, ScriptReport};
pub use script::{required_extensions, rewrite_folders, FolderRewrite};
pub use verify::{verify_filters, FiltersVerifyReport};

/// One side's ManageSieve account.
#[derive(Debug, Clone)]
pub struct SieveAccount {
    pub endpoint: SieveEndpoint,
    pub auth: Auth,
    /// The address was derived (the mail host on port 4190), not given: a refused
    /// connection there means the server has no ManageSieve, not an error.
    pub derived: bool,
}

impl SieveAccount {
    /// `user@host:port`, for reports (never a secret).
    pub fn describe(&self) -> String {
        format!("{}@{}", self.auth.account(), self.endpoint.addr())
    }
}

/// One filters migration: both ManageSieve accounts.
#[derive(Debug, Clone)]
pub struct FiltersJob {
    /// The state key (the mail job's id).
    pub id: String,
    pub source: SieveAccount,
    pub target: SieveAccount,
    /// Plan only: read both sides, write nothing.
    pub dry_run: bool,
    /// How folder names in scripts change; the mail pass's mapping when it ran.
    pub rewrite: FolderRewrite,
    pub timeout: Duration,
}

impl FiltersJob {
    /// A pass from `source` to `target` as [`crate::run_account`] runs it: its dry run and
    /// folder rewrite are set from the mail pass then.
    pub fn new(
        id: impl Into<String>,
        source: SieveAccount,
        target: SieveAccount,
        timeout: Duration,
    ) -> Self {
        Self {
            id: id.into(),
            source,
            target,
            dry_run: false,
            rewrite: FolderRewrite::default(),
            timeout,
        }
    }
}
