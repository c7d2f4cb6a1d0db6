//! `/v1/admin/backup`: an online backup of the whole store, and its progress.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller};
use super::AppState;
use crate::service::backup::{BackupReport, BackupRequest, BackupStatus};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(start_backup, backup_status))
}

/// Writes a consistent copy of the whole store into `to` (an absolute path
/// on the server's machine, new or empty) while the server keeps serving
/// reads and writes (admin); answers once the copy and its manifest are on
/// disk. One backup at a time (409 while one runs).
#[utoipa::path(post, path = "/v1/admin/backup", tag = "admin", request_body = BackupRequest,
    responses((status = 201, body = BackupReport), (status = "4XX", body = ErrorBody)))]
async fn start_backup(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Body(req): Body<BackupRequest>,
) -> Result<(StatusCode, Json<BackupReport>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.services.backup(&caller, req).await?),
    ))
}

/// The backup running now, with its progress (admin).
#[utoipa::path(get, path = "/v1/admin/backup", tag = "admin",
    responses((status = 200, body = BackupStatus), (status = "4XX", body = ErrorBody)))]
async fn backup_status(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Result<Json<BackupStatus>, ApiError> {
    Ok(Json(s.services.backup_status(&caller)?))
}
