//! `GET /v1/events`: server-sent events of transitions, vetoes and
//! activations, each subscriber seeing only its own scope.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use dealflow_tests::{TestApp, ADMIN};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// An open event stream.
struct Stream {
    body: Body,
    buf: String,
}

async fn subscribe(app: &TestApp, token: &str) -> Stream {
    let req = Request::get("/v1/events")
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let res = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    Stream {
        body: res.into_body(),
        buf: String::new(),
    }
}

impl Stream {
    /// The next event as (kind, data). Bounded so a missing event fails the
    /// test instead of hanging it.
    async fn next(&mut self) -> (String, Value) {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                let mut kind = String::new();
                let mut data = String::new();
                for line in frame.lines() {
                    if let Some(k) = line.strip_prefix("event: ") {
                        kind = k.to_string();
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data.push_str(d);
                    }
                }
                if kind.is_empty() {
                    continue; // keep-alive comment
                }
                return (kind, serde_json::from_str(&data).unwrap_or(Value::Null));
            }
            let frame = tokio::time::timeout(Duration::from_secs(30), self.body.frame())
                .await
                .expect("an event within the bound")
                .expect("stream open")
                .expect("frame");
            if let Ok(data) = frame.into_data() {
                self.buf.push_str(&String::from_utf8_lossy(&data));
            }
        }
    }
}

#[tokio::test]
async fn subscribers_see_transitions_vetoes_and_activations_in_their_scope_only() {
    // Given two branches and a subscriber in each
    let app = TestApp::new().await;
    app.branch("sh").await;
    app.branch("bj").await;
    app.brand("volvo").await;
    let sh_rep = app.token("rep", Some("sh"), "li").await;
    let bj_mgr = app.token("manager", Some("bj"), "zhao").await;
    let mut sh_events = subscribe(&app, &sh_rep).await;
    let mut bj_events = subscribe(&app, &bj_mgr).await;

    // When a deal moves in sh, is vetoed at quote, and a deal moves in bj
    let c = app.customer(ADMIN, "sh", "li").await;
    let d = app.deal(ADMIN, &c, "li", "volvo").await;
    for to in ["qualify", "visit"] {
        assert_eq!(app.move_to(&sh_rep, &d, to).await.status, StatusCode::OK);
    }
    assert_eq!(
        app.move_to(&sh_rep, &d, "quote").await.code(),
        "guard_rejected"
    );
    let bc = app.customer(ADMIN, "bj", "zhao").await;
    let bd = app.deal(ADMIN, &bc, "zhao", "volvo").await;
    assert_eq!(
        app.move_to(ADMIN, &bd, "qualify").await.status,
        StatusCode::OK
    );
    let r = app
        .post(
            "/v1/policies/quote-late/versions/1/activate",
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // Then sh's rep sees its two transitions, the veto and the global activation
    let (k, e) = sh_events.next().await;
    assert_eq!(
        (k.as_str(), e["data"]["to"].as_str()),
        ("transition", Some("qualify"))
    );
    let (k, e) = sh_events.next().await;
    assert_eq!(
        (k.as_str(), e["data"]["to"].as_str()),
        ("transition", Some("visit"))
    );
    let (k, e) = sh_events.next().await;
    assert_eq!(k, "veto");
    assert_eq!(e["data"]["policy"], "quote-late");
    let (k, e) = sh_events.next().await;
    assert_eq!(k, "policy_activated", "{e}");
    // And bj's manager sees only bj's transition, then the activation
    let (k, e) = bj_events.next().await;
    assert_eq!(k, "transition");
    assert_eq!(e["data"]["deal"], bd.as_str());
    assert_eq!(e["branch"], "bj");
    let (k, _) = bj_events.next().await;
    assert_eq!(k, "policy_activated");
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
        let (kind, e) = events.next().await;
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
