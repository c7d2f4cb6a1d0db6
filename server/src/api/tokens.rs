//! `/v1/tokens`: issuing, listing and revoking bearer tokens.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller, Path, Query};
use super::AppState;
use crate::domain::token::{IssuedToken, NewToken, TokenFilter, TokenInfo};
use crate::service::Page;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(get_token, revoke_token))
}

/// Issues a token (admin); the secret is shown once and stored as a hash.
/// With `expires_at` (in the future) it stops working then.
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

/// Lists token holders, never secrets or hashes: an admin every token, a
/// manager their branch's reps' tokens.
#[utoipa::path(get, path = "/v1/tokens", tag = "auth", params(TokenFilter),
    responses((status = 200, body = Page<TokenInfo>), (status = "4XX", body = ErrorBody)))]
async fn list_tokens(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(f): Query<TokenFilter>,
) -> Result<Json<Page<TokenInfo>>, ApiError> {
    Ok(Json(s.services.list_tokens(&caller, &f)?))
}

/// One token holder, never the secret or hash (an admin any token, a
/// branch's manager its branch's tokens).
#[utoipa::path(get, path = "/v1/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "The token's id", min_length = 1)),
    responses((status = 200, body = TokenInfo), (status = "4XX", body = ErrorBody)))]
async fn get_token(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(s.services.token_info(&caller, &id)?))
}

/// Revokes a token at once (admin; a manager their branch's rep tokens):
/// the next request with it is 401. The last active admin token cannot be
/// revoked (409).
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "auth",
    params(("id" = String, Path, description = "The token's id", min_length = 1)),
    responses((status = 200, body = TokenInfo), (status = "4XX", body = ErrorBody)))]
async fn revoke_token(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(s.services.revoke_token(&caller, &id).await?))
}
