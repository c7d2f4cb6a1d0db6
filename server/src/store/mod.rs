//! The persistence boundary: the server's own small `Store` trait, its atomic
//! write batches, and the sled implementation behind it.
//!
//! Everything above this module talks to [`Store`] only, so a second backend
//! can be added without touching services or handlers. The contract is small
//! on purpose: point reads, ordered prefix scans, one atomic, conditional
//! commit whose future resolves once the write is durable, and a consistent
//! online copy of everything (`backup`).

pub mod backup;
mod batch;
mod durability;
mod group_writer;
pub mod keys;
mod sled_store;

use std::future::Future;
use std::pin::Pin;

pub use batch::Batch;
pub use durability::Durability;
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

/// Renders a key for error messages and logs (keys use NUL separators).
pub fn printable(key: &[u8]) -> String {
    String::from_utf8_lossy(key).replace('\0', "/")
}
