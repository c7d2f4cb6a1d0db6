//! The one HTTP error shape, `{"error":{"code","message","details"}}`, and
//! the single mapping from each layer's errors to a status and code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::service::ServiceError;
use crate::store::StoreError;

/// An error as the client sees it.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: &'static str,
    /// A sentence for a human.
    pub message: String,
    /// Structured details, when useful.
    pub details: Option<Value>,
}

/// The error body (for the OpenAPI document).
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorObject,
}

/// The error object.
#[derive(Serialize, ToSchema)]
pub struct ErrorObject {
    /// Stable snake_case code.
    pub code: String,
    /// A sentence for a human.
    pub message: String,
    /// Structured details, when useful.
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: None,
        }
    }

    /// Adds details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// 400 for a malformed request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 for an unknown route.
    pub fn no_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such route")
    }

    /// 405 for a known route with another method.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not accept that method",
        )
    }

    /// 500 without internals; the cause is logged.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed; the request was not applied",
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        use ServiceError as E;
        let message = e.to_string();
        match e {
            E::Unauthenticated(_) => Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message),
            E::Forbidden(_) => Self::new(StatusCode::FORBIDDEN, "forbidden", message),
            E::NotFound { kind, id } => Self::new(StatusCode::NOT_FOUND, "not_found", message)
                .with_details(json!({"kind": kind, "id": id})),
            E::Duplicate { kind, id } => Self::new(StatusCode::CONFLICT, "duplicate", message)
                .with_details(json!({"kind": kind, "id": id})),
            E::VersionConflict { expected, actual } => {
                Self::new(StatusCode::CONFLICT, "version_conflict", message)
                    .with_details(json!({"expected": expected, "current": actual}))
            }
            E::Contended => Self::new(StatusCode::CONFLICT, "version_conflict", message),
            E::WrongState { code, .. } => Self::new(StatusCode::CONFLICT, code, message),
            E::BadRequest(_) => Self::bad_request("bad_request", message),
            E::BadParameter(f) => Self::bad_request("bad_request", message)
                .with_details(json!({"field": f.field, "reason": f.reason})),
            E::Invalid(f) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
            .with_details(json!({"field": f.field, "reason": f.reason})),
            E::UnknownReference { field, kind, id } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown_reference",
                message,
            )
            .with_details(json!({"field": field, "kind": kind, "id": id})),
            E::InvalidTransition { from, to, allowed } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_transition",
                format!(
                    "{message}; allowed: {}",
                    if allowed.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.join(", ")
                    }
                ),
            )
            .with_details(json!({"field": "to", "from": from, "to": to, "allowed": allowed})),
            E::TooLarge(_) => Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message),
            E::PolicyInvalid(p) => {
                use crate::policy::PolicyError as P;
                let mut d = json!({"error": p.to_string()});
                // Where the compiler or the failing example test points, so
                // an editor can show the message at its line.
                match &p {
                    P::Compile { line, column, .. } => {
                        d["line"] = json!(line);
                        d["column"] = json!(column);
                    }
                    P::TestFailed(f) => {
                        d["test"] = json!(f.name);
                        d["line"] = json!(f.line);
                        d["column"] = json!(f.column);
                    }
                    _ => {}
                }
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, "policy_invalid", message).with_details(d)
            }
            E::GuardRejected {
                policy,
                version,
                reason,
                missing,
                vetoes,
            } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "guard_rejected", message).with_details(
                json!({"policy": policy, "version": version, "reason": reason, "missing": missing,
                       "vetoes": vetoes}),
            ),
            E::PolicyFailed {
                policy,
                version,
                hook,
                error,
            } => Self::new(StatusCode::UNPROCESSABLE_ENTITY, "policy_failed", message).with_details(
                json!({"policy": policy, "version": version, "hook": hook, "error": error.to_string()}),
            ),
            E::Store(StoreError::Conflict { .. }) => Self::new(
                StatusCode::CONFLICT,
                "version_conflict",
                "a concurrent write won; retry",
            ),
            E::Store(s) => Self::internal(&s),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": {"code": self.code, "message": self.message}});
        if let Some(d) = self.details {
            body["error"]["details"] = d;
        }
        (self.status, axum::Json(body)).into_response()
    }
}
