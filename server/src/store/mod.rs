//! The persistence boundary: the server's own small `Store` trait, its atomic
//! write batches, and the sled implementation behind it.
//!
//! Everything above this module talks to [`Store`] only, so a second backend
//! can be added without touching services or handlers. The contract is small
//! on purpose: point reads, ordered prefix scans, one atomic, conditional
//! commit whose future resolves once the write is durable, the event log
//! those commits append to, and a consistent online copy of everything
//! (`backup`).
//!
//! # The event log contract
//! A [`Batch`] may carry events. A backend appends them in the same atomic
//! write as the batch's other writes and numbers them 1, 2, 3, … **in
//! commit order, without holes**: an event with a higher id never becomes
//! visible before one with a lower id, and a refused batch takes no id.
//! Events are *released* (readable with [`Store::events_after`], sent to
//! [`Store::subscribe_events`]) in id order once durable. A subscriber
//! that subscribes first and then reads the log after its last id misses
//! nothing: whatever is released after the read reaches the subscription.
//! A backup's copy holds a batch's events exactly when it holds its writes.

pub mod backup;
mod batch;
mod durability;
mod event_log;
mod group_writer;
pub mod keys;
mod sled_batch;
mod sled_store;

use std::future::Future;
use std::pin::Pin;

pub use batch::{counter, Batch};
pub use durability::Durability;
pub use event_log::CommittedEvent;
pub use sled_store::{DataDir, SledStore};

/// A key/value pair returned by a scan.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A boxed future, so that `Store` stays object-safe.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Errors of the persistence layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A condition of the batch did not hold: someone else wrote first.
    /// Nothing of the batch was applied.
    #[error("a concurrent write changed {key} first")]
    Conflict {
        /// The key whose expected value did not match (printable form).
        key: String,
    },
    /// The backend failed (I/O, corruption). Nothing of the batch is visible.
    #[error("storage backend failed: {0}")]
    Backend(String),
    /// The write was applied but could not be made durable; the caller must
    /// not acknowledge it.
    #[error("flush to disk failed: {0}")]
    Durability(String),
    /// A stored value could not be decoded.
    #[error("stored value at {key} is corrupt: {reason}")]
    Corrupt {
        /// The key of the corrupt value (printable form).
        key: String,
        /// What the decoder said.
        reason: String,
    },
}

/// The storage contract every backend implements.
pub trait Store: Send + Sync + 'static {
    /// Reads one value.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Returns up to `limit` entries whose keys start with `prefix`, in key
    /// order, starting strictly after `after` when given.
    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError>;

    /// Returns the last `limit` entries under `prefix`, in key order.
    fn scan_last(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// Counts the keys under `prefix` (used for reports, never on a hot path).
    fn count(&self, prefix: &[u8]) -> Result<usize, StoreError>;

    /// Applies the batch atomically if every expectation holds, then resolves
    /// once the write is durable under the configured [`Durability`].
    fn commit(&self, batch: Batch) -> StoreFuture<'_, ()>;

    /// Makes every write so far durable (used at shutdown).
    fn flush(&self) -> Result<(), StoreError>;

    /// Returns a fresh, unique, monotonically increasing number (for ids).
    fn next_id(&self) -> Result<u64, StoreError>;

    /// Up to `limit` released events with ids above `after`, in id order.
    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<CommittedEvent>, StoreError>;

    /// The id of the newest released event (0 before the first).
    fn last_event_id(&self) -> u64;

    /// Every event released from now on, in id order. A receiver that
    /// falls too far behind is told it lagged and reads the rest from
    /// [`Store::events_after`].
    fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<CommittedEvent>;

    /// Removes the oldest events, up to id `through`, in one batch of at
    /// most [`TRIM_BATCH`]; never the newest event (its id is where the
    /// numbering resumes). Returns how many were removed.
    fn trim_events(&self, through: u64) -> StoreFuture<'_, usize>;
    /// Writes a consistent copy of every key into the empty directory
    /// `dir` (the data file of [`backup`]) while commits go on: the copy
    /// equals the store at one moment, each batch wholly in or out. It
    /// blocks the calling thread until the copy is on disk. One backup at
    /// a time.
    fn backup(
        &self,
        dir: &std::path::Path,
        progress: backup::ProgressFn<'_>,
    ) -> Result<backup::BackupCopy, StoreError>;
}

/// Most events one [`Store::trim_events`] call removes.
pub const TRIM_BATCH: usize = 1024;

/// Renders a key for error messages and logs (keys use NUL separators).
pub fn printable(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "/")
}
