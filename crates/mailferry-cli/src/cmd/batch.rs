//! `mailferry batch`: mass migration lists. `check` runs the formal check, then every
//! line's logins (unless `--formal-only`), and submits nothing; `submit` hands the list to a
//! running service (`--api URL`, with a token) or stores it straight into the local data
//! directory; `template` prints a list to start from. Both `check` and `submit` print one
//! line per problem (line, field, the value with passwords masked, what is expected).
//!
//! Exit codes: 0 clean / all submitted; 3 submitted, but some lines' logins failed (named);
//! 1 nothing submitted (formal errors, every login failed, allowance, or an error).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use mailferry_service::batch::{check_report, submit_list, ListFormat, ListRefused};
use mailferry_service::licence::{allowance, short_message, SHORT_HINT};
use mailferry_service::AppState;
use serde_json::{json, Value};

use super::serve::{config, layer_file, open, DataArgs, WorkerArgs};

#[derive(Debug, Subcommand)]
pub enum BatchCommand {
    /// Check a list: every line and field, duplicates, then every line's logins. Submits
    /// nothing. Exit 0 only when the list is clean.
    Check(CheckArgs),
    /// Submit a list: checked first; lines whose logins fail are named and left out; the
    /// others are stored together, within the allowance.
    Submit(SubmitArgs),
    /// Print a template list (comments and one example line).
    Template,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    /// Read off the first line with data: 12 fields or 6.
    Auto,
    /// source.type;source.email;source.username;source.password;source.server;target.type;...;startdate;resyncdate
    Mailferry,
    /// host1;user1;password1;host2;user2;password2
    Imapsync,
}

impl FormatArg {
    fn format(self) -> Option<ListFormat> {
        match self {
            FormatArg::Auto => None,
            FormatArg::Mailferry => Some(ListFormat::Mailferry),
            FormatArg::Imapsync => Some(ListFormat::Imapsync),
        }
    }
    fn name(self) -> &'static str {
        match self {
            FormatArg::Auto => "auto",
            FormatArg::Mailferry => "mailferry",
            FormatArg::Imapsync => "imapsync",
        }
    }
}

/// Where a list goes: a running service's API, or the local data directory.
#[derive(Debug, Args)]
pub struct Target {
    /// A running service, e.g. http://127.0.0.1:8080 (else: the local data directory).
    #[arg(long, value_name = "URL", env = "MAILFERRY_API")]
    pub api: Option<String>,
    /// The service's API token (`mailferry token create`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "MAILFERRY_API_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub workers: WorkerArgs,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The list: UTF-8, LF or CRLF, `-` for standard input.
    pub file: PathBuf,
    /// Only the formal check: no logins are tried.
    #[arg(long)]
    pub formal_only: bool,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Print the check as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The list: UTF-8, LF or CRLF, `-` for standard input.
    pub file: PathBuf,
    #[arg(long, value_enum, default_value = "auto")]
    pub format: FormatArg,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub target: Target,
}

pub async fn run(command: BatchCommand) -> anyhow::Result<ExitCode> {
    match command {
        BatchCommand::Check(args) => check(args).await,
        BatchCommand::Submit(args) => submit(args).await,
        BatchCommand::Template => {
            print!("{}", mailferry_service::batch::TEMPLATE);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn read_list(path: &PathBuf) -> anyhow::Result<String> {
    let bytes = if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut bytes)
            .context("cannot read the list from standard input")?;
        bytes
    } else {
        std::fs::read(path).with_context(|| format!("cannot read the list `{}`", path.display()))?
    };
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "the list `{}` is not UTF-8 (byte {} is not): save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to() + 1
        )
    })
}

async fn local_state(target: &mut Target) -> anyhow::Result<std::sync::Arc<AppState>> {
    layer_file(&mut target.data, Some(&mut target.workers), None)?;
    let (dir, store, sealer) = open(&target.data).await?;
    let config = config(dir, &target.workers)?;
    Ok(AppState::new(store, sealer, config))
}

/// Posts the list to the service's API; the JSON answer and its status.
async fn post(target: &Target, path: &str, list: String) -> anyhow::Result<(u16, Value)> {
    let api = target
        .api
        .as_deref()
        .unwrap_or_default()
        .trim_end_matches('/');
    let Some(token) = &target.token else {
        bail!("--api needs a token: give --token or MAILFERRY_API_TOKEN (make one with `mailferry token create` on the service's machine)");
    };
    let response = reqwest::Client::new()
        .post(format!("{api}{path}"))
        .bearer_auth(token)
        .header("content-type", "text/plain; charset=utf-8")
        .body(list)
        .send()
        .await
        .with_context(|| {
            format!("cannot reach the service at {api}: is it running, and is the URL right?")
        })?;
    let status = response.status().as_u16();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("the service at {api} did not answer with JSON"))?;
    if status == 401 {
        bail!(
            "the service at {api} refused the token: make a new one with `mailferry token create`"
        );
    }
    Ok((status, body))
}

