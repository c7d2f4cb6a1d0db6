//! `GET /v1/events`: every event reaches exactly the callers who may read
//! its resource (checked against REST for each role), every kind is
//! published, a client resumes with `Last-Event-ID` without loss, gaps or
//! repeats (across a restart and a SIGKILL), learns explicitly when the
//! retention took what it asked for, and a client that goes away leaves
//! nothing behind.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use dealflow::service::Retention;
use dealflow_tests::{start_binary, Session, TestApp, ADMIN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

/// How long a test waits for an event before failing.
const BOUND: Duration = Duration::from_secs(30);

/// One server-sent event.
#[derive(Debug, Clone)]
struct Sse {
    /// The `id:` field.
    id: Option<u64>,
    /// The `event:` field.
    kind: String,
    /// The `data:` field as JSON.
    data: Value,
}

impl Sse {
    /// The `href` of the event's resource.
    fn href(&self) -> &str {
        self.data["resource"]["href"].as_str().unwrap_or_default()
    }
}

/// Parses server-sent events out of the text received so far.
#[derive(Default)]
struct Parser {
    buf: String,
}

impl Parser {
    /// The next complete event, if one has arrived (comments skipped).
    fn next(&mut self) -> Option<Sse> {
        while let Some(end) = self.buf.find("\n\n") {
            let frame: String = self.buf.drain(..end + 2).collect();
            let (mut id, mut kind, mut data) = (None, String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = Some(v.parse().expect("numeric id"));
                } else if let Some(v) = line.strip_prefix("event: ") {
                    kind = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            if !kind.is_empty() {
                let data = serde_json::from_str(&data).expect("data is JSON");
                return Some(Sse { id, kind, data });
            }
        }
        None
    }
}

/// An open event stream through the router.
struct Stream {
    body: Body,
    parser: Parser,
}

/// Subscribes as `token`, resuming after `last_event_id` when given.
async fn subscribe_after(app: &TestApp, token: &str, last_event_id: Option<&str>) -> Stream {
    let mut req = Request::get("/v1/events").header("authorization", format!("Bearer {token}"));
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = app
        .router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    Stream {
        body: res.into_body(),
        parser: Parser::default(),
    }
}

/// Subscribes as a browser does with its session cookie (`EventSource`
/// sends it; it sends no Authorization header).
async fn subscribe_with_cookie(app: &TestApp, session: &Session) -> Stream {
    let req = Request::get("/v1/events")
        .header("cookie", format!("dealflow_session={}", session.id))
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    Stream {
        body: res.into_body(),
        parser: Parser::default(),
    }
}

async fn subscribe(app: &TestApp, token: &str) -> Stream {
    subscribe_after(app, token, None).await
}

impl Stream {
    /// The next event; fails the test when none comes within [`BOUND`].
    async fn next(&mut self) -> Sse {
        loop {
            if let Some(e) = self.parser.next() {
                return e;
            }
            let frame = tokio::time::timeout(BOUND, self.body.frame())
                .await
                .expect("an event within the bound")
                .expect("stream open")
                .expect("frame");
            if let Ok(data) = frame.into_data() {
                self.parser.buf.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }

    /// Every event until the stream ends; fails the test when it does not
    /// end within [`BOUND`].
    async fn until_end(&mut self) -> Vec<Sse> {
        let mut out = Vec::new();
        loop {
            while let Some(e) = self.parser.next() {
                out.push(e);
            }
            let frame = tokio::time::timeout(BOUND, self.body.frame())
                .await
                .expect("the stream ends within the bound");
            match frame {
                None => return out,
                Some(frame) => {
                    if let Ok(data) = frame.expect("frame").into_data() {
                        self.parser.buf.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
    }

    /// Every event up to and including the `brand_created` of `marker`.
    async fn until_brand(&mut self, marker: &str) -> Vec<Sse> {
        let mut out = Vec::new();
        loop {
            let e = self.next().await;
            let done = e.kind == "brand_created" && e.data["resource"]["id"] == marker;
            out.push(e);
            if done {
                return out;
            }
        }
    }
}

/// A subscriber of the scenario.
struct Subscriber {
    name: &'static str,
    token: String,
    stream: Stream,
    /// Everything it received, in order.
    received: Vec<Sse>,
}

/// The scenario's server, its subscribers (the admin first) and what has
/// been checked so far.
struct Scenario {
    app: TestApp,
    subs: Vec<Subscriber>,
    steps: usize,
    kinds: BTreeSet<String>,
}

impl Scenario {
    fn token(&self, name: &str) -> String {
        self.subs
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.token.clone())
            .expect("a subscriber of that name")
    }

    /// Ends a step: a marker event everyone may read, then, for every
    /// event of the step (the admin receives all of them), each
    /// subscriber received it if and only if `GET` on its resource
    /// answers that subscriber 200 (and it is refused with 403 otherwise),
    /// with the same content the admin received.
    async fn check(&mut self, step: &str) {
        self.steps += 1;
        let marker = format!("marker-{}", self.steps);
        self.app.brand(&marker).await;
        let mut got: Vec<Vec<Sse>> = Vec::new();
        for s in &mut self.subs {
            got.push(s.stream.until_brand(&marker).await);
        }
        let all: BTreeMap<u64, Sse> = got[0]
            .iter()
            .map(|e| (e.id.expect("an id"), e.clone()))
            .collect();
        for e in all.values() {
            self.kinds.insert(e.kind.clone());
            assert!(
                e.data["resource"]["kind"].is_string() && e.data["resource"]["id"].is_string(),
                "{step}: {} names no resource: {}",
                e.kind,
                e.data
            );
            for (s, events) in self.subs.iter().zip(&got) {
                let status = self.app.get(e.href(), &s.token).await.status;
                let copy = events.iter().find(|r| r.id == e.id);
                match copy {
                    Some(c) => {
                        assert_eq!(
                            status,
                            StatusCode::OK,
                            "{step}: {} received {} about {} but may not read it",
                            s.name,
                            e.kind,
                            e.href()
                        );
                        assert_eq!(c.data, e.data, "{step}: {} got another payload", s.name);
                    }
                    None => assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{step}: {} did not receive {} about {}, which it reads with {status}",
                        s.name,
                        e.kind,
                        e.href()
                    ),
                }
            }
        }
        for (s, events) in self.subs.iter_mut().zip(got) {
            for e in &events {
                assert!(
                    all.contains_key(&e.id.expect("an id")),
                    "{step}: {} received an event the admin did not: {e:?}",
                    s.name
                );
            }
            s.received.extend(events);
        }
    }
}

/// A communication record by `token`; returns its id.
async fn record(app: &TestApp, token: &str, customer: &str) -> String {
    app.ok(
        &format!("/v1/customers/{customer}/records"),
        token,
        json!({"kind": "call", "summary": "asked about the fleet"}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// A PATCH that must succeed.
async fn patch_ok(app: &TestApp, path: &str, token: &str, body: Value) {
    let r = app.patch(path, token, body, None).await;
    assert_eq!(r.status, StatusCode::OK, "PATCH {path}: {}", r.body);
}

/// Moves a deal as the admin, forcing any veto.
async fn force(app: &TestApp, deal: &str, to: &str) {
    app.ok(
        &format!("/v1/deals/{deal}/transitions"),
        ADMIN,
        json!({"to": to, "override_reason": "events scenario"}),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_exactly_the_callers_who_may_read_its_resource() {
    // Given branches a and b, and subscribers: the admin, a manager of
    // each branch, and reps li and zhao of branch a
    let app = TestApp::new().await;
    app.branch("a").await;
    app.branch("b").await;
    let tokens = [
        ("admin", ADMIN.to_string()),
        ("manager a", app.token("manager", Some("a"), "wang").await),
        ("manager b", app.token("manager", Some("b"), "zhou").await),
        ("rep li", app.token("rep", Some("a"), "li").await),
        ("rep zhao", app.token("rep", Some("a"), "zhao").await),
    ];
    let mut subs = Vec::new();
    for (name, token) in tokens {
        subs.push(Subscriber {
            name,
            stream: subscribe(&app, &token).await,
            token,
            received: Vec::new(),
        });
    }
    let mut sc = Scenario {
        app,
        subs,
        steps: 0,
        kinds: BTreeSet::new(),
    };
    let (mgr_a, li, zhao) = (
        sc.token("manager a"),
        sc.token("rep li"),
        sc.token("rep zhao"),
    );

    // When the catalog grows: a branch, brands, a rate, b's pipeline
    sc.app.branch("c").await;
    sc.app.brand("volvo").await;
    sc.app.brand("byd").await;
    sc.app
        .ok(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "CNY", "date": "2026-01-01", "per_usd": "7.10"}),
        )
        .await;
    let r = sc
        .app
        .send_raw(
            axum::http::Method::PUT,
            "/v1/fx-rates/CNY/2026-01-01",
            Some(ADMIN),
            Some(
                json!({"per_usd": "7.15", "reason": "typo"})
                    .to_string()
                    .into_bytes(),
            ),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    sc.app.one_move_pipeline("b").await;
    sc.check("catalog").await;

    // When customers are created (one assigned by policy) and changed
    let app = &sc.app;
    let cus_li = app.customer(&li, "a", "li").await;
    let cus_zhao = app.customer(ADMIN, "a", "zhao").await;
    let cus_b = app.customer(ADMIN, "b", "chen").await;
    let body = json!({"name": "Unassigned Ltd", "branch": "a", "segment": "enterprise",
                      "source": "assigned"});
    let cus_free = app.ok("/v1/customers", &mgr_a, body).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    patch_ok(
        app,
        &format!("/v1/customers/{cus_li}"),
        &li,
        json!({"name": "ACME Fleet"}),
    )
    .await;
    patch_ok(
        app,
        &format!("/v1/customers/{cus_free}"),
        ADMIN,
        json!({"owner": "wang", "reason": "wang takes the walk-ins"}),
    )
    .await;
    sc.check("customers").await;

    // When records are logged by each rep and one is corrected
    let app = &sc.app;
    let rec_li = record(app, &li, &cus_li).await;
    record(app, &zhao, &cus_zhao).await;
    record(app, ADMIN, &cus_b).await;
    patch_ok(
        app,
        &format!("/v1/customers/{cus_li}/records/{rec_li}"),
        &li,
        json!({"summary": "asked about the fleet and a service plan"}),
    )
    .await;
    sc.check("records").await;

    // When deals are opened and changed, moved, vetoed and overridden
    let app = &sc.app;
    let deal_li = app.deal(&li, &cus_li, "li", "volvo").await;
    let deal_zhao = app.deal(&zhao, &cus_zhao, "zhao", "byd").await;
    let deal_b = app.deal(ADMIN, &cus_b, "chen", "volvo").await;
    patch_ok(
        app,
        &format!("/v1/deals/{deal_li}"),
        &li,
        json!({"title": "Fleet of 30"}),
    )
    .await;
    for to in ["qualify", "visit"] {
        assert_eq!(app.move_to(&li, &deal_li, to).await.status, StatusCode::OK);
    }
    let r = app.move_to(&li, &deal_li, "quote").await;
    assert_eq!(r.code(), "guard_rejected", "{}", r.body);
    sc.check("deals").await;

    // When the two deals of a are signed (after-sign tasks and events,
    // re-tiering) and one of b's moves
    let app = &sc.app;
    force(app, &deal_li, "quote").await;
    force(app, &deal_li, "sign").await;
    for to in ["qualify", "visit", "quote", "sign"] {
        force(app, &deal_zhao, to).await;
    }
    force(app, &deal_b, "sign").await;
    app.services.tiering_idle().await;
    sc.check("signings").await;

    // When li completes a follow-up task and a manager re-tiers
    let task = sc.subs[3]
        .received
        .iter()
        .find(|e| e.kind == "task_created")
        .expect("li received their follow-up tasks")
        .data["resource"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let app = &sc.app;
    let r = app
        .post(&format!("/v1/tasks/{task}/complete"), &li, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.post("/v1/branches/a/retier", &mgr_a, json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    sc.check("tasks").await;

    // When a's manager drafts, approves and pays this month's bonuses
    let period = chrono::Utc::now().format("%Y-%m").to_string();
    let app = &sc.app;
    let draft = app
        .ok(
            "/v1/settlements",
            &mgr_a,
            json!({"branch": "a", "period": period}),
        )
        .await;
    assert_eq!(draft["totals"].as_array().map(Vec::len), Some(2), "{draft}");
    let id = draft["id"].as_str().unwrap();
    app.ok(&format!("/v1/settlements/{id}/approve"), &mgr_a, json!({}))
        .await;
    app.ok(&format!("/v1/settlements/{id}/pay"), &mgr_a, json!({}))
        .await;
    sc.check("settlement").await;

    // When the paid contract of li is cancelled, and an open deal of zhao
    // is given to li
    let app = &sc.app;
    app.ok(
        &format!("/v1/deals/{deal_li}/cancel"),
        &mgr_a,
        json!({"reason": "the customer withdrew"}),
    )
    .await;
    let open = app.deal(&zhao, &cus_zhao, "zhao", "volvo").await;
    sc.app.services.tiering_idle().await;
    sc.check("cancellation").await;
    patch_ok(
        &sc.app,
        &format!("/v1/deals/{open}"),
        &mgr_a,
        json!({"owner": "li", "reason": "li covers this account now"}),
    )
    .await;
    sc.check("deal owner").await;

    // When policies change: a global version, its rollback, and a's own
    // after-hook, which reports an event, then is deactivated
    let app = &sc.app;
    let source = format!(
        "{}\n// v2\n",
        include_str!("../../policies/quote-late.rhai")
    );
    let up = app
        .ok(
            "/v1/policies",
            ADMIN,
            json!({"name": "quote-late", "scope": "global", "runtime": "rhai", "source": source}),
        )
        .await;
    let v2 = up["version"].as_u64().unwrap();
    app.ok(
        &format!("/v1/policies/quote-late/versions/{v2}/activate"),
        ADMIN,
        json!({}),
    )
    .await;
    app.ok(
        "/v1/policies/quote-late/versions/1/activate",
        ADMIN,
        json!({}),
    )
    .await;
    let notes =
        r#"fn after(input) { #{ events: [#{ kind: "noted", message: `moved to ${input.to}` }] } }"#;
    app.ok(
        "/v1/policies",
        &mgr_a,
        json!({"name": "a-notes", "scope": "branch:a", "runtime": "rhai", "source": notes}),
    )
    .await;
    app.ok(
        "/v1/policies/a-notes/versions/1/activate",
        &mgr_a,
        json!({}),
    )
    .await;
    assert_eq!(
        app.move_to(&li, &open, "qualify").await.status,
        StatusCode::OK
    );
    app.ok("/v1/policies/a-notes/deactivate", &mgr_a, json!({}))
        .await;
    sc.check("policies").await;

    // When a's manager revokes a departing rep's token
    let departing = sc
        .app
        .ok(
            "/v1/tokens",
            ADMIN,
            json!({"role": "rep", "branch": "a", "user": "temp"}),
        )
        .await;
    let path = format!("/v1/tokens/{}", departing["id"].as_str().unwrap());
    let r = sc
        .app
        .send(axum::http::Method::DELETE, &path, Some(&mgr_a), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    sc.check("tokens").await;

    // Then every kind was published, each through the REST rules above
    let all: BTreeSet<String> = dealflow::domain::event::EventKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    let missing: Vec<_> = all.difference(&sc.kinds).collect();
    assert!(missing.is_empty(), "never published: {missing:?}");
    // And the admin's ids follow each other without a hole
    let ids: Vec<u64> = sc.subs[0].received.iter().filter_map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|w| w[1] == w[0] + 1),
        "the admin's ids have holes: {ids:?}"
    );
    // And each rep heard of their own award only, and of no settlement
    for (i, rep) in [(3, "li"), (4, "zhao")] {
        let received = &sc.subs[i].received;
        let awards: Vec<&Sse> = received
            .iter()
            .filter(|e| e.kind == "award_announced")
            .collect();
        assert_eq!(awards.len(), 1, "{rep}: {awards:?}");
        assert_eq!(awards[0].data["data"]["rep"], rep);
        assert_eq!(awards[0].data["data"]["total"], "800");
        assert!(
            !received.iter().any(|e| e.kind.starts_with("settlement_")),
            "{rep} received a settlement event"
        );
    }
    // And a's manager heard both awards, b's manager none
    let awards = |i: usize| {
        sc.subs[i]
            .received
            .iter()
            .filter(|e| e.kind == "award_announced")
            .count()
    };
    assert_eq!((awards(1), awards(2)), (2, 0));
}

#[tokio::test]
async fn a_client_resumes_after_its_last_event_id_without_loss_gaps_or_repeats() {
    // Given an admin subscribed while three brands are added
    let app = TestApp::new().await;
    let mut first = subscribe(&app, ADMIN).await;
    for b in ["b1", "b2", "b3"] {
        app.brand(b).await;
    }
    let seen = first.until_brand("b1").await;
    let resume_at = seen.last().unwrap().id.expect("an id");
    drop(first);

    // When three more are added while it is away, and it reconnects with
    // the id of the first
    for b in ["b4", "b5", "b6"] {
        app.brand(b).await;
    }
    let mut again = subscribe_after(&app, ADMIN, Some(&resume_at.to_string())).await;

    // Then it receives the five it missed, in order, then live ones
    app.brand("b7").await;
    let got = again.until_brand("b7").await;
    let names: Vec<&str> = got
        .iter()
        .map(|e| e.data["resource"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b2", "b3", "b4", "b5", "b6", "b7"]);
    let ids: Vec<u64> = got.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(ids, (resume_at + 1..=resume_at + 6).collect::<Vec<_>>());
    drop(again);

    // And after a restart the log still has them
    let dir = app.close().await;
    let app = TestApp::reopen(dir).await;
    let mut after_restart = subscribe_after(&app, ADMIN, Some(&ids[2].to_string())).await;
    app.brand("b8").await;
    let names: Vec<String> = after_restart
        .until_brand("b8")
        .await
        .iter()
        .map(|e| e.data["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["b5", "b6", "b7", "b8"]);
}

#[tokio::test]
async fn a_slow_subscriber_catches_up_from_the_log() {
    // Given a subscriber that reads nothing while more events happen than
    // the live fan-out buffers for it (1,024)
    let app = TestApp::new().await;
    let mut slow = subscribe(&app, ADMIN).await;
    let n = 1100;
    for i in 0..n {
        app.brand(&format!("b{i}")).await;
    }

    // When it reads at last
    let got = slow.until_brand(&format!("b{}", n - 1)).await;

    // Then it receives every one of them, in order, once
    let names: Vec<String> = got
        .iter()
        .map(|e| e.data["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, (0..n).map(|i| format!("b{i}")).collect::<Vec<_>>());
    let ids: Vec<u64> = got.iter().map(|e| e.id.unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
}

#[tokio::test]
async fn a_position_older_than_the_retention_is_reported_as_lost_never_skipped() {
    // Given a server keeping at most five events, and twelve brands added
    let app = TestApp::with_event_retention(Retention {
        max_age: Duration::from_secs(3600),
        max_events: 5,
    })
    .await;
    let mut watcher = subscribe(&app, ADMIN).await;
    for i in 0..12 {
        app.brand(&format!("b{i}")).await;
    }
    let ids: Vec<u64> = watcher
        .until_brand("b11")
        .await
        .iter()
        .map(|e| e.id.unwrap())
        .collect();
    app.services.event_trim_idle().await;

    // When a client resumes after the first of them
    let mut late = subscribe_after(&app, ADMIN, Some(&ids[0].to_string())).await;

    // Then it is told first that events were lost, and from where it resumes
    let lost = late.next().await;
    assert_eq!(lost.kind, "events_lost");
    assert_eq!(lost.data["after"], ids[0]);
    let next = lost.data["next"].as_u64().unwrap();
    assert!(next > ids[0] + 1 && next <= ids[11] - 4, "{lost:?}");
    assert_eq!(lost.id, Some(next - 1));
    // And then receives every event still kept, in order
    let rest = late.until_brand("b11").await;
    let resumed: Vec<u64> = rest.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(resumed, (next..=ids[11]).collect::<Vec<_>>());

    // When a client resumes from the id the lost event carried
    let mut again = subscribe_after(&app, ADMIN, Some(&(next - 1).to_string())).await;
    // Then it resumes cleanly
    assert_eq!(again.next().await.id, Some(next));

    // When a client resumes from a position this server never had
    let mut ahead = subscribe_after(&app, ADMIN, Some("999999")).await;
    // Then it is told its position is lost, then streams on
    let e = ahead.next().await;
    assert_eq!(
        (e.kind.as_str(), &e.data["after"]),
        ("events_lost", &json!(999999))
    );
    app.brand("b12").await;
    assert_eq!(ahead.next().await.data["resource"]["id"], "b12");
}

#[tokio::test]
async fn a_malformed_last_event_id_is_refused_with_the_field_named() {
    // Given a server
    let app = TestApp::new().await;
    // When a client resumes after something that is not an event id
    let r = app
        .send_raw(
            Method::GET,
            "/v1/events",
            Some(ADMIN),
            None,
            &[("last-event-id", "yesterday")],
        )
        .await;
    // Then it is a 400 naming the header
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_header");
    assert_eq!(r.body["error"]["details"]["field"], "Last-Event-ID");
}

/// A plain HTTP/1.0 exchange over a fresh loopback connection (the body
/// ends with the connection, never chunked): the status code and the body.
async fn http(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
    let mut conn = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.0\r\nhost: test\r\nauthorization: Bearer {ADMIN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut out = String::new();
    conn.read_to_string(&mut out).await.expect("read");
    let code = out[9..12].parse().expect("status code");
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string());
    (code, body.unwrap_or_default())
}

/// The value of the subscriber gauge on `/metrics`.
async fn subscribers(base: &str) -> u64 {
    let (_, text) = http(base, "GET", "/metrics", None).await;
    text.lines()
        .find_map(|l| l.strip_prefix("dealflow_event_subscribers "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the gauge is exported")
}

/// Opens `GET /v1/events` on a raw connection with HTTP `version` (`1.0`:
/// the body is the bare event text) and waits for the response headers.
async fn open_stream(
    base: &str,
    version: &str,
    last_event_id: Option<u64>,
) -> tokio::net::TcpStream {
    let mut conn = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let resume = last_event_id.map_or(String::new(), |id| format!("last-event-id: {id}\r\n"));
    let req = format!(
        "GET /v1/events HTTP/{version}\r\nhost: test\r\nauthorization: Bearer {ADMIN}\r\n{resume}\r\n"
    );
    conn.write_all(req.as_bytes()).await.expect("send");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tokio::time::timeout(BOUND, conn.read(&mut byte))
            .await
            .expect("headers within the bound")
            .expect("read");
        assert_eq!(n, 1, "the server closed the stream");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(
        head.starts_with("HTTP/1.") && head[8..].starts_with(" 200"),
        "{head}"
    );
    conn
}

/// Polls `probe` every 20 ms until it holds, failing after [`BOUND`].
async fn eventually<F: std::future::Future<Output = bool>>(what: &str, probe: impl Fn() -> F) {
    let deadline = tokio::time::Instant::now() + BOUND;
    while !probe().await {
        assert!(tokio::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_away_leaves_no_subscription_and_shutdown_ends_the_rest() {
    // Given the real server with two subscribers on real connections
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start_binary(dir.path());
    let base = server.base.clone();
    let first = open_stream(&base, "1.1", None).await;
    let _second = open_stream(&base, "1.1", None).await;
    assert_eq!(subscribers(&base).await, 2);

    // When one client hangs up
    drop(first);

    // Then its subscription ends without any event having to arrive
    eventually("the gauge drops to 1", || async {
        subscribers(&base).await == 1
    })
    .await;

    // When the server is asked to stop while the other still listens
    let pid = server.child.id() as libc::pid_t;
    // SAFETY: signals our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    // Then it stops gracefully, without waiting for that client
    let deadline = std::time::Instant::now() + BOUND;
    let status = loop {
        if let Some(s) = server.child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never stopped"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_of_acknowledged_writes_survive_sigkill() {
    // Given the real server, and brands added concurrently by 8 clients
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = start_binary(dir.path());
    let base = server.base.clone();
    let mut writers = Vec::new();
    for w in 0..8 {
        let base = base.clone();
        writers.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..10 {
                let id = format!("w{w}-{i}");
                let body = json!({"id": id, "name": id, "introduced_at": "2026-01-01"});
                let (status, _) = http(&base, "POST", "/v1/brands", Some(body)).await;
                assert_eq!(status, 201);
                acked.push(id);
            }
            acked
        }));
    }
    let mut acked = BTreeSet::new();
    for w in writers {
        acked.extend(w.await.expect("writer"));
    }

    // When the server is killed right after the last acknowledgement and
    // restarted
    server.child.kill().expect("SIGKILL");
    server.child.wait().expect("reaped");
    let mut server = start_binary(dir.path());
    let base = server.base.clone();
    let mut conn = open_stream(&base, "1.0", Some(0)).await;
    http(
        &base,
        "POST",
        "/v1/brands",
        Some(json!({"id": "after", "name": "after", "introduced_at": "2026-01-01"})),
    )
    .await;

    // Then the log has one event per acknowledged brand, ids without holes
    let mut parser = Parser::default();
    let mut events = Vec::new();
    'read: loop {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(BOUND, conn.read(&mut chunk))
            .await
            .expect("events within the bound")
            .expect("read");
        assert!(n > 0, "the stream ended");
        parser.buf.push_str(&String::from_utf8_lossy(&chunk[..n]));
        while let Some(e) = parser.next() {
            let done = e.data["resource"]["id"] == "after";
            events.push(e);
            if done {
                break 'read;
            }
        }
    }
    let brands: BTreeSet<String> = events
        .iter()
        .filter(|e| e.kind == "brand_created" && e.data["resource"]["id"] != "after")
        .map(|e| e.data["resource"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(brands, acked);
    let ids: Vec<u64> = events.iter().map(|e| e.id.unwrap()).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>());
    server.child.kill().expect("stop");
    let _ = server.child.wait();
}

#[tokio::test]
async fn a_dropped_stream_is_no_longer_counted() {
    // Given an in-process subscriber
    let app = TestApp::new().await;
    let gauge = |app: &TestApp| {
        let app = app.router.clone();
        async move {
            let res = app
                .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
                .await
                .unwrap();
            let text =
                String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec())
                    .unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("dealflow_event_subscribers "))
                .map(|v| v.to_string())
        }
    };
    let stream = subscribe(&app, ADMIN).await;
    assert_eq!(gauge(&app).await.as_deref(), Some("1"));
    // When its body is dropped (the connection went away)
    drop(stream);
    // Then it is no longer counted
    assert_eq!(gauge(&app).await.as_deref(), Some("0"));
}

#[tokio::test]
async fn a_token_revocation_is_published_to_the_branch() {
    // Given a branch with a manager subscribed and a rep
    let app = TestApp::new().await;
    app.branch("sh").await;
    let mgr = app.token("manager", Some("sh"), "wang").await;
    let issued = app
        .ok(
            "/v1/tokens",
            ADMIN,
            json!({"role": "rep", "branch": "sh", "user": "li"}),
        )
        .await;
    let mut events = subscribe(&app, &mgr).await;

    // When the manager revokes the rep's token
    let id = issued["id"].as_str().unwrap();
    let r = app
        .send(
            axum::http::Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(&mgr),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Then the branch's subscriber sees who lost access, and who revoked it
    let e = events.next().await;
    assert_eq!(e.kind, "token_revoked", "{:?}", e.data);
    assert_eq!(e.data["resource"]["branch"], "sh");
    assert_eq!(
        (
            &e.data["data"]["id"],
            &e.data["data"]["user"],
            &e.data["data"]["by"]
        ),
        (&json!(id), &json!("li"), &json!("wang"))
    );
    // and can read the token it is about (never its secret)
    let r = app.get(e.href(), &mgr).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["status"].as_str(), r.body["token"].as_str()),
        (Some("revoked"), None)
    );
}

#[tokio::test]
async fn event_times_are_written_with_milliseconds() {
    // Given a subscriber and a signed contract (one-move pipeline)
    let app = TestApp::new().await;
    app.branch("sh").await;
    app.brand("volvo").await;
    app.one_move_pipeline("sh").await;
    let mut events = subscribe(&app, ADMIN).await;
    let c = app.customer(ADMIN, "sh", "li").await;
    let d = app.deal(ADMIN, &c, "li", "volvo").await;
    assert_eq!(app.move_to(ADMIN, &d, "sign").await.status, StatusCode::OK);
    // When it is cancelled
    let r = app
        .post(
            &format!("/v1/deals/{d}/cancel"),
            ADMIN,
            json!({"reason": "withdrawn"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Then the transition's and the cancellation's times, in the event and
    // in its data, are RFC 3339 UTC with milliseconds
    let mut seen = 0;
    loop {
        let ev = events.next().await;
        let (kind, e) = (ev.kind.as_str(), &ev.data);
        for t in [&e["at"], &e["data"]["at"]] {
            if let Some(t) = t.as_str() {
                assert!(
                    t.len() == 24 && t.ends_with('Z') && t.as_bytes()[19] == b'.',
                    "{kind}: {t}"
                );
                seen += 1;
            }
        }
        if kind == "deal_cancelled" {
            break;
        }
    }
    assert!(seen >= 3, "{seen} times seen");
}

#[tokio::test]
async fn a_stream_ends_when_its_session_is_signed_out_or_its_token_revoked() {
    // Given a rep following events with the console's session cookie, and
    // another following them with a bearer token
    let app = TestApp::new().await;
    app.branch("sh").await;
    let li = app.token("rep", Some("sh"), "li").await;
    let (session, _) = app.sign_in(&li).await;
    let mut by_cookie = subscribe_with_cookie(&app, &session).await;
    let zhou = app
        .ok(
            "/v1/tokens",
            ADMIN,
            json!({"role": "rep", "branch": "sh", "user": "zhou"}),
        )
        .await;
    let mut by_token = subscribe(&app, zhou["token"].as_str().unwrap()).await;
    app.brand("marker-1").await;
    assert_eq!(by_cookie.until_brand("marker-1").await.len(), 1);
    assert_eq!(by_token.until_brand("marker-1").await.len(), 1);

    // When li signs out
    let r = app
        .send_session(Method::DELETE, "/v1/sessions/current", &session, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Then li's stream says so and ends
    let last = by_cookie.until_end().await;
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!(last[0].kind, "session_ended");
    assert!(last[0].data["message"]
        .as_str()
        .unwrap()
        .contains("signed out"));

    // When zhou's token is revoked
    let id = zhou["id"].as_str().unwrap();
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Then zhou's stream ends too, saying why
    let last = by_token.until_end().await;
    assert_eq!(
        last.last().map(|e| e.kind.as_str()),
        Some("session_ended"),
        "{last:?}"
    );
    assert!(last.last().unwrap().data["message"]
        .as_str()
        .unwrap()
        .contains("revoked"));
}

#[tokio::test]
async fn a_re_tier_job_reports_its_progress_to_the_branch_managers_only() {
    // Given a manager and a rep of sh following events, and customers to tier
    let app = TestApp::new().await;
    app.branch("sh").await;
    let mgr = app.token("manager", Some("sh"), "wang").await;
    let rep = app.token("rep", Some("sh"), "li").await;
    for _ in 0..3 {
        app.customer(&rep, "sh", "li").await;
    }
    let mut manager = subscribe(&app, &mgr).await;
    let mut by_rep = subscribe(&app, &rep).await;

    // When the manager re-tiers the branch as a job
    let r = app
        .send_raw(
            Method::POST,
            "/v1/branches/sh/retier",
            Some(&mgr),
            None,
            &[("prefer", "respond-async")],
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["job"]["id"].as_str().unwrap().to_string();

    // Then the manager's stream carries its progress, without ids, up to
    // a last message saying it succeeded with everything done
    let last = loop {
        let e = manager.next().await;
        if e.kind != "job_progress" {
            continue;
        }
        assert_eq!(e.id, None, "progress is live only: {e:?}");
        assert_eq!(e.data["job"], id.as_str());
        assert_eq!(e.data["kind"], "retier");
        if e.data["state"] != "running" {
            break e;
        }
    };
    assert_eq!(last.data["state"], "succeeded", "{:?}", last.data);
    assert_eq!(last.data["done"], last.data["total"]);
    assert!(last.data["total"].as_u64().unwrap() >= 2);
    let job = app.get(&format!("/v1/jobs/{id}"), &mgr).await;
    assert_eq!(job.body["state"], "succeeded");
    assert_eq!(job.body["result"]["branch"], "sh");
    // And the rep's stream carries none of it
    app.brand("marker-1").await;
    let seen = by_rep.until_brand("marker-1").await;
    assert!(seen.iter().all(|e| e.kind != "job_progress"), "{seen:?}");
}
