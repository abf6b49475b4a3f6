//! An independent comparison of both sides' scripts: no state, only what the two servers
//! serve. A source script matches when the target holds its bytes (as served, or with the
//! folder names rewritten as a migration rewrites them) under its name or under one of the
//! names a migration stores it as (`name.migrated`, `name.migrated-2` ...).

use serde::Serialize;

use mailferry_sieve::SieveError;

use super::copy::{describe, migrated_names, open, read_all};
use super::script::rewrite_folders;
use super::{FiltersJob, SieveAccount};

/// What the comparison found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FiltersVerifyReport {
    pub source: String,
    pub target: String,
    /// Source scripts found on the target, with the name they have there.
    pub matching: Vec<(String, String)>,
    /// Source scripts with no copy on the target.
    pub missing: Vec<String>,
    /// Source scripts whose name is on the target with other content (and no copy under a
    /// migrated name).
    pub different: Vec<String>,
    /// The source's active script is not the target's active one (its copy there).
    pub active_differs: Option<String>,
    /// Why a side could not be compared; `skipped` when the source has no ManageSieve.
    pub error: Option<String>,
    pub skipped: Option<String>,
}

impl FiltersVerifyReport {
    pub fn differences(&self) -> usize {
        self.missing.len()
            + self.different.len()
            + usize::from(self.active_differs.is_some())
            + usize::from(self.error.is_some())
    }
}

async fn scripts(
    account: &SieveAccount,
    timeout: std::time::Duration,
) -> Result<Option<Vec<(String, bool, Vec<u8>)>>, SieveError> {
    let Some(mut client) = open(account, timeout).await? else {
        return Ok(None);
    };
    let scripts = read_all(&mut client).await?;
    let _ = client.logout().await;
    Ok(Some(
        scripts
            .into_iter()
            .map(|(entry, content)| (entry.name, entry.active, content))
            .collect(),
    ))
}

/// Compares the scripts of `job`'s two sides (its `rewrite` as a migration would apply it).
pub async fn verify_filters(job: &FiltersJob) -> FiltersVerifyReport {
    let mut report = FiltersVerifyReport {
        source: job.source.describe(),
        target: job.target.describe(),
        ..FiltersVerifyReport::default()
    };
    let source = match scripts(&job.source, job.timeout).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            report.skipped = Some(format!(
                "the source has no ManageSieve at {}",
                job.source.endpoint.addr()
            ));
            return report;
        }
        Err(e) => {
            report.error = Some(describe("source", &e));
            return report;
        }
    };
    if source.is_empty() {
        return report;
    }
    let target = match scripts(&job.target, job.timeout).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            report.error = Some(format!(
                "the target has no ManageSieve at {}",
                job.target.endpoint.addr()
            ));
            return report;
        }
        Err(e) => {
            report.error = Some(describe("target", &e));
            return report;
        }
    };
    for (name, active, content) in &source {
        let rewritten = rewrite_folders(content, &job.rewrite).content;
        let same = |c: &Vec<u8>| c == content || *c == rewritten;
        let candidates = std::iter::once(name.clone()).chain(migrated_names(name));
        let found = candidates
            .filter_map(|candidate| target.iter().find(|(t, _, _)| *t == candidate))
            .find(|(_, _, c)| same(c));
        match found {
            Some((target_name, target_active, _)) => {
                report.matching.push((name.clone(), target_name.clone()));
                if *active && !target_active {
                    report.active_differs = Some(format!(
                        "`{name}` is active at the source, its copy `{target_name}` is not active on the target"
                    ));
                }
            }
            None if target.iter().any(|(t, _, _)| t == name) => report.different.push(name.clone()),
            None => report.missing.push(name.clone()),
        }
    }
    report
}
