//! Revenue counters: what signed contracts add to their owner's revenue
//! (the team report's trailing 12 months) and to their customer's referrer
//! (the referral report), in CNY, by local month and by local day of the
//! branch, maintained in the batch of every change that moves them, so a
//! report reads a few hundred counters instead of every signing.
//!
//! Each signed contract not cancelled has a contribution
//! (`keys::CONTRIBUTION`): its owner, its customer's referrer, its local
//! signing day and its amount in CNY at the rates of that day (none when
//! no rate is in force). A change of the contract (signing, cancelling,
//! a corrected amount, currency, signing time or owner) or of its
//! customer's referrer replaces the contribution and moves the counters
//! by the difference (`Batch::add`, so concurrent signings never
//! conflict over a month's total).
//!
//! Contributions are converted at the rates in force when they are
//! written. A rate added or corrected bumps a stamp every contribution
//! write expects (`keys::FX_STAMP`) and marks the counters stale
//! (`keys::FX_DIRTY`); a background worker converts every contribution
//! again and clears the mark. While the mark is there the reports add up
//! the signings the straightforward way.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::first_sales::sold_at;
use super::repo::{decode, encode};
use super::{ServiceError, Services, MAX_RETRIES};
use crate::domain::branch::Branch;
use crate::domain::customer::Customer;
use crate::domain::deal::Deal;
use crate::incentive::period::local_day;
use crate::incentive::FxTable;
use crate::store::{counter, keys, Batch, StoreError};

/// Contributions converted again per batch after an FX change.
const PER_BATCH: usize = 256;
/// How long a failed conversion waits before it is tried again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// What one signed contract adds to the counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Contribution {
    /// The branch.
    pub branch: String,
    /// The deal's owner.
    pub owner: String,
    /// Its customer's referrer.
    pub referrer: Option<String>,
    /// The local day it was signed.
    pub day: NaiveDate,
    /// Its amount in CNY at that day's rates (none in force: `None`).
    pub cny: Option<Decimal>,
}

impl Contribution {
    /// Adds (`sign` 1) or takes away (-1) this contribution to the counters.
    fn stage(&self, batch: &mut Batch, sign: i64) {
        let sign = Decimal::from(sign);
        let month = month_of(self.day);
        let day = self.day.to_string();
        if let Some(cny) = self.cny {
            let owner = [cny * sign, sign];
            batch.add(
                keys::key(keys::REVENUE_MONTH, &[&self.branch, &month, &self.owner]),
                &owner,
            );
            batch.add(
                keys::key(keys::REVENUE_DAY, &[&self.branch, &day, &self.owner]),
                &owner,
            );
        }
        if let Some(r) = &self.referrer {
            let referral = match self.cny {
                Some(cny) => [cny * sign, sign, Decimal::ZERO],
                None => [Decimal::ZERO, Decimal::ZERO, sign],
            };
            batch.add(
                keys::key(keys::REFERRAL_MONTH, &[&self.branch, &month, r]),
                &referral,
            );
            batch.add(
                keys::key(keys::REFERRAL_DAY, &[&self.branch, &day, r]),
                &referral,
            );
        }
    }
}

/// A contract's contribution before and after a write, with what the new
/// one was computed from (expected unchanged at commit).
#[derive(Debug, Clone)]
pub(crate) struct RevenueUpdate {
    deal: String,
    fx_stamp: Option<Vec<u8>>,
    customer: Option<(Vec<u8>, Vec<u8>)>,
    old_raw: Option<Vec<u8>>,
    old: Option<Contribution>,
    new: Option<Contribution>,
}

/// The key of a deal's contribution.
fn contribution_key(deal: &str) -> Vec<u8> {
    keys::key(keys::CONTRIBUTION, &[deal])
}

/// `YYYY-MM` of a day.
fn month_of(day: NaiveDate) -> String {
    format!("{:04}-{:02}", day.year(), day.month())
}

/// What of a deal its contribution depends on (besides its customer's
/// referrer): a write that changes none of it leaves the counters alone.
pub(crate) fn revenue_view(d: &Deal) -> (Option<DateTime<Utc>>, Decimal, &str, &str) {
    (sold_at(d), d.amount_total, &d.currency, &d.owner)
}

