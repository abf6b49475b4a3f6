//! `mailferry serve`: the service (REST API, scheduler and workers) on an embedded SQLite
//! database in the data directory, or a shared PostgreSQL (`--database-url`). The first
//! start prints a one-time admin password unless `MAILFERRY_ADMIN_PASSWORD` is set.
//! `mailferry worker`: workers only, joining a shared PostgreSQL to scale out.
//! `mailferry token create`: an API token for scripts.
//! All three read the settings file (`--config`, default `mailferry.toml` in the data
//! directory; see `config_file`) under the environment and the flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use mailferry_service::api::{hash_password, new_token, token_hash};
use mailferry_service::{worker, AppState, Sealer, ServiceConfig};
use mailferry_store::Store;
use tokio::sync::watch;

use crate::config_file;

/// Where the service keeps its data, and which database it uses.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The settings file (flat TOML; keys as named under each flag). An unknown key is a
    /// warning, a value of the wrong type an error. Default: `mailferry.toml` in the data
    /// directory, if it exists.
    #[arg(long, value_name = "FILE", env = "MAILFERRY_CONFIG")]
    pub config: Option<PathBuf>,
    /// The data directory: database, key file, settings file. Default: $XDG_DATA_HOME/mailferry
    /// or ~/.local/share/mailferry. File key: `data_dir` (relative to the file's directory).
    #[arg(long, value_name = "DIR", env = "MAILFERRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A shared PostgreSQL (postgres://user:password@host/db) instead of the embedded SQLite;
    /// needed for `mailferry worker` processes on other machines. File key: `database_url`.
    #[arg(
        long,
        value_name = "URL",
        env = "MAILFERRY_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

const DEFAULT_WORKERS: usize = 2;
const DEFAULT_CONNECTIONS: usize = 2;
const DEFAULT_PER_HOST_CONNECTIONS: usize = 16;
const DEFAULT_LEASE_SECONDS: u64 = 60;
const DEFAULT_POLL_MS: u64 = 2000;
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The settings file, for `--help`.
const SETTINGS_HELP: &str = "\
Settings come from, weakest first: built-in defaults, the settings file (--config, default
mailferry.toml in the data directory), MAILFERRY_* environment variables, flags. The file is
flat TOML; each option above names its key: data_dir, listen (serve only), database_url,
workers, connections, per_host_connections, max_passes_per_host, lease_seconds, poll_ms,
time_zone, no_insecure.
An unknown key is a warning; a value of the wrong type is an error. Example:

  listen = \"0.0.0.0:8080\"
  database_url = \"postgres://mailferry@db.example/mailferry\"
  workers = 4
  time_zone = \"Europe/Berlin\"";

/// How workers run. The fields are `None` where neither flag nor environment said anything:
/// the settings file fills those, then the defaults.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Migration passes running at once in this process. Default: 2. File key: `workers`.
    #[arg(long, value_name = "N", env = "MAILFERRY_WORKERS")]
    pub workers: Option<usize>,
    /// Connections per side for each migration. Default: 2. File key: `connections`.
    #[arg(long, value_name = "N", env = "MAILFERRY_CONNECTIONS_PER_MIGRATION")]
    pub connections: Option<usize>,
    /// Cap on connections per mail host across all migrations of this process. Default: 16.
    /// File key: `per_host_connections`.
    #[arg(long, value_name = "N", env = "MAILFERRY_PER_HOST_CONNECTIONS")]
    pub per_host_connections: Option<usize>,
    /// Cap on passes running at once against any one mail server, over every worker
    /// process of the database (counted in the database, so it holds across machines).
    /// Default: 0, no cap. File key: `max_passes_per_host`.
    #[arg(long, value_name = "N", env = "MAILFERRY_MAX_PASSES_PER_HOST")]
    pub max_passes_per_host: Option<usize>,
    /// Seconds a worker's claim on a migration lasts without renewal; after a crash the job
    /// is taken over once it expires. Default: 60. File key: `lease_seconds`.
    #[arg(long, value_name = "SECONDS", env = "MAILFERRY_LEASE_SECONDS")]
    pub lease_seconds: Option<u64>,
    /// How often idle workers look for due migrations, in milliseconds. Default: 2000.
    /// File key: `poll_ms`.
    #[arg(long, value_name = "MS", env = "MAILFERRY_POLL_MS")]
    pub poll_ms: Option<u64>,
    /// The time zone entered start and resync times are read in (IANA name, e.g.
    /// Europe/Berlin). Default: the system's. File key: `time_zone`.
    #[arg(long, value_name = "ZONE", env = "MAILFERRY_TIME_ZONE")]
    pub time_zone: Option<String>,
    /// Refuse submissions that ask for unverified certificates (`source.insecure`).
    /// `--no-insecure=false` turns it off again. Default: false. File key: `no_insecure`.
    #[arg(
        long,
        value_name = "BOOL",
        env = "MAILFERRY_NO_INSECURE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub no_insecure: Option<bool>,
    /// The operator's licence public key: licence keys must be signed with its signing key.
    /// Default: the lab key pair's (docs/licence-lab-signing.key), which anyone can sign
    /// with. File key: `licence_public_key`.
    #[arg(long, value_name = "KEY", env = "MAILFERRY_LICENCE_PUBLIC_KEY")]
    pub licence_public_key: Option<String>,
}

