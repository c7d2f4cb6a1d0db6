//! Group commit by one writer thread: it takes every batch queued since its
//! last round, checks each one's expectations, applies all that hold as one
//! sled batch, flushes once, and only then answers their writers.
//!
//! Why one thread does both the apply and the flush: in sled 0.34 every
//! `apply_batch` takes a process-wide write lock that waits for any flush in
//! progress, and rolls the log buffer twice (each roll wakes sled's I/O
//! pool). Applied one request at a time from the tokio workers, that blocked
//! the workers during every fsync and cost two log writes per request. One
//! merged batch per round pays those costs once for the whole group, and the
//! workers only queue and await. Concurrent `flush_async` calls deadlock in
//! sled 0.34 (docs/dependencies.md); here exactly one thread ever flushes.
//!
//! The round's events are numbered in the order its batches were accepted
//! and written in its one sled batch; once the flush returns they are
//! released to subscribers (`event_log`), so rounds, and ids, follow each
//! other in commit order.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use tokio::sync::oneshot;

use super::backup::Tee;
use super::event_log::EventLog;
use super::sled_batch::{add_writes, current_value, unmet_expectation};
use super::{Batch, StoreError};

/// The answer a writer awaits.
type Reply = oneshot::Sender<Result<(), StoreError>>;

/// A batch waiting for the writer thread.
struct Job {
    batch: Batch,
    reply: Reply,
}

/// What the tokio side and the writer thread share.
#[derive(Default)]
struct Queue {
    /// Batches in arrival order.
    jobs: Vec<Job>,
    /// Set at shutdown: the writer finishes what is queued, then exits.
    stopping: bool,
}

/// The writer thread's queue.
pub(crate) struct GroupWriter {
    queue: Mutex<Queue>,
    /// Signalled when a job is queued or shutdown begins.
    queued: Condvar,
}

impl GroupWriter {
    /// Starts the writer thread for `db`, numbering events in `events`;
    /// each round's apply goes through `tee`.
    pub(crate) fn start(
        db: sled::Db,
        events: Arc<EventLog>,
        tee: Arc<Tee>,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let writer = Arc::new(Self {
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
        });
        let worker = Arc::clone(&writer);
        let handle = std::thread::Builder::new()
            .name("dealflow-writer".into())
            .spawn(move || worker.run(&db, &events, &tee))
            .expect("spawn the writer thread");
        (writer, handle)
    }

    /// Queues `batch` and resolves once it is durable or refused.
    pub(crate) async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.submit(batch)?.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Queues `batch`; the receiver resolves once it is durable or refused.
    fn submit(
        &self,
        batch: Batch,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let mut queue = self.queue.lock();
        if queue.stopping {
            return Err(StoreError::Durability("the store is shutting down".into()));
        }
        queue.jobs.push(Job { batch, reply });
        drop(queue);
        self.queued.notify_one();
        Ok(answer)
    }

    /// Asks the writer to finish what is queued and exit.
    pub(crate) fn stop(&self) {
        self.queue.lock().stopping = true;
        self.queued.notify_one();
    }

    fn run(&self, db: &sled::Db, events: &EventLog, tee: &Tee) {
        let _exit = Exit(self);
        // After a failed flush the disk's state is unknown (an fsync error
        // may have dropped dirty pages), so nothing more is acknowledged.
        let mut failed: Option<String> = None;
        loop {
            let jobs = {
                let mut queue = self.queue.lock();
                while queue.jobs.is_empty() && !queue.stopping {
                    self.queued.wait(&mut queue);
                }
                if queue.jobs.is_empty() {
                    return;
                }
                std::mem::take(&mut queue.jobs)
            };
            match &failed {
                Some(e) => answer_all(jobs, || Err(StoreError::Durability(e.clone()))),
                None => failed = write_round(db, events, tee, jobs),
            }
        }
    }
}

/// Closes the queue when the writer thread ends, however it ends: should
/// sled panic inside a round, later commits are refused instead of waiting
/// forever for a thread that is gone.
struct Exit<'a>(&'a GroupWriter);

impl Drop for Exit<'_> {
    fn drop(&mut self) {
        let jobs = {
            let mut queue = self.0.queue.lock();
            queue.stopping = true;
            std::mem::take(&mut queue.jobs)
        };
        answer_all(jobs, || Err(stopped()));
    }
}

/// The answer when the writer thread is gone.
fn stopped() -> StoreError {
    StoreError::Durability("the writer thread stopped".into())
}

/// Sends every job the same outcome.
fn answer_all(jobs: Vec<Job>, outcome: impl Fn() -> Result<(), StoreError>) {
    for job in jobs {
        // A writer that gave up waiting (its request was dropped) is fine.
        let _ = job.reply.send(outcome());
    }
}

