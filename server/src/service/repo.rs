//! Typed access to the store: JSON codecs (deals and signing-index entries
//! have binary forms of their own), reads that keep the raw bytes for
//! conditional commits, paged lists over indexes, and id generation.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::events::EventHub;
use super::page::{cursor_of, Page, PageRequest};
use super::ServiceError;
use crate::domain::deal::Deal;
use crate::domain::ids::server_id;
use crate::incentive::deal_record::{DealRecord, SignedRevenue};
use crate::store::{keys, printable, Batch, Store, StoreError};

/// A decoded record with the exact bytes it was read from, so a commit can
/// expect them unchanged.
#[derive(Debug, Clone)]
pub struct Stored<T> {
    /// The decoded value.
    pub value: T,
    /// The stored bytes.
    pub raw: Vec<u8>,
}

/// Where a list reads its records from.
pub enum Source<'a> {
    /// The primary records under this prefix.
    Primary(Vec<u8>),
    /// An index under this prefix whose values are ids of records under `tag`.
    Index {
        /// The index prefix.
        prefix: Vec<u8>,
        /// The namespace of the records the ids refer to.
        tag: &'a str,
    },
}

/// Typed store access shared by every service.
#[derive(Clone)]
pub struct Repo {
    /// The store.
    store: Arc<dyn Store>,
    /// Told how many events each commit appended (it trims the log).
    events: Arc<EventHub>,
}

/// Encodes a record (our own types always serialise).
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise to JSON")
}

impl Repo {
    /// A repo over `store` whose event log `events` keeps in bounds.
    pub fn new(store: Arc<dyn Store>, events: Arc<EventHub>) -> Self {
        Self { store, events }
    }

    /// The underlying store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// The underlying store, shared (for what outlives a request, or work
    /// on a blocking thread).
    pub fn shared_store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// Reads and decodes one record.
    pub fn read<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<Stored<T>>, ServiceError> {
        self.read_with(key, decode)
    }

    /// Reads one record and decodes it with `decode`.
    fn read_with<T>(
        &self,
        key: &[u8],
        decode: impl Fn(&[u8], &[u8]) -> Result<T, ServiceError>,
    ) -> Result<Option<Stored<T>>, ServiceError> {
        match self.store.get(key)? {
            None => Ok(None),
            Some(raw) => Ok(Some(Stored {
                value: decode(key, &raw)?,
                raw,
            })),
        }
    }

    /// Reads a deal (stored in its own form, see `domain::stored_deal`).
    pub fn read_deal(&self, id: &str) -> Result<Option<Stored<Deal>>, ServiceError> {
        self.read_with(&keys::key(keys::DEAL, &[id]), decode_deal)
    }

    /// Reads a deal (stored in its own form, see `domain::stored_deal`), or
    /// 404.
    pub fn fetch_deal(&self, id: &str) -> Result<Stored<Deal>, ServiceError> {
        self.read_with(&keys::key(keys::DEAL, &[id]), decode_deal)?
            .ok_or_else(|| ServiceError::not_found("deal", id))
    }

    /// Reads a record by namespace and id, or 404 as `kind`.
    pub fn fetch<T: DeserializeOwned>(
        &self,
        tag: &str,
        kind: &'static str,
        id: &str,
    ) -> Result<Stored<T>, ServiceError> {
        self.read(&keys::key(tag, &[id]))?
            .ok_or_else(|| ServiceError::not_found(kind, id))
    }

    /// True when a record exists.
    pub fn exists(&self, tag: &str, id: &str) -> Result<bool, ServiceError> {
        Ok(self.store.get(&keys::key(tag, &[id]))?.is_some())
    }

