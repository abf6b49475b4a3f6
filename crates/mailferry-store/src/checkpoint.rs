//! The copy engine's checkpoints.
//!
//! `folder_checkpoint` says how far a folder was copied (UIDNEXT and HIGHESTMODSEQ at the
//! start of the last completed pass). `message_map` ties each source message
//! (folder, UIDVALIDITY, UID) to its fate on the target. A row in state
//! [`MessageState::Pending`] is committed *before* its APPEND is sent: after a crash it
//! means "maybe appended", and the engine looks on the target before appending again.

use mailferry_imap::{Uid, UidValidity};
use sqlx::Row;

use crate::{last_of_each, parameter, placeholders, Store, StoreError, ROWS_PER_STATEMENT};

/// How far a folder has been copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderCheckpoint {
    pub source_folder: String,
    pub source_uidvalidity: UidValidity,
    pub target_folder: String,
    pub target_uidvalidity: Option<UidValidity>,
    pub source_uidnext: u32,
    pub source_modseq: Option<u64>,
    /// The target folder's UIDNEXT and message count at the end of the last completed pass
    /// (`None` when not seen): a folder is skipped only when both sides are as they were.
    pub target_uidnext: Option<u32>,
    pub target_messages: Option<u32>,
}

/// How many of a folder's source messages are settled on the target (copied or found
/// there) and how many are not (failed, or appended without a confirmation).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FolderTally {
    pub placed: u64,
    pub unsettled: u64,
}

/// What happened to one source message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageState {
    /// APPEND sent (or about to be); outcome unknown until confirmed.
    Pending,
    /// Copied by us.
    Copied,
    /// Found on the target already; not copied.
    Present,
    /// The target refused it; retried on the next pass.
    Failed,
}

impl MessageState {
    fn code(self) -> i64 {
        match self {
            MessageState::Pending => 0,
            MessageState::Copied => 1,
            MessageState::Present => 2,
            MessageState::Failed => 3,
        }
    }
    fn from_code(code: i64) -> Self {
        match code {
            1 => MessageState::Copied,
            2 => MessageState::Present,
            3 => MessageState::Failed,
            _ => MessageState::Pending,
        }
    }
}

/// One row of the message map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedMessage {
    pub source_uid: Uid,
    pub fingerprint: String,
    pub state: MessageState,
    pub target_uid: Option<Uid>,
    /// Flags last set on the target, sorted and space separated.
    pub flags: String,
    /// Why it failed, in the server's words.
    pub detail: Option<String>,
}

