//! Key accounts end to end through the router over a real sled store, with
//! the default policies (docs/business-rules.md §1–3, §6): Pareto tiers and their
//! history, visit cadence and follow-ups, tasks after a signing, corrections
//! of communication records, referrals, fair assignment and the team report.

use axum::http::{Method, StatusCode};
use chrono::{DateTime, Duration, SubsecRound, Utc};
use dealflow_tests::{Reply, TestApp, ADMIN};
use serde_json::{json, Value};

/// A branch whose pipeline signs in one move, manager `wang`, reps `li`,
/// `zhao` and `chen`, brand `volvo`, CNY at 7 per USD.
struct World {
    app: TestApp,
    mgr: String,
    li: String,
    zhao: String,
}

async fn world(branch: &str) -> World {
    let app = TestApp::new().await;
    app.ok(
        "/v1/branches",
        ADMIN,
        json!({"id": branch, "name": "Branch", "timezone": "UTC"}),
    )
    .await;
    app.brand("volvo").await;
    app.ok(
        "/v1/fx-rates",
        ADMIN,
        json!({"currency": "CNY", "date": "2020-01-01", "per_usd": "7"}),
    )
    .await;
    app.one_move_pipeline(branch).await;
    let mgr = app.token("manager", Some(branch), "wang").await;
    let li = app.token("rep", Some(branch), "li").await;
    let zhao = app.token("rep", Some(branch), "zhao").await;
    app.token("rep", Some(branch), "chen").await;
    World { app, mgr, li, zhao }
}

