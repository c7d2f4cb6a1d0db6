//! A deal's history: every creation, change and transition, with who and when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What happened to the deal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HistoryAction {
    /// The deal was opened.
    Created,
    /// Fields changed.
    Updated,
    /// The stage moved.
    Transition,
    /// A signed contract was cancelled.
    Cancelled,
    /// The deal's owner changed (`from` and `to` name the owners).
    OwnerChanged,
    /// A guard refused a move (or failed, which refuses it): the deal and
    /// its version did not change; `seq` is the version that was refused.
    Veto,
}

/// One entry of a deal's history; `seq` equals the deal version it produced
/// (for a `veto`, the version whose move was refused: a veto changes nothing).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// The deal version this entry produced.
    pub seq: u64,
    /// What happened.
    pub action: HistoryAction,
    /// Business time of the fact (the transition's `at`).
    #[serde(with = "crate::domain::time::ms")]
    pub at: DateTime<Utc>,
    /// When the server recorded it.
    #[serde(with = "crate::domain::time::ms")]
    pub recorded_at: DateTime<Utc>,
    /// Who did it.
    pub by: String,
    /// Stage before a transition (or a vetoed move); owner before an owner change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Stage after a transition (the refused target of a veto); owner after an owner change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// The caller's note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// An admin's written reason for forcing a vetoed move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub override_reason: Option<String>,
    /// The written reason for a change that needs one (an owner change by a
    /// manager).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Every policy decision taken for this entry (guards and after-hooks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<Decision>,
    /// Changed fields: `{"field": {"from": …, "to": …}}`.

    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub changes: Option<serde_json::Value>,
}

impl HistoryEntry {
    /// An entry with only what every entry has; the rest is filled in with
    /// struct update syntax.
    pub fn new(
        seq: u64,
        action: HistoryAction,
        at: DateTime<Utc>,
        recorded_at: DateTime<Utc>,
        by: &str,
    ) -> Self {
        Self {
            seq,
            action,
            at,
            recorded_at,
            by: by.to_string(),
            from: None,
            to: None,
            note: None,
            override_reason: None,
            reason: None,
            decisions: Vec::new(),
            changes: None,
        }
    }
}

/// One hook decision, with the policy version that made it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Decision {
    /// The hook (`guard`, `after`).
    pub hook: String,
    /// Policy name.
    pub policy: String,
    /// Policy version.
    pub version: u64,
    /// SHA-256 of that version.
    pub sha256: String,
    /// For guards: whether it allowed the move.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow: Option<bool>,
    /// For rejections: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For rejections: what is missing, as sentences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// For after-hooks: what it did (tasks created, attributes set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// True when an admin forced the move past this rejection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overridden: bool,
}
