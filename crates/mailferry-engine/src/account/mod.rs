//! One account, the same for the CLI and the service:
//! - [`server_type`]: the one table of server types and what each brings;
//! - [`endpoint`]: the entered server as the account's IMAP endpoint;
//! - [`dav`]: its CalDAV/CardDAV endpoint, from its address and its mail login;
//! - [`sieve`](mod@sieve): its ManageSieve endpoint, given or the mail host's port 4190;
//! - [`check`]: one login check for every endpoint of an account;
//! - [`hint`]: what to do about an error, in the words of the CLI or of the service;
//! - [`spec`]: an account as entered, and the endpoints it becomes;
//! - [`run_account`]: its migration as a whole, its mail, then its calendars and contacts,
//!   then its filters, into one [`Report`].

pub mod check;
pub mod dav;
pub mod endpoint;
pub mod hint;
pub mod server_type;
pub mod sieve;
pub mod spec;

pub use check::{check_account, check_dav, check_mail, LoginFailure};
pub use dav::{dav_endpoint, DavProblem};
pub use endpoint::{mail_endpoint, EndpointProblem};
pub use hint::{dav_hint, imap_hint, Surface};
pub use server_type::{
    server_type, usable_names, Filters, Groupware, Mail, ServerType, TypeError, SERVER_TYPES,
};
pub use sieve::{sieve_account, SIEVE_PORT};
pub use spec::{AccountEndpoints, AccountSpec, SpecProblem};

use std::sync::Arc;

use mailferry_store::Store;

use crate::error::EngineError;
use crate::filters::{copy_filters, FiltersJob};
use crate::groupware::{copy_groupware, GroupwareJob};
use crate::mail::{migrate, Job, RoundTrips};
use crate::progress::Progress;
use crate::report::Report;

/// The parts of an account besides its mail.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountParts<'a> {
    pub groupware: Option<&'a GroupwareJob>,
    pub filters: Option<&'a FiltersJob>,
}

/// Runs one pass of an account: the mail of `job`, then, unless the run was asked to stop,
/// `groupware` and `filters` (their reports go into the mail report's `groupware` and
/// `filters`). Deletions of groupware follow the mail's `sync_deletes`, a dry run is one for
/// all; folder names in filters follow the mail's folder mapping.
pub async fn run_account(
    job: &Job,
    parts: AccountParts<'_>,
    store: &Store,
    progress: Arc<Progress>,
) -> Result<(Report, RoundTrips), EngineError> {
    let groupware = parts.groupware;
    let (mut report, trips) = migrate(job, store, progress.clone()).await?;
    if let Some(groupware) = groupware {
        if !progress.stopping() {
            let groupware = GroupwareJob {
                dry_run: job.options.dry_run,
                sync_deletes: job.options.sync_deletes,
                ..groupware.clone()
            };
            report.groupware = Some(copy_groupware(&groupware, store, &progress).await);
        }
    }
    if let Some(filters) = parts.filters {
        if !progress.stopping() {
            let filters = FiltersJob {
                dry_run: job.options.dry_run,
                rewrite: report.folder_rewrite.clone().unwrap_or_default(),
                ..filters.clone()
            };
            report.filters = Some(copy_filters(&filters, store).await);
        }
    }
    Ok((report, trips))
}
