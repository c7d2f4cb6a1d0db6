//! Reports: the team's spread and referrals (for a branch's manager) and
//! the pipeline funnel (for anyone in the branch).

use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, Query};
use super::AppState;
use crate::service::{
    PipelineQuery, PipelineReport, ReferralQuery, ReferralReport, TeamQuery, TeamReport,
};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(team_report))
        .routes(routes!(referral_report))
        .routes(routes!(pipeline_report))
}

/// The funnel: for each stage of the branch's pipeline, its deals and
/// their value in CNY at today's rates (anyone in the branch; a rep's are
/// their own deals).
#[utoipa::path(get, path = "/v1/reports/pipeline", tag = "reports", params(PipelineQuery),
    responses((status = 200, body = PipelineReport), (status = "4XX", body = ErrorBody)))]
async fn pipeline_report(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<PipelineQuery>,
) -> Result<Json<PipelineReport>, ApiError> {
    Ok(Json(s.services.pipeline_report(&caller, &q).await?))
}

/// Per rep: A/B/C customers, signed revenue over the trailing 12 months,
/// open deals and overdue follow-ups.
#[utoipa::path(get, path = "/v1/reports/team", tag = "reports", params(TeamQuery),
    responses((status = 200, body = TeamReport), (status = "4XX", body = ErrorBody)))]
async fn team_report(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<TeamQuery>,
) -> Result<Json<TeamReport>, ApiError> {
    Ok(Json(s.services.team_report(&caller, &q).await?))
}

/// Signed revenue of referred customers by referring customer.
#[utoipa::path(get, path = "/v1/reports/referrals", tag = "reports", params(ReferralQuery),
    responses((status = 200, body = ReferralReport), (status = "4XX", body = ErrorBody)))]
async fn referral_report(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(q): Query<ReferralQuery>,
) -> Result<Json<ReferralReport>, ApiError> {
    Ok(Json(s.services.referral_report(&caller, &q)?))
}
