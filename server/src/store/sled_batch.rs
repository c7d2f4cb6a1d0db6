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
    written: &HashMap<&[u8], Option<&[u8]>>,
    batch: &Batch,
) -> Result<(), StoreError> {
    for (key, expected) in &batch.expectations {
        let holds = match written.get(key.as_slice()) {
            Some(current) => *current == expected.as_deref(),
            None => db.get(key).map_err(backend)?.as_deref() == expected.as_deref(),
        };
        if !holds {
            return Err(StoreError::Conflict {
                key: printable(key),
            });
        }
    }
    Ok(())
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
