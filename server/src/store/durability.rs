//! When a commit counts as done: group commit by one flusher thread (the
//! default), a flush per write (for contrast in benchmarks), or none.
//!
//! sled 0.34 deadlocks when several `flush_async` calls wait at once
//! (PITFALLS.md), so exactly one thread ever flushes. Writers take a ticket
//! after their write is applied and wait until a flush that started after
//! that point has finished: every write acknowledged is on disk, and one
//! fsync covers every writer that queued behind it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::watch;

use super::StoreError;

/// The durability mode of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Durability {
    /// Writers share flushes done by one flusher thread (default).
    Group,
    /// Each write waits for its own blocking flush (no grouping; slow).
    PerWrite,
    /// No flush before acknowledging. Not durable: for throwaway benchmarks only.
    None,
}

/// The flush outcome published to waiting writers.
#[derive(Debug, Clone, Default)]
struct Flushed {
    /// Every ticket up to this one is durable.
    upto: u64,
    /// Set when a flush failed; waiting writers then fail too.
    error: Option<String>,
}

/// The single flusher thread and the tickets writers wait on.
pub(crate) struct GroupCommit {
    /// The last ticket handed out; a ticket is taken after its write is applied.
    issued: AtomicU64,
    /// Wakes the flusher when `issued` moves past what it flushed.
    wake: Mutex<bool>,
    /// Paired with `wake`.
    wake_cv: Condvar,
    /// Published after each flush.
    flushed: watch::Sender<Flushed>,
    /// Asks the flusher to exit after a final flush.
    stop: AtomicBool,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`.
    pub(crate) fn start(db: sled::Db) -> (Arc<Self>, JoinHandle<()>) {
        let (flushed, _) = watch::channel(Flushed::default());
        let gc = Arc::new(Self {
            issued: AtomicU64::new(0),
            wake: Mutex::new(false),
            wake_cv: Condvar::new(),
            flushed,
            stop: AtomicBool::new(false),
        });
        let worker = Arc::clone(&gc);
        let handle = std::thread::Builder::new()
            .name("dealflow-flusher".into())
            .spawn(move || worker.run(db))
            .expect("spawn flusher thread");
        (gc, handle)
    }

    fn run(&self, db: sled::Db) {
        let mut done = 0u64;
        loop {
            {
                let mut pending = self.wake.lock();
                while !*pending && !self.stop.load(Ordering::Acquire) {
                    self.wake_cv.wait(&mut pending);
                }
                *pending = false;
            }
            let target = self.issued.load(Ordering::Acquire);
            if target > done {
                let result = db.flush();
                done = target;
                self.flushed.send_modify(|f| {
                    f.upto = target;
                    if let Err(e) = result {
                        tracing::error!(error = %e, "flush failed");
                        f.error = Some(e.to_string());
                    }
                });
            }
            if self.stop.load(Ordering::Acquire) && self.issued.load(Ordering::Acquire) <= done {
                return;
            }
        }
    }

    /// Takes a ticket for a write that has just been applied.
    pub(crate) fn ticket(&self) -> u64 {
        let t = self.issued.fetch_add(1, Ordering::AcqRel) + 1;
        let mut pending = self.wake.lock();
        *pending = true;
        self.wake_cv.notify_one();
        t
    }

    /// Resolves when the flush covering `ticket` has finished.
    pub(crate) async fn wait(&self, ticket: u64) -> Result<(), StoreError> {
        let mut rx = self.flushed.subscribe();
        let seen = rx
            .wait_for(|f| f.upto >= ticket || f.error.is_some())
            .await
            .map_err(|_| StoreError::Durability("flusher stopped".into()))?;
        match &seen.error {
            Some(e) => Err(StoreError::Durability(e.clone())),
            None => Ok(()),
        }
    }

    /// Stops the flusher after a final flush.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let mut pending = self.wake.lock();
        *pending = true;
        self.wake_cv.notify_one();
    }
}
