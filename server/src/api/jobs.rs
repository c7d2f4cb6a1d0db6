//! `/v1/jobs`: long work started with `Prefer: respond-async` (a re-tier,
//! a settlement draft, a simulate), found again with its progress and
//! outcome; and what the routes that start jobs share.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, Path, Query};
use super::AppState;
use crate::domain::job::{Job, JobFilter, JobStarted};
use crate::service::{JobFailure, Page, ServiceError};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs))
        .routes(routes!(get_job))
}

/// The jobs of a branch, oldest first (its managers; admins every branch),
/// each with its progress and, once finished, its result or error.
#[utoipa::path(get, path = "/v1/jobs", tag = "jobs", params(JobFilter),
    responses((status = 200, body = Page<Job>), (status = "4XX", body = ErrorBody)))]
async fn list_jobs(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(f): Query<JobFilter>,
) -> Result<Json<Page<Job>>, ApiError> {
    Ok(Json(s.services.list_jobs(&caller, &f)?))
}

/// One job: `state` (`running`, `succeeded`, `failed`, or `interrupted`
/// when the server stopped while it ran), `kind`, `done` of `total`,
/// `started_at`, `by`, and once finished `result` (what the synchronous
/// route answers) or `error` (its error body's object, with `status`).
#[utoipa::path(get, path = "/v1/jobs/{id}", tag = "jobs",
    params(("id" = String, Path, description = "The job's id", min_length = 1)),
    responses((status = 200, body = Job), (status = "4XX", body = ErrorBody)))]
async fn get_job(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(s.services.job(&caller, &id)?))
}

/// `202 Accepted` with the job and its `Location`.
pub(super) fn accepted(job: Job) -> Response {
    let location = HeaderValue::from_str(&format!("/v1/jobs/{}", job.id)).ok();
    let mut res = (StatusCode::ACCEPTED, Json(JobStarted { job })).into_response();
    if let Some(l) = location {
        res.headers_mut().insert(LOCATION, l);
    }
    res
}

/// A job's outcome: the synchronous route's body, or its error as the API
/// shows it.
pub(super) fn outcome<T: Serialize>(
    r: Result<T, ServiceError>,
) -> Result<serde_json::Value, JobFailure> {
    match r {
        Ok(v) => serde_json::to_value(v).map_err(|e| failure(ApiError::internal(&e))),
        Err(e) => Err(failure(ApiError::from(e))),
    }
}

fn failure(e: ApiError) -> JobFailure {
    let mut error = json!({"code": e.code, "message": e.message});
    if let Some(d) = e.details {
        error["details"] = d;
    }
    JobFailure {
        status: e.status.as_u16(),
        error,
    }
}
