//! `mailferry migrate`: copies one account from a source IMAP server to a target, or every
//! account of a TOML job file (`--job`, see [`super::job_file`]), up to `--jobs N` at once.
//!
//! Idempotent and resumable: a second run copies nothing, an interrupted one (even killed)
//! picks up where it stopped without duplicates. Progress on a terminal, a report per folder
//! at the end; `--report FILE.json` writes it for scripts (for a job file: an array, one
//! report per account). Exit codes: 0 everything is on the target, 3 some messages or folders
//! were skipped or failed (the report says which), 1 the run (or, with a job file, any
//! account) failed.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{ArgGroup, Args};
use mailferry_engine::filters::FiltersJob;
use mailferry_engine::groupware::{copy_groupware, GroupwareJob};
use mailferry_engine::{
    Account, CopyOptions, Job, Outcome, Progress, ProgressSnapshot, Report, RoundTrips,
};
use mailferry_imap::ConnectionBudget;
use mailferry_store::Store;

use super::filters::print_filters;
use super::groupware::{is_dav_address, print_groupware};
use super::job_file::{self, SideFlags};
use super::sides::{FolderArgs, SidesArgs};

/// Copy one account's folders, messages, flags and dates from --from to --to, or every
/// account listed in a job file (--job).
#[derive(Debug, Args)]
// --from/--to live in SidesArgs (shared with verify, where they are required); here a job
// file can take their place. The empty default only lets clap fill the String fields.
#[command(
    mut_arg("from", |a| a
        .required(false)
        .default_value("")
        .hide_default_value(true)
        .requires("to")),
    mut_arg("to", |a| a
        .required(false)
        .default_value("")
        .hide_default_value(true)
        .requires("from")),
    group(ArgGroup::new("accounts").args(["from", "job"]).required(true).multiple(false)),
)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub sides: SidesArgs,
    #[command(flatten)]
    pub folders: FolderArgs,
    /// Migrate every account listed in this TOML job file (servers, accounts, password
    /// files, options, groupware; see the README) instead of one --from/--to pair. The
    /// servers' types and DAV addresses go into the file: type and dav in [source] and
    /// [target], or source_type/source_dav/target_type/target_dav per account.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = [
            "to", "from_password_file", "to_password_file", "from_auth_as", "to_auth_as",
            "from_oauth2_token_file", "to_oauth2_token_file", "from_ca_file", "to_ca_file",
            "from_type", "to_type", "from_dav", "to_dav", "from_sieve", "to_sieve",
        ],
    )]
    pub job: Option<PathBuf>,
    /// With --job: migrate up to N accounts at once. Default: 1.
    #[arg(long, value_name = "N", requires = "job")]
    pub jobs: Option<usize>,
    /// Cap on connections to any one server, across all accounts of the run.
    #[arg(long, value_name = "N")]
    pub per_host_connections: Option<usize>,
    /// Where the state of the run is kept (what was copied, for reruns and resumption).
    /// Default: $XDG_STATE_HOME/mailferry, or ~/.local/state/mailferry.
    #[arg(long, value_name = "DIR", env = "MAILFERRY_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Connections per side; folders are spread over them. Default: 4.
    #[arg(long, value_name = "N")]
    pub connections: Option<usize>,
    /// Skip messages bigger than this many bytes (reported as skipped). Accepts K, M, G.
    #[arg(long, value_name = "SIZE")]
    pub max_size: Option<String>,
    /// Only messages received on or after this date (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Only messages received before this date (YYYY-MM-DD, UTC).
    #[arg(long, value_name = "DATE")]
    pub before: Option<String>,
    /// Read at most this many bytes per second from the source (per account). Accepts K, M,
    /// G: 10M is 10 MiB/s.
    #[arg(long, value_name = "RATE")]
    pub max_bandwidth: Option<String>,
    /// Turn on COMPRESS=DEFLATE (RFC 4978) on both sides where the servers offer it: fewer
    /// bytes on a slow or metered link, more CPU on both ends (off by default).
    #[arg(long)]
    pub compress: bool,
    /// Print the plan (folders to create, messages and bytes per folder) and copy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Delete on the target the messages, events, tasks and contacts deleted at the source
    /// since the last pass (without it they are kept there, and the report counts them).
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
    if let Some(path) = &args.job {
        return run_job_file(&args, path).await;
    }
    if args.jobs.is_some() {
        bail!("--jobs goes with --job FILE.toml: one --from/--to pair is one account");
    }
    if args.sides.from.is_empty() || args.sides.to.is_empty() {
        bail!("name the accounts: --from URL and --to URL, or --job FILE.toml");
    }
    if is_dav_address(&args.sides.from) || is_dav_address(&args.sides.to) {
        return run_groupware_only(&args).await;
    }
    let (source, target) = args.sides.accounts()?;
    let groupware = args
        .sides
        .groupware_with_mail("cli", args.dry_run, &source, &target)?;
    let filters = args
        .sides
        .filters_with_mail("cli", args.dry_run, &source, &target)?;
    let mut options = CopyOptions::default();
    args.apply_flags(&mut options)?;
    let state_dir = args.state_dir()?;

    let progress = Arc::new(Progress::default());
    let ticker = spawn_progress(vec![progress.clone()], args.quiet);
    let budget = ConnectionBudget::new(options.per_host_cap, None);
    let result = run_account(
        source,
        target,
        options,
        &budget,
        &state_dir,
        progress,
        Parts { groupware, filters },
    )
    .await;
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
        write_json(path, &report_json(&report, trips)?)?;
    }
    Ok(exit_code([report.outcome()]))
}

