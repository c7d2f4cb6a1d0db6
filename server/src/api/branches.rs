//! Branches and their pipelines.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller, IfMatch, Path, Query, RespondAsync, Versioned};
use super::jobs::{accepted, outcome};
use super::AppState;
use crate::domain::branch::{Branch, NewBranch};
use crate::domain::job::{JobKind, JobStarted};
use crate::domain::pipeline::{Pipeline, PipelineDefinition};
use crate::pipeline::PipelineChange;
use crate::service::{Page, PageRequest, RetierReport};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_branch, list_branches))
        .routes(routes!(get_branch))
        .routes(routes!(get_pipeline, put_pipeline))
        .routes(routes!(retier))
}

/// Recomputes the branch's customer tiers now (its manager or an admin);
/// lists every change. With `Prefer: respond-async` (or `?async=true`) it
/// runs as a job: `202 {"job"}` at once, the report in the job's `result`.
#[utoipa::path(post, path = "/v1/branches/{id}/retier", tag = "branches",
    params(("Prefer" = Option<String>, Header, description = "`respond-async`: run as a job")),
    responses((status = 200, body = RetierReport), (status = 202, body = JobStarted, description = "started as a job"),
              (status = "4XX", body = ErrorBody)))]
async fn retier(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    RespondAsync(as_job): RespondAsync,
) -> Result<Response, ApiError> {
    if !as_job {
        return Ok(Json(s.services.retier_branch(&caller, &id).await?).into_response());
    }
    s.services.branch(&caller, &id)?;
    let (services, who, branch) = (s.services.clone(), caller.clone(), id.clone());
    let job =
        s.services
            .start_job(
                &caller,
                JobKind::Retier,
                &id,
                json!({}),
                move |p| async move {
                    outcome(services.retier_branch_with(&who, &branch, Some(&p)).await)
                },
            )
            .await?;
    Ok(accepted(job))
}

/// Creates a branch (admin).
#[utoipa::path(post, path = "/v1/branches", tag = "branches", request_body = NewBranch,
    responses((status = 201, body = Branch), (status = "4XX", body = ErrorBody)))]
async fn create_branch(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Body(req): Body<NewBranch>,
) -> Result<Versioned<Branch>, ApiError> {
    let b = s.services.create_branch(&caller, req).await?;
    Ok(Versioned(StatusCode::CREATED, b.version, b))
}

/// Lists branches: all for admins, one's own otherwise.
#[utoipa::path(get, path = "/v1/branches", tag = "branches", params(PageRequest),
    responses((status = 200, body = Page<Branch>), (status = "4XX", body = ErrorBody)))]
async fn list_branches(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<Branch>>, ApiError> {
    Ok(Json(s.services.list_branches(&caller, &page)?))
}

/// One branch.
#[utoipa::path(get, path = "/v1/branches/{id}", tag = "branches",
    responses((status = 200, body = Branch), (status = "4XX", body = ErrorBody)))]
async fn get_branch(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Versioned<Branch>, ApiError> {
    let b = s.services.branch(&caller, &id)?;
    Ok(Versioned(StatusCode::OK, b.version, b))
}

/// The branch's stages and allowed moves (the default until it sets its own).
#[utoipa::path(get, path = "/v1/branches/{id}/pipeline", tag = "branches",
    responses((status = 200, body = Pipeline), (status = "4XX", body = ErrorBody)))]
async fn get_pipeline(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Versioned<Pipeline>, ApiError> {
    let p = s.services.pipeline(&caller, &id)?;
    Ok(Versioned(StatusCode::OK, p.version, p))
}

/// Replaces the branch's pipeline (admin, or the branch's manager). Deals in
/// stages that disappear keep them and are reported under `orphaned`.
#[utoipa::path(put, path = "/v1/branches/{id}/pipeline", tag = "branches", request_body = PipelineDefinition,
    responses((status = 200, body = PipelineChange), (status = "4XX", body = ErrorBody)))]
async fn put_pipeline(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    Body(def): Body<PipelineDefinition>,
) -> Result<Versioned<PipelineChange>, ApiError> {
    let c = s.services.set_pipeline(&caller, &id, def, if_match).await?;
    Ok(Versioned(StatusCode::OK, c.pipeline.version, c))
}
