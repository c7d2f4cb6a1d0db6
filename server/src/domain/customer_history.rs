//! A customer's history: every change of tier, with its reason and the
//! policy version that decided it (DOMAIN.md §1: tiers move, and why is kept).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::customer::Tier;

/// What happened to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerAction {
    /// Its tier changed.
    TierChanged,
    /// The branch's assignment policy gave it an owner.
    Assigned,
}

/// One entry of a customer's history; `seq` is the customer version it
/// produced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomerEvent {
    /// The customer version this entry produced.
    pub seq: u64,
    /// What happened.
    pub action: CustomerAction,
    /// When.
    #[serde(with = "crate::domain::time::ms")]
    pub at: DateTime<Utc>,
    /// Who asked (a user, or `system` for a re-tier after a signing).
    pub by: String,
    /// What caused it (`retier`, `deal signed`, `created`).
    pub trigger: String,
    /// Tier before (tier changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Tier>,
    /// Tier after (tier changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Tier>,
    /// The owner given (assignments).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The policy's reason (revenue, cumulative share, thresholds; the
    /// load that made a rep the fairest owner).
    pub reason: Option<String>,
    /// The deciding policy.
    pub policy: String,
    /// Its version.
    pub version: u64,
    /// SHA-256 of that version.
    pub sha256: String,
}
