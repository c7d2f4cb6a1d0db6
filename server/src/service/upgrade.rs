//! Store upgrades at start: data written by an older server gets what the
//! current one keeps alongside it, once, before any request is served.
//!
//! Schema 2 (settlements) added to signed deals the brands that were new at
//! their signing and the signing indexes (by branch and by customer), and to
//! customers the time of their first order with its index. A store without
//! them would settle as if those deals did not exist.
//!
//! Schema 3 (key accounts) added the tier index of customers, the index of
//! open deals by owner and the index of open tasks, which tiering,
//! assignment, follow-ups and team reports read.
//!
//! Schema 5 (revocable tokens) gave every token a stable id and indexed
//! tokens by id and by branch; tokens stored before it (keyed by hash, no
//! id) get theirs and keep working.
//!
//! Schema 6 (first sales by signing time) added the index of contracts by
//! brand, and made each brand's first signed contract and each customer's
//! first order the earliest by signing time among contracts not cancelled
//! (servers before it kept a brand's first contract to arrive, cancelled or
//! not): brands, customers and the `new_brands` of contracts that differ
//! are corrected, each corrected contract with a history entry saying why.
//!
//! Schema 7 (a rep's day on a big branch) keeps maintained indexes and
//! counters beside the records: per-owner counts (tiers, open deals),
//! open tasks by assignee and branch in due order with their overdue
//! instants, referred customers by referrer with a count per referrer.
//! They are rebuilt from the records here (from a clean slate, so an
//! upgrade cut short and run again counts nothing twice). The due index
//! and the revenue contributions are computed by their background workers
//! after start (the branches have no cadence stamp, the revenue counters
//! are marked); reports and follow-ups answer the straightforward way
//! until they are done.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use rust_decimal::Decimal;

use super::customers::{referrer_count_key, referrer_key, tier_key};
use super::first_sales::{brand_index_keys, brands_of, sold_at};
use super::repo::{decode, decode_deal, encode, Stored};
use super::revenue_counts::stage_revenue_mark;
use super::tasks::due_keys;
use super::tokens::put_grant;
use super::{now, stage_customer, stage_deal, stage_signing_indexes, ServiceError, Services};
use super::{overdue, rep_counts};
use crate::domain::brand::Brand;
use crate::domain::customer::Customer;
use crate::domain::history::{HistoryAction, HistoryEntry};
use crate::domain::pipeline::StageKind;
use crate::domain::task::{Task, TaskStatus};
use crate::domain::token::Grant;
use crate::store::{keys, Batch};

/// The schema this server writes. 4: signing-index entries may be in the
/// binary form (`incentive::deal_record`), which servers before it cannot
/// read; nothing is rewritten to get there. 5: tokens have ids (a server
/// before it would not see revocations). 6: first sales by signing time.
/// 7: maintained indexes and counters for follow-ups, reports and
/// assignment.
pub const SCHEMA: u32 = 7;
const SCHEMA_KEY: &str = "schema";
/// Why schema 6 corrected a contract's `new_brands` (its history says).
const FIRST_SALES_REASON: &str = "store upgrade: a brand's first signed contract is the earliest by signing time among contracts not cancelled";
/// Deals rewritten per batch.
const PER_BATCH: usize = 500;

impl Services {
    /// Brings a store written by an older server up to [`SCHEMA`]; returns
    /// how many signed deals were backfilled. Call once at start, before
    /// serving.
    pub async fn upgrade_store(&self) -> Result<usize, ServiceError> {
        let store = self.repo.store();
        let schema_key = keys::key(keys::META, &[SCHEMA_KEY]);
        let current = store
            .get(&schema_key)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(1);
        if current > SCHEMA {
            // A newer server's store may hold what this one misreads.
            return Err(ServiceError::Store(crate::store::StoreError::Corrupt {
                key: "meta/schema".into(),
                reason: format!(
                    "written by a newer server (schema {current}); this server reads up to schema {SCHEMA}"
                ),
            }));
        }
        if current == SCHEMA {
            return Ok(0);
        }
        let mut upgraded = 0;
        if current < 2 {
            upgraded += self.upgrade_to_2().await?;
        }
        if current < 3 {
            upgraded += self.upgrade_to_3().await?;
            // Stored tiers predate the tiering policies: every branch is
            // re-tiered once (marked here; queued by `resume_tiering` once
            // the policies are live).
            let branches = self.branch_ids()?;
            self.write_retier_marks(&branches, "store upgrade").await?;
        }
        if current < 5 {
            upgraded += self.upgrade_to_5().await?;
        }
        if current < 6 {
            upgraded += self.upgrade_to_6().await?;
        }
        if current < 7 {
            // Last: rebuilt from the records as the earlier steps left them.
            upgraded += self.upgrade_to_7().await?;
        }
        let mut batch = Batch::new();
        batch.put(schema_key, SCHEMA.to_string().into_bytes());
        self.repo.commit(batch).await?;
        if upgraded > 0 {
            tracing::info!(records = upgraded, schema = SCHEMA, "store upgraded");
        }
        Ok(upgraded)
    }

