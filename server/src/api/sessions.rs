//! `/v1/sessions`: signing in with a token once (the answer sets an
//! `HttpOnly`, `SameSite=Strict` session cookie), who is signed in, and
//! signing out on the server.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{check_csrf, cookie, Body, SESSION_COOKIE};
use super::AppState;
use crate::domain::session::{NewSession, SessionInfo};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_session))
        .routes(routes!(current_session, end_session))
}

/// Signs in: exchanges a bearer token (any role) for a session. The answer
/// sets `dealflow_session` (`HttpOnly; SameSite=Strict; Path=/`, and
/// `Secure` over https) and holds the CSRF token to send as
/// `X-CSRF-Token` with every cookie-authenticated POST, PUT, PATCH and
/// DELETE. The session is kept on the server (a restart keeps it); it ends
/// after 12 hours unused, 7 days after it was opened, when its token is
/// revoked or expires, or at sign-out.
#[utoipa::path(post, path = "/v1/sessions", tag = "auth", request_body = NewSession, security(()),
    responses((status = 201, body = SessionInfo, headers(("Set-Cookie" = String, description = "the session cookie"))),
              (status = 401, body = ErrorBody, description = "the token is not valid, revoked or expired"),
              (status = 403, body = ErrorBody, description = "csrf_failed: sent from another site"),
              (status = "4XX", body = ErrorBody)))]
async fn open_session(
    State(s): State<AppState>,
    headers: HeaderMap,
    Body(req): Body<NewSession>,
) -> Result<Response, ApiError> {
    // A page of another site must not sign a browser in either.
    check_csrf(&headers, None)?;
    let (id, info) = s.services.open_session(&req.token).await?;
    let max_age = (info.expires_at - info.created_at).num_seconds().max(0);
    let secure = if s.services.session_config().secure_cookies || over_https(&headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    );
    let mut res = (StatusCode::CREATED, Json(info)).into_response();
    res.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::internal(&e))?,
    );
    Ok(res)
}

/// Who is signed in with the session cookie, the session's CSRF token and
/// when it ends (401 when it has ended).
#[utoipa::path(get, path = "/v1/sessions/current", tag = "auth", security(()),
    responses((status = 200, body = SessionInfo), (status = "4XX", body = ErrorBody)))]
async fn current_session(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<SessionInfo>, ApiError> {
    let id = session_id(&headers)?;
    Ok(Json(s.services.current_session(id)?))
}

/// Signs out: ends the session on the server at once (its cookie opens
/// nothing any more, its event streams end) and clears the cookie. Needs
/// `X-CSRF-Token` like every cookie-authenticated change.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "auth", security(()),
    params(("X-CSRF-Token" = String, Header, description = "the session's csrf_token")),
    responses((status = 204, description = "signed out"), (status = "4XX", body = ErrorBody)))]
async fn end_session(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let id = session_id(&headers)?;
    let session = s.services.authenticate_session(id)?;
    check_csrf(&headers, Some(&session.csrf))?;
    s.services.end_session(id).await?;
    let clear = format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&clear).map_err(|e| ApiError::internal(&e))?,
    );
    Ok(res)
}

/// The session cookie's value, or 401.
fn session_id(headers: &HeaderMap) -> Result<&str, ApiError> {
    cookie(headers, SESSION_COOKIE).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not signed in: POST /v1/sessions with a token first",
        )
    })
}

/// Whether a proxy in front says the browser used https.
fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}