impl MigrateArgs {
    /// Applies the flags given on the command line to `options` (for a job file: over its
    /// `[options]`); flags not given leave `options` as they are.
    fn apply_flags(&self, options: &mut CopyOptions) -> anyhow::Result<()> {
        options.timeout_seconds = self.sides.timeout;
        if let Some(n) = self.connections {
            options.connections = n.max(1);
        }
        if let Some(n) = self.per_host_connections {
            if n == 0 {
                bail!("--per-host-connections must be at least 1");
            }
            options.per_host_cap = n;
        }
        let mut folders = CopyOptions::default();
        self.folders.apply(&mut folders)?;
        if !folders.include.is_empty() {
            options.include = folders.include;
        }
        if !folders.exclude.is_empty() {
            options.exclude = folders.exclude;
        }
        if !folders.map.is_empty() {
            options.map = folders.map;
        }
        if let Some(size) = &self.max_size {
            options.max_message_size = Some(parse_size(size, "--max-size")?);
        }
        if let Some(rate) = &self.max_bandwidth {
            let rate = parse_size(rate, "--max-bandwidth")?;
            if rate == 0 {
                bail!("--max-bandwidth must be more than 0 bytes per second");
            }
            options.max_bandwidth = Some(rate);
        }
        if let Some(day) = &self.since {
            options.since = Some(parse_day(day, "--since")?);
        }
        if let Some(day) = &self.before {
            options.before = Some(parse_day(day, "--before")?);
        }
        options.dry_run |= self.dry_run;
        options.sync_deletes |= self.sync_deletes;
        options.compress |= self.compress;
        if self.no_subscriptions {
            options.subscriptions = false;
        }
        Ok(())
    }

    fn state_dir(&self) -> anyhow::Result<PathBuf> {
        match self.state_dir.clone() {
            Some(dir) => Ok(dir),
            None => default_state_dir(),
        }
    }
}

/// `migrate --from http(s)://... --to http(s)://...`: calendars and contacts alone, with a
/// state file of their own.
async fn run_groupware_only(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let mut job = args.sides.groupware_only("cli", args.dry_run)?;
    job.sync_deletes = args.sync_deletes;
    let state_dir = args.state_dir()?;
    let id = job_id(&job.source.describe(), &job.target.describe());
    let state_file = state_dir.join(format!("{id}.sqlite"));
    let _lock = lock_state(&state_file)?;
    let store = Store::open_sqlite(&state_file)
        .await
        .with_context(|| format!("cannot open the state database `{}`", state_file.display()))?;
    let progress = Progress::default();
    let report = copy_groupware(&job, &store, &progress).await;
    print_groupware(&report);
    println!(
        "\n{} copied or updated, {} failed in {:.1} s: {}",
        report.copied(),
        report.failed(),
        report.seconds,
        match report.outcome() {
            Outcome::Partial => "partial: see the failed objects above (each with the server's words), and run again to retry them",
            outcome => outcome_word(outcome),
        }
    );
    if let Some(path) = &args.report {
        let mut value = serde_json::to_value(&report)?;
        value["outcome"] = serde_json::to_value(report.outcome())?;
        write_json(path, &value)?;
    }
    Ok(exit_code([report.outcome()]))
}

/// What goes with an account's mail.
#[derive(Debug, Default)]
struct Parts {
    groupware: Option<GroupwareJob>,
    filters: Option<FiltersJob>,
}

