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

use clap::{CommandFactory, Parser, ValueEnum};

/// The version and the commit it was built from.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("MAILFERRY_COMMIT"),
    ")"
);

/// mailferry moves e-mail accounts between servers: folders, messages, flags and dates.
#[derive(Debug, Parser)]
#[command(name = "mailferry", version = VERSION, about, long_about = None)]
struct Cli {
    /// More detail in logs (-v info, -vv debug); logs go to stderr.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// How logs are written: `text` for people, `json` (one object per line) for log
    /// collectors.
    #[arg(
        long,
        value_enum,
        default_value = "text",
        global = true,
        env = "MAILFERRY_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: cmd::Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        cmd::Command::Completions { shell } => {
            let mut command = Cli::command();
            clap_complete::generate(*shell, &mut command, "mailferry", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        cmd::Command::Man { dir } => {
            let written = match dir {
                None => clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()),
                Some(dir) => man_pages(dir),
            };
            return match written {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write the man pages: {e}");
                    ExitCode::from(1)
                }
            };
        }
        _ => {}
    }
    init_logs(cli.verbose, cli.log_format);
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

/// `mailferry.1` and one page per subcommand (`mailferry-migrate.1`, ...) in `dir`.
fn man_pages(dir: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let command = Cli::command();
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(dir.join("mailferry.1"), page)?;
    for sub in command.get_subcommands() {
        let name = format!("mailferry-{}", sub.get_name());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub.clone().name(name.clone())).render(&mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
    }
    Ok(())
}

fn init_logs(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info,mailferry=info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MAILFERRY_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}
