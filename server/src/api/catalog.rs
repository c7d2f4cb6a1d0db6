//! The brand catalog and FX rates (admin-managed, readable by every caller;
//! a rate is corrected with a reason, every version kept).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{path_day, Body, Caller, IfMatch, Path, Query, Versioned};
use super::AppState;
use crate::domain::brand::{Brand, NewBrand};
use crate::domain::fx::{FxCorrection, FxRate, NewFxRate};
use crate::service::{Page, PageRequest};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_brand, list_brands))
        .routes(routes!(get_brand))
        .routes(routes!(create_fx_rate, list_fx_rates))
        .routes(routes!(get_fx_rate, correct_fx_rate))
        .routes(routes!(fx_rate_history))
}

/// Corrects a mistyped rate (admin) with a reason: a new version of the
/// rate, the earlier ones kept. Settlements approved before keep the
/// version they used (their lines name it); the next draft uses the
/// corrected rate and trues up paid contracts. Send `If-Match: <version>`.
#[utoipa::path(put, path = "/v1/fx-rates/{currency}/{date}", tag = "catalog", params(FxRateKey),
    request_body = FxCorrection,
    responses((status = 200, body = FxRate), (status = "4XX", body = ErrorBody)))]
async fn correct_fx_rate(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(key): Path<FxRateKey>,
    IfMatch(if_match): IfMatch,
    Body(req): Body<FxCorrection>,
) -> Result<Versioned<FxRate>, ApiError> {
    let date = path_day("date", &key.date)?;
    let r = s
        .services
        .correct_fx_rate(&caller, &key.currency, date, req, if_match)
        .await?;
    Ok(Versioned(StatusCode::OK, r.version, r))
}

/// One rate as it stands (its latest version).
#[utoipa::path(get, path = "/v1/fx-rates/{currency}/{date}", tag = "catalog", params(FxRateKey),
    responses((status = 200, body = FxRate), (status = "4XX", body = ErrorBody)))]
async fn get_fx_rate(
    State(s): State<AppState>,
    Caller(_caller): Caller,
    Path(key): Path<FxRateKey>,
) -> Result<Versioned<FxRate>, ApiError> {
    let r = s
        .services
        .fx_rate(&key.currency, path_day("date", &key.date)?)?;
    Ok(Versioned(StatusCode::OK, r.version, r))
}

/// Every version of a rate, oldest first: the first as recorded, then each
/// correction with who, when and why.
#[utoipa::path(get, path = "/v1/fx-rates/{currency}/{date}/history", tag = "catalog",
    params(FxRateKey, PageRequest),
    responses((status = 200, body = Page<FxRate>), (status = "4XX", body = ErrorBody)))]
async fn fx_rate_history(
    State(s): State<AppState>,
    Caller(_caller): Caller,
    Path(key): Path<FxRateKey>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<FxRate>>, ApiError> {
    let date = path_day("date", &key.date)?;
    Ok(Json(s.services.fx_rate_history(
        &key.currency,
        date,
        &page,
    )?))
}

/// The path of one FX rate.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
struct FxRateKey {
    /// ISO 4217 code.
    currency: String,
    /// The rate's first day (`YYYY-MM-DD`).
    date: String,
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
) -> Result<Versioned<FxRate>, ApiError> {
    let r = s.services.create_fx_rate(&caller, req).await?;
    Ok(Versioned(StatusCode::CREATED, r.version, r))
}

/// Query of `GET /v1/fx-rates`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
struct FxQuery {
    /// Only this currency.
    currency: Option<String>,
    /// Page size.
    #[param(schema_with = crate::domain::schema::limit)]
    limit: Option<usize>,
    /// Cursor from the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
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