/// Writes a contract's new contribution and moves the counters.
pub(crate) fn stage_revenue(batch: &mut Batch, u: &RevenueUpdate) {
    let key = contribution_key(&u.deal);
    batch.expect(key.clone(), u.old_raw.as_deref());
    batch.expect(keys::FX_STAMP.to_vec(), u.fx_stamp.as_deref());
    if let Some((k, raw)) = &u.customer {
        batch.expect(k.clone(), Some(raw));
    }
    if u.old == u.new {
        return;
    }
    if let Some(c) = &u.old {
        c.stage(batch, -1);
    }
    match &u.new {
        Some(c) => {
            c.stage(batch, 1);
            batch.put(key, encode(c));
        }
        None => {
            batch.delete(key);
        }
    }
}

/// Marks the revenue counters for a conversion of every contribution in
/// `batch` (an FX rate changed, or a write moved revenue without its
/// update).
pub(crate) fn stage_revenue_mark(batch: &mut Batch, token: &str) {
    batch.put(keys::FX_STAMP.to_vec(), token.as_bytes());
    batch.put(keys::FX_DIRTY.to_vec(), token.as_bytes());
}

/// Whether the conversion worker runs, and whether it must run again.
#[derive(Default)]
pub struct RevenueQueue {
    running: AtomicBool,
    again: AtomicBool,
}

/// Per owner (or referrer): the counter values summed over a range.
pub(crate) type Sums = BTreeMap<String, Vec<Decimal>>;

impl Services {
    /// The update of the contribution of a deal about to be written as
    /// `new`.
    pub(crate) fn revenue_update(&self, new: &Deal) -> Result<RevenueUpdate, ServiceError> {
        let store = self.repo.store();
        // The stamp before the rates: rates read after a change are at
        // least as new as the stamp expected.
        let fx_stamp = store.get(keys::FX_STAMP)?;
        let key = contribution_key(&new.id);
        let old_raw = store.get(&key)?;
        let old = old_raw
            .as_deref()
            .map(|raw| decode::<Contribution>(&key, raw))
            .transpose()?;
        let mut update = RevenueUpdate {
            deal: new.id.clone(),
            fx_stamp,
            customer: None,
            old_raw,
            old,
            new: None,
        };
        let Some(signed) = sold_at(new) else {
            return Ok(update);
        };
        let ckey = keys::key(keys::CUSTOMER, &[&new.customer_id]);
        let referrer = match store.get(&ckey)? {
            Some(raw) => {
                let c: Customer = decode(&ckey, &raw)?;
                update.customer = Some((ckey, raw));
                c.referred_by
            }
            None => None,
        };
        let tz = self.branch_tz(&new.branch)?;
        let fx = FxTable::new(self.all_fx_rates()?);
        let day = local_day(signed, tz);
        update.new = Some(Contribution {
            branch: new.branch.clone(),
            owner: new.owner.clone(),
            referrer,
            day,
            cny: fx.to_cny(new.amount_total, &new.currency, day).ok(),
        });
        Ok(update)
    }

    /// The revenue update for a change of a deal from `old` to `new`, when
    /// the change moves its contribution.
    pub(crate) fn revenue_change(
        &self,
        old: Option<&Deal>,
        new: &Deal,
    ) -> Result<Option<RevenueUpdate>, ServiceError> {
        if old.is_some_and(|o| revenue_view(o) == revenue_view(new)) {
            return Ok(None);
        }
        self.revenue_update(new).map(Some)
    }

