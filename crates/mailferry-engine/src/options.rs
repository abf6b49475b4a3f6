//! What a run is asked to do.

use std::path::PathBuf;

use mailferry_imap::{Auth, Endpoint};
use regex::Regex;

/// One side of a migration.
#[derive(Debug, Clone)]
pub struct Account {
    pub endpoint: Endpoint,
    pub auth: Auth,
}

impl Account {
    /// `user@host:port`, for reports (never a secret).
    pub fn describe(&self) -> String {
        format!("{}@{}", self.auth.account(), self.endpoint.addr())
    }
}

/// Options of a copy run.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Connections per side (folders are spread over them).
    pub connections: usize,
    /// Cap of connections per host across all accounts of a run (`--per-host-connections`):
    /// what the caller builds the jobs' [`mailferry_imap::ConnectionBudget`] with.
    pub per_host_cap: usize,
    /// Folders to include (matched against the source's folder name); all when empty.
    pub include: Vec<Regex>,
    pub exclude: Vec<Regex>,
    /// Explicit folder map: source name -> target name.
    pub map: Vec<(String, String)>,
    /// Messages larger than this are skipped and reported.
    pub max_message_size: Option<u64>,
    /// Only messages with an internal date at or after / before these (Unix seconds).
    pub since: Option<i64>,
    pub before: Option<i64>,
    pub dry_run: bool,
    /// Apply deletions at the source to the target.
    pub sync_deletes: bool,
    pub subscriptions: bool,
    /// Messages bigger than this are fetched in ranges of this size and streamed through a
    /// temporary file, never whole in memory.
    pub chunk_size: u64,
    /// Messages per MULTIAPPEND batch.
    pub batch_messages: usize,
    /// Bytes per batch.
    pub batch_bytes: u64,
    /// Where big messages are spooled.
    pub spool_dir: Option<PathBuf>,
    /// Seconds to wait for a server at each step.
    pub timeout_seconds: u64,
    /// Cap on bytes per second read from the source, across all connections of the run.
    pub max_bandwidth: Option<u64>,
    /// COMPRESS=DEFLATE on both sides where offered (off by default: on a fast link it
    /// costs more CPU than it saves; see bench/RESULTS.md).
    pub compress: bool,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            connections: 4,
            per_host_cap: 16,
            include: Vec::new(),
            exclude: Vec::new(),
            map: Vec::new(),
            max_message_size: None,
            since: None,
            before: None,
            dry_run: false,
            sync_deletes: false,
            subscriptions: true,
            chunk_size: 4 * 1024 * 1024,
            batch_messages: 50,
            batch_bytes: 8 * 1024 * 1024,
            spool_dir: None,
            timeout_seconds: 60,
            max_bandwidth: None,
            compress: false,
        }
    }
}

impl CopyOptions {
    pub fn wants_folder(&self, name: &str) -> bool {
        (self.include.is_empty() || self.include.iter().any(|r| r.is_match(name)))
            && !self.exclude.iter().any(|r| r.is_match(name))
    }
}