    /// Schema 3: the tier index of every customer, the open-deal index of
    /// every open deal, the open-task index of every open task; returns how
    /// many records were indexed.
    async fn upgrade_to_3(&self) -> Result<usize, ServiceError> {
        let mut indexed = 0;
        indexed += self
            .each_page(keys::CUSTOMER, |batch, key, raw| {
                let c: Customer = decode(key, raw)?;
                batch.put(
                    tier_key(&c.branch, c.tier, &c.id),
                    c.owner.unwrap_or_default().into_bytes(),
                );
                Ok(())
            })
            .await?;
        indexed += self
            .each_page(keys::DEAL, |batch, key, raw| {
                let d = decode_deal(key, raw)?;
                if d.stage_kind == StageKind::Open {
                    batch.put(
                        keys::key(keys::IX_DEAL_OPEN, &[&d.branch, &d.owner, &d.id]),
                        d.id.as_bytes(),
                    );
                }
                Ok(())
            })
            .await?;
        indexed += self
            .each_page(keys::TASK, |batch, key, raw| {
                let t: Task = decode(key, raw)?;
                if t.status == TaskStatus::Open {
                    batch.put(
                        keys::key(keys::IX_TASK_OPEN, &[&t.branch, &t.id]),
                        t.id.as_bytes(),
                    );
                }
                Ok(())
            })
            .await?;
        Ok(indexed)
    }

    /// Schema 7: the maintained indexes and counters, rebuilt from the
    /// records; returns how many records were counted.
    async fn upgrade_to_7(&self) -> Result<usize, ServiceError> {
        for tag in [
            keys::REP_COUNT,
            keys::OVERDUE,
            keys::IX_OVERDUE,
            keys::IX_TASK_DUE_OWNER,
            keys::IX_TASK_DUE_BRANCH,
            keys::IX_CUSTOMER_REFERRER,
            keys::REFERRER_COUNT,
            keys::DUE,
            keys::IX_DUE_OWNER,
            keys::IX_DUE_BRANCH,
            keys::DUE_STAMP,
            keys::DUE_DIRTY,
            keys::DUE_FAILED,
            keys::CONTRIBUTION,
            keys::REVENUE_MONTH,
            keys::REVENUE_DAY,
            keys::REFERRAL_MONTH,
            keys::REFERRAL_DAY,
        ] {
            self.delete_all(&keys::prefix(tag, &[])).await?;
        }
        let mut counted = 0;
        counted += self
            .each_page(keys::CUSTOMER, |batch, key, raw| {
                let c: Customer = decode(key, raw)?;
                rep_counts::stage_customer(batch, None, &c);
                if let Some(r) = &c.referred_by {
                    batch.put(referrer_key(&c.branch, r, &c.id), c.id.as_bytes());
                    batch.add(referrer_count_key(&c.branch, r), &[Decimal::ONE]);
                }
                Ok(())
            })
            .await?;
        counted += self
            .each_page(keys::DEAL, |batch, key, raw| {
                let d = decode_deal(key, raw)?;
                if d.stage_kind == StageKind::Open {
                    rep_counts::stage_open_deal(batch, &d.branch, None, Some(&d.owner));
                }
                Ok(())
            })
            .await?;
        counted += self
            .each_page(keys::TASK, |batch, key, raw| {
                let t: Task = decode(key, raw)?;
                if t.status == TaskStatus::Open {
                    for k in due_keys(&t) {
                        batch.put(k, t.id.as_bytes());
                    }
                    overdue::stage_instant(batch, &t.branch, &t.assignee, &t.id, &t.due_at, 1);
                }
                Ok(())
            })
            .await?;
        let mut batch = Batch::new();
        stage_revenue_mark(&mut batch, "store upgrade");
        self.repo.commit(batch).await?;
        Ok(counted)
    }

