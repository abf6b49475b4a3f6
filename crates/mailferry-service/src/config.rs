//! The settings of a service.

use std::path::PathBuf;
use std::time::Duration;

use ed25519_dalek::VerifyingKey;
use jiff::tz::TimeZone;

/// How a service runs.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub data_dir: PathBuf,
    /// Workers (passes running at once) in this process.
    pub workers: usize,
    /// Connections per side for each migration.
    pub connections_per_migration: usize,
    /// Cap of connections per mail host across all migrations of this process.
    pub per_host_connections: usize,
    /// Cap of passes running at once against one mail server, over every process sharing
    /// the database (0: none).
    pub max_passes_per_host: usize,
    /// Cap of connections to all mail hosts together (`MAILFERRY_MAX_CONNECTIONS`, default 64).
    pub max_connections: Option<usize>,
    /// The zone entered times are read in, and shown.
    pub time_zone: TimeZone,
    /// How long a worker's claim on a job lasts without renewal.
    pub lease: Duration,
    /// How often idle workers look for due jobs.
    pub poll_interval: Duration,
    /// Time allowed for the credential check of one side.
    pub check_timeout: Duration,
    /// Accept a submitted `insecure` flag (unverified certificates) per side.
    pub allow_insecure: bool,
    /// On shutdown, how long a running pass may go on before it is stopped and its lease
    /// released (`MAILFERRY_SHUTDOWN_GRACE_SECONDS`, default 5).
    pub shutdown_grace: Duration,
    /// The operator's public key that licence keys must be signed for
    /// (`MAILFERRY_LICENCE_PUBLIC_KEY`; default: the lab key pair's, see [`crate::licence`]).
    pub licence_public_key: VerifyingKey,
    /// Extra CA certificates (PEM) trusted for every mail server besides the system's
    /// (`MAILFERRY_CA_FILE`): an internal CA, or a lab server's own certificate.
    pub ca_file: Option<PathBuf>,
    /// Mark the web UI's cookies `Secure` even when a request does not say it came over
    /// https (`MAILFERRY_SECURE_COOKIES=1`; for a TLS proxy that sends no
    /// `X-Forwarded-Proto`).
    pub secure_cookies: bool,
    /// The web UI's account picker: the local Dovecot's users (`MAILFERRY_TARGET_*`, see
    /// [`crate::ui::accounts`]).
    pub target_accounts: Option<crate::ui::accounts::TargetAccounts>,
    /// Fault injection for the test of what a panic in a pass leaves behind: when set, every
    /// pass panics at its start. Never set by any configuration file, variable or flag.
    #[doc(hidden)]
    pub panic_in_pass: bool,
}

impl ServiceConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            workers: 2,
            connections_per_migration: 2,
            per_host_connections: 16,
            max_passes_per_host: 0,
            max_connections: Some(
                std::env::var("MAILFERRY_MAX_CONNECTIONS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(64),
            ),
            time_zone: TimeZone::system(),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(2),
            check_timeout: Duration::from_secs(20),
            allow_insecure: true,
            shutdown_grace: Duration::from_secs(
                std::env::var("MAILFERRY_SHUTDOWN_GRACE_SECONDS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(5),
            ),
            licence_public_key: crate::licence::lab_public_key(),
            ca_file: std::env::var_os("MAILFERRY_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            secure_cookies: std::env::var("MAILFERRY_SECURE_COOKIES")
                .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            target_accounts: crate::ui::accounts::TargetAccounts::from_env(),
            panic_in_pass: false,
        }
    }

    /// The zone's name, for people.
    pub fn time_zone_name(&self) -> String {
        self.time_zone.iana_name().unwrap_or("UTC").to_string()
    }
}
