//! The brand catalog and FX rates (admin-managed, readable by every caller).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::NaiveDate;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller, Path, Query, Versioned};
use super::AppState;
use crate::domain::brand::{Brand, NewBrand};
use crate::domain::fx::{FxRate, FxRateCorrection, NewFxRate};
use crate::service::{Page, PageRequest};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_brand, list_brands))
        .routes(routes!(get_brand))
        .routes(routes!(create_fx_rate, list_fx_rates))
        .routes(routes!(get_fx_rate, correct_fx_rate))
}

/// Adds a brand (admin); it is `new` until a deal containing it is signed.
#[utoipa::path(post, path = "/v1/brands", tag = "catalog", request_body = NewBrand,
    responses((status = 201, body = Brand), (status = "4XX", body = ErrorBody)))]
async fn create_brand(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Body(req): Body<NewBrand>,
) -> Result<Versioned<Brand>, ApiError> {
    let b = s.services.create_brand(&caller, req).await?;
    Ok(Versioned(StatusCode::CREATED, b.version, b))
}

/// Lists the catalog.
#[utoipa::path(get, path = "/v1/brands", tag = "catalog", params(PageRequest),
    responses((status = 200, body = Page<Brand>), (status = "4XX", body = ErrorBody)))]
async fn list_brands(
    State(s): State<AppState>,
    Caller(_caller): Caller,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<Brand>>, ApiError> {
    Ok(Json(s.services.list_brands(&page)?))
}

/// One brand.
#[utoipa::path(get, path = "/v1/brands/{id}", tag = "catalog",
    responses((status = 200, body = Brand), (status = "4XX", body = ErrorBody)))]
async fn get_brand(
    State(s): State<AppState>,
    Caller(_caller): Caller,
    Path(id): Path<String>,
) -> Result<Versioned<Brand>, ApiError> {
    let b = s.services.brand(&id)?;
    Ok(Versioned(StatusCode::OK, b.version, b))
}

/// Records a dated FX rate (admin).
#[utoipa::path(post, path = "/v1/fx-rates", tag = "catalog", request_body = NewFxRate,
    responses((status = 201, body = FxRate), (status = "4XX", body = ErrorBody)))]
async fn create_fx_rate(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Body(req): Body<NewFxRate>,
) -> Result<(StatusCode, Json<FxRate>), ApiError> {
    Ok((
        StatusCode::CREATED,
        Json(s.services.create_fx_rate(&caller, req).await?),
    ))
}

/// One rate with its history of corrections.
#[utoipa::path(get, path = "/v1/fx-rates/{currency}/{date}", tag = "catalog",
    responses((status = 200, body = FxRate), (status = "4XX", body = ErrorBody)))]
async fn get_fx_rate(
    State(s): State<AppState>,
    Caller(_caller): Caller,
    Path((currency, date)): Path<(String, NaiveDate)>,
) -> Result<Json<FxRate>, ApiError> {
    Ok(Json(s.services.fx_rate(&currency, date)?))
}

/// Corrects a recorded rate (admin) with a reason, kept in its
/// `corrections`. The next settlement trues up contracts already paid at
/// the old rate.
#[utoipa::path(put, path = "/v1/fx-rates/{currency}/{date}", tag = "catalog", request_body = FxRateCorrection,
    responses((status = 200, body = FxRate), (status = "4XX", body = ErrorBody)))]
async fn correct_fx_rate(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path((currency, date)): Path<(String, NaiveDate)>,
    Body(req): Body<FxRateCorrection>,
) -> Result<Json<FxRate>, ApiError> {
    Ok(Json(
        s.services
            .correct_fx_rate(&caller, &currency, date, req)
            .await?,
    ))
}

/// Query of `GET /v1/fx-rates`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct FxQuery {
    /// Only this currency.
    currency: Option<String>,
    /// Page size.
    limit: Option<usize>,
    /// Cursor from the previous page.
    cursor: Option<String>,
}

/// Lists FX rates by currency, then date.
#[utoipa::path(get, path = "/v1/fx-rates", tag = "catalog", params(FxQuery),
    responses((status = 200, body = Page<FxRate>), (status = "4XX", body = ErrorBody)))]
async fn list_fx_rates(
    State(s): State<AppState>,
    Caller(_caller): Caller,
    Query(q): Query<FxQuery>,
) -> Result<Json<Page<FxRate>>, ApiError> {
    let page = PageRequest {
        limit: q.limit,
        cursor: q.cursor,
    };
    Ok(Json(
        s.services.list_fx_rates(q.currency.as_deref(), &page)?,
    ))
}
