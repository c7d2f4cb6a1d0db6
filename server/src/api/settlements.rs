//! Settlements of the bonus rules (draft → approve → pay), per-rep
//! statements in JSON or CSV, and simulations of a candidate rule version.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller, Path, Query, RespondAsync};
use super::jobs::{accepted, outcome};
use super::AppState;
use crate::domain::job::{JobKind, JobStarted};
use crate::domain::settlement::{
    NewSettlement, Settlement, SimulateRequest, Simulation, Statement,
};
use crate::service::{settlement_csv, statement_csv, Page, SettlementFilter};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_settlement, list_settlements))
        .routes(routes!(get_settlement))
        .routes(routes!(approve))
        .routes(routes!(pay))
        .routes(routes!(statement))
        .routes(routes!(simulate))
}

/// Runs the bonus rules due in the period (a month: new-brand contracts
/// signed in it; a quarter adds customers whose 3-month window closed; a
/// half-year adds territory flags; a year adds the deductions) and stores
/// the result as the period's draft, replacing an earlier draft. With
/// `Prefer: respond-async` (or `?async=true`) it runs as a job: `202
/// {"job"}` at once, the settlement in the job's `result`.
#[utoipa::path(post, path = "/v1/settlements", tag = "settlements", request_body = NewSettlement,
    params(("Prefer" = Option<String>, Header, description = "`respond-async`: run as a job")),
    responses((status = 201, body = Settlement), (status = 202, body = JobStarted, description = "started as a job"),
              (status = 422, body = ErrorBody, description = "a bad period, or a rule failed (`policy_failed`)"),
              (status = "4XX", body = ErrorBody)))]
async fn create_settlement(
    State(s): State<AppState>,
    Caller(caller): Caller,
    RespondAsync(as_job): RespondAsync,
    Body(req): Body<NewSettlement>,
) -> Result<Response, ApiError> {
    if !as_job {
        let st = s.services.create_settlement(&caller, req).await?;
        return Ok((StatusCode::CREATED, Json(st)).into_response());
    }
    s.services
        .check_settlement(&caller, &req.branch, &req.period)?;
    let request = json!({"branch": req.branch, "period": req.period});
    let (services, who, branch) = (s.services.clone(), caller.clone(), req.branch.clone());
    let job =
        s.services
            .start_job(
                &caller,
                JobKind::Settlement,
                &branch,
                request,
                move |p| async move {
                    outcome(services.create_settlement_with(&who, req, Some(p)).await)
                },
            )
            .await?;
    Ok(accepted(job))
}

/// Settlements in the caller's scope.
#[utoipa::path(get, path = "/v1/settlements", tag = "settlements", params(SettlementFilter),
    responses((status = 200, body = Page<Settlement>), (status = "4XX", body = ErrorBody)))]
async fn list_settlements(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(f): Query<SettlementFilter>,
) -> Result<Json<Page<Settlement>>, ApiError> {
    Ok(Json(s.services.list_settlements(&caller, &f)?))
}

/// Query of `GET /v1/settlements/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct SettlementQuery {
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(schema_with = crate::domain::schema::statement_format)]
    format: Option<String>,
}

/// One settlement with its lines, as JSON or as CSV (the statements'
/// columns: a row per line, a total row per rep, then the settlement's).
#[utoipa::path(get, path = "/v1/settlements/{id}", tag = "settlements", params(SettlementQuery),
    responses((status = 200, description = "the settlement, as JSON or (`format=csv`, `Accept: text/csv`) CSV",
                content((Settlement = "application/json"), (String = "text/csv"))),
              (status = "4XX", body = ErrorBody)))]
async fn get_settlement(
    State(s): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<SettlementQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(q.format.as_deref(), &headers)?;
    let st = s.services.settlement(&caller, &id)?;
    Ok(if csv {
        csv_response(
            settlement_csv(&st),
            &format!("settlement-{}-{}.csv", st.branch, st.period),
        )
    } else {
        Json(st).into_response()
    })
}

/// Whether the client asked for CSV: `format=csv|json`, else `Accept`.
fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> Result<bool, ApiError> {
    match format {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::bad_request(
            "bad_request",
            format!("`format` must be `json` or `csv`, not `{other}`"),
        )
        .with_details(serde_json::json!({"field": "format"}))),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/csv"))),
    }
}