    /// Deletes every key under `prefix`, a page per batch.
    async fn delete_all(&self, prefix: &[u8]) -> Result<(), ServiceError> {
        loop {
            let page = self.repo.store().scan(prefix, None, PER_BATCH)?;
            if page.is_empty() {
                return Ok(());
            }
            let mut batch = Batch::new();
            for (k, _) in page {
                batch.delete(k);
            }
            self.repo.commit(batch).await?;
        }
    }

    /// Schema 5: an id for every token stored without one, and the token
    /// indexes; returns how many tokens got an id.
    async fn upgrade_to_5(&self) -> Result<usize, ServiceError> {
        let prefix = keys::prefix(keys::TOKEN, &[]);
        let mut legacy = Vec::new();
        for (key, raw) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let grant: Grant = decode(&key, &raw)?;
            if grant.id.is_empty() {
                legacy.push((key, raw, grant));
            }
        }
        for page in legacy.chunks(PER_BATCH) {
            let mut batch = Batch::new();
            for (key, raw, grant) in page {
                let mut grant = grant.clone();
                grant.id = self.repo.new_id("tok")?;
                let hash = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
                batch.expect(key.clone(), Some(raw));
                put_grant(&mut batch, &hash, &grant);
            }
            self.repo.commit(batch).await?;
        }
        Ok(legacy.len())
    }

    /// Schema 6: the brand index of contracts not cancelled, then first
    /// sales by signing time (see the module's header); returns how many
    /// records were corrected.
    async fn upgrade_to_6(&self) -> Result<usize, ServiceError> {
        let mut first_orders: HashMap<String, DateTime<Utc>> = HashMap::new();
        self.each_page(keys::DEAL, |batch, key, raw| {
            let d = decode_deal(key, raw)?;
            for k in brand_index_keys(&d) {
                batch.put(k, d.id.as_bytes());
            }
            if let Some(t) = sold_at(&d) {
                let first = first_orders.entry(d.customer_id.clone()).or_insert(t);
                *first = (*first).min(t);
            }
            Ok(())
        })
        .await?;
        let mut corrected = 0;
        let mut first_of: HashMap<String, String> = HashMap::new();
        let brands = self
            .repo
            .store()
            .scan(&keys::prefix(keys::BRAND, &[]), None, usize::MAX)?;
        for (key, raw) in brands {
            let b: Brand = decode(&key, &raw)?;
            let first = self.first_brand_sale(&b.id, "")?;
            if let Some((_, deal)) = &first {
                first_of.insert(b.id.clone(), deal.clone());
            }
            if first == b.first_signed_at.zip(b.first_signed_deal.clone())
                && b.new == first.is_none()
            {
                continue;
            }
            let mut fixed = b.clone();
            fixed.new = first.is_none();
            fixed.first_signed_at = first.as_ref().map(|(t, _)| *t);
            fixed.first_signed_deal = first.map(|(_, d)| d);
            fixed.version += 1;
            let mut batch = Batch::new();
            batch
                .expect(key.clone(), Some(&raw))
                .put(key, encode(&fixed));
            self.repo.commit(batch).await?;
            corrected += 1;
        }
        let now = now();
        self.each_page(keys::DEAL, |batch, key, raw| {
            let old = decode_deal(key, raw)?;
            let mut d = old.clone();
            d.new_brands = match sold_at(&d) {
                None => Vec::new(),
                Some(_) => brands_of(&d)
                    .into_iter()
                    .filter(|b| first_of.get(*b) == Some(&d.id))
                    .map(String::from)
                    .collect(),
            };
            if d.new_brands == old.new_brands {
                return Ok(());
            }
            d.version += 1;
            d.updated_at = now;
            let entry = HistoryEntry {
                reason: Some(FIRST_SALES_REASON.into()),
                changes: Some(
                    serde_json::json!({"new_brands": {"from": old.new_brands, "to": d.new_brands}}),
                ),
                ..HistoryEntry::new(d.version, HistoryAction::Updated, now, now, "system")
            };
            let old = Stored {
                value: old,
                raw: raw.to_vec(),
            };
            stage_deal(batch, Some(&old), &d, &entry, None);
            corrected += 1;
            Ok(())
        })
        .await?;
        self.each_page(keys::CUSTOMER, |batch, key, raw| {
            let c: Customer = decode(key, raw)?;
            let first = first_orders.get(&c.id).copied();
            if c.first_order_at == first {
                return Ok(());
            }
            let mut fixed = c.clone();
            fixed.first_order_at = first;
            fixed.version += 1;
            fixed.updated_at = now;
            let old = Stored {
                value: c,
                raw: raw.to_vec(),
            };
            stage_customer(batch, Some(&old), &fixed, None);
            corrected += 1;
            Ok(())
        })
        .await?;
        Ok(corrected)
    }

    /// Visits every record under `tag` page by page, committing what each
    /// page staged; returns how many were visited.
    async fn each_page(
        &self,
        tag: &str,
        mut visit: impl FnMut(&mut Batch, &[u8], &[u8]) -> Result<(), ServiceError>,
    ) -> Result<usize, ServiceError> {
        let store = self.repo.store();
        let prefix = keys::prefix(tag, &[]);
        let mut after: Option<Vec<u8>> = None;
        let mut visited = 0;
        loop {
            let page = store.scan(&prefix, after.as_deref(), PER_BATCH)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let mut batch = Batch::new();
            for (key, raw) in &page {
                visit(&mut batch, key, raw)?;
            }
            visited += page.len();
            self.repo.commit(batch).await?;
            if page.len() < PER_BATCH {
                break;
            }
        }
        Ok(visited)
    }

    /// Schema 2: new brands and signing indexes of signed deals, first
    /// orders of customers; returns how many signed deals were backfilled.
    async fn upgrade_to_2(&self) -> Result<usize, ServiceError> {
        let store = self.repo.store();
        // The first signed deal of each brand is recorded on the brand.
        let mut first_deal_of: HashMap<String, String> = HashMap::new();
        for (k, v) in store.scan(&keys::prefix(keys::BRAND, &[]), None, usize::MAX)? {
            let b: Brand = decode(&k, &v)?;
            if let Some(d) = b.first_signed_deal {
                first_deal_of.insert(b.id, d);
            }
        }
        let mut first_orders: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        let mut upgraded = 0;
        self.each_page(keys::DEAL, |batch, key, raw| {
            let old = decode_deal(key, raw)?;
            let Some(signed) = old.signed_at else {
                return Ok(());
            };
            let mut deal = old.clone();
            if deal.new_brands.is_empty() {
                let mut brands: Vec<String> = deal
                    .lines
                    .iter()
                    .map(|l| l.brand.clone())
                    .filter(|b| first_deal_of.get(b) == Some(&deal.id))
                    .collect();
                brands.sort();
                brands.dedup();
                deal.new_brands = brands;
            }
            if deal.new_brands != old.new_brands {
                batch
                    .expect(key.to_vec(), Some(raw))
                    .put(key.to_vec(), deal.to_stored());
            }
            stage_signing_indexes(batch, None, &deal);
            let first = first_orders
                .entry(deal.customer_id.clone())
                .or_insert(signed);
            *first = (*first).min(signed);
            upgraded += 1;
            Ok(())
        })
        .await?;
        for (customer, first) in first_orders {
            let key = keys::key(keys::CUSTOMER, &[&customer]);
            let Some(old) = self.repo.read::<Customer>(&key)? else {
                continue;
            };
            if old.value.first_order_at.is_some_and(|f| f <= first) {
                continue;
            }
            let mut c = old.value.clone();
            c.first_order_at = Some(first);
            let mut batch = Batch::new();
            stage_customer(&mut batch, Some(&old), &c, None);
            self.repo.commit(batch).await?;
        }
        Ok(upgraded)
    }
}
