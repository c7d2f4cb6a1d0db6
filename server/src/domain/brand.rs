//! The brand catalog; a brand is *new* until a contract containing it is
//! signed (and not cancelled).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A brand in the catalog.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Brand {
    /// Admin-chosen id, `[a-z0-9-]{1,40}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// When the company introduced the brand.
    pub introduced_at: NaiveDate,
    /// True while no contract containing the brand is signed (cancelled
    /// ones do not count).
    pub new: bool,
    /// When its first sale was signed.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub first_signed_at: Option<DateTime<Utc>>,
    /// Its first sale: the earliest by signing time (then id) of the signed
    /// contracts containing the brand that are not cancelled, whatever
    /// order they arrived in.
    #[serde(default)]
    pub first_signed_deal: Option<String>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// Body of `POST /v1/brands`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBrand {
    /// Admin-chosen id, `[a-z0-9-]{1,40}`.
    #[schema(schema_with = crate::domain::schema::slug)]
    pub id: String,
    /// Display name.
    #[schema(schema_with = crate::domain::schema::name)]
    pub name: String,
    /// When the company introduced the brand (`YYYY-MM-DD`).
    #[serde(deserialize_with = "crate::domain::time::de_day")]
    #[schema(schema_with = crate::domain::schema::day)]
    pub introduced_at: NaiveDate,
}