/// One round: check, merge, apply, flush, answer. Returns the flush error
/// that must stop all later acknowledgements, if any.
fn write_round(db: &sled::Db, events: &EventLog, tee: &Tee, mut jobs: Vec<Job>) -> Option<String> {
    // Values as the round has left them so far, of the keys a batch of the
    // round expects or adds to: a batch's expectations and counters see
    // the writes of the batches accepted before it in the same round.
    let mut watched: HashSet<Vec<u8>> = HashSet::new();
    for b in jobs.iter().map(|j| &j.batch) {
        watched.extend(b.expectations.iter().map(|(k, _)| k.clone()));
        watched.extend(b.adds.iter().map(|(k, _)| k.clone()));
    }
    let mut written: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let mut merged = sled::Batch::default();
    let mut refused: Vec<Option<StoreError>> = Vec::with_capacity(jobs.len());
    for job in &mut jobs {
        let verdict = unmet_expectation(db, &written, &job.batch)
            .and_then(|()| {
                job.batch
                    .resolve_adds(|key| current_value(db, &written, key))
            })
            .err();
        if verdict.is_none() {
            for (key, value) in &job.batch.writes {
                if watched.contains(key) {
                    written.insert(key.clone(), value.clone());
                }
            }
            add_writes(&mut merged, &job.batch);
        }
        refused.push(verdict);
    }
    let accepted = refused.iter().any(Option::is_none);
    let outcome = if accepted {
        let batches: Vec<&Batch> = jobs
            .iter()
            .zip(&refused)
            .filter(|(_, r)| r.is_none())
            .map(|(j, _)| &j.batch)
            .collect();
        tee.apply(&batches, || {
            events
                .apply(batches.iter().copied(), &mut merged, |b| {
                    db.apply_batch(std::mem::take(b))
                        .map_err(|e| StoreError::Backend(e.to_string()))
                })
                .map(Some)
        })
        .and_then(|last_event| {
            db.flush()
                .map_err(|e| StoreError::Durability(e.to_string()))?;
            events.release_through(last_event.unwrap_or_default());
            Ok(())
        })
    } else {
        Ok(())
    };
    let fatal = match &outcome {
        Err(StoreError::Durability(e)) => {
            tracing::error!(error = %e, "flush failed; no further write will be acknowledged");
            Some(e.clone())
        }
        Err(e) => {
            tracing::error!(error = %e, "applying a group of writes failed");
            None
        }
        Ok(()) => None,
    };
    for (job, verdict) in jobs.into_iter().zip(refused) {
        let answer = match verdict {
            Some(refusal) => Err(refusal),
            None => outcome.as_ref().copied().map_err(copy),
        };
        let _ = job.reply.send(answer);
    }
    fatal
}