/// A time `days` ago, at millisecond precision.
fn days_ago(days: i64) -> DateTime<Utc> {
    (Utc::now() - Duration::days(days)).trunc_subsecs(3)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl World {
    async fn customer(&self, branch: &str, owner: &str, name: &str) -> String {
        let body = json!({"name": name, "branch": branch, "owner": owner,
                          "segment": "enterprise", "source": "self_developed"});
        self.app.ok("/v1/customers", ADMIN, body).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// An open deal of `amount` CNY.
    async fn open_deal(&self, customer: &str, owner: &str, amount: &str) -> String {
        let body = json!({"customer_id": customer, "title": "Contract", "owner": owner,
                          "currency": "CNY", "opened_at": "2020-06-01T00:00:00Z",
                          "lines": [{"brand": "volvo", "product": "p", "amount": amount, "cost": "1"}]});
        self.app.ok("/v1/deals", ADMIN, body).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A deal of `amount` CNY signed at `at`.
    async fn signed(&self, customer: &str, owner: &str, amount: &str, at: DateTime<Utc>) -> String {
        let id = self.open_deal(customer, owner, amount).await;
        self.app
            .ok(
                &format!("/v1/deals/{id}/transitions"),
                ADMIN,
                json!({"to": "sign", "at": rfc(at)}),
            )
            .await;
        id
    }

    async fn tier(&self, customer: &str) -> String {
        let r = self
            .app
            .get(&format!("/v1/customers/{customer}"), ADMIN)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.str("tier")
    }

    async fn history(&self, customer: &str) -> Vec<Value> {
        let r = self
            .app
            .get(&format!("/v1/customers/{customer}/history"), ADMIN)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["items"].as_array().unwrap().clone()
    }

    async fn retier(&self, branch: &str) -> Value {
        let r = self
            .app
            .post(
                &format!("/v1/branches/{branch}/retier"),
                &self.mgr,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// Waits until the background re-tier after signings is done.
    async fn settled(&self) {
        self.app.services.tiering_idle().await;
    }

    async fn followups(&self, query: &str, token: &str) -> Reply {
        self.app.get(&format!("/v1/followups?{query}"), token).await
    }

    async fn upload_branch_policy(&self, name: &str, branch: &str, source: &str) {
        let up = self
            .app
            .ok(
                "/v1/policies",
                &self.mgr,
                json!({"name": name, "scope": format!("branch:{branch}"), "runtime": "rhai", "source": source}),
            )
            .await;
        let v = up["version"].as_u64().unwrap();
        self.app
            .ok(
                &format!("/v1/policies/{name}/versions/{v}/activate"),
                &self.mgr,
                json!({}),
            )
            .await;
    }
}

fn changed(report: &Value) -> Vec<(String, String, String)> {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["customer_id"].as_str().unwrap().to_string(),
                c["from"].as_str().unwrap().to_string(),
                c["to"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn signings_move_tiers_at_exactly_80_and_95_percent_with_reasons_kept() {
    // Given customers whose trailing revenue is 80,000 / 15,000 / 5,000 CNY
    // (exactly 80 % and then exactly 95 % of 100,000) and one without any
    let w = world("sh").await;
    let top = w.customer("sh", "li", "Top").await;
    let mid = w.customer("sh", "li", "Mid").await;
    let low = w.customer("sh", "zhao", "Low").await;
    let none = w.customer("sh", "zhao", "None").await;
    w.signed(&top, "li", "50000", days_ago(10)).await;
    w.signed(&top, "li", "30000", days_ago(20)).await;
    w.signed(&mid, "li", "15000", days_ago(30)).await;
    w.signed(&low, "zhao", "5000", days_ago(40)).await;
    // And contracts that must not count: signed before the trailing 12
    // months, and signed then cancelled
    w.signed(&low, "zhao", "900000", days_ago(400)).await;
    let cancelled = w.signed(&none, "zhao", "900000", days_ago(5)).await;
    w.app
        .ok(
            &format!("/v1/deals/{cancelled}/cancel"),
            &w.mgr,
            json!({"reason": "customer withdrew"}),
        )
        .await;

    // When the signings have been followed by the background re-tier
    w.settled().await;

    // Then the top set reaching exactly 80 % is A, up to exactly 95 % is B,
    // the rest and the customer without revenue C
    assert_eq!(w.tier(&top).await, "A");
    assert_eq!(w.tier(&mid).await, "B");
    assert_eq!(w.tier(&low).await, "C");
    assert_eq!(w.tier(&none).await, "C");
    // And each change is in the customer's history with its reason and the
    // policy version, made by the system after a signing
    let h = w.history(&top).await;
    let last = h.last().unwrap();
    assert_eq!(last["action"], "tier_changed");
    assert_eq!(last["to"], "A");
    assert_eq!(last["by"], "system");
    assert_eq!(last["trigger"], "deal signed");
    assert_eq!(last["policy"], "pareto-tiering");
    assert_eq!(last["version"], 1);
    assert_eq!(last["sha256"].as_str().unwrap().len(), 64);
    // (The re-tier that moved it may have run after its first contract only.)
    let reason = last["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("revenue ") && reason.contains("A to 80 %, B to 95 %"),
        "{reason}"
    );
    assert!(w.history(&none).await.is_empty());

    // And a manager's re-tier now finds nothing to change and says what it read
    let report = w.retier("sh").await;
    assert_eq!(changed(&report), vec![]);
    assert_eq!(report["customers"], 4);
    assert_eq!(report["deals"], 4, "{report}");
    assert_eq!(report["policy"]["name"], "pareto-tiering");

    // When a new contract makes the low customer the biggest
    w.signed(&low, "zhao", "400000", days_ago(1)).await;
    w.settled().await;

    // Then the tiers move (405,000 of 505,000 is 80.2 %): it is A alone, the
    // former top falls to B (96 %), the middle one to C
    assert_eq!(w.tier(&low).await, "A");
    assert_eq!(w.tier(&top).await, "B");
    assert_eq!(w.tier(&mid).await, "C");
    let h = w.history(&top).await;
    assert_eq!(h.len(), 2, "{h:?}");
    assert_eq!(h[1]["from"], "A");
    assert_eq!(h[1]["to"], "B");
}

#[tokio::test]
async fn ties_at_a_boundary_go_to_the_higher_tier() {
    // Given 40,000 / 40,000 / 10,000 / 10,000 CNY: the first 40,000 leaves
    // the A set at 40 %, its twin ties it; the 10,000s tie at the B boundary
    let w = world("sh").await;
    let mut ids = Vec::new();
    for (name, amount) in [
        ("a1", "40000"),
        ("a2", "40000"),
        ("b1", "10000"),
        ("b2", "10000"),
    ] {
        let c = w.customer("sh", "li", name).await;
        w.signed(&c, "li", amount, days_ago(3)).await;
        ids.push(c);
    }
    w.settled().await;
    let mut tiers = Vec::new();
    for c in &ids {
        tiers.push(w.tier(c).await);
    }
    assert_eq!(tiers, ["A", "A", "B", "B"]);
}

#[tokio::test]
async fn a_branch_tier_policy_takes_over_without_a_restart_and_the_retier_lists_its_changes() {
    // Given Pareto tiers in place
    let w = world("sh").await;
    let big = w.customer("sh", "li", "Big").await;
    let small = w.customer("sh", "li", "Small").await;
    w.signed(&big, "li", "99000", days_ago(2)).await;
    w.signed(&small, "li", "1000", days_ago(2)).await;
    w.settled().await;
    assert_eq!(w.tier(&big).await, "A");
    assert_eq!(w.tier(&small).await, "C");

    // When the branch activates its own rule: everyone who bought is A
    w.upload_branch_policy(
        "sh-tiers",
        "sh",
        r#"fn tier(input) {
            #{ tiers: input.customers.map(|c| #{ customer_id: c.customer_id,
                tier: if c.revenue > dec(0) { "A" } else { "C" }, reason: "bought this year" }) }
        }"#,
    )
    .await;
    w.settled().await;

    // Then it takes over at once: the activation re-tiered the branch
    assert_eq!(w.tier(&small).await, "A");
    let h = w.history(&small).await;
    let last = h.last().unwrap();
    assert_eq!(last["policy"], "sh-tiers");
    assert_eq!(last["version"], 1);
    assert_eq!(last["trigger"], "tier policy activated");
    assert_eq!(last["reason"], "bought this year");

    // When, with the background re-tier held, a new version goes live and
    // the manager re-tiers
    w.app.services.pause_tiering();
    w.upload_branch_policy(
        "sh-tiers",
        "sh",
        r#"fn tier(input) {
            #{ tiers: input.customers.map(|c| #{ customer_id: c.customer_id,
                tier: if c.revenue > dec(50000) { "A" } else { "B" }, reason: "over 50,000 CNY or not" }) }
        }"#,
    )
    .await;
    let report = w.retier("sh").await;
    w.app.services.unpause_tiering();

    // Then the re-tier answers with every change and the deciding policy
    assert_eq!(
        changed(&report),
        vec![(small.clone(), "A".into(), "B".into())]
    );
    assert_eq!(report["policy"]["name"], "sh-tiers");
    assert_eq!(report["policy"]["version"], 2);
    assert_eq!(w.tier(&small).await, "B");
    let h = w.history(&small).await;
    let last = h.last().unwrap();
    assert_eq!(last["trigger"], "retier");
    assert_eq!(last["by"], "wang");
    assert_eq!(last["version"], 2);

    // And a tier rule answering nonsense is refused, changing nothing
    w.settled().await;
    w.upload_branch_policy(
        "sh-tiers",
        "sh",
        r#"fn tier(input) { #{ tiers: [#{ customer_id: "nobody", tier: "A" }] } }"#,
    )
    .await;
    let r = w
        .app
        .post("/v1/branches/sh/retier", &w.mgr, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "policy_failed");
    assert_eq!(w.tier(&small).await, "B");

    // And a rep may not re-tier; another branch is not the manager's
    let r = w.app.post("/v1/branches/sh/retier", &w.li, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w
        .app
        .post("/v1/branches/nope/retier", ADMIN, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cadence_due_and_overdue_on_both_sides_of_each_edge() {
    // Given an A customer (monthly), a B customer (quarterly) and a C
    // customer (no cadence), each last contacted at t0
    let w = world("sh").await;
    let a = w.customer("sh", "li", "A Co").await;
    let b = w.customer("sh", "li", "B Co").await;
    let c = w.customer("sh", "zhao", "C Co").await;
    w.signed(&a, "li", "80000", days_ago(100)).await;
    w.signed(&b, "li", "15000", days_ago(100)).await;
    w.signed(&c, "zhao", "5000", days_ago(100)).await;
    w.settled().await;
    assert_eq!(w.tier(&a).await, "A");
    assert_eq!(w.tier(&b).await, "B");
    let t0 = days_ago(95);
    for customer in [&a, &b, &c] {
        w.app
            .ok(
                &format!("/v1/customers/{customer}/records"),
                ADMIN,
                json!({"at": rfc(t0), "by": "li", "kind": "visit", "summary": "visit"}),
            )
            .await;
    }
    let ms = Duration::milliseconds(1);
    let status_at = |at: DateTime<Utc>, id: String| {
        let w = &w;
        async move {
            let r = w
                .followups(&format!("branch=sh&as_of={}", rfc(at)), &w.mgr)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["customers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|x| x["customer_id"] == id.as_str())
                .map(|x| x["status"].as_str().unwrap().to_string())
        }
    };
    // Then A: due strictly after 30 days, overdue strictly after 37
    let d30 = t0 + Duration::days(30);
    let d37 = t0 + Duration::days(37);
    assert_eq!(status_at(d30, a.clone()).await, None);
    assert_eq!(status_at(d30 + ms, a.clone()).await.as_deref(), Some("due"));
    assert_eq!(status_at(d37, a.clone()).await.as_deref(), Some("due"));
    assert_eq!(
        status_at(d37 + ms, a.clone()).await.as_deref(),
        Some("overdue")
    );
    // And B: due after 90 days, overdue after 97
    let d90 = t0 + Duration::days(90);
    let d97 = t0 + Duration::days(97);
    assert_eq!(status_at(d90, b.clone()).await, None);
    assert_eq!(status_at(d90 + ms, b.clone()).await.as_deref(), Some("due"));
    assert_eq!(status_at(d97, b.clone()).await.as_deref(), Some("due"));
    assert_eq!(
        status_at(d97 + ms, b.clone()).await.as_deref(),
        Some("overdue")
    );
    // And C never
    assert_eq!(status_at(t0 + Duration::days(1000), c.clone()).await, None);
    // And `due_before` looks ahead: A shows as upcoming before it is due
    let r = w
        .followups(
            &format!(
                "branch=sh&as_of={}&due_before={}",
                rfc(d30 - ms),
                rfc(d30 + ms)
            ),
            &w.mgr,
        )
        .await;
    let listed = &r.body["customers"][0];
    assert_eq!(listed["customer_id"], a.as_str());
    assert_eq!(listed["status"], "upcoming");
    assert_eq!(listed["every_days"], 30);

    // When a new record is written for A after it became overdue
    w.app
        .ok(
            &format!("/v1/customers/{a}/records"),
            &w.li,
            json!({"at": rfc(d37 + Duration::days(1)), "kind": "call", "summary": "called"}),
        )
        .await;
    // Then A is no longer due at that time
    assert_eq!(status_at(d37 + Duration::days(2), a.clone()).await, None);
    // And a rep sees only their own customers; another branch is refused
    let r = w
        .followups(
            &format!("branch=sh&as_of={}", rfc(t0 + Duration::days(1000))),
            &w.zhao,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["customers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|x| x["owner"] == "zhao"));
    let r = w.followups("branch=bj", &w.zhao).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w.followups("branch=sh&as_of=yesterday", &w.mgr).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn a_branch_cadence_policy_overrides_the_default_at_runtime() {
    // Given a C customer, contacted 20 days ago: never due by default
    let w = world("sh").await;
    let c = w.customer("sh", "li", "C Co").await;
    w.app
        .ok(
            &format!("/v1/customers/{c}/records"),
            ADMIN,
            json!({"at": rfc(days_ago(20)), "by": "li", "kind": "visit", "summary": "visit"}),
        )
        .await;
    let r = w.followups("branch=sh", &w.mgr).await;
    assert_eq!(r.body["customers"], json!([]), "{}", r.body);

    // When the branch activates its own cadence: everyone every 14 days
    w.upload_branch_policy(
        "sh-cadence",
        "sh",
        "fn cadence(input) { #{ every_days: 14, overdue_after_days: 3 } }",
    )
    .await;

    // Then the customer is overdue, without a restart
    let r = w.followups("branch=sh", &w.mgr).await;
    let listed = &r.body["customers"][0];
    assert_eq!(listed["customer_id"], c.as_str(), "{}", r.body);
    assert_eq!(listed["status"], "overdue");
    assert_eq!(listed["every_days"], 14);
}

#[tokio::test]
async fn a_signing_creates_follow_up_tasks_that_are_completed_or_dismissed_with_a_note() {
    // Given a signed deal of rep li
    let w = world("sh").await;
    let c = w.customer("sh", "li", "ACME").await;
    let deal = w.signed(&c, "li", "1000", days_ago(1)).await;

    // Then the after-sign policy planned li's active service, listed as follow-ups
    let r = w.followups("branch=sh", &w.li).await;
    let tasks = r.body["tasks"].as_array().unwrap().clone();
    assert_eq!(tasks.len(), 4, "{}", r.body);
    assert!(tasks
        .iter()
        .all(|t| t["deal_id"] == deal.as_str() && t["assignee"] == "li" && t["status"] == "open"));
    let (first, second) = (
        tasks[0]["id"].as_str().unwrap(),
        tasks[1]["id"].as_str().unwrap(),
    );

    // When another rep tries to close one, it is refused
    let r = w
        .app
        .post(&format!("/v1/tasks/{first}/complete"), &w.zhao, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // When li completes one with a note
    let r = w
        .app
        .post(
            &format!("/v1/tasks/{first}/complete"),
            &w.li,
            json!({"note": "visited, they are happy"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "done");
    assert_eq!(r.body["note"], "visited, they are happy");
    assert_eq!(r.body["closed_by"], "li");
    assert_eq!(r.body["version"], 2);
    // Then it cannot be closed again
    let r = w
        .app
        .post(
            &format!("/v1/tasks/{first}/dismiss"),
            &w.mgr,
            json!({"note": "x"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // And dismissing needs a note
    let r = w
        .app
        .post(&format!("/v1/tasks/{second}/dismiss"), &w.mgr, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = w
        .app
        .post(
            &format!("/v1/tasks/{second}/dismiss"),
            &w.mgr,
            json!({"note": "they asked for no offers"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "dismissed");
    // And the follow-ups list only the open ones
    let r = w.followups("branch=sh", &w.li).await;
    assert_eq!(r.body["tasks"].as_array().unwrap().len(), 2);
    let r = w
        .app
        .post("/v1/tasks/task-nope/complete", &w.mgr, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn communication_records_are_corrected_by_author_or_manager_and_never_lost() {
    // Given a record written by rep li
    let w = world("sh").await;
    let c = w.customer("sh", "li", "ACME").await;
    let rec = w
        .app
        .ok(
            &format!("/v1/customers/{c}/records"),
            &w.li,
            json!({"kind": "visit", "summary": "first visit", "problems": "late delivery"}),
        )
        .await;
    let id = rec["id"].as_str().unwrap().to_string();
    let path = format!("/v1/customers/{c}/records/{id}");

    // When li corrects it
    let r = w
        .app
        .patch(
            &path,
            &w.li,
            json!({"summary": "first visit, met the buyer", "problems": null}),
            Some(1),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["summary"], "first visit, met the buyer");
    assert!(r.body["problems"].is_null());
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["edited_by"], "li");
    assert_eq!(r.body["at"], rec["at"]);

    // Then another rep may not, a stale version conflicts, a manager may
    let r = w
        .app
        .patch(&path, &w.zhao, json!({"summary": "mine"}), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w
        .app
        .patch(&path, &w.mgr, json!({"summary": "x"}), Some(1))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = w
        .app
        .patch(&path, &w.mgr, json!({"next_steps": "send offer"}), Some(2))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["version"], 3);
    let r = w
        .app
        .patch(&path, &w.mgr, json!({"summary": ""}), None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // (when it happened is the record's identity: a new contact is a new record)
    let r = w
        .app
        .patch(&path, &w.mgr, json!({"at": "2026-01-01T00:00:00Z"}), None)
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "invalid_body");

    // And every earlier version is kept; records cannot be deleted
    let r = w.app.get(&format!("{path}/revisions"), &w.li).await;
    let revs = r.body["items"].as_array().unwrap();
    assert_eq!(revs.len(), 2, "{}", r.body);
    assert_eq!(revs[0]["summary"], "first visit");
    assert_eq!(revs[0]["problems"], "late delivery");
    assert_eq!(revs[1]["version"], 2);
    let r = w.app.send(Method::DELETE, &path, Some(&w.mgr), None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    // And records list per rep: a rep sees their own only
    w.app
        .ok(
            &format!("/v1/customers/{c}/records"),
            &w.zhao,
            json!({"kind": "call", "summary": "zhao's call"}),
        )
        .await;
    let r = w.app.get("/v1/records?branch=sh&by=li", &w.mgr).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    assert_eq!(r.body["items"][0]["summary"], "first visit, met the buyer");
    let r = w.app.get("/v1/records?branch=sh", &w.zhao).await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["by"], "zhao");
    let r = w.app.get("/v1/records?branch=sh&by=li", &w.zhao).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_referral_report_shows_signed_revenue_by_referring_customer() {
    // Given a government customer whose friend's oil field and another
    // customer came by referral (docs/business-rules.md §4), and a second-hand referral
    let w = world("sh").await;
    let gov = w.customer("sh", "li", "City Government").await;
    let referred = |name: &str, by: &str| {
        json!({"name": name, "branch": "sh", "owner": "li", "segment": "industrial",
               "source": "referral", "referred_by": by})
    };
    let oil = w
        .app
        .ok("/v1/customers", ADMIN, referred("Oil Field", &gov))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let port = w
        .app
        .ok("/v1/customers", ADMIN, referred("Port", &gov))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let depot = w
        .app
        .ok("/v1/customers", ADMIN, referred("Depot", &oil))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    w.signed(&gov, "li", "300000", days_ago(50)).await;
    w.signed(&oil, "li", "2000000", days_ago(40)).await;
    w.signed(&oil, "li", "500000", days_ago(30)).await;
    let cancelled = w.signed(&port, "li", "999999", days_ago(20)).await;
    w.app
        .ok(
            &format!("/v1/deals/{cancelled}/cancel"),
            &w.mgr,
            json!({"reason": "lost tender"}),
        )
        .await;
    w.signed(&port, "li", "100000", days_ago(20)).await;
    w.signed(&depot, "li", "70000", days_ago(10)).await;

    // When the manager asks for the referral report
    let r = w.app.get("/v1/reports/referrals?branch=sh", &w.mgr).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Then the government customer brought 2,600,000 CNY, the oil field first
    let refs = r.body["referrers"].as_array().unwrap();
    assert_eq!(refs.len(), 2, "{}", r.body);
    assert_eq!(refs[0]["customer_id"], gov.as_str());
    assert_eq!(refs[0]["name"], "City Government");
    assert_eq!(refs[0]["revenue"], "2600000");
    assert_eq!(refs[0]["deals"], 3);
    assert_eq!(refs[0]["referred"][0]["customer_id"], oil.as_str());
    assert_eq!(refs[0]["referred"][0]["revenue"], "2500000");
    assert_eq!(refs[0]["referred"][1]["revenue"], "100000");
    // And the oil field in turn brought the depot
    assert_eq!(refs[1]["customer_id"], oil.as_str());
    assert_eq!(refs[1]["revenue"], "70000");

    // And a date range narrows it
    let from = (Utc::now() - Duration::days(35)).date_naive();
    let r = w
        .app
        .get(
            &format!("/v1/reports/referrals?branch=sh&from={from}"),
            &w.mgr,
        )
        .await;
    assert_eq!(r.body["referrers"][0]["revenue"], "600000", "{}", r.body);
    // And reps and other branches are refused; a bad range is a client error
    let r = w.app.get("/v1/reports/referrals?branch=sh", &w.li).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = w
        .app
        .get(
            "/v1/reports/referrals?branch=sh&from=2026-05-01&to=2026-04-01",
            &w.mgr,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
}

#[tokio::test]
async fn new_customers_go_to_the_fairest_rep_and_the_team_report_shows_the_spread() {
    // Given li holds the only A-tier customer, zhao has an open deal, chen nothing
    let w = world("sh").await;
    let key = w.customer("sh", "li", "Key").await;
    w.signed(&key, "li", "100000", days_ago(5)).await;
    let z = w.customer("sh", "zhao", "Z Co").await;
    w.open_deal(&z, "zhao", "5000").await;
    w.settled().await;
    assert_eq!(w.tier(&key).await, "A");

    // When the manager creates a customer without an owner
    let body =
        json!({"name": "Newcomer", "branch": "sh", "segment": "enterprise", "source": "assigned"});
    let r = w.app.post("/v1/customers", &w.mgr, body.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Then it goes to chen: zhao and chen tie on A-tier customers (0), chen
    // has fewer open deals; the choice and why are in its history
    assert_eq!(r.body["owner"], "chen");
    let h = w.history(&r.str("id")).await;
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["action"], "assigned");
    assert_eq!(h[0]["owner"], "chen");
    assert_eq!(h[0]["policy"], "fair-assignment");
    assert!(h[0]["reason"].as_str().unwrap().contains("fewest A-tier"));
    // And the next one goes to chen again only by the policy's order: chen
    // and zhao both have 0 A-tier; chen still has fewer open deals
    let r = w.app.post("/v1/customers", &w.mgr, body).await;
    assert_eq!(r.body["owner"], "chen");
    // And a rep keeps a customer they bring in by naming themselves
    let r = w
        .app
        .post(
            "/v1/customers",
            &w.zhao,
            json!({"name": "Mine", "branch": "sh", "owner": "zhao", "segment": "enterprise", "source": "self_developed"}),
        )
        .await;
    assert_eq!(r.body["owner"], "zhao");
    // (without naming an owner, the policy decides for a rep's customer too)
    let r = w
        .app
        .post(
            "/v1/customers",
            &w.li,
            json!({"name": "Walk-in", "branch": "sh", "segment": "individual", "source": "assigned"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["owner"], "chen");

    // When the manager reads the team report
    let r = w.app.get("/v1/reports/team?branch=sh", &w.mgr).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let line = |rep: &str| {
        r.body["reps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["rep"] == rep)
            .cloned()
            .unwrap_or_else(|| panic!("no line for {rep}: {}", r.body))
    };
    // Then A/B/C, revenue, open deals and overdue follow-ups show per rep
    let li = line("li");
    assert_eq!(
        (li["a"].as_u64(), li["b"].as_u64(), li["c"].as_u64()),
        (Some(1), Some(0), Some(0))
    );
    assert_eq!(li["signed_revenue"], "100000");
    assert_eq!(li["open_deals"], 0);
    // li's A customer was never contacted and was created just now: due in
    // 30 days, so not overdue; li's after-sign tasks are not yet due either
    assert_eq!(li["overdue_followups"], 0);
    let zhao = line("zhao");
    assert_eq!(zhao["c"], 2);
    assert_eq!(zhao["open_deals"], 1);
    let chen = line("chen");
    assert_eq!(chen["c"], 3);
    assert_eq!(chen["signed_revenue"], "0");
    assert_eq!(r.body["total"]["a"], 1);
    assert_eq!(r.body["total"]["signed_revenue"], "100000");
    // And reps may not read it
    let r = w.app.get("/v1/reports/team?branch=sh", &w.li).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_pipeline_funnel_counts_and_values_each_stage_in_cny() {
    // Given li with two open deals (100 CNY and 20 USD) and a signed one,
    // zhao with one open deal, and a deal in a currency without a rate
    let w = world("sh").await;
    let c = w.customer("sh", "li", "ACME").await;
    w.open_deal(&c, "li", "100").await;
    let usd = json!({"customer_id": c, "title": "Export", "owner": "li", "currency": "USD",
                     "lines": [{"brand": "volvo", "product": "p", "amount": "20", "cost": "1"}]});
    w.app.ok("/v1/deals", ADMIN, usd).await;
    w.signed(&c, "li", "1000", days_ago(3)).await;
    let z = w.customer("sh", "zhao", "Zhao Co").await;
    w.open_deal(&z, "zhao", "50").await;
    let jpy = json!({"customer_id": z, "title": "Tokyo", "owner": "zhao", "currency": "JPY",
                     "lines": [{"brand": "volvo", "product": "p", "amount": "3000", "cost": "1"}]});
    w.app.ok("/v1/deals", ADMIN, jpy).await;

    // When the manager reads the branch's funnel
    let r = w.app.get("/v1/reports/pipeline?branch=sh", &w.mgr).await;
    // Then every stage is there in order with its deals and value in CNY (20 USD at 7)
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stages: Vec<(String, u64, String)> = r.body["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["stage"].as_str().unwrap().into(),
                s["deals"].as_u64().unwrap(),
                s["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        stages,
        [
            ("open".into(), 4, "290".into()),
            ("sign".into(), 1, "1000".into()),
            ("lost".into(), 0, "0".into())
        ]
    );
    assert_eq!(
        r.body["stages"][0]["amounts"],
        json!({"CNY": "150", "USD": "20", "JPY": "3000"})
    );
    assert_eq!(
        (r.body["currency"].as_str(), r.body["unconverted"].as_u64()),
        (Some("CNY"), Some(1))
    );
    // And filtered by rep, only that rep's deals count
    let r = w
        .app
        .get("/v1/reports/pipeline?branch=sh&owner=zhao", &w.mgr)
        .await;
    assert_eq!(r.body["stages"][0]["deals"], 2);
    assert_eq!(r.body["stages"][1]["deals"], 0);
    // A rep sees their own funnel, and may not ask for another rep's
    let r = w.app.get("/v1/reports/pipeline?branch=sh", &w.li).await;
    assert_eq!(
        (
            r.body["owner"].as_str(),
            r.body["stages"][0]["deals"].as_u64()
        ),
        (Some("li"), Some(2))
    );
    let r = w
        .app
        .get("/v1/reports/pipeline?branch=sh&owner=zhao", &w.li)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another branch's is not readable, an unknown one is 404
    w.app.branch("bj").await;
    let bj = w.app.token("manager", Some("bj"), "zhou").await;
    assert_eq!(
        w.app
            .get("/v1/reports/pipeline?branch=sh", &bj)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        w.app
            .get("/v1/reports/pipeline?branch=nowhere", ADMIN)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_revoked_rep_is_never_assigned_a_new_customer() {
    // Given chen, the rep fair assignment picks (no customers, no deals)
    let w = world("sh").await;
    let body =
        json!({"name": "Newcomer", "branch": "sh", "segment": "enterprise", "source": "assigned"});
    let r = w.app.post("/v1/customers", &w.mgr, body.clone()).await;
    assert_eq!(r.body["owner"], "chen", "{}", r.body);

    // When chen leaves and the manager revokes chen's token
    let tokens = w.app.get("/v1/tokens?user=chen", &w.mgr).await;
    let id = tokens.body["items"][0]["id"].as_str().unwrap().to_string();
    let r = w
        .app
        .send(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(&w.mgr),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Then customers created without an owner go to the remaining reps only,
    // though chen still has the fewest
    for _ in 0..4 {
        let r = w.app.post("/v1/customers", &w.mgr, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let owner = r.str("owner");
        assert!(
            ["li", "zhao"].contains(&owner.as_str()),
            "assigned to {owner}"
        );
    }
}

/// What hostile requests must not change: a record, its revisions, a task.
async fn snapshot(w: &World, record: &str, task: &str) -> (Value, Value, Option<Value>) {
    let (list, id) = record.rsplit_once('/').unwrap();
    let records = w.app.get(list, ADMIN).await.body;
    let r = records["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == id)
        .cloned()
        .unwrap();
    let revs = w.app.get(&format!("{record}/revisions"), ADMIN).await.body;
    let tasks = w.app.get("/v1/tasks?branch=sh", ADMIN).await.body;
    let t = tasks["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == task)
        .cloned();
    (r, revs, t)
}

#[tokio::test]
async fn hostile_input_to_the_key_account_routes_is_a_clear_4xx_and_changes_nothing() {
    // Given a record of li and an open follow-up task of li
    let w = world("sh").await;
    let c = w.customer("sh", "li", "ACME").await;
    let rec = w
        .app
        .ok(
            &format!("/v1/customers/{c}/records"),
            &w.li,
            json!({"kind": "visit", "summary": "first visit"}),
        )
        .await;
    let record = format!("/v1/customers/{c}/records/{}", rec["id"].as_str().unwrap());
    w.signed(&c, "li", "1000", days_ago(1)).await;
    w.settled().await;
    let tasks = w.followups("branch=sh", &w.li).await.body["tasks"].clone();
    let task = tasks[0]["id"].as_str().unwrap().to_string();
    let before = snapshot(&w, &record, &task).await;
    let huge = "x".repeat(200_000);

    // When hostile bodies are sent to the correction and task routes
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"text\"".to_vec(),
        br#"{"summary": 5}"#.to_vec(),
        br#"{"kind": "fax"}"#.to_vec(),
        br#"{"summary": "   "}"#.to_vec(),
        br#"{"contact": {"a": 1}}"#.to_vec(),
        br#"{"by": "zhao"}"#.to_vec(),
        format!(r#"{{"summary": "{huge}"}}"#).into_bytes(),
        format!(r#"{{"note": "{huge}"}}"#).into_bytes(),
        br#"{"note": 5}"#.to_vec(),
        br#"{"note": "ok", "status": "done"}"#.to_vec(),
        vec![0xff, 0xfe, 0x00],
    ];
    let targets = [
        (Method::PATCH, record.clone()),
        (Method::POST, format!("/v1/tasks/{task}/complete")),
        (Method::POST, format!("/v1/tasks/{task}/dismiss")),
    ];
    for (method, path) in &targets {
        for body in &bodies {
            // (`null`, like no body at all, completes a task without a note)
            if body == b"null" && path.ends_with("/complete") {
                continue;
            }
            let r = w
                .app
                .send_raw(method.clone(), path, Some(&w.mgr), Some(body.clone()), &[])
                .await;
            // Then each is refused with the error body
            assert!(
                r.status.is_client_error(),
                "{method} {path} {}: {} {}",
                String::from_utf8_lossy(&body[..body.len().min(60)]),
                r.status,
                r.body
            );
            assert!(r.body["error"]["code"].is_string(), "{}", r.body);
        }
    }
    // And a garbage If-Match is refused too
    let r = w
        .app
        .send_raw(
            Method::PATCH,
            &record,
            Some(&w.mgr),
            Some(br#"{"summary": "fine"}"#.to_vec()),
            &[("if-match", "yesterday")],
        )
        .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.body);
    // And nothing changed
    assert_eq!(snapshot(&w, &record, &task).await, before);

    // And bad queries are client errors, never 5xx
    for path in [
        "/v1/followups?branch=sh&limit=-1",
        "/v1/followups?branch=sh&limit=lots",
        "/v1/followups?branch=sh&due_before=soon",
        "/v1/followups?branch=nope",
        "/v1/followups?branch=sh&colour=red",
        "/v1/reports/team",
        "/v1/reports/team?branch=nope",
        "/v1/reports/referrals?branch=sh&from=2026-13-01",
        "/v1/records",
        "/v1/records?branch=nope",
        "/v1/customers/nope/history",
        "/v1/customers/nope/records/nope",
    ] {
        let r = w.app.get(path, ADMIN).await;
        assert!(
            r.status.is_client_error(),
            "{path}: {} {}",
            r.status,
            r.body
        );
        assert!(r.body["error"]["code"].is_string(), "{path}: {}", r.body);
    }
}

#[tokio::test]
async fn owner_changes_are_controlled_and_kept_in_history_with_who_and_why() {
    // Given a customer of zhao's with a deal of his (docs/business-rules.md §6)
    let w = world("sh").await;
    let cus = w.customer("sh", "zhao", "Daqing Oilfield").await;
    let deal = w.open_deal(&cus, "zhao", "500000").await;
    let path = format!("/v1/customers/{cus}");

    // When li, another rep, takes the customer for himself
    let r = w
        .app
        .patch(&path, &w.li, json!({"owner": "li"}), None)
        .await;
    // Then it is refused, saying whose it is and who may reassign it, and nothing changed
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let msg = r.body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("belongs to `zhao`"), "{msg}");
    assert!(msg.contains("manager of `sh`"), "{msg}");
    let c = w.app.get(&path, ADMIN).await;
    assert_eq!(
        (c.body["owner"].as_str(), c.body["version"].as_u64()),
        (Some("zhao"), Some(1))
    );
    assert!(w.history(&cus).await.is_empty());

    // When the manager reassigns it without a reason
    let r = w
        .app
        .patch(&path, &w.mgr, json!({"owner": "li"}), None)
        .await;
    // Then the reason is asked for, and nothing changed
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "reason");
    assert_eq!(w.app.get(&path, ADMIN).await.body["owner"], "zhao");

    // When the manager reassigns it with a reason
    let r = w
        .app
        .patch(
            &path,
            &w.mgr,
            json!({"owner": "li", "reason": "zhao moved to Beijing"}),
            None,
        )
        .await;
    // Then li owns it and its history says from, to, by and why
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["owner"], "li");
    let h = w.history(&cus).await;
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["action"], "owner_changed");
    assert_eq!(
        (h[0]["from"].as_str(), h[0]["to"].as_str()),
        (Some("zhao"), Some("li"))
    );
    assert_eq!(h[0]["by"], "wang");
    assert_eq!(h[0]["reason"], "zhao moved to Beijing");
    assert_eq!(h[0]["seq"], r.body["version"]);
    // and li now lists it among his customers, zhao no longer
    let mine = w.app.get("/v1/customers?owner=li", &w.li).await;
    assert!(mine.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == cus.as_str()));
    let his = w.app.get("/v1/customers?owner=zhao", &w.zhao).await;
    assert!(!his.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["id"] == cus.as_str()));

    // When a customer has no owner, a rep may take it for himself (no reason needed)
    let r = w
        .app
        .patch(
            &path,
            &w.mgr,
            json!({"owner": null, "reason": "to the pool"}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = w
        .app
        .patch(&path, &w.zhao, json!({"owner": "zhao"}), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let h = w.history(&cus).await;
    let last = h.last().unwrap();
    assert_eq!(
        (last["action"].as_str(), last["by"].as_str()),
        (Some("owner_changed"), Some("zhao"))
    );
    assert_eq!(
        (last["from"].as_str(), last["to"].as_str()),
        (None, Some("zhao"))
    );
    assert_eq!(last["trigger"], "claimed");

    // When the manager gives zhao's deal to li: a reason is required too
    let dpath = format!("/v1/deals/{deal}");
    let r = w
        .app
        .patch(&dpath, &w.mgr, json!({"owner": "li"}), None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "reason");
    let r = w
        .app
        .patch(
            &dpath,
            &w.mgr,
            json!({"owner": "li", "reason": "li leads the account now"}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Then the deal's history has the owner change with from, to, by and why
    let h = w.app.get(&format!("{dpath}/history"), ADMIN).await;
    let last = h.body["items"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["action"], "owner_changed");
    assert_eq!(
        (last["from"].as_str(), last["to"].as_str()),
        (Some("zhao"), Some("li"))
    );
    assert_eq!(
        (last["by"].as_str(), last["reason"].as_str()),
        (Some("wang"), Some("li leads the account now"))
    );
    assert_eq!(last["seq"], r.body["version"]);
    // and zhao, the rep who lost it, can no longer read or take it back
    assert_eq!(
        w.app.get(&dpath, &w.zhao).await.status,
        StatusCode::FORBIDDEN
    );
    let r = w
        .app
        .patch(&dpath, &w.zhao, json!({"owner": "zhao"}), None)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // And all of it survives a restart
    let app = TestApp::reopen(w.app.close().await).await;
    let h = app
        .get(&format!("/v1/customers/{cus}/history"), ADMIN)
        .await;
    assert_eq!(h.body["items"].as_array().unwrap().len(), 3);
    assert_eq!(app.get(&dpath, ADMIN).await.body["owner"], "li");
}
