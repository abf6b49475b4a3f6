//! One account's migration as a whole, the same for the CLI and the service: its mail, then
//! its calendars and contacts (then, later, its filters), into one [`Report`].

use std::sync::Arc;

use mailferry_store::Store;

use crate::error::EngineError;
use crate::groupware::{copy_groupware, GroupwareJob};
use crate::mail::{migrate, Job, RoundTrips};
use crate::progress::Progress;
use crate::report::Report;

/// Runs one pass of an account: the mail of `job`, then, unless the run was asked to stop,
/// `groupware` (its report goes into the mail report's `groupware`). Deletions of groupware
/// follow the mail's `sync_deletes`, a dry run is one for both.
pub async fn run_account(
    job: &Job,
    groupware: Option<&GroupwareJob>,
    store: &Store,
    progress: Arc<Progress>,
) -> Result<(Report, RoundTrips), EngineError> {
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
    Ok((report, trips))
}