/// One account's run with its own state file in `state_dir`; its groupware and filters
/// after the mail.
async fn run_account(
    source: Account,
    target: Account,
    mut options: CopyOptions,
    budget: &ConnectionBudget,
    state_dir: &Path,
    progress: Arc<Progress>,
    parts: Parts,
) -> anyhow::Result<(Report, RoundTrips)> {
    let Parts { groupware, filters } = parts;
    let id = job_id(&source.describe(), &target.describe());
    let state_file = state_dir.join(format!("{id}.sqlite"));
    options.spool_dir = Some(state_dir.to_path_buf());
    let _lock = lock_state(&state_file)?;
    let store = Store::open_sqlite(&state_file)
        .await
        .with_context(|| format!("cannot open the state database `{}`", state_file.display()))?;
    let job = Job {
        id: "cli".into(),
        source,
        target,
        options,
        budget: budget.clone(),
    };
    check_logins(&job, groupware.as_ref()).await?;
    let parts = mailferry_engine::AccountParts {
        groupware: groupware.as_ref(),
        filters: filters.as_ref(),
    };
    Ok(mailferry_engine::run_account(&job, parts, &store, progress).await?)
}

/// Every login of both accounts (IMAP, and CalDAV/CardDAV when calendars and contacts go
/// along) before anything runs, as the service checks them at submit: the same check, with
/// hints naming this command's flags.
async fn check_logins(job: &Job, groupware: Option<&GroupwareJob>) -> anyhow::Result<()> {
    use mailferry_engine::account::{check_account, Surface};
    use mailferry_engine::Side;
    let timeout = Duration::from_secs(job.options.timeout_seconds);
    let (source, target) = tokio::join!(
        check_account(
            Side::Source,
            &job.source,
            groupware.map(|g| &g.source),
            timeout,
            Surface::Cli
        ),
        check_account(
            Side::Target,
            &job.target,
            groupware.map(|g| &g.target),
            timeout,
            Surface::Cli
        ),
    );
    let failures: Vec<_> = [source.err(), target.err()]
        .into_iter()
        .flatten()
        .flatten()
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(crate::report::LoginFailed(failures).into())
    }
}

/// How one account of a job file ended.
struct AccountRun {
    index: usize,
    source: String,
    target: String,
    result: anyhow::Result<(Report, RoundTrips)>,
}

impl AccountRun {
    fn outcome(&self) -> Outcome {
        match &self.result {
            Ok((report, _)) => report.outcome(),
            Err(_) => Outcome::Failed,
        }
    }

    /// `alice@old -> alice@new: 120 copied, 0 already present, 0 failed (complete)`.
    fn summary(&self) -> String {
        let head = format!("{} -> {}", self.source, self.target);
        match &self.result {
            Err(error) => format!("{head}: failed: {error:#}"),
            Ok((report, _)) if report.dry_run => format!(
                "{head}: plan: {} messages, {} bytes in {} folders",
                report
                    .folders
                    .iter()
                    .map(|f| f.source_messages)
                    .sum::<u64>(),
                report.folders.iter().map(|f| f.source_bytes).sum::<u64>(),
                report.folders.len()
            ),
            Ok((report, _)) => {
                let skipped = match report.skipped() {
                    0 => String::new(),
                    n => format!("{n} skipped, "),
                };
                let groupware = match &report.groupware {
                    Some(g) => format!(
                        "; calendars and contacts: {} copied or updated, {} failed",
                        g.copied(),
                        g.failed()
                    ),
                    None => String::new(),
                };
                format!(
                    "{head}: {} copied, {} already present, {skipped}{} failed{groupware} ({})",
                    report.copied(),
                    report.already_present(),
                    report.failed(),
                    outcome_word(report.outcome())
                )
            }
        }
    }

    fn json(&self) -> anyhow::Result<serde_json::Value> {
        let mut value = match &self.result {
            Ok((report, trips)) => report_json(report, *trips)?,
            Err(error) => serde_json::json!({
                "source": self.source,
                "target": self.target,
                "outcome": Outcome::Failed,
                "error": format!("{error:#}"),
            }),
        };
        value["account"] = self.index.into();
        Ok(value)
    }
}

