//! Roles, bearer-token grants and what the token routes take and show.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// What a caller may do (see docs/http-reference.md, Conventions).
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
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    /// The token's stable, non-secret id. Empty only in grants stored by
    /// servers before ids, until the store upgrade gives them one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    /// The role.
    pub role: Role,
    /// The branch, for managers and reps.
    pub branch: Option<String>,
    /// Who holds the token (owner and author names refer to it).
    pub user: String,
    /// When the token was issued.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// When the token stops working, if ever.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::domain::time::ms_opt"
    )]
    pub expires_at: Option<DateTime<Utc>>,
    /// Set once the token is revoked; it never works again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked: Option<Revocation>,
}

/// Who revoked a token, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// When.
    #[serde(with = "crate::domain::time::ms")]
    pub at: DateTime<Utc>,
    /// The user who revoked it (`DEALFLOW_ADMIN_TOKEN` when a new admin
    /// token given at start replaced it).
    pub by: String,
}

/// Whether a token works now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// It authenticates.
    Active,
    /// Its `expires_at` has passed.
    Expired,
    /// It was revoked.
    Revoked,
}

impl Grant {
    /// The token's status at `now` (revocation wins over expiry).
    pub fn status(&self, now: DateTime<Utc>) -> TokenStatus {
        match (&self.revoked, self.expires_at) {
            (Some(_), _) => TokenStatus::Revoked,
            (None, Some(exp)) if exp <= now => TokenStatus::Expired,
            (None, _) => TokenStatus::Active,
        }
    }
}

/// Body of `POST /v1/tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// The role to grant.
    pub role: Role,
    /// Required for managers and reps; absent for admins.
    #[serde(default)]
    #[schema(min_length = 1)]
    pub branch: Option<String>,
    /// Who will hold the token.
    #[schema(schema_with = crate::domain::schema::user)]
    pub user: String,
    /// When the token stops working (an RFC 3339 time or a day, in the
    /// future); never when absent.
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_instant")]
    #[schema(schema_with = crate::domain::schema::opt_instant)]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Response of `POST /v1/tokens`: the secret, shown once.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedToken {
    /// The token's id: lists show it, `DELETE /v1/tokens/{id}` revokes it.
    pub id: String,
    /// The bearer token; only its hash is stored.
    pub token: String,
    /// The role granted.
    pub role: Role,
    /// The branch, for managers and reps.
    pub branch: Option<String>,
    /// The holder.
    pub user: String,
    /// When it was issued.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    #[serde(with = "crate::domain::time::ms_opt")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A token as lists show it: who holds it and whether it works, never its
/// secret or hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TokenInfo {
    /// The token's id.
    pub id: String,
    /// The role.
    pub role: Role,
    /// The branch, for managers and reps.
    pub branch: Option<String>,
    /// The holder.
    pub user: String,
    /// When it was issued.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// When it stops working, if ever.
    #[serde(with = "crate::domain::time::ms_opt")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When it last authenticated a request, if ever (kept in memory and
    /// stored at most once a minute per token).
    #[serde(with = "crate::domain::time::ms_opt")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Whether it works now.
    pub status: TokenStatus,
    /// When it was revoked.
    #[serde(with = "crate::domain::time::ms_opt")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Who revoked it.
    pub revoked_by: Option<String>,
}

impl TokenInfo {
    /// What lists show of `grant` at `now`.
    pub fn of(grant: &Grant, last_used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Self {
        Self {
            id: grant.id.clone(),
            role: grant.role,
            branch: grant.branch.clone(),
            user: grant.user.clone(),
            created_at: grant.created_at,
            expires_at: grant.expires_at,
            last_used_at,
            status: grant.status(now),
            revoked_at: grant.revoked.as_ref().map(|r| r.at),
            revoked_by: grant.revoked.as_ref().map(|r| r.by.clone()),
        }
    }
}

/// Query of `GET /v1/tokens`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TokenFilter {
    /// Only this branch's tokens (a manager: always their own branch).
    pub branch: Option<String>,
    /// Only this holder's tokens.
    pub user: Option<String>,
    /// Only tokens in this status.
    #[param(inline)]
    pub status: Option<TokenStatus>,
    /// Page size, 1 to 500 (default 50).
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}
