//! Deals, their transitions and their history.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller, IfMatch, Path, Query, Versioned};
use super::AppState;
use crate::domain::deal::{
    CancelRequest, Deal, DealPatch, NewDeal, TransitionCheck, TransitionRequest,
};
use crate::domain::history::HistoryEntry;
use crate::pipeline::TransitionOutcome;
use crate::service::{DealFilter, Page, PageRequest};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_deal, list_deals))
        .routes(routes!(get_deal, patch_deal))
        .routes(routes!(transition))
        .routes(routes!(cancel))
        .routes(routes!(history))
}

/// Opens a deal in the branch pipeline's first stage.
#[utoipa::path(post, path = "/v1/deals", tag = "deals", request_body = NewDeal,
    responses((status = 201, body = Deal), (status = "4XX", body = ErrorBody)))]
async fn create_deal(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Body(req): Body<NewDeal>,
) -> Result<Versioned<Deal>, ApiError> {
    let d = s.services.create_deal(&caller, req).await?;
    Ok(Versioned(StatusCode::CREATED, d.version, d))
}

/// Lists deals in the caller's scope (a rep sees their own).
#[utoipa::path(get, path = "/v1/deals", tag = "deals", params(DealFilter),
    responses((status = 200, body = Page<Deal>), (status = "4XX", body = ErrorBody)))]
async fn list_deals(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(f): Query<DealFilter>,
) -> Result<Json<Page<Deal>>, ApiError> {
    Ok(Json(s.services.list_deals(&caller, &f)?))
}

/// One deal.
#[utoipa::path(get, path = "/v1/deals/{id}", tag = "deals",
    responses((status = 200, body = Deal), (status = "4XX", body = ErrorBody)))]
async fn get_deal(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Versioned<Deal>, ApiError> {
    let d = s.services.deal(&caller, &id)?;
    Ok(Versioned(StatusCode::OK, d.version, d))
}

/// Changes a deal's fields (the stage moves only by transitions).
#[utoipa::path(patch, path = "/v1/deals/{id}", tag = "deals", request_body = DealPatch,
    responses((status = 200, body = Deal), (status = "4XX", body = ErrorBody)))]
async fn patch_deal(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    Body(patch): Body<DealPatch>,
) -> Result<Versioned<Deal>, ApiError> {
    let d = s.services.patch_deal(&caller, &id, patch, if_match).await?;
    Ok(Versioned(StatusCode::OK, d.version, d))
}

/// Cancels a signed contract (the branch's manager or an admin): it keeps
/// its stage, gains `cancelled_at` and the reason, and the next settlement
/// reverses what was paid for it. 409 `invalid_state` unless signed and not
/// cancelled yet.
#[utoipa::path(post, path = "/v1/deals/{id}/cancel", tag = "deals", request_body = CancelRequest,
    responses((status = 200, body = Deal), (status = "4XX", body = ErrorBody)))]
async fn cancel(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    Body(req): Body<CancelRequest>,
) -> Result<Versioned<Deal>, ApiError> {
    let d = s.services.cancel_deal(&caller, &id, req, if_match).await?;
    Ok(Versioned(StatusCode::OK, d.version, d))
}

/// Moves the deal to another stage; `dry_run` reports every verdict instead.
#[utoipa::path(post, path = "/v1/deals/{id}/transitions", tag = "deals", request_body = TransitionRequest,
    responses((status = 200, description = "the moved deal, or with `dry_run` a TransitionCheck", body = TransitionReply),
              (status = 422, description = "invalid_transition, guard_rejected or policy_failed", body = ErrorBody),
              (status = "4XX", body = ErrorBody)))]
async fn transition(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    Body(req): Body<TransitionRequest>,
) -> Result<Response, ApiError> {
    Ok(
        match s.services.transition(&caller, &id, req, if_match).await? {
            TransitionOutcome::Moved(d) => {
                s.metrics.transition(&d.branch, &d.stage);
                Versioned(StatusCode::OK, d.version, *d).into_response()
            }
            TransitionOutcome::Checked(c) => Json::<TransitionCheck>(c).into_response(),
        },
    )
}

/// What a transition answers (for the document): the moved deal, or with
/// `dry_run` every verdict.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
enum TransitionReply {
    /// The moved deal.
    Moved(Box<Deal>),
    /// A dry run's verdicts.
    Checked(TransitionCheck),
}

/// Every creation, change and transition of the deal, oldest first.
#[utoipa::path(get, path = "/v1/deals/{id}/history", tag = "deals", params(PageRequest),
    responses((status = 200, body = Page<HistoryEntry>), (status = "4XX", body = ErrorBody)))]
async fn history(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<HistoryEntry>>, ApiError> {
    Ok(Json(s.services.deal_history(&caller, &id, &page)?))
}
