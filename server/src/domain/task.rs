//! Follow-up tasks (docs/business-rules.md §3, active service), created by after-hooks.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// To do.
    Open,
    /// Done.
    Done,
    /// Dismissed with a note.
    Dismissed,
}

/// A follow-up task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Task {
    /// Server id.
    pub id: String,
    /// Branch.
    pub branch: String,
    /// Customer to follow up.
    pub customer_id: String,
    /// The deal whose transition created it.
    pub deal_id: Option<String>,
    /// What to do.
    pub title: String,
    /// A short kind.
    pub kind: Option<String>,
    /// Who does it.
    pub assignee: String,
    /// When it is due.
    #[serde(with = "crate::domain::time::ms")]
    pub due_at: DateTime<Utc>,
    /// Status.
    pub status: TaskStatus,
    /// Closing note.
    pub note: Option<String>,
    /// The policy that created it (`name@version`).
    pub created_by_policy: Option<String>,
    /// Who completed or dismissed it.
    #[serde(default)]
    pub closed_by: Option<String>,
    /// When.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Created at.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// Body of `POST /v1/tasks/{id}/dismiss` as the document shows it: read
/// as a [`CloseTask`], whose blank note is refused for a dismissal.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DismissTask {
    /// Why the task is dismissed.
    #[schema(schema_with = crate::domain::schema::text)]
    pub note: String,
}

/// Body of `POST /v1/tasks/{id}/complete` and `POST /v1/tasks/{id}/dismiss`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseTask {
    /// What was done, or why it is dismissed (required to dismiss).
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub note: Option<String>,
}
