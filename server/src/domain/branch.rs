//! Branch offices: the unit of scoping, with their own time zone.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A branch office.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Branch {
    /// Admin-chosen id, `[a-z0-9-]{1,40}`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// IANA time zone of the branch's business calendar.
    pub timezone: String,
    /// When the branch was created.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// Body of `POST /v1/branches`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBranch {
    /// Admin-chosen id, `[a-z0-9-]{1,40}`.
    #[schema(schema_with = crate::domain::schema::slug)]
    pub id: String,
    /// Display name.
    #[schema(schema_with = crate::domain::schema::name)]
    pub name: String,
    /// IANA time zone name; `UTC` when absent.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::timezone)]
    pub timezone: Option<String>,
}
