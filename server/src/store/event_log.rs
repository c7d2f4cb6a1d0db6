//! The store's side of the event log: ids in apply order, release once
//! durable, fan-out to subscribers.
//!
//! A batch's events are numbered while the batch is applied, under one lock
//! (the writer thread's round in group mode; the caller's apply in the
//! other modes), so ids follow commit order and have no holes: a refused
//! batch takes no id. Applied events wait in `pending` until a flush covers
//! them, then are *released* in id order: readers of the log and
//! subscribers only ever see released events, so no client sees an event
//! that a crash could take back (and whose id would then be given again).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::{keys, Batch, StoreError};

/// How many released events a subscriber may fall behind before the
/// broadcast drops some for it (it then reads them back from the log).
const FAN_OUT_BUFFER: usize = 1024;

/// An event in the log: its id and the payload its writer gave it.
#[derive(Debug, Clone)]
pub struct CommittedEvent {
    /// Position in the log: 1, 2, 3, … in commit order, without holes.
    pub id: u64,
    /// The bytes the batch carried (opaque to the store).
    pub payload: Arc<[u8]>,
}

/// The ids, the events not yet durable, and the fan-out.
pub(crate) struct EventLog {
    /// The newest id applied. Held while a batch's events are numbered
    /// and applied, so ids follow apply order.
    applied: Mutex<u64>,
    /// Applied but not yet released, in id order.
    pending: Mutex<VecDeque<CommittedEvent>>,
    /// The newest released id.
    released: AtomicU64,
    /// Released events, in id order.
    tx: broadcast::Sender<CommittedEvent>,
}

impl EventLog {
    /// A log whose newest event is `last` (0: empty); everything stored is
    /// durable at open.
    pub(crate) fn open(last: u64) -> Self {
        Self {
            applied: Mutex::new(last),
            pending: Mutex::new(VecDeque::new()),
            released: AtomicU64::new(last),
            tx: broadcast::channel(FAN_OUT_BUFFER).0,
        }
    }

    /// Numbers the events of `batches` after the newest applied id, adds
    /// their keys to `into`, and applies `into` with `apply` while no other
    /// batch can be numbered; on success they are pending release.
    pub(crate) fn apply<'a>(
        &self,
        batches: impl IntoIterator<Item = &'a Batch>,
        into: &mut sled::Batch,
        apply: impl FnOnce(&mut sled::Batch) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        let mut applied = self.applied.lock();
        let mut last = *applied;
        let mut events = Vec::new();
        for batch in batches {
            for payload in &batch.events {
                last += 1;
                into.insert(keys::event(last), payload.as_slice());
                events.push(CommittedEvent {
                    id: last,
                    payload: Arc::from(payload.as_slice()),
                });
            }
        }
        apply(into)?;
        *applied = last;
        // Still under `applied`: pending stays in id order.
        self.pending.lock().extend(events);
        Ok(last)
    }

    /// The events up to `id` are durable: releases them to subscribers, in
    /// id order.
    pub(crate) fn release_through(&self, id: u64) {
        let mut pending = self.pending.lock();
        while pending.front().is_some_and(|e| e.id <= id) {
            let e = pending.pop_front().expect("checked");
            self.released.store(e.id, Ordering::Release);
            // Nobody listening is fine: the log has it.
            let _ = self.tx.send(e);
        }
    }

    /// The newest released id.
    pub(crate) fn released(&self) -> u64 {
        self.released.load(Ordering::Acquire)
    }

    /// The newest applied id (the one a trim must keep).
    pub(crate) fn applied(&self) -> u64 {
        *self.applied.lock()
    }

    /// A receiver of every event released from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<CommittedEvent> {
        self.tx.subscribe()
    }
}

/// The id an event key holds.
pub(crate) fn id_of(key: &[u8]) -> Result<u64, StoreError> {
    let prefix = keys::prefix(keys::EVENT, &[]);
    key.strip_prefix(prefix.as_slice())
        .and_then(|rest| std::str::from_utf8(rest).ok())
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(|| StoreError::Corrupt {
            key: super::printable(key),
            reason: "not an event key".into(),
        })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::store::{Batch, Durability, SledStore, Store, StoreError};

    fn with_events(events: &[&str]) -> Batch {
        let mut b = Batch::new();
        for e in events {
            b.put(format!("k/{e}"), "v").event(e.as_bytes());
        }
        b
    }

    fn log(store: &dyn Store) -> Vec<(u64, String)> {
        store
            .events_after(0, 100)
            .expect("read the log")
            .into_iter()
            .map(|e| (e.id, String::from_utf8(e.payload.to_vec()).expect("utf-8")))
            .collect()
    }

    #[tokio::test]
    async fn events_are_numbered_in_commit_order_and_a_refused_batch_takes_no_id() {
        for durability in [Durability::Group, Durability::PerWrite, Durability::None] {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = SledStore::open(dir.path(), durability).expect("open");
            store.commit(with_events(&["a1", "a2"])).await.expect("a");
            let mut refused = with_events(&["b"]);
            refused.expect(b"k/a1".to_vec(), None);
            assert!(matches!(
                store.commit(refused).await,
                Err(StoreError::Conflict { .. })
            ));
            store.commit(with_events(&["c"])).await.expect("c");
            assert_eq!(
                log(&store),
                [(1, "a1".into()), (2, "a2".into()), (3, "c".into())],
                "{durability:?}"
            );
            assert_eq!(store.last_event_id(), 3);
        }
    }

    #[tokio::test]
    async fn numbering_resumes_after_a_reopen_and_a_trim_keeps_the_newest() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), Durability::Group).expect("open");
        store
            .commit(with_events(&["1", "2", "3"]))
            .await
            .expect("commit");
        assert_eq!(store.trim_events(u64::MAX).await.expect("trim"), 2);
        assert_eq!(log(&store), [(3, "3".into())]);
        drop(store);
        let store = SledStore::open(dir.path(), Durability::Group).expect("reopen");
        assert_eq!(store.last_event_id(), 3);
        store.commit(with_events(&["4"])).await.expect("commit");
        assert_eq!(log(&store), [(3, "3".into()), (4, "4".into())]);
        assert_eq!(store.events_after(3, 10).expect("read").len(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn subscribers_receive_concurrent_commits_in_id_order() {
        for durability in [Durability::Group, Durability::PerWrite] {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Arc::new(SledStore::open(dir.path(), durability).expect("open"));
            let mut rx = store.subscribe_events();
            let writers: Vec<_> = (0..32)
                .map(|i| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        let name = format!("w{i}");
                        store.commit(with_events(&[&name, &name])).await
                    })
                })
                .collect();
            for w in writers {
                w.await.expect("writer").expect("committed");
            }
            let mut ids = Vec::new();
            for _ in 0..64 {
                ids.push(rx.recv().await.expect("released").id);
            }
            assert_eq!(ids, (1..=64).collect::<Vec<_>>(), "{durability:?}");
            // A batch's events are adjacent: nothing of another commit
            // falls between them.
            let log = log(store.as_ref());
            assert!(log.chunks(2).all(|p| p[0].1 == p[1].1), "{log:?}");
        }
    }
}
