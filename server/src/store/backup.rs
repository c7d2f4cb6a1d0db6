//! Online backup: how a consistent copy of the store is taken while commits
//! go on, the engine-neutral file it is written to, and loading that file
//! into an empty store.
//!
//! # Why a scan alone is not a copy
//! sled 0.34's iterators are not snapshot-isolated: a scan running beside
//! commits can read one key of a batch before the batch and another after
//! it (a deal moved, its stage index not). So a backup does not trust the
//! scan alone:
//! 1. It starts a [`Tee`] at the store's commit point: from then on every
//!    batch the store applies is also recorded, under the same lock as the
//!    apply, so the tee holds the last value each key was given, in the
//!    order the store applied them.
//! 2. It scans every key into a scratch file. Each value it reads is the
//!    key's value at some moment after the tee started.
//! 3. It stops the tee, at the commit point again. At that moment a key the
//!    tee recorded holds the tee's last value; any other key has not changed
//!    since the tee started, so it holds what the scan read.
//! 4. It merges the scan and the tee in key order into the data file.
//!
//! The copy therefore equals the store at the moment the tee stopped: each
//! batch is wholly in it or wholly out. Writes are never paused: starting
//! and stopping the tee wait for at most the one apply in progress (a group
//! commit round's `apply_batch`, about 7 µs a key). While a backup runs,
//! every applied write is also copied into memory (the last value of each
//! key written meanwhile, so memory grows with what is written during the
//! backup, not with the size of the store).
//!
//! # The data file
//! `data` in the backup directory: every key in strictly increasing order,
//! each as its length (`u32`, little-endian), its bytes, the value's length
//! and bytes. Nothing in it is specific to sled, so another engine can load
//! it. The service layer writes `manifest.json` beside it last, with the
//! record count and the file's SHA-256; a directory without a manifest is
//! not a finished backup.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use sha2::{Digest, Sha256};

use super::{Batch, Entry, Store, StoreError};

/// The data file's name in a backup directory.
pub const DATA_FILE: &str = "data";

/// The scan's scratch file while a backup runs (removed at the end).
pub const SCRATCH_FILE: &str = "scan.partial";

/// How much a restore loads per committed batch.
const LOAD_BATCH_BYTES: usize = 8 << 20;

/// Progress is reported every this many keys.
const PROGRESS_EVERY: u64 = 4096;

/// What a backup or restore is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Reading every key of the live store.
    Scanning,
    /// Writing the copy: the scan with the writes made meanwhile.
    Merging,
    /// Checking a backup's data file against its manifest.
    Verifying,
    /// Writing a backup's keys into the new store.
    Loading,
}

/// How far a backup or restore has come.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Keys done in this phase.
    pub keys: u64,
    /// Bytes (keys and values) done in this phase.
    pub bytes: u64,
}

/// Where progress is reported.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Sync);

/// What a finished copy holds.
#[derive(Debug, Clone)]
pub struct BackupCopy {
    /// Keys in the data file.
    pub keys: u64,
    /// Bytes of the data file.
    pub bytes: u64,
    /// SHA-256 of the data file, hex.
    pub sha256: String,
    /// The moment the copy is of (the tee stopped).
    pub consistent_at: chrono::DateTime<chrono::Utc>,
    /// Keys written while the backup ran (their last values are in the copy).
    pub written_meanwhile: u64,
}

fn io_error(path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Backend(format!("{}: {e}", path.display()))
}

/// The last value of every key written since a backup started (`None`:
/// deleted).
pub(crate) type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The store's commit point, seen by a running backup. Every apply goes
/// through [`Tee::apply`], one at a time (sled's `apply_batch` takes a
/// process-wide write lock anyway, so this serialises nothing that ran in
/// parallel).
#[derive(Default)]
pub(crate) struct Tee {
    /// The changes recorded, while a backup runs.
    changes: Mutex<Option<Changes>>,
}

impl Tee {
    /// Runs `apply`, which applies `batches` to the engine and returns the
    /// id of the last event it numbered (`None` when the batches carry no
    /// event), and records their writes and events if a backup is running
    /// and the apply succeeded. Events are numbered consecutively in batch
    /// order, so the last id tells each event's key.
    pub(crate) fn apply(
        &self,
        batches: &[&Batch],
        apply: impl FnOnce() -> Result<Option<u64>, StoreError>,
    ) -> Result<Option<u64>, StoreError> {
        let mut changes = self.changes.lock();
        let last_event = apply()?;
        if let Some(changes) = changes.as_mut() {
            for batch in batches {
                for (key, value) in &batch.writes {
                    changes.insert(key.clone(), value.clone());
                }
            }
            if let Some(last) = last_event {
                let count: u64 = batches.iter().map(|b| b.events.len() as u64).sum();
                let ids = (last + 1 - count)..=last;
                let payloads = batches.iter().flat_map(|b| &b.events);
                for (id, payload) in ids.zip(payloads) {
                    changes.insert(super::keys::event(id), Some(payload.clone()));
                }
            }
        }
        Ok(last_event)
    }

