//! The subcommands.

use std::process::ExitCode;

use clap::Subcommand;

pub mod batch;
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
        }
    }
}