    /// Stages moving the contributions of `customer`'s signed contracts to
    /// its new referrer `to` (its referrer changed in the same batch).
    pub(crate) fn stage_referrer_change(
        &self,
        batch: &mut Batch,
        customer: &str,
        to: Option<&str>,
    ) -> Result<(), ServiceError> {
        let prefix = keys::prefix(keys::IX_DEAL_CUSTOMER_SIGNED, &[customer]);
        let mut deals = Vec::new();
        self.repo.walk(&prefix, None, 256, |k, _| {
            let id = k[prefix.len()..]
                .rsplit(|b| *b == 0)
                .next()
                .unwrap_or_default();
            deals.push(String::from_utf8_lossy(id).into_owned());
            Ok(true)
        })?;
        for deal in deals {
            let key = contribution_key(&deal);
            let Some(raw) = self.repo.store().get(&key)? else {
                continue;
            };
            let old: Contribution = decode(&key, &raw)?;
            let new = Contribution {
                referrer: to.map(String::from),
                ..old.clone()
            };
            stage_revenue(
                batch,
                &RevenueUpdate {
                    deal,
                    fx_stamp: self.repo.store().get(keys::FX_STAMP)?,
                    customer: None,
                    old_raw: Some(raw),
                    old: Some(old),
                    new: Some(new),
                },
            );
        }
        Ok(())
    }

    /// The time zone of a branch (UTC when it names none known).
    pub(crate) fn branch_tz(&self, branch: &str) -> Result<Tz, ServiceError> {
        let b: Branch = self.repo.fetch(keys::BRANCH, "branch", branch)?.value;
        Ok(b.timezone.parse().unwrap_or(chrono_tz::UTC))
    }

    /// Whether the revenue counters may be served (no FX change is being
    /// converted).
    pub(crate) fn revenue_counts_valid(&self) -> Result<bool, ServiceError> {
        Ok(self.repo.store().get(keys::FX_DIRTY)?.is_none())
    }

    /// The owners' (`tag` [`keys::REVENUE_MONTH`]) or referrers'
    /// ([`keys::REFERRAL_MONTH`]) counters of `branch` summed over the
    /// local days `[from, to]` (unbounded where `None`): whole months from
    /// the monthly counters, the days of partly covered months from the
    /// daily ones.
    pub(crate) fn sum_counters(
        &self,
        month_tag: &str,
        day_tag: &str,
        branch: &str,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
    ) -> Result<Sums, ServiceError> {
        let mut sums = Sums::new();
        let mut add = |who: &[u8], v: &[u8]| {
            let values = counter::decode(Some(v));
            let sum = sums
                .entry(String::from_utf8_lossy(who).into_owned())
                .or_default();
            if sum.len() < values.len() {
                sum.resize(values.len(), Decimal::ZERO);
            }
            for (s, v) in sum.iter_mut().zip(values) {
                *s += v;
            }
        };
        let first_of = |d: NaiveDate| d.with_day(1).unwrap_or(d);
        let last_of = |d: NaiveDate| {
            first_of(d)
                .checked_add_months(Months::new(1))
                .and_then(|n| n.pred_opt())
                .unwrap_or(d)
        };
        // A month counts whole when the range covers all its days.
        let whole = |month_start: NaiveDate| {
            from.is_none_or(|f| f <= month_start) && to.is_none_or(|t| last_of(month_start) <= t)
        };
        let prefix = keys::prefix(month_tag, &[branch]);
        // Keys are `prefix YYYY-MM NUL who`: everything after `prefix
        // YYYY-MM` itself starts at that month.
        let after = from.map(|f| [prefix.as_slice(), month_of(f).as_bytes()].concat());
        let last_month = to.map(month_of);
        let mut partial = Vec::new();
        self.repo.walk(&prefix, after, 512, |k, v| {
            let rest = &k[prefix.len()..];
            let (month, who) = split_part(rest);
            if last_month.as_deref().is_some_and(|m| month > m.as_bytes()) {
                return Ok(false);
            }
            let start = std::str::from_utf8(month)
                .ok()
                .and_then(|m| NaiveDate::parse_from_str(&format!("{m}-01"), "%Y-%m-%d").ok());
            match start {
                Some(s) if whole(s) => add(who, v),
                Some(s) if partial.last() != Some(&s) => partial.push(s),
                _ => {}
            }
            Ok(true)
        })?;
        // Partly covered months, day by day.
        let day_prefix = keys::prefix(day_tag, &[branch]);
        for month in partial {
            let first = from.map_or(month, |f| f.max(month));
            let last = to.map_or(last_of(month), |t| t.min(last_of(month)));
            let after = [day_prefix.as_slice(), first.to_string().as_bytes()].concat();
            let stop = last.to_string();
            self.repo.walk(&day_prefix, Some(after), 512, |k, v| {
                let (day, who) = split_part(&k[day_prefix.len()..]);
                if day > stop.as_bytes() {
                    return Ok(false);
                }
                add(who, v);
                Ok(true)
            })?;
        }
        Ok(sums)
    }

