//! Policies: upload versions, list them, activate or roll back, and see
//! which versions decide each hook for a branch.

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller, OptionalBody, Path, Query};
use super::AppState;
use crate::service::{
    ActivateRequest, DeactivateRequest, EffectiveHook, NewPolicy, Page, PageRequest, Policy,
    PolicyVersion, PolicyVersionDetail, UploadedPolicy,
};

/// Largest policy upload body: a 1 MiB module in base64 plus the envelope.
const MAX_UPLOAD_BODY: usize = 1_500_000;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(upload_policy, list_policies))
        .routes(routes!(get_policy))
        .routes(routes!(list_versions))
        .routes(routes!(get_version))
        .routes(routes!(activate))
        .routes(routes!(deactivate))
        .routes(routes!(effective))
        .layer(DefaultBodyLimit::max(MAX_UPLOAD_BODY))
}

/// Uploads a new version (compiled, hooks checked, example tests run);
/// nothing is activated. Identical content returns the existing version.
/// With `"dry_run": true` the same checks run and nothing is stored.
/// A `policy_invalid` refusal carries `details.line` and `details.column`
/// when the compiler or the failing example test (`details.test`) knows
/// where in the script it is.
#[utoipa::path(post, path = "/v1/policies", tag = "policies", request_body = NewPolicy,
    responses((status = 201, body = UploadedPolicy), (status = 200, body = UploadedPolicy, description = "identical content already stored, or a dry run"),
              (status = 422, body = ErrorBody, description = "policy_invalid: does not compile, fit the interface or pass its tests"),
              (status = "4XX", body = ErrorBody)))]
async fn upload_policy(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Body(req): Body<NewPolicy>,
) -> Result<Response, ApiError> {
    let up = s.services.upload_policy(&caller, req).await?;
    let status = if up.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(up)).into_response())
}

/// Policies visible to the caller.
#[utoipa::path(get, path = "/v1/policies", tag = "policies", params(PageRequest),
    responses((status = 200, body = Page<Policy>), (status = "4XX", body = ErrorBody)))]
async fn list_policies(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<Policy>>, ApiError> {
    Ok(Json(s.services.list_policies(&caller, &page)?))
}

/// One policy with its activation history.
#[utoipa::path(get, path = "/v1/policies/{name}", tag = "policies",
    responses((status = 200, body = Policy), (status = "4XX", body = ErrorBody)))]
async fn get_policy(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(s.services.policy(&caller, &name)?))
}

/// A policy's versions, oldest first.
#[utoipa::path(get, path = "/v1/policies/{name}/versions", tag = "policies", params(PageRequest),
    responses((status = 200, body = Page<PolicyVersion>), (status = "4XX", body = ErrorBody)))]
async fn list_versions(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<PolicyVersion>>, ApiError> {
    Ok(Json(s.services.policy_versions(&caller, &name, &page)?))
}

/// One version with its content: the rhai script as uploaded (`source`;
/// absent for WebAssembly), for reading it and comparing versions.
#[utoipa::path(get, path = "/v1/policies/{name}/versions/{version}", tag = "policies",
    responses((status = 200, body = PolicyVersionDetail), (status = "4XX", body = ErrorBody)))]
async fn get_version(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, u64)>,
) -> Result<Json<PolicyVersionDetail>, ApiError> {
    Ok(Json(s.services.policy_version(&caller, &name, version)?))
}

/// Makes a version live at once, atomically (activating an older version is
/// a rollback). The body is optional: `{"effective_from": "YYYY-MM-DD"}`.
#[utoipa::path(post, path = "/v1/policies/{name}/versions/{version}/activate", tag = "policies",
    request_body(content = Option<ActivateRequest>),
    responses((status = 200, body = Policy), (status = "4XX", body = ErrorBody)))]
async fn activate(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, u64)>,
    OptionalBody(req): OptionalBody<ActivateRequest>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(
        s.services
            .activate_policy(&caller, &name, version, req)
            .await?,
    ))
}

/// Takes a policy out of the live set. The body is optional:
/// `{"effective_from": "YYYY-MM-DD"}` keeps a bonus rule in force for
/// subjects before that date (without it, the rule stops applying to every
/// day, and the next settlement reverses what it paid).
#[utoipa::path(post, path = "/v1/policies/{name}/deactivate", tag = "policies",
    request_body(content = Option<DeactivateRequest>),
    responses((status = 200, body = Policy), (status = "4XX", body = ErrorBody)))]
async fn deactivate(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(name): Path<String>,
    OptionalBody(req): OptionalBody<DeactivateRequest>,
) -> Result<Json<Policy>, ApiError> {
    Ok(Json(
        s.services.deactivate_policy(&caller, &name, req).await?,
    ))
}

/// For each hook, which policy versions decide for the branch, and whether
/// they are the branch's own (`overridden`) or global (`inherited`).
#[utoipa::path(get, path = "/v1/branches/{id}/policies", tag = "policies",
    responses((status = 200, body = Vec<EffectiveHook>), (status = "4XX", body = ErrorBody)))]
async fn effective(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<EffectiveHook>>, ApiError> {
    Ok(Json(s.services.effective_policies(&caller, &id)?))
}
