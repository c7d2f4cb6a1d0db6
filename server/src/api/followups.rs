//! Follow-ups: customers due for contact and the follow-up tasks
//! after-hooks create, completed or dismissed with a note.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{Caller, IfMatch, OptionalBody, Path, Query, Versioned};
use super::AppState;
use crate::domain::task::{CloseTask, DismissTask, Task, TaskStatus};
use crate::service::{FollowupFilter, Followups, Page, TaskFilter};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(followups))
        .routes(routes!(list_tasks))
        .routes(routes!(get_task))
        .routes(routes!(complete_task))
        .routes(routes!(dismiss_task))
}

/// Customers due or overdue for contact under their branch's cadence
/// policy, and open follow-up tasks.
#[utoipa::path(get, path = "/v1/followups", tag = "followups", params(FollowupFilter),
    responses((status = 200, body = Followups), (status = "4XX", body = ErrorBody)))]
async fn followups(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(f): Query<FollowupFilter>,
) -> Result<Json<Followups>, ApiError> {
    Ok(Json(s.services.followups(&caller, &f).await?))
}

/// Follow-up tasks created by after-transition policies.
#[utoipa::path(get, path = "/v1/tasks", tag = "followups", params(TaskFilter),
    responses((status = 200, body = Page<Task>), (status = "4XX", body = ErrorBody)))]
async fn list_tasks(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Query(f): Query<TaskFilter>,
) -> Result<Json<Page<Task>>, ApiError> {
    Ok(Json(s.services.list_tasks(&caller, &f)?))
}

/// One follow-up task (its assignee, or the branch's managers).
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "followups",
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn get_task(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Versioned<Task>, ApiError> {
    let t = s.services.task(&caller, &id)?;
    Ok(Versioned(StatusCode::OK, t.version, t))
}

/// Marks an open task done (its assignee or a manager), with an optional note.
#[utoipa::path(post, path = "/v1/tasks/{id}/complete", tag = "followups",
    request_body(content = Option<CloseTask>, description = "optional: no body completes without a note"),
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn complete_task(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    OptionalBody(req): OptionalBody<CloseTask>,
) -> Result<Versioned<Task>, ApiError> {
    let t = s
        .services
        .close_task(&caller, &id, TaskStatus::Done, req, if_match)
        .await?;
    Ok(Versioned(StatusCode::OK, t.version, t))
}

/// Dismisses an open task (its assignee or a manager) with a note saying why.
#[utoipa::path(post, path = "/v1/tasks/{id}/dismiss", tag = "followups",
    request_body = DismissTask,
    responses((status = 200, body = Task), (status = "4XX", body = ErrorBody)))]
async fn dismiss_task(
    State(s): State<AppState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    IfMatch(if_match): IfMatch,
    OptionalBody(req): OptionalBody<CloseTask>,
) -> Result<Versioned<Task>, ApiError> {
    let t = s
        .services
        .close_task(&caller, &id, TaskStatus::Dismissed, req, if_match)
        .await?;
    Ok(Versioned(StatusCode::OK, t.version, t))
}