/// Run the service: web API, scheduler and workers.
#[derive(Debug, Args)]
#[command(after_help = SETTINGS_HELP)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub workers: WorkerArgs,
    /// Address to listen on. Default: 127.0.0.1:8080. File key: `listen`.
    #[arg(long, value_name = "ADDR", env = "MAILFERRY_LISTEN")]
    pub listen: Option<SocketAddr>,
}

/// Run workers only, against a shared PostgreSQL (`--database-url`).
#[derive(Debug, Args)]
#[command(after_help = SETTINGS_HELP)]
pub struct WorkerOnlyArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub workers: WorkerArgs,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make an API token; it is printed once.
    Create {
        /// What the token is for, e.g. the script's name.
        #[arg(long, default_value = "api")]
        name: String,
        #[command(flatten)]
        data: DataArgs,
    },
}

pub(crate) fn data_dir(args: &DataArgs) -> anyhow::Result<PathBuf> {
    if let Some(dir) = &args.data_dir {
        return Ok(dir.clone());
    }
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir).join("mailferry"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local/share/mailferry")),
        None => bail!("no data directory: set --data-dir or MAILFERRY_DATA_DIR"),
    }
}

/// Puts the settings file under the flags and environment: every setting they left open
/// (`None`) takes the file's value. Which file: `--config`/`MAILFERRY_CONFIG` (it must
/// exist), else `mailferry.toml` in the data directory if there is one.
pub(crate) fn layer_file(
    data: &mut DataArgs,
    workers: Option<&mut WorkerArgs>,
    listen: Option<&mut Option<SocketAddr>>,
) -> anyhow::Result<()> {
    let path = match &data.config {
        Some(path) => path.clone(),
        None => match data_dir(data) {
            Ok(dir) if dir.join(config_file::DEFAULT_NAME).is_file() => {
                dir.join(config_file::DEFAULT_NAME)
            }
            _ => return Ok(()),
        },
    };
    let file = config_file::load(&path)?;
    tracing::info!(file = %path.display(), "settings file read");
    fill(&mut data.data_dir, file.data_dir);
    fill(&mut data.database_url, file.database_url);
    if let Some(args) = workers {
        fill(&mut args.workers, file.workers);
        fill(&mut args.connections, file.connections);
        fill(&mut args.per_host_connections, file.per_host_connections);
        fill(&mut args.max_passes_per_host, file.max_passes_per_host);
        fill(&mut args.lease_seconds, file.lease_seconds);
        fill(&mut args.poll_ms, file.poll_ms);
        fill(&mut args.time_zone, file.time_zone);
        fill(&mut args.no_insecure, file.no_insecure);
        fill(&mut args.licence_public_key, file.licence_public_key);
    }
    if let Some(listen) = listen {
        fill(listen, file.listen);
    }
    Ok(())
}

fn fill<T>(slot: &mut Option<T>, from_file: Option<T>) {
    if slot.is_none() {
        *slot = from_file;
    }
}

pub(crate) async fn open(args: &DataArgs) -> anyhow::Result<(PathBuf, Store, Sealer)> {
    let dir = data_dir(args)?;
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the data directory `{}`", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
    }
    let store = match &args.database_url {
        Some(url) => Store::connect(url)
            .await
            .context("cannot open the database")?,
        None => Store::open_sqlite(&dir.join("mailferry.sqlite"))
            .await
            .context("cannot open the database")?,
    };
    let sealer = Sealer::load_or_create(&dir.join("secret.key"))
        .context("cannot load the key that protects stored credentials")?;
    Ok((dir, store, sealer))
}

