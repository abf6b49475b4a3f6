//! The subcommands.

use std::process::ExitCode;

use clap::Subcommand;

pub mod batch;
pub mod doctor;
pub mod endpoint_args;
pub mod filters;
pub mod groupware;
pub mod job_file;
pub mod licence;
pub mod migrate;
pub mod probe;
pub mod serve;
pub mod sides;
pub mod verify;

#[derive(Debug, Subcommand)]
pub enum Command {
    Probe(probe::ProbeArgs),
    Migrate(Box<migrate::MigrateArgs>),
    Verify(verify::VerifyArgs),
    Serve(serve::ServeArgs),
    Worker(serve::WorkerOnlyArgs),
    #[command(subcommand)]
    Token(serve::TokenCommand),
    /// Mass migration lists: check, submit, template.
    #[command(subcommand)]
    Batch(batch::BatchCommand),
    /// Licence keys and the migration allowance.
    #[command(subcommand)]
    Licence(licence::LicenceCommand),
    /// Checks a data directory, its database and sealing key, and the servers of the
    /// migrations waiting or running; says what is wrong and what to do.
    Doctor(doctor::DoctorArgs),
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff) of mailferry; with --dir, writes one page per subcommand
    /// there too (mailferry.1, mailferry-migrate.1, ...).
    Man {
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

impl Command {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Probe(args) => probe::run(args).await,
            Command::Migrate(args) => migrate::run(*args).await,
            Command::Verify(args) => verify::run(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Worker(args) => serve::worker_only(args).await,
            Command::Token(command) => serve::token(command).await,
            Command::Batch(command) => batch::run(command).await,
            Command::Licence(command) => licence::run(command).await,
            Command::Doctor(args) => doctor::run(args).await,
            // Answered in main, which holds the whole command tree.
            Command::Completions { .. } | Command::Man { .. } => Ok(ExitCode::SUCCESS),
        }
    }
}
