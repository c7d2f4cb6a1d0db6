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
//! flush covers them. Every apply goes through the backup tee
//! (`backup::Tee`), so a backup sees each batch (and its events) applied
//! while it scans; ids are sled's id counter plus the store's id floor
//! (`keys::ID_FLOOR`), which a restored store carries over from the backup.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use fs2::FileExt;
use parking_lot::Mutex;

use super::backup::{self, BackupCopy, DataWriter, Phase, Progress, ProgressFn, Tee};
use super::event_log::{id_of, EventLog};
use super::group_writer::GroupWriter;
use super::sled_batch::{add_writes, backend, current_value, unmet_expectation};
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
    /// The commit point a running backup watches.
    tee: Arc<Tee>,
    /// Added to sled's id counter (see `keys::ID_FLOOR`).
    id_floor: u64,
}

/// What a directory holds, for a restore that must not overwrite data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDir {
    /// Missing or empty.
    Free,
    /// A store a running process holds open (its file lock is taken).
    InUse,
    /// Files, but no process holds them.
    HasData,
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
        let id_floor = match db.get(keys::ID_FLOOR).map_err(backend)? {
            None => 0,
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| StoreError::Corrupt {
                    key: printable(keys::ID_FLOOR),
                    reason: "not a number".into(),
                })?,
        };
        let tee = Arc::new(Tee::default());
        let (group, writer) = if durability == Durability::Group {
            let (gw, handle) =
                GroupWriter::start(db.clone(), Arc::clone(&events), Arc::clone(&tee));
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
            tee,
            id_floor,
        })
    }

    /// What `dir` holds: nothing, a store open in a running process, or
    /// other files. (sled locks its `db` file while a process has it open.)
    pub fn data_dir_state(dir: &Path) -> std::io::Result<DataDir> {
        let mut entries = match std::fs::read_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DataDir::Free),
            other => other?,
        };
        if entries.next().is_none() {
            return Ok(DataDir::Free);
        }
        let lock = dir.join("db");
        if lock.is_file() {
            let file = std::fs::File::open(&lock)?;
            if file.try_lock_exclusive().is_err() {
                return Ok(DataDir::InUse);
            }
            let _ = FileExt::unlock(&file);
        }
        Ok(DataDir::HasData)
    }

    /// Applies the batch now; returns once it is visible (not yet durable)
    /// with the newest event id it applied (`None`: it carried no event).
    fn apply(&self, batch: &mut Batch) -> Result<Option<u64>, StoreError> {
        let mut stripes: Vec<usize> = batch
            .expectations
            .iter()
            .map(|(k, _)| stripe_of(k))
            .chain(batch.adds.iter().map(|(k, _)| stripe_of(k)))
            .collect();
        stripes.sort_unstable();
        stripes.dedup();
        // Locks are taken in ascending order, so two batches never deadlock.
        let _guards: Vec<_> = stripes.iter().map(|i| self.stripes[*i].lock()).collect();
        let none = HashMap::new();
        unmet_expectation(&self.db, &none, batch)?;
        batch.resolve_adds(|key| current_value(&self.db, &none, key))?;
        let batch = &*batch;
        let mut sled_batch = sled::Batch::default();
        add_writes(&mut sled_batch, batch);
        self.tee.apply(&[batch], || {
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
        })
    }

    /// The backup (see `backup`): tee, scan, stop, merge.
    fn copy_into(&self, dir: &Path, progress: ProgressFn<'_>) -> Result<BackupCopy, StoreError> {
        let scratch = dir.join(backup::SCRATCH_FILE);
        let tee = self.tee.start()?;
        let mut scan = DataWriter::create(&scratch)?;
        for item in self.db.iter() {
            let (k, v) = item.map_err(backend)?;
            scan.write(&k, &v)?;
            if scan.keys() % 4096 == 0 {
                progress(Progress {
                    phase: Phase::Scanning,
                    keys: scan.keys(),
                    bytes: scan.bytes(),
                });
            }
        }
        scan.finish()?;
        let mut changes = tee.stop();
        let consistent_at = chrono::Utc::now();
        let written_meanwhile = changes.len() as u64;
        // Above every id handed out so far (sled's counter is monotonic),
        // so the restored store never hands one out again.
        let floor = self.next_id()?;
        changes.insert(
            keys::ID_FLOOR.to_vec(),
            Some(floor.to_string().into_bytes()),
        );
        let (keys, bytes, sha256) =
            backup::merge(&scratch, changes, &dir.join(backup::DATA_FILE), progress)?;
        std::fs::remove_file(&scratch)
            .map_err(|e| StoreError::Backend(format!("{}: {e}", scratch.display())))?;
        Ok(BackupCopy {
            keys,
            bytes,
            sha256,
            consistent_at,
            written_meanwhile,
        })
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

    fn commit(&self, mut batch: Batch) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            if batch.is_empty() {
                return Ok(());
            }
            if let Some(group) = &self.group {
                return group.commit(batch).await;
            }
            let last_event = self.apply(&mut batch)?;
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
        Ok(self.id_floor + self.db.generate_id().map_err(backend)?)
    }

    fn backup(&self, dir: &Path, progress: ProgressFn<'_>) -> Result<BackupCopy, StoreError> {
        let copy = self.copy_into(dir, progress);
        if copy.is_err() {
            // Leave no half copy behind that could be taken for a backup.
            for f in [backup::SCRATCH_FILE, backup::DATA_FILE] {
                let _ = std::fs::remove_file(dir.join(f));
            }
        }
        copy
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    use super::*;
    use crate::store::backup::{DataReader, DATA_FILE};

    fn read_copy(dir: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut reader = DataReader::open(&dir.join(DATA_FILE)).expect("open copy");
        let mut out = BTreeMap::new();
        while let Some((k, v)) = reader.next_record().expect("record") {
            out.insert(k, v);
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_backup_under_concurrent_writes_holds_whole_batches_and_every_earlier_write() {
        // Given a store with enough keys that a scan takes a while
        let dir = tempfile::tempdir().expect("dir");
        let store = Arc::new(SledStore::open(dir.path(), Durability::Group).expect("open"));
        let mut fill = Batch::new();
        for i in 0..20_000 {
            fill.put(format!("m/{i:06}"), vec![7u8; 100]);
        }
        store.commit(fill).await.expect("fill");

        // And writers that each change a pair of keys far apart in one batch
        // (`a/n` first in a scan, `z/n` last) and log their own sequence
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Vec<AtomicU64>> = Arc::new((0..4).map(|_| AtomicU64::new(0)).collect());
        let writers: Vec<_> = (0..4u64)
            .map(|w| {
                let (store, stop, acked) =
                    (Arc::clone(&store), Arc::clone(&stop), Arc::clone(&acked));
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        i += 1;
                        let n = (i * 7 + w * 13) % 50;
                        let value = format!("{w}-{i}");
                        let mut batch = Batch::new();
                        batch.put(format!("a/{n:02}"), value.clone());
                        batch.put(format!("z/{n:02}"), value);
                        batch.put(format!("seq/{w}/{i:08}"), "x");
                        store.commit(batch).await.expect("commit");
                        acked[w as usize].store(i, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        while acked.iter().any(|a| a.load(Ordering::SeqCst) < 20) {
            tokio::task::yield_now().await;
        }

        // When a backup runs while they write
        let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
        let backup_dir = tempfile::tempdir().expect("backup dir");
        let copy = {
            let (store, to) = (Arc::clone(&store), backup_dir.path().to_path_buf());
            tokio::task::spawn_blocking(move || store.backup(&to, &|_| {}))
                .await
                .expect("backup thread")
                .expect("backup")
        };
        stop.store(true, Ordering::SeqCst);
        for w in writers {
            w.await.expect("writer");
        }

        // Then no batch is torn: each pair holds one batch's value
        let copied = read_copy(backup_dir.path());
        for n in 0..50 {
            let a = copied.get(format!("a/{n:02}").as_bytes());
            let z = copied.get(format!("z/{n:02}").as_bytes());
            assert_eq!(a, z, "pair {n} torn");
        }
        // And every write acknowledged before the backup began is in it
        for (w, last) in before.iter().enumerate() {
            for i in 1..=*last {
                assert!(
                    copied.contains_key(format!("seq/{w}/{i:08}").as_bytes()),
                    "write {w}/{i} acknowledged before the backup is missing"
                );
            }
        }
        assert_eq!(copy.keys as usize, copied.len());
        assert_eq!(copied.range(b"m/".to_vec()..b"m0".to_vec()).count(), 20_000);
        // (the writers kept writing during it: this is a backup under load)
        assert!(
            copy.written_meanwhile > 0,
            "no write landed during the backup"
        );

        // When the copy is loaded into a new store
        let restored_dir = tempfile::tempdir().expect("restore dir");
        let restored = SledStore::open(restored_dir.path(), Durability::None).expect("open");
        let loaded = backup::load(&restored, &backup_dir.path().join(DATA_FILE), &|_| {})
            .await
            .expect("load");
        assert_eq!((loaded.0, loaded.2), (copy.keys, copy.sha256.clone()));
        drop(restored);
        let restored = loop {
            match SledStore::open(restored_dir.path(), Durability::None) {
                Ok(s) => break s,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        };
        // Then it holds exactly the copy, and hands out ids above the original's
        let all = restored.scan(b"", None, usize::MAX).expect("scan");
        assert_eq!(all.len(), copied.len());
        let original_id = store.next_id().expect("id");
        let floor: u64 = String::from_utf8(copied[keys::ID_FLOOR].clone())
            .unwrap()
            .parse()
            .unwrap();
        assert!(floor < original_id);
        assert!(restored.next_id().expect("id") >= floor);
    }

    #[test]
    fn a_second_backup_at_once_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let store = SledStore::open(dir.path(), Durability::None).expect("open");
        let _running = store.tee.start().expect("first");
        let to = tempfile::tempdir().expect("to");
        assert!(store.backup(to.path(), &|_| {}).is_err());
        assert_eq!(
            std::fs::read_dir(to.path()).unwrap().count(),
            0,
            "nothing left behind"
        );
    }
}