/// `migrate --job FILE`: every account of the file, up to `--jobs` at once.
async fn run_job_file(args: &MigrateArgs, path: &Path) -> anyhow::Result<ExitCode> {
    let flags = SideFlags {
        source_insecure: args.sides.insecure || args.sides.from_insecure,
        target_insecure: args.sides.insecure || args.sides.to_insecure,
        allow_plaintext: args.sides.allow_plaintext,
        no_groupware: args.sides.no_groupware,
        no_filters: args.sides.no_filters,
        timeout_seconds: args.sides.timeout,
    };
    if args.jobs == Some(0) {
        bail!("--jobs must be at least 1");
    }
    let file = job_file::load(path, flags)?;
    for warning in &file.warnings {
        eprintln!("warning: {warning}");
    }
    let mut options = file.options.clone();
    args.apply_flags(&mut options)?;
    let state_dir = args.state_dir()?;

    let slots = Arc::new(tokio::sync::Semaphore::new(args.jobs.unwrap_or(1)));
    // One budget for every account of the file: the per-host cap holds across them.
    let budget = ConnectionBudget::new(options.per_host_cap, None);
    let progresses: Vec<Arc<Progress>> = file
        .accounts
        .iter()
        .map(|_| Arc::new(Progress::default()))
        .collect();
    let ticker = spawn_progress(progresses.clone(), args.quiet);
    let mut tasks = tokio::task::JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for (account, progress) in file.accounts.into_iter().zip(progresses) {
        let (source, target) = (account.source.describe(), account.target.describe());
        let slots = slots.clone();
        let options = options.clone();
        let state_dir = state_dir.clone();
        let budget = budget.clone();
        let (groupware, filters) = (account.groupware, account.filters);
        let task = tasks.spawn(async move {
            let _slot = slots.acquire_owned().await;
            run_account(
                account.source,
                account.target,
                options,
                &budget,
                &state_dir,
                progress,
                Parts { groupware, filters },
            )
            .await
        });
        names.insert(task.id(), (account.index, source, target));
    }
    let mut runs = Vec::new();
    while let Some(joined) = tasks.join_next_with_id().await {
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            Err(error) => (error.id(), Err(anyhow::anyhow!("the run stopped: {error}"))),
        };
        let Some((index, source, target)) = names.remove(&id) else {
            continue;
        };
        let run = AccountRun {
            index,
            source,
            target,
            result,
        };
        println!("{}", run.summary());
        runs.push(run);
    }
    ticker.abort();
    let _ = ticker.await;

    runs.sort_by_key(|run| run.index);
    for run in &runs {
        println!();
        match &run.result {
            Ok((report, _)) => print_report(report),
            Err(error) => {
                println!("report: {} -> {}", run.source, run.target);
                println!("failed: {error:#}");
            }
        }
    }
    let count = |outcome| runs.iter().filter(|r| r.outcome() == outcome).count();
    println!(
        "\n{} accounts: {} complete, {} partial, {} failed",
        runs.len(),
        count(Outcome::Complete),
        count(Outcome::Partial),
        count(Outcome::Failed)
    );
    if let Some(path) = &args.report {
        let all = runs
            .iter()
            .map(AccountRun::json)
            .collect::<anyhow::Result<Vec<_>>>()?;
        write_json(path, &serde_json::Value::Array(all))?;
    }
    Ok(exit_code(runs.iter().map(AccountRun::outcome)))
}

/// 1 if anything failed, else 3 if anything is partial, else 0.
fn exit_code(outcomes: impl IntoIterator<Item = Outcome>) -> ExitCode {
    let outcomes: Vec<Outcome> = outcomes.into_iter().collect();
    if outcomes.contains(&Outcome::Failed) {
        ExitCode::from(1)
    } else if outcomes.contains(&Outcome::Partial) {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn outcome_word(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Complete => "complete",
        Outcome::Partial => "partial",
        Outcome::Failed => "failed",
    }
}

fn report_json(report: &Report, trips: RoundTrips) -> anyhow::Result<serde_json::Value> {
    let mut value = serde_json::to_value(report)?;
    value["outcome"] = serde_json::to_value(report.outcome())?;
    value["round_trips"] = serde_json::to_value(trips)?;
    value["peak_rss_bytes"] = peak_rss_bytes().into();
    Ok(value)
}

fn write_json(path: &Path, value: &serde_json::Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(value)?)
        .with_context(|| format!("cannot write the report to `{}`", path.display()))
}

/// The process's peak resident memory (Linux), for the report.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// One state file per pair of accounts, named so an admin can find it.
/// Takes the state's lock for the whole run (held until the returned file is dropped, and
/// by the system until the process ends, however it ends): two runs of one pair of accounts
/// at once could each copy a message the other has not recorded yet (issue 19).
fn lock_state(state_file: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = state_file.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the state directory `{}`", dir.display()))?;
    }
    let path = state_file.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open the state's lock file `{}`", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "another mailferry run is migrating this pair of accounts right now (its state `{}` is locked); wait until it has ended, or stop it: two runs at once could copy a message twice",
            state_file.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e)
            .with_context(|| format!("cannot lock the state's lock file `{}`", path.display())),
    }
}

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

