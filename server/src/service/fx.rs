//! Dated FX rates (admin-managed) and the rate in force on a date.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use serde_json::json;

use super::repo::{decode, encode, Source, Stored};
use super::{events, now, Page, PageRequest, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::currency::is_iso_currency;
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::fx::{FxCorrection, FxRate, FxRateCorrection, NewFxRate};
use crate::domain::money::MAX_AMOUNT;
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
            corrections: Vec::new(),
        };
        let key = keys::key(keys::FX, &[&rate.currency, &rate.date.to_string()]);
        let mut batch = Batch::new();
        batch.expect(key.clone(), None).put(key, encode(&rate));
        events::add(
            &mut batch,
            EventKind::FxRateAdded,
            ResourceRef::fx_rate(&rate.currency, &rate.date.to_string()),
            &caller.user,
            json!({"currency": rate.currency, "date": rate.date, "per_usd": rate.per_usd}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => Err(ServiceError::Duplicate {
                kind: "fx rate",
                id: format!("{} {}", rate.currency, rate.date),
            }),
            other => other.map(|_| rate).map_err(Into::into),
        }
    }

    /// One rate with its corrections.
    pub fn fx_rate(&self, currency: &str, date: NaiveDate) -> Result<FxRate, ServiceError> {
        Ok(self.stored_fx_rate(currency, date)?.1.value)
    }

    /// A rate's key and stored form, or 404.
    fn stored_fx_rate(
        &self,
        currency: &str,
        date: NaiveDate,
    ) -> Result<(Vec<u8>, Stored<FxRate>), ServiceError> {
        let id = date.to_string();
        let key = keys::key(keys::FX, &[currency, &id]);
        let stored = self
            .repo
            .read(&key)?
            .ok_or_else(|| ServiceError::not_found("fx rate", &format!("{currency} {id}")))?;
        Ok((key, stored))
    }

    /// Corrects a recorded rate (admin), keeping what it was, who changed
    /// it and why in its `corrections`. Settlements from then on convert at
    /// the corrected rate; a contract an approved settlement paid at the
    /// old one is trued up by the next settlement.
    pub async fn correct_fx_rate(
        &self,
        caller: &Principal,
        currency: &str,
        date: NaiveDate,
        req: FxRateCorrection,
    ) -> Result<FxRate, ServiceError> {
        caller.require_admin()?;
        let reason = req.reason.trim();
        if reason.is_empty() {
            return Err(ServiceError::invalid(
                "reason",
                "say why the rate is corrected",
            ));
        }
        check_per_usd(req.per_usd)?;
        let id = date.to_string();
        let (key, stored) = self.stored_fx_rate(currency, date)?;
        let mut rate = stored.value.clone();
        let per_usd = req.per_usd.normalize();
        if per_usd == rate.per_usd {
            return Err(ServiceError::invalid(
                "per_usd",
                format!("is already the rate of {currency} from {id}"),
            ));
        }
        let previous = rate.per_usd;
        rate.per_usd = per_usd;
        rate.corrections.push(FxCorrection {
            previous,
            per_usd,
            reason: reason.to_string(),
            by: caller.user.clone(),
            at: now(),
        });
        let mut batch = Batch::new();
        batch
            .expect(key.clone(), Some(&stored.raw))
            .put(key, encode(&rate));
        events::add(
            &mut batch,
            EventKind::FxRateCorrected,
            ResourceRef::fx_rate(currency, &id),
            &caller.user,
            json!({"currency": currency, "date": id, "per_usd": per_usd, "previous": previous,
                   "reason": reason}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => Err(ServiceError::Contended),
            other => other.map(|_| rate).map_err(Into::into),
        }
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

/// A rate is positive and at most 10^12.
fn check_per_usd(per_usd: Decimal) -> Result<(), ServiceError> {
    if per_usd <= Decimal::ZERO || per_usd > MAX_AMOUNT {
        return Err(ServiceError::invalid(
            "per_usd",
            "must be positive and at most 10^12",
        ));
    }
    Ok(())
}
