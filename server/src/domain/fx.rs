//! Dated FX rates: 1 USD = `per_usd` units of a currency from `date` on. A
//! mistyped rate is corrected, never overwritten silently: each correction
//! is a new version with who, when and why, and every version is kept.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn first_version() -> u64 {
    1
}

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
    /// When this version was recorded.
    #[serde(with = "crate::domain::time::ms")]
    pub recorded_at: DateTime<Utc>,
    /// 1 as first recorded; each correction adds one (send it as `If-Match`).
    #[serde(default = "first_version")]
    pub version: u64,
    /// Who recorded this version (absent on rates recorded before versions
    /// were kept).
    #[serde(default)]
    pub recorded_by: Option<String>,
    /// Why this version corrects the one before (absent on the first).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Body of `POST /v1/fx-rates`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFxRate {
    /// ISO 4217 code.
    #[schema(schema_with = crate::domain::schema::fx_currency)]
    pub currency: String,
    /// First day the rate applies (`YYYY-MM-DD`).
    #[serde(deserialize_with = "crate::domain::time::de_day")]
    #[schema(schema_with = crate::domain::schema::day)]
    pub date: NaiveDate,
    /// Units of `currency` per 1 USD (string or number).
    #[serde(deserialize_with = "crate::domain::money::de_decimal")]
    #[schema(schema_with = crate::domain::schema::per_usd)]
    pub per_usd: Decimal,
}

/// Body of `PUT /v1/fx-rates/{currency}/{date}`: corrects a rate.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FxCorrection {
    /// The right units of the currency per 1 USD (string or number).
    #[serde(deserialize_with = "crate::domain::money::de_decimal")]
    #[schema(schema_with = crate::domain::schema::per_usd)]
    pub per_usd: Decimal,
    /// Why the rate is corrected (kept with the new version).
    #[schema(schema_with = crate::domain::schema::text)]
    pub reason: String,
}

/// The rate a settlement line was computed with: which version of which
/// dated rate, so a line approved before a correction still says what it
/// used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FxUsed {
    /// ISO 4217 code.
    pub currency: String,
    /// The rate's date (the latest on or before the subject's day).
    pub date: NaiveDate,
    /// Units of `currency` per 1 USD.
    #[schema(value_type = String)]
    pub per_usd: Decimal,
    /// The rate's version.
    pub version: u64,
}
