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
    pub recorded_at: DateTime<Utc>,
    /// Every correction of `per_usd`, oldest first (its history).
    #[serde(default)]
    pub corrections: Vec<FxCorrection>,
}

/// One correction of a rate: what it was, what it became, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FxCorrection {
    /// The rate before.
    #[schema(value_type = String)]
    pub previous: Decimal,
    /// The rate after.
    #[schema(value_type = String)]
    pub per_usd: Decimal,
    /// Why it was corrected.
    pub reason: String,
    /// Who corrected it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Body of `PUT /v1/fx-rates/{currency}/{date}`: a correction.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FxRateCorrection {
    /// The right rate: units of the currency per 1 USD (string or number).
    #[serde(deserialize_with = "crate::domain::money::de_decimal")]
    #[schema(value_type = String)]
    pub per_usd: Decimal,
    /// Why (kept in the rate's history).
    pub reason: String,
}

/// Body of `POST /v1/fx-rates`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFxRate {
    /// ISO 4217 code.
    pub currency: String,
    /// First day the rate applies (`YYYY-MM-DD`).
    pub date: NaiveDate,
    /// Units of `currency` per 1 USD (string or number).
    #[serde(deserialize_with = "crate::domain::money::de_decimal")]
    #[schema(value_type = String)]
    pub per_usd: Decimal,
}