    /// Converts every contribution again after an FX change (in the
    /// background), then clears the mark unless another change came.
    pub(crate) fn revenue_marked(&self) {
        self.revenue_queue.again.store(true, Ordering::SeqCst);
        if !self.revenue_queue.running.swap(true, Ordering::SeqCst) {
            let worker = self.clone();
            tokio::spawn(async move { worker.revenue_worker().await });
        }
    }

    /// Queues the conversion left marked by an earlier run or by the
    /// store upgrade (at start).
    pub fn resume_revenue_counts(&self) -> Result<(), ServiceError> {
        if !self.revenue_counts_valid()? {
            self.revenue_marked();
        }
        Ok(())
    }

    /// Waits until no conversion is queued or running.
    pub async fn revenue_counts_idle(&self) {
        while self.revenue_queue.running.load(Ordering::SeqCst)
            || self.revenue_queue.again.load(Ordering::SeqCst)
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    async fn revenue_worker(self) {
        loop {
            if self.revenue_queue.again.swap(false, Ordering::SeqCst) {
                if let Err(e) = self.convert_contributions().await {
                    tracing::warn!(error = %e, retry_in_s = RETRY_AFTER.as_secs(), "converting revenue again failed; the counters stay marked");
                    let again = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(RETRY_AFTER).await;
                        again.revenue_marked();
                    });
                }
                continue;
            }
            self.revenue_queue.running.store(false, Ordering::SeqCst);
            if !self.revenue_queue.again.load(Ordering::SeqCst)
                || self.revenue_queue.running.swap(true, Ordering::SeqCst)
            {
                return;
            }
        }
    }

    /// Recomputes the contribution of every signed contract of every
    /// branch, writes those that differ, and clears the mark it started
    /// from.
    async fn convert_contributions(&self) -> Result<(), ServiceError> {
        let store = self.repo.store();
        loop {
            let Some(token) = store.get(keys::FX_DIRTY)? else {
                return Ok(());
            };
            for branch in self.branch_ids()? {
                let prefix = keys::prefix(keys::IX_DEAL_SIGNED, &[&branch]);
                let mut after: Option<Vec<u8>> = None;
                loop {
                    let page = store.scan(&prefix, after.as_deref(), PER_BATCH)?;
                    let Some((last, _)) = page.last() else { break };
                    after = Some(last.clone());
                    self.convert_some(&page).await?;
                    if page.len() < PER_BATCH {
                        break;
                    }
                }
            }
            let mut batch = Batch::new();
            batch
                .expect(keys::FX_DIRTY.to_vec(), Some(&token))
                .delete(keys::FX_DIRTY.to_vec());
            match self.repo.commit(batch).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Converts the contributions of one page of signing-index entries.
    async fn convert_some(&self, page: &[(Vec<u8>, Vec<u8>)]) -> Result<(), ServiceError> {
        for _ in 0..MAX_RETRIES {
            let mut batch = Batch::new();
            for (k, _) in page {
                let id = k.rsplit(|b| *b == 0).next().unwrap_or_default();
                let id = String::from_utf8_lossy(id).into_owned();
                let Some(deal) = self.repo.read_deal(&id)? else {
                    continue;
                };
                let u = self.revenue_update(&deal.value)?;
                if u.old != u.new {
                    batch.expect(keys::key(keys::DEAL, &[&id]), Some(&deal.raw));
                    stage_revenue(&mut batch, &u);
                }
            }
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map_err(Into::into),
            }
        }
        Err(ServiceError::Contended)
    }
}

/// The first part of a key's rest and what follows its NUL.
fn split_part(rest: &[u8]) -> (&[u8], &[u8]) {
    match rest.iter().position(|b| *b == 0) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[]),
    }
}
