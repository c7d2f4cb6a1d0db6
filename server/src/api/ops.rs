//! Operations routes: health and Prometheus metrics.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
}

/// 200 when the store is open and answering.
#[utoipa::path(get, path = "/healthz", tag = "ops", security(()),
    responses((status = 200, description = "healthy"), (status = 503, description = "store unavailable")))]
async fn healthz(State(state): State<AppState>) -> Response {
    if state.services.healthy() {
        (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok"})),
        )
            .into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the store is not answering",
        )
        .into_response()
    }
}

/// Prometheus text; only for callers on loopback.
#[utoipa::path(get, path = "/metrics", tag = "ops", security(()),
    responses((status = 200, description = "OpenMetrics text (Prometheus reads it)", content_type = "application/openmetrics-text"),
              (status = 403, body = super::error::ErrorBody)))]
async fn metrics(State(state): State<AppState>, Peer(peer): Peer) -> Response {
    // Without connection info the caller is in-process (tests, embedding).
    if let Some(addr) = peer {
        if !addr.ip().is_loopback() {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "metrics are served on loopback only",
            )
            .into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state
            .metrics
            .render(state.services.event_subscribers() as u64),
    )
        .into_response()
}

/// The peer address, when the server was started with connection info.
struct Peer(Option<SocketAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0),
        ))
    }
}
