//! The HTTP boundary: one module per resource (its routes and handlers), the
//! extractors and the error mapping, and the web console's files. Handlers extract, call one service
//! function and return; this module never sees sled types.

mod admin;
mod branches;
mod catalog;
mod console;
mod customers;
mod deals;
pub mod error;
mod events;
mod extract;
mod followups;
mod jobs;
mod ops;
mod policies;
mod reports;
mod sessions;
mod settlements;
mod tokens;
mod wording;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

use crate::metrics::Metrics;
use crate::service::Services;
use error::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares: one allocation, so the extractors' clones of
/// it are one reference-count bump each.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    /// The use cases.
    pub services: Services,
    /// Request and business counters.
    pub metrics: Arc<Metrics>,
    /// The generated OpenAPI document, rendered once.
    openapi: String,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "dealflow", description = "Key-account sales development: customers, deals and a policy-driven stage pipeline."),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    components(schemas(error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Replaces the derived schemas of bodies whose fields depend on each
/// other (which role takes a branch, which runtime takes which field) with
/// the exact ones.
struct Exact;

impl Modify for Exact {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use crate::domain::schema;
        use utoipa::openapi::schema::{Object, Schema};
        use utoipa::openapi::RefOr;
        type Build = fn(&Object) -> Schema;
        let exact: [(&str, Build); 2] = [
            ("NewToken", schema::new_token),
            ("NewPolicy", schema::new_policy),
        ];
        let components = api.components.get_or_insert_with(Default::default);
        for (name, build) in exact {
            if let Some(RefOr::T(Schema::Object(derived))) = components.schemas.get(name) {
                let replaced = build(derived);
                components.schemas.insert(name.to_string(), replaced.into());
            }
        }
    }
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(ops::router())
        .merge(tokens::router())
        .merge(sessions::router())
        .merge(admin::router())
        .merge(branches::router())
        .merge(catalog::router())
        .merge(customers::router())
        .merge(deals::router())
        .merge(followups::router())
        .merge(policies::router())
        .merge(reports::router())
        .merge(settlements::router())
        .merge(events::router())
        .merge(jobs::router())
}

/// The generated OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = routes().split_for_parts().1;
    Exact.modify(&mut api);
    api
}

/// Builds the application: every route, the error fallbacks and the layers.
pub fn router(services: Services) -> Router {
    let (routes, mut api) = routes().split_for_parts();
    // After the routes' own schemas are merged in, which it replaces.
    Exact.modify(&mut api);
    let state = AppState(Arc::new(Shared {
        services,
        metrics: Arc::new(Metrics::default()),
        openapi: api
            .to_pretty_json()
            .expect("the OpenAPI document serialises"),
    }));
    let request_id = HeaderName::from_static("x-request-id");
    routes
        .route("/openapi.json", axum::routing::get(openapi_json))
        .merge(console::router())
        .fallback(|| async { ApiError::no_route() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), record_metrics))
        .layer(CatchPanicLayer::custom(|_| ApiError::internal(&"a handler panicked").into_response()))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                tracing::info_span!("request", request_id = %id, method = %req.method(), uri = %req.uri())
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

async fn openapi_json(State(state): State<AppState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        state.openapi.as_str().to_owned(),
    )
        .into_response()
}

async fn record_metrics(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    // The matched route pattern (bounded), not the path (ids in it are not).
    let route = req.extensions().get::<MatchedPath>().cloned();
    let res = next.run(req).await;
    state.metrics.request(
        method.as_str(),
        route.as_ref().map_or("unmatched", |p| p.as_str()),
        res.status().as_u16(),
        start.elapsed(),
    );
    res
}
