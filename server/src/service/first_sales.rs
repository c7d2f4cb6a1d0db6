//! First sales: a brand's first signed contract (the one sale that sells it
//! new, docs/business-rules.md §5.1) and a customer's first order (the start of its
//! new-customer window, §5.2). Each is the earliest by signing time (then
//! by deal id) among the signed contracts not cancelled, whatever order
//! they arrived in: a team importing its old CRM's history gets the answers
//! it would have got living through it. Every change of a contract that can
//! move one (a signing, a cancellation, a corrected signing time or brand
//! set) corrects it in its own batch, with what depends on it: the brand's
//! `new` and first deal, `new_brands` of the contracts that gain or lose the
//! brand's new-brand sale, and the customer's `first_order_at` (and its
//! index, which settlements read windows and new-customer counts from).
//!
//! Concurrency: a write reads the brand (customer) and expects it unchanged
//! at commit, so it never builds on a first sale that moved meanwhile. A
//! write that has to look for the next first sale in the index (the first
//! one left or moved later) cannot expect "no new entry" of a key range, so
//! every change of a brand's (customer's) signed contracts also rewrites
//! its signing stamp without expecting it, and the looking write expects
//! the stamp it read before looking: a contract signed meanwhile makes it
//! retry, while writes that only compare with the recorded first sale never
//! conflict with each other.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::repo::{decode_deal_record, encode, Stored};
use super::{now, stage_customer, stage_deal, ServiceError, Services};
use crate::domain::brand::Brand;
use crate::domain::customer::Customer;
use crate::domain::deal::Deal;
use crate::domain::history::{HistoryAction, HistoryEntry};
use crate::store::{keys, Batch};

/// A sale's place in its order: signing time, then deal id.
pub(crate) type Sale = (DateTime<Utc>, String);

/// When `deal` counts as a sale: signed and not cancelled.
pub(crate) fn sold_at(deal: &Deal) -> Option<DateTime<Utc>> {
    deal.signed_at.filter(|_| deal.cancelled_at.is_none())
}

/// The brands of a deal's lines.
pub(crate) fn brands_of(deal: &Deal) -> BTreeSet<&str> {
    deal.lines.iter().map(|l| l.brand.as_str()).collect()
}

/// `deal` as a sale of `brand`, when it is one.
fn sale_of(deal: &Deal, brand: &str) -> Option<Sale> {
    sold_at(deal)
        .filter(|_| deal.lines.iter().any(|l| l.brand == brand))
        .map(|t| (t, deal.id.clone()))
}

/// The brand-index keys of a deal: one per brand of its lines while it is
/// a sale (signed, not cancelled).
pub(crate) fn brand_index_keys(deal: &Deal) -> BTreeSet<Vec<u8>> {
    let Some(t) = sold_at(deal) else {
        return BTreeSet::new();
    };
    let t = keys::time(&t);
    brands_of(deal)
        .into_iter()
        .map(|b| keys::key(keys::IX_BRAND_SIGNED, &[b, &t, &deal.id]))
        .collect()
}

/// The earlier of two optional sales (`None`: no sale).
fn earliest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The brand `new_brands` changes of one other contract.
#[derive(Default)]
struct Flip {
    gains: BTreeSet<String>,
    loses: BTreeSet<String>,
}

