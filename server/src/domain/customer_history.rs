//! A customer's history: every change of tier and of owner, with its reason
//! and who or which policy version decided it (docs/business-rules.md §1: tiers move, and
//! why is kept; §6: assignment is visible).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What happened to the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CustomerAction {
    /// Its tier changed.
    TierChanged,
    /// The branch's assignment policy gave it an owner.
    Assigned,
    /// Someone changed its owner (`from` and `to` name the owners; a
    /// manager's reassignment carries their written reason).
    OwnerChanged,
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
    /// What caused it (`retier`, `deal signed`, `created`, `patch`).
    pub trigger: String,
    /// Before: the tier (`A`, `B`, `C`) of a tier change, the owner of an
    /// owner change (absent when it had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// After: the tier of a tier change, the owner of an owner change
    /// (absent when unassigned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The owner given (assignments and owner changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Why: the policy's reason (revenue, cumulative share, thresholds; the
    /// load that made a rep the fairest owner), or a manager's written
    /// reason for a reassignment.
    pub reason: Option<String>,
    /// The deciding policy (absent when a person decided).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// SHA-256 of that version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}
