//! Browser sessions: opened with a bearer token once, then carried by an
//! `HttpOnly` cookie; what is stored of one and what the session routes
//! take and show.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::token::Role;

/// A session as stored, under the SHA-256 of its id (the cookie's value),
/// so a copy of the store opens no session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSession {
    /// The hash of the token it was opened with: every request re-checks
    /// that token, so revoking or expiring it ends the session.
    pub token_hash: String,
    /// That token's id (sessions are indexed by it).
    pub token_id: String,
    /// The CSRF token cookie-authenticated writes must send back.
    pub csrf: String,
    /// When it was opened.
    pub created_at: DateTime<Utc>,
    /// When it ends whatever happens (the absolute lifetime).
    pub expires_at: DateTime<Utc>,
}

/// Body of `POST /v1/sessions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    /// A bearer token (any role); it is checked, never stored in the
    /// browser, and the session lasts no longer than it does.
    #[schema(min_length = 1)]
    pub token: String,
}

/// The signed-in caller and the session's bounds.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Who is signed in.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// Their branch (managers and reps).
    pub branch: Option<String>,
    /// Send it as `X-CSRF-Token` with every POST, PUT, PATCH and DELETE
    /// made with the session cookie.
    pub csrf_token: String,
    /// When the session was opened.
    pub created_at: DateTime<Utc>,
    /// When it ends at the latest.
    pub expires_at: DateTime<Utc>,
    /// When it ends if it is not used before (each use moves this on).
    pub idle_expires_at: DateTime<Utc>,
}