impl Services {
    /// Stages into `batch` what changing a deal from `old` (`None`: it did
    /// not exist) to `new` does to first sales, and sets `new.new_brands`.
    /// Call it before staging `new` itself, with `new.version` already the
    /// version being written; `by` is who made the change.
    pub(crate) fn stage_first_sales(
        &self,
        batch: &mut Batch,
        old: Option<&Deal>,
        new: &mut Deal,
        by: &str,
    ) -> Result<(), ServiceError> {
        let stamp = format!("{}@{}", new.id, new.version);
        let mut brands: BTreeSet<String> = brands_of(new).into_iter().map(String::from).collect();
        if let Some(o) = old {
            brands.extend(brands_of(o).into_iter().map(String::from));
        }
        let mut others: BTreeMap<String, Flip> = BTreeMap::new();
        for brand in &brands {
            let (was, is) = (old.and_then(|o| sale_of(o, brand)), sale_of(new, brand));
            if was == is {
                continue;
            }
            let first = self.stage_brand_first(batch, brand, &new.id, is, &stamp)?;
            let recorded = first.recorded.map(|(_, id)| id);
            let now_first = first.first.map(|(_, id)| id);
            new.new_brands.retain(|b| b != brand);
            if now_first.as_deref() == Some(new.id.as_str()) {
                new.new_brands.push(brand.clone());
            }
            if recorded == now_first {
                continue;
            }
            if let Some(r) = recorded.filter(|r| *r != new.id) {
                others.entry(r).or_default().loses.insert(brand.clone());
            }
            if let Some(w) = now_first.filter(|w| *w != new.id) {
                others.entry(w).or_default().gains.insert(brand.clone());
            }
        }
        new.new_brands.sort();
        new.new_brands.dedup();
        for (id, flip) in others {
            self.stage_flip(batch, &id, flip, new, by)?;
        }
        self.stage_first_order(batch, old, new, &stamp)
    }

    /// Brings `brand`'s first sale up to date for a change of deal `deal`
    /// whose sale of it is now `is`: returns the first sale recorded before
    /// and the one now (already staged on the brand).
    fn stage_brand_first(
        &self,
        batch: &mut Batch,
        brand: &str,
        deal: &str,
        is: Option<Sale>,
        stamp: &str,
    ) -> Result<BrandFirst, ServiceError> {
        let stamp_key = keys::key(keys::SIGNING_STAMP, &["brand", brand]);
        let key = keys::key(keys::BRAND, &[brand]);
        let Some(stored) = self.repo.read::<Brand>(&key)? else {
            return Ok(BrandFirst::default());
        };
        batch.expect(key.clone(), Some(&stored.raw));
        let recorded = stored
            .value
            .first_signed_at
            .zip(stored.value.first_signed_deal.clone());
        // The recorded first sale is the earliest of the others unless it is
        // this deal's (or there is none): then look for the next one.
        let others = match &recorded {
            Some((_, id)) if id != deal => recorded.clone(),
            _ => {
                let current = self.repo.store().get(&stamp_key)?;
                batch.expect(stamp_key.clone(), current.as_deref());
                self.first_brand_sale(brand, deal)?
            }
        };
        batch.put(stamp_key, stamp.as_bytes());
        let first = earliest(others, is);
        if first != recorded {
            let mut b = stored.value.clone();
            b.new = first.is_none();
            b.first_signed_at = first.as_ref().map(|(t, _)| *t);
            b.first_signed_deal = first.as_ref().map(|(_, id)| id.clone());
            b.version += 1;
            batch.put(key, encode(&b));
        }
        Ok(BrandFirst { recorded, first })
    }

    /// The earliest sale of `brand` in the brand index, leaving out deal
    /// `skip` (whose entry is about to change).
    pub(crate) fn first_brand_sale(
        &self,
        brand: &str,
        skip: &str,
    ) -> Result<Option<Sale>, ServiceError> {
        let prefix = keys::prefix(keys::IX_BRAND_SIGNED, &[brand]);
        for (key, _) in self.repo.store().scan(&prefix, None, 2)? {
            let rest = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            let (time, id) = rest.split_once('\0').unwrap_or((&rest, ""));
            if id == skip {
                continue;
            }
            let at = time.parse::<DateTime<Utc>>().map_err(|e| {
                ServiceError::Store(crate::store::StoreError::Corrupt {
                    key: crate::store::printable(&key),
                    reason: e.to_string(),
                })
            })?;
            return Ok(Some((at, id.to_string())));
        }
        Ok(None)
    }

