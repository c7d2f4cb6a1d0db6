//! `POST /v1/tokens`: issuing bearer tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller};
use super::AppState;
use crate::domain::token::{IssuedToken, NewToken};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(create_token))
}

/// Issues a token (admin); the secret is shown once and stored as a hash.
#[utoipa::path(post, path = "/v1/tokens", tag = "auth", request_body = NewToken,
    responses((status = 201, body = IssuedToken), (status = "4XX", body = ErrorBody)))]
async fn create_token(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Body(req): Body<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.services.issue_token(&caller, req).await?),
    ))
}
