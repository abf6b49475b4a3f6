//! `mailferry verify`: compares source and target independently of any state: every message
//! of every folder hashed on both sides. Exit 0 only when nothing differs.

use std::process::ExitCode;

use clap::Args;
use mailferry_engine::filters::{verify_filters, FiltersJob};
use mailferry_engine::groupware::verify_groupware;
use mailferry_engine::verify::verify;
use mailferry_engine::CopyOptions;

use super::filters::print_filters_verify;
use super::groupware::{is_dav_address, print_groupware_verify};
use super::sides::{FolderArgs, SidesArgs};

/// Compare source and target: missing, duplicated, changed messages, flags and dates.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub sides: SidesArgs,
    #[command(flatten)]
    pub folders: FolderArgs,
    /// Print the differences as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    if is_dav_address(&args.sides.from) || is_dav_address(&args.sides.to) {
        let job = args.sides.groupware_only("verify", false)?;
        let report = verify_groupware(&job).await;
        if args.json {
            let mut value = serde_json::to_value(&report)?;
            value["differences"] = report.differences().into();
            println!("{}", serde_json::to_string_pretty(&value)?);
        } else {
            print_groupware_verify(&report);
            println!("\n{} differences", report.differences());
        }
        return Ok(exit_code(report.differences()));
    }
    let (source, target) = args.sides.accounts()?;
    let groupware = args
        .sides
        .groupware_with_mail("verify", false, &source, &target)?;
    let filters = args
        .sides
        .filters_with_mail("verify", false, &source, &target)?;
    let mut options = CopyOptions {
        timeout_seconds: args.sides.timeout,
        ..CopyOptions::default()
    };
    args.folders.apply(&mut options)?;
    let report = verify(&source, &target, &options).await?;
    let groupware = match &groupware {
        Some(job) => Some(verify_groupware(job).await),
        None => None,
    };
    let filters = match filters {
        Some(job) => Some(
            verify_filters(&FiltersJob {
                rewrite: report.folder_rewrite.clone(),
                ..job
            })
            .await,
        ),
        None => None,
    };
    let differences = report.differences()
        + groupware.as_ref().map_or(0, |g| g.differences())
        + filters.as_ref().map_or(0, |f| f.differences());
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        value["differences"] = differences.into();
        if let Some(groupware) = &groupware {
            value["groupware"] = serde_json::to_value(groupware)?;
        }
        if let Some(filters) = &filters {
            value["filters"] = serde_json::to_value(filters)?;
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
    } else {
        println!("verify: {} against {}", report.source, report.target);
        for f in &report.folders {
            let status = if f.count() == 0 {
                "same".to_string()
            } else {
                format!("{} differences", f.count())
            };
            println!(
                "{} -> {}: {} / {} messages, {status}",
                f.source, f.target, f.source_messages, f.target_messages
            );
            if !f.missing.is_empty() {
                println!("    missing on the target: source UIDs {:?}", f.missing);
            }
            if !f.duplicated.is_empty() {
                println!(
                    "    more than once on the target: target UIDs {:?}",
                    f.duplicated
                );
            }
            for (s, t) in &f.not_identical {
                println!("    not byte-identical: source UID {s}, target UID {t}");
            }
            for (s, t, a, b) in &f.other_flags {
                println!("    other flags: source UID {s} ({a}), target UID {t} ({b})");
            }
            for (s, t, a, b) in &f.other_date {
                println!("    other internal date: source UID {s} ({a}), target UID {t} ({b})");
            }
            if f.only_on_target > 0 {
                println!(
                    "    {} messages only on the target (not an error)",
                    f.only_on_target
                );
            }
            if let Some(e) = &f.error {
                println!("    error: {e}");
            }
        }
        if let Some(groupware) = &groupware {
            println!();
            print_groupware_verify(groupware);
        }
        if let Some(filters) = &filters {
            println!();
            print_filters_verify(filters);
        }
        println!("\n{differences} differences");
    }
    Ok(exit_code(differences))
}

fn exit_code(differences: usize) -> ExitCode {
    if differences == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    }
}