fn uid(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

impl Store {
    pub async fn folder_checkpoint(
        &self,
        job: &str,
        source_folder: &str,
    ) -> Result<Option<FolderCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT source_uidvalidity, target_folder, target_uidvalidity, source_uidnext, source_modseq, \
             target_uidnext, target_messages \
             FROM folder_checkpoint WHERE job_id = $1 AND source_folder = $2",
        )
        .bind(job)
        .bind(source_folder)
        .fetch_optional(self.pool())
        .await?;
        // A row whose UIDVALIDITY is not one (0, or out of range: written by hand?) is no
        // checkpoint: the folder is matched again by fingerprint.
        Ok(row.and_then(|row| {
            Some(FolderCheckpoint {
                source_folder: source_folder.to_string(),
                source_uidvalidity: UidValidity::from_i64(row.get(0))?,
                target_folder: row.get(1),
                target_uidvalidity: row.get::<Option<i64>, _>(2).and_then(UidValidity::from_i64),
                source_uidnext: uid(row.get(3)),
                source_modseq: row.get::<Option<i64>, _>(4).map(|m| m as u64),
                target_uidnext: row.get::<Option<i64>, _>(5).map(uid),
                target_messages: row.get::<Option<i64>, _>(6).map(uid),
            })
        }))
    }

    /// All folder checkpoints of a job.
    pub async fn folder_checkpoints(&self, job: &str) -> Result<Vec<FolderCheckpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_folder, source_uidvalidity, target_folder, target_uidvalidity, source_uidnext, source_modseq, \
             target_uidnext, target_messages \
             FROM folder_checkpoint WHERE job_id = $1",
        )
        .bind(job)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(FolderCheckpoint {
                    source_folder: row.get(0),
                    source_uidvalidity: UidValidity::from_i64(row.get(1))?,
                    target_folder: row.get(2),
                    target_uidvalidity: row
                        .get::<Option<i64>, _>(3)
                        .and_then(UidValidity::from_i64),
                    source_uidnext: uid(row.get(4)),
                    source_modseq: row.get::<Option<i64>, _>(5).map(|m| m as u64),
                    target_uidnext: row.get::<Option<i64>, _>(6).map(uid),
                    target_messages: row.get::<Option<i64>, _>(7).map(uid),
                })
            })
            .collect())
    }

    pub async fn save_folder_checkpoint(
        &self,
        job: &str,
        checkpoint: &FolderCheckpoint,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO folder_checkpoint (job_id, source_folder, source_uidvalidity, target_folder, target_uidvalidity, source_uidnext, source_modseq, target_uidnext, target_messages) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (job_id, source_folder) DO UPDATE SET source_uidvalidity = excluded.source_uidvalidity, \
             target_folder = excluded.target_folder, target_uidvalidity = excluded.target_uidvalidity, \
             source_uidnext = excluded.source_uidnext, source_modseq = excluded.source_modseq, \
             target_uidnext = excluded.target_uidnext, target_messages = excluded.target_messages",
        )
        .bind(job)
        .bind(&checkpoint.source_folder)
        .bind(i64::from(checkpoint.source_uidvalidity))
        .bind(&checkpoint.target_folder)
        .bind(checkpoint.target_uidvalidity.map(i64::from))
        .bind(i64::from(checkpoint.source_uidnext))
        .bind(checkpoint.source_modseq.map(|m| m as i64))
        .bind(checkpoint.target_uidnext.map(i64::from))
        .bind(checkpoint.target_messages.map(i64::from))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Moves a folder's checkpoint and map to a new source name and target folder (it was
    /// renamed at the source, keeping its UIDVALIDITY), in one transaction.
    pub async fn move_folder(
        &self,
        job: &str,
        from: &str,
        to: &str,
        target_folder: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "UPDATE message_map SET source_folder = $3 WHERE job_id = $1 AND source_folder = $2",
        )
        .bind(job)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE folder_checkpoint SET source_folder = $3, target_folder = $4 \
             WHERE job_id = $1 AND source_folder = $2",
        )
        .bind(job)
        .bind(from)
        .bind(to)
        .bind(target_folder)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets a folder's checkpoint and map (its UIDVALIDITY changed: the UIDs mean nothing).
    pub async fn forget_folder(&self, job: &str, source_folder: &str) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("DELETE FROM message_map WHERE job_id = $1 AND source_folder = $2")
            .bind(job)
            .bind(source_folder)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM folder_checkpoint WHERE job_id = $1 AND source_folder = $2")
            .bind(job)
            .bind(source_folder)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Per source folder of a job (under its current UIDVALIDITY or not), how many messages
    /// are settled and unsettled: one query for the whole job, at the start of a pass.
    pub async fn folder_tallies(
        &self,
        job: &str,
    ) -> Result<std::collections::HashMap<String, FolderTally>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_folder, CAST(CASE WHEN state IN (1, 2) THEN 1 ELSE 0 END AS BIGINT) AS settled, COUNT(*) \
             FROM message_map WHERE job_id = $1 GROUP BY source_folder, settled",
        )
        .bind(job)
        .fetch_all(self.pool())
        .await?;
        let mut out: std::collections::HashMap<String, FolderTally> = Default::default();
        for row in rows {
            let tally = out.entry(row.get(0)).or_default();
            let count = row.get::<i64, _>(2).max(0) as u64;
            if row.get::<i64, _>(1) == 1 {
                tally.placed += count;
            } else {
                tally.unsettled += count;
            }
        }
        Ok(out)
    }

    pub async fn mapped_messages(
        &self,
        job: &str,
        source_folder: &str,
        uidvalidity: UidValidity,
    ) -> Result<Vec<MappedMessage>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_uid, fingerprint, state, target_uid, flags, detail FROM message_map \
             WHERE job_id = $1 AND source_folder = $2 AND source_uidvalidity = $3 ORDER BY source_uid",
        )
        .bind(job)
        .bind(source_folder)
        .bind(i64::from(uidvalidity))
        .fetch_all(self.pool())
        .await?;
        // A row whose UID is not one (0, out of range) cannot name a message: left out.
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(MappedMessage {
                    source_uid: Uid::from_i64(row.get(0))?,
                    fingerprint: row.get(1),
                    state: MessageState::from_code(row.get(2)),
                    target_uid: row.get::<Option<i64>, _>(3).and_then(Uid::from_i64),
                    flags: row.get(4),
                    detail: row.get(5),
                })
            })
            .collect())
    }

    /// Writes rows of the map in one transaction (insert or replace), many rows per
    /// statement: a copy writes every message's row twice.
    pub async fn record_messages(
        &self,
        job: &str,
        source_folder: &str,
        uidvalidity: UidValidity,
        rows: &[MappedMessage],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = last_of_each(rows, |row| row.source_uid);
        let mut tx = self.pool().begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO message_map (job_id, source_folder, source_uidvalidity, source_uid, fingerprint, state, target_uid, flags, detail) \
                 VALUES {} \
                 ON CONFLICT (job_id, source_folder, source_uidvalidity, source_uid) DO UPDATE SET fingerprint = excluded.fingerprint, \
                 state = excluded.state, target_uid = excluded.target_uid, flags = excluded.flags, detail = excluded.detail",
                placeholders(self.backend(), chunk.len(), 9)
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(job)
                    .bind(source_folder)
                    .bind(i64::from(uidvalidity))
                    .bind(i64::from(row.source_uid))
                    .bind(&row.fingerprint)
                    .bind(row.state.code())
                    .bind(row.target_uid.map(i64::from))
                    .bind(&row.flags)
                    .bind(row.detail.as_deref());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes rows of source messages that no longer exist.
    pub async fn delete_messages(
        &self,
        job: &str,
        source_folder: &str,
        uidvalidity: UidValidity,
        uids: &[Uid],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for chunk in uids.chunks(ROWS_PER_STATEMENT) {
            let p = |n: usize| parameter(self.backend(), n);
            let list: Vec<String> = (0..chunk.len()).map(|i| p(i + 4)).collect();
            let sql = format!(
                "DELETE FROM message_map WHERE job_id = {} AND source_folder = {} AND source_uidvalidity = {} AND source_uid IN ({})",
                p(1),
                p(2),
                p(3),
                list.join(", ")
            );
            let mut query = sqlx::query(&sql)
                .bind(job)
                .bind(source_folder)
                .bind(i64::from(uidvalidity));
            for source_uid in chunk {
                query = query.bind(i64::from(*source_uid));
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    // The checkpoint round trip runs on both backends in tests/it/checkpoint.rs.

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            crate::redact("postgres://mf:secret@db:5432/mf"),
            "postgres://mf:***@db:5432/mf"
        );
        assert_eq!(
            crate::redact("sqlite:///tmp/x.sqlite"),
            "sqlite:///tmp/x.sqlite"
        );
        assert_eq!(
            crate::redact("postgres://db:5432/mf?user=mf&password=s3cret&sslmode=require"),
            "postgres://db:5432/mf?user=mf&password=***&sslmode=require"
        );
        assert_eq!(
            crate::redact("postgres://mf:pw@db/mf?sslpassword=k3y"),
            "postgres://mf:***@db/mf?sslpassword=***"
        );
    }
}
