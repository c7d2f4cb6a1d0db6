//! End-to-end tests of the HTTP contract (docs/http-reference.md) through the router, over a
//! real temporary sled database: every route's success status and body, every
//! documented error status with the error body, paging, the default and a
//! branch-specific pipeline, history, optimistic concurrency and persistence
//! across a reopen.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use dealflow::domain::deal::Deal;
use dealflow::store::{keys, Batch, Store};
use dealflow_tests::{deal_body, open_when_released, Reply, TestApp, ADMIN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

// ---------------------------------------------------------------------------
// Helpers (set-up and reading replies; assertions stay in the tests)
// ---------------------------------------------------------------------------

/// A far-future business time, refused everywhere.
const FUTURE: &str = "2999-01-01T00:00:00Z";

/// A server with branch `sh`, brand `volvo`, a rep `li` and a manager `wang`
/// of `sh`, and one customer of `sh` owned by `li`.
struct World {
    app: TestApp,
    rep: String,
    mgr: String,
    customer: String,
}

async fn world() -> World {
    let app = TestApp::new().await;
    app.branch("sh").await;
    app.brand("volvo").await;
    let rep = app.token("rep", Some("sh"), "li").await;
    let mgr = app.token("manager", Some("sh"), "wang").await;
    let customer = app.customer(ADMIN, "sh", "li").await;
    World {
        app,
        rep,
        mgr,
        customer,
    }
}

/// Sends exactly these headers and bytes (no default content type or token).
async fn exact(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .router
        .clone()
        .oneshot(req.body(Body::from(body)).expect("request"))
        .await
        .expect("router never fails");
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// Sends a request with a bearer token, an optional body and extra headers.
async fn send_with(
    app: &TestApp,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    app.send_raw(
        method,
        path,
        Some(token),
        body.map(|b| b.to_string().into_bytes()),
        headers,
    )
    .await
}

/// Asserts the documented error body: `{"error":{"code","message","details"?}}`.
#[track_caller]
fn assert_error(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "unexpected status; body: {}", r.body);
    let top = r
        .body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object: {}", r.body));
    assert_eq!(top.len(), 1, "only `error` at the top level: {}", r.body);
    let err = r.body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("`error` is not an object: {}", r.body));
    assert_eq!(
        r.body["error"]["code"], code,
        "error code; body: {}",
        r.body
    );
    assert!(
        err.get("message")
            .and_then(Value::as_str)
            .is_some_and(|m| !m.trim().is_empty()),
        "error message must be a non-empty sentence: {}",
        r.body
    );
    for k in err.keys() {
        assert!(
            ["code", "message", "details"].contains(&k.as_str()),
            "unexpected key `{k}` in error: {}",
            r.body
        );
    }
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    assert!(ct.starts_with("application/json"), "content-type `{ct}`");
}

/// The `ETag` header as a version number.
#[track_caller]
fn etag(r: &Reply) -> u64 {
    let raw = r
        .headers
        .get("etag")
        .unwrap_or_else(|| panic!("no ETag header; body: {}", r.body))
        .to_str()
        .expect("ascii ETag");
    raw.trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .unwrap_or_else(|_| panic!("ETag `{raw}` is not a version"))
}

/// Asserts the `ETag` equals the body's `version`.
#[track_caller]
fn assert_etag_is_version(r: &Reply) {
    let v = r.body["version"]
        .as_u64()
        .unwrap_or_else(|| panic!("no version in {}", r.body));
    assert_eq!(etag(r), v, "ETag must equal the version; body: {}", r.body);
}

/// Walks a list with `limit` until `next_cursor` is null; returns every item
/// and the number of pages.
async fn walk(app: &TestApp, path: &str, token: &str, limit: usize) -> (Vec<Value>, usize) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("{path}{sep}limit={limit}&cursor={c}"),
            None => format!("{path}{sep}limit={limit}"),
        };
        let r = app.get(&url, token).await;
        assert_eq!(r.status, StatusCode::OK, "GET {url}: {}", r.body);
        let page = r.body["items"].as_array().expect("items").clone();
        assert!(page.len() <= limit, "page larger than limit at {url}");
        pages += 1;
        items.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => {
                assert!(r.body["next_cursor"].is_null(), "{}", r.body);
                break;
            }
        }
        assert!(pages < 1000, "paging never ends at {path}");
    }
    (items, pages)
}

fn ids(items: &[Value], field: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[field].as_str().expect("id field").to_string())
        .collect()
}