/// One line of text per problem of a check (as the API shows it), and per failed login.
fn print_check(check: &Value) {
    let lines = check["lines"].as_array().map_or(0, Vec::len);
    println!(
        "list: {lines} lines with data ({} format)",
        check["format"].as_str().unwrap_or("?")
    );
    for problem in check["problems"].as_array().into_iter().flatten() {
        println!("{}", problem.as_str().unwrap_or_default());
    }
    print_logins(&check["logins"]["failed"]);
}

fn print_logins(failed: &Value) {
    for f in failed.as_array().into_iter().flatten() {
        let reasons: Vec<String> = f["reasons"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                let hint = r["hint"]
                    .as_str()
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                format!(
                    "{}: {}{hint}",
                    r["side"].as_str().unwrap_or("?").to_lowercase(),
                    r["reason"].as_str().unwrap_or("?")
                )
            })
            .collect();
        println!(
            "line {}: login failed on the {} side: {}",
            f["line"],
            f["side"].as_str().unwrap_or("?"),
            reasons.join("; ")
        );
    }
}

async fn check(mut args: CheckArgs) -> anyhow::Result<ExitCode> {
    let list = read_list(&args.file)?;
    let report = if args.target.api.is_some() {
        let path = format!(
            "/api/v1/lists/check?credentials={}&format={}",
            !args.formal_only,
            args.format.name()
        );
        let (status, body) = post(&args.target, &path, list).await?;
        if status != 200 {
            bail!(
                "the service refused the check: {}",
                body["error"].as_str().unwrap_or("?")
            );
        }
        body
    } else {
        let state = local_state(&mut args.target).await?;
        check_report(
            &state.store,
            &list,
            args.format.format(),
            !args.formal_only,
            &state.config,
            mailferry_service::now(),
        )
        .await?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_check(&report);
    }
    if report["clean"] == json!(true) {
        if !args.json {
            println!(
                "clean: every line is well formed{}",
                if args.formal_only {
                    " (logins not tried: --formal-only)"
                } else {
                    " and logs in on both sides"
                }
            );
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: the list is not clean: correct the lines named above and check again");
        Ok(ExitCode::from(1))
    }
}

async fn submit(mut args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let list = read_list(&args.file)?;
    let (outcome, refused) = if args.target.api.is_some() {
        let path = format!("/api/v1/lists?format={}", args.format.name());
        let (status, body) = post(&args.target, &path, list).await?;
        if status == 201 {
            (body, None)
        } else {
            (body.clone(), Some(body))
        }
    } else {
        let state = local_state(&mut args.target).await?;
        match submit_list(
            &state,
            &list,
            args.format.format(),
            mailferry_service::now(),
        )
        .await
        {
            Ok(outcome) => {
                let mut out = serde_json::to_value(&outcome)?;
                out["allowance"] = json!(allowance(&state.store).await?);
                (out, None)
            }
            Err(ListRefused::Formal(formal)) => {
                let body = json!({
                    "error": format!("the list has {} problems; nothing was submitted", formal.problems().len()),
                    "report": formal.to_json(),
                });
                (body.clone(), Some(body))
            }
            Err(ListRefused::Allowance { short, failed }) => {
                let body = json!({
                    "error": short_message(short),
                    "hint": SHORT_HINT,
                    "remaining": short.remaining,
                    "report": { "logins": { "failed": failed } },
                });
                (body.clone(), Some(body))
            }
            Err(ListRefused::Store(e)) => return Err(e).context("the database failed"),
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    if let Some(refused) = refused {
        if !args.json {
            if refused["report"]["lines"].is_array() {
                print_check(&refused["report"]);
            } else {
                print_logins(&refused["report"]["logins"]["failed"]);
            }
        }
        eprintln!(
            "error: {}",
            refused["error"].as_str().unwrap_or("the list was refused")
        );
        if let Some(hint) = refused["hint"].as_str() {
            eprintln!("hint: {hint}");
        }
        return Ok(ExitCode::from(1));
    }
    let submitted = outcome["submitted"].as_array().map_or(0, Vec::len);
    let failed = outcome["failed"].as_array().map_or(0, Vec::len);
    if !args.json {
        print_logins(&outcome["failed"]);
        println!(
            "submitted {submitted} migrations; {failed} lines left out because a login failed; allowance: {} of {} left",
            outcome["allowance"]["remaining"], outcome["allowance"]["total"]
        );
    }
    Ok(match (submitted, failed) {
        (_, 0) => ExitCode::SUCCESS,
        (0, _) => ExitCode::from(1),
        _ => ExitCode::from(3),
    })
}
