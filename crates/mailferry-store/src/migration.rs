//! The service's migrations: a queue of account migrations worked on by leased workers,
//! their progress and reports, their sealed credentials, and the service's logins (the admin
//! password hash and API tokens).
//!
//! # Life of a migration
//! [`Store::insert_migrations`] stores it as [`MigrationState::Waiting`] with its sealed
//! credentials, counted against the allowance, in one transaction. [`Store::claim_due`] hands it to one worker once
//! `start_at` has come (→ `Transferring`, [`Pass::First`]) and again once `resync_at` has
//! come (`WaitingResync` → `Resyncing`, [`Pass::Resync`]). The worker holds a lease that it
//! renews ([`Store::renew_lease`]); a lease that runs out means the worker died, and the next
//! `claim_due` hands the same pass to another worker. [`Store::finish_pass`] ends a pass.
//!
//! # Personal data
//! Credentials live in `migration_secret` only while they can still be used: a pass that
//! ends in `Done` or `Cancelled`, [`Store::cancel`], [`Store::erase_secrets`] and
//! [`Store::purge`] delete them (a `Failed` one keeps them, for [`Store::retry`]).
//! [`Store::purge`] also removes addresses, user names, servers, the report, the error text
//! and the engine's checkpoints of a finished migration, keeping its id, state, times and
//! counts for statistics.
//!
//! All times are Unix seconds (UTC).

use std::fmt;
use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// One side of a migration, without its password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointRecord {
    pub server_type: String,
    pub email: String,
    pub username: String,
    pub server: String,
    pub insecure: bool,
}

/// Where a migration is. Active: `Waiting`, `Transferring`, `WaitingResync`, `Resyncing`;
/// finished: `Done`, `Failed`, `Cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MigrationState {
    Waiting,
    Transferring,
    WaitingResync,
    Resyncing,
    Done,
    Failed,
    Cancelled,
}

impl MigrationState {
    /// Every state, active ones first.
    pub const ALL: [MigrationState; 7] = [
        MigrationState::Waiting,
        MigrationState::Transferring,
        MigrationState::WaitingResync,
        MigrationState::Resyncing,
        MigrationState::Done,
        MigrationState::Failed,
        MigrationState::Cancelled,
    ];

    /// The name stored in the database and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Waiting => "waiting",
            MigrationState::Transferring => "transferring",
            MigrationState::WaitingResync => "waiting_resync",
            MigrationState::Resyncing => "resyncing",
            MigrationState::Done => "done",
            MigrationState::Failed => "failed",
            MigrationState::Cancelled => "cancelled",
        }
    }

    /// Waiting to start, transferring, waiting for resync or resyncing.
    pub fn is_active(self) -> bool {
        !self.is_finished()
    }

    /// Done, failed or cancelled.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            MigrationState::Done | MigrationState::Failed | MigrationState::Cancelled
        )
    }
}

impl fmt::Display for MigrationState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is not one of [`MigrationState::as_str`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown migration state `{0}` (known: waiting, transferring, waiting_resync, resyncing, done, failed, cancelled)")]
pub struct UnknownState(pub String);

impl FromStr for MigrationState {
    type Err = UnknownState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MigrationState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownState(s.to_string()))
    }
}

/// Which pass a claimed migration is due for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Everything (state `Transferring`).
    First,
    /// What is new or changed since the first pass (state `Resyncing`).
    Resync,
}

/// Counters of the pass in progress (or the last one).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProgressRecord {
    pub messages_total: u64,
    pub messages_done: u64,
    pub messages_copied: u64,
    pub bytes_total: u64,
    pub bytes_done: u64,
    pub messages_failed: u64,
}

/// A migration to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMigration {
    pub id: String,
    pub source: EndpointRecord,
    pub target: EndpointRecord,
    pub start_at: i64,
    pub resync_at: Option<i64>,
    pub created_at: i64,
    /// Explicit CalDAV/CardDAV addresses, as (side, url), stored with it.
    pub dav: Vec<(String, String)>,
    /// Copy the account's filters (Sieve scripts) too.
    pub filters: bool,
}

/// Sums over every migration ([`Store::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub messages_copied: u64,
    pub bytes_done: u64,
    pub messages_failed: u64,
    pub queue_lag_seconds: u64,
    /// Migrations due now and not taken by a worker (waiting, or waiting for their resync).
    pub queue_depth: u64,
    /// Leases that ran out and were taken over by another worker, over all migrations.
    pub lease_takeovers: u64,
}

