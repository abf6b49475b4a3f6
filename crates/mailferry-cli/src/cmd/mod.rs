//! The subcommands.

use std::process::ExitCode;

use clap::Subcommand;

pub mod endpoint_args;
pub mod job_file;
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
        }
    }
}
