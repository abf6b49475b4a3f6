//! The groupware checkpoints: calendars and address books mapped to their target
//! collection with the sync token (or ctag) of the last completed pass, and each source
//! object's fate. Written ahead like [`crate::checkpoint`]: a row in
//! [`DavObjectState::Pending`] is committed before its PUT is sent.

use sqlx::Row;

use crate::{last_of_each, parameter, placeholders, Store, StoreError, ROWS_PER_STATEMENT};

/// Where a source collection goes and how far it was copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavCollectionCheckpoint {
    pub source_href: String,
    /// `calendar` or `addressbook`.
    pub kind: String,
    pub target_href: String,
    pub sync_token: Option<String>,
    pub ctag: Option<String>,
    /// The target collection's sync token (else ctag) at the end of that pass: when it is
    /// still the same, nothing on the target changed and our copies are trusted.
    pub target_state: Option<String>,
}

/// What happened to one source object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DavObjectState {
    /// PUT sent (or about to be); outcome unknown until confirmed.
    Pending,
    /// Written by us.
    Copied,
    /// An object with its UID was on the target already; not written.
    Present,
    /// The source or the target would not have it; retried on the next pass.
    Failed,
}

impl DavObjectState {
    fn code(self) -> i64 {
        match self {
            DavObjectState::Pending => 0,
            DavObjectState::Copied => 1,
            DavObjectState::Present => 2,
            DavObjectState::Failed => 3,
        }
    }
    fn from_code(code: i64) -> Self {
        match code {
            1 => DavObjectState::Copied,
            2 => DavObjectState::Present,
            3 => DavObjectState::Failed,
            _ => DavObjectState::Pending,
        }
    }
}

/// One source object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DavObjectRow {
    pub source_href: String,
    pub uid: String,
    /// `event`, `task`, `journal`, `contact` or `other`.
    pub kind: String,
    pub source_etag: Option<String>,
    pub target_href: Option<String>,
    pub target_etag: Option<String>,
    pub state: DavObjectState,
    /// Why it failed, in the server's words.
    pub detail: Option<String>,
}

impl Store {
    pub async fn dav_collection(
        &self,
        job: &str,
        source_href: &str,
    ) -> Result<Option<DavCollectionCheckpoint>, StoreError> {
        let row = sqlx::query(
            "SELECT kind, target_href, sync_token, ctag, target_state FROM dav_collection_map \
             WHERE job_id = $1 AND source_href = $2",
        )
        .bind(job)
        .bind(source_href)
        .fetch_optional(self.pool())
        .await?;
        Ok(row.map(|row| DavCollectionCheckpoint {
            source_href: source_href.to_string(),
            kind: row.get(0),
            target_href: row.get(1),
            sync_token: row.get(2),
            ctag: row.get(3),
            target_state: row.get(4),
        }))
    }

    pub async fn save_dav_collection(
        &self,
        job: &str,
        checkpoint: &DavCollectionCheckpoint,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO dav_collection_map (job_id, source_href, kind, target_href, sync_token, ctag, target_state) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (job_id, source_href) DO UPDATE SET kind = excluded.kind, \
             target_href = excluded.target_href, sync_token = excluded.sync_token, ctag = excluded.ctag, \
             target_state = excluded.target_state",
        )
        .bind(job)
        .bind(&checkpoint.source_href)
        .bind(&checkpoint.kind)
        .bind(&checkpoint.target_href)
        .bind(checkpoint.sync_token.as_deref())
        .bind(checkpoint.ctag.as_deref())
        .bind(checkpoint.target_state.as_deref())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Every object row of a source collection.
    pub async fn dav_objects(
        &self,
        job: &str,
        source_collection: &str,
    ) -> Result<Vec<DavObjectRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT source_href, uid, kind, source_etag, target_href, target_etag, state, detail \
             FROM dav_object_map WHERE job_id = $1 AND source_collection = $2 ORDER BY source_href",
        )
        .bind(job)
        .bind(source_collection)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| DavObjectRow {
                source_href: row.get(0),
                uid: row.get(1),
                kind: row.get(2),
                source_etag: row.get(3),
                target_href: row.get(4),
                target_etag: row.get(5),
                state: DavObjectState::from_code(row.get(6)),
                detail: row.get(7),
            })
            .collect())
    }

    /// Writes object rows in one transaction (insert or replace), many per statement.
    pub async fn record_dav_objects(
        &self,
        job: &str,
        source_collection: &str,
        rows: &[DavObjectRow],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let rows = last_of_each(rows, |row| row.source_href.as_str());
        let mut tx = self.pool().begin().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO dav_object_map (job_id, source_collection, source_href, uid, kind, source_etag, target_href, target_etag, state, detail) \
                 VALUES {} \
                 ON CONFLICT (job_id, source_collection, source_href) DO UPDATE SET uid = excluded.uid, \
                 kind = excluded.kind, source_etag = excluded.source_etag, target_href = excluded.target_href, \
                 target_etag = excluded.target_etag, state = excluded.state, detail = excluded.detail",
                placeholders(self.backend(), chunk.len(), 10)
            );
            let mut query = sqlx::query(&sql);
            for row in chunk {
                query = query
                    .bind(job)
                    .bind(source_collection)
                    .bind(&row.source_href)
                    .bind(&row.uid)
                    .bind(&row.kind)
                    .bind(row.source_etag.as_deref())
                    .bind(row.target_href.as_deref())
                    .bind(row.target_etag.as_deref())
                    .bind(row.state.code())
                    .bind(row.detail.as_deref());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Removes the rows of source objects that no longer exist.
    pub async fn forget_dav_objects(
        &self,
        job: &str,
        source_collection: &str,
        source_hrefs: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        for chunk in source_hrefs.chunks(ROWS_PER_STATEMENT) {
            let p = |n: usize| parameter(self.backend(), n);
            let list: Vec<String> = (0..chunk.len()).map(|i| p(i + 3)).collect();
            let sql = format!(
                "DELETE FROM dav_object_map WHERE job_id = {} AND source_collection = {} AND source_href IN ({})",
                p(1),
                p(2),
                list.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(job).bind(source_collection);
            for href in chunk {
                query = query.bind(href);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The explicit DAV addresses of a migration, as (side, url).
    pub async fn migration_dav(
        &self,
        migration_id: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT side, url FROM migration_dav WHERE migration_id = $1 ORDER BY side",
        )
        .bind(migration_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
