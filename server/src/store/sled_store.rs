//! The sled 0.34 backend: one tree, keys namespaced by prefix (see `keys`).
//!
//! One tree lets a whole batch go through `apply_batch`, which sled applies
//! atomically (and which is several times cheaper than a multi-tree
//! transaction). In group mode (the default) every commit goes through the
//! one writer thread, which checks expectations itself; in the other modes
//! they are checked under striped in-process locks. Either way the database
//! is embedded and owned by this process, so the checks see every writer.
//!
//! The event log lives in the same tree (`keys::EVENT`); `event_log`
//! numbers a batch's events as it is applied and releases them once a
//! flush covers them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::Mutex;

use super::event_log::{id_of, EventLog};
use super::group_writer::GroupWriter;
use super::{
    keys, printable, Batch, CommittedEvent, Durability, Entry, Store, StoreError, StoreFuture,
    TRIM_BATCH,
};

/// Number of lock stripes guarding conditional writes.
const STRIPES: usize = 256;

/// sled's page cache unless configured otherwise (its own default, 1 GiB).
pub const DEFAULT_CACHE_BYTES: u64 = 1 << 30;

/// A sled database behind the [`Store`] trait.
pub struct SledStore {
    /// The open database (also the tree all data lives in).
    db: sled::Db,
    /// How commits become durable.
    durability: Durability,
    /// The writer thread, in group mode (it then does every commit).
    group: Option<Arc<GroupWriter>>,
    /// Joined at shutdown so the queued writes complete.
    writer: Mutex<Option<JoinHandle<()>>>,
    /// Serialises conditional writes touching the same keys (modes other
    /// than group, where commits run on the callers' threads).
    stripes: Vec<Mutex<()>>,
    /// Event ids, events waiting for a flush, and the fan-out.
    events: Arc<EventLog>,
}

fn backend(e: sled::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn stripe_of(key: &[u8]) -> usize {
    // FNV-1a: cheap and well spread for short keys.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % STRIPES as u64) as usize
}

impl SledStore {
    /// Opens (or creates) the database in `dir` with the default cache.
    pub fn open(dir: &Path, durability: Durability) -> Result<Self, StoreError> {
        Self::open_with_cache(dir, durability, DEFAULT_CACHE_BYTES)
    }

    /// Like [`SledStore::open`] with a page cache of `cache_bytes`.
    pub fn open_with_cache(
        dir: &Path,
        durability: Durability,
        cache_bytes: u64,
    ) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            // Our writer decides when to flush; sled's own periodic flush
            // would only compete with it.
            .flush_every_ms(if durability == Durability::None {
                Some(500)
            } else {
                None
            })
            .open()
            .map_err(backend)?;
        let last_event = match db.scan_prefix(keys::prefix(keys::EVENT, &[])).next_back() {
            Some(entry) => id_of(&entry.map_err(backend)?.0)?,
            None => 0,
        };
        let events = Arc::new(EventLog::open(last_event));
        let (group, writer) = if durability == Durability::Group {
            let (gw, handle) = GroupWriter::start(db.clone(), Arc::clone(&events));
            (Some(gw), Some(handle))
        } else {
            (None, None)
        };
        Ok(Self {
            db,
            durability,
            group,
            writer: Mutex::new(writer),
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
            events,
        })
    }

    /// Applies the batch now; returns once it is visible (not yet durable)
    /// with the newest event id it applied (`None`: it carried no event).
    fn apply(&self, batch: &Batch) -> Result<Option<u64>, StoreError> {
        let mut stripes: Vec<usize> = batch
            .expectations
            .iter()
            .map(|(k, _)| stripe_of(k))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        // Locks are taken in ascending order, so two batches never deadlock.
        let _guards: Vec<_> = stripes.iter().map(|i| self.stripes[*i].lock()).collect();
        unmet_expectation(&self.db, &HashMap::new(), batch)?;
        let mut sled_batch = sled::Batch::default();
        add_writes(&mut sled_batch, batch);
        if batch.events.is_empty() {
            return self
                .db
                .apply_batch(sled_batch)
                .map_err(backend)
                .map(|_| None);
        }
        self.events
            .apply([batch], &mut sled_batch, |b| {
                self.db.apply_batch(std::mem::take(b)).map_err(backend)
            })
            .map(Some)
    }
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

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key).map_err(backend)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        let iter = match after {
            Some(after) => {
                let mut start = after.to_vec();
                start.push(0);
                self.db.range(start..)
            }
            None => self.db.range(prefix.to_vec()..),
        };
        for item in iter {
            let (k, v) = item.map_err(backend)?;
            if !k.starts_with(prefix) || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    fn scan_last(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::with_capacity(limit.min(1024));
        for item in self.db.scan_prefix(prefix).rev().take(limit) {
            let (k, v) = item.map_err(backend)?;
            out.push((k.to_vec(), v.to_vec()));
        }
        out.reverse();
        Ok(out)
    }

    fn count(&self, prefix: &[u8]) -> Result<usize, StoreError> {
        let mut n = 0;
        for item in self.db.scan_prefix(prefix) {
            item.map_err(backend)?;
            n += 1;
        }
        Ok(n)
    }

    fn commit(&self, batch: Batch) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            if let Some(group) = &self.group {
                return group.commit(batch).await;
            }
            let last_event = self.apply(&batch)?;
            if self.durability == Durability::PerWrite {
                let db = self.db.clone();
                tokio::task::spawn_blocking(move || db.flush())
                    .await
                    .map_err(|e| StoreError::Durability(e.to_string()))?
                    .map_err(|e| StoreError::Durability(e.to_string()))?;
            }
            // The flush covered every event applied before this one (their
            // ids are lower), so all of them are released, in order.
            if let Some(id) = last_event {
                self.events.release_through(id);
            }
            Ok(())
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(backend)
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        self.db.generate_id().map_err(backend)
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<CommittedEvent>, StoreError> {
        let released = self.events.released();
        if after >= released {
            return Ok(Vec::new());
        }
        let prefix = keys::prefix(keys::EVENT, &[]);
        let mut out = Vec::new();
        for (key, value) in self.scan(&prefix, Some(&keys::event(after)), limit)? {
            let id = id_of(&key)?;
            if id > released {
                break;
            }
            out.push(CommittedEvent {
                id,
                payload: Arc::from(value),
            });
        }
        Ok(out)
    }

    fn last_event_id(&self) -> u64 {
        self.events.released()
    }

    fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<CommittedEvent> {
        self.events.subscribe()
    }

    fn trim_events(&self, through: u64) -> StoreFuture<'_, usize> {
        Box::pin(async move {
            let through = through.min(self.events.applied().saturating_sub(1));
            let prefix = keys::prefix(keys::EVENT, &[]);
            let mut batch = Batch::new();
            let mut removed = 0;
            for (key, _) in self.scan(&prefix, None, TRIM_BATCH)? {
                if id_of(&key)? > through {
                    break;
                }
                batch.delete(key);
                removed += 1;
            }
            self.commit(batch).await?;
            Ok(removed)
        })
    }
}

impl Drop for SledStore {
    fn drop(&mut self) {
        if let Some(group) = &self.group {
            group.stop();
        }
        if let Some(handle) = self.writer.lock().take() {
            let _ = handle.join();
        }
        let _ = self.db.flush();
    }
}
