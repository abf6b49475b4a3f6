//! The subcommands.

use std::process::ExitCode;

use clap::Subcommand;

pub mod endpoint_args;
pub mod probe;

#[derive(Debug, Subcommand)]
pub enum Command {
    Probe(probe::ProbeArgs),
}

impl Command {
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        match self {
            Command::Probe(args) => probe::run(args).await,
        }
    }
}
