//! Customers and their communication records.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Body, Caller, IfMatch, Path, Query, Versioned};
use super::AppState;
use crate::domain::customer::{Customer, CustomerPatch, NewCustomer};
use crate::domain::customer_history::CustomerEvent;
use crate::domain::record::{NewRecord, Record, RecordPatch};
use crate::service::{CustomerFilter, Page, PageRequest, RecordFilter};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_customer, list_customers))
        .routes(routes!(get_customer, patch_customer))
        .routes(routes!(create_record, list_records))
        .routes(routes!(customer_history))
        .routes(routes!(get_record, patch_record))
        .routes(routes!(record_revisions))
        .routes(routes!(records_by_author))
}

/// The branch's communication records by author (a rep: their own).
#[utoipa::path(get, path = "/v1/records", tag = "customers", params(RecordFilter),
    responses((status = 200, body = Page<Record>), (status = "4XX", body = ErrorBody)))]
async fn records_by_author(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(f): Query<RecordFilter>,
) -> Result<Json<Page<Record>>, ApiError> {
    Ok(Json(s.services.records_by_author(&caller, &f)?))
}

/// One communication record (the branch's managers; a rep, those they
/// wrote).
#[utoipa::path(get, path = "/v1/customers/{id}/records/{record}", tag = "customers",
    responses((status = 200, body = Record), (status = "4XX", body = ErrorBody)))]
async fn get_record(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path((id, record)): Path<(String, String)>,
) -> Result<Versioned<Record>, ApiError> {
    let r = s.services.record(&caller, &id, &record)?;
    Ok(Versioned(StatusCode::OK, r.version, r))
}

/// Corrects a communication record (its author or a manager); the version
/// replaced is kept as a revision. Send `If-Match: <version>`.
#[utoipa::path(patch, path = "/v1/customers/{id}/records/{record}", tag = "customers", request_body = RecordPatch,
    responses((status = 200, body = Record), (status = "4XX", body = ErrorBody)))]
async fn patch_record(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path((id, record)): Path<(String, String)>,
    IfMatch(if_match): IfMatch,
    Body(patch): Body<RecordPatch>,
) -> Result<Versioned<Record>, ApiError> {
    let r = s
        .services
        .patch_record(&caller, &id, &record, patch, if_match)
        .await?;
    Ok(Versioned(StatusCode::OK, r.version, r))
}

/// The versions a record had before its corrections, oldest first.
#[utoipa::path(get, path = "/v1/customers/{id}/records/{record}/revisions", tag = "customers", params(PageRequest),
    responses((status = 200, body = Page<Record>), (status = "4XX", body = ErrorBody)))]
async fn record_revisions(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path((id, record)): Path<(String, String)>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<Record>>, ApiError> {
    Ok(Json(
        s.services.record_revisions(&caller, &id, &record, &page)?,
    ))
}

/// The customer's history: every tier change with its reason and policy
/// version, oldest first.
#[utoipa::path(get, path = "/v1/customers/{id}/history", tag = "customers", params(PageRequest),
    responses((status = 200, body = Page<CustomerEvent>), (status = "4XX", body = ErrorBody)))]
async fn customer_history(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<CustomerEvent>>, ApiError> {
    Ok(Json(s.services.customer_history(&caller, &id, &page)?))
}

/// Creates a customer in the caller's branch.
#[utoipa::path(post, path = "/v1/customers", tag = "customers", request_body = NewCustomer,
    responses((status = 201, body = Customer), (status = "4XX", body = ErrorBody)))]
async fn create_customer(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Body(req): Body<NewCustomer>,
) -> Result<Versioned<Customer>, ApiError> {
    let c = s.services.create_customer(&caller, req).await?;
    Ok(Versioned(StatusCode::CREATED, c.version, c))
}

/// Lists customers in the caller's scope.
#[utoipa::path(get, path = "/v1/customers", tag = "customers", params(CustomerFilter),
    responses((status = 200, body = Page<Customer>), (status = "4XX", body = ErrorBody)))]
async fn list_customers(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(f): Query<CustomerFilter>,
) -> Result<Json<Page<Customer>>, ApiError> {
    Ok(Json(s.services.list_customers(&caller, &f)?))
}

/// One customer.
#[utoipa::path(get, path = "/v1/customers/{id}", tag = "customers",
    responses((status = 200, body = Customer), (status = "4XX", body = ErrorBody)))]
async fn get_customer(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Versioned<Customer>, ApiError> {
    let c = s.services.customer(&caller, &id)?;
    Ok(Versioned(StatusCode::OK, c.version, c))
}

/// Changes a customer; send `If-Match: <version>` to avoid lost updates.
#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "customers", request_body = CustomerPatch,
    responses((status = 200, body = Customer), (status = "4XX", body = ErrorBody)))]
async fn patch_customer(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    Body(patch): Body<CustomerPatch>,
) -> Result<Versioned<Customer>, ApiError> {
    let c = s
        .services
        .patch_customer(&caller, &id, patch, if_match)
        .await?;
    Ok(Versioned(StatusCode::OK, c.version, c))
}

/// Adds a communication record (docs/business-rules.md §2) for the customer.
#[utoipa::path(post, path = "/v1/customers/{id}/records", tag = "customers", request_body = NewRecord,
    responses((status = 201, body = Record), (status = "4XX", body = ErrorBody)))]
async fn create_record(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Body(req): Body<NewRecord>,
) -> Result<Versioned<Record>, ApiError> {
    let r = s.services.create_record(&caller, &id, req).await?;
    Ok(Versioned(StatusCode::CREATED, r.version, r))
}

/// The customer's records in time order (a rep sees their own).
#[utoipa::path(get, path = "/v1/customers/{id}/records", tag = "customers", params(PageRequest),
    responses((status = 200, body = Page<Record>), (status = "4XX", body = ErrorBody)))]
async fn list_records(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    Query(page): Query<PageRequest>,
) -> Result<Json<Page<Record>>, ApiError> {
    Ok(Json(s.services.list_records(&caller, &id, &page)?))
}
