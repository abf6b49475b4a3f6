//! `mailferry migrate`: copies one account from a source IMAP server to a target.
//!
//! Idempotent and resumable: a second run copies nothing, an interrupted one (even killed)
//! picks up where it stopped without duplicates. Progress on a terminal, a report per folder
//! at the end; `--report FILE.json` writes it for scripts. Exit codes: 0 everything is on the
//! target, 3 some messages or folders were skipped or failed (the report says which), 1 the
//! run failed.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use mailferry_engine::{migrate, CopyOptions, Job, Outcome, Progress, Report};
use mailferry_store::Store;

use super::sides::{FolderArgs, SidesArgs};

/// Copy one account's folders, messages, flags and dates from --from to --to.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub sides: SidesArgs,
    #[command(flatten)]
    pub folders: FolderArgs,
    /// Where the state of the run is kept (what was copied, for reruns and resumption).
    /// Default: $XDG_STATE_HOME/mailferry, or ~/.local/state/mailferry.
    #[arg(long, value_name = "DIR", env = "MAILFERRY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Connections per side; folders are spread over them.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub connections: usize,
    /// Skip messages bigger than this many bytes (reported as skipped). Accepts K, M, G.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Only messages received on or after this date (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only messages received before this date (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub before: Option<String>,
    /// Print the plan (folders to create, messages and bytes per folder) and copy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete on the target the messages deleted at the source since the last pass.
    #[arg(long)]
    pub sync_deletes: bool,
    /// Do not copy folder subscriptions.
    #[arg(long)]
    pub no_subscriptions: bool,
    /// Write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// No progress bar, even on a terminal.
    #[arg(long)]
    pub quiet: bool,
}

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let (source, target) = args.sides.accounts()?;
    let mut options = CopyOptions {
        connections: args.connections.max(1),
        timeout_seconds: args.sides.timeout,
        ..CopyOptions::default()
    };
    args.folders.apply(&mut options)?;
    options.max_message_size = args.max_size.as_deref().map(parse_size).transpose()?;
    options.since = args
        .since
        .as_deref()
        .map(|d| parse_day(d, "--since"))
        .transpose()?;
    options.before = args
        .before
        .as_deref()
        .map(|d| parse_day(d, "--before"))
        .transpose()?;
    options.dry_run = args.dry_run;
    options.sync_deletes = args.sync_deletes;
    options.subscriptions = !args.no_subscriptions;

    let id = job_id(&source.describe(), &target.describe());
    let state_dir = match args.state_dir.clone() {
        Some(dir) => dir,
        None => default_state_dir()?,
    };
    let state_file = state_dir.join(format!("{id}.sqlite"));
    options.spool_dir = Some(state_dir.clone());
    let store = Store::open_sqlite(&state_file)
        .await
        .with_context(|| format!("cannot open the state database `{}`", state_file.display()))?;
    let job = Job {
        id: "cli".into(),
        source,
        target,
        options,
    };

    let progress = Arc::new(Progress::default());
    let ticker = spawn_progress(progress.clone(), args.quiet);
    let result = migrate(&job, &store, progress.clone()).await;
    ticker.abort();
    let _ = ticker.await;
    let (report, trips) = result?;
    tracing::info!(
        source_round_trips = trips.source,
        target_round_trips = trips.target,
        "round trips"
    );
    print_report(&report);
    if let Some(path) = &args.report {
        let mut value = serde_json::to_value(&report)?;
        value["outcome"] = serde_json::to_value(report.outcome())?;
        value["round_trips"] = serde_json::to_value(trips)?;
        value["peak_rss_bytes"] = peak_rss_bytes().into();
        std::fs::write(path, serde_json::to_string_pretty(&value)?)
            .with_context(|| format!("cannot write the report to `{}`", path.display()))?;
    }
    Ok(match report.outcome() {
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::Partial => ExitCode::from(3),
        Outcome::Failed => ExitCode::from(1),
    })
}

/// The process's peak resident memory (Linux), for the report.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One state file per pair of accounts, named so an admin can find it.
fn job_id(source: &str, target: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "@.-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    format!("{}--{}", clean(source), clean(target))
}

fn default_state_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("mailferry"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/state/mailferry")),
        None => bail!("no state directory: set --state-dir or MAILFERRY_STATE_DIR"),
    }
}

fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, factor) = match text.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&text[..text.len() - 1], 1024),
        Some('M') => (&text[..text.len() - 1], 1024 * 1024),
        Some('G') => (&text[..text.len() - 1], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    let value: u64 = number.trim().parse().with_context(|| {
        format!(
            "--max-size `{text}` must be a number of bytes, optionally with K, M or G (e.g. 25M)"
        )
    })?;
    Ok(value * factor)
}

