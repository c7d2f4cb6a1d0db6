//! Dated FX rates: 1 USD = `per_usd` units of a currency from `date` on.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A rate in force from its date until the next rate of the same currency.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FxRate {
    /// ISO 4217 code.
    pub currency: String,
    /// First day the rate applies.
    pub date: NaiveDate,
    /// Units of `currency` per 1 USD, as a decimal string.
    #[schema(value_type = String)]
    pub per_usd: Decimal,
    /// When it was recorded.
    #[serde(with = "crate::domain::time::ms")]
    pub recorded_at: DateTime<Utc>,
}

/// Body of `POST /v1/fx-rates`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFxRate {
    /// ISO 4217 code.
    pub currency: String,
    /// First day the rate applies (`YYYY-MM-DD`).
    #[serde(deserialize_with = "crate::domain::time::de_day")]
    pub date: NaiveDate,
    /// Units of `currency` per 1 USD (string or number).
    #[serde(deserialize_with = "crate::domain::money::de_decimal")]
    #[schema(value_type = String)]
    pub per_usd: Decimal,
}