    /// Starts recording; a second backup at once is refused.
    pub(crate) fn start(&self) -> Result<TeeRun<'_>, StoreError> {
        let mut changes = self.changes.lock();
        if changes.is_some() {
            return Err(StoreError::Backend("a backup is already running".into()));
        }
        *changes = Some(Changes::new());
        Ok(TeeRun(self))
    }
}

/// A running tee: recording stops when it is stopped or dropped.
pub(crate) struct TeeRun<'a>(&'a Tee);

impl TeeRun<'_> {
    /// Stops recording; returns what was written since the start.
    pub(crate) fn stop(self) -> Changes {
        self.0.changes.lock().take().unwrap_or_default()
    }
}

impl Drop for TeeRun<'_> {
    fn drop(&mut self) {
        self.0.changes.lock().take();
    }
}

/// Writes records in strictly increasing key order, hashing as it goes.
pub(crate) struct DataWriter {
    path: PathBuf,
    out: BufWriter<File>,
    hasher: Sha256,
    keys: u64,
    bytes: u64,
    last: Option<Vec<u8>>,
}

impl DataWriter {
    /// Creates the file (it must not exist).
    pub(crate) fn create(path: &Path) -> Result<Self, StoreError> {
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            keys: 0,
            bytes: 0,
            last: None,
        })
    }

    /// Appends one record.
    pub(crate) fn write(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if self.last.as_deref().is_some_and(|last| last >= key) {
            return Err(StoreError::Backend(format!(
                "{}: keys out of order at {}",
                self.path.display(),
                super::printable(key)
            )));
        }
        for part in [key, value] {
            let len = u32::try_from(part.len()).map_err(|_| {
                StoreError::Backend(format!("a value of {} bytes is too large", part.len()))
            })?;
            let len = len.to_le_bytes();
            self.hasher.update(len);
            self.hasher.update(part);
            self.out
                .write_all(&len)
                .and_then(|()| self.out.write_all(part))
                .map_err(|e| io_error(&self.path, e))?;
            self.bytes += 4 + part.len() as u64;
        }
        self.keys += 1;
        self.last = Some(key.to_vec());
        Ok(())
    }

    /// Keys written so far.
    pub(crate) fn keys(&self) -> u64 {
        self.keys
    }

    /// Bytes written so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Flushes the file to disk; returns (keys, bytes, SHA-256).
    pub(crate) fn finish(self) -> Result<(u64, u64, String), StoreError> {
        let path = self.path;
        let file = self
            .out
            .into_inner()
            .map_err(|e| io_error(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_error(&path, e))?;
        Ok((self.keys, self.bytes, hex::encode(self.hasher.finalize())))
    }
}

/// Reads a data file record by record, hashing as it goes.
pub struct DataReader {
    path: PathBuf,
    input: BufReader<File>,
    hasher: Sha256,
    keys: u64,
    bytes: u64,
}

impl DataReader {
    /// Opens a data file.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let file = File::open(path).map_err(|e| io_error(path, e))?;
        Ok(Self {
            path: path.to_path_buf(),
            input: BufReader::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            keys: 0,
            bytes: 0,
        })
    }

    /// The next record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Entry>, StoreError> {
        let Some(key) = self.part(true)? else {
            return Ok(None);
        };
        let value = self.part(false)?.ok_or_else(|| self.truncated())?;
        self.keys += 1;
        Ok(Some((key, value)))
    }

    /// One length-prefixed part; `None` at a clean end before a key.
    fn part(&mut self, may_end: bool) -> Result<Option<Vec<u8>>, StoreError> {
        let at_end = self
            .input
            .fill_buf()
            .map_err(|e| io_error(&self.path, e))?
            .is_empty();
        if at_end && may_end {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.read_exact(&mut len)?;
        let mut part = vec![0u8; u32::from_le_bytes(len) as usize];
        self.read_exact(&mut part)?;
        self.hasher.update(len);
        self.hasher.update(&part);
        self.bytes += 4 + part.len() as u64;
        Ok(Some(part))
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), StoreError> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => self.truncated(),
            _ => io_error(&self.path, e),
        })
    }

    fn truncated(&self) -> StoreError {
        StoreError::Corrupt {
            key: self.path.display().to_string(),
            reason: "the backup's data file ends in the middle of a record".into(),
        }
    }

    /// Records read so far.
    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Bytes read so far.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// The SHA-256 of what was read, hex.
    pub fn sha256(self) -> String {
        hex::encode(self.hasher.finalize())
    }
}