fn parse_day(text: &str, flag: &str) -> anyhow::Result<i64> {
    let parts: Vec<&str> = text.trim().split('-').collect();
    let bad =
        || anyhow::anyhow!("{flag} `{text}` must be a date as YYYY-MM-DD, for example 2024-01-31");
    if parts.len() != 3 {
        return Err(bad());
    }
    let (year, month, day): (i64, usize, u32) = (
        parts[0].parse().map_err(|_| bad())?,
        parts[1].parse().map_err(|_| bad())?,
        parts[2].parse().map_err(|_| bad())?,
    );
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.get(month.wrapping_sub(1)).ok_or_else(bad)?;
    mailferry_imap::datetime::internal_date_to_unix(&format!(
        "{day:02}-{month}-{year:04} 00:00:00 +0000"
    ))
    .ok_or_else(bad)
}

fn spawn_progress(progress: Arc<Progress>, quiet: bool) -> tokio::task::JoinHandle<()> {
    let terminal = std::io::stderr().is_terminal() && !quiet;
    tokio::spawn(async move {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} messages  {msg}  ETA {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        let started = std::time::Instant::now();
        let mut last_log = std::time::Instant::now();
        loop {
            let s = progress.snapshot();
            let seconds = started.elapsed().as_secs_f64().max(0.001);
            let rate = s.copied_messages as f64 / seconds;
            let mbps = s.copied_bytes as f64 / seconds / 1_048_576.0;
            if let Some(bar) = &bar {
                bar.set_length(s.total_messages);
                bar.set_position(s.done_messages);
                bar.set_message(format!(
                    "{} copied, {:.0} msg/s, {:.1} MB/s",
                    s.copied_messages, rate, mbps
                ));
            } else if last_log.elapsed() >= Duration::from_secs(10) {
                tracing::info!(
                    done = s.done_messages,
                    total = s.total_messages,
                    copied = s.copied_messages,
                    msgs_per_s = rate as u64,
                    "progress"
                );
                last_log = std::time::Instant::now();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
}

fn print_report(report: &Report) {
    let verb = if report.dry_run { "plan" } else { "report" };
    println!("{verb}: {} -> {}", report.source, report.target);
    let width = report
        .folders
        .iter()
        .map(|f| f.source.chars().count() + f.target.chars().count() + 4)
        .max()
        .unwrap_or(10)
        .max(10);
    if report.dry_run {
        println!(
            "{:<width$}  {:>9}  {:>12}",
            "FOLDER -> TARGET", "MESSAGES", "BYTES"
        );
    } else {
        println!(
            "{:<width$}  {:>8}  {:>8}  {:>7}  {:>6}  {:>6}",
            "FOLDER -> TARGET", "COPIED", "PRESENT", "SKIPPED", "FAILED", "FLAGS"
        );
    }
    for f in &report.folders {
        let name = format!("{} -> {}", f.source, f.target);
        let pad = width.saturating_sub(name.chars().count());
        if report.dry_run {
            println!(
                "{name}{}  {:>9}  {:>12}",
                " ".repeat(pad),
                f.source_messages,
                f.source_bytes
            );
        } else {
            println!(
                "{name}{}  {:>8}  {:>8}  {:>7}  {:>6}  {:>6}",
                " ".repeat(pad),
                f.copied,
                f.already_present,
                f.skipped.len(),
                f.failed.len(),
                f.flags_updated
            );
        }
        for note in &f.notes {
            println!("    note: {note}");
        }
        for problem in f.skipped.iter() {
            println!(
                "    skipped UID {} ({} bytes): {}",
                problem.uid, problem.size, problem.reason
            );
        }
        for problem in f.failed.iter() {
            println!(
                "    failed UID {} ({} bytes): {}",
                problem.uid, problem.size, problem.reason
            );
        }
        if let Some(error) = &f.error {
            println!("    error: {error}");
        }
    }
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    if !report.dry_run {
        println!(
            "\n{} copied, {} already present, {} skipped, {} failed in {:.1} s: {}",
            report.copied(),
            report.already_present(),
            report.skipped(),
            report.failed(),
            report.seconds,
            match report.outcome() {
                Outcome::Complete => "complete",
                Outcome::Partial => "partial: see the skipped and failed messages above, and run again to retry failures",
                Outcome::Failed => "failed",
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_days() {
        assert_eq!(parse_size("25M").unwrap(), 25 * 1024 * 1024);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("x").is_err());
        assert_eq!(parse_day("1970-01-02", "--since").unwrap(), 86_400);
        assert!(parse_day("2024-13-01", "--since").is_err());
        assert_eq!(job_id("a@b:1", "c@d:2"), "a@b_1--c@d_2");
    }
}