/// A stored migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationRecord {
    pub id: String,
    pub state: MigrationState,
    /// `None` once purged.
    pub source: Option<EndpointRecord>,
    /// `None` once purged.
    pub target: Option<EndpointRecord>,
    pub start_at: i64,
    pub resync_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// When a worker first took it.
    pub started_at: Option<i64>,
    /// When it reached a finished state.
    pub finished_at: Option<i64>,
    /// What went wrong, in words an admin can act on (`None` once purged).
    pub error: Option<String>,
    pub progress: ProgressRecord,
    /// The last pass's report (`None` once purged).
    pub report_json: Option<String>,
    pub purged: bool,
    /// How many times a worker took it (every claim counts, including take-overs).
    pub attempts: u32,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    /// Whether its passes copy the account's filters.
    pub filters: bool,
}

const COLUMNS: &str = "id, state, \
    source_server_type, source_email, source_username, source_server, source_insecure, \
    target_server_type, target_email, target_username, target_server, target_insecure, \
    start_at, resync_at, created_at, updated_at, started_at, finished_at, error, \
    messages_total, messages_done, messages_copied, messages_failed, bytes_total, bytes_done, \
    report_json, purged, attempts, lease_owner, lease_until, filters";

/// Active states held by a worker.
const RUNNING: &str = "('transferring', 'resyncing')";
/// Active states.
const ACTIVE: &str = "('waiting', 'transferring', 'waiting_resync', 'resyncing')";
/// Finished states.
const FINISHED: &str = "('done', 'failed', 'cancelled')";

/// Due at `$1` (now): waiting and started, waiting for resync and resync time come, or
/// held by a worker whose lease ran out; and no other migration of its source or target
/// account (same server and login) is in a pass under a live lease. Two passes into one
/// account at once could both append a message the other has not stored yet: they run one
/// after the other instead (submitting refuses most such pairs; this covers the rest,
/// such as two submissions racing each other, or one target fed from two sources).
const DUE: &str = "((state = 'waiting' AND start_at <= $1) \
    OR (state = 'waiting_resync' AND resync_at <= $1) \
    OR (state IN ('transferring', 'resyncing') AND (lease_until IS NULL OR lease_until < $1))) \
    AND NOT EXISTS (SELECT 1 FROM migration AS busy WHERE busy.id <> migration.id \
    AND busy.lease_owner IS NOT NULL AND busy.lease_until >= $1 \
    AND ((busy.source_server = migration.source_server AND busy.source_username = migration.source_username) \
    OR (busy.target_server = migration.target_server AND busy.target_username = migration.target_username)))";
/// Held for the length of a claim on PostgreSQL, so that two claims never both see an
/// account free (each takes only its own row's lock): claims are short and rare.
const CLAIM_LOCK: i64 = 0x006d_6663_6c61_696d; // "mfclaim"
/// Oldest due first.
const DUE_ORDER: &str = "ORDER BY CASE WHEN state = 'waiting' THEN start_at \
    WHEN state = 'waiting_resync' THEN resync_at ELSE COALESCE(lease_until, 0) END, created_at, id";
/// What claiming does (`$1` now, `$2` worker, `$3` lease end).
const CLAIM_SET: &str = "state = CASE WHEN state = 'waiting' THEN 'transferring' \
    WHEN state = 'waiting_resync' THEN 'resyncing' ELSE state END, \
    lease_takeovers = lease_takeovers + CASE WHEN state IN ('transferring', 'resyncing') \
    THEN 1 ELSE 0 END, \
    lease_owner = $2, lease_until = $3, started_at = COALESCE(started_at, $1), \
    attempts = attempts + 1, updated_at = $1";

const ADMIN_PASSWORD_HASH: &str = "admin_password_hash";

/// How often SQLite's `claim_due` tries again after another worker took its candidate.
const SQLITE_CLAIM_TRIES: usize = 64;

fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn decode_error(column: &str, error: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Query(sqlx::Error::ColumnDecode {
        index: column.to_string(),
        source: Box::new(error),
    })
}