/// The same error for another writer of the round (a round fails only
/// with these two kinds).
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::Durability(m) => StoreError::Durability(m.clone()),
        StoreError::Backend(m) => StoreError::Backend(m.clone()),
        other => StoreError::Backend(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durability, SledStore, Store};

    fn db() -> (tempfile::TempDir, sled::Db) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::Config::new().path(dir.path()).open().expect("open");
        (dir, db)
    }

    fn job(
        expect: &[(&str, Option<&str>)],
        put: &[(&str, Option<&str>)],
    ) -> (Job, oneshot::Receiver<Result<(), StoreError>>) {
        let mut batch = Batch::new();
        for (k, v) in expect {
            batch.expect(k.as_bytes(), v.map(str::as_bytes));
        }
        for (k, v) in put {
            match v {
                Some(v) => batch.put(k.as_bytes(), v.as_bytes()),
                None => batch.delete(k.as_bytes()),
            };
        }
        let (reply, answer) = oneshot::channel();
        (Job { batch, reply }, answer)
    }

    fn value(db: &sled::Db, key: &str) -> Option<String> {
        db.get(key)
            .expect("get")
            .map(|v| String::from_utf8(v.to_vec()).expect("utf-8"))
    }

    #[test]
    fn a_later_batch_of_the_round_that_expected_the_old_value_is_refused() {
        let (_dir, db) = db();
        let (a, a_answer) = job(&[("deal", None)], &[("deal", Some("a"))]);
        let (b, b_answer) = job(
            &[("deal", None)],
            &[("deal", Some("b")), ("other", Some("b"))],
        );
        assert!(write_round(&db, &EventLog::open(0), &Tee::default(), vec![a, b]).is_none());
        assert!(a_answer.blocking_recv().expect("answered").is_ok());
        assert!(matches!(
            b_answer.blocking_recv().expect("answered"),
            Err(StoreError::Conflict { key }) if key == "deal"
        ));
        assert_eq!(value(&db, "deal").as_deref(), Some("a"));
        assert_eq!(
            value(&db, "other"),
            None,
            "nothing of a refused batch is written"
        );
    }

    #[test]
    fn batches_of_one_round_see_each_other_in_arrival_order() {
        let (_dir, db) = db();
        db.insert("gone", "x").expect("insert");
        let (a, a_answer) = job(&[("deal", None)], &[("deal", Some("v1")), ("gone", None)]);
        let (b, b_answer) = job(
            &[("deal", Some("v1")), ("gone", None)],
            &[("deal", Some("v2"))],
        );
        let (c, c_answer) = job(&[], &[("gone", Some("back"))]);
        assert!(write_round(&db, &EventLog::open(0), &Tee::default(), vec![a, b, c]).is_none());
        for answer in [a_answer, b_answer, c_answer] {
            assert!(answer.blocking_recv().expect("answered").is_ok());
        }
        assert_eq!(value(&db, "deal").as_deref(), Some("v2"));
        assert_eq!(value(&db, "gone").as_deref(), Some("back"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_acknowledged_write_of_concurrent_writers_is_there_after_reopening() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(SledStore::open(dir.path(), Durability::Group).expect("open"));
        // 64 writers race to bump one counter (each retrying on conflict)
        // while also writing a key of their own.
        let writers: Vec<_> = (0..64)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    loop {
                        let current = store.get(b"counter").expect("get");
                        let n: u64 = current.as_deref().map_or(0, |v| {
                            std::str::from_utf8(v)
                                .expect("utf-8")
                                .parse()
                                .expect("number")
                        });
                        let mut batch = Batch::new();
                        batch.expect(b"counter".to_vec(), current.as_deref());
                        batch.put(b"counter".to_vec(), (n + 1).to_string());
                        batch.put(format!("own/{i:02}"), "written");
                        match store.commit(batch).await {
                            Err(StoreError::Conflict { .. }) => continue,
                            other => return other,
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.await.expect("writer").expect("acknowledged");
        }
        drop(store);
        let store = SledStore::open(dir.path(), Durability::Group).expect("reopen");
        assert_eq!(
            store.get(b"counter").expect("get").as_deref(),
            Some(&b"64"[..])
        );
        assert_eq!(store.count(b"own/").expect("count"), 64);
    }

    #[test]
    fn counters_add_up_across_the_batches_of_a_round_and_vanish_at_zero() {
        use rust_decimal::Decimal;
        let (_dir, db) = db();
        db.insert("n", "1 2").expect("insert");
        let d = |v: &[i64]| v.iter().map(|x| Decimal::from(*x)).collect::<Vec<_>>();
        let adding = |deltas: &[i64], put: Option<(&str, &str)>| {
            let mut batch = Batch::new();
            if let Some((k, v)) = put {
                batch.put(k.as_bytes(), v.as_bytes());
            }
            batch.add(b"n".to_vec(), &d(deltas));
            let (reply, answer) = oneshot::channel();
            (Job { batch, reply }, answer)
        };
        // Two adds, a refused batch that adds too, then one that expects the sum.
        let (a, a_answer) = adding(&[1, 0, 5], None);
        let (b, b_answer) = adding(&[2, 1], None);
        let (mut refused, refused_answer) = adding(&[100], None);
        refused.batch.expect(b"absent".to_vec(), Some(b"x"));
        let (c, c_answer) = job(&[("n", Some("4 3 5"))], &[("seen", Some("yes"))]);
        let round = vec![a, b, refused, c];
        assert!(write_round(&db, &EventLog::open(0), &Tee::default(), round).is_none());
        for answer in [a_answer, b_answer, c_answer] {
            assert!(answer.blocking_recv().expect("answered").is_ok());
        }
        assert!(refused_answer.blocking_recv().expect("answered").is_err());
        assert_eq!(value(&db, "n").as_deref(), Some("4 3 5"));
        assert_eq!(value(&db, "seen").as_deref(), Some("yes"));
        // A put then an add in one round; then adds that bring it to zero.
        let (put, _) = adding(&[1], Some(("n", "10")));
        let (to_zero, _) = adding(&[-11], None);
        assert!(write_round(&db, &EventLog::open(0), &Tee::default(), vec![put]).is_none());
        assert_eq!(value(&db, "n").as_deref(), Some("11"));
        assert!(write_round(&db, &EventLog::open(0), &Tee::default(), vec![to_zero]).is_none());
        assert_eq!(value(&db, "n"), None, "a counter at zero is removed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_adds_to_one_counter_never_conflict_and_none_is_lost() {
        use rust_decimal::Decimal;
        for durability in [Durability::Group, Durability::None] {
            let dir = tempfile::tempdir().expect("temp dir");
            let store = Arc::new(SledStore::open(dir.path(), durability).expect("open"));
            let writers: Vec<_> = (0..32)
                .map(|i| {
                    let store = Arc::clone(&store);
                    tokio::spawn(async move {
                        for _ in 0..10 {
                            let mut batch = Batch::new();
                            batch.add(b"total".to_vec(), &[Decimal::ONE, Decimal::new(i, 2)]);
                            store.commit(batch).await.expect("an add never conflicts");
                        }
                    })
                })
                .collect();
            for w in writers {
                w.await.expect("writer");
            }
            let total = store.get(b"total").expect("get");
            // 320 adds; 10 × (0.00 + 0.01 + … + 0.31) = 49.6
            assert_eq!(total.as_deref(), Some(&b"320 49.6"[..]), "{durability:?}");
        }
    }

    #[test]
    fn a_commit_after_shutdown_began_is_refused_not_lost() {
        let (_dir, db) = db();
        let (writer, handle) = GroupWriter::start(db, Arc::new(EventLog::open(0)), Arc::default());
        writer.stop();
        handle.join().expect("writer exits");
        assert!(matches!(
            writer.submit(Batch::new()),
            Err(StoreError::Durability(_))
        ));
    }
}