/// `25M` and the like; `what` names the flag or key in the error.
pub(crate) fn parse_size(text: &str, what: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let (number, factor) = match text.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&text[..text.len() - 1], 1024),
        Some('M') => (&text[..text.len() - 1], 1024 * 1024),
        Some('G') => (&text[..text.len() - 1], 1024 * 1024 * 1024),
        _ => (text, 1),
    };
    let value: u64 = number.trim().parse().with_context(|| {
        format!("{what} `{text}` must be a number of bytes, optionally with K, M or G (e.g. 25M)")
    })?;
    value
        .checked_mul(factor)
        .with_context(|| format!("{what} `{text}` is too big"))
}

/// `YYYY-MM-DD` as Unix seconds (UTC midnight); `flag` names the flag or key in the error.
pub(crate) fn parse_day(text: &str, flag: &str) -> anyhow::Result<i64> {
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

/// The counters of all runs added up.
fn total_snapshot(progresses: &[Arc<Progress>]) -> ProgressSnapshot {
    let mut total = ProgressSnapshot::default();
    for s in progresses.iter().map(|p| p.snapshot()) {
        total.total_messages += s.total_messages;
        total.total_bytes += s.total_bytes;
        total.done_messages += s.done_messages;
        total.done_bytes += s.done_bytes;
        total.copied_messages += s.copied_messages;
        total.copied_bytes += s.copied_bytes;
        total.failed_messages += s.failed_messages;
        total.folders_total += s.folders_total;
        total.folders_done += s.folders_done;
    }
    total
}

fn spawn_progress(progresses: Vec<Arc<Progress>>, quiet: bool) -> tokio::task::JoinHandle<()> {
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
            let s = total_snapshot(&progresses);
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
    for note in &report.notes {
        println!("note: {note}");
    }
    if let Some(groupware) = &report.groupware {
        println!();
        print_groupware(groupware);
    }
    if let Some(filters) = &report.filters {
        println!();
        print_filters(filters);
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
                Outcome::Partial => "partial: see the skipped and failed messages, refused filters and problems above, and run again to retry failures",
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
        assert_eq!(parse_size("25M", "--max-size").unwrap(), 25 * 1024 * 1024);
        assert_eq!(parse_size("100", "--max-size").unwrap(), 100);
        assert!(parse_size("x", "--max-size")
            .unwrap_err()
            .to_string()
            .starts_with("--max-size `x`"));
        assert!(parse_size("99999999999G", "--max-bandwidth").is_err());
        assert_eq!(parse_day("1970-01-02", "--since").unwrap(), 86_400);
        assert!(parse_day("2024-13-01", "--since").is_err());
        assert_eq!(job_id("a@b:1", "c@d:2"), "a@b_1--c@d_2");
    }

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        migrate: MigrateArgs,
    }

    fn flags(args: &[&str]) -> CopyOptions {
        use clap::Parser;
        let cli =
            Cli::try_parse_from(std::iter::once("mailferry").chain(args.iter().copied())).unwrap();
        // As a job file's [options] would set them: flags not given must leave them alone.
        let mut options = CopyOptions {
            connections: 2,
            include: vec![regex::Regex::new("^INBOX").unwrap()],
            max_bandwidth: Some(1),
            ..CopyOptions::default()
        };
        cli.migrate.apply_flags(&mut options).unwrap();
        options
    }

    #[test]
    fn flags_override_only_what_they_name() {
        let kept = flags(&["--job", "x.toml"]);
        assert_eq!(kept.connections, 2);
        assert_eq!(kept.include.len(), 1);
        assert_eq!(kept.max_bandwidth, Some(1));
        assert_eq!(kept.per_host_cap, 16);

        let set = flags(&[
            "--from",
            "imap://a@h",
            "--to",
            "imap://b@h",
            "--max-bandwidth",
            "10M",
            "--per-host-connections",
            "3",
            "--connections",
            "6",
            "--exclude",
            "^Trash",
            "--timeout",
            "9",
        ]);
        assert_eq!(set.max_bandwidth, Some(10 * 1024 * 1024));
        assert_eq!(set.per_host_cap, 3);
        assert_eq!(set.connections, 6);
        assert_eq!(set.include.len(), 1);
        assert_eq!(set.exclude.len(), 1);
        assert_eq!(set.timeout_seconds, 9);
    }
}
