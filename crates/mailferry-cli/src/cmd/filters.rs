//! The filters of `migrate` and `verify`: both sides' ManageSieve accounts from the types,
//! `--from-sieve`/`--to-sieve` and the mail logins, and the filters part of a report as text.

use std::time::Duration;

use anyhow::bail;
use mailferry_engine::account::{server_type, sieve_account, Filters};
use mailferry_engine::filters::{FiltersJob, FiltersReport, FiltersVerifyReport, ScriptOutcome};
use mailferry_engine::Account;

use super::sides::SidesArgs;

impl SidesArgs {
    /// The filters job of a migration of `source` to `target`; `None` with --no-filters or
    /// when the source's type keeps its filters elsewhere (and no --from-sieve was given).
    pub fn filters_with_mail(
        &self,
        id: &str,
        dry_run: bool,
        source: &Account,
        target: &Account,
    ) -> anyhow::Result<Option<FiltersJob>> {
        if self.no_filters {
            return Ok(None);
        }
        let side = |flag: &str, kind: &str, mail: &Account, explicit: Option<&str>| {
            let kind = server_type(kind).map_err(|e| anyhow::anyhow!("{e}"))?;
            sieve_account(kind, mail, explicit)
                .map(|account| (kind, account))
                .map_err(|p| anyhow::anyhow!("{flag}: {}", p.message))
        };
        let (source_kind, from) = side(
            "--from-sieve",
            &self.from_type,
            source,
            self.from_sieve.as_deref(),
        )?;
        let (target_kind, to) = side(
            "--to-sieve",
            &self.to_type,
            target,
            self.to_sieve.as_deref(),
        )?;
        match (from, to) {
            (Some(source), Some(target)) => Ok(Some(FiltersJob {
                dry_run,
                ..FiltersJob::new(id, source, target, Duration::from_secs(self.timeout))
            })),
            // No target account means the target's type keeps filters elsewhere.
            (Some(source), None) => match target_kind.filters {
                Filters::NotManageSieve(why) if !source.derived => bail!(
                    "the source's filters (--from-sieve) have nowhere to go: the target is of type {target_kind}: {why}; give --to-sieve HOST:PORT, or leave filters out with --no-filters"
                ),
                _ => Ok(None),
            },
            (None, _) => {
                if let Filters::NotManageSieve(why) = source_kind.filters {
                    tracing::info!(reason = why, "filters left out");
                }
                Ok(None)
            }
        }
    }
}

fn outcome_word(outcome: ScriptOutcome) -> &'static str {
    match outcome {
        ScriptOutcome::Copied => "copied",
        ScriptOutcome::Updated => "updated",
        ScriptOutcome::Present => "present",
        ScriptOutcome::KeptOnTarget => "kept on target",
        ScriptOutcome::Refused => "REFUSED",
        ScriptOutcome::Failed => "FAILED",
        ScriptOutcome::Planned => "to copy",
    }
}

/// The filters part of a migration report, as text.
pub fn print_filters(report: &FiltersReport) {
    println!("filters: {} -> {}", report.source, report.target);
    if let Some(skipped) = &report.skipped {
        println!("    {skipped}");
    }
    for script in &report.scripts {
        let name = if script.target_name == script.source_name {
            script.source_name.clone()
        } else {
            format!("{} -> {}", script.source_name, script.target_name)
        };
        let active = if script.active { " (active)" } else { "" };
        println!(
            "  {name}{active}: {} ({} bytes)",
            outcome_word(script.outcome),
            script.bytes
        );
        for (from, to) in &script.rewrites {
            println!("    folder rewritten: \"{from}\" -> \"{to}\"");
        }
        for note in &script.notes {
            println!("    note: {note}");
        }
        if let Some(error) = &script.error {
            for (i, line) in error.lines().enumerate() {
                let lead = if i == 0 { "the target said:" } else { "   " };
                println!("    {lead} {line}");
            }
        }
    }
    for note in &report.notes {
        println!("  note: {note}");
    }
    for problem in &report.problems {
        println!("  problem: {problem}");
    }
    let counts = report.tally();
    println!(
        "  {} copied, {} present, {} refused, {} failed",
        counts.copied, counts.present, counts.refused, counts.failed
    );
}

/// The filters part of a verify, as text.
pub fn print_filters_verify(report: &FiltersVerifyReport) {
    println!(
        "verify filters: {} against {}",
        report.source, report.target
    );
    if let Some(skipped) = &report.skipped {
        println!("    {skipped}");
    }
    for (source, target) in &report.matching {
        println!("  {source}: same on the target as `{target}`");
    }
    for name in &report.missing {
        println!("  {name}: MISSING on the target");
    }
    for name in &report.different {
        println!("  {name}: DIFFERENT on the target");
    }
    if let Some(active) = &report.active_differs {
        println!("  active script: {active}");
    }
    if let Some(error) = &report.error {
        println!("  error: {error}");
    }
    println!("  {} difference(s)", report.differences());
}
