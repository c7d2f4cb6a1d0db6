//! `GET /v1/events`: server-sent events of everything in the caller's scope.

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::stream::Stream;
use tokio::sync::broadcast::error::RecvError;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::extract::Caller;
use super::AppState;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(events))
}

/// A stream of `transition`, `veto`, `override`, `policy_activated`,
/// `policy_event` … events visible to the caller (text/event-stream; the
/// event name is the kind, the data the event as JSON).
#[utoipa::path(get, path = "/v1/events", tag = "events",
    responses((status = 200, description = "text/event-stream", content_type = "text/event-stream"),
              (status = "4XX", body = ErrorBody)))]
async fn events(
    State(s): State<AppState>,
    Caller(caller): Caller,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let mut rx = s.services.subscribe();
    let stream = async_stream(move |yield_tx| async move {
        loop {
            match rx.recv().await {
                Ok(e) if e.visible_to(&caller) => {
                    let ev = SseEvent::default()
                        .event(e.kind.clone())
                        .json_data(&e)
                        .unwrap_or_else(|_| SseEvent::default().comment("unserialisable event"));
                    if yield_tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => {
                    let ev = SseEvent::default()
                        .event("lagged")
                        .data(format!("{n} events were missed"));
                    if yield_tx.send(ev).await.is_err() {
                        return;
                    }
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// A stream fed by a task through a small channel (ends when the client goes).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<SseEvent, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<SseEvent>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
