//! Licence keys and the migration allowance.
//!
//! The allowance is the free migrations (a number the caller passes in) plus the migrations
//! of every licence key added. A migration counts once it is stored:
//! [`Store::insert_migrations`] raises the `allowance.used` counter with a conditional
//! `UPDATE` in the same transaction as its inserts, so that two submissions at once can
//! never take more than what is left, on SQLite (one writer at a time) and on PostgreSQL
//! (the row lock makes the second `UPDATE` wait and check again). Keys are stored by their
//! id, so that a key counts once however often it is entered.

use sqlx::Row;

use crate::migration::NewMigration;
use crate::{Store, StoreError};

/// A licence key as stored: what it says, and when it was added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicenceRecord {
    pub id: String,
    pub migrations: u64,
    pub issued_to: String,
    pub issued_at: i64,
    pub added_at: i64,
    pub key_text: String,
}

/// Migrations used, and what the licence keys add to the free ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowanceRecord {
    pub used: u64,
    pub licensed: u64,
}

/// Not enough left: `remaining` of the allowance, `wanted` by the submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Short {
    pub remaining: u64,
    pub wanted: u64,
}

/// A migration to store with its sealed credentials, one per side (`"source"`, `"target"`).
pub type SealedMigration<'a> = (&'a NewMigration, &'a [(&'a str, Vec<u8>)]);

fn to_db(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn from_db(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// `SUM` is numeric on PostgreSQL: cast it back to a 64-bit integer on both backends.
const LICENSED: &str = "SELECT CAST(COALESCE(SUM(migrations), 0) AS BIGINT) FROM licence_key";

impl Store {
    /// Adds a key. `false` if a key with this id was added before (it counts once).
    pub async fn add_licence_key(&self, key: &LicenceRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO licence_key (id, migrations, issued_to, issued_at, added_at, key_text) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&key.id)
        .bind(to_db(key.migrations))
        .bind(&key.issued_to)
        .bind(key.issued_at)
        .bind(key.added_at)
        .bind(&key.key_text)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The keys added, oldest first.
    pub async fn licence_keys(&self) -> Result<Vec<LicenceRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, migrations, issued_to, issued_at, added_at, key_text FROM licence_key \
             ORDER BY added_at, id",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(LicenceRecord {
                    id: row.try_get("id")?,
                    migrations: from_db(row.try_get("migrations")?),
                    issued_to: row.try_get("issued_to")?,
                    issued_at: row.try_get("issued_at")?,
                    added_at: row.try_get("added_at")?,
                    key_text: row.try_get("key_text")?,
                })
            })
            .collect()
    }

    /// Migrations used so far and the migrations the keys add.
    pub async fn allowance(&self) -> Result<AllowanceRecord, StoreError> {
        let used: i64 = sqlx::query_scalar("SELECT used FROM allowance WHERE id = 1")
            .fetch_one(self.pool())
            .await?;
        let licensed: i64 = sqlx::query_scalar(LICENSED).fetch_one(self.pool()).await?;
        Ok(AllowanceRecord {
            used: from_db(used),
            licensed: from_db(licensed),
        })
    }

    /// Stores migrations (state `Waiting`) with their sealed credentials, all or none, in
    /// one transaction that also counts them against the allowance of `free` migrations
    /// plus the licence keys. `Ok(Err(short))` when the allowance cannot cover all of them:
    /// then nothing is stored or counted.
    pub async fn insert_migrations(
        &self,
        migrations: &[SealedMigration<'_>],
        free: u64,
    ) -> Result<Result<(), Short>, StoreError> {
        let wanted = migrations.len() as u64;
        let mut tx = self.pool().begin().await?;
        let counted = sqlx::query(&format!(
            "UPDATE allowance SET used = used + $1 WHERE id = 1 AND used + $1 <= $2 + ({LICENSED})"
        ))
        .bind(to_db(wanted))
        .bind(to_db(free))
        .execute(&mut *tx)
        .await?;
        if counted.rows_affected() == 0 {
            tx.rollback().await?;
            let allowance = self.allowance().await?;
            let remaining = (free + allowance.licensed).saturating_sub(allowance.used);
            return Ok(Err(Short { remaining, wanted }));
        }
        for (new, sealed) in migrations {
            Self::insert_one(&mut tx, new, sealed).await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn insert_one(
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        new: &NewMigration,
        sealed_secrets: &[(&str, Vec<u8>)],
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO migration (id, state, \
             source_server_type, source_email, source_username, source_server, source_insecure, \
             target_server_type, target_email, target_username, target_server, target_insecure, \
             start_at, resync_at, created_at, updated_at, filters) \
             VALUES ($1, 'waiting', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15)",
        )
        .bind(&new.id)
        .bind(&new.source.server_type)
        .bind(&new.source.email)
        .bind(&new.source.username)
        .bind(&new.source.server)
        .bind(i64::from(new.source.insecure))
        .bind(&new.target.server_type)
        .bind(&new.target.email)
        .bind(&new.target.username)
        .bind(&new.target.server)
        .bind(i64::from(new.target.insecure))
        .bind(new.start_at)
        .bind(new.resync_at)
        .bind(new.created_at)
        .bind(i64::from(new.filters))
        .execute(&mut **tx)
        .await?;
        for (side, url) in &new.dav {
            sqlx::query("INSERT INTO migration_dav (migration_id, side, url) VALUES ($1, $2, $3)")
                .bind(&new.id)
                .bind(side)
                .bind(url)
                .execute(&mut **tx)
                .await?;
        }
        for (side, sealed) in sealed_secrets {
            sqlx::query(
                "INSERT INTO migration_secret (migration_id, side, sealed) VALUES ($1, $2, $3)",
            )
            .bind(&new.id)
            .bind(*side)
            .bind(sealed.as_slice())
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
