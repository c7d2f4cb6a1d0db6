//! Events: how a service says what happened ([`add`]: an event in the very
//! batch that makes the change, so it is as durable as the change and never
//! describes one that was refused), how long the log keeps them
//! ([`Retention`], trimmed in the background), and each caller's
//! subscription: the events after its `Last-Event-ID` read back from the
//! log, then live ones, each delivered only if the caller may read the
//! resource it is about.
//!
//! Why a subscription cannot miss or repeat an event: it subscribes to the
//! store's fan-out *before* reading the log, ids follow commit order
//! without holes, and it remembers the last id it handled. A live event at
//! or below that id is a duplicate and skipped; one above the next id means
//! some were dropped for it (it lagged): it reads them back from the log.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

use super::repo::encode;
use super::{now, Credential, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::event::{Event, EventKind, ResourceRef};
use crate::store::{Batch, CommittedEvent, Store, TRIM_BATCH};

/// Events read from the log per store call when a subscriber catches up.
const PAGE: usize = 256;

/// How long the log keeps events: those younger than `max_age` among the
/// newest `max_events` (whichever bound is tighter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Events older than this are trimmed.
    pub max_age: Duration,
    /// At most this many are kept.
    pub max_events: u64,
}

/// The defaults: a week, at most a million events (about 300 MB of log).
pub const DEFAULT_RETENTION: Retention = Retention {
    max_age: Duration::from_secs(7 * 24 * 3600),
    max_events: 1_000_000,
};

impl Default for Retention {
    fn default() -> Self {
        DEFAULT_RETENTION
    }
}

/// Adds an event about `resource` to `batch`: it is written, and later
/// delivered, if and only if the batch commits. `data` holds what every
/// reader of `resource` may know of the change, and nothing more.
pub(crate) fn add(
    batch: &mut Batch,
    kind: EventKind,
    resource: ResourceRef,
    by: &str,
    data: Value,
) {
    let event = Event {
        kind,
        at: now(),
        by: by.into(),
        branch: resource.branch.clone(),
        owner: resource.owner.clone(),
        resource,
        data,
    };
    batch.event(encode(&event));
}

/// What a subscription yields.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// An event the caller may read.
    Event {
        /// Its id in the log.
        id: u64,
        /// Its kind's name.
        kind: String,
        /// The event as JSON (what the log holds).
        json: Arc<[u8]>,
    },
    /// The events after `after` and before `next` are no longer in the
    /// log (older than the retention), or `after` is not a position of
    /// this server's log.
    Lost {
        /// The position asked for.
        after: u64,
        /// The first id still available (streaming resumes there).
        next: u64,
    },
    /// Reading the log failed; the subscription ends here (the client
    /// reconnects with its last id).
    Failed(String),
    /// A running job's progress (live only, no id: not in the log).
    Job(Arc<str>),
    /// The credential the subscription was opened with no longer works
    /// (signed out, revoked, expired, idle): the subscription ends here.
    Ended(String),
}

/// What a subscription decodes of an event: who may see it.
#[derive(Deserialize)]
struct Header {
    kind: String,
    resource: ResourceRef,
}

/// When an event was recorded (for the age bound of the retention).
#[derive(Deserialize)]
struct Recorded {
    at: chrono::DateTime<chrono::Utc>,
}

/// The service side of the event log: retention, background trimming,
/// open subscriptions, and the signal that ends them at shutdown.
pub struct EventHub {
    /// How long the log keeps events.
    retention: Retention,
    /// Events written since the last trim was started.
    since_trim: AtomicU64,
    /// Whether a trim task is running.
    trimming: AtomicBool,
    /// Set by every request for a trim: the running task goes again.
    trim_wanted: AtomicBool,
    /// Open subscriptions (the `dealflow_event_subscribers` gauge).
    subscribers: AtomicUsize,
    /// Set once at shutdown: every subscription ends.
    closing: watch::Sender<bool>,
}

impl EventHub {
    /// A hub keeping events for `retention`.
    pub fn new(retention: Retention) -> Self {
        Self {
            retention,
            since_trim: AtomicU64::new(0),
            trimming: AtomicBool::new(false),
            trim_wanted: AtomicBool::new(false),
            subscribers: AtomicUsize::new(0),
            closing: watch::channel(false).0,
        }
    }

    /// After a commit that appended `n` events: starts a background trim
    /// once enough were written since the last one (an eighth of
    /// `max_events`, at most [`TRIM_BATCH`]), so the log stays within its
    /// bounds in small steps.
    pub(crate) fn written(self: &Arc<Self>, n: usize, store: &Arc<dyn Store>) {
        let every = (self.retention.max_events / 8).clamp(1, TRIM_BATCH as u64);
        if self.since_trim.fetch_add(n as u64, Ordering::Relaxed) + n as u64 >= every {
            self.since_trim.store(0, Ordering::Relaxed);
            self.start_trim(store);
        }
    }

