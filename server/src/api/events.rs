//! `GET /v1/events`: server-sent events of everything the caller may read,
//! resumable with `Last-Event-ID`.

use std::convert::Infallible;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::{Stream, StreamExt};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::Authenticated;
use super::AppState;
use crate::service::Delivery;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// The `Last-Event-ID` request header: where a reconnecting client left off.
struct LastEventId(Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for LastEventId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(v) = parts.headers.get("last-event-id") else {
            return Ok(LastEventId(None));
        };
        let text = v.to_str().unwrap_or("").trim();
        text.parse::<u64>().map(|id| LastEventId(Some(id))).map_err(|_| {
            ApiError::bad_request(
                "invalid_header",
                format!("Last-Event-ID must be the id of an event this server sent, such as 42, not `{text}`"),
            )
            .with_details(json!({"field": "Last-Event-ID"}))
        })
    }
}

/// Server-sent events (`text/event-stream`) of everything that happens to
/// what the caller may read: an event reaches exactly the callers for whom
/// `GET` on its resource would succeed, and carries only what they may read
/// (a rep sees their own deals, records, tasks and award, not other reps'
/// or a settlement's totals).
///
/// Each message has `id:` (the event's position in the server's log,
/// increasing in commit order), `event:` (its kind) and `data:` (the event
/// as JSON: `kind`, `at`, `by`, `resource` {`kind`, `id`, `branch`,
/// `owner`, `href`}, `branch`, `owner`, `data`). Kinds: `branch_created`,
/// `pipeline_changed`, `brand_created`, `fx_rate_added`, `fx_rate_corrected`,
/// `customer_created`, `customer_changed`, `owner_changed`,
/// `tier_changed`, `record_added`, `record_corrected`, `deal_created`,
/// `deal_changed`, `transition`, `veto`, `override`, `policy_event`,
/// `deal_cancelled`, `task_created`, `task_closed`, `policy_uploaded`,
/// `policy_activated`, `policy_rolled_back`, `policy_deactivated`,
/// `settlement_drafted`, `settlement_approved`, `award_announced`,
/// `settlement_paid`, `token_revoked`.
///
/// Authenticated by a bearer token or the console's session cookie
/// (`EventSource` sends it): the stream ends, with a last
/// `session_ended` message saying why, as soon as that session is signed
/// out or ends, or that token is revoked or expires. `job_progress`
/// messages (`{"job", "kind", "branch", "done", "total"}`, without `id:`)
/// report a running job's progress to those who may read the job; they
/// are live only, not kept in the log, so a client resuming gets the
/// job's state from `GET /v1/jobs/{id}`.
///
/// Without `Last-Event-ID` the stream starts with the next event. With
/// it, every event after that id is sent first, in order, without gaps or
/// repeats, then live ones. Events are kept for 7 days, at most the last
/// 1,000,000 (the server's `--event-retention-*` options): when some of
/// those asked for are gone, an `events_lost` message
/// (`{"after", "next"}`, id `next - 1`) comes first.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]{1,19}$", max_length = 19,
            description = "resume after this event id (the `id:` of the last event received)")),
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"),
              (status = "4XX", body = ErrorBody)))]
async fn events(
    State(s): State<AppState>,
    auth: Authenticated,
    LastEventId(after): LastEventId,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let stream = s
        .services
        .subscribe_events(auth.principal, after, Some(auth.credential))
        .map(|d| Ok(message(d)));
    // A first frame at once (how soon to reconnect), so the client knows
    // the stream is open before the first event (`EventSource.onopen`).
    let hello = futures_util::stream::once(async {
        Ok(SseEvent::default().retry(std::time::Duration::from_secs(3)))
    });
    Sse::new(hello.chain(stream)).keep_alive(KeepAlive::default())
}

/// One delivery as an SSE message.
fn message(d: Delivery) -> SseEvent {
    match d {
        Delivery::Event { id, kind, json } => SseEvent::default()
            .id(id.to_string())
            .event(kind)
            // The log holds the event as one line of JSON.
            .data(String::from_utf8_lossy(&json)),
        Delivery::Lost { after, next } => SseEvent::default()
            .id((next - 1).to_string())
            .event("events_lost")
            .data(json!({"after": after, "next": next}).to_string()),
        Delivery::Job(json) => SseEvent::default().event("job_progress").data(&*json),
        Delivery::Ended(reason) => SseEvent::default()
            .event("session_ended")
            .data(json!({"message": reason}).to_string()),
        Delivery::Failed(reason) => {
            tracing::error!(error = %reason, "an event subscription could not read the log");
            SseEvent::default().event("error").data(
                json!({"message": "reading the event log failed; reconnect with Last-Event-ID"})
                    .to_string(),
            )
        }
    }
}