fn endpoint(row: &AnyRow, side: &str) -> Result<Option<EndpointRecord>, StoreError> {
    let text = |name: &str| row.try_get::<Option<String>, _>(format!("{side}_{name}").as_str());
    let (Some(server_type), Some(email), Some(username), Some(server)) = (
        text("server_type")?,
        text("email")?,
        text("username")?,
        text("server")?,
    ) else {
        return Ok(None);
    };
    let insecure: i64 = row.try_get(format!("{side}_insecure").as_str())?;
    Ok(Some(EndpointRecord {
        server_type,
        email,
        username,
        server,
        insecure: insecure != 0,
    }))
}

fn record(row: &AnyRow) -> Result<MigrationRecord, StoreError> {
    let state: String = row.try_get("state")?;
    let state = state
        .parse::<MigrationState>()
        .map_err(|e| decode_error("state", e))?;
    let purged = row.try_get::<i64, _>("purged")? != 0;
    let (source, target) = if purged {
        (None, None)
    } else {
        (endpoint(row, "source")?, endpoint(row, "target")?)
    };
    let count = |name: &str| row.try_get::<i64, _>(name).map(from_db);
    Ok(MigrationRecord {
        id: row.try_get("id")?,
        state,
        source,
        target,
        start_at: row.try_get("start_at")?,
        resync_at: row.try_get("resync_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        error: row.try_get("error")?,
        progress: ProgressRecord {
            messages_total: count("messages_total")?,
            messages_done: count("messages_done")?,
            messages_copied: count("messages_copied")?,
            bytes_total: count("bytes_total")?,
            bytes_done: count("bytes_done")?,
            messages_failed: count("messages_failed")?,
        },
        report_json: row.try_get("report_json")?,
        purged,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        filters: row.try_get::<i64, _>("filters")? != 0,
    })
}

fn claimed(row: &AnyRow) -> Result<(MigrationRecord, Pass), StoreError> {
    let record = record(row)?;
    let pass = match record.state {
        MigrationState::Transferring => Pass::First,
        MigrationState::Resyncing => Pass::Resync,
        other => {
            return Err(decode_error(
                "state",
                UnknownState(format!("{other} after a claim")),
            ))
        }
    };
    Ok((record, pass))
}

impl Store {
    pub async fn migration(&self, id: &str) -> Result<Option<MigrationRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM migration WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    /// The source and target accounts of every active migration (waiting, in a pass, or
    /// waiting for its resync), with its id: only those columns, for checking a submission
    /// against them.
    pub async fn active_accounts(
        &self,
    ) -> Result<Vec<(String, EndpointRecord, EndpointRecord)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT id, source_server_type, source_email, source_username, source_server, source_insecure, \
             target_server_type, target_email, target_username, target_server, target_insecure \
             FROM migration WHERE state IN {ACTIVE} AND purged = 0 ORDER BY created_at, id"
        ))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            if let (Some(source), Some(target)) =
                (endpoint(row, "source")?, endpoint(row, "target")?)
            {
                out.push((row.try_get("id")?, source, target));
            }
        }
        Ok(out)
    }

    /// Migrations in the given states (all with `None`), newest first.
    pub async fn list_migrations(
        &self,
        states: Option<&[MigrationState]>,
    ) -> Result<Vec<MigrationRecord>, StoreError> {
        let filter = match states {
            Some([]) => return Ok(Vec::new()),
            Some(states) => {
                let placeholders: Vec<String> =
                    (1..=states.len()).map(|n| format!("${n}")).collect();
                format!("WHERE state IN ({})", placeholders.join(", "))
            }
            None => String::new(),
        };
        let sql =
            format!("SELECT {COLUMNS} FROM migration {filter} ORDER BY created_at DESC, id DESC");
        let mut query = sqlx::query(&sql);
        for state in states.unwrap_or_default() {
            query = query.bind(state.as_str());
        }
        let rows = query.fetch_all(self.pool()).await?;
        rows.iter().map(record).collect()
    }

    /// Atomically takes the next due migration for `worker`, oldest due first:
    /// - `Waiting` with `start_at <= now` → `Transferring`, [`Pass::First`];
    /// - `WaitingResync` with `resync_at <= now` → `Resyncing`, [`Pass::Resync`];
    /// - `Transferring`/`Resyncing` whose lease ran out (`lease_until < now`): a crashed
    ///   worker's pass, taken over as the same pass.
    ///
    /// Sets the lease (`lease_owner = worker`, `lease_until = now + lease_secs`),
    /// `started_at` if unset, and counts the attempt. Safe with any number of workers in any
    /// number of processes: PostgreSQL locks the candidate row (`FOR UPDATE SKIP LOCKED`);
    /// SQLite updates it only if it is still due, and tries the next one if not.
    pub async fn claim_due(
        &self,
        worker: &str,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<(MigrationRecord, Pass)>, StoreError> {
        self.claim_due_capped(worker, now, lease_secs, 0).await
    }

    /// [`Store::claim_due`], leaving out migrations whose source or target server already
    /// has `max_passes_per_host` passes under a live lease, counted over every worker of
    /// every process (0: no cap). With `connections` per pass, a mail server then sees at
    /// most about `max_passes_per_host` x `connections` connections from the whole service.
    pub async fn claim_due_capped(
        &self,
        worker: &str,
        now: i64,
        lease_secs: i64,
        max_passes_per_host: usize,
    ) -> Result<Option<(MigrationRecord, Pass)>, StoreError> {
        let until = now.saturating_add(lease_secs);
        let due = if max_passes_per_host == 0 {
            DUE.to_string()
        } else {
            // A number, never input: written into the statement.
            let running_on = |column: &str| {
                format!(
                    "(SELECT COUNT(*) FROM migration AS other WHERE other.id <> migration.id \
                     AND other.lease_owner IS NOT NULL AND other.lease_until >= $1 \
                     AND (other.source_server = migration.{column} OR other.target_server = migration.{column})) \
                     < {max_passes_per_host}"
                )
            };
            format!(
                "{DUE} AND {} AND {}",
                running_on("source_server"),
                running_on("target_server")
            )
        };
        let due = due.as_str();
        match self.backend() {
            Backend::Postgres => {
                let sql = format!(
                    "UPDATE migration SET {CLAIM_SET} WHERE id = \
                     (SELECT id FROM migration WHERE {due} {DUE_ORDER} LIMIT 1 FOR UPDATE SKIP LOCKED) \
                     RETURNING {COLUMNS}"
                );
                let mut tx = self.pool().begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(CLAIM_LOCK)
                    .execute(&mut *tx)
                    .await?;
                let row = sqlx::query(&sql)
                    .bind(now)
                    .bind(worker)
                    .bind(until)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                row.as_ref().map(claimed).transpose()
            }
            Backend::Sqlite => {
                let select = format!("SELECT id FROM migration WHERE {due} {DUE_ORDER} LIMIT 1");
                let update = format!(
                    "UPDATE migration SET {CLAIM_SET} WHERE id = $4 AND {due} RETURNING {COLUMNS}"
                );
                for _ in 0..SQLITE_CLAIM_TRIES {
                    let candidate: Option<String> = sqlx::query_scalar(&select)
                        .bind(now)
                        .fetch_optional(self.pool())
                        .await?;
                    let Some(candidate) = candidate else {
                        return Ok(None);
                    };
                    let row = sqlx::query(&update)
                        .bind(now)
                        .bind(worker)
                        .bind(until)
                        .bind(&candidate)
                        .fetch_optional(self.pool())
                        .await?;
                    if let Some(row) = row {
                        return claimed(&row).map(Some);
                    }
                    // Another worker took it between our SELECT and UPDATE.
                }
                Ok(None)
            }
        }
    }

    /// Extends `worker`'s lease to `until`; `false` if the lease is no longer ours (taken
    /// over after it ran out, or the migration was cancelled).
    pub async fn renew_lease(
        &self,
        id: &str,
        worker: &str,
        until: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(&format!(
            "UPDATE migration SET lease_until = $3 \
             WHERE id = $1 AND lease_owner = $2 AND state IN {RUNNING}"
        ))
        .bind(id)
        .bind(worker)
        .bind(until)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Gives a pass back on a graceful shutdown: `Transferring` → `Waiting`, `Resyncing` →
    /// `WaitingResync`, lease cleared, so that the next `claim_due` takes it at once.
    /// Nothing happens if the lease is not `worker`'s.
    /// Ends a pass that stopped because its migration was cancelled (or its lease taken over)
    /// while it ran: the lease goes, the state stays, the report of what it did is kept.
    pub async fn end_stopped_pass(
        &self,
        id: &str,
        worker: &str,
        report_json: Option<&str>,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE migration SET lease_owner = NULL, lease_until = NULL, \
             report_json = COALESCE($3, report_json), updated_at = $4 \
             WHERE id = $1 AND lease_owner = $2 AND state NOT IN {RUNNING}"
        ))
        .bind(id)
        .bind(worker)
        .bind(report_json)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn release_lease(&self, id: &str, worker: &str) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "UPDATE migration SET state = CASE WHEN state = 'transferring' THEN 'waiting' \
             ELSE 'waiting_resync' END, lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state IN {RUNNING}"
        ))
        .bind(id)
        .bind(worker)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Ends a pass held by `worker`: sets `state` and `error` (cleared with `None`), the
    /// report (kept from an earlier pass with `None`), `finished_at` for a finished state,
    /// and clears the lease. Ending in `Done` or `Cancelled` also erases the credentials
    /// (`Failed` keeps them for [`Store::retry`]). `false`, changing nothing, if the pass
    /// is not `worker`'s (any more).
    pub async fn finish_pass(
        &self,
        id: &str,
        worker: &str,
        state: MigrationState,
        error: Option<&str>,
        report_json: Option<&str>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let finished_at = state.is_finished().then_some(now);
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE migration SET state = $3, error = $4, report_json = COALESCE($5, report_json), \
             finished_at = $6, updated_at = $7, lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND lease_owner = $2 AND state IN {RUNNING}"
        ))
        .bind(id)
        .bind(worker)
        .bind(state.as_str())
        .bind(error)
        .bind(report_json)
        .bind(finished_at)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if matches!(state, MigrationState::Done | MigrationState::Cancelled) {
            sqlx::query("DELETE FROM migration_secret WHERE migration_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn update_progress(
        &self,
        id: &str,
        progress: &ProgressRecord,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE migration SET messages_total = $2, messages_done = $3, messages_copied = $4, \
             bytes_total = $5, bytes_done = $6, messages_failed = $7, updated_at = $8 WHERE id = $1",
        )
        .bind(id)
        .bind(to_db(progress.messages_total))
        .bind(to_db(progress.messages_done))
        .bind(to_db(progress.messages_copied))
        .bind(to_db(progress.bytes_total))
        .bind(to_db(progress.bytes_done))
        .bind(to_db(progress.messages_failed))
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The sealed credentials of a migration, `(side, sealed)` sorted by side.
    pub async fn secrets(&self, id: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT side, sealed FROM migration_secret WHERE migration_id = $1 ORDER BY side",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }

    /// Deletes the credentials of a migration (on SQLite their bytes are overwritten too).
    pub async fn erase_secrets(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM migration_secret WHERE migration_id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        if self.backend() == crate::Backend::Sqlite {
            // secure_delete zeroes the freed pages in the database file, but the WAL still
            // holds earlier copies of them until a checkpoint: fold it in and truncate it.
            // Best effort: a reader holding an old snapshot can delay it to the next erase.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(self.pool())
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint after erasing credentials failed");
            }
        }
        Ok(())
    }

    /// Any active migration → `Cancelled`, lease cleared (its worker's next
    /// [`Store::renew_lease`] says so), credentials erased. `false` if it is finished or
    /// unknown.
    pub async fn cancel(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        // A running pass keeps its lease until it has stopped (its worker sees the
        // cancellation at its next renewal): until then its accounts stay busy, and no other
        // migration of them starts alongside it.
        let done = sqlx::query(&format!(
            "UPDATE migration SET state = 'cancelled', finished_at = $2, updated_at = $2 \
             WHERE id = $1 AND state IN {ACTIVE}"
        ))
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM migration_secret WHERE migration_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// `Failed` → `Waiting`, starting now, error and `finished_at` cleared. `false` if it is
    /// not failed, is unknown, or its credentials are gone (erased or purged).
    pub async fn retry(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE migration SET state = 'waiting', start_at = $2, error = NULL, \
             finished_at = NULL, updated_at = $2 \
             WHERE id = $1 AND state = 'failed' AND purged = 0 \
             AND EXISTS (SELECT 1 FROM migration_secret WHERE migration_id = $1)",
        )
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Removes the personal data of a finished migration: addresses, user names and servers
    /// of both sides, the report, the error text, the credentials, the DAV addresses and
    /// the engines' checkpoints (`folder_checkpoint`, `message_map`, `dav_collection_map`,
    /// `dav_object_map`, `sieve_script_map` of job `id`), all in one transaction. Keeps id, state, times and
    /// counts. `false` if it is active or unknown; purging twice is fine.
    pub async fn purge(&self, id: &str) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE migration SET source_email = NULL, source_username = NULL, source_server = NULL, \
             target_email = NULL, target_username = NULL, target_server = NULL, \
             report_json = NULL, error = NULL, purged = 1 WHERE id = $1 AND state IN {FINISHED}"
        ))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for sql in [
            "DELETE FROM migration_secret WHERE migration_id = $1",
            "DELETE FROM migration_dav WHERE migration_id = $1",
            "DELETE FROM message_map WHERE job_id = $1",
            "DELETE FROM folder_checkpoint WHERE job_id = $1",
            "DELETE FROM dav_object_map WHERE job_id = $1",
            "DELETE FROM dav_collection_map WHERE job_id = $1",
            "DELETE FROM sieve_script_map WHERE job_id = $1",
        ] {
            sqlx::query(sql).bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// How many migrations are in each state: every state, in [`MigrationState::ALL`]'s
    /// order, zeros included.
    pub async fn counts(&self) -> Result<Vec<(MigrationState, u64)>, StoreError> {
        let rows = sqlx::query("SELECT state, COUNT(*) FROM migration GROUP BY state")
            .fetch_all(self.pool())
            .await?;
        let mut counts: Vec<(MigrationState, u64)> =
            MigrationState::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            let state: String = row.try_get(0)?;
            let state = state
                .parse::<MigrationState>()
                .map_err(|e| decode_error("state", e))?;
            let count: i64 = row.try_get(1)?;
            if let Some(slot) = counts.iter_mut().find(|(s, _)| *s == state) {
                slot.1 = from_db(count);
            }
        }
        Ok(counts)
    }

    /// Sums over every migration, for metrics: messages copied, bytes done, messages failed,
    /// and how long the longest-due waiting pass has waited at `now` (0 if none).
    pub async fn totals(&self, now: i64) -> Result<Totals, StoreError> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(messages_copied), 0) AS BIGINT), \
             CAST(COALESCE(SUM(bytes_done), 0) AS BIGINT), \
             CAST(COALESCE(SUM(messages_failed), 0) AS BIGINT), \
             CAST(COALESCE(MAX(CASE \
                 WHEN state = 'waiting' AND start_at <= $1 THEN $1 - start_at \
                 WHEN state = 'waiting_resync' AND resync_at <= $1 THEN $1 - resync_at \
             END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN (state = 'waiting' AND start_at <= $1) \
                 OR (state = 'waiting_resync' AND resync_at <= $1) THEN 1 ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(lease_takeovers), 0) AS BIGINT) FROM migration",
        )
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok(Totals {
            messages_copied: from_db(row.try_get(0)?),
            bytes_done: from_db(row.try_get(1)?),
            messages_failed: from_db(row.try_get(2)?),
            queue_lag_seconds: from_db(row.try_get(3)?),
            queue_depth: from_db(row.try_get(4)?),
            lease_takeovers: from_db(row.try_get(5)?),
        })
    }

    /// The error of every failed migration, for failures by reason in the metrics.
    pub async fn failure_texts(&self) -> Result<Vec<String>, StoreError> {
        let rows: Vec<Option<String>> =
            sqlx::query_scalar("SELECT error FROM migration WHERE state = 'failed'")
                .fetch_all(self.pool())
                .await?;
        Ok(rows.into_iter().map(Option::unwrap_or_default).collect())
    }

    /// The admin's password hash (PHC string), if one was set.
    pub async fn admin_password_hash(&self) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT value FROM setting WHERE name = $1")
                .bind(ADMIN_PASSWORD_HASH)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    pub async fn set_admin_password_hash(&self, hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO setting (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(ADMIN_PASSWORD_HASH)
        .bind(hash)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Stores an API token by its hash (the token itself is never stored). The same hash
    /// twice is an error.
    pub async fn insert_token(
        &self,
        name: &str,
        token_hash: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO api_token (token_hash, name, created_at) VALUES ($1, $2, $3)")
            .bind(token_hash)
            .bind(name)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The name of the token with this hash, if there is one.
    pub async fn token_name(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM api_token WHERE token_hash = $1")
                .bind(token_hash)
                .fetch_optional(self.pool())
                .await?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip() {
        for state in MigrationState::ALL {
            assert_eq!(state.as_str().parse::<MigrationState>(), Ok(state));
            assert_ne!(state.is_active(), state.is_finished());
        }
        assert!("Waiting".parse::<MigrationState>().is_err());
        assert!(MigrationState::WaitingResync.is_active());
        assert!(MigrationState::Cancelled.is_finished());
    }
}
