//! Dated FX rates (admin-managed), their corrections and the rate in force
//! on a date. A correction writes a new version beside the kept ones, so a
//! settlement approved before it still names the version it used, and the
//! next draft uses the corrected one.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use serde_json::json;

use super::repo::{decode, encode, Source};
use super::revenue_counts::stage_revenue_mark;
use super::{check_version, events, now, Page, PageRequest, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::currency::is_iso_currency;
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::fx::{FxCorrection, FxRate, NewFxRate};
use crate::domain::money::MAX_AMOUNT;
use crate::domain::validate;
use crate::store::{keys, Batch, StoreError};

impl Services {
    /// Records a rate (admin). One rate per currency and date.
    pub async fn create_fx_rate(
        &self,
        caller: &Principal,
        req: NewFxRate,
    ) -> Result<FxRate, ServiceError> {
        caller.require_admin()?;
        if !is_iso_currency(&req.currency) {
            return Err(ServiceError::invalid(
                "currency",
                format!("`{}` is not an ISO 4217 code", req.currency),
            ));
        }
        if req.currency == "USD" {
            return Err(ServiceError::invalid(
                "currency",
                "USD is the base: 1 USD = 1 USD",
            ));
        }
        check_per_usd(req.per_usd)?;
        let rate = FxRate {
            currency: req.currency,
            date: req.date,
            per_usd: req.per_usd.normalize(),
            recorded_at: now(),
            version: 1,
            recorded_by: Some(caller.user.clone()),
            reason: None,
        };
        let key = keys::key(keys::FX, &[&rate.currency, &rate.date.to_string()]);
        let mut batch = Batch::new();
        batch
            .expect(key.clone(), None)
            .put(key, encode(&rate))
            .put(history_key(&rate), encode(&rate));
        events::add(
            &mut batch,
            EventKind::FxRateAdded,
            ResourceRef::fx_rate(&rate.currency, &rate.date.to_string()),
            &caller.user,
            json!({"currency": rate.currency, "date": rate.date, "per_usd": rate.per_usd}),
        );
        // Contracts signed that day may convert now: the revenue counters
        // are recounted in the background (served straightforwardly meanwhile).
        stage_revenue_mark(&mut batch, &format!("fx {} {}", rate.currency, rate.date));
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => Err(ServiceError::Duplicate {
                kind: "fx rate",
                id: format!("{} {}", rate.currency, rate.date),
            }),
            Err(e) => Err(e.into()),
            Ok(()) => {
                self.revenue_marked();
                Ok(rate)
            }
        }
    }

    /// Corrects a mistyped rate (admin) with a reason: a new version, the
    /// earlier ones kept. `If-Match` guards against a concurrent correction.
    pub async fn correct_fx_rate(
        &self,
        caller: &Principal,
        currency: &str,
        date: NaiveDate,
        req: FxCorrection,
        if_match: Option<u64>,
    ) -> Result<FxRate, ServiceError> {
        caller.require_admin()?;
        check_per_usd(req.per_usd)?;
        let reason = validate::text("reason", &req.reason, validate::MAX_TEXT)?;
        let key = rate_key(currency, date);
        let old = self
            .repo
            .read::<FxRate>(&key)?
            .ok_or_else(|| ServiceError::not_found("fx rate", &format!("{currency} {date}")))?;
        check_version(if_match, old.value.version)?;
        let per_usd = req.per_usd.normalize();
        if per_usd == old.value.per_usd {
            return Err(ServiceError::WrongState {
                code: "unchanged",
                message: format!("the rate is already {per_usd}: there is nothing to correct"),
            });
        }
        let rate = FxRate {
            per_usd,
            recorded_at: now(),
            version: old.value.version + 1,
            recorded_by: Some(caller.user.clone()),
            reason: Some(reason),
            ..old.value.clone()
        };
        let mut batch = Batch::new();
        // A rate recorded before versions were kept gets its first version
        // into the history now, beside the correction.
        batch
            .expect(key.clone(), Some(&old.raw))
            .put(key, encode(&rate))
            .put(history_key(&old.value), encode(&old.value))
            .put(history_key(&rate), encode(&rate));
        events::add(
            &mut batch,
            EventKind::FxRateCorrected,
            ResourceRef::fx_rate(&rate.currency, &rate.date.to_string()),
            &caller.user,
            json!({"currency": rate.currency, "date": rate.date, "version": rate.version,
                   "per_usd": rate.per_usd, "was": old.value.per_usd, "reason": rate.reason}),
        );
        stage_revenue_mark(
            &mut batch,
            &format!("fx {} {} v{}", rate.currency, rate.date, rate.version),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
            other => other?,
        }
        self.revenue_marked();
        Ok(rate)
    }

    /// One rate, as it stands (its latest version).
    pub fn fx_rate(&self, currency: &str, date: NaiveDate) -> Result<FxRate, ServiceError> {
        Ok(self
            .repo
            .read::<FxRate>(&rate_key(currency, date))?
            .ok_or_else(|| ServiceError::not_found("fx rate", &format!("{currency} {date}")))?
            .value)
    }

    /// Every version of a rate, oldest first.
    pub fn fx_rate_history(
        &self,
        currency: &str,
        date: NaiveDate,
        page: &PageRequest,
    ) -> Result<Page<FxRate>, ServiceError> {
        let current = self.fx_rate(currency, date)?;
        let prefix = keys::prefix(keys::FX_HISTORY, &[currency, &date.to_string()]);
        let listed = self
            .repo
            .list(Source::Primary(prefix), page, |_: &FxRate| true)?;
        if listed.items.is_empty() && page.after()?.is_none() {
            // Recorded before versions were kept, and never corrected.
            return Ok(Page {
                items: vec![current],
                next_cursor: None,
            });
        }
        Ok(listed)
    }

    /// Lists rates, optionally of one currency, by currency then date.
    pub fn list_fx_rates(
        &self,
        currency: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<FxRate>, ServiceError> {
        let prefix = match currency {
            Some(c) => keys::prefix(keys::FX, &[c]),
            None => keys::prefix(keys::FX, &[]),
        };
        self.repo
            .list(Source::Primary(prefix), page, |_: &FxRate| true)
    }

    /// Units of `currency` per USD in force on `date` (the latest rate dated
    /// on or before it); 1 for USD; `None` when no rate is in force yet.
    pub fn per_usd_on(
        &self,
        currency: &str,
        date: NaiveDate,
    ) -> Result<Option<Decimal>, ServiceError> {
        if currency == "USD" {
            return Ok(Some(Decimal::ONE));
        }
        let prefix = keys::prefix(keys::FX, &[currency]);
        let day = date.to_string();
        let mut best = None;
        // Rates per currency are few (one per change), so a prefix scan is cheap.
        for (key, value) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            if key[prefix.len()..] > *day.as_bytes() {
                break;
            }
            best = Some(decode::<FxRate>(&key, &value)?.per_usd);
        }
        Ok(best)
    }
}

/// The key of the rate of `currency` dated `date`.
fn rate_key(currency: &str, date: NaiveDate) -> Vec<u8> {
    keys::key(keys::FX, &[currency, &date.to_string()])
}

/// The key of one version of a rate in its history.
fn history_key(rate: &FxRate) -> Vec<u8> {
    keys::key(
        keys::FX_HISTORY,
        &[
            &rate.currency,
            &rate.date.to_string(),
            &format!("{:020}", rate.version),
        ],
    )
}

/// A rate must be positive and within the amounts the API accepts.
fn check_per_usd(per_usd: Decimal) -> Result<(), ServiceError> {
    if per_usd <= Decimal::ZERO || per_usd > MAX_AMOUNT {
        return Err(ServiceError::invalid(
            "per_usd",
            "must be positive and at most 10^12",
        ));
    }
    Ok(())
}
