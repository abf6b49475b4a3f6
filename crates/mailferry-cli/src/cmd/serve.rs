//! `mailferry serve`: the service (REST API, scheduler and workers) on an embedded SQLite
//! database in the data directory, or a shared PostgreSQL (`--database-url`). The first
//! start prints a one-time admin password unless `MAILFERRY_ADMIN_PASSWORD` is set.
//! `mailferry worker`: workers only, joining a shared PostgreSQL to scale out.
//! `mailferry token create`: an API token for scripts.

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

/// Where the service keeps its data, and which database it uses.
#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// The data directory: database, key file. Default: $XDG_DATA_HOME/mailferry or
    /// ~/.local/share/mailferry.
    #[arg(long, value_name = "DIR", env = "MAILFERRY_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// A shared PostgreSQL (postgres://user:password@host/db) instead of the embedded SQLite;
    /// needed for `mailferry worker` processes on other machines.
    #[arg(
        long,
        value_name = "URL",
        env = "MAILFERRY_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,
}

/// How workers run.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Migration passes running at once in this process.
    #[arg(long, default_value_t = 2, value_name = "N", env = "MAILFERRY_WORKERS")]
    pub workers: usize,
    /// Connections per side for each migration.
    #[arg(
        long,
        default_value_t = 2,
        value_name = "N",
        env = "MAILFERRY_CONNECTIONS_PER_MIGRATION"
    )]
    pub connections: usize,
    /// Cap on connections per mail host across all migrations of this process.
    #[arg(
        long,
        default_value_t = 16,
        value_name = "N",
        env = "MAILFERRY_PER_HOST_CONNECTIONS"
    )]
    pub per_host_connections: usize,
    /// Seconds a worker's claim on a migration lasts without renewal; after a crash the job
    /// is taken over once it expires.
    #[arg(
        long,
        default_value_t = 60,
        value_name = "SECONDS",
        env = "MAILFERRY_LEASE_SECONDS"
    )]
    pub lease_seconds: u64,
    /// How often idle workers look for due migrations, in milliseconds.
    #[arg(
        long,
        default_value_t = 2000,
        value_name = "MS",
        env = "MAILFERRY_POLL_MS"
    )]
    pub poll_ms: u64,
    /// The time zone entered start and resync times are read in (IANA name, e.g.
    /// Europe/Berlin). Default: the system's.
    #[arg(long, value_name = "ZONE", env = "MAILFERRY_TIME_ZONE")]
    pub time_zone: Option<String>,
    /// Refuse submissions that ask for unverified certificates (`source.insecure`).
    #[arg(long, env = "MAILFERRY_NO_INSECURE")]
    pub no_insecure: bool,
}

/// Run the service: web API, scheduler and workers.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub workers: WorkerArgs,
    /// Address to listen on.
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        value_name = "ADDR",
        env = "MAILFERRY_LISTEN"
    )]
    pub listen: SocketAddr,
}

/// Run workers only, against a shared PostgreSQL (`--database-url`).
#[derive(Debug, Args)]
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

fn data_dir(args: &DataArgs) -> anyhow::Result<PathBuf> {
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

async fn open(args: &DataArgs) -> anyhow::Result<(PathBuf, Store, Sealer)> {
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

fn config(dir: PathBuf, args: &WorkerArgs) -> anyhow::Result<ServiceConfig> {
    let mut config = ServiceConfig::new(dir);
    config.workers = args.workers.max(1);
    config.connections_per_migration = args.connections.max(1);
    config.per_host_connections = args.per_host_connections.max(1);
    config.lease = Duration::from_secs(args.lease_seconds.max(1));
    config.poll_interval = Duration::from_millis(args.poll_ms.max(50));
    config.allow_insecure = !args.no_insecure;
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

pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let (dir, store, sealer) = open(&args.data).await?;
    ensure_admin(&store).await?;
    let config = config(dir, &args.workers)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
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

pub async fn worker_only(args: WorkerOnlyArgs) -> anyhow::Result<ExitCode> {
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
        TokenCommand::Create { name, data } => {
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