    /// Starts a trim task unless one runs; it ends when the log is within
    /// its bounds (an idle server holds no task, and no store handle).
    pub(crate) fn start_trim(self: &Arc<Self>, store: &Arc<dyn Store>) {
        self.trim_wanted.store(true, Ordering::SeqCst);
        if self.trimming.swap(true, Ordering::SeqCst) {
            return;
        }
        let (hub, store) = (Arc::clone(self), Arc::clone(store));
        tokio::spawn(async move {
            loop {
                hub.trim_wanted.store(false, Ordering::SeqCst);
                if let Err(e) = trim(store.as_ref(), hub.retention).await {
                    tracing::warn!(error = %e, "trimming the event log failed; the next writes retry");
                }
                hub.trimming.store(false, Ordering::SeqCst);
                // Asked again while trimming (the request saw this task
                // running): go again, unless another task took over.
                if !hub.trim_wanted.load(Ordering::SeqCst)
                    || hub.trimming.swap(true, Ordering::SeqCst)
                {
                    return;
                }
            }
        });
    }
}

impl Default for EventHub {
    fn default() -> Self {
        Self::new(Retention::default())
    }
}

/// Removes the events outside `retention`, oldest first, in batches.
async fn trim(store: &dyn Store, retention: Retention) -> Result<usize, ServiceError> {
    let max_age = chrono::Duration::from_std(retention.max_age).unwrap_or(chrono::Duration::MAX);
    let mut removed = 0;
    loop {
        let newest = store.last_event_id();
        let beyond_count = newest.saturating_sub(retention.max_events);
        let too_old = now().checked_sub_signed(max_age);
        let mut through = 0;
        for e in store.events_after(0, TRIM_BATCH)? {
            let expired = || {
                serde_json::from_slice::<Recorded>(&e.payload)
                    .ok()
                    .zip(too_old)
                    .is_some_and(|(r, limit)| r.at < limit)
            };
            if e.id >= newest || (e.id > beyond_count && !expired()) {
                break;
            }
            through = e.id;
        }
        if through == 0 {
            return Ok(removed);
        }
        match store.trim_events(through).await? {
            0 => return Ok(removed),
            n => removed += n,
        }
    }
}

/// The tokio instant of a wall-clock time (now when it is past).
fn instant_of(t: chrono::DateTime<chrono::Utc>) -> tokio::time::Instant {
    let ahead = (t - now()).to_std().unwrap_or_default();
    // Far-off deadlines are rechecked daily (an Instant cannot be
    // arbitrarily far ahead).
    tokio::time::Instant::now() + ahead.min(Duration::from_secs(24 * 3600))
}

/// Sleeps until `at` (never when `None`; the select does not poll it then).
async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Counts an open subscription while it lives.
struct Subscribed(Arc<EventHub>);

impl Subscribed {
    fn new(hub: &Arc<EventHub>) -> Self {
        hub.subscribers.fetch_add(1, Ordering::SeqCst);
        Self(Arc::clone(hub))
    }
}

