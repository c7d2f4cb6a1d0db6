//! Serves the web console: `/` is its page, `/console/{path}` its files
//! (compiled in, see [`crate::console`]). Every answer carries the
//! console's security headers: a strict Content-Security-Policy (scripts,
//! styles and connections from this origin only, no inline script, no
//! eval, no framing), `nosniff` and no referrer. Files are revalidated by
//! ETag (`Cache-Control: no-cache` + `If-None-Match` → 304), so a new
//! binary's console is picked up at once and an unchanged one costs a 304.

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::error::ApiError;
use super::AppState;
use crate::console::asset;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                       img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
                       base-uri 'none'; form-action 'self'";

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/console/{*path}", get(file))
}

async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

async fn file(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&path, &headers)
}

/// One console file, or 404; with the security headers either way.
fn serve(path: &str, headers: &HeaderMap) -> Response {
    let mut res = match asset(path) {
        None => ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such console file")
            .into_response(),
        Some(a) => {
            let fresh = headers
                .get(IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|t| t.trim() == a.etag));
            let mut res = if fresh {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                ([(CONTENT_TYPE, a.content_type)], a.bytes).into_response()
            };
            if let Ok(v) = HeaderValue::from_str(&a.etag) {
                res.headers_mut().insert(ETAG, v);
            }
            res.headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            res
        }
    };
    let h = res.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}
