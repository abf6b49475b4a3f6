//! The filters checkpoints: which target script each source Sieve script was stored as and
//! the SHA-256 of the bytes stored, so a later pass updates its own copy when the source
//! changed, and leaves alone a copy someone edited on the target since.

use sqlx::Row;

use crate::{Store, StoreError};

/// One source script and its copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScriptRow {
    pub source_name: String,
    pub target_name: String,
    /// Hex SHA-256 of what was stored on the target.
    pub stored_sha256: String,
}

impl Store {
    /// Every script row of job `job`, by source name.
    pub async fn sieve_scripts(&self, job: &str) -> Result<Vec<SieveScriptRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_name, target_name, stored_sha256 FROM sieve_script_map \
             WHERE job_id = $1 ORDER BY source_name",
        )
        .bind(job)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| SieveScriptRow {
                source_name: row.get(0),
                target_name: row.get(1),
                stored_sha256: row.get(2),
            })
            .collect())
    }

    /// Records (or replaces) where a source script went and what was stored.
    pub async fn save_sieve_script(
        &self,
        job: &str,
        row: &SieveScriptRow,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sieve_script_map (job_id, source_name, target_name, stored_sha256) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (job_id, source_name) DO UPDATE SET \
             target_name = excluded.target_name, stored_sha256 = excluded.stored_sha256",
        )
        .bind(job)
        .bind(&row.source_name)
        .bind(&row.target_name)
        .bind(&row.stored_sha256)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
