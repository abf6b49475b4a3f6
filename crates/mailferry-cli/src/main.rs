//! `mailferry`: moves mail accounts from one server to another.
//!
//! # Layout
//! - `cmd/`: one file per subcommand, each with its clap struct and one `run`.
//! - `credentials`: where passwords and tokens come from (environment, file, prompt).
//! - `report`: how errors are printed: what failed, the causes, and a hint.

mod cmd;
mod config_file;
mod credentials;
mod report;

use std::process::ExitCode;

use clap::Parser;

/// mailferry moves e-mail accounts between servers: folders, messages, flags and dates.
#[derive(Debug, Parser)]
#[command(name = "mailferry", version, about, long_about = None)]
struct Cli {
    /// More detail in logs (-v info, -vv debug); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: cmd::Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logs(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(cli.command.run()) {
        Ok(code) => code,
        Err(error) => {
            report::print_error(&error);
            ExitCode::from(1)
        }
    }
}

fn init_logs(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info,mailferry=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILFERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