async fn history(app: &TestApp, deal: &str, token: &str) -> Vec<Value> {
    let r = app.get(&format!("/v1/deals/{deal}/history"), token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

/// Adds a communication record now (what the quote-late guard asks for).
async fn record(app: &TestApp, token: &str, customer: &str) -> Value {
    app.ok(
        &format!("/v1/customers/{customer}/records"),
        token,
        json!({"kind": "visit", "summary": "Met the fleet manager"}),
    )
    .await
}

/// Moves a deal and asserts the move succeeded.
async fn must_move(app: &TestApp, token: &str, deal: &str, body: Value) -> Reply {
    let r = app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            token,
            body.clone(),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::OK,
        "move {body} of {deal}: {}",
        r.body
    );
    r
}

/// Every protected route, with a plausible body, for auth and header checks.
fn protected_routes() -> Vec<(Method, &'static str, Option<Value>)> {
    let any = Some(json!({}));
    vec![
        (Method::POST, "/v1/tokens", any.clone()),
        (Method::GET, "/v1/tokens", None),
        (Method::DELETE, "/v1/tokens/tok_x", None),
        (Method::POST, "/v1/admin/backup", any.clone()),
        (Method::GET, "/v1/admin/backup", None),
        (Method::POST, "/v1/branches", any.clone()),
        (Method::GET, "/v1/branches", None),
        (Method::GET, "/v1/branches/sh", None),
        (Method::GET, "/v1/branches/sh/pipeline", None),
        (Method::PUT, "/v1/branches/sh/pipeline", any.clone()),
        (Method::POST, "/v1/brands", any.clone()),
        (Method::GET, "/v1/brands", None),
        (Method::GET, "/v1/brands/volvo", None),
        (Method::POST, "/v1/fx-rates", any.clone()),
        (Method::GET, "/v1/fx-rates", None),
        (Method::POST, "/v1/customers", any.clone()),
        (Method::GET, "/v1/customers", None),
        (Method::GET, "/v1/customers/cus_x", None),
        (Method::PATCH, "/v1/customers/cus_x", any.clone()),
        (Method::POST, "/v1/customers/cus_x/records", any.clone()),
        (Method::GET, "/v1/customers/cus_x/records", None),
        (Method::POST, "/v1/deals", any.clone()),
        (Method::GET, "/v1/deals", None),
        (Method::GET, "/v1/deals/deal_x", None),
        (Method::PATCH, "/v1/deals/deal_x", any.clone()),
        (Method::POST, "/v1/deals/deal_x/transitions", any),
        (Method::GET, "/v1/deals/deal_x/history", None),
    ]
}

/// Every list route (path, a token that may read it).
fn list_routes(w: &World) -> Vec<String> {
    vec![
        "/v1/tokens".into(),
        "/v1/branches".into(),
        "/v1/brands".into(),
        "/v1/fx-rates".into(),
        "/v1/customers".into(),
        format!("/v1/customers/{}/records", w.customer),
        "/v1/deals".into(),
    ]
}

// ---------------------------------------------------------------------------
// Operations: /healthz, /metrics, /openapi.json
// ---------------------------------------------------------------------------

#[tokio::test]
async fn healthz_answers_ok_without_a_token() {
    // Given a fresh server
    let app = TestApp::new().await;
    // When anyone asks for its health
    let r = app.send(Method::GET, "/healthz", None, None).await;
    // Then it is 200 with status ok
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ok"}));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_transitions_by_stage() {
    // Given a server that served a few requests and moved a deal
    let w = world().await;
    let app = &w.app;
    assert_eq!(app.get("/v1/brands", ADMIN).await.status, StatusCode::OK);
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    must_move(app, &w.rep, &deal, json!({"to": "qualify"})).await;

    // When an in-process caller reads /metrics (no token needed)
    let r = app.send(Method::GET, "/metrics", None, None).await;

    // Then it is Prometheus text naming the routes and the transition
    assert_eq!(r.status, StatusCode::OK);
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = r.body.as_str().expect("text body");
    assert!(
        text.contains("# TYPE dealflow_http_requests counter"),
        "{text}"
    );
    assert!(
        text.contains(
            "dealflow_http_requests_total{method=\"GET\",route=\"/v1/brands\",status=\"200\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("dealflow_transitions_total{branch=\"sh\",stage=\"qualify\"} 1"),
        "{text}"
    );
}

#[tokio::test]
async fn openapi_document_lists_every_route() {
    // Given a server
    let app = TestApp::new().await;
    // When anyone reads the OpenAPI document
    let r = app.send(Method::GET, "/openapi.json", None, None).await;
    // Then it is JSON and names every served route with its methods
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3."));
    let paths = r.body["paths"].as_object().expect("paths");
    let expected: &[(&str, &[&str])] = &[
        ("/healthz", &["get"]),
        ("/metrics", &["get"]),
        ("/v1/tokens", &["get", "post"]),
        ("/v1/tokens/{id}", &["delete"]),
        ("/v1/admin/backup", &["get", "post"]),
        ("/v1/branches", &["get", "post"]),
        ("/v1/branches/{id}", &["get"]),
        ("/v1/branches/{id}/pipeline", &["get", "put"]),
        ("/v1/brands", &["get", "post"]),
        ("/v1/brands/{id}", &["get"]),
        ("/v1/fx-rates", &["get", "post"]),
        ("/v1/fx-rates/{currency}/{date}", &["get", "put"]),
        ("/v1/customers", &["get", "post"]),
        ("/v1/customers/{id}", &["get", "patch"]),
        ("/v1/customers/{id}/records", &["get", "post"]),
        ("/v1/deals", &["get", "post"]),
        ("/v1/deals/{id}", &["get", "patch"]),
        ("/v1/deals/{id}/transitions", &["post"]),
        ("/v1/deals/{id}/history", &["get"]),
        ("/v1/deals/{id}/cancel", &["post"]),
        ("/v1/settlements", &["get", "post"]),
        ("/v1/settlements/{id}", &["get"]),
        ("/v1/settlements/{id}/approve", &["post"]),
        ("/v1/settlements/{id}/pay", &["post"]),
        ("/v1/statements", &["get"]),
        ("/v1/policies/{name}/versions/{version}/simulate", &["post"]),
        ("/v1/policies/{name}/versions/{version}", &["get"]),
        ("/v1/branches/{id}/retier", &["post"]),
        ("/v1/customers/{id}/history", &["get"]),
        ("/v1/customers/{id}/records/{record}", &["get", "patch"]),
        ("/v1/customers/{id}/records/{record}/revisions", &["get"]),
        ("/v1/records", &["get"]),
        ("/v1/followups", &["get"]),
        ("/v1/tasks", &["get"]),
        ("/v1/tasks/{id}", &["get"]),
        ("/v1/events", &["get"]),
        ("/v1/tasks/{id}/complete", &["post"]),
        ("/v1/tasks/{id}/dismiss", &["post"]),
        ("/v1/reports/team", &["get"]),
        ("/v1/reports/referrals", &["get"]),
        ("/v1/reports/pipeline", &["get"]),
        ("/v1/sessions", &["post"]),
        ("/v1/sessions/current", &["get", "delete"]),
        ("/v1/jobs", &["get"]),
        ("/v1/jobs/{id}", &["get"]),
    ];
    for (path, methods) in expected {
        let item = paths
            .get(*path)
            .unwrap_or_else(|| panic!("{path} missing from the OpenAPI document"));
        for m in *methods {
            assert!(item.get(*m).is_some(), "{m} {path} missing");
        }
    }
}

// ---------------------------------------------------------------------------
// Tokens and authentication
// ---------------------------------------------------------------------------

#[tokio::test]
async fn admin_issues_tokens_that_authenticate() {
    // Given a branch
    let app = TestApp::new().await;
    app.branch("sh").await;

    // When the admin issues a rep token
    let r = app
        .post(
            "/v1/tokens",
            ADMIN,
            json!({"role": "rep", "branch": "sh", "user": "li"}),
        )
        .await;

    // Then it is 201 with the secret, shown once, and the grant
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let token = r.str("token");
    assert!(token.len() >= 16, "token too short: {token}");
    assert_eq!(r.body["role"], "rep");
    assert_eq!(r.body["branch"], "sh");
    assert_eq!(r.body["user"], "li");
    // And the token works as a bearer token, scoped to its branch
    let b = app.get("/v1/branches", &token).await;
    assert_eq!(b.status, StatusCode::OK);
    assert_eq!(ids(b.body["items"].as_array().unwrap(), "id"), vec!["sh"]);

    // And an admin token (no branch) works too
    let admin2 = app
        .ok(
            "/v1/tokens",
            ADMIN,
            json!({"role": "admin", "user": "root2"}),
        )
        .await;
    let t2 = admin2["token"].as_str().unwrap();
    assert_eq!(
        app.post("/v1/branches", t2, json!({"id": "bj", "name": "Beijing"}))
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn token_requests_are_validated() {
    // Given a branch
    let app = TestApp::new().await;
    app.branch("sh").await;
    let cases = [
        // (body, status, code)
        (
            json!({"role": "rep", "user": "li"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"role": "admin", "branch": "sh", "user": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"role": "manager", "branch": "nowhere", "user": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_reference",
        ),
        (
            json!({"role": "rep", "branch": "sh", "user": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (
            json!({"role": "king", "branch": "sh", "user": "x"}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            json!({"role": "rep", "branch": "sh", "user": "x", "expires": 1}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
    ];
    for (body, status, code) in cases {
        // When the admin asks for such a token
        let r = app.post("/v1/tokens", ADMIN, body.clone()).await;
        // Then it is refused with the error body
        assert_error(&r, status, code);
    }
}

/// An RFC 3339 time of a body, parsed (so the comparison does not depend on
/// how many fractional digits are printed).
fn instant(v: &Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an RFC 3339 time: {v}"))
}

/// Issues a token as the admin; returns its body (`id`, `token`, …).
async fn issue(app: &TestApp, body: Value) -> Value {
    app.ok("/v1/tokens", ADMIN, body).await
}

/// The id of `user`'s only token, as the admin lists it.
async fn token_id(app: &TestApp, user: &str) -> String {
    let r = app.get(&format!("/v1/tokens?user={user}"), ADMIN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "one token of {user}: {}", r.body);
    items[0]["id"].as_str().expect("id").to_string()
}

async fn revoke(app: &TestApp, id: &str, token: &str) -> Reply {
    app.send(
        Method::DELETE,
        &format!("/v1/tokens/{id}"),
        Some(token),
        None,
    )
    .await
}

#[tokio::test]
async fn tokens_are_listed_without_secrets_and_a_revoked_one_stops_working_at_once() {
    // Given a branch with a rep and a manager, and a second branch's rep
    let w = world().await;
    let app = &w.app;
    app.branch("bj").await;
    let bj_rep = app.token("rep", Some("bj"), "zhou").await;
    // (whose tokens have been used, so they sit in the server's cache)
    for t in [&w.rep, &w.mgr, &bj_rep] {
        assert_eq!(app.get("/v1/customers", t).await.status, StatusCode::OK);
    }

    // When the admin lists tokens
    let r = app.get("/v1/tokens", ADMIN).await;

    // Then every holder is there with id, role, branch, user, times and status
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    let users: BTreeSet<&str> = items.iter().map(|t| t["user"].as_str().unwrap()).collect();
    assert_eq!(users, BTreeSet::from(["admin", "li", "wang", "zhou"]));
    let li = items.iter().find(|t| t["user"] == "li").unwrap();
    assert!(li["id"].as_str().unwrap().starts_with("tok_"), "{li}");
    assert_eq!(
        (&li["role"], &li["branch"], &li["status"]),
        (&json!("rep"), &json!("sh"), &json!("active"))
    );
    assert!(li["created_at"].as_str().unwrap().ends_with('Z'), "{li}");
    assert_eq!(li["expires_at"], Value::Null);
    assert!(li["last_used_at"].is_string(), "used just now: {li}");
    // And no secret and no hash appears anywhere in the list
    let text = r.body.to_string();
    for secret in [ADMIN, &w.rep, &w.mgr, &bj_rep] {
        assert!(!text.contains(secret), "a secret is listed: {text}");
        let hash = dealflow::auth::hash_token(secret);
        assert!(!text.contains(&hash), "a hash is listed: {text}");
    }
    // And filters and paging work like other lists
    let r = app.get("/v1/tokens?branch=sh&user=li", ADMIN).await;
    assert_eq!(ids(r.body["items"].as_array().unwrap(), "user"), vec!["li"]);
    let first = app.get("/v1/tokens?limit=1", ADMIN).await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    let cursor = first.str("next_cursor");
    let second = app
        .get(&format!("/v1/tokens?limit=1&cursor={cursor}"), ADMIN)
        .await;
    assert_ne!(second.body["items"][0]["id"], first.body["items"][0]["id"]);
    // And a manager sees only their branch's reps' tokens; a rep may not list
    let r = app.get("/v1/tokens", &w.mgr).await;
    assert_eq!(ids(r.body["items"].as_array().unwrap(), "user"), vec!["li"]);
    assert_error(
        &app.get("/v1/tokens?branch=bj", &w.mgr).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &app.get("/v1/tokens", &w.rep).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );

    // When the manager revokes the rep's token
    let li_id = li["id"].as_str().unwrap().to_string();
    let r = revoke(app, &li_id, &w.mgr).await;

    // Then the revocation is recorded with who and when
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "revoked");
    assert_eq!(r.body["revoked_by"], "wang");
    assert!(r.body["revoked_at"].is_string(), "{}", r.body);
    let revoked_at = r.body["revoked_at"].clone();
    // And the very next request with it is 401, saying it was revoked
    let r = app.get("/v1/customers", &w.rep).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{}",
        r.body
    );
    // And lists show it revoked; `status=active` leaves it out
    let r = app.get("/v1/tokens?user=li", ADMIN).await;
    assert_eq!(r.body["items"][0]["status"], "revoked");
    let r = app.get("/v1/tokens?branch=sh&status=active", ADMIN).await;
    assert_eq!(
        ids(r.body["items"].as_array().unwrap(), "user"),
        vec!["wang"]
    );
    // And revoking it again changes nothing
    let again = revoke(app, &li_id, ADMIN).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(
        (&again.body["revoked_by"], &again.body["revoked_at"]),
        (&json!("wang"), &revoked_at)
    );

    // When a manager or rep reaches beyond their scope, or the id is unknown
    let wang = token_id(app, "wang").await;
    let zhou = token_id(app, "zhou").await;
    let admin = token_id(app, "admin").await;
    for (id, token, status) in [
        (wang.as_str(), w.mgr.as_str(), StatusCode::FORBIDDEN),
        (&admin, &w.mgr, StatusCode::FORBIDDEN),
        (&zhou, &w.mgr, StatusCode::FORBIDDEN),
        (&zhou, &bj_rep, StatusCode::FORBIDDEN),
        ("tok_unknown", ADMIN, StatusCode::NOT_FOUND),
    ] {
        // Then it is refused and the token still works
        let r = revoke(app, id, token).await;
        assert_eq!(r.status, status, "revoke {id}: {}", r.body);
    }
    for t in [&w.mgr, &bj_rep, ADMIN] {
        assert_eq!(app.get("/v1/branches", t).await.status, StatusCode::OK);
    }

    // And after a restart the revocation still holds, and the last uses
    // noted before it were stored
    let app = TestApp::reopen(w.app.close().await).await;
    let r = app.get("/v1/tokens?user=wang", ADMIN).await;
    assert!(r.body["items"][0]["last_used_at"].is_string(), "{}", r.body);
    let r = app.get("/v1/customers", &w.rep).await;
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let r = app.get("/v1/tokens?user=li", ADMIN).await;
    assert_eq!(r.body["items"][0]["revoked_by"], "wang");
    assert_eq!(
        app.get("/v1/customers", &w.mgr).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_expired_token_is_refused_with_a_message_saying_it_expired() {
    // Given a rep token that expires in three seconds
    let w = world().await;
    let app = &w.app;
    let expires = (chrono::Utc::now() + chrono::Duration::seconds(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let issued = issue(
        app,
        json!({"role": "rep", "branch": "sh", "user": "temp", "expires_at": expires}),
    )
    .await;
    assert_eq!(instant(&issued["expires_at"]), instant(&json!(expires)));
    let token = issued["token"].as_str().unwrap();
    // (it works until then)
    assert_eq!(app.get("/v1/customers", token).await.status, StatusCode::OK);

    // When it is used after that time (polled, bounded)
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let r = loop {
        let r = app.get("/v1/customers", token).await;
        if r.status != StatusCode::OK || std::time::Instant::now() > deadline {
            break r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };

    // Then it is 401 and the message says it expired
    assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("expired"), "{message}");
    // And lists show it expired
    let r = app.get("/v1/tokens?user=temp", ADMIN).await;
    assert_eq!(r.body["items"][0]["status"], "expired");
}

#[tokio::test]
async fn a_token_expiring_in_the_past_or_at_a_malformed_time_is_refused() {
    // Given a branch
    let w = world().await;
    for (expires, status, code, field) in [
        (
            json!("2020-01-01T00:00:00Z"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "expires_at",
        ),
        (
            json!("tomorrow"),
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "expires_at",
        ),
    ] {
        // When the admin asks for a token expiring then
        let r = w
            .app
            .post(
                "/v1/tokens",
                ADMIN,
                json!({"role": "rep", "branch": "sh", "user": "x", "expires_at": expires}),
            )
            .await;
        // Then it is refused, naming the field, and no token is issued
        assert_error(&r, status, code);
        let details = &r.body["error"]["details"];
        assert!(
            details["field"] == field || details["path"] == field,
            "{}",
            r.body
        );
    }
    let r = w.app.get("/v1/tokens?user=x", ADMIN).await;
    assert_eq!(r.body["items"], json!([]));
}

#[tokio::test]
async fn the_admin_token_is_rotated_without_a_restart_and_stays_revoked_after_one() {
    // Given a server with data, started with DEALFLOW_ADMIN_TOKEN = ADMIN
    let w = world().await;
    let app = &w.app;
    let old = token_id(app, "admin").await;

    // When the admin revokes the only admin token
    let r = revoke(app, &old, ADMIN).await;
    // Then it is refused, so nobody locks the server out
    assert_error(&r, StatusCode::CONFLICT, "last_admin_token");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("last active admin token"));
    assert_eq!(app.get("/v1/branches", ADMIN).await.status, StatusCode::OK);

    // When the admin issues a new admin token and revokes the old one with it
    let new = issue(app, json!({"role": "admin", "user": "root"})).await;
    let new_token = new["token"].as_str().unwrap().to_string();
    let r = revoke(app, &old, &new_token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Then the old one is refused at once, the new one does everything
    assert_error(
        &app.get("/v1/branches", ADMIN).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    app.ok(
        "/v1/branches",
        &new_token,
        json!({"id": "bj", "name": "Beijing"}),
    )
    .await;
    // And the new one, now the last, cannot revoke itself
    let own = new["id"].as_str().unwrap();
    assert_error(
        &revoke(app, own, &new_token).await,
        StatusCode::CONFLICT,
        "last_admin_token",
    );

    // When the server restarts with the old token still in DEALFLOW_ADMIN_TOKEN
    let app = TestApp::reopen(w.app.close().await).await;

    // Then the old token is not reinstated, the new one works, no data is lost
    assert_error(
        &app.get("/v1/branches", ADMIN).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let branches = app.get("/v1/branches", &new_token).await;
    assert_eq!(
        ids(branches.body["items"].as_array().unwrap(), "id"),
        vec!["bj", "sh"]
    );
    let c = app
        .get(&format!("/v1/customers/{}", w.customer), &new_token)
        .await;
    assert_eq!(c.status, StatusCode::OK);
    assert_eq!(
        app.get("/v1/customers", &w.rep).await.status,
        StatusCode::OK
    );
    let r = app.get("/v1/tokens?user=admin", &new_token).await;
    assert_eq!(r.body["items"][0]["revoked_by"], "root");

    // When it restarts with a new secret in DEALFLOW_ADMIN_TOKEN
    let fresh = "a-brand-new-admin-secret-0123";
    let outcome = app.services.bootstrap_admin(Some(fresh)).await.unwrap();
    // Then that secret becomes an admin token beside the rotated one
    assert_eq!(outcome, dealflow::service::AdminBootstrap::FromEnv);
    assert_eq!(app.get("/v1/branches", fresh).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/v1/branches", &new_token).await.status,
        StatusCode::OK
    );
    assert_error(
        &app.get("/v1/branches", ADMIN).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn tokens_stored_before_token_ids_keep_working_and_get_an_id() {
    // Given a store written by a server before token ids: a rep token kept
    // under its hash only, without id or index
    let w = world().await;
    let dir = w.app.close().await;
    let secret = "dft_an-old-rep-token-0123456789";
    {
        let store = open_when_released(dir.path()).await;
        let mut batch = Batch::new();
        batch.put(
            keys::key(keys::TOKEN, &[&dealflow::auth::hash_token(secret)]),
            json!({"role": "rep", "branch": "sh", "user": "old",
                   "created_at": "2025-06-01T08:00:00Z"})
            .to_string(),
        );
        batch.put(keys::key(keys::META, &["schema"]), b"4".to_vec());
        store.commit(batch).await.unwrap();
        store.flush().unwrap();
    }

    // When the current server opens it
    let app = TestApp::reopen(dir).await;

    // Then the old token still works with its scope
    let r = app.get("/v1/customers", secret).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // And it is listed with an id of its own, under its branch too
    let r = app.get("/v1/tokens?branch=sh&user=old", ADMIN).await;
    let listed = &r.body["items"][0];
    assert!(
        listed["id"].as_str().unwrap().starts_with("tok_"),
        "{}",
        r.body
    );
    assert_eq!(
        instant(&listed["created_at"]),
        instant(&json!("2025-06-01T08:00:00Z"))
    );
    // And that id revokes it
    let id = listed["id"].as_str().unwrap();
    assert_eq!(revoke(&app, id, ADMIN).await.status, StatusCode::OK);
    assert_error(
        &app.get("/v1/customers", secret).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
}

#[tokio::test]
async fn a_backup_is_refused_to_non_admins_and_into_a_directory_it_could_spoil() {
    // Given a server with data, and places on disk
    let w = world().await;
    let places = tempfile::tempdir().expect("tempdir");
    let full = places.path().join("full");
    std::fs::create_dir(&full).unwrap();
    std::fs::write(full.join("keep.txt"), "someone's file").unwrap();
    let file = places.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let fresh = places.path().join("fresh");
    let path = |p: &std::path::Path| p.display().to_string();

    // When a manager or a rep asks for a backup
    for token in [&w.mgr, &w.rep] {
        let r = w
            .app
            .post("/v1/admin/backup", token, json!({"to": path(&fresh)}))
            .await;
        // Then it is 403 and nothing is written
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
        assert_error(
            &w.app.get("/v1/admin/backup", token).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    assert!(!fresh.exists());

    // When the admin names a directory that is not empty, a file, or a
    // relative path
    for (to, says) in [
        (path(&full), "not empty"),
        (path(&file), "not a directory"),
        ("backups/today".to_string(), "absolute path"),
        (String::new(), "absolute path"),
    ] {
        let r = w
            .app
            .post("/v1/admin/backup", ADMIN, json!({"to": to}))
            .await;
        // Then it is refused naming the field, and the place is left as it was
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], "to", "{}", r.body);
        assert!(
            r.body["error"]["message"].as_str().unwrap().contains(says),
            "{}",
            r.body
        );
    }
    assert_eq!(std::fs::read_dir(&full).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(full.join("keep.txt")).unwrap(),
        "someone's file"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");

    // When the admin backs up into a new directory
    let r = w
        .app
        .post("/v1/admin/backup", ADMIN, json!({"to": path(&fresh)}))
        .await;
    // Then it is 201 with the manifest written beside the data
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fresh.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(r.body["manifest"], manifest);
    assert!(manifest["keys"].as_u64().unwrap() > 0);
    // And nobody is backing up any more
    let status = w.app.get("/v1/admin/backup", ADMIN).await;
    assert_eq!(status.body["running"], false, "{}", status.body);
    // And a second backup into the same place is refused
    let r = w
        .app
        .post("/v1/admin/backup", ADMIN, json!({"to": path(&fresh)}))
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

#[tokio::test]
async fn every_protected_route_refuses_a_missing_or_bad_token_with_401() {
    // Given a server with data
    let w = world().await;
    for (method, path, body) in protected_routes() {
        let raw = body.map(|b| b.to_string().into_bytes());
        // When the request carries no token
        let r = w
            .app
            .send_raw(method.clone(), path, None, raw.clone(), &[])
            .await;
        // Then it is 401
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
        // When it carries an unknown token
        let r = w
            .app
            .send_raw(
                method.clone(),
                path,
                Some("not-a-real-token"),
                raw.clone(),
                &[],
            )
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
        // When the header is not a bearer token
        let r = w
            .app
            .send_raw(
                method.clone(),
                path,
                None,
                raw.clone(),
                &[("authorization", &format!("Basic {ADMIN}"))],
            )
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
        // When the bearer token is empty
        let r = w
            .app
            .send_raw(method, path, None, raw, &[("authorization", "Bearer ")])
            .await;
        assert_error(&r, StatusCode::UNAUTHORIZED, "unauthorized");
    }
}

// ---------------------------------------------------------------------------
// Branches and pipelines
// ---------------------------------------------------------------------------

#[tokio::test]
async fn branches_are_created_listed_and_read() {
    // Given a fresh server
    let app = TestApp::new().await;

    // When the admin creates a branch without and with a time zone
    let a = app
        .post(
            "/v1/branches",
            ADMIN,
            json!({"id": "sh", "name": "Shanghai"}),
        )
        .await;
    let b = app
        .post(
            "/v1/branches",
            ADMIN,
            json!({"id": "bj-2", "name": "Beijing", "timezone": "Asia/Shanghai"}),
        )
        .await;

    // Then both are 201 with their fields; the time zone defaults to UTC
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["id"], "sh");
    assert_eq!(a.body["name"], "Shanghai");
    assert_eq!(a.body["timezone"], "UTC");
    assert_eq!(a.body["version"], 1);
    assert!(a.body["created_at"].is_string());
    assert_etag_is_version(&a);
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    assert_eq!(b.body["timezone"], "Asia/Shanghai");

    // And they are listed and readable one by one
    let list = app.get("/v1/branches", ADMIN).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        ids(list.body["items"].as_array().unwrap(), "id"),
        vec!["bj-2", "sh"]
    );
    assert!(list.body["next_cursor"].is_null());
    let one = app.get("/v1/branches/bj-2", ADMIN).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, b.body);
    assert_etag_is_version(&one);
}

#[tokio::test]
async fn branch_creation_is_validated_and_ids_are_unique() {
    // Given a branch `sh`
    let app = TestApp::new().await;
    app.ok(
        "/v1/branches",
        ADMIN,
        json!({"id": "sh", "name": "Shanghai"}),
    )
    .await;

    // When it is created again under the same id
    let dup = app
        .post("/v1/branches", ADMIN, json!({"id": "sh", "name": "Other"}))
        .await;
    // Then 409 duplicate, and the original is unchanged
    assert_error(&dup, StatusCode::CONFLICT, "duplicate");
    assert_eq!(dup.body["error"]["details"]["id"], "sh");
    assert_eq!(
        app.get("/v1/branches/sh", ADMIN).await.body["name"],
        "Shanghai"
    );

    // When the time zone, id or name is invalid
    for (body, field) in [
        (
            json!({"id": "x1", "name": "X", "timezone": "Mars/Olympus"}),
            "timezone",
        ),
        (
            json!({"id": "x2", "name": "X", "timezone": "+08:00"}),
            "timezone",
        ),
        (json!({"id": "Upper", "name": "X"}), "id"),
        (json!({"id": "has space", "name": "X"}), "id"),
        (json!({"id": "a".repeat(41), "name": "X"}), "id"),
        (json!({"id": "x3", "name": "   "}), "name"),
    ] {
        let r = app.post("/v1/branches", ADMIN, body.clone()).await;
        // Then 422 naming the field, and nothing is created
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    let list = app.get("/v1/branches", ADMIN).await;
    assert_eq!(
        ids(list.body["items"].as_array().unwrap(), "id"),
        vec!["sh"]
    );
}

#[tokio::test]
async fn a_branch_starts_with_the_default_pipeline() {
    // Given a branch and one of its reps
    let w = world().await;
    // When the rep reads the branch pipeline
    let r = w.app.get("/v1/branches/sh/pipeline", &w.rep).await;
    // Then it is the default of docs/business-rules.md §4
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["branch"], "sh");
    assert_eq!(r.body["default"], true);
    assert_eq!(r.body["version"], 0);
    assert_etag_is_version(&r);
    let stages: Vec<(String, String)> = r.body["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["kind"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("lead", "open"),
        ("qualify", "open"),
        ("visit", "open"),
        ("quote", "open"),
        ("sign", "won"),
        ("lost", "lost"),
    ];
    assert_eq!(
        stages,
        expect
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
    );
    let moves: BTreeSet<(String, String)> = r.body["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["from"].as_str().unwrap().to_string(),
                m["to"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expect_moves = BTreeSet::new();
    for (f, t) in [
        ("lead", "qualify"),
        ("qualify", "visit"),
        ("visit", "quote"),
        ("quote", "sign"),
        ("lead", "lost"),
        ("qualify", "lost"),
        ("visit", "lost"),
        ("quote", "lost"),
    ] {
        expect_moves.insert((f.to_string(), t.to_string()));
    }
    assert_eq!(moves, expect_moves);
}

/// A branch-specific pipeline: new stage names, a different first stage.
fn custom_pipeline() -> Value {
    json!({
        "stages": [
            {"id": "prospect", "name": "Prospect"},
            {"id": "demo"},
            {"id": "won", "kind": "won"},
            {"id": "dropped", "kind": "lost"}
        ],
        "moves": [
            {"from": "prospect", "to": "demo"},
            {"from": "demo", "to": "won"},
            {"from": "prospect", "to": "dropped"},
            {"from": "demo", "to": "dropped"}
        ]
    })
}

#[tokio::test]
async fn a_branch_pipeline_can_be_replaced_and_orphaned_deals_still_move() {
    // Given deals of branch `sh` in lead, qualify (two) and visit
    let w = world().await;
    let app = &w.app;
    let in_lead = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    let mut in_qualify = Vec::new();
    for _ in 0..2 {
        let d = app.deal(&w.rep, &w.customer, "li", "volvo").await;
        must_move(app, &w.rep, &d, json!({"to": "qualify"})).await;
        in_qualify.push(d);
    }
    let in_visit = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    must_move(app, &w.rep, &in_visit, json!({"to": "qualify"})).await;
    must_move(app, &w.rep, &in_visit, json!({"to": "visit"})).await;

    // When the branch manager PUTs a pipeline without those stages
    let r = send_with(
        app,
        Method::PUT,
        "/v1/branches/sh/pipeline",
        &w.mgr,
        Some(custom_pipeline()),
        &[],
    )
    .await;

    // Then it is 200, version 1, no longer the default, and the deals left
    // in vanished stages are reported per stage
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["default"], false);
    assert_eq!(r.body["version"], 1);
    assert_etag_is_version(&r);
    assert_eq!(r.body["updated_by"], "wang");
    assert_eq!(
        r.body["orphaned"],
        json!([
            {"stage": "lead", "deals": 1},
            {"stage": "qualify", "deals": 2},
            {"stage": "visit", "deals": 1}
        ])
    );
    // And reading it gives the new definition
    let p = app.get("/v1/branches/sh/pipeline", &w.rep).await;
    assert_eq!(p.status, StatusCode::OK);
    assert_eq!(p.body["version"], 1);
    assert_eq!(p.body["stages"][0]["id"], "prospect");
    assert_eq!(p.body["stages"][0]["name"], "Prospect");
    assert_eq!(p.body["stages"].as_array().unwrap().len(), 4);

    // And an orphaned deal keeps its stage until moved
    let d = app
        .get(&format!("/v1/deals/{}", in_qualify[0]), &w.rep)
        .await;
    assert_eq!(d.body["stage"], "qualify");
    // And it may not jump to the won stage, but names where it may go
    let bad = app.move_to(&w.rep, &in_qualify[0], "won").await;
    assert_error(&bad, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition");
    assert_eq!(
        bad.body["error"]["details"]["allowed"],
        json!(["prospect", "demo", "dropped"])
    );
    // And it can move into an open stage of the new pipeline
    let moved = must_move(app, &w.rep, &in_qualify[0], json!({"to": "demo"})).await;
    assert_eq!(moved.body["stage"], "demo");
    must_move(app, &w.rep, &in_visit, json!({"to": "prospect"})).await;
    must_move(app, &w.rep, &in_lead, json!({"to": "dropped"})).await;
    // And then follows the new moves to the new won stage, which signs it
    let won = must_move(app, &w.rep, &in_qualify[0], json!({"to": "won"})).await;
    assert_eq!(won.body["stage"], "won");
    assert!(won.body["signed_at"].is_string(), "{}", won.body);
    // And a new deal starts in the new first stage
    let fresh = app
        .ok("/v1/deals", &w.rep, deal_body(&w.customer, "li", "volvo"))
        .await;
    assert_eq!(fresh["stage"], "prospect");
    // And a default-only move is now refused
    let r = app
        .move_to(&w.rep, fresh["id"].as_str().unwrap(), "qualify")
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition");
    assert_eq!(
        r.body["error"]["details"]["allowed"],
        json!(["demo", "dropped"])
    );
}

#[tokio::test]
async fn pipeline_replacement_honours_if_match_and_validates() {
    // Given branch `sh` with a custom pipeline (version 1)
    let w = world().await;
    let app = &w.app;
    let first = send_with(
        app,
        Method::PUT,
        "/v1/branches/sh/pipeline",
        ADMIN,
        Some(custom_pipeline()),
        &[("if-match", "\"0\"")],
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_eq!(first.body["orphaned"], json!([]));

    // When someone replaces it with the current version in If-Match
    let mut second_def = custom_pipeline();
    second_def["stages"][1]["name"] = json!("Demo drive");
    let second = send_with(
        app,
        Method::PUT,
        "/v1/branches/sh/pipeline",
        ADMIN,
        Some(second_def),
        &[("if-match", "\"1\"")],
    )
    .await;
    // Then it is 200 and version 2
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body["version"], 2);

    // When someone else replaces it with the stale version 1
    let stale = send_with(
        app,
        Method::PUT,
        "/v1/branches/sh/pipeline",
        &w.mgr,
        Some(json!({"stages": [{"id": "a"}, {"id": "b", "kind": "won"}],
                    "moves": [{"from": "a", "to": "b"}]})),
        &[("if-match", "\"1\"")],
    )
    .await;
    // Then 409 version_conflict and nothing changed
    assert_error(&stale, StatusCode::CONFLICT, "version_conflict");
    let now = app.get("/v1/branches/sh/pipeline", ADMIN).await;
    assert_eq!(now.body["version"], 2);
    assert_eq!(now.body["stages"][1]["name"], "Demo drive");

    // When a definition is incoherent
    let invalid = [
        (json!({"stages": [], "moves": []}), "stages"),
        (
            json!({"stages": [{"id": "a"}, {"id": "b"}], "moves": [{"from": "a", "to": "b"}]}),
            "stages",
        ),
        (
            json!({"stages": [{"id": "w", "kind": "won"}, {"id": "a"}], "moves": []}),
            "stages[0].kind",
        ),
        (
            json!({"stages": [{"id": "a"}, {"id": "a", "kind": "won"}], "moves": []}),
            "stages[1].id",
        ),
        (
            json!({"stages": [{"id": "a"}, {"id": "w", "kind": "won"}],
                   "moves": [{"from": "a", "to": "nowhere"}]}),
            "moves[0].to",
        ),
        (
            json!({"stages": [{"id": "a"}, {"id": "w", "kind": "won"}],
                   "moves": [{"from": "w", "to": "a"}]}),
            "moves[0].from",
        ),
        (
            json!({"stages": [{"id": "a"}, {"id": "w", "kind": "won"}],
                   "moves": [{"from": "a", "to": "a"}]}),
            "moves[0]",
        ),
        (
            json!({"stages": [{"id": "Bad Id"}, {"id": "w", "kind": "won"}], "moves": []}),
            "stages[0].id",
        ),
    ];
    for (def, field) in invalid {
        let r = send_with(
            app,
            Method::PUT,
            "/v1/branches/sh/pipeline",
            ADMIN,
            Some(def.clone()),
            &[],
        )
        .await;
        // Then 422 naming the field, and the pipeline is unchanged
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], field, "{def}");
    }
    assert_eq!(
        app.get("/v1/branches/sh/pipeline", ADMIN).await.body["version"],
        2
    );

    // When the stage kind is not one of open/won/lost
    let r = send_with(
        app,
        Method::PUT,
        "/v1/branches/sh/pipeline",
        ADMIN,
        Some(json!({"stages": [{"id": "a", "kind": "maybe"}], "moves": []})),
        &[],
    )
    .await;
    // Then it is a malformed body
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
}

#[tokio::test]
async fn a_signed_deal_stays_signed_when_its_won_stage_disappears() {
    // Given a signed deal in the default `sign` stage
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    for s in ["qualify", "visit"] {
        must_move(app, &w.rep, &deal, json!({"to": s})).await;
    }
    app.patch(
        &format!("/v1/deals/{deal}"),
        &w.rep,
        json!({"needs": ["3 cars"]}),
        None,
    )
    .await;
    record(app, &w.rep, &w.customer).await;
    for s in ["quote", "sign"] {
        must_move(app, &w.rep, &deal, json!({"to": s})).await;
    }
    // And the branch replaces its pipeline with one that has no `sign`
    let r = send_with(
        app,
        Method::PUT,
        "/v1/branches/sh/pipeline",
        ADMIN,
        Some(custom_pipeline()),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // When the rep tries to move the signed deal back into an open stage
    let r = app.move_to(&w.rep, &deal, "prospect").await;

    // Then it is refused: a signed contract is final
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition");
    let d = app.get(&format!("/v1/deals/{deal}"), &w.rep).await;
    assert_eq!(d.body["stage"], "sign");
    assert!(d.body["signed_at"].is_string());
}

// ---------------------------------------------------------------------------
// Brands and FX rates
// ---------------------------------------------------------------------------

#[tokio::test]
async fn brands_are_created_listed_and_read() {
    // Given a fresh server and a rep
    let app = TestApp::new().await;
    app.branch("sh").await;
    let rep = app.token("rep", Some("sh"), "li").await;

    // When the admin adds a brand
    let r = app
        .post(
            "/v1/brands",
            ADMIN,
            json!({"id": "volvo", "name": "Volvo", "introduced_at": "2026-01-01"}),
        )
        .await;

    // Then it is 201 and new (never sold)
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["id"], "volvo");
    assert_eq!(r.body["name"], "Volvo");
    assert_eq!(r.body["introduced_at"], "2026-01-01");
    assert_eq!(r.body["new"], true);
    assert!(r.body["first_signed_deal"].is_null());
    assert_etag_is_version(&r);
    // And anyone can list and read it
    let list = app.get("/v1/brands", &rep).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["items"], json!([r.body.clone()]));
    let one = app.get("/v1/brands/volvo", &rep).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, r.body);
    assert_etag_is_version(&one);

    // When the same id is added again
    let dup = app
        .post(
            "/v1/brands",
            ADMIN,
            json!({"id": "volvo", "name": "Other", "introduced_at": "2020-01-01"}),
        )
        .await;
    // Then 409 duplicate and the brand is unchanged
    assert_error(&dup, StatusCode::CONFLICT, "duplicate");
    assert_eq!(app.get("/v1/brands/volvo", &rep).await.body, r.body);

    // When the id or name is invalid
    for (body, field) in [
        (
            json!({"id": "Volvo!", "name": "V", "introduced_at": "2026-01-01"}),
            "id",
        ),
        (
            json!({"id": "v2", "name": "", "introduced_at": "2026-01-01"}),
            "name",
        ),
    ] {
        let r = app.post("/v1/brands", ADMIN, body).await;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], field);
    }
    // When the date is not a date
    let r = app
        .post(
            "/v1/brands",
            ADMIN,
            json!({"id": "v3", "name": "V", "introduced_at": "last year"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(r.body["error"]["details"]["path"], "introduced_at");
    // And nothing else was created
    assert_eq!(
        app.get("/v1/brands", &rep).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn fx_rates_are_recorded_normalised_and_listed_by_currency() {
    // Given a fresh server and a rep
    let app = TestApp::new().await;
    app.branch("sh").await;
    let rep = app.token("rep", Some("sh"), "li").await;

    // When the admin records rates as strings and as numbers
    let a = app
        .post(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "CNY", "date": "2026-01-01", "per_usd": "7.10"}),
        )
        .await;
    let b = app
        .post(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "CNY", "date": "2026-02-01", "per_usd": 7.25}),
        )
        .await;
    let c = app
        .post(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "EUR", "date": "2026-01-01", "per_usd": "0.92"}),
        )
        .await;

    // Then each is 201 with the rate as a normalised decimal string
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.body["currency"], "CNY");
    assert_eq!(a.body["date"], "2026-01-01");
    assert_eq!(a.body["per_usd"], "7.1");
    assert_eq!(b.status, StatusCode::CREATED, "{}", b.body);
    assert_eq!(b.body["per_usd"], "7.25");
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);

    // And anyone can list them by currency then date, or one currency
    let all = app.get("/v1/fx-rates", &rep).await;
    assert_eq!(all.status, StatusCode::OK);
    let got: Vec<(String, String)> = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["currency"].as_str().unwrap().into(),
                r["date"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("CNY".into(), "2026-01-01".into()),
            ("CNY".into(), "2026-02-01".into()),
            ("EUR".into(), "2026-01-01".into())
        ]
    );
    let eur = app.get("/v1/fx-rates?currency=EUR", &rep).await;
    assert_eq!(eur.status, StatusCode::OK);
    assert_eq!(eur.body["items"], json!([c.body.clone()]));

    // When the same currency and date is recorded again
    let dup = app
        .post(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "CNY", "date": "2026-01-01", "per_usd": "9"}),
        )
        .await;
    // Then 409 duplicate and the rate is unchanged
    assert_error(&dup, StatusCode::CONFLICT, "duplicate");
    let cny = app.get("/v1/fx-rates?currency=CNY", &rep).await;
    assert_eq!(cny.body["items"][0]["per_usd"], "7.1");

    // When the currency or rate is invalid
    for (body, field) in [
        (
            json!({"currency": "XYZ", "date": "2026-01-01", "per_usd": "1"}),
            "currency",
        ),
        (
            json!({"currency": "cny", "date": "2026-03-01", "per_usd": "1"}),
            "currency",
        ),
        (
            json!({"currency": "USD", "date": "2026-01-01", "per_usd": "1"}),
            "currency",
        ),
        (
            json!({"currency": "JPY", "date": "2026-01-01", "per_usd": "-150"}),
            "per_usd",
        ),
        (
            json!({"currency": "JPY", "date": "2026-01-01", "per_usd": "0"}),
            "per_usd",
        ),
        (
            json!({"currency": "JPY", "date": "2026-01-01", "per_usd": "1000000000000.5"}),
            "per_usd",
        ),
    ] {
        let r = app.post("/v1/fx-rates", ADMIN, body.clone()).await;
        // Then 422 naming the field
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    // When the rate is not a number at all
    let r = app
        .post(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "JPY", "date": "2026-01-01", "per_usd": "1e3"}),
        )
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    // And nothing else was recorded
    assert_eq!(
        app.get("/v1/fx-rates", &rep).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

// ---------------------------------------------------------------------------
// Customers and communication records
// ---------------------------------------------------------------------------

#[tokio::test]
async fn customers_are_created_read_listed_and_patched() {
    // Given a branch with a rep and a manager
    let w = world().await;
    let app = &w.app;

    // When the rep creates a customer without an owner
    let r = app
        .post(
            "/v1/customers",
            &w.rep,
            json!({"name": "Daqing Oilfield", "branch": "sh", "segment": "industrial",
                   "source": "referral", "referred_by": w.customer}),
        )
        .await;

    // Then it is 201 with id, tier, version; the rep keeps it
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.str("id");
    assert!(!id.is_empty());
    assert_eq!(r.body["name"], "Daqing Oilfield");
    assert_eq!(r.body["branch"], "sh");
    assert_eq!(r.body["owner"], "li");
    assert_eq!(r.body["segment"], "industrial");
    assert_eq!(r.body["source"], "referral");
    assert_eq!(r.body["referred_by"], w.customer.as_str());
    assert_eq!(r.body["tier"], "C");
    assert_eq!(r.body["version"], 1);
    assert_etag_is_version(&r);

    // And it can be read and is listed
    let one = app.get(&format!("/v1/customers/{id}"), &w.mgr).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, r.body);
    assert_etag_is_version(&one);
    let list = app.get("/v1/customers", &w.mgr).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        ids(list.body["items"].as_array().unwrap(), "id"),
        vec![w.customer.clone(), id.clone()]
    );
    let mine = app.get("/v1/customers?owner=li&branch=sh", &w.mgr).await;
    assert_eq!(mine.body["items"].as_array().unwrap().len(), 2);
    let tier_a = app.get("/v1/customers?tier=A", &w.mgr).await;
    assert_eq!(tier_a.body["items"], json!([]));

    // When the manager patches it with the current version
    let p = app
        .patch(
            &format!("/v1/customers/{id}"),
            &w.mgr,
            json!({"name": "Daqing Oil", "owner": "zhao", "segment": "government",
                   "referred_by": null, "reason": "zhao covers government accounts"}),
            Some(1),
        )
        .await;
    // Then 200 with the change and version 2
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert_eq!(p.body["name"], "Daqing Oil");
    assert_eq!(p.body["owner"], "zhao");
    assert_eq!(p.body["segment"], "government");
    assert!(p.body["referred_by"].is_null());
    assert_eq!(p.body["source"], "referral", "absent fields stay");
    assert_eq!(p.body["version"], 2);
    assert_etag_is_version(&p);
    // And owner filters follow the new owner
    let zhao = app.get("/v1/customers?owner=zhao", &w.mgr).await;
    assert_eq!(
        ids(zhao.body["items"].as_array().unwrap(), "id"),
        vec![id.clone()]
    );
    let li = app.get("/v1/customers?owner=li", &w.mgr).await;
    assert_eq!(
        ids(li.body["items"].as_array().unwrap(), "id"),
        vec![w.customer.clone()]
    );

    // When the owner is cleared with null
    let p = app
        .patch(
            &format!("/v1/customers/{id}"),
            &w.mgr,
            json!({"owner": null, "reason": "back to the pool"}),
            None,
        )
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.body["owner"].is_null());
    assert_eq!(p.body["version"], 3);
}

#[tokio::test]
async fn customers_are_searched_by_name_page_by_page() {
    // Given a branch with customers of several names (the world has one)
    let w = world().await;
    let app = &w.app;
    let mut ids = Vec::new();
    for name in [
        "Daqing Oilfield",
        "Shengli OILFIELD Services",
        "大庆油田",
        "Sinopec",
    ] {
        let r = app
            .post(
                "/v1/customers",
                &w.rep,
                json!({"name": name, "branch": "sh", "owner": "li",
                       "segment": "industrial", "source": "self_developed"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.str("id"));
    }

    // When the rep searches for "oilfield", one per page, to the last page
    let names = |r: &Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap().to_string())
            .collect()
    };
    let mut pages = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = app
            .get(
                &format!("/v1/customers?q=oilfield&limit=1&cursor={cursor}"),
                &w.rep,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        pages.push(names(&r));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
        assert!(pages.len() < 10, "the search does not end: {pages:?}");
    }

    // Then the pages hold exactly the two matches, in any case, in order
    let found: Vec<String> = pages.concat();
    assert_eq!(found, ["Daqing Oilfield", "Shengli OILFIELD Services"]);
    assert_eq!(
        pages[0],
        ["Daqing Oilfield"],
        "a page holds up to `limit` matches"
    );
    // And Chinese names and ids are found too, with last contact shown
    let r = app.get("/v1/customers?q=油田", &w.rep).await;
    assert_eq!(names(&r), ["大庆油田"]);
    assert!(r.body["items"][0].get("last_contact_at").is_some());
    let r = app
        .get(&format!("/v1/customers?q={}", ids[3]), &w.rep)
        .await;
    assert_eq!(names(&r), ["Sinopec"]);
    // And a blank search lists everyone, an overlong one is refused
    let all = app.get("/v1/customers?q=", &w.rep).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
    let long = "x".repeat(201);
    let r = app.get(&format!("/v1/customers?q={long}"), &w.rep).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn a_stale_customer_patch_is_a_409_and_changes_nothing() {
    // Given a customer at version 2
    let w = world().await;
    let app = &w.app;
    let path = format!("/v1/customers/{}", w.customer);
    let p = app
        .patch(&path, &w.rep, json!({"name": "ACME Ltd"}), Some(1))
        .await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let before = app.get(&path, &w.rep).await.body;

    // When someone patches with version 1
    let r = app
        .patch(&path, &w.mgr, json!({"name": "Lost update"}), Some(1))
        .await;

    // Then 409 version_conflict naming both versions, and nothing changed
    assert_error(&r, StatusCode::CONFLICT, "version_conflict");
    assert_eq!(r.body["error"]["details"]["expected"], 1);
    assert_eq!(r.body["error"]["details"]["current"], 2);
    assert_eq!(app.get(&path, &w.rep).await.body, before);

    // And the accepted If-Match spellings work: bare, quoted, weak
    for (i, tag) in ["2", "\"3\"", "W/\"4\""].iter().enumerate() {
        let r = send_with(
            app,
            Method::PATCH,
            &path,
            &w.rep,
            Some(json!({"name": format!("ACME {i}")})),
            &[("if-match", tag)],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "If-Match {tag}: {}", r.body);
    }
    // And a garbage If-Match is a malformed request that changes nothing
    let r = send_with(
        app,
        Method::PATCH,
        &path,
        &w.rep,
        Some(json!({"name": "garbage"})),
        &[("if-match", "yesterday")],
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_header");
    assert_eq!(app.get(&path, &w.rep).await.body["name"], "ACME 2");
}

#[tokio::test]
async fn customer_bodies_are_validated() {
    // Given a branch and a second branch with a customer
    let w = world().await;
    let app = &w.app;
    app.branch("bj").await;
    let other = app.customer(ADMIN, "bj", "zhao").await;
    let base = json!({"name": "X", "branch": "sh", "segment": "enterprise",
                      "source": "self_developed"});
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let cases = [
        (
            with("branch", json!("nowhere")),
            "unknown_reference",
            "branch",
        ),
        (
            with("referred_by", json!("cus_nope")),
            "unknown_reference",
            "referred_by",
        ),
        (
            with("referred_by", json!(other)),
            "unknown_reference",
            "referred_by",
        ),
        (with("name", json!("  ")), "validation_failed", "name"),
        (with("owner", json!(" li ")), "validation_failed", "owner"),
    ];
    for (body, code, field) in cases {
        // When the admin creates such a customer
        let r = app.post("/v1/customers", ADMIN, body.clone()).await;
        // Then 422 naming the field
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    for (body, path) in [
        (with("segment", json!("alien")), "segment"),
        (with("source", json!("door-to-door")), "source"),
        (with("nickname", json!("x")), "."),
    ] {
        let r = app.post("/v1/customers", ADMIN, body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
        if path != "." {
            assert_eq!(r.body["error"]["details"]["path"], path, "{body}");
        }
    }
    // And a customer cannot refer itself
    let r = app
        .patch(
            &format!("/v1/customers/{}", w.customer),
            ADMIN,
            json!({"referred_by": w.customer}),
            None,
        )
        .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // And nothing was created in `sh`
    let list = app.get("/v1/customers?branch=sh", ADMIN).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn communication_records_are_added_and_listed_in_time_order() {
    // Given a customer
    let w = world().await;
    let app = &w.app;
    let path = format!("/v1/customers/{}/records", w.customer);

    // When the rep records a recent visit, then imports an older call
    let visit = app
        .post(
            &path,
            &w.rep,
            json!({"kind": "visit", "summary": "Test drive", "contact": "Mr Wu",
                   "feedback": "Likes the safety record", "problems": "Budget",
                   "next_steps": "Send a quote"}),
        )
        .await;
    let call = app
        .post(
            &path,
            &w.rep,
            json!({"at": "2025-03-15T09:30:00Z", "kind": "call", "summary": "First call"}),
        )
        .await;

    // Then each is 201 with the fields, author and time
    assert_eq!(visit.status, StatusCode::CREATED, "{}", visit.body);
    assert_etag_is_version(&visit);
    assert_eq!(visit.body["customer_id"], w.customer.as_str());
    assert_eq!(visit.body["branch"], "sh");
    assert_eq!(visit.body["by"], "li");
    assert_eq!(visit.body["kind"], "visit");
    assert_eq!(visit.body["contact"], "Mr Wu");
    assert_eq!(visit.body["feedback"], "Likes the safety record");
    assert_eq!(visit.body["problems"], "Budget");
    assert_eq!(visit.body["next_steps"], "Send a quote");
    assert!(visit.body["at"].is_string());
    assert_eq!(call.status, StatusCode::CREATED, "{}", call.body);
    assert_eq!(call.body["at"], "2025-03-15T09:30:00.000Z");

    // And the list is in business-time order (the imported call first)
    let list = app.get(&path, &w.mgr).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(
        ids(list.body["items"].as_array().unwrap(), "id"),
        vec![call.str("id"), visit.str("id")]
    );
    // And the customer's last contact is the latest record
    let c = app
        .get(&format!("/v1/customers/{}", w.customer), &w.rep)
        .await;
    assert_eq!(c.body["last_contact_at"], visit.body["at"]);

    // When a manager records a contact on a rep's behalf
    let by = app
        .post(
            &path,
            &w.mgr,
            json!({"by": "li", "kind": "meeting", "summary": "Joint meeting"}),
        )
        .await;
    assert_eq!(by.status, StatusCode::CREATED, "{}", by.body);
    assert_eq!(by.body["by"], "li");
    assert_eq!(by.body["created_by"], "wang");
}

#[tokio::test]
async fn record_bodies_are_validated() {
    // Given a customer with no records
    let w = world().await;
    let app = &w.app;
    let path = format!("/v1/customers/{}/records", w.customer);
    for (body, field) in [
        (json!({"kind": "visit", "summary": "x", "at": FUTURE}), "at"),
        (json!({"kind": "visit", "summary": "   "}), "summary"),
        (
            json!({"kind": "visit", "summary": "x", "at": "1960-01-01T00:00:00Z"}),
            "at",
        ),
    ] {
        // When such a record is posted
        let r = app.post(&path, &w.rep, body.clone()).await;
        // Then 422 naming the field
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    for body in [
        json!({"kind": "telepathy", "summary": "x"}),
        json!({"summary": "x"}),
        json!({"kind": "call", "summary": "x", "at": "yesterday"}),
        json!({"kind": "call", "summary": "x", "mood": "good"}),
    ] {
        let r = app.post(&path, &w.rep, body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    }
    // And no record was added
    assert_eq!(app.get(&path, &w.rep).await.body["items"], json!([]));
}

// ---------------------------------------------------------------------------
// Deals
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_deal_is_opened_read_and_listed() {
    // Given a customer and two brands
    let w = world().await;
    let app = &w.app;
    app.brand("byd").await;

    // When the rep opens a deal with amounts as strings and numbers
    let r = app
        .post(
            "/v1/deals",
            &w.rep,
            json!({"customer_id": w.customer, "title": "Fleet of 3", "owner": "li",
            "currency": "CNY", "needs": "safety first", "prepayment_ratio": "0.30",
            "opened_at": "2025-06-01T08:00:00Z",
            "lines": [
                {"brand": "volvo", "product": "XC90", "amount": "600000.00", "cost": "500000"},
                {"brand": "byd", "product": "Han", "amount": 10000.01, "cost": 0}
            ]}),
        )
        .await;

    // Then it is 201 in the first stage, not signed, totals as decimal strings
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_etag_is_version(&r);
    let id = r.str("id");
    assert!(!id.is_empty());
    assert_eq!(r.body["stage"], "lead");
    assert_eq!(r.body["version"], 1);
    assert!(r.body["signed_at"].is_null());
    assert_eq!(r.body["branch"], "sh");
    assert_eq!(r.body["owner"], "li");
    assert_eq!(r.body["currency"], "CNY");
    assert_eq!(r.body["needs"], json!(["safety first"]));
    assert_eq!(r.body["prepayment_ratio"], "0.3");
    assert_eq!(r.body["opened_at"], "2025-06-01T08:00:00.000Z");
    assert_eq!(r.body["lines"][0]["amount"], "600000");
    assert_eq!(r.body["lines"][1]["amount"], "10000.01");
    assert_eq!(r.body["lines"][1]["cost"], "0");
    assert_eq!(r.body["amount_total"], "610000.01");
    assert_eq!(r.body["cost_total"], "500000");

    // And it can be read and listed, also by stage, owner and customer
    let one = app.get(&format!("/v1/deals/{id}"), &w.rep).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body, r.body);
    assert_etag_is_version(&one);
    for q in [
        "",
        "?stage=lead",
        "?owner=li",
        "?branch=sh",
        &format!("?customer_id={}", w.customer),
    ] {
        let list = app.get(&format!("/v1/deals{q}"), &w.mgr).await;
        assert_eq!(list.status, StatusCode::OK, "{q}");
        assert_eq!(list.body["items"], json!([r.body.clone()]), "{q}");
    }
    for q in ["?stage=sign", "?owner=zhao", "?customer_id=cus_nope"] {
        let list = app.get(&format!("/v1/deals{q}"), &w.mgr).await;
        assert_eq!(list.status, StatusCode::OK, "{q}");
        assert_eq!(list.body["items"], json!([]), "{q}");
    }
}

#[tokio::test]
async fn deal_bodies_are_validated_and_nothing_is_created() {
    // Given a customer
    let w = world().await;
    let app = &w.app;
    let base = deal_body(&w.customer, "li", "volvo");
    let with = |k: &str, v: Value| {
        let mut b = base.clone();
        b[k] = v;
        b
    };
    let line = |amount: Value, cost: Value| json!([{"brand": "volvo", "product": "XC90", "amount": amount, "cost": cost}]);
    let cases = [
        (
            with("lines", line(json!("-1"), json!("0"))),
            "validation_failed",
            "lines[0].amount",
        ),
        (
            with("lines", line(json!(-5), json!("0"))),
            "validation_failed",
            "lines[0].amount",
        ),
        (
            with("lines", line(json!("0"), json!("0"))),
            "validation_failed",
            "lines[0].amount",
        ),
        (
            with("lines", line(json!("1000000000000.01"), json!("0"))),
            "validation_failed",
            "lines[0].amount",
        ),
        (
            with("lines", line(json!("2000000000000"), json!("0"))),
            "validation_failed",
            "lines[0].amount",
        ),
        (
            with("lines", line(json!("1.0000001"), json!("0"))),
            "validation_failed",
            "lines[0].amount",
        ),
        (
            with("lines", line(json!("1"), json!("-1"))),
            "validation_failed",
            "lines[0].cost",
        ),
        (with("lines", json!([])), "validation_failed", "lines"),
        (
            with(
                "lines",
                json!([{"brand": "tesla", "product": "Y", "amount": "1", "cost": "1"}]),
            ),
            "unknown_reference",
            "lines[0].brand",
        ),
        (
            with("customer_id", json!("cus_nope")),
            "unknown_reference",
            "customer_id",
        ),
        (
            with("currency", json!("XYZ")),
            "validation_failed",
            "currency",
        ),
        (
            with("currency", json!("cny")),
            "validation_failed",
            "currency",
        ),
        (
            with("prepayment_ratio", json!("1.5")),
            "validation_failed",
            "prepayment_ratio",
        ),
        (
            with("prepayment_ratio", json!(-0.1)),
            "validation_failed",
            "prepayment_ratio",
        ),
        (
            with("opened_at", json!(FUTURE)),
            "validation_failed",
            "opened_at",
        ),
        (with("title", json!("")), "validation_failed", "title"),
        (with("owner", json!("")), "validation_failed", "owner"),
    ];
    for (body, code, field) in cases {
        // When such a deal is opened
        let r = app.post("/v1/deals", &w.mgr, body.clone()).await;
        // Then 422 naming the field
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, code);
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    // When a field has the wrong type or is unknown
    for (body, path) in [
        (with("lines", json!("XC90")), "lines"),
        (
            with("lines", line(json!(true), json!("0"))),
            "lines[0].amount",
        ),
        (
            with("lines", line(json!("1e6"), json!("0"))),
            "lines[0].amount",
        ),
        (with("title", json!(42)), "title"),
        (with("opened_at", json!("June")), "opened_at"),
        (with("discount", json!("10%")), "."),
        (
            with(
                "lines",
                json!([{"brand": "volvo", "product": "X", "amount": "1", "cost": "1", "qty": 2}]),
            ),
            "lines[0]",
        ),
    ] {
        let r = app.post("/v1/deals", &w.mgr, body.clone()).await;
        // Then 400 naming where
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
        if path != "." {
            let got = r.body["error"]["details"]["path"].as_str().unwrap_or("");
            assert!(got.starts_with(path), "path `{got}` for {body}");
        }
    }
    // And no deal exists
    assert_eq!(app.get("/v1/deals", ADMIN).await.body["items"], json!([]));
}

#[tokio::test]
async fn a_deal_patch_is_recorded_in_history_and_honours_if_match() {
    // Given a deal at version 1
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    let path = format!("/v1/deals/{deal}");

    // When the rep changes its title, needs, prepayment and lines
    let r = app
        .patch(
            &path,
            &w.rep,
            json!({"title": "Fleet of 5", "needs": ["safety", "service"],
                   "prepayment_ratio": 0.5,
                   "lines": [{"brand": "volvo", "product": "XC60", "amount": "400000", "cost": "350000"}]}),
            Some(1),
        )
        .await;

    // Then it is 200, version 2, with the new fields and totals
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_etag_is_version(&r);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["title"], "Fleet of 5");
    assert_eq!(r.body["needs"], json!(["safety", "service"]));
    assert_eq!(r.body["prepayment_ratio"], "0.5");
    assert_eq!(r.body["amount_total"], "400000");
    assert_eq!(r.body["stage"], "lead", "a patch never moves the stage");

    // And the history records who changed what, from and to
    let h = history(app, &deal, &w.mgr).await;
    assert_eq!(h.len(), 2);
    assert_eq!(h[1]["action"], "updated");
    assert_eq!(h[1]["seq"], 2);
    assert_eq!(h[1]["by"], "li");
    assert!(h[1]["at"].is_string() && h[1]["recorded_at"].is_string());
    let ch = &h[1]["changes"];
    assert_eq!(
        ch["title"],
        json!({"from": "Fleet of 3", "to": "Fleet of 5"})
    );
    assert_eq!(
        ch["needs"],
        json!({"from": [], "to": ["safety", "service"]})
    );
    assert_eq!(ch["prepayment_ratio"]["to"], "0.5");
    assert!(ch["lines"].is_object());
    assert!(
        ch.get("currency").is_none(),
        "unchanged fields are not listed"
    );

    // When the prepayment is cleared with null
    let r = app
        .patch(&path, &w.rep, json!({"prepayment_ratio": null}), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["prepayment_ratio"].is_null());
    assert_eq!(r.body["version"], 3);

    // When someone patches with a stale version
    let before = app.get(&path, &w.rep).await.body;
    let stale = app
        .patch(&path, &w.mgr, json!({"title": "Lost update"}), Some(2))
        .await;
    // Then 409 and neither the deal nor its history changed
    assert_error(&stale, StatusCode::CONFLICT, "version_conflict");
    assert_eq!(app.get(&path, &w.rep).await.body, before);
    assert_eq!(history(app, &deal, &w.rep).await.len(), 3);

    // When a patch is invalid
    for (body, field) in [
        (json!({"currency": "XXX1"}), "currency"),
        (json!({"prepayment_ratio": "2"}), "prepayment_ratio"),
        (json!({"lines": []}), "lines"),
        (
            json!({"lines": [{"brand": "volvo", "product": "X", "amount": "-3", "cost": "0"}]}),
            "lines[0].amount",
        ),
        (json!({"title": " "}), "title"),
    ] {
        let r = app.patch(&path, &w.rep, body.clone(), None).await;
        // Then 422, and nothing changed
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], field, "{body}");
    }
    let r = app
        .patch(&path, &w.rep, json!({"stage": "sign"}), None)
        .await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    assert_eq!(app.get(&path, &w.rep).await.body, before);
    assert_eq!(history(app, &deal, &w.rep).await.len(), 3);
}

// ---------------------------------------------------------------------------
// Transitions and history
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_default_pipeline_signs_a_deal_and_makes_its_brand_no_longer_new() {
    // Given a new brand and a deal with real needs and a recorded contact
    let w = world().await;
    let app = &w.app;
    app.brand("lynk").await;
    assert_eq!(app.get("/v1/brands/lynk", &w.rep).await.body["new"], true);
    let mut body = deal_body(&w.customer, "li", "lynk");
    body["needs"] = json!(["7 seats", "low running cost"]);
    body["opened_at"] = json!("2025-01-01T00:00:00Z");
    let deal = app.ok("/v1/deals", &w.rep, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    record(app, &w.rep, &w.customer).await;

    // When the rep moves it lead → qualify → visit → quote → sign
    let steps = [
        ("qualify", "2025-01-02T00:00:00Z"),
        ("visit", "2025-01-03T00:00:00Z"),
        ("quote", "2025-01-04T00:00:00Z"),
        ("sign", "2025-01-05T10:00:00Z"),
    ];
    for (i, (to, at)) in steps.iter().enumerate() {
        let r = must_move(
            app,
            &w.rep,
            &deal,
            json!({"to": to, "at": at, "note": format!("step {i}")}),
        )
        .await;
        // Then each move is 200 with the new stage and version
        assert_eq!(r.body["stage"], *to);
        assert_eq!(r.body["version"], i as u64 + 2);
        assert_eq!(r.body["stage_entered_at"], at.replace("Z", ".000Z"));
        assert_etag_is_version(&r);
        if *to == "sign" {
            // And signing records signed_at
            assert_eq!(r.body["signed_at"], at.replace("Z", ".000Z"));
        } else {
            assert!(r.body["signed_at"].is_null(), "{}", r.body);
        }
    }
    let d = app.get(&format!("/v1/deals/{deal}"), &w.rep).await;
    assert_eq!(
        d.body["stages_passed"],
        json!(["lead", "qualify", "visit", "quote", "sign"])
    );
    assert_eq!(d.body["signed_at"], "2025-01-05T10:00:00.000Z");

    // And the brand is no longer new, first sold by this deal
    let b = app.get("/v1/brands/lynk", &w.rep).await;
    assert_eq!(b.body["new"], false);
    assert_eq!(b.body["first_signed_deal"], deal.as_str());
    assert_eq!(b.body["first_signed_at"], "2025-01-05T10:00:00.000Z");
    assert_etag_is_version(&b);

    // And a signed deal moves nowhere
    let r = app.move_to(&w.rep, &deal, "lost").await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition");
    assert_eq!(r.body["error"]["details"]["allowed"], json!([]));

    // When a second deal with the same brand is signed
    let mut body = deal_body(&w.customer, "li", "lynk");
    body["needs"] = json!(["more cars"]);
    let second = app.ok("/v1/deals", &w.rep, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    record(app, &w.rep, &w.customer).await;
    for s in ["qualify", "visit", "quote", "sign"] {
        must_move(app, &w.rep, &second, json!({"to": s})).await;
    }
    // Then the brand's first sale is unchanged
    let b2 = app.get("/v1/brands/lynk", &w.rep).await;
    assert_eq!(b2.body, b.body);
    // And the other brand is still new
    assert_eq!(app.get("/v1/brands/volvo", &w.rep).await.body["new"], true);
}

#[tokio::test]
async fn a_deal_can_be_lost_from_every_open_stage() {
    // Given deals in each open stage of the default pipeline
    let w = world().await;
    let app = &w.app;
    let path = ["qualify", "visit", "quote"];
    for depth in 0..=path.len() {
        let mut body = deal_body(&w.customer, "li", "volvo");
        body["needs"] = json!(["a real need"]);
        let deal = app.ok("/v1/deals", &w.rep, body).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        record(app, &w.rep, &w.customer).await;
        for s in &path[..depth] {
            must_move(app, &w.rep, &deal, json!({"to": s})).await;
        }
        // When it is moved to lost
        let r = app.move_to(&w.rep, &deal, "lost").await;
        // Then it is lost, with lost_at and no signed_at
        assert_eq!(
            r.status,
            StatusCode::OK,
            "lost from depth {depth}: {}",
            r.body
        );
        assert_eq!(r.body["stage"], "lost");
        assert!(r.body["lost_at"].is_string());
        assert!(r.body["signed_at"].is_null());
        // And a lost deal moves nowhere
        let again = app.move_to(&w.rep, &deal, "lead").await;
        assert_error(
            &again,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_transition",
        );
        assert_eq!(again.body["error"]["details"]["allowed"], json!([]));
    }
}

#[tokio::test]
async fn an_illegal_move_is_422_naming_the_allowed_targets_and_changes_nothing() {
    // Given a deal in lead
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    for to in ["sign", "quote", "visit", "lead", "nowhere"] {
        // When the rep tries to skip ahead, stay or leave the pipeline
        let r = app.move_to(&w.rep, &deal, to).await;
        // Then 422 invalid_transition naming from, to and the allowed targets
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "invalid_transition");
        let d = &r.body["error"]["details"];
        assert_eq!(d["from"], "lead");
        assert_eq!(d["to"], to);
        assert_eq!(d["allowed"], json!(["qualify", "lost"]));
    }
    // And nothing changed
    let d = app.get(&format!("/v1/deals/{deal}"), &w.rep).await;
    assert_eq!(d.body["stage"], "lead");
    assert_eq!(d.body["version"], 1);
    assert_eq!(history(app, &deal, &w.rep).await.len(), 1);
}

#[tokio::test]
async fn transition_bodies_and_times_are_validated() {
    // Given a deal opened now
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    let path = format!("/v1/deals/{deal}/transitions");
    // When the move is dated in the future, or before the deal entered its stage
    for at in [FUTURE, "2020-01-01T00:00:00Z"] {
        let r = app
            .post(&path, &w.rep, json!({"to": "qualify", "at": at}))
            .await;
        // Then 422 naming `at`
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(r.body["error"]["details"]["field"], "at");
    }
    // When the body is malformed
    for body in [
        json!({}),
        json!({"to": 3}),
        json!({"to": "qualify", "why": "because"}),
        json!({"to": "qualify", "dry_run": "yes"}),
        json!({"to": "qualify", "at": "tomorrow"}),
    ] {
        let r = app.post(&path, &w.rep, body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    }
    // And nothing moved
    assert_eq!(history(app, &deal, &w.rep).await.len(), 1);
}

#[tokio::test]
async fn a_dry_run_reports_the_verdict_and_changes_nothing() {
    // Given a deal in lead
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    let before = app.get(&format!("/v1/deals/{deal}"), &w.rep).await.body;

    // When the rep dry-runs a legal move
    let ok = app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            &w.rep,
            json!({"to": "qualify", "dry_run": true}),
        )
        .await;
    // Then 200 with an allowing verdict and nothing missing
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["dry_run"], true);
    assert_eq!(ok.body["allowed"], true);
    assert_eq!(ok.body["from"], "lead");
    assert_eq!(ok.body["to"], "qualify");
    assert_eq!(ok.body["allowed_targets"], json!(["qualify", "lost"]));
    assert!(!ok.body["verdicts"].as_array().unwrap().is_empty());
    assert!(ok.body["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v["allow"] == true && v["policy"].is_string()));
    assert_eq!(ok.body["missing"], json!([]));

    // When the rep dry-runs an illegal move
    let bad = app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            &w.rep,
            json!({"to": "sign", "dry_run": true}),
        )
        .await;
    // Then the verdict refuses and says what is missing
    assert_eq!(bad.status, StatusCode::OK, "{}", bad.body);
    assert_eq!(bad.body["allowed"], false);
    assert!(!bad.body["missing"].as_array().unwrap().is_empty());
    assert!(bad.body["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["allow"] == false && v["reason"].is_string()));

    // And the deal, its version and its history are unchanged
    let after = app.get(&format!("/v1/deals/{deal}"), &w.rep).await.body;
    assert_eq!(after, before);
    assert_eq!(after["version"], 1);
    assert_eq!(history(app, &deal, &w.rep).await.len(), 1);
}

#[tokio::test]
async fn a_dry_run_of_a_vetoed_move_lists_what_is_missing_and_changes_nothing() {
    // Given a deal in visit with no needs and no contact since it opened
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    for s in ["qualify", "visit"] {
        must_move(app, &w.rep, &deal, json!({"to": s})).await;
    }
    let before = app.get(&format!("/v1/deals/{deal}"), &w.rep).await.body;

    // When the rep dry-runs the move to quote
    let r = app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            &w.rep,
            json!({"to": "quote", "dry_run": true}),
        )
        .await;

    // Then 200: the pipeline allows it, the quote-late guard does not, and
    // both missing conditions are listed
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["allowed"], false);
    let verdicts = r.body["verdicts"].as_array().unwrap();
    assert!(verdicts
        .iter()
        .any(|v| v["policy"] == "pipeline" && v["allow"] == true));
    assert!(
        verdicts
            .iter()
            .any(|v| v["policy"] == "quote-late" && v["allow"] == false && v["version"].is_u64()),
        "{verdicts:?}"
    );
    assert_eq!(r.body["missing"].as_array().unwrap().len(), 2, "{}", r.body);

    // And nothing changed
    assert_eq!(
        app.get(&format!("/v1/deals/{deal}"), &w.rep).await.body,
        before
    );
    assert_eq!(history(app, &deal, &w.rep).await.len(), 3);

    // When the needs and a contact are recorded, the same dry run passes
    app.patch(
        &format!("/v1/deals/{deal}"),
        &w.rep,
        json!({"needs": ["3 SUVs for mountain roads"]}),
        None,
    )
    .await;
    record(app, &w.rep, &w.customer).await;
    let r = app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            &w.rep,
            json!({"to": "quote", "dry_run": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["allowed"], true, "{}", r.body);
    assert_eq!(r.body["missing"], json!([]));
    assert_eq!(
        app.get(&format!("/v1/deals/{deal}"), &w.rep).await.body["stage"],
        "visit"
    );
}

#[tokio::test]
async fn a_guard_veto_is_422_and_only_an_admin_may_override_it() {
    // Given a deal in visit with no needs and no contact since it opened
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    for s in ["qualify", "visit"] {
        must_move(app, &w.rep, &deal, json!({"to": s})).await;
    }
    let path = format!("/v1/deals/{deal}/transitions");

    // When the rep quotes early
    let r = app.post(&path, &w.rep, json!({"to": "quote"})).await;
    // Then the quote-late guard vetoes it, naming policy, version and reason
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "guard_rejected");
    let d = &r.body["error"]["details"];
    assert_eq!(d["policy"], "quote-late");
    assert!(d["version"].as_u64().is_some_and(|v| v >= 1), "{d}");
    assert!(d["reason"].as_str().is_some_and(|s| !s.is_empty()), "{d}");

    // When the rep or the manager forces it with an override reason
    let body = json!({"to": "quote", "override_reason": "approved by the GM"});
    for token in [&w.rep, &w.mgr] {
        let r = app.post(&path, token, body.clone()).await;
        // Then 403, even as a dry run
        assert_error(&r, StatusCode::FORBIDDEN, "forbidden");
        let mut dry = body.clone();
        dry["dry_run"] = json!(true);
        assert_error(
            &app.post(&path, token, dry).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        );
    }
    // And nothing moved; the history keeps the rep's refused move as a veto
    let d = app.get(&format!("/v1/deals/{deal}"), &w.rep).await;
    assert_eq!(d.body["stage"], "visit");
    assert_eq!(d.body["version"], 3);
    let h = history(app, &deal, &w.rep).await;
    assert_eq!(h.len(), 4);
    assert_eq!(
        (h[3]["action"].as_str(), h[3]["seq"].as_u64()),
        (Some("veto"), Some(3))
    );

    // When the admin forces it
    let r = app.post(&path, ADMIN, body).await;
    // Then the move is made, and the history keeps the reason, who, and the
    // overridden decision with its policy version
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["stage"], "quote");
    let h = history(app, &deal, &w.rep).await;
    assert_eq!(h.len(), 5);
    let last = &h[4];
    assert_eq!(last["override_reason"], "approved by the GM");
    assert_eq!(last["by"], "admin");
    assert_eq!(last["to"], "quote");
    let decisions = last["decisions"].as_array().expect("decisions");
    assert!(
        decisions.iter().any(|d| d["policy"] == "quote-late"
            && d["allow"] == false
            && d["overridden"] == true
            && d["version"].is_u64()),
        "{decisions:?}"
    );
}

#[tokio::test]
async fn history_lists_creation_and_every_transition_with_who_and_when() {
    // Given a deal opened by the manager for li on an imported date
    let w = world().await;
    let app = &w.app;
    let mut body = deal_body(&w.customer, "li", "volvo");
    body["opened_at"] = json!("2025-05-01T00:00:00Z");
    let deal = app.ok("/v1/deals", &w.mgr, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    // When li and the manager move it, one with a note and a date
    must_move(
        app,
        &w.rep,
        &deal,
        json!({"to": "qualify", "at": "2025-05-02T09:00:00Z", "note": "budget confirmed"}),
    )
    .await;
    must_move(app, &w.mgr, &deal, json!({"to": "lost"})).await;

    // Then the history lists all three, oldest first, with who and when
    let h = history(app, &deal, &w.rep).await;
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(h[0]["action"], "created");
    assert_eq!(h[0]["seq"], 1);
    assert_eq!(h[0]["by"], "wang");
    assert_eq!(h[0]["at"], "2025-05-01T00:00:00.000Z");
    assert_eq!(h[0]["to"], "lead");
    assert_eq!(h[1]["action"], "transition");
    assert_eq!(h[1]["seq"], 2);
    assert_eq!(h[1]["by"], "li");
    assert_eq!(h[1]["from"], "lead");
    assert_eq!(h[1]["to"], "qualify");
    assert_eq!(h[1]["at"], "2025-05-02T09:00:00.000Z");
    assert_eq!(h[1]["note"], "budget confirmed");
    assert!(h[1]["recorded_at"].is_string());
    assert_eq!(h[2]["action"], "transition");
    assert_eq!(h[2]["by"], "wang");
    assert_eq!(h[2]["from"], "qualify");
    assert_eq!(h[2]["to"], "lost");
    assert!(h[2]["at"].is_string());
}

#[tokio::test]
async fn a_stale_if_match_on_a_transition_is_409_and_moves_nothing() {
    // Given a deal at version 2 (in qualify)
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    must_move(app, &w.rep, &deal, json!({"to": "qualify"})).await;
    let path = format!("/v1/deals/{deal}/transitions");

    // When a move carries If-Match 1
    let r = send_with(
        app,
        Method::POST,
        &path,
        &w.rep,
        Some(json!({"to": "visit"})),
        &[("if-match", "\"1\"")],
    )
    .await;
    // Then 409 version_conflict and nothing moved
    assert_error(&r, StatusCode::CONFLICT, "version_conflict");
    let d = app.get(&format!("/v1/deals/{deal}"), &w.rep).await;
    assert_eq!(d.body["stage"], "qualify");
    assert_eq!(d.body["version"], 2);
    assert_eq!(history(app, &deal, &w.rep).await.len(), 2);

    // When the move carries the current version
    let r = send_with(
        app,
        Method::POST,
        &path,
        &w.rep,
        Some(json!({"to": "visit"})),
        &[("if-match", "\"2\"")],
    )
    .await;
    // Then it moves
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(etag(&r), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_double_moves_let_exactly_one_win() {
    // Given a server shared by two concurrent clients
    let w = world().await;
    let rep = w.rep.clone();
    let customer = w.customer.clone();
    let app = Arc::new(w.app);
    for round in 0..25 {
        // Given a fresh deal in lead
        let deal = app.deal(&rep, &customer, "li", "volvo").await;

        // When two tasks move it lead → qualify at the same time
        let spawn_move = || {
            let app = Arc::clone(&app);
            let (rep, deal) = (rep.clone(), deal.clone());
            tokio::spawn(async move { app.move_to(&rep, &deal, "qualify").await })
        };
        let (a, b) = tokio::join!(spawn_move(), spawn_move());
        let (a, b) = (a.expect("task a"), b.expect("task b"));

        // Then exactly one is 200; the other is 409 or 422 with an error body
        let statuses = [a.status, b.status];
        let wins = statuses.iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(wins, 1, "round {round}: {statuses:?} {} {}", a.body, b.body);
        let loser = if a.status == StatusCode::OK { &b } else { &a };
        match loser.status {
            StatusCode::CONFLICT => assert_error(loser, StatusCode::CONFLICT, "version_conflict"),
            StatusCode::UNPROCESSABLE_ENTITY => assert_error(
                loser,
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_transition",
            ),
            s => panic!("round {round}: loser got {s}: {}", loser.body),
        }
        // And the history holds exactly one transition
        let h = history(&app, &deal, &rep).await;
        let moves = h.iter().filter(|e| e["action"] == "transition").count();
        assert_eq!(moves, 1, "round {round}: {h:?}");
        let d = app.get(&format!("/v1/deals/{deal}"), &rep).await;
        assert_eq!(d.body["version"], 2);
        assert_eq!(d.body["stage"], "qualify");
    }
}

// ---------------------------------------------------------------------------
// Paging
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_list_pages_through_all_items_exactly_once() {
    // Given 7 of each listable thing
    let w = world().await;
    let app = &w.app;
    for i in 0..6 {
        app.branch(&format!("b{i}")).await;
        app.brand(&format!("brand{i}")).await;
    }
    for i in 1..=7 {
        app.ok(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "CNY", "date": format!("2026-0{i}-01"), "per_usd": "7"}),
        )
        .await;
    }
    for _ in 0..6 {
        app.customer(&w.rep, "sh", "li").await;
    }
    let mut deal = String::new();
    for _ in 0..7 {
        deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    }
    for _ in 0..7 {
        record(app, &w.rep, &w.customer).await;
    }
    for s in ["qualify", "visit", "lost"] {
        must_move(app, &w.rep, &deal, json!({"to": s})).await;
    }
    // (history of `deal`: created + 3 moves, plus 3 patches = 7)
    for t in ["a", "b", "c"] {
        app.patch(
            &format!("/v1/deals/{deal}"),
            &w.rep,
            json!({"title": t}),
            None,
        )
        .await;
    }

    let lists = [
        ("/v1/branches".to_string(), "id"),
        ("/v1/brands".to_string(), "id"),
        ("/v1/fx-rates".to_string(), "date"),
        ("/v1/customers".to_string(), "id"),
        (format!("/v1/customers/{}/records", w.customer), "id"),
        ("/v1/deals".to_string(), "id"),
        (format!("/v1/deals/{deal}/history"), "seq"),
    ];
    for (path, key) in lists {
        // When the list is read whole, then walked 3 at a time, then 7 at a time
        let all = app.get(&format!("{path}?limit=500"), ADMIN).await;
        assert_eq!(all.status, StatusCode::OK, "{path}: {}", all.body);
        let all = all.body["items"].as_array().unwrap().clone();
        assert_eq!(all.len(), 7, "{path} has 7 items");
        let (walked, pages) = walk(app, &path, ADMIN, 3).await;
        // Then every item comes exactly once, in the same order, in 3 pages
        assert_eq!(walked, all, "{path}: walking by 3 gives the same items");
        assert_eq!(pages, 3, "{path}");
        let keys: Vec<String> = walked.iter().map(|i| i[key].to_string()).collect();
        let unique: BTreeSet<&String> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{path}: duplicates {keys:?}");
        // And a page exactly as long as the list ends it (no empty next page)
        let (walked, pages) = walk(app, &path, ADMIN, 7).await;
        assert_eq!(walked, all, "{path}");
        assert_eq!(pages, 1, "{path}: a full last page has no next_cursor");
    }
}

#[tokio::test]
async fn bad_paging_and_unknown_query_parameters_are_400() {
    // Given data in every list
    let w = world().await;
    let app = &w.app;
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    let mut lists = list_routes(&w);
    lists.push(format!("/v1/deals/{deal}/history"));
    for path in &lists {
        for (query, code) in [
            ("limit=0", "bad_request"),
            ("limit=501", "bad_request"),
            ("limit=-1", "invalid_query"),
            ("limit=abc", "invalid_query"),
            ("cursor=zz-not-hex", "bad_request"),
            ("colour=blue", "invalid_query"),
        ] {
            // When the admin asks with a bad query
            let r = app.get(&format!("{path}?{query}"), ADMIN).await;
            // Then 400 with the error body
            assert_error(&r, StatusCode::BAD_REQUEST, code);
        }
        // And the largest page is fine
        assert_eq!(
            app.get(&format!("{path}?limit=500"), ADMIN).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    // And a bad tier filter is a bad query too
    let r = app.get("/v1/customers?tier=Z", ADMIN).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_query");
}

#[tokio::test]
async fn bad_paging_is_400_for_a_branch_member_listing_branches() {
    // Given a rep of branch `sh`
    let w = world().await;
    for query in ["limit=0", "limit=501", "cursor=zz-not-hex"] {
        // When the rep lists branches with a bad page request
        let r = w.app.get(&format!("/v1/branches?{query}"), &w.rep).await;
        // Then it is refused like every other list
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_request");
    }
}

// ---------------------------------------------------------------------------
// Malformed requests: JSON, types, media type, size, routes, methods
// ---------------------------------------------------------------------------

#[tokio::test]
async fn malformed_json_is_400_on_every_write() {
    // Given a server with data
    let w = world().await;
    let deal = w.app.deal(&w.rep, &w.customer, "li", "volvo").await;
    let writes = [
        (Method::POST, "/v1/tokens".to_string()),
        (Method::POST, "/v1/branches".to_string()),
        (Method::PUT, "/v1/branches/sh/pipeline".to_string()),
        (Method::POST, "/v1/brands".to_string()),
        (Method::POST, "/v1/fx-rates".to_string()),
        (Method::POST, "/v1/customers".to_string()),
        (Method::PATCH, format!("/v1/customers/{}", w.customer)),
        (
            Method::POST,
            format!("/v1/customers/{}/records", w.customer),
        ),
        (Method::POST, "/v1/deals".to_string()),
        (Method::PATCH, format!("/v1/deals/{deal}")),
        (Method::POST, format!("/v1/deals/{deal}/transitions")),
    ];
    for (method, path) in &writes {
        for (raw, code) in [
            (&b"{not json"[..], "invalid_json"),
            (&b"{"[..], "invalid_json"),
            (&b""[..], "invalid_json"),
            (&b"\"just a string\""[..], "invalid_body"),
            (&b"{\"unknown_field_xyz\": 1}"[..], "invalid_body"),
        ] {
            // When the body is not a well-formed object of known fields
            let r = w
                .app
                .send_raw(method.clone(), path, Some(ADMIN), Some(raw.to_vec()), &[])
                .await;
            // Then 400 with the error body
            assert_error(&r, StatusCode::BAD_REQUEST, code);
        }
    }
    // When a valid body is followed by more data
    let r = w
        .app
        .send_raw(
            Method::POST,
            "/v1/branches",
            Some(ADMIN),
            Some(br#"{"id": "bj", "name": "Beijing"} {"id": "gz"}"#.to_vec()),
            &[],
        )
        .await;
    // Then it is malformed JSON too, and the branch is not created
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json");
    assert_error(
        &w.app.get("/v1/branches/bj", ADMIN).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // And nothing changed
    let d = w.app.get(&format!("/v1/deals/{deal}"), ADMIN).await;
    assert_eq!(d.body["version"], 1);
    let c = w
        .app
        .get(&format!("/v1/customers/{}", w.customer), ADMIN)
        .await;
    assert_eq!(c.body["version"], 1);
}

#[tokio::test]
async fn a_number_in_place_of_an_enum_is_an_invalid_body_not_invalid_json() {
    // Given a server
    let w = world().await;
    for (path, body, field) in [
        (
            "/v1/customers",
            json!({"name": "x", "branch": "sh", "segment": "enterprise", "source": 3}),
            "source",
        ),
        (
            "/v1/tokens",
            json!({"role": 1, "branch": "sh", "user": "x"}),
            "role",
        ),
    ] {
        // When a well-formed body has a number where a name is expected
        let r = w.app.post(path, ADMIN, body.clone()).await;
        // Then it is 400 invalid_body naming the field, like every other wrong type
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
        assert_eq!(r.body["error"]["details"]["path"], field, "{path} {body}");
    }
}

#[tokio::test]
async fn a_json_array_is_not_accepted_in_place_of_an_object() {
    // Given a server with a deal
    let w = world().await;
    let deal = w.app.deal(&w.rep, &w.customer, "li", "volvo").await;
    // When a branch is posted as an array of its field values
    let r = w
        .app
        .send_raw(
            Method::POST,
            "/v1/branches",
            Some(ADMIN),
            Some(br#"["arr", "Array"]"#.to_vec()),
            &[],
        )
        .await;
    // Then it is a malformed body and no branch is created
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    assert_error(
        &w.app.get("/v1/branches/arr", ADMIN).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // When a deal patch is an empty array
    let r = w
        .app
        .send_raw(
            Method::PATCH,
            &format!("/v1/deals/{deal}"),
            Some(ADMIN),
            Some(b"[]".to_vec()),
            &[],
        )
        .await;
    // Then it is a malformed body too
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
}

#[tokio::test]
async fn wrong_field_types_are_400_naming_the_field() {
    // Given a server
    let w = world().await;
    let cases = [
        ("/v1/branches", json!({"id": 5, "name": "x"}), "id"),
        ("/v1/branches", json!({"id": "x", "name": ["x"]}), "name"),
        (
            "/v1/branches",
            json!({"id": "x", "name": "x", "timezone": 8}),
            "timezone",
        ),
        (
            "/v1/brands",
            json!({"id": "x", "name": "x", "introduced_at": 2026}),
            "introduced_at",
        ),
        (
            "/v1/fx-rates",
            json!({"currency": "CNY", "date": "2026-13-01", "per_usd": "7"}),
            "date",
        ),
        (
            "/v1/fx-rates",
            json!({"currency": "CNY", "date": "2026-01-01", "per_usd": null}),
            "per_usd",
        ),
        (
            "/v1/tokens",
            json!({"role": "rep", "branch": "sh", "user": false}),
            "user",
        ),
        (
            "/v1/customers",
            json!({"name": "x", "branch": "sh", "segment": "enterprise",
                                 "source": "assigned", "owner": 7}),
            "owner",
        ),
    ];
    for (path, body, field) in cases {
        // When a field has the wrong type
        let r = w.app.post(path, ADMIN, body.clone()).await;
        // Then 400 invalid_body naming the field
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
        assert_eq!(r.body["error"]["details"]["path"], field, "{path} {body}");
    }
    // When a required field is missing
    let r = w.app.post("/v1/branches", ADMIN, json!({"id": "x"})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body");
    assert!(r.body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("name"));
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    // Given a server
    let w = world().await;
    let auth = format!("Bearer {ADMIN}");
    let body = json!({"id": "bj", "name": "Beijing"})
        .to_string()
        .into_bytes();
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/xml",
    ] {
        // When a JSON body is sent with another content type
        let r = exact(
            &w.app,
            Method::POST,
            "/v1/branches",
            &[("authorization", &auth), ("content-type", ct)],
            body.clone(),
        )
        .await;
        // Then 415 and nothing is created
        assert_error(
            &r,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        );
    }
    assert_error(
        &w.app.get("/v1/branches/bj", ADMIN).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // And JSON with a charset, or a +json type, is accepted
    let r = exact(
        &w.app,
        Method::POST,
        "/v1/branches",
        &[
            ("authorization", &auth),
            ("content-type", "application/json; charset=utf-8"),
        ],
        body,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = exact(
        &w.app,
        Method::POST,
        "/v1/branches",
        &[
            ("authorization", &auth),
            ("content-type", "application/merge-patch+json"),
        ],
        json!({"id": "gz", "name": "Guangzhou"})
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_and_changes_nothing() {
    // Given a server with a customer
    let w = world().await;
    let limit = 1024 * 1024;
    // When a customer body just over 1 MiB is sent
    let mut body = json!({"name": "", "branch": "sh", "segment": "enterprise",
                          "source": "assigned"});
    let overhead = body.to_string().len();
    body["name"] = json!("x".repeat(limit + 1 - overhead));
    let raw = body.to_string().into_bytes();
    assert_eq!(raw.len(), limit + 1);
    let r = w
        .app
        .send_raw(Method::POST, "/v1/customers", Some(ADMIN), Some(raw), &[])
        .await;
    // Then 413 with the error body
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // And the same for a far larger deal patch
    let deal = w.app.deal(&w.rep, &w.customer, "li", "volvo").await;
    let r = w
        .app
        .send_raw(
            Method::PATCH,
            &format!("/v1/deals/{deal}"),
            Some(ADMIN),
            Some(
                json!({"title": "y".repeat(3 * limit)})
                    .to_string()
                    .into_bytes(),
            ),
            &[],
        )
        .await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large");
    // And nothing changed
    let list = w.app.get("/v1/customers", ADMIN).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let d = w.app.get(&format!("/v1/deals/{deal}"), ADMIN).await;
    assert_eq!(d.body["version"], 1);
}

#[tokio::test]
async fn unknown_ids_are_404_on_every_route() {
    // Given a server with data
    let w = world().await;
    let cases: Vec<(Method, &str, Option<Value>, &str)> = vec![
        (Method::GET, "/v1/branches/nowhere", None, "branch"),
        (Method::GET, "/v1/branches/nowhere/pipeline", None, "branch"),
        (
            Method::PUT,
            "/v1/branches/nowhere/pipeline",
            Some(custom_pipeline()),
            "branch",
        ),
        (Method::GET, "/v1/brands/nobrand", None, "brand"),
        (Method::GET, "/v1/customers/cus_nope", None, "customer"),
        (
            Method::PATCH,
            "/v1/customers/cus_nope",
            Some(json!({"name": "x"})),
            "customer",
        ),
        (
            Method::POST,
            "/v1/customers/cus_nope/records",
            Some(json!({"kind": "call", "summary": "x"})),
            "customer",
        ),
        (
            Method::GET,
            "/v1/customers/cus_nope/records",
            None,
            "customer",
        ),
        (Method::GET, "/v1/deals/deal_nope", None, "deal"),
        (
            Method::PATCH,
            "/v1/deals/deal_nope",
            Some(json!({"title": "x"})),
            "deal",
        ),
        (
            Method::POST,
            "/v1/deals/deal_nope/transitions",
            Some(json!({"to": "qualify"})),
            "deal",
        ),
        (Method::GET, "/v1/deals/deal_nope/history", None, "deal"),
    ];
    for (method, path, body, kind) in cases {
        // When the admin addresses a resource that does not exist
        let r = send_with(&w.app, method.clone(), path, ADMIN, body, &[]).await;
        // Then 404 not_found naming the kind
        assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(r.body["error"]["details"]["kind"], kind, "{method} {path}");
    }
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    // Given a server
    let w = world().await;
    for path in [
        "/v2/deals",
        "/v1/deal",
        "/v1/deals/x/y/z",
        "/console/no-such-file.js",
        "/v1/customers/x/notes",
    ] {
        // When an unknown route is asked for, with or without a token
        for token in [Some(ADMIN), None] {
            let r = w.app.send(Method::GET, path, token, None).await;
            // Then 404 with the error body
            assert_error(&r, StatusCode::NOT_FOUND, "not_found");
        }
    }
    let wrong = [
        (Method::DELETE, "/v1/deals/deal_x"),
        (Method::PUT, "/v1/deals/deal_x"),
        (Method::GET, "/v1/deals/deal_x/transitions"),
        (Method::DELETE, "/v1/branches"),
        (Method::POST, "/v1/branches/sh"),
        (Method::POST, "/v1/branches/sh/pipeline"),
        (Method::PUT, "/v1/customers"),
        (Method::DELETE, "/v1/customers/cus_x"),
        (Method::PATCH, "/v1/brands/volvo"),
        (Method::PUT, "/v1/tokens"),
        (Method::DELETE, "/v1/fx-rates"),
        (Method::POST, "/v1/deals/deal_x/history"),
        (Method::POST, "/healthz"),
        (Method::POST, "/metrics"),
        (Method::POST, "/openapi.json"),
    ];
    for (method, path) in wrong {
        // When a known route is called with another method
        let r = w.app.send(method.clone(), path, Some(ADMIN), None).await;
        // Then 405 with the error body
        assert_error(&r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");
    }
}

// ---------------------------------------------------------------------------
// Persistence
// ---------------------------------------------------------------------------

#[tokio::test]
async fn everything_survives_a_reopen_of_the_database() {
    // Given data of every kind
    let w = world().await;
    let app = w.app;
    app.branch("bj").await;
    app.ok(
        "/v1/fx-rates",
        ADMIN,
        json!({"currency": "CNY", "date": "2026-01-01", "per_usd": "7.10"}),
    )
    .await;
    let mut body = deal_body(&w.customer, "li", "volvo");
    body["needs"] = json!(["safety"]);
    let deal = app.ok("/v1/deals", &w.rep, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let rec = record(&app, &w.rep, &w.customer).await;
    for s in ["qualify", "visit", "quote", "sign"] {
        must_move(&app, &w.rep, &deal, json!({"to": s})).await;
    }
    let pipeline = send_with(
        &app,
        Method::PUT,
        "/v1/branches/bj/pipeline",
        ADMIN,
        Some(custom_pipeline()),
        &[],
    )
    .await;
    assert_eq!(pipeline.status, StatusCode::OK);
    let snapshot = [
        "/v1/branches".to_string(),
        "/v1/branches/bj/pipeline".to_string(),
        "/v1/brands".to_string(),
        "/v1/fx-rates".to_string(),
        "/v1/customers".to_string(),
        format!("/v1/customers/{}", w.customer),
        format!("/v1/customers/{}/records", w.customer),
        "/v1/deals".to_string(),
        format!("/v1/deals/{deal}"),
        format!("/v1/deals/{deal}/history"),
    ];
    // (once the background re-tier after the signing is done: it changes
    // the customer's tier and holds a handle on the database until then)
    app.services.tiering_idle().await;
    let mut before = Vec::new();
    for p in &snapshot {
        let r = app.get(p, ADMIN).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        before.push(r.body);
    }

    // When every handle on the database is dropped and it is reopened
    let app = TestApp::reopen(app.close().await).await;

    // Then every read gives the same answer
    for (p, b) in snapshot.iter().zip(&before) {
        let r = app.get(p, ADMIN).await;
        assert_eq!(r.status, StatusCode::OK, "{p}");
        assert_eq!(&r.body, b, "{p} changed across the reopen");
    }
    // And the issued tokens still work with their scope
    let mine = app.get("/v1/deals", &w.rep).await;
    assert_eq!(mine.status, StatusCode::OK);
    assert_eq!(
        ids(mine.body["items"].as_array().unwrap(), "id"),
        vec![deal.clone()]
    );
    let recs = app
        .get(&format!("/v1/customers/{}/records", w.customer), &w.mgr)
        .await;
    assert_eq!(recs.body["items"][0]["id"], rec["id"]);
    // And the brand is still sold, the custom pipeline still in force
    assert_eq!(app.get("/v1/brands/volvo", ADMIN).await.body["new"], false);
    let c = app.customer(ADMIN, "bj", "zhao").await;
    let d = app
        .ok("/v1/deals", ADMIN, deal_body(&c, "zhao", "volvo"))
        .await;
    assert_eq!(d["stage"], "prospect");
    // And new ids do not collide with old ones
    assert_ne!(d["id"], json!(deal));
    let again = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    assert_ne!(again, deal);
    // And ids stay unique: creating a duplicate branch is still refused
    let dup = app
        .post("/v1/branches", ADMIN, json!({"id": "sh", "name": "again"}))
        .await;
    assert_error(&dup, StatusCode::CONFLICT, "duplicate");
}

#[tokio::test]
async fn a_deal_stored_as_json_by_an_earlier_version_reads_and_moves() {
    // Given a deal that moved once
    let w = world().await;
    let deal = w.app.deal(&w.rep, &w.customer, "li", "volvo").await;
    must_move(&w.app, &w.rep, &deal, json!({"to": "qualify"})).await;
    let before = w.app.get(&format!("/v1/deals/{deal}"), ADMIN).await.body;
    // stored as an earlier version kept deals: JSON
    let dir = w.app.close().await;
    let key = keys::key(keys::DEAL, &[&deal]);
    {
        let store = open_when_released(dir.path()).await;
        let raw = store.get(&key).unwrap().expect("the deal is stored");
        assert_ne!(raw[0], b'{', "deals are stored in their binary form");
        let json = serde_json::to_vec(&Deal::from_stored(&raw).unwrap()).unwrap();
        let mut batch = Batch::new();
        batch.put(key.clone(), json);
        store.commit(batch).await.unwrap();
    }

    // When the current server opens the store
    let app = TestApp::reopen(dir).await;

    // Then the deal reads and lists as before
    assert_eq!(
        app.get(&format!("/v1/deals/{deal}"), ADMIN).await.body,
        before
    );
    let listed = app.get("/v1/deals?stage=qualify", &w.mgr).await;
    assert_eq!(listed.body["items"][0], before, "{}", listed.body);
    // And it moves on, and is then stored in the binary form
    let moved = must_move(&app, &w.rep, &deal, json!({"to": "visit"})).await;
    assert_eq!(
        moved.body["stages_passed"],
        json!(["lead", "qualify", "visit"])
    );
    assert_eq!(
        moved.body["version"],
        before["version"].as_u64().unwrap() + 1
    );
    assert_eq!(
        app.get(&format!("/v1/deals/{deal}"), ADMIN).await.body,
        moved.body
    );
    let dir = app.close().await;
    let store = open_when_released(dir.path()).await;
    let raw = store.get(&key).unwrap().expect("the deal is stored");
    assert_ne!(raw[0], b'{');
    assert_eq!(Deal::from_stored(&raw).unwrap().version, 3);
}

#[tokio::test]
async fn deal_attributes_are_set_and_removed_by_managers_and_checked() {
    let app = TestApp::new().await;
    app.branch("sh").await;
    app.brand("volvo").await;
    let mgr = app.token("manager", Some("sh"), "wang").await;
    let customer = app.customer(ADMIN, "sh", "li").await;
    let deal = app.deal(ADMIN, &customer, "li", "volvo").await;
    let path = format!("/v1/deals/{deal}");
    // A manager sets two attributes, then removes one with null.
    let r = app
        .patch(
            &path,
            &mgr,
            json!({"attributes": {"a": "1", "b": "2"}}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["attributes"], json!({"a": "1", "b": "2"}));
    let r = app
        .patch(&path, &mgr, json!({"attributes": {"a": null}}), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["attributes"], json!({"b": "2"}));
    let version = r.body["version"].as_u64().unwrap();
    // Bad keys, bad values and too many attributes change nothing.
    let too_many: serde_json::Map<String, Value> =
        (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
    for bad in [
        json!({"attributes": {"bad key": "x"}}),
        json!({"attributes": {"": "x"}}),
        json!({"attributes": {"k": "x".repeat(1001)}}),
        json!({"attributes": too_many}),
    ] {
        let r = app.patch(&path, &mgr, bad.clone(), None).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {}",
            r.body
        );
    }
    let r = app
        .patch(&path, &mgr, json!({"attributes": {"k": 7}}), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "invalid_body");
    let now = app.get(&path, ADMIN).await;
    assert_eq!(now.body["version"].as_u64().unwrap(), version);
    assert_eq!(now.body["attributes"], json!({"b": "2"}));
}

#[tokio::test]
async fn json_number_amounts_are_kept_digit_for_digit() {
    let app = TestApp::new().await;
    app.branch("sh").await;
    app.brand("volvo").await;
    let customer = app.customer(ADMIN, "sh", "li").await;
    // 18 significant digits: a trip through f64 would round it to 10^12.
    let body: Value = serde_json::from_str(&format!(
        r#"{{"customer_id": "{customer}", "title": "Fleet", "owner": "li", "currency": "CNY",
            "lines": [{{"brand": "volvo", "product": "XC90",
                        "amount": 999999999999.999999, "cost": 0.000001}}]}}"#
    ))
    .unwrap();
    let r = app.post("/v1/deals", ADMIN, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["lines"][0]["amount"], "999999999999.999999");
    assert_eq!(r.body["lines"][0]["cost"], "0.000001");
    // An exponent is not a decimal amount.
    let body: Value = serde_json::from_str(&format!(
        r#"{{"customer_id": "{customer}", "title": "Fleet", "owner": "li", "currency": "CNY",
            "lines": [{{"brand": "volvo", "product": "XC90", "amount": 1e5, "cost": 1}}]}}"#
    ))
    .unwrap();
    let r = app.post("/v1/deals", ADMIN, body).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "invalid_body");
}

// ---------------------------------------------------------------------------
// Everyday inputs: every refused field named, dates where days are meant,
// optional bodies, and times written with milliseconds
// ---------------------------------------------------------------------------

/// Phrases of the parsers underneath that a client must never read.
const LIBRARY_WORDING: &[&str] = &[
    "Failed to deserialize",
    "premature end of input",
    "Cannot parse value",
    "invalid type:",
    "invalid value:",
    "missing field",
    "unknown variant",
    "invalid digit found",
    "at line ",
];

/// A world with a signed deal (and the follow-up tasks signing creates), a
/// communication record and a drafted settlement: every resource exists.
struct Full {
    w: World,
    deal: String,
    record: String,
    task: String,
    settlement: String,
    token: String,
    job: String,
}

async fn full_world() -> Full {
    let w = world().await;
    let app = &w.app;
    app.one_move_pipeline("sh").await;
    app.ok(
        "/v1/fx-rates",
        ADMIN,
        json!({"currency": "CNY", "date": "2026-01-01", "per_usd": "7.1"}),
    )
    .await;
    let record = app
        .ok(
            &format!("/v1/customers/{}/records", w.customer),
            &w.rep,
            json!({"kind": "visit", "summary": "Met the buyer", "at": "2026-03-01T09:30:00Z"}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deal = app.deal(&w.rep, &w.customer, "li", "volvo").await;
    let r = app.move_to(&w.rep, &deal, "sign").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let tasks = app.get("/v1/tasks?branch=sh", ADMIN).await;
    let task = tasks.body["items"][0]["id"]
        .as_str()
        .expect("signing creates follow-up tasks")
        .to_string();
    let month = r.body["signed_at"].as_str().unwrap()[..7].to_string();
    let settlement = app
        .ok(
            "/v1/settlements",
            &w.mgr,
            json!({"branch": "sh", "period": month}),
        )
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tokens = app.get("/v1/tokens?branch=sh", ADMIN).await;
    let token = tokens.body["items"][0]["id"]
        .as_str()
        .expect("the world issues tokens")
        .to_string();
    let job = app
        .post("/v1/branches/sh/retier?async=true", &w.mgr, json!({}))
        .await;
    assert_eq!(job.status, StatusCode::ACCEPTED, "{}", job.body);
    let job = job.body["job"]["id"].as_str().expect("job id").to_string();
    Full {
        w,
        deal,
        record,
        task,
        settlement,
        token,
        job,
    }
}

/// A method, a path and an optional JSON body.
type Request3 = (Method, String, Option<Value>);

#[tokio::test]
async fn every_route_names_the_refused_field_and_says_what_it_expects() {
    // Given every kind of resource
    let f = full_world().await;
    let (app, c, d, rec, t) = (&f.w.app, &f.w.customer, &f.deal, &f.record, &f.task);
    let get = |path: String| (Method::GET, path, None::<Value>);
    let body = |m: Method, path: String, b: Value| (m, path, Some(b));
    // (request, status, code, field, words the message must hold)
    let cases: Vec<(Request3, u16, &str, &str, &str)> = vec![
        // Query strings
        (
            get("/v1/branches?limit=0".into()),
            400,
            "bad_request",
            "limit",
            "`limit` must be between 1 and 500, not 0",
        ),
        (
            get("/v1/brands?limit=abc".into()),
            400,
            "invalid_query",
            "limit",
            "`limit` must be a whole number",
        ),
        (
            get("/v1/fx-rates?limit=-1".into()),
            400,
            "invalid_query",
            "limit",
            "`limit` must be a whole number",
        ),
        (
            get("/v1/customers?tier=Z".into()),
            400,
            "invalid_query",
            "tier",
            "`tier` must be one of `A`, `B`, `C`, not `Z`",
        ),
        (
            get("/v1/customers?colour=blue".into()),
            400,
            "invalid_query",
            "colour",
            "`colour` is not a query parameter of this route",
        ),
        (
            get("/v1/deals?cursor=zz".into()),
            400,
            "bad_request",
            "cursor",
            "`cursor` is not one this server issued",
        ),
        (
            get(format!("/v1/deals/{d}/history?limit=many")),
            400,
            "invalid_query",
            "limit",
            "`limit` must be a whole number",
        ),
        (
            get(format!("/v1/customers/{c}/history?limit=501")),
            400,
            "bad_request",
            "limit",
            "between 1 and 500",
        ),
        (
            get(format!("/v1/customers/{c}/records/{rec}/revisions?limit=0")),
            400,
            "bad_request",
            "limit",
            "between 1 and 500",
        ),
        (
            get("/v1/followups?as_of=yesterday".into()),
            400,
            "invalid_query",
            "as_of",
            "`as_of` must be a date like 2026-04-03 or an RFC 3339 time",
        ),
        (
            get("/v1/followups?due_before=2026-13-01".into()),
            400,
            "invalid_query",
            "due_before",
            "`due_before` must be a date like 2026-04-03 or an RFC 3339 time",
        ),
        (
            get("/v1/followups?limit=0".into()),
            400,
            "bad_request",
            "limit",
            "`limit` must be between 1 and 10000, not 0",
        ),
        (
            get("/v1/reports/referrals?branch=sh&from=2026-1-1".into()),
            400,
            "invalid_query",
            "from",
            "`from` must be a date like 2026-04-03",
        ),
        (
            get("/v1/reports/referrals?branch=sh&to=soon".into()),
            400,
            "invalid_query",
            "to",
            "`to` must be a date like 2026-04-03",
        ),
        (
            get("/v1/reports/team".into()),
            400,
            "invalid_query",
            "branch",
            "`branch` is required",
        ),
        (
            get("/v1/records".into()),
            400,
            "invalid_query",
            "branch",
            "`branch` is required",
        ),
        (
            get("/v1/tasks?status=finished".into()),
            400,
            "invalid_query",
            "status",
            "`status` must be one of `open`, `done`, `dismissed`",
        ),
        (
            get("/v1/settlements?limit=9999".into()),
            400,
            "bad_request",
            "limit",
            "between 1 and 500",
        ),
        (
            get("/v1/statements?branch=sh&rep=li&period=2026-03&format=xml".into()),
            400,
            "bad_request",
            "format",
            "`format` must be `json` or `csv`",
        ),
        (
            get("/v1/policies/new-brand-bonus/versions?limit=0".into()),
            400,
            "bad_request",
            "limit",
            "between 1 and 500",
        ),
        // Path parameters
        (
            body(
                Method::POST,
                "/v1/policies/new-brand-bonus/versions/two/activate".into(),
                json!({}),
            ),
            400,
            "invalid_path",
            "version",
            "`version` must be a whole number, 0 or more, not `two`",
        ),
        (
            body(
                Method::POST,
                "/v1/policies/new-brand-bonus/versions/-1/simulate".into(),
                json!({"branch": "sh", "period": "2026-03"}),
            ),
            400,
            "invalid_path",
            "version",
            "`version` must be a whole number",
        ),
        (body(Method::PUT, "/v1/fx-rates/CNY/2026-13-01".into(), json!({"per_usd": "7.2", "reason": "typo"})), 400, "invalid_path", "date", "`date` must be a date like 2026-04-03, not `2026-13-01`"),
        (get("/v1/fx-rates/CNY/yesterday/history".into()), 400, "invalid_path", "date", "`date` must be a date like 2026-04-03"),
        // Bodies
        (body(Method::POST, "/v1/policies".into(), json!({"name": "x", "scope": "global", "runtime": "lua", "source": "x"})), 400, "invalid_body", "runtime", "`runtime` must be `rhai` or `wasm`, not `lua`"),
        (body(Method::PUT, "/v1/fx-rates/CNY/2026-01-01".into(), json!({"per_usd": "7.2"})), 400, "invalid_body", "reason", "`reason` is required"),
        (
            body(Method::POST, "/v1/branches".into(), json!({"id": "bj"})),
            400,
            "invalid_body",
            "name",
            "`name` is required",
        ),
        (
            body(
                Method::POST,
                "/v1/brands".into(),
                json!({"id": "bmw", "name": "BMW", "introduced_at": "last year"}),
            ),
            400,
            "invalid_body",
            "introduced_at",
            "`introduced_at` must be a date like 2026-04-03",
        ),
        (
            body(
                Method::POST,
                "/v1/fx-rates".into(),
                json!({"currency": "EUR", "date": "2026-13-01", "per_usd": "0.9"}),
            ),
            400,
            "invalid_body",
            "date",
            "`date` must be a date like 2026-04-03",
        ),
        (
            body(
                Method::POST,
                "/v1/fx-rates".into(),
                json!({"currency": "EUR", "date": "2026-01-01", "per_usd": ""}),
            ),
            400,
            "invalid_body",
            "per_usd",
            "is not a decimal number",
        ),
        (
            body(
                Method::POST,
                "/v1/tokens".into(),
                json!({"role": "boss", "user": "x"}),
            ),
            400,
            "invalid_body",
            "role",
            "`role` must be one of `admin`, `manager`, `rep`, not `boss`",
        ),
        (
            body(
                Method::PUT,
                "/v1/branches/sh/pipeline".into(),
                json!({"stages": "lead", "moves": []}),
            ),
            400,
            "invalid_body",
            "stages",
            "`stages` must be a list",
        ),
        (
            body(
                Method::POST,
                "/v1/customers".into(),
                json!({"name": "x", "branch": "sh", "segment": "alien", "source": "assigned"}),
            ),
            400,
            "invalid_body",
            "segment",
            "`segment` must be one of",
        ),
        (
            body(
                Method::PATCH,
                format!("/v1/customers/{c}"),
                json!({"owner": 7}),
            ),
            400,
            "invalid_body",
            "owner",
            "`owner` must be a string, not integer `7`",
        ),
        (
            body(
                Method::POST,
                format!("/v1/customers/{c}/records"),
                json!({"kind": "call", "summary": "x", "at": "June"}),
            ),
            400,
            "invalid_body",
            "at",
            "`at` must be a date like 2026-04-03 or an RFC 3339 time",
        ),
        (
            body(
                Method::PATCH,
                format!("/v1/customers/{c}/records/{rec}"),
                json!({"kind": "fax"}),
            ),
            400,
            "invalid_body",
            "kind",
            "`kind` must be one of `visit`, `call`, `meeting`, `message`, not `fax`",
        ),
        (
            body(
                Method::POST,
                "/v1/deals".into(),
                json!({"customer_id": c, "title": "x", "owner": "li", "currency": "CNY", "opened_at": "June", "lines": []}),
            ),
            400,
            "invalid_body",
            "opened_at",
            "`opened_at` must be a date like 2026-04-03 or an RFC 3339 time",
        ),
        (
            body(
                Method::POST,
                "/v1/deals".into(),
                json!({"customer_id": c, "title": "x", "owner": "li", "currency": "CNY",
            "lines": [{"brand": "volvo", "product": "XC90", "amount": true, "cost": "1"}]}),
            ),
            400,
            "invalid_body",
            "lines[0].amount",
            "`lines[0].amount` must be a decimal number",
        ),
        (
            body(
                Method::PATCH,
                format!("/v1/deals/{d}"),
                json!({"prepayment_ratio": ""}),
            ),
            400,
            "invalid_body",
            "prepayment_ratio",
            "is not a decimal number",
        ),
        (
            body(
                Method::POST,
                format!("/v1/deals/{d}/transitions"),
                json!({"to": "lost", "at": 5}),
            ),
            400,
            "invalid_body",
            "at",
            "`at` must be a date like 2026-04-03 or an RFC 3339 time like 2026-04-03T09:30:00Z, not integer `5`",
        ),
        (
            body(
                Method::POST,
                format!("/v1/deals/{d}/transitions"),
                json!({"to": "lost", "dry": true}),
            ),
            400,
            "invalid_body",
            "dry",
            "`dry` is not a field of this body",
        ),
        (
            body(Method::POST, format!("/v1/deals/{d}/cancel"), json!({})),
            400,
            "invalid_body",
            "reason",
            "`reason` is required",
        ),
        (
            body(
                Method::POST,
                "/v1/settlements".into(),
                json!({"branch": "sh"}),
            ),
            400,
            "invalid_body",
            "period",
            "`period` is required",
        ),
        (
            body(
                Method::POST,
                "/v1/policies/new-brand-bonus/versions/1/activate".into(),
                json!({"effective_from": "next week"}),
            ),
            400,
            "invalid_body",
            "effective_from",
            "`effective_from` must be a date like 2026-04-03",
        ),
        (
            body(
                Method::POST,
                "/v1/policies/new-brand-bonus/versions/1/simulate".into(),
                json!({"branch": "sh", "period": "2026-03", "effective_from": "2026-03-32"}),
            ),
            400,
            "invalid_body",
            "effective_from",
            "`effective_from` must be a date like 2026-04-03",
        ),
        (
            body(
                Method::POST,
                format!("/v1/tasks/{t}/complete"),
                json!({"note": 5}),
            ),
            400,
            "invalid_body",
            "note",
            "`note` must be a string",
        ),
        // Refused by the rules, after parsing
        (
            body(
                Method::POST,
                "/v1/branches".into(),
                json!({"id": "Bad Id", "name": "x"}),
            ),
            422,
            "validation_failed",
            "id",
            "`id`",
        ),
        (
            body(Method::POST, format!("/v1/tasks/{t}/dismiss"), json!({})),
            422,
            "validation_failed",
            "note",
            "`note`",
        ),
        (
            body(
                Method::POST,
                format!("/v1/deals/{d}/transitions"),
                json!({"to": "nowhere"}),
            ),
            422,
            "invalid_transition",
            "to",
            "cannot move to `nowhere`",
        ),
    ];
    for ((method, path, b), status, code, field, words) in cases {
        // When a client sends the bad input
        let r = app
            .send(method.clone(), &path, Some(ADMIN), b.clone())
            .await;
        // Then it is refused with the code, the field in details, and a
        // message that says what is expected in the API's own words
        let what = format!("{method} {path} {}", b.unwrap_or_default());
        assert_eq!(r.status.as_u16(), status, "{what}: {}", r.body);
        assert_eq!(r.code(), code, "{what}: {}", r.body);
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{what}: {}",
            r.body
        );
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(words),
            "{what}: message `{message}` lacks `{words}`"
        );
        for phrase in LIBRARY_WORDING {
            assert!(
                !message.contains(phrase),
                "{what}: message `{message}` says `{phrase}`"
            );
        }
    }
    // And none of it changed anything
    assert_eq!(
        app.get(&format!("/v1/deals/{d}"), ADMIN).await.body["version"],
        2
    );
    assert_eq!(
        app.get("/v1/tasks?branch=sh&status=open", ADMIN).await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["id"] == t.as_str())
            .count(),
        1
    );
}

#[tokio::test]
async fn a_task_is_completed_with_no_body_at_all() {
    // Given an open follow-up task
    let f = full_world().await;
    let app = &f.w.app;
    let path = format!("/v1/tasks/{}/complete", f.task);
    // When its assignee completes it with no body and no Content-Type
    let r = exact(
        app,
        Method::POST,
        &path,
        &[("authorization", &format!("Bearer {}", f.w.rep))],
        Vec::new(),
    )
    .await;
    // Then it is done, without a note
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "done");
    assert!(r.body["note"].is_null(), "{}", r.body);
    // And dismissing another one with no body asks for the note, naming it
    let open = app.get("/v1/tasks?branch=sh&status=open", ADMIN).await;
    let other = open.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = exact(
        app,
        Method::POST,
        &format!("/v1/tasks/{other}/dismiss"),
        &[("authorization", &format!("Bearer {}", f.w.rep))],
        Vec::new(),
    )
    .await;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(r.body["error"]["details"]["field"], "note");
    // And the task stays done after a reopen
    let dir = f.w.app.close().await;
    let app = TestApp::reopen(dir).await;
    let t = app.get("/v1/tasks?branch=sh&status=done", ADMIN).await;
    assert_eq!(t.body["items"][0]["id"], f.task.as_str());
}

#[tokio::test]
async fn a_day_is_accepted_wherever_a_date_or_an_instant_is_meant() {
    // Given a branch with a customer
    let w = world().await;
    let app = &w.app;
    // When a record is imported with only its day
    let r = app
        .post(
            &format!("/v1/customers/{}/records", w.customer),
            &w.rep,
            json!({"kind": "call", "summary": "Called", "at": "2025-03-15"}),
        )
        .await;
    // Then it happened at the start of that day (UTC)
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["at"], "2025-03-15T00:00:00.000Z");
    // When follow-ups are asked for as of a day and due before a day
    let r = app
        .get(
            "/v1/followups?branch=sh&as_of=2026-04-03&due_before=2026-05-01",
            &w.mgr,
        )
        .await;
    // Then both are read as days
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["as_of"], "2026-04-03T00:00:00.000Z");
    // And the same instants as RFC 3339 times give the same answer
    let t = app
        .get(
            "/v1/followups?branch=sh&as_of=2026-04-03T00:00:00Z&due_before=2026-05-01T00:00:00%2B00:00",
            &w.mgr,
        )
        .await;
    assert_eq!(t.body, r.body);
    // And a report takes days for its range
    let r = app
        .get(
            "/v1/reports/referrals?branch=sh&from=2026-01-01&to=2026-03-31",
            &w.mgr,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["from"].as_str(), r.body["to"].as_str()),
        (Some("2026-01-01"), Some("2026-03-31"))
    );
    // And an empty value is a bad value like any other, named
    let r = app.get("/v1/followups?branch=sh&as_of=", &w.mgr).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "as_of");
}

/// True for `2026-03-15T09:30:00.000Z` exactly.
fn is_millisecond_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            10 => *c == b'T',
            13 | 16 => *c == b':',
            19 => *c == b'.',
            23 => *c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Every string in `v` that starts like a time (`YYYY-MM-DDT`), with its path.
fn times_in(v: &Value, path: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            if b.len() > 10
                && b[10] == b'T'
                && b[..10].iter().enumerate().all(|(i, c)| {
                    if i == 4 || i == 7 {
                        *c == b'-'
                    } else {
                        c.is_ascii_digit()
                    }
                })
            {
                out.push((path.to_string(), s.clone()));
            }
        }
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| times_in(x, &format!("{path}[{i}]"), out)),
        Value::Object(o) => o
            .iter()
            .for_each(|(k, x)| times_in(x, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_time_in_every_response_has_milliseconds() {
    // Given every kind of resource, several created at whole seconds
    let f = full_world().await;
    let app = &f.w.app;
    let r = app
        .post(
            &format!("/v1/deals/{}/cancel", f.deal),
            &f.w.mgr,
            json!({"reason": "customer withdrew"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.patch(
        &format!("/v1/customers/{}/records/{}", f.w.customer, f.record),
        &f.w.rep,
        json!({"summary": "Met the buyer and the CFO"}),
        None,
    )
    .await;
    // When every GET route of the OpenAPI document is read
    let doc = app
        .send(Method::GET, "/openapi.json", None, None)
        .await
        .body;
    let mut read = 0;
    let mut found = Vec::new();
    // (the session routes are read as a signed-in browser)
    let (session, _) = app.sign_in(ADMIN).await;
    for (template, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() || template == "/v1/events" || template == "/metrics" {
            continue;
        }
        let path = fill(template, &f);
        let r = if template.starts_with("/v1/sessions") {
            app.send_session(Method::GET, &path, &session, None, &[])
                .await
        } else {
            app.get(&path, ADMIN).await
        };
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        times_in(&r.body, &path, &mut found);
        read += 1;
    }
    // Then every time in them is RFC 3339 UTC with milliseconds
    assert!(read >= 25, "only {read} routes read");
    assert!(found.len() >= 30, "only {} times seen", found.len());
    let bad: Vec<_> = found
        .iter()
        .filter(|(_, t)| !is_millisecond_time(t))
        .collect();
    assert!(bad.is_empty(), "times without milliseconds: {bad:?}");
    // And the statement's CSV holds no other form of time either
    let csv = app
        .get(
            "/v1/statements?branch=sh&rep=li&period=2026-03&format=csv",
            ADMIN,
        )
        .await;
    let text = csv.body.as_str().unwrap_or_default();
    let mut in_csv = Vec::new();
    for cell in text.split([',', '\n', ' ', '"']) {
        times_in(&json!(cell), "csv", &mut in_csv);
    }
    assert!(
        in_csv.iter().all(|(_, t)| is_millisecond_time(t)),
        "{in_csv:?}"
    );
}

/// A GET path of the document with its parameters filled from `f`, and the
/// query a route needs. A new route with an unknown parameter fails here,
/// asking for a fixture.
fn fill(template: &str, f: &Full) -> String {
    let id = match template.split('/').nth(2).unwrap_or_default() {
        "branches" => "sh".to_string(),
        "brands" => "volvo".to_string(),
        "customers" => f.w.customer.clone(),
        "deals" => f.deal.clone(),
        "settlements" => f.settlement.clone(),
        "tasks" => f.task.clone(),
        "tokens" => f.token.clone(),
        "jobs" => f.job.clone(),
        other => format!("<no fixture for /v1/{other}>"),
    };
    let mut path = template
        .replace("{id}", &id)
        .replace("{record}", &f.record)
        .replace("{name}", "new-brand-bonus")
        .replace("{version}", "1")
        .replace("{currency}", "CNY")
        .replace("{date}", "2026-01-01");
    assert!(!path.contains('{'), "add a fixture for {template}");
    let query = match template {
        "/v1/records" | "/v1/reports/team" | "/v1/reports/referrals" | "/v1/reports/pipeline" => {
            "?branch=sh"
        }
        "/v1/statements" => "?branch=sh&rep=li&period=2026-03",
        _ => "",
    };
    path.push_str(query);
    path
}