    /// Rewrites another contract whose new-brand sales moved because of a
    /// change to `cause`: its `new_brands`, a history entry saying why.
    fn stage_flip(
        &self,
        batch: &mut Batch,
        id: &str,
        flip: Flip,
        cause: &Deal,
        by: &str,
    ) -> Result<(), ServiceError> {
        let old: Stored<Deal> = self.repo.fetch_deal(id)?;
        let mut d = old.value.clone();
        d.new_brands.retain(|b| !flip.loses.contains(b));
        d.new_brands.extend(flip.gains.iter().cloned());
        d.new_brands.sort();
        d.new_brands.dedup();
        if d.new_brands == old.value.new_brands {
            return Ok(());
        }
        let mut why = Vec::new();
        let list = |s: &BTreeSet<String>| {
            s.iter()
                .map(|b| format!("`{b}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !flip.gains.is_empty() {
            why.push(format!(
                "it is now the earliest signed contract (not cancelled) with {}, after a change to deal {}",
                list(&flip.gains),
                cause.id
            ));
        }
        if !flip.loses.is_empty() {
            why.push(format!(
                "deal {} was signed earlier with {}, so this contract no longer sells it new",
                cause.id,
                list(&flip.loses)
            ));
        }
        let now = now();
        d.version += 1;
        d.updated_at = now;
        let entry = HistoryEntry {
            reason: Some(format!("first sale by signing time: {}", why.join("; "))),
            changes: Some(
                json!({"new_brands": {"from": old.value.new_brands, "to": d.new_brands}}),
            ),
            ..HistoryEntry::new(d.version, HistoryAction::Updated, now, now, by)
        };
        stage_deal(batch, Some(&old), &d, &entry, None);
        Ok(())
    }

    /// Brings the customer's first order up to date for a change of a deal
    /// from `old` to `new`.
    fn stage_first_order(
        &self,
        batch: &mut Batch,
        old: Option<&Deal>,
        new: &Deal,
        stamp: &str,
    ) -> Result<(), ServiceError> {
        let (was, is) = (old.and_then(sold_at), sold_at(new));
        if was == is {
            return Ok(());
        }
        let stamp_key = keys::key(keys::SIGNING_STAMP, &["customer", &new.customer_id]);
        let key = keys::key(keys::CUSTOMER, &[&new.customer_id]);
        let Some(stored) = self.repo.read::<Customer>(&key)? else {
            return Ok(());
        };
        batch.expect(key, Some(&stored.raw));
        let recorded = stored.value.first_order_at;
        let others = match (recorded, was) {
            (Some(r), Some(w)) if r != w => Some(r),
            (Some(r), None) => Some(r),
            _ => {
                let current = self.repo.store().get(&stamp_key)?;
                batch.expect(stamp_key.clone(), current.as_deref());
                self.first_order_of(&new.customer_id, &new.id)?
            }
        };
        batch.put(stamp_key, stamp.as_bytes());
        let first = earliest(others, is);
        if first != recorded {
            let mut c = stored.value.clone();
            c.first_order_at = first;
            c.version += 1;
            c.updated_at = now();
            stage_customer(batch, Some(&stored), &c, None);
        }
        Ok(())
    }

    /// The customer's earliest signed contract not cancelled, leaving out
    /// deal `skip` (whose entry is about to change).
    fn first_order_of(
        &self,
        customer: &str,
        skip: &str,
    ) -> Result<Option<DateTime<Utc>>, ServiceError> {
        const PAGE: usize = 64;
        let prefix = keys::prefix(keys::IX_DEAL_CUSTOMER_SIGNED, &[customer]);
        let mut after: Option<Vec<u8>> = None;
        loop {
            let page = self.repo.store().scan(&prefix, after.as_deref(), PAGE)?;
            for (k, v) in &page {
                let d = decode_deal_record(k, v)?;
                if d.id != skip && d.cancelled_at.is_none() {
                    return Ok(d.signed_at);
                }
            }
            if page.len() < PAGE {
                return Ok(None);
            }
            after = page.last().map(|(k, _)| k.clone());
        }
    }
}

/// A brand's first sale before and after a change.
#[derive(Default)]
struct BrandFirst {
    recorded: Option<Sale>,
    first: Option<Sale>,
}
