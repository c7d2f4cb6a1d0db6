//! Errors of the service layer; the API maps each to a status and code once.

use crate::auth::Denied;
use crate::domain::validate::FieldError;
use crate::policy::live::LivePolicy;
use crate::policy::PolicyError;
use crate::store::StoreError;

/// Why a use case did not happen. Nothing was written in any case.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 401: no or unknown token.
    #[error("{0}")]
    Unauthenticated(String),
    /// 403: outside the caller's role or branch.
    #[error(transparent)]
    Forbidden(#[from] Denied),
    /// 404: no such resource (or not visible).
    #[error("{kind} `{id}` does not exist")]
    NotFound {
        /// The resource kind.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// 409: the id is taken.
    #[error("{kind} `{id}` already exists")]
    Duplicate {
        /// The resource kind.
        kind: &'static str,
        /// The id.
        id: String,
    },
    /// 409: `If-Match` did not match the current version.
    #[error("version conflict: you sent version {expected}, the current version is {actual}")]
    VersionConflict {
        /// What the client sent.
        expected: u64,
        /// What is stored.
        actual: u64,
    },
    /// 409: concurrent writers kept winning; the client may retry.
    #[error("the resource kept changing under this request; retry")]
    Contended,
    /// 409: the resource is not in a state that allows the request (e.g.
    /// approving a settlement that is no longer a draft).
    #[error("{message}")]
    WrongState {
        /// A snake_case code for clients.
        code: &'static str,
        /// A sentence for a human.
        message: String,
    },
    /// 400: a malformed query or header.
    #[error("{0}")]
    BadRequest(String),
    /// 400: a query parameter that parses but is refused (`limit=0`).
    #[error("`{}` {}", .0.field, .0.reason)]
    BadParameter(FieldError),
    /// 422: a field was refused.
    #[error("`{}` {}", .0.field, .0.reason)]
    Invalid(FieldError),
    /// 422: a field names something that does not exist.
    #[error("`{field}` refers to {kind} `{id}`, which does not exist")]
    UnknownReference {
        /// The field.
        field: String,
        /// The kind referred to.
        kind: &'static str,
        /// The id given.
        id: String,
    },
    /// 422: the pipeline does not allow the move.
    #[error("a deal in `{from}` cannot move to `{to}`")]
    InvalidTransition {
        /// Current stage.
        from: String,
        /// Requested stage.
        to: String,
        /// Where it may go.
        allowed: Vec<String>,
    },
    /// 413: an upload is over its size limit.
    #[error("{0}")]
    TooLarge(String),
    /// 422: a policy upload does not compile, fit the interface or pass its tests.
    #[error("the policy is invalid: {0}")]
    PolicyInvalid(crate::policy::PolicyError),
    /// 422: one or more guards vetoed the move (the first one named at the
    /// top, every one in `vetoes`).
    #[error("{}", guard_rejected_message(.vetoes, .policy, *.version, .reason))]
    GuardRejected {
        /// The first vetoing policy.
        policy: String,
        /// Its version.
        version: u64,
        /// Its reason.
        reason: String,
        /// What it says is missing, as sentences.
        missing: Vec<String>,
        /// Every vetoing guard, in order.
        vetoes: Vec<crate::domain::deal::GuardVeto>,
    },
    /// 422: a hook failed (a failing guard fails closed); nothing was written.
    #[error("policy `{policy}` v{version} failed in `{hook}`: {error}")]
    PolicyFailed {
        /// The failing policy.
        policy: String,
        /// Its version.
        version: u64,
        /// The hook.
        hook: String,
        /// What happened.
        error: crate::policy::PolicyError,
    },
    /// 500: the store failed.

    #[error(transparent)]
    Store(#[from] StoreError),
}

/// "policy `a` v1 rejected the move: why", or for several guards each one
/// with its reason.
fn guard_rejected_message(
    vetoes: &[crate::domain::deal::GuardVeto],
    policy: &str,
    version: u64,
    reason: &str,
) -> String {
    if vetoes.len() < 2 {
        return format!("policy `{policy}` v{version} rejected the move: {reason}");
    }
    let each: Vec<String> = vetoes
        .iter()
        .map(|v| format!("`{}` v{}: {}", v.policy, v.version, v.reason))
        .collect();
    format!(
        "{} policies rejected the move: {}",
        vetoes.len(),
        each.join("; ")
    )
}

impl ServiceError {
    /// A 422 for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(FieldError::new(field, reason))
    }

    /// A 404 for `kind` `id`.
    pub fn not_found(kind: &'static str, id: &str) -> Self {
        Self::NotFound {
            kind,
            id: id.to_string(),
        }
    }
}

impl From<FieldError> for ServiceError {
    fn from(e: FieldError) -> Self {
        Self::Invalid(e)
    }
}

/// The error of `hook` of the live policy `p` failing (trap, deadline,
/// a bad answer): 422 `policy_failed`, naming the version.
pub(crate) fn policy_failed(p: &LivePolicy, hook: &str, error: PolicyError) -> ServiceError {
    ServiceError::PolicyFailed {
        policy: p.name.clone(),
        version: p.version,
        hook: hook.into(),
        error,
    }
}