/// Writes the copy: the scan in `scratch` with `changes` laid over it, in
/// key order, into `out`; returns (keys, bytes, SHA-256).
pub(crate) fn merge(
    scratch: &Path,
    changes: Changes,
    out: &Path,
    progress: ProgressFn<'_>,
) -> Result<(u64, u64, String), StoreError> {
    let mut scan = DataReader::open(scratch)?;
    let mut writer = DataWriter::create(out)?;
    let mut changes = changes.into_iter().peekable();
    let mut scanned = scan.next_record()?;
    loop {
        let take_change = match (&scanned, changes.peek()) {
            (None, None) => break,
            (Some(_), None) => false,
            (None, Some(_)) => true,
            (Some((k, _)), Some((c, _))) => c <= k,
        };
        if take_change {
            let (key, value) = changes.next().expect("peeked");
            // A change replaces the scanned value of the same key.
            if scanned.as_ref().is_some_and(|(k, _)| *k == key) {
                scanned = scan.next_record()?;
            }
            if let Some(v) = value {
                writer.write(&key, &v)?;
            }
        } else if let Some((k, v)) = scanned.take() {
            writer.write(&k, &v)?;
            scanned = scan.next_record()?;
        }
        if writer.keys() % PROGRESS_EVERY == 0 {
            progress(Progress {
                phase: Phase::Merging,
                keys: writer.keys(),
                bytes: writer.bytes(),
            });
        }
    }
    writer.finish()
}

/// Reads a data file through; returns (keys, bytes, SHA-256).
pub fn verify(data: &Path, progress: ProgressFn<'_>) -> Result<(u64, u64, String), StoreError> {
    let mut reader = DataReader::open(data)?;
    while reader.next_record()?.is_some() {
        if reader.keys() % PROGRESS_EVERY == 0 {
            progress(Progress {
                phase: Phase::Verifying,
                keys: reader.keys(),
                bytes: reader.bytes(),
            });
        }
    }
    Ok((reader.keys(), reader.bytes(), reader.sha256()))
}

/// Writes every record of a data file into `store` (which should be empty)
/// and flushes it; returns (keys, bytes, SHA-256) of what was loaded.
pub async fn load(
    store: &dyn Store,
    data: &Path,
    progress: ProgressFn<'_>,
) -> Result<(u64, u64, String), StoreError> {
    let mut reader = DataReader::open(data)?;
    let mut batch = Batch::new();
    let mut pending = 0;
    loop {
        let record = reader.next_record()?;
        let end = record.is_none();
        if let Some((key, value)) = record {
            pending += key.len() + value.len();
            batch.put(key, value);
        }
        if pending >= LOAD_BATCH_BYTES || (end && !batch.is_empty()) {
            store.commit(std::mem::take(&mut batch)).await?;
            pending = 0;
            progress(Progress {
                phase: Phase::Loading,
                keys: reader.keys(),
                bytes: reader.bytes(),
            });
        }
        if end {
            break;
        }
    }
    store.flush()?;
    Ok((reader.keys(), reader.bytes(), reader.sha256()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_of(dir: &Path, name: &str, records: &[(&str, &str)]) -> PathBuf {
        let path = dir.join(name);
        let mut w = DataWriter::create(&path).expect("create");
        for (k, v) in records {
            w.write(k.as_bytes(), v.as_bytes()).expect("write");
        }
        w.finish().expect("finish");
        path
    }

    fn records_of(path: &Path) -> Vec<(String, String)> {
        let mut r = DataReader::open(path).expect("open");
        let mut out = Vec::new();
        while let Some((k, v)) = r.next_record().expect("record") {
            out.push((String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap()));
        }
        out
    }

    #[test]
    fn the_writes_made_during_the_scan_replace_what_the_scan_read() {
        let dir = tempfile::tempdir().expect("dir");
        let scan = file_of(
            dir.path(),
            "scan",
            &[("a", "1"), ("b", "old"), ("c", "gone"), ("e", "5")],
        );
        let changes: Changes = [
            ("b", Some("new")),
            ("c", None),
            ("d", Some("added")),
            ("f", Some("last")),
            ("x", None),
        ]
        .into_iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.map(|v| v.as_bytes().to_vec())))
        .collect();
        let out = dir.path().join("out");
        let (keys, _, sha) = merge(&scan, changes, &out, &|_| {}).expect("merge");
        let want = [
            ("a", "1"),
            ("b", "new"),
            ("d", "added"),
            ("e", "5"),
            ("f", "last"),
        ];
        assert_eq!(
            records_of(&out),
            want.map(|(k, v)| (k.to_string(), v.to_string()))
        );
        assert_eq!(keys, 5);
        assert_eq!(verify(&out, &|_| {}).expect("verify").2, sha);
    }

    #[test]
    fn a_truncated_data_file_is_refused_not_loaded_short() {
        let dir = tempfile::tempdir().expect("dir");
        let path = file_of(dir.path(), "data", &[("a", "1"), ("b", "2")]);
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 1]).expect("truncate");
        assert!(matches!(
            verify(&path, &|_| {}),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