pub(crate) fn config(dir: PathBuf, args: &WorkerArgs) -> anyhow::Result<ServiceConfig> {
    let mut config = ServiceConfig::new(dir);
    config.workers = args.workers.unwrap_or(DEFAULT_WORKERS).max(1);
    config.connections_per_migration = args.connections.unwrap_or(DEFAULT_CONNECTIONS).max(1);
    config.per_host_connections = args
        .per_host_connections
        .unwrap_or(DEFAULT_PER_HOST_CONNECTIONS)
        .max(1);
    config.max_passes_per_host = args.max_passes_per_host.unwrap_or(0);
    config.lease = Duration::from_secs(args.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS).max(1));
    config.poll_interval = Duration::from_millis(args.poll_ms.unwrap_or(DEFAULT_POLL_MS).max(50));
    config.allow_insecure = !args.no_insecure.unwrap_or(false);
    match &args.licence_public_key {
        Some(key) => {
            config.licence_public_key = mailferry_service::licence::parse_public_key(key)
                .map_err(|e| anyhow::anyhow!("--licence-public-key / MAILFERRY_LICENCE_PUBLIC_KEY: {e}"))?;
        }
        None => tracing::warn!("licence keys are checked against the LAB public key, which anyone can sign with: set MAILFERRY_LICENCE_PUBLIC_KEY to your own (`mailferry licence keygen`)"),
    }
    if let Some(zone) = &args.time_zone {
        config.time_zone = jiff::tz::TimeZone::get(zone).with_context(|| {
            format!("`{zone}` is not a time zone: use an IANA name such as Europe/Berlin or UTC")
        })?;
    }
    Ok(config)
}

/// A channel that turns true on Ctrl-C or SIGTERM.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (sender, receiver) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(term) => term,
                    Err(_) => {
                        let _ = ctrl_c.await;
                        let _ = sender.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutting down: running passes get a moment to finish");
        let _ = sender.send(true);
    });
    receiver
}

pub async fn serve(mut args: ServeArgs) -> anyhow::Result<ExitCode> {
    layer_file(
        &mut args.data,
        Some(&mut args.workers),
        Some(&mut args.listen),
    )?;
    let listen = match args.listen {
        Some(listen) => listen,
        None => DEFAULT_LISTEN.parse().context("the default address")?,
    };
    let (dir, store, sealer) = open(&args.data).await?;
    ensure_admin(&store).await?;
    let config = config(dir, &args.workers)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    println!(
        "mailferry {} listening on http://{address}/  (API under /api/v1, time zone {})",
        env!("CARGO_PKG_VERSION"),
        config.time_zone_name()
    );
    let workers = config.workers;
    let state = AppState::new(store, sealer, config);
    let shutdown = shutdown_signal();
    let workers = tokio::spawn(worker::run_workers(
        state.clone(),
        workers,
        shutdown.clone(),
    ));
    let mut http_shutdown = shutdown.clone();
    mailferry_service::serve(listener, state, async move {
        while !*http_shutdown.borrow() {
            if http_shutdown.changed().await.is_err() {
                break;
            }
        }
    })
    .await
    .context("the web server failed")?;
    let _ = workers.await;
    Ok(ExitCode::SUCCESS)
}

pub async fn worker_only(mut args: WorkerOnlyArgs) -> anyhow::Result<ExitCode> {
    layer_file(&mut args.data, Some(&mut args.workers), None)?;
    if args.data.database_url.is_none() {
        bail!("`mailferry worker` joins a shared database: give --database-url postgres://... (the same as the service's); on one machine, `mailferry serve` runs workers itself");
    }
    let (dir, store, sealer) = open(&args.data).await?;
    let config = config(dir, &args.workers)?;
    println!(
        "mailferry worker: {} workers on the shared database",
        config.workers
    );
    let workers = config.workers;
    let state = AppState::new(store, sealer, config);
    worker::run_workers(state, workers, shutdown_signal()).await;
    Ok(ExitCode::SUCCESS)
}

pub async fn token(command: TokenCommand) -> anyhow::Result<ExitCode> {
    match command {
        TokenCommand::Create { name, mut data } => {
            layer_file(&mut data, None, None)?;
            let (_, store, _) = open(&data).await?;
            let token = new_token();
            store
                .insert_token(&name, &token_hash(&token), mailferry_service::now())
                .await
                .context("cannot store the token")?;
            println!("{token}");
            eprintln!("token `{name}` created; it is shown only now. Send it as `Authorization: Bearer <token>`.");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The first start sets the admin password: from MAILFERRY_ADMIN_PASSWORD, or a random one
/// printed once.
async fn ensure_admin(store: &Store) -> anyhow::Result<()> {
    if store
        .admin_password_hash()
        .await
        .context("cannot read the admin login")?
        .is_some()
    {
        if let Ok(password) = std::env::var("MAILFERRY_ADMIN_PASSWORD") {
            if !password.is_empty() {
                store
                    .set_admin_password_hash(&hash_password(&password))
                    .await
                    .context("cannot store the admin login")?;
            }
        }
        return Ok(());
    }
    let (password, from_env) = match std::env::var("MAILFERRY_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, true),
        _ => (
            uuid::Uuid::new_v4().simple().to_string()[..20].to_string(),
            false,
        ),
    };
    store
        .set_admin_password_hash(&hash_password(&password))
        .await
        .context("cannot store the admin login")?;
    if from_env {
        println!("admin login: user `admin` with the password from MAILFERRY_ADMIN_PASSWORD");
    } else {
        println!("admin login (shown once): user `admin`, password `{password}`");
    }
    Ok(())
}
