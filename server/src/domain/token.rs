//! Roles and bearer-token grants.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a caller may do (see API.md, Auth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, every branch.
    Admin,
    /// Everything inside one branch.
    Manager,
    /// One branch's customers, own deals and own records.
    Rep,
}

/// What a token grants; stored under the token's hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// The branch, for managers and reps.
    pub branch: Option<String>,
    /// Who holds the token (owner and author names refer to it).
    pub user: String,
    /// When the token was issued.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The role to grant.
    pub role: Role,
    /// Required for managers and reps; absent for admins.
    #[serde(default)]
    pub branch: Option<String>,
    /// Who will hold the token.
    #[schema(schema_with = crate::domain::schema::user)]
    pub user: String,
}

/// Response of `POST /v1/tokens`: the secret, shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The bearer token; only its hash is stored.
    pub token: String,
    /// The role granted.
    pub role: Role,
    /// The branch, for managers and reps.
    pub branch: Option<String>,
    /// The holder.
    pub user: String,
}
