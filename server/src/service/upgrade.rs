//! Store upgrades at start: data written by an older server gets what the
//! current one keeps alongside it, once, before any request is served.
//!
//! Schema 2 (settlements) added to signed deals the brands that were new at
//! their signing and the signing indexes (by branch and by customer), and to
//! customers the time of their first order with its index. A store without
//! them would settle as if those deals did not exist.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use super::repo::{decode, encode, Stored};
use super::{stage_customer, stage_signing_indexes, ServiceError, Services};
use crate::domain::brand::Brand;
use crate::domain::customer::Customer;
use crate::domain::deal::Deal;
use crate::store::{keys, Batch};

/// The schema this server writes.
pub const SCHEMA: u32 = 2;
const SCHEMA_KEY: &str = "schema";
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
        if current >= SCHEMA {
            return Ok(0);
        }
        // The first signed deal of each brand is recorded on the brand.
        let mut first_deal_of: HashMap<String, String> = HashMap::new();
        for (k, v) in store.scan(&keys::prefix(keys::BRAND, &[]), None, usize::MAX)? {
            let b: Brand = decode(&k, &v)?;
            if let Some(d) = b.first_signed_deal {
                first_deal_of.insert(b.id, d);
            }
        }
        let mut first_orders: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
        let prefix = keys::prefix(keys::DEAL, &[]);
        let mut after: Option<Vec<u8>> = None;
        let mut upgraded = 0;
        loop {
            let page = store.scan(&prefix, after.as_deref(), PER_BATCH)?;
            let Some((last, _)) = page.last() else { break };
            after = Some(last.clone());
            let mut batch = Batch::new();
            for (key, raw) in &page {
                let old = Stored {
                    value: decode::<Deal>(key, raw)?,
                    raw: raw.clone(),
                };
                let Some(signed) = old.value.signed_at else {
                    continue;
                };
                let mut deal = old.value.clone();
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
                if deal.new_brands != old.value.new_brands {
                    batch
                        .expect(key.clone(), Some(raw))
                        .put(key.clone(), encode(&deal));
                }
                stage_signing_indexes(&mut batch, None, &deal);
                let first = first_orders
                    .entry(deal.customer_id.clone())
                    .or_insert(signed);
                *first = (*first).min(signed);
                upgraded += 1;
            }
            self.repo.commit(batch).await?;
            if page.len() < PER_BATCH {
                break;
            }
        }
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
            stage_customer(&mut batch, Some(&old), &c);
            self.repo.commit(batch).await?;
        }
        let mut batch = Batch::new();
        batch.put(schema_key, SCHEMA.to_string().into_bytes());
        self.repo.commit(batch).await?;
        if upgraded > 0 {
            tracing::info!(deals = upgraded, schema = SCHEMA, "store upgraded");
        }
        Ok(upgraded)
    }
}