impl Drop for Subscribed {
    fn drop(&mut self) {
        self.0.subscribers.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What `caller` may receive of `e`: the event, when they may read its
/// resource (an event that does not decode is delivered to nobody).
fn visible(caller: &Principal, e: CommittedEvent) -> Option<Delivery> {
    let header: Header = serde_json::from_slice(&e.payload).ok()?;
    caller.may_read(&header.resource).ok()?;
    Some(Delivery::Event {
        id: e.id,
        kind: header.kind,
        json: e.payload,
    })
}

/// Reads the next page of the log after `*last` for `caller`, moving
/// `*last`; `None` when nothing more is released. A hole between `*last`
/// and the page is reported first (trimmed events).
fn next_page(
    store: &dyn Store,
    caller: &Principal,
    last: &mut u64,
) -> Result<Option<Vec<Delivery>>, ServiceError> {
    let page = store.events_after(*last, PAGE)?;
    let Some(first) = page.first().map(|e| e.id) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(page.len() + 1);
    if first != *last + 1 {
        out.push(Delivery::Lost {
            after: *last,
            next: first,
        });
    }
    for e in page {
        *last = e.id;
        out.extend(visible(caller, e));
    }
    Ok(Some(out))
}

impl Services {
    /// The events `caller` may read: those after `after` read back from the
    /// log (none when `after` is `None`: live from now on), then live ones.
    /// The stream ends when its consumer drops it (the client went away),
    /// the server shuts down, or, with a `credential`, once that no longer
    /// authenticates (a session signed out or a token revoked: checked when
    /// anything of the kind ends; an expiry or idle end: checked at its
    /// time). It holds no task of its own.
    pub fn subscribe_events(
        &self,
        caller: Principal,
        after: Option<u64>,
        credential: Option<Credential>,
    ) -> impl Stream<Item = Delivery> + Send + 'static {
        let services = self.clone();
        let mut ended = self.sessions.watch_ended();
        let mut jobs = self.jobs.subscribe();
        let store = self.repo.shared_store();
        let hub = Arc::clone(&self.events);
        // Subscribe before reading the log: whatever is released after the
        // read reaches the receiver (see the module doc).
        let mut live = store.subscribe_events();
        let mut closing = hub.closing.subscribe();
        // "From now on" is now, not when the stream is first polled.
        let newest = store.last_event_id();
        let counted = Subscribed::new(&hub);
        async_stream::stream! {
            let _counted = counted;
            let mut deadline = match &credential {
                Some(c) => match services.credential_deadline(c) {
                    Ok(d) => d,
                    Err(e) => {
                        yield Delivery::Ended(e.to_string());
                        return;
                    }
                },
                None => None,
            };
            let mut last = after.unwrap_or(newest);
            if last > newest {
                yield Delivery::Lost { after: last, next: newest + 1 };
                last = newest;
            }
            let mut behind = after.is_some();
            loop {
                while behind {
                    match next_page(store.as_ref(), &caller, &mut last) {
                        Ok(Some(page)) => {
                            for d in page {
                                yield d;
                            }
                        }
                        Ok(None) => behind = false,
                        Err(e) => {
                            yield Delivery::Failed(e.to_string());
                            return;
                        }
                    }
                }
                if *closing.borrow() {
                    return;
                }
                let wake = deadline.map(instant_of);
                let received = tokio::select! {
                    biased;
                    _ = closing.changed() => return,
                    _ = ended.changed(), if credential.is_some() => None,
                    _ = sleep_until(wake), if wake.is_some() => None,
                    job = jobs.recv() => {
                        // A lagging receiver just misses some progress: the
                        // next message (or the job itself) has it.
                        if let Ok(p) = job {
                            if Services::may_see_job(&caller, &p.branch) {
                                yield Delivery::Job(p.json);
                            }
                        }
                        continue;
                    }
                    received = live.recv() => Some(received),
                };
                let Some(received) = received else {
                    // Something ended, or the credential's time came.
                    if let Some(c) = &credential {
                        match services.credential_deadline(c) {
                            Ok(d) => deadline = d,
                            Err(e) => {
                                yield Delivery::Ended(e.to_string());
                                return;
                            }
                        }
                    }
                    continue;
                };
                match received {
                    Ok(e) if e.id <= last => {}
                    Ok(e) if e.id == last + 1 => {
                        last = e.id;
                        if let Some(d) = visible(&caller, e) {
                            yield d;
                        }
                    }
                    // Some were dropped for this subscriber: the log has them.
                    Ok(_) | Err(RecvError::Lagged(_)) => behind = true,
                    Err(RecvError::Closed) => return,
                }
            }
        }
    }

    /// How many event subscriptions are open.
    pub fn event_subscribers(&self) -> usize {
        self.events.subscribers.load(Ordering::SeqCst)
    }

    /// Ends every event subscription (at shutdown: a graceful stop waits
    /// for open connections, and a subscription would never end by
    /// itself).
    pub fn close_event_streams(&self) {
        self.events.closing.send_replace(true);
    }

    /// Waits until no trim of the event log runs (tests read the log's
    /// bounds deterministically with it).
    pub async fn event_trim_idle(&self) {
        while self.events.trimming.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Durability, SledStore};

    fn event_at(at: chrono::DateTime<chrono::Utc>, brand: &str) -> Batch {
        let mut batch = Batch::new();
        let event = Event {
            kind: EventKind::BrandCreated,
            at,
            by: "admin".into(),
            resource: ResourceRef::brand(brand),
            branch: None,
            owner: None,
            data: Value::Null,
        };
        batch.event(encode(&event));
        batch
    }

    async fn store_with(ages_in_hours: &[i64]) -> (tempfile::TempDir, SledStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), Durability::None).expect("open");
        for (i, hours) in ages_in_hours.iter().enumerate() {
            let at = now() - chrono::Duration::hours(*hours);
            store
                .commit(event_at(at, &format!("b{i}")))
                .await
                .expect("commit");
        }
        (dir, store)
    }

    fn ids(store: &SledStore) -> Vec<u64> {
        store
            .events_after(0, 100)
            .expect("read")
            .iter()
            .map(|e| e.id)
            .collect()
    }

    #[tokio::test]
    async fn a_trim_removes_what_is_older_than_the_retention() {
        let (_dir, store) = store_with(&[50, 40, 30, 1, 0]).await;
        let day = Retention {
            max_age: Duration::from_secs(24 * 3600),
            max_events: 100,
        };
        assert_eq!(trim(&store, day).await.expect("trim"), 3);
        assert_eq!(ids(&store), [4, 5]);
    }

    #[tokio::test]
    async fn a_trim_keeps_at_most_max_events_and_always_the_newest() {
        let (_dir, store) = store_with(&[0, 0, 0, 0, 0]).await;
        let two = Retention {
            max_age: Duration::from_secs(3600),
            max_events: 2,
        };
        assert_eq!(trim(&store, two).await.expect("trim"), 3);
        assert_eq!(ids(&store), [4, 5]);
        let (_dir, store) = store_with(&[50, 50, 50]).await;
        let hour = Retention {
            max_age: Duration::from_secs(3600),
            max_events: 100,
        };
        trim(&store, hour).await.expect("trim");
        assert_eq!(
            ids(&store),
            [3],
            "the newest event stays: its id is where numbering resumes"
        );
    }
}
