//! `mailferry licence`: the operator's key pair (`keygen`), licence keys issued with it
//! (`issue`), and a service's keys and allowance (`add`, `list`, in the local data
//! directory).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use mailferry_service::licence::{
    add_key, allowance, issue, new_key_pair, parse_signing_key, Licence, LicenceError,
    MAX_KEY_MIGRATIONS,
};
use mailferry_service::times::show_time;

use super::serve::{config, layer_file, open, DataArgs, WorkerArgs};

#[derive(Debug, Subcommand)]
pub enum LicenceCommand {
    /// Make the operator's key pair: the signing key goes to FILE (mode 0600), the public
    /// key is printed, for each service's MAILFERRY_LICENCE_PUBLIC_KEY.
    Keygen {
        /// Where to write the signing key; an existing file is not overwritten.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Issue a licence key worth COUNT migrations, signed with the signing key.
    Issue {
        /// Migrations the key adds (5, 10, 25, 50, 100, ...).
        #[arg(long, value_name = "COUNT")]
        count: u64,
        /// Who the key is for, e.g. "Example Hosting".
        #[arg(long, value_name = "NAME")]
        to: String,
        /// The signing key file from `mailferry licence keygen`.
        #[arg(long, value_name = "FILE")]
        signing_key: PathBuf,
        /// The key's id (default: a new random one).
        #[arg(long, value_name = "ID")]
        id: Option<String>,
    },
    /// Add a licence key to this service.
    Add {
        /// The key, as issued (`mfl1.`...).
        key: String,
        #[command(flatten)]
        service: ServiceArgs,
    },
    /// The allowance (remaining of total) and the keys added.
    List {
        #[command(flatten)]
        service: ServiceArgs,
    },
}

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub workers: WorkerArgs,
}

pub async fn run(command: LicenceCommand) -> anyhow::Result<ExitCode> {
    match command {
        LicenceCommand::Keygen { out } => {
            let (file, public) = new_key_pair();
            write_new_secret(&out, file.as_bytes())?;
            println!("{public}");
            eprintln!(
                "signing key written to `{}`: keep it secret, it mints migrations. Give each service the public key above as MAILFERRY_LICENCE_PUBLIC_KEY.",
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        LicenceCommand::Issue {
            count,
            to,
            signing_key,
            id,
        } => {
            if !(1..=MAX_KEY_MIGRATIONS).contains(&count) {
                bail!("--count {count}: a key carries 1 to {MAX_KEY_MIGRATIONS} migrations");
            }
            if to.trim().is_empty() {
                bail!("--to is empty: name who the key is for");
            }
            let text = std::fs::read_to_string(&signing_key).with_context(|| {
                format!("cannot read the signing key `{}`", signing_key.display())
            })?;
            let signing = parse_signing_key(&text)
                .map_err(|e| anyhow::anyhow!("`{}`: {e}", signing_key.display()))?;
            let licence = Licence {
                id: id
                    .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()[..16].to_string()),
                migrations: count,
                issued_to: to.trim().to_string(),
                issued_at: mailferry_service::now(),
            };
            println!("{}", issue(&signing, &licence));
            Ok(ExitCode::SUCCESS)
        }
        LicenceCommand::Add { key, mut service } => {
            layer_file(&mut service.data, Some(&mut service.workers), None)?;
            let (dir, store, _) = open(&service.data).await?;
            let config = config(dir, &service.workers)?;
            match add_key(
                &store,
                &config.licence_public_key,
                &key,
                mailferry_service::now(),
            )
            .await
            {
                Ok(licence) => {
                    let now = allowance(&store).await?;
                    println!(
                        "added key {} for {} migrations ({}); allowance: {} of {} left",
                        licence.id, licence.migrations, licence.issued_to, now.remaining, now.total
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(LicenceError::Store(e)) => Err(e).context("the database failed"),
                Err(e) => bail!("{e}"),
            }
        }
        LicenceCommand::List { mut service } => {
            layer_file(&mut service.data, Some(&mut service.workers), None)?;
            let (dir, store, _) = open(&service.data).await?;
            let config = config(dir, &service.workers)?;
            let now = allowance(&store).await?;
            println!(
                "allowance: {} of {} left ({} free + {} from keys; {} used)",
                now.remaining, now.total, now.free, now.licensed, now.used
            );
            for key in store.licence_keys().await? {
                println!(
                    "key {}: {} migrations, issued to {} on {}, added {}",
                    key.id,
                    key.migrations,
                    key.issued_to,
                    show_time(key.issued_at, &config.time_zone),
                    show_time(key.added_at, &config.time_zone)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes a new file readable by its owner only; never replaces one.
fn write_new_secret(path: &PathBuf, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "cannot create `{}` (an existing signing key is never overwritten)",
            path.display()
        )
    })?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write `{}`", path.display()))
}