    /// Commits a batch and waits until it is durable.
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let events = batch.event_count();
        self.store.commit(batch).await?;
        if events > 0 {
            self.events.written(events, &self.store);
        }
        Ok(())
    }

    /// A new server id with this prefix.
    pub fn new_id(&self, prefix: &str) -> Result<String, ServiceError> {
        Ok(server_id(prefix, self.store.next_id()?))
    }

    /// One page of records from `source` that pass `keep`.
    pub fn list<T: DeserializeOwned>(
        &self,
        source: Source<'_>,
        page: &PageRequest,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Page<T>, ServiceError> {
        self.list_with(source, page, decode, keep)
    }

    /// Visits the entries under `prefix` that come after the key `after`
    /// (all of them when `None`) in key order, `page` at a time, while
    /// `visit` answers true.
    pub fn walk(
        &self,
        prefix: &[u8],
        mut after: Option<Vec<u8>>,
        page: usize,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, ServiceError>,
    ) -> Result<(), ServiceError> {
        loop {
            let entries = self.store.scan(prefix, after.as_deref(), page)?;
            let full = entries.len() == page;
            for (key, value) in &entries {
                if !visit(key, value)? {
                    return Ok(());
                }
            }
            match entries.into_iter().next_back() {
                Some((last, _)) if full => after = Some(last),
                _ => return Ok(()),
            }
        }
    }

    /// One page of deals from `source` that pass `keep`.
    pub fn list_deals(
        &self,
        source: Source<'_>,
        page: &PageRequest,
        keep: impl Fn(&Deal) -> bool,
    ) -> Result<Page<Deal>, ServiceError> {
        self.list_with(source, page, decode_deal, keep)
    }

    /// [`Repo::list`] with the records decoded by `decode`.
    fn list_with<T>(
        &self,
        source: Source<'_>,
        page: &PageRequest,
        decode: impl Fn(&[u8], &[u8]) -> Result<T, ServiceError>,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Page<T>, ServiceError> {
        let limit = page.limit()?;
        let prefix = match &source {
            Source::Primary(p) | Source::Index { prefix: p, .. } => p.clone(),
        };
        let mut after = page.after()?.map(|s| [prefix.as_slice(), &s].concat());
        let mut items = Vec::with_capacity(limit);
        let chunk = limit.clamp(16, 256);
        loop {
            let entries = self.store.scan(&prefix, after.as_deref(), chunk)?;
            let exhausted = entries.len() < chunk;
            for (key, value) in entries {
                let record: Option<T> = match &source {
                    Source::Primary(_) => Some(decode(&key, &value)?),
                    Source::Index { tag, .. } => {
                        let id = String::from_utf8_lossy(&value);
                        let pk = keys::key(tag, &[&id]);
                        // An index entry and its record are written in one
                        // batch, so a miss here is a record removed since.
                        self.store
                            .get(&pk)?
                            .map(|raw| decode(&pk, &raw))
                            .transpose()?
                    }
                };
                after = Some(key);
                if let Some(r) = record.filter(&keep) {
                    items.push(r);
                    if items.len() == limit {
                        let more = match &after {
                            Some(a) => !self.store.scan(&prefix, Some(a), 1)?.is_empty(),
                            None => false,
                        };
                        let next = after
                            .filter(|_| more)
                            .map(|k| cursor_of(&k[prefix.len()..]));
                        return Ok(Page {
                            items,
                            next_cursor: next,
                        });
                    }
                }
            }
            if exhausted {
                return Ok(Page {
                    items,
                    next_cursor: None,
                });
            }
        }
    }
}

/// Decodes a stored deal (binary, or JSON as written before).
pub fn decode_deal(key: &[u8], raw: &[u8]) -> Result<Deal, ServiceError> {
    Deal::from_stored(raw).map_err(|reason| corrupt(key, reason))
}

/// Decodes a signing-index entry (binary, or JSON as written before).
pub fn decode_deal_record(key: &[u8], raw: &[u8]) -> Result<DealRecord, ServiceError> {
    DealRecord::decode(raw).map_err(|reason| corrupt(key, reason))
}

fn corrupt(key: &[u8], reason: String) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt {
        key: printable(key),
        reason,
    })
}

/// What revenue counts of a signing-index entry (either form).
pub fn decode_signed_revenue(key: &[u8], raw: &[u8]) -> Result<SignedRevenue, ServiceError> {
    SignedRevenue::decode(raw).map_err(|reason| corrupt(key, reason))
}

/// Decodes a stored record.
pub fn decode<T: DeserializeOwned>(key: &[u8], raw: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(raw).map_err(|e| corrupt(key, e.to_string()))
}
