//! Applying a [`Batch`] to sled: checking its expectations (against what
//! earlier batches of the same group commit wrote, or else the tree) and
//! adding its writes to a sled batch. Shared by the store's own commits and
//! the group writer's rounds.

use std::collections::HashMap;

use super::{printable, Batch, StoreError};

/// A sled error as the store reports it.
pub(super) fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// Fails with a conflict when an expectation of `batch` does not hold, its
/// key read from `written` (what earlier batches of a group commit wrote)
/// or else from the tree.
pub(super) fn unmet_expectation(
    db: &sled::Db,
    written: &HashMap<Vec<u8>, Option<Vec<u8>>>,
    batch: &Batch,
) -> Result<(), StoreError> {
    for (key, expected) in &batch.expectations {
        if current_value(db, written, key)?.as_deref() != expected.as_deref() {
            return Err(StoreError::Conflict {
                key: printable(key),
            });
        }
    }
    Ok(())
}

/// The value of `key` as `written` (what earlier batches of a group commit
/// wrote) or else the tree holds it.
pub(super) fn current_value(
    db: &sled::Db,
    written: &HashMap<Vec<u8>, Option<Vec<u8>>>,
    key: &[u8],
) -> Result<Option<Vec<u8>>, StoreError> {
    match written.get(key) {
        Some(current) => Ok(current.clone()),
        None => Ok(db.get(key).map_err(backend)?.map(|v| v.to_vec())),
    }
}

/// Adds the puts and deletes of `batch` to a sled batch, in order.
pub(super) fn add_writes(sled_batch: &mut sled::Batch, batch: &Batch) {
    for (key, value) in &batch.writes {
        match value {
            Some(v) => sled_batch.insert(key.as_slice(), v.as_slice()),
            None => sled_batch.remove(key.as_slice()),
        }
    }
}