/// A CSV body, offered for saving as `filename`.
fn csv_response(body: String, filename: &str) -> Response {
    // A rep's name may be any text: keep the header plain ASCII.
    let safe: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!("attachment; filename=\"{safe}\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response()
}

/// Draft → approved (the branch's manager): records every subject as paid
/// and announces the awards. 409 `invalid_state` unless a draft; 409
/// `stale_draft` when an overlapping settlement was approved since.
#[utoipa::path(post, path = "/v1/settlements/{id}/approve", tag = "settlements",
    responses((status = 200, body = Settlement), (status = "4XX", body = ErrorBody)))]
async fn approve(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Settlement>, ApiError> {
    Ok(Json(s.services.approve_settlement(&caller, &id).await?))
}

/// Approved → paid. 409 `invalid_state` unless approved.
#[utoipa::path(post, path = "/v1/settlements/{id}/pay", tag = "settlements",
    responses((status = 200, body = Settlement), (status = "4XX", body = ErrorBody)))]
async fn pay(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Json<Settlement>, ApiError> {
    Ok(Json(s.services.pay_settlement(&caller, &id).await?))
}

/// Query of `GET /v1/statements`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct StatementQuery {
    /// The branch.
    branch: String,
    /// The rep.
    rep: String,
    /// The period, as for settlements.
    // A literal (`schema_with` would drop `required`): domain::schema::period.
    #[param(pattern = r"^(?:19[7-9][0-9]|[2-9][0-9]{3})(?:-(?:0[1-9]|1[0-2]|Q[1-4]|H[12]))?$")]
    period: String,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[param(schema_with = crate::domain::schema::statement_format)]
    format: Option<String>,
}

/// A rep's statement for a period: their lines in the branch's settlements
/// of that period, with totals by status, as JSON or CSV.
#[utoipa::path(get, path = "/v1/statements", tag = "settlements", params(StatementQuery),
    responses((status = 200, description = "the statement, as JSON or (`format=csv`, `Accept: text/csv`) CSV",
                content((Statement = "application/json"), (String = "text/csv"))),
              (status = "4XX", body = ErrorBody)))]
async fn statement(
    State(s): State<AppState>,
    Caller(caller): Caller,
    headers: HeaderMap,
    Query(q): Query<StatementQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(q.format.as_deref(), &headers)?;
    let st = s
        .services
        .statement(&caller, &q.branch, &q.rep, &q.period)?;
    if csv {
        let name = format!("statement-{}-{}-{}.csv", st.branch, st.rep, st.period);
        Ok(csv_response(statement_csv(&st), &name))
    } else {
        Ok(Json(st).into_response())
    }
}

/// Backtest: what a settlement of the period would pay with this version
/// activated (as `activate` would, optionally from `effective_from`), per
/// rep beside the active versions, with every line that changes. Nothing is
/// written. With `Prefer: respond-async` (or `?async=true`) it runs as a
/// job: `202 {"job"}` at once, the simulation in the job's `result`.
#[utoipa::path(post, path = "/v1/policies/{name}/versions/{version}/simulate", tag = "policies",
    request_body = SimulateRequest,
    params(("Prefer" = Option<String>, Header, description = "`respond-async`: run as a job")),
    responses((status = 200, body = Simulation), (status = 202, body = JobStarted, description = "started as a job"),
              (status = "4XX", body = ErrorBody)))]
async fn simulate(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path((name, version)): Path<(String, u64)>,
    RespondAsync(as_job): RespondAsync,
    Body(req): Body<SimulateRequest>,
) -> Result<Response, ApiError> {
    if !as_job {
        let sim = s.services.simulate_policy(&caller, &name, version, req);
        return Ok(Json(sim.await?).into_response());
    }
    s.services.policy(&caller, &name)?;
    s.services
        .check_settlement(&caller, &req.branch, &req.period)?;
    let request = json!({"name": name, "version": version, "branch": req.branch,
                         "period": req.period, "effective_from": req.effective_from});
    let (services, who, branch) = (s.services.clone(), caller.clone(), req.branch.clone());
    let job = s
        .services
        .start_job(
            &caller,
            JobKind::Simulate,
            &branch,
            request,
            move |p| async move {
                outcome(
                    services
                        .simulate_policy_with(&who, &name, version, req, Some(p))
                        .await,
                )
            },
        )
        .await?;
    Ok(accepted(job))
}
