//! Background jobs: long work (a re-tier, a settlement draft, a simulate)
//! started with `Prefer: respond-async`, which runs on whether or not the
//! client stays, and can be found again with its progress and outcome.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// What a job does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// `POST /v1/branches/{id}/retier`.
    Retier,
    /// `POST /v1/settlements`.
    Settlement,
    /// `POST /v1/policies/{name}/versions/{version}/simulate`.
    Simulate,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Running now.
    Running,
    /// Finished; `result` holds what the synchronous route would answer.
    Succeeded,
    /// Finished with an error; `error` holds the API error body's object.
    Failed,
    /// The server stopped while it ran; start it again.
    Interrupted,
}

/// A job, as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Job {
    /// Server id.
    pub id: String,
    /// What it does.
    pub kind: JobKind,
    /// The branch it works on.
    pub branch: String,
    /// Where it stands.
    pub state: JobState,
    /// Who started it.
    pub by: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: Option<DateTime<Utc>>,
    /// Units of work done (a unit is a step of the job's own kind: a batch
    /// of customers, a day of contracts, a chunk of subjects).
    pub done: u64,
    /// Units of work known so far (it may grow while the job runs).
    pub total: u64,
    /// The request it was started with.
    #[schema(value_type = Object)]
    pub request: Value,
    /// When it succeeded: what the synchronous route answers.
    #[schema(value_type = Option<Object>)]
    pub result: Option<Value>,
    /// When it failed: `{"code", "message", "details"}` as the synchronous
    /// route's error body holds them, with its `status`.
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// `202` answer of a route started with `Prefer: respond-async`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobStarted {
    /// The job (follow it at `GET /v1/jobs/{id}` or by its `job_progress`
    /// events).
    pub job: Job,
}

/// Query of `GET /v1/jobs`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct JobFilter {
    /// The branch (managers: their own; admins: every branch when absent).
    pub branch: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}
