//! What an admin does to a stored migration, the same through the API and the web UI:
//! cancel (its credentials erased), retry (a failed one whose credentials are kept), purge
//! (a finished one's personal data, credentials and groupware addresses erased; its counts
//! kept). Each answers `false` when the migration is not in a state that allows it.

use mailferry_store::StoreError;

use crate::{now, AppState};

/// Cancels a waiting or running migration and erases its credentials. A pass of it running
/// in this process is asked to stop at once (between batches); one in another process stops
/// at its next lease renewal.
pub async fn cancel(state: &AppState, id: &str) -> Result<bool, StoreError> {
    if !state.store.cancel(id, now()).await? {
        return Ok(false);
    }
    if let Some(progress) = state.live_progress(id) {
        progress.request_stop();
    }
    state.store.erase_secrets(id).await?;
    Ok(true)
}

/// Puts a failed migration whose credentials are still stored back in the queue.
pub async fn retry(state: &AppState, id: &str) -> Result<bool, StoreError> {
    state.store.retry(id, now()).await
}

/// Erases a finished migration's personal data and what it still holds of its accounts,
/// in one transaction ([`mailferry_store::Store::purge`]).
pub async fn purge(state: &AppState, id: &str) -> Result<bool, StoreError> {
    state.store.purge(id).await
}
