//! Key-customer communication records (docs/business-rules.md §2): who met whom, when,
//! what the customer said, problems found and agreed next steps.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How the contact happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    /// Face-to-face visit.
    Visit,
    /// Phone call.
    Call,
    /// Meeting (e.g. at the office or an event).
    Meeting,
    /// Written message.
    Message,
}

/// A communication record. Never deleted; corrections are new records.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Record {
    /// Server id.
    pub id: String,
    /// The customer contacted.
    pub customer_id: String,
    /// The customer's branch.
    pub branch: String,
    /// When the contact happened.
    #[serde(with = "crate::domain::time::ms")]
    pub at: DateTime<Utc>,
    /// The company's side (a rep or manager).
    pub by: String,
    /// Who was met on the customer's side.
    pub contact: Option<String>,
    /// How.
    pub kind: RecordKind,
    /// What happened.
    pub summary: String,
    /// What the customer said.
    pub feedback: Option<String>,
    /// Problems found.
    pub problems: Option<String>,
    /// Agreed next steps.
    pub next_steps: Option<String>,
    /// Who entered it.
    pub created_by: String,
    /// When it was entered.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// Who corrected it last (earlier versions are kept as revisions).
    #[serde(default)]
    pub edited_by: Option<String>,
    /// When.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub edited_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// Body of `POST /v1/customers/{id}/records`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// When the contact happened; now when absent (for importing history).
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_instant")]
    #[schema(schema_with = crate::domain::schema::opt_instant)]
    pub at: Option<DateTime<Utc>>,
    /// The company's side; the caller when absent.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_user)]
    pub by: Option<String>,
    /// Who was met on the customer's side.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub contact: Option<String>,
    /// How.
    pub kind: RecordKind,
    /// What happened.
    #[schema(schema_with = crate::domain::schema::text)]
    pub summary: String,
    /// What the customer said.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub feedback: Option<String>,
    /// Problems found.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub problems: Option<String>,
    /// Agreed next steps.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub next_steps: Option<String>,
}

/// Body of `PATCH /v1/customers/{id}/records/{record}`: a correction by the
/// author or a manager. Absent fields stay, `null` clears an optional one;
/// when and by whom the contact happened are the record's identity and stay
/// (a contact at another time is a new record). The version replaced is
/// kept as a revision.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordPatch {
    /// Who was met on the customer's side.
    #[serde(default, deserialize_with = "crate::domain::patch::double_option")]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub contact: Option<Option<String>>,
    /// How.
    #[serde(default)]
    pub kind: Option<RecordKind>,
    /// What happened.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_required_text)]
    pub summary: Option<String>,
    /// What the customer said.
    #[serde(default, deserialize_with = "crate::domain::patch::double_option")]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub feedback: Option<Option<String>>,
    /// Problems found.
    #[serde(default, deserialize_with = "crate::domain::patch::double_option")]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub problems: Option<Option<String>>,
    /// Agreed next steps.
    #[serde(default, deserialize_with = "crate::domain::patch::double_option")]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub next_steps: Option<Option<String>>,
}
