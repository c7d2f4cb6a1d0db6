//! Settlements end to end through the router over a real sled store, with
//! the default bonus policies (DOMAIN.md §5): what each period settles, the
//! lifecycle draft → approved → paid, double-pay prevention, true-ups,
//! effective dating, statements, and simulate == settle.

use axum::http::{Method, StatusCode};
use dealflow::store::{keys, Batch, Store};
use dealflow_tests::{open_app, open_when_released, Reply, TestApp, ADMIN};
use serde_json::{json, Value};

/// A branch whose pipeline signs in one move, reps `li` and `zhao`, manager
/// `wang`, new brands `volvo` and `polestar`, and CNY at 7.1 per USD.
struct World {
    app: TestApp,
    mgr: String,
    li: String,
}

async fn world(branch: &str, timezone: &str) -> World {
    let app = TestApp::new().await;
    app.ok(
        "/v1/branches",
        ADMIN,
        json!({"id": branch, "name": "Branch", "timezone": timezone}),
    )
    .await;
    for brand in ["volvo", "polestar", "bmw"] {
        app.brand(brand).await;
    }
    app.ok(
        "/v1/fx-rates",
        ADMIN,
        json!({"currency": "CNY", "date": "2026-01-01", "per_usd": "7.1"}),
    )
    .await;
    app.one_move_pipeline(branch).await;
    let mgr = app.token("manager", Some(branch), "wang").await;
    let li = app.token("rep", Some(branch), "li").await;
    app.token("rep", Some(branch), "zhao").await;
    World { app, mgr, li }
}

impl World {
    /// A self-developed customer of `li` with three orders in its window,
    /// the first a new-brand contract worth 800 CNY: (customer, that deal).
    async fn three_orders(&self) -> (String, String) {
        let c = self
            .customer("sh", "li", "enterprise", "self_developed")
            .await;
        let d = self
            .signed(
                &c,
                "li",
                "USD",
                &[("volvo", "80000", "64000")],
                "2026-01-15T10:00:00Z",
                None,
            )
            .await;
        for at in ["2026-02-01T10:00:00Z", "2026-03-01T10:00:00Z"] {
            self.signed(&c, "li", "USD", &[("volvo", "20000", "10000")], at, None)
                .await;
        }
        (c, d)
    }

    /// Uploads a global rhai policy and activates it; the upload's answer.
    async fn live_rule(&self, name: &str, source: &str) -> Value {
        let up = self
            .app
            .ok(
                "/v1/policies",
                ADMIN,
                json!({"name": name, "scope": "global", "runtime": "rhai", "source": source}),
            )
            .await;
        let v = up["version"].as_u64().unwrap();
        self.app
            .ok(
                &format!("/v1/policies/{name}/versions/{v}/activate"),
                ADMIN,
                json!({}),
            )
            .await;
        up
    }

    /// Stops the server (once its background re-tiering is done), lets
    /// `change` rewrite its store, and starts a current server on it.
    async fn restart(self, change: impl AsyncFnOnce(&std::path::Path)) -> World {
        let World { app, mgr, li } = self;
        let TestApp {
            router,
            services,
            dir,
        } = app;
        services.tiering_idle().await;
        drop(router);
        drop(services);
        change(dir.path()).await;
        let (router, services) = open_app(dir.path()).await;
        World {
            app: TestApp {
                router,
                services,
                dir,
            },
            mgr,
            li,
        }
    }

    async fn customer(&self, branch: &str, owner: &str, segment: &str, source: &str) -> String {
        let body = json!({"name": "ACME", "branch": branch, "owner": owner,
                          "segment": segment, "source": source});
        self.app.ok("/v1/customers", ADMIN, body).await["id"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// A deal signed at `at` (RFC 3339) with `lines` of (brand, amount, cost).
    async fn signed(
        &self,
        customer: &str,
        owner: &str,
        currency: &str,
        lines: &[(&str, &str, &str)],
        at: &str,
        prepayment: Option<&str>,
    ) -> String {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(b, a, c)| json!({"brand": b, "product": "p", "amount": a, "cost": c}))
            .collect();
        let mut body = json!({"customer_id": customer, "title": "Contract", "owner": owner,
                              "currency": currency, "lines": lines, "opened_at": "2025-06-01T00:00:00Z"});
        if let Some(p) = prepayment {
            body["prepayment_ratio"] = json!(p);
        }
        let id = self.app.ok("/v1/deals", ADMIN, body).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        self.app
            .ok(
                &format!("/v1/deals/{id}/transitions"),
                ADMIN,
                json!({"to": "sign", "at": at}),
            )
            .await;
        id
    }

    async fn settle(&self, branch: &str, period: &str) -> Reply {
        self.app
            .post(
                "/v1/settlements",
                &self.mgr,
                json!({"branch": branch, "period": period}),
            )
            .await
    }

    async fn draft(&self, branch: &str, period: &str) -> Value {
        let r = self.settle(branch, period).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body
    }
}

/// The lines of a settlement about `subject`.
fn lines_of<'a>(s: &'a Value, subject: &str) -> Vec<&'a Value> {
    s["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["subject"] == subject)
        .collect()
}

fn amount(l: &Value) -> String {
    l["amount"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_month_pays_new_brand_contracts_by_tier_with_receipts() {
    // Given contracts signed in March 2026 (UTC branch)
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    // 80,000 USD of a new brand at 20 % margin: 800 CNY.
    let d1 = w
        .signed(
            &c,
            "li",
            "USD",
            &[("volvo", "80000", "64000")],
            "2026-03-02T10:00:00Z",
            None,
        )
        .await;
    // The same brand again: no longer new, so no line.
    let d2 = w
        .signed(
            &c,
            "li",
            "USD",
            &[("volvo", "90000", "1")],
            "2026-03-03T10:00:00Z",
            None,
        )
        .await;
    // 9,000 USD of a new brand bundled with 50,000 USD of a sold one: 0 CNY.
    let d3 = w
        .signed(
            &c,
            "zhao",
            "USD",
            &[("polestar", "9000", "1000"), ("volvo", "50000", "100")],
            "2026-03-04T10:00:00Z",
            None,
        )
        .await;
    // 213,000.21 CNY at 7.1 per USD = 30,000.03 USD of a new brand: 500 CNY.
    let d4 = w
        .signed(
            &c,
            "zhao",
            "CNY",
            &[("bmw", "213000.21", "100000")],
            "2026-03-05T10:00:00Z",
            None,
        )
        .await;
    // Signed in April: not in March.
    w.signed(
        &c,
        "li",
        "USD",
        &[("volvo", "1", "0")],
        "2026-04-01T00:00:00Z",
        None,
    )
    .await;

    // When the manager drafts March
    let s = w.draft("sh", "2026-03").await;

    // Then each contract gets what §5.1 pays, as a receipt
    assert_eq!(s["status"], "draft");
    assert_eq!(s["period"], "2026-03");
    let l1 = lines_of(&s, &d1);
    assert_eq!(l1.len(), 1, "{s}");
    assert_eq!(amount(l1[0]), "800");
    assert_eq!(l1[0]["rep"], "li");
    assert_eq!(l1[0]["rule"], "new_brand_sale");
    assert_eq!(l1[0]["currency"], "CNY");
    assert_eq!(l1[0]["subject_kind"], "deal");
    assert_eq!(l1[0]["subject_period"], "2026-03");
    assert_eq!(l1[0]["policy"]["name"], "new-brand-bonus");
    assert_eq!(l1[0]["policy"]["version"], 1);
    assert_eq!(l1[0]["policy"]["sha256"].as_str().unwrap().len(), 64);
    let e = l1[0]["explanation"].as_str().unwrap();
    assert!(e.contains("> 60,000 and ≤ 100,000 USD pays 800 CNY"), "{e}");
    assert!(
        lines_of(&s, &d2).is_empty(),
        "a brand no longer new pays nothing"
    );
    let l3 = lines_of(&s, &d3);
    assert_eq!(amount(l3[0]), "0", "bundled non-new lines do not count");
    assert!(l3[0]["explanation"].as_str().unwrap().contains("polestar"));
    let l4 = lines_of(&s, &d4);
    assert_eq!(amount(l4[0]), "500", "converted at the signing date's rate");
    assert!(l4[0]["explanation"]
        .as_str()
        .unwrap()
        .contains("7.1 CNY per USD"));
    assert_eq!(s["lines"].as_array().unwrap().len(), 3, "{s}");
    // And totals per rep add up
    assert_eq!(s["total"], "1300");
    let totals = s["totals"].as_array().unwrap();
    assert_eq!(totals[0]["rep"], "li");
    assert_eq!(totals[0]["total"], "800");
    assert_eq!(totals[1]["rep"], "zhao");
    assert_eq!(totals[1]["total"], "500");
}

#[tokio::test]
async fn each_contract_converts_at_the_rate_in_force_on_its_signing_day() {
    // Given CNY at 7.1 per USD, then 7.2 from 10 March
    let w = world("sh", "UTC").await;
    w.app
        .ok(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "CNY", "date": "2026-03-10", "per_usd": "7.2"}),
        )
        .await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    // The same 71,000.07 CNY of a new brand: 10,000.0098 USD at 7.1, 9,861 at 7.2
    let before = w
        .signed(
            &c,
            "li",
            "CNY",
            &[("volvo", "71000.07", "60000")],
            "2026-03-09T23:59:59Z",
            None,
        )
        .await;
    let after = w
        .signed(
            &c,
            "li",
            "CNY",
            &[("polestar", "71000.07", "60000")],
            "2026-03-10T00:00:00Z",
            None,
        )
        .await;
    let s = w.draft("sh", "2026-03").await;
    assert_eq!(amount(lines_of(&s, &before)[0]), "300", "{s}");
    assert_eq!(amount(lines_of(&s, &after)[0]), "0", "{s}");
    assert!(lines_of(&s, &after)[0]["explanation"]
        .as_str()
        .unwrap()
        .contains("7.2 CNY per USD"));
}

#[tokio::test]
async fn months_follow_the_branch_calendar() {
    // Given a Beijing branch and a contract signed at 20:00 UTC on 31 March
    let w = world("bj", "Asia/Shanghai").await;
    let c = w.customer("bj", "li", "enterprise", "assigned").await;
    let d = w
        .signed(
            &c,
            "li",
            "USD",
            &[("volvo", "20000", "1000")],
            "2026-03-31T20:00:00Z",
            None,
        )
        .await;
    // Then it is an April contract there
    assert!(lines_of(&w.draft("bj", "2026-03").await, &d).is_empty());
    let april = w.draft("bj", "2026-04").await;
    assert_eq!(amount(lines_of(&april, &d)[0]), "300");
    assert_eq!(lines_of(&april, &d)[0]["subject_day"], "2026-04-01");
}

#[tokio::test]
async fn a_quarter_settles_customers_whose_window_closed_in_it() {
    let w = world("sh", "UTC").await;
    let order = |c: String, at: &'static str| {
        let w = &w;
        async move {
            w.signed(&c, "li", "CNY", &[("bmw", "40000", "30000")], at, None)
                .await
        }
    };
    // A self-developed customer: first order 15 Jan, third on 14 Apr (the
    // window's last day): 3 orders, 120,000 CNY at 25 %: 1,000 CNY.
    let kept = w.customer("sh", "li", "enterprise", "self_developed").await;
    order(kept.clone(), "2026-01-15T09:00:00Z").await;
    order(kept.clone(), "2026-02-01T09:00:00Z").await;
    order(kept.clone(), "2026-04-14T23:00:00Z").await;
    // Another whose third order comes the day after its window: 2 orders.
    let late = w.customer("sh", "li", "enterprise", "self_developed").await;
    order(late.clone(), "2026-01-15T09:00:00Z").await;
    order(late.clone(), "2026-02-01T09:00:00Z").await;
    order(late.clone(), "2026-04-15T00:00:00Z").await;
    // An assigned customer with the same orders earns nothing.
    let assigned = w.customer("sh", "li", "enterprise", "assigned").await;
    for at in [
        "2026-01-15T09:00:00Z",
        "2026-02-01T09:00:00Z",
        "2026-03-01T09:00:00Z",
    ] {
        order(assigned.clone(), at).await;
    }
    // An industrial customer that prepaid 49.99 % of its first order, and one at 50 %.
    let mut industrial = Vec::new();
    for pre in ["0.4999", "0.5"] {
        let c = w.customer("sh", "li", "industrial", "self_developed").await;
        w.signed(
            &c,
            "li",
            "CNY",
            &[("bmw", "40000", "30000")],
            "2026-01-20T09:00:00Z",
            Some(pre),
        )
        .await;
        order(c.clone(), "2026-02-20T09:00:00Z").await;
        order(c.clone(), "2026-03-20T09:00:00Z").await;
        industrial.push(c);
    }

    // Q1 has no closed window yet (they close on 14 and 19 April)
    let q1 = w.draft("sh", "2026-Q1").await;
    assert!(lines_of(&q1, &kept).is_empty(), "{q1}");
    // Q2 settles them, once each
    let q2 = w.draft("sh", "2026-Q2").await;
    let k = lines_of(&q2, &kept);
    assert_eq!(k.len(), 1, "{q2}");
    assert_eq!(amount(k[0]), "1000");
    assert_eq!(k[0]["rule"], "new_customer");
    assert_eq!(k[0]["subject_kind"], "customer");
    assert_eq!(k[0]["subject_period"], "2026-Q2");
    assert_eq!(k[0]["subject_day"], "2026-04-14");
    let l = lines_of(&q2, &late);
    assert_eq!(
        amount(l[0]),
        "0",
        "the order on the day after the window does not count"
    );
    assert!(l[0]["explanation"].as_str().unwrap().contains("2 order(s)"));
    assert!(
        lines_of(&q2, &assigned).is_empty(),
        "assigned customers earn nothing"
    );
    assert_eq!(
        amount(lines_of(&q2, &industrial[0])[0]),
        "0",
        "49.99 % prepaid"
    );
    assert_eq!(
        amount(lines_of(&q2, &industrial[1])[0]),
        "1000",
        "50 % prepaid"
    );
}

#[tokio::test]
async fn half_years_flag_and_the_year_deducts_reps_without_a_new_customer() {
    // Given li developed a customer whose first order was in H1; zhao none
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "self_developed").await;
    w.signed(
        &c,
        "li",
        "CNY",
        &[("bmw", "1000", "500")],
        "2026-02-01T09:00:00Z",
        None,
    )
    .await;

    // Then H1 flags zhao only, without money
    let h1 = w.draft("sh", "2026-H1").await;
    let flags: Vec<&Value> = h1["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rule"] == "territory_replan")
        .collect();
    assert_eq!(flags.len(), 1, "{h1}");
    assert_eq!(flags[0]["rep"], "zhao");
    assert_eq!(flags[0]["flag"], "territory_replan");
    assert_eq!(amount(flags[0]), "0");
    assert_eq!(flags[0]["subject_period"], "2026-H1");

    // And the year deducts 1,000 CNY from zhao, flags both halves for him
    // and H2 for li, who keeps his money
    let y = w.draft("sh", "2026").await;
    let of = |rep: &str, rule: &str| -> Vec<String> {
        y["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["rep"] == rep && l["rule"] == rule)
            .map(|l| format!("{}:{}", l["subject_period"].as_str().unwrap(), amount(l)))
            .collect()
    };
    assert_eq!(of("zhao", "no_new_customer_deduction"), ["2026:-1000"]);
    assert_eq!(of("zhao", "territory_replan"), ["2026-H1:0", "2026-H2:0"]);
    assert_eq!(of("li", "territory_replan"), ["2026-H2:0"]);
    assert!(of("li", "no_new_customer_deduction").is_empty());
    let zhao = y["totals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["rep"] == "zhao")
        .unwrap();
    assert_eq!(zhao["total"], "-1000");
    assert_eq!(zhao["flags"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn approval_is_final_and_no_subject_is_paid_twice() {
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let d = w
        .signed(
            &c,
            "li",
            "USD",
            &[("volvo", "80000", "64000")],
            "2026-03-02T10:00:00Z",
            None,
        )
        .await;
    let app = &w.app;

    // A quarter draft that overlaps March, made before March is approved
    let q1 = w.draft("sh", "2026-Q1").await;
    assert_eq!(amount(lines_of(&q1, &d)[0]), "800");
    // Re-running March replaces its draft
    let first = w.draft("sh", "2026-03").await;
    let march = w.draft("sh", "2026-03").await;
    let gone = app
        .get(
            &format!("/v1/settlements/{}", first["id"].as_str().unwrap()),
            &w.mgr,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let id = march["id"].as_str().unwrap();

    // A rep cannot approve; the manager can, which announces the awards
    let r = app
        .post(&format!("/v1/settlements/{id}/approve"), &w.li, json!({}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let approved = app
        .post(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["approved_by"], "wang");
    assert_eq!(
        approved.body["lines"], march["lines"],
        "approval changes no line"
    );

    // Approving again, or paying a draft, is refused
    let again = app
        .post(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "invalid_state");
    // The older quarter draft would pay the deal again: refused
    let q1_id = q1["id"].as_str().unwrap();
    let stale = app
        .post(
            &format!("/v1/settlements/{q1_id}/approve"),
            &w.mgr,
            json!({}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert_eq!(stale.code(), "stale_draft");
    // Re-running it leaves the paid deal out
    let q1 = w.draft("sh", "2026-Q1").await;
    assert!(lines_of(&q1, &d).is_empty(), "{q1}");
    assert_eq!(q1["already_settled"], 1);

    // Pay; a paid settlement never changes
    let paid = app
        .post(&format!("/v1/settlements/{id}/pay"), &w.mgr, json!({}))
        .await;
    assert_eq!(paid.status, StatusCode::OK);
    assert_eq!(paid.body["status"], "paid");
    let repay = app
        .post(&format!("/v1/settlements/{id}/pay"), &w.mgr, json!({}))
        .await;
    assert_eq!(repay.status, StatusCode::CONFLICT);
    let now = app.get(&format!("/v1/settlements/{id}"), &w.mgr).await;
    let rep_view = app.get(&format!("/v1/settlements/{id}"), &w.li).await;
    assert_eq!(
        rep_view.status,
        StatusCode::FORBIDDEN,
        "reps read their statement"
    );
    assert_eq!(now.body["status"], "paid");
    assert_eq!(now.body["lines"], march["lines"]);
    // A new March draft pays nothing new
    let rerun = w.draft("sh", "2026-03").await;
    assert!(rerun["lines"].as_array().unwrap().is_empty(), "{rerun}");
    assert_eq!(rerun["already_settled"], 1);
}

#[tokio::test]
async fn a_change_to_a_paid_contract_is_trued_up_in_the_next_settlement() {
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let d = w
        .signed(
            &c,
            "li",
            "USD",
            &[("volvo", "80000", "64000")],
            "2026-03-02T10:00:00Z",
            None,
        )
        .await;
    let march = w.draft("sh", "2026-03").await;
    let id = march["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;

    // When the paid contract's lines shrink to 40,000 USD (a 500 CNY tier)
    let r = w
        .app
        .patch(
            &format!("/v1/deals/{d}"),
            ADMIN,
            json!({"lines": [{"brand": "volvo", "product": "p", "amount": "40000", "cost": "32000"}]}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Then the next settlement carries a reasoned -300 CNY adjustment
    let april = w.draft("sh", "2026-04").await;
    let adj = lines_of(&april, &d);
    assert_eq!(adj.len(), 1, "{april}");
    assert_eq!(amount(adj[0]), "-300");
    assert_eq!(
        adj[0]["subject_period"], "2026-03",
        "it adjusts March's line"
    );
    assert_eq!(adj[0]["adjusts"]["paid"], "800");
    assert_eq!(adj[0]["adjusts"]["now"], "500");
    assert_eq!(adj[0]["adjusts"]["settlements"], json!([id]));
    assert!(adj[0]["adjusts"]["reason"]
        .as_str()
        .unwrap()
        .contains("true-up"));
    // And March itself never changed
    let m = w.app.get(&format!("/v1/settlements/{id}"), &w.mgr).await;
    assert_eq!(m.body["lines"], march["lines"]);

    // Once the adjustment is approved, nothing is left to true up
    let aid = april["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{aid}/approve"), &w.mgr, json!({}))
        .await;
    let may = w.draft("sh", "2026-05").await;
    assert!(may["lines"].as_array().unwrap().is_empty(), "{may}");
    assert_eq!(may["already_settled"], 1);
}

#[tokio::test]
async fn a_corrected_rate_keeps_its_history_and_the_next_settlement_trues_up() {
    // Given a contract of 71,000.07 CNY (10,000.0098 USD at 7.1: 300 CNY) paid in March
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let d = w
        .signed(
            &c,
            "li",
            "CNY",
            &[("volvo", "71000.07", "60000")],
            "2026-03-02T10:00:00Z",
            None,
        )
        .await;
    let march = w.draft("sh", "2026-03").await;
    assert_eq!(amount(lines_of(&march, &d)[0]), "300");
    let id = march["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;

    // When the admin corrects January's rate to 7.2, saying why
    let path = "/v1/fx-rates/CNY/2026-01-01";
    let body = json!({"per_usd": "7.20", "reason": "typo: the bank's rate was 7.2"});
    let r = w.app.send(Method::PUT, path, Some(ADMIN), Some(body)).await;

    // Then the rate is 7.2 with its history, readable by anyone
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let rate = w.app.get(path, &w.li).await;
    assert_eq!(rate.status, StatusCode::OK, "{}", rate.body);
    assert_eq!(rate.body["per_usd"], "7.2");
    let corrections = rate.body["corrections"].as_array().unwrap();
    assert_eq!(corrections.len(), 1);
    assert_eq!(
        (
            &corrections[0]["previous"],
            &corrections[0]["per_usd"],
            &corrections[0]["by"]
        ),
        (&json!("7.1"), &json!("7.2"), &json!("admin"))
    );
    assert_eq!(corrections[0]["reason"], "typo: the bank's rate was 7.2");
    let list = w.app.get("/v1/fx-rates?currency=CNY", &w.li).await;
    assert_eq!(
        list.body["items"][0]["corrections"],
        rate.body["corrections"]
    );
    // And the next settlement reverses the 300 paid at the old rate
    let april = w.draft("sh", "2026-04").await;
    let adj = lines_of(&april, &d);
    assert_eq!(adj.len(), 1, "{april}");
    assert_eq!(amount(adj[0]), "-300");
    assert_eq!(
        (
            adj[0]["adjusts"]["paid"].as_str(),
            adj[0]["adjusts"]["now"].as_str()
        ),
        (Some("300"), Some("0"))
    );

    // Refused, and changing nothing: no reason, the same rate, a rate never
    // recorded, a non-admin, a bad date
    let put = |path: &'static str, token: &'static str, body: Value| {
        let app = &w.app;
        async move { app.send(Method::PUT, path, Some(token), Some(body)).await }
    };
    let r = put(path, ADMIN, json!({"per_usd": "7.3", "reason": " "})).await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reason"))
    );
    let r = put(path, ADMIN, json!({"per_usd": "7.2", "reason": "again"})).await;
    assert_eq!(
        (r.status, r.body["error"]["details"]["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("per_usd"))
    );
    let r = put(path, ADMIN, json!({"per_usd": "0", "reason": "zero"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = put(
        "/v1/fx-rates/CNY/2026-02-01",
        ADMIN,
        json!({"per_usd": "7.3", "reason": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = w
        .app
        .send(
            Method::PUT,
            path,
            Some(&w.mgr),
            Some(json!({"per_usd": "7.3", "reason": "x"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = put(
        "/v1/fx-rates/CNY/January",
        ADMIN,
        json!({"per_usd": "7.3", "reason": "x"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let after = w.app.get(path, ADMIN).await;
    assert_eq!(after.body, rate.body);
}

#[tokio::test]
async fn a_cancelled_paid_contract_is_reversed_in_the_next_settlement() {
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let d = w
        .signed(
            &c,
            "li",
            "USD",
            &[("volvo", "80000", "64000")],
            "2026-03-02T10:00:00Z",
            None,
        )
        .await;
    let march = w.draft("sh", "2026-03").await;
    let id = march["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;
    let cancel = format!("/v1/deals/{d}/cancel");
    let body = json!({"reason": "customer withdrew", "at": "2026-04-03T09:00:00Z"});

    // A rep cannot cancel a contract; an open deal cannot be cancelled
    let r = w.app.post(&cancel, &w.li, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let open = w.app.deal(ADMIN, &c, "li", "volvo").await;
    let r = w
        .app
        .post(&format!("/v1/deals/{open}/cancel"), &w.mgr, body.clone())
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "invalid_state")
    );

    // When the manager cancels the paid contract
    let r = w.app.post(&cancel, &w.mgr, body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["cancel_reason"], "customer withdrew");
    assert_eq!(r.body["stage"], "sign", "it stays signed");
    let again = w.app.post(&cancel, &w.mgr, body).await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let history = w.app.get(&format!("/v1/deals/{d}/history"), &w.mgr).await;
    assert_eq!(
        history.body["items"].as_array().unwrap().last().unwrap()["action"],
        "cancelled"
    );

    // Then the next settlement reverses the 800 CNY with the reason
    let april = w.draft("sh", "2026-04").await;
    let rev = lines_of(&april, &d);
    assert_eq!(rev.len(), 1, "{april}");
    assert_eq!(amount(rev[0]), "-800");
    assert_eq!(rev[0]["adjusts"]["now"], "0");
    let e = rev[0]["explanation"].as_str().unwrap();
    assert!(
        e.contains("cancelled on 2026-04-03 (customer withdrew)"),
        "{e}"
    );
    // And an unsettled cancelled contract pays nothing at all
    let q = w
        .signed(
            &c,
            "li",
            "USD",
            &[("polestar", "80000", "64000")],
            "2026-03-05T10:00:00Z",
            None,
        )
        .await;
    w.app
        .ok(
            &format!("/v1/deals/{q}/cancel"),
            &w.mgr,
            json!({"reason": "duplicate"}),
        )
        .await;
    assert!(lines_of(&w.draft("sh", "2026-03").await, &q).is_empty());
}

#[tokio::test]
async fn a_customer_is_paid_once_when_an_earlier_order_moves_its_window() {
    // Given a customer paid 1,000 CNY in Q2 (first order 10 Feb)
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "self_developed").await;
    for at in [
        "2026-02-10T09:00:00Z",
        "2026-02-20T09:00:00Z",
        "2026-03-01T09:00:00Z",
    ] {
        w.signed(&c, "li", "CNY", &[("bmw", "40000", "30000")], at, None)
            .await;
    }
    let q2 = w.draft("sh", "2026-Q2").await;
    assert_eq!(amount(lines_of(&q2, &c)[0]), "1000");
    let id = q2["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;
    // When an earlier order is imported, so its window now closes in Q1
    w.signed(
        &c,
        "li",
        "CNY",
        &[("bmw", "10000", "5000")],
        "2025-12-20T09:00:00Z",
        None,
    )
    .await;
    // Then Q1 does not pay it again (the rule still pays 1,000)
    let q1 = w.draft("sh", "2026-Q1").await;
    assert!(lines_of(&q1, &c).is_empty(), "{q1}");
    assert_eq!(q1["already_settled"], 1);
}

#[tokio::test]
async fn a_deduction_is_reversed_when_a_new_customer_turns_up_later() {
    // Given zhao's 1,000 CNY deduction for 2026, approved
    let w = world("sh", "UTC").await;
    let year = w.draft("sh", "2026").await;
    let id = year["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;
    // When a self-developed customer of his with a first order in May is imported
    let c = w
        .customer("sh", "zhao", "enterprise", "self_developed")
        .await;
    w.signed(
        &c,
        "zhao",
        "CNY",
        &[("bmw", "1000", "500")],
        "2026-05-01T09:00:00Z",
        None,
    )
    .await;
    // Then the next settlement gives the 1,000 CNY back, with the reason
    let nov = w.draft("sh", "2026-11").await;
    let back: Vec<&Value> = nov["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["rep"] == "zhao" && l["rule"] == "no_new_customer_deduction")
        .collect();
    assert_eq!(back.len(), 1, "{nov}");
    assert_eq!(amount(back[0]), "1000");
    assert_eq!(back[0]["adjusts"]["paid"], "-1000");
}

#[tokio::test]
async fn a_cancelled_first_order_no_longer_starts_the_window() {
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "self_developed").await;
    let first = w
        .signed(
            &c,
            "li",
            "CNY",
            &[("bmw", "40000", "30000")],
            "2026-01-15T09:00:00Z",
            None,
        )
        .await;
    w.signed(
        &c,
        "li",
        "CNY",
        &[("bmw", "40000", "30000")],
        "2026-02-01T09:00:00Z",
        None,
    )
    .await;
    w.app
        .ok(
            &format!("/v1/deals/{first}/cancel"),
            &w.mgr,
            json!({"reason": "void"}),
        )
        .await;
    let customer = w.app.get(&format!("/v1/customers/{c}"), ADMIN).await;
    assert_eq!(customer.body["first_order_at"], "2026-02-01T09:00:00Z");
}

#[tokio::test]
async fn a_rule_paying_one_subject_twice_or_absurdly_is_refused() {
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    w.signed(
        &c,
        "li",
        "USD",
        &[("volvo", "80000", "64000")],
        "2026-03-02T10:00:00Z",
        None,
    )
    .await;
    for (name, line) in [
        (
            "twice",
            r#"#{ rule: "x", amount: dec(1), explanation: "e" }, #{ rule: "x", amount: dec(2), explanation: "e" }"#,
        ),
        (
            "absurd",
            r#"#{ rule: "y", amount: dec("10000000000000"), explanation: "e" }"#,
        ),
    ] {
        let source = format!(
            "fn bonus(input) {{ if input.subject_kind != \"deal\" {{ return #{{ lines: [] }}; }} #{{ lines: [{line}] }} }}"
        );
        w.live_rule(name, &source).await;
        let r = w.settle("sh", "2026-03").await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.body
        );
        assert_eq!(r.code(), "policy_failed");
        assert_eq!(r.body["error"]["details"]["policy"], name);
        w.app
            .ok(&format!("/v1/policies/{name}/deactivate"), ADMIN, json!({}))
            .await;
    }
    assert_eq!(w.settle("sh", "2026-03").await.status, StatusCode::CREATED);
}

/// A candidate new-brand rule: a flat 100 CNY per contract with new-brand lines.
const FLAT_RULE: &str = r#"
fn bonus(input) {
    if input.subject_kind != "deal" { return #{ lines: [] }; }
    let any = false;
    for l in input.deal.lines { if l.brand_new { any = true; } }
    if !any { return #{ lines: [] }; }
    #{ lines: [#{ rule: "new_brand_sale", amount: dec(100), explanation: "flat 100" }] }
}
"#;

async fn upload_flat(w: &World) -> u64 {
    let up = w
        .app
        .ok(
            "/v1/policies",
            ADMIN,
            json!({"name": "new-brand-bonus", "scope": "global", "runtime": "rhai", "source": FLAT_RULE}),
        )
        .await;
    up["version"].as_u64().unwrap()
}

#[tokio::test]
async fn a_simulation_pays_exactly_what_the_settlement_pays_after_activation() {
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let big = w
        .signed(
            &c,
            "li",
            "USD",
            &[("volvo", "80000", "64000")],
            "2026-03-02T10:00:00Z",
            None,
        )
        .await;
    w.signed(
        &c,
        "zhao",
        "USD",
        &[("polestar", "5000", "1000")],
        "2026-03-03T10:00:00Z",
        None,
    )
    .await;
    let v = upload_flat(&w).await;
    assert_eq!(v, 3, "v1 rhai and v2 wasm are the defaults");

    // When the admin backtests the candidate on March
    let r = w
        .app
        .post(
            &format!("/v1/policies/new-brand-bonus/versions/{v}/simulate"),
            ADMIN,
            json!({"branch": "sh", "period": "2026-03"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let sim = r.body;
    // Then per-rep totals show active against candidate, and every change
    assert_eq!(sim["active_total"], "800");
    assert_eq!(sim["candidate_total"], "200");
    let li = &sim["reps"][0];
    assert_eq!(
        (
            li["rep"].as_str(),
            li["active"].as_str(),
            li["candidate"].as_str()
        ),
        (Some("li"), Some("800"), Some("100"))
    );
    assert_eq!(li["difference"], "-700");
    assert_eq!(sim["changes"].as_array().unwrap().len(), 2);
    // And nothing was written: the live rules still pay 800
    let still = w.draft("sh", "2026-03").await;
    assert_eq!(amount(lines_of(&still, &big)[0]), "800");

    // When it is activated, the settlement pays exactly what was simulated
    w.app
        .ok(
            &format!("/v1/policies/new-brand-bonus/versions/{v}/activate"),
            ADMIN,
            json!({}),
        )
        .await;
    let settled = w.draft("sh", "2026-03").await;
    assert_eq!(settled["lines"], sim["candidate_lines"]);
    assert_eq!(settled["total"], sim["candidate_total"]);
}

/// Two of li's new-brand contracts worth 800 each under v1: one signed the
/// minute before 15 March, one at its first minute (UTC branch).
async fn new_brand_contracts_around_15_march(w: &World) -> (String, String) {
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let before = w
        .signed(
            &c,
            "li",
            "USD",
            &[("volvo", "80000", "64000")],
            "2026-03-14T23:59:00Z",
            None,
        )
        .await;
    let after = w
        .signed(
            &c,
            "li",
            "USD",
            &[("polestar", "80000", "64000")],
            "2026-03-15T00:00:00Z",
            None,
        )
        .await;
    (before, after)
}

#[tokio::test]
async fn each_subject_uses_the_version_in_force_on_its_day() {
    let w = world("sh", "UTC").await;
    let (before, after) = new_brand_contracts_around_15_march(&w).await;
    let v = upload_flat(&w).await;
    // Activated from 15 March: contracts signed before keep v1
    let r = w
        .app
        .post(
            &format!("/v1/policies/new-brand-bonus/versions/{v}/activate"),
            ADMIN,
            json!({"effective_from": "2026-03-15"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let s = w.draft("sh", "2026-03").await;
    let b = lines_of(&s, &before);
    assert_eq!(
        (amount(b[0]), b[0]["policy"]["version"].as_u64()),
        ("800".into(), Some(1))
    );
    let a = lines_of(&s, &after);
    assert_eq!(
        (amount(a[0]), a[0]["policy"]["version"].as_u64()),
        ("100".into(), Some(v))
    );
}

#[tokio::test]
async fn a_rule_deactivated_from_a_date_still_pays_what_was_signed_before() {
    let w = world("sh", "UTC").await;
    let (before, after) = new_brand_contracts_around_15_march(&w).await;
    // When the new-brand bonus is deactivated from 15 March
    let r = w
        .app
        .post(
            "/v1/policies/new-brand-bonus/deactivate",
            ADMIN,
            json!({"effective_from": "2026-03-15"}),
        )
        .await;
    // Then the policy records it, and March pays the contract signed before only
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["active_version"], Value::Null);
    let last = r.body["activations"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["version"].clone(), last["effective_from"].clone()),
        (Value::Null, json!("2026-03-15"))
    );
    let s = w.draft("sh", "2026-03").await;
    let b = lines_of(&s, &before);
    assert_eq!(
        (amount(b[0]), b[0]["policy"]["version"].as_u64()),
        ("800".into(), Some(1))
    );
    assert!(lines_of(&s, &after).is_empty(), "{s}");
    // A date that is not YYYY-MM-DD is refused
    let r = w
        .app
        .post(
            "/v1/policies/new-brand-bonus/deactivate",
            ADMIN,
            json!({"effective_from": "15 March"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
}

#[tokio::test]
async fn the_wasm_alternative_pays_what_the_script_pays() {
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    for (brand, usd, cost, at) in [
        ("volvo", "80000", "40000", "2026-03-02T10:00:00Z"),
        ("polestar", "30000.01", "15000", "2026-03-03T10:00:00Z"),
        ("bmw", "10000", "5000", "2026-03-04T10:00:00Z"),
    ] {
        w.signed(&c, "li", "USD", &[(brand, usd, cost)], at, None)
            .await;
    }
    // The defaults: v1 (rhai) live, v2 (wasm) stored as an alternative
    let versions = w
        .app
        .get("/v1/policies/new-brand-bonus/versions", ADMIN)
        .await;
    let runtimes: Vec<&str> = versions.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["runtime"].as_str().unwrap())
        .collect();
    assert_eq!(runtimes, ["rhai", "wasm"]);
    let rhai = w.draft("sh", "2026-03").await;
    w.app
        .ok(
            "/v1/policies/new-brand-bonus/versions/2/activate",
            ADMIN,
            json!({}),
        )
        .await;
    let wasm = w.draft("sh", "2026-03").await;
    let amounts = |s: &Value| -> Vec<(String, String)> {
        s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| (l["subject"].as_str().unwrap().to_string(), amount(l)))
            .collect()
    };
    assert_eq!(amounts(&rhai), amounts(&wasm));
    assert_eq!(wasm["total"], "1300");
    assert!(wasm["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["policy"]["version"] == 2));
}

#[tokio::test]
async fn statements_per_rep_in_json_and_csv() {
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    w.signed(
        &c,
        "li",
        "USD",
        &[("volvo", "80000", "64000")],
        "2026-03-02T10:00:00Z",
        None,
    )
    .await;
    w.signed(
        &c,
        "zhao",
        "USD",
        &[("polestar", "40000", "1000")],
        "2026-03-02T10:00:00Z",
        None,
    )
    .await;
    let s = w.draft("sh", "2026-03").await;
    let id = s["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;

    let path = "/v1/statements?branch=sh&rep=li&period=2026-03";
    let json = w.app.get(path, &w.li).await;
    assert_eq!(json.status, StatusCode::OK, "{}", json.body);
    assert_eq!(json.body["rep"], "li");
    assert_eq!(json.body["lines"].as_array().unwrap().len(), 1);
    assert_eq!(json.body["lines"][0]["status"], "approved");
    assert_eq!(json.body["lines"][0]["settlement"], id);
    assert_eq!(json.body["totals"]["approved"], "800");

    let csv = w.app.get(&format!("{path}&format=csv"), &w.li).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.body.as_str().unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("settlement,status,rep,rule"));
    assert!(
        rows[1].starts_with(&format!("{id},approved,li,new_brand_sale,deal,")),
        "{text}"
    );
    assert!(rows[1].contains(",800,CNY,"), "{text}");
    assert_eq!(rows[2], "total,approved,li,,,,2026-03,800,CNY,,,,");

    // The manager downloads the whole settlement: a row per line, per rep, and the total
    let all = w
        .app
        .get(&format!("/v1/settlements/{id}?format=csv"), &w.mgr)
        .await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert!(all.headers["content-disposition"]
        .to_str()
        .unwrap()
        .contains("settlement-sh-2026-03.csv"));
    let text = all.body.as_str().unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 6, "{text}");
    assert!(rows[0].starts_with("settlement,status,rep,rule"));
    assert!(
        rows[1].starts_with(&format!("{id},approved,li,new_brand_sale,deal,")),
        "{text}"
    );
    assert!(
        rows[2].starts_with(&format!("{id},approved,zhao,new_brand_sale,deal,")),
        "{text}"
    );
    assert_eq!(
        &rows[3..],
        [
            "total,approved,li,,,,2026-03,800,CNY,,,,",
            "total,approved,zhao,,,,2026-03,500,CNY,,,,",
            "total,approved,,,,,2026-03,1300,CNY,,,,"
        ]
    );
    // A rep may not read the settlement, in any format
    let r = w
        .app
        .get(&format!("/v1/settlements/{id}?format=csv"), &w.li)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A rep sees only their own statement
    let other = w
        .app
        .get("/v1/statements?branch=sh&rep=zhao&period=2026-03", &w.li)
        .await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    let bad = w.app.get(&format!("{path}&format=xml"), &w.li).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn bad_requests_get_clear_errors_and_write_nothing() {
    let w = world("sh", "UTC").await;
    for period in ["2026-13", "2026-Q5", "26", "2026-03-01"] {
        let r = w.settle("sh", period).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{period}");
        assert_eq!(r.code(), "validation_failed");
    }
    assert_eq!(
        w.settle("nowhere", "2026-03").await.status,
        StatusCode::FORBIDDEN
    );
    let admin = w
        .app
        .post(
            "/v1/settlements",
            ADMIN,
            json!({"branch": "nowhere", "period": "2026-03"}),
        )
        .await;
    assert_eq!(admin.status, StatusCode::NOT_FOUND);
    let rep = w
        .app
        .post(
            "/v1/settlements",
            &w.li,
            json!({"branch": "sh", "period": "2026-03"}),
        )
        .await;
    assert_eq!(rep.status, StatusCode::FORBIDDEN);
    let unknown = w
        .app
        .post(
            "/v1/settlements",
            &w.mgr,
            json!({"branch": "sh", "period": "2026-03", "x": 1}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);

    // A contract in a currency without a rate on its signing day: the rule
    // fails, the settlement is refused and nothing is stored
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    w.signed(
        &c,
        "li",
        "EUR",
        &[("volvo", "80000", "1")],
        "2026-03-02T10:00:00Z",
        None,
    )
    .await;
    let r = w.settle("sh", "2026-03").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "policy_failed");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("EUR per USD"),
        "{}",
        r.body
    );
    let list = w.app.get("/v1/settlements?branch=sh", &w.mgr).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 0);
    let missing = w.app.get("/v1/settlements/stl_nope", &w.mgr).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

/// Rewrites the store in `dir` as a server before settlements (schema 1)
/// left it: no signing indexes, no first orders, no new brands on deals.
async fn downgrade_to_schema_1(dir: &std::path::Path) {
    let store = open_when_released(dir).await;
    let mut batch = Batch::new();
    batch.delete(keys::key(keys::META, &["schema"]));
    for tag in [
        keys::IX_DEAL_SIGNED,
        keys::IX_DEAL_CUSTOMER_SIGNED,
        keys::IX_CUSTOMER_FIRST_ORDER,
        keys::IX_CUSTOMER_TIER,
        keys::IX_DEAL_OPEN,
        keys::IX_TASK_OPEN,
    ] {
        for (k, _) in store
            .scan(&keys::prefix(tag, &[]), None, usize::MAX)
            .unwrap()
        {
            batch.delete(k);
        }
    }
    for (tag, field) in [
        (keys::DEAL, "new_brands"),
        (keys::CUSTOMER, "first_order_at"),
    ] {
        for (k, v) in store
            .scan(&keys::prefix(tag, &[]), None, usize::MAX)
            .unwrap()
        {
            // Schema 1 kept deals as JSON.
            let mut record: Value = if tag == keys::DEAL {
                serde_json::to_value(dealflow::domain::deal::Deal::from_stored(&v).unwrap())
                    .unwrap()
            } else {
                serde_json::from_slice(&v).unwrap()
            };
            record.as_object_mut().unwrap().remove(field);
            if tag == keys::CUSTOMER {
                // Tiers predate the tiering policies.
                record["tier"] = json!("C");
            }
            batch.put(k, serde_json::to_vec(&record).unwrap());
        }
    }
    store.commit(batch).await.unwrap();
    store.flush().unwrap();
}

#[tokio::test]
async fn deals_signed_before_an_upgrade_are_settled_after_it() {
    // Given a new-brand contract and a self-developed customer's three
    // orders, written by a server that kept none of what settlements read
    let w = world("sh", "UTC").await;
    let (c, d) = w.three_orders().await;
    // (and, for the key-account indexes of schema 3, an open deal; the
    // customer is A-tier since its signings)
    w.app.deal(ADMIN, &c, "li", "volvo").await;
    // When the current server opens it
    let w = w.restart(downgrade_to_schema_1).await;

    // Then the contract and the customer settle as if written today
    let jan = w.draft("sh", "2026-01").await;
    assert_eq!(amount(lines_of(&jan, &d)[0]), "800", "{jan}");
    let q2 = w.draft("sh", "2026-Q2").await;
    assert_eq!(amount(lines_of(&q2, &c)[0]), "2500", "{q2}");
    let customer = w.app.get(&format!("/v1/customers/{c}"), ADMIN).await;
    assert_eq!(customer.body["first_order_at"], "2026-01-15T10:00:00Z");
    // And the upgrade re-tiers every branch once (in the background)
    w.app.services.tiering_idle().await;
    let customer = w.app.get(&format!("/v1/customers/{c}"), ADMIN).await;
    assert_eq!(customer.body["tier"], "A", "{}", customer.body);
    let history = w
        .app
        .get(&format!("/v1/customers/{c}/history"), ADMIN)
        .await;
    let last = history.body["items"]
        .as_array()
        .unwrap()
        .last()
        .cloned()
        .unwrap();
    assert_eq!(last["trigger"], "store upgrade", "{}", history.body);
    // And the team report and tiering find the customer's tier and the open deal
    let team = w.app.get("/v1/reports/team?branch=sh", &w.mgr).await;
    let li_line = team.body["reps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rep"] == "li")
        .cloned()
        .unwrap();
    assert_eq!(li_line["a"], 1, "{}", team.body);
    assert_eq!(li_line["open_deals"], 1, "{}", team.body);
    // (and the follow-up tasks of its three signings are open follow-ups)
    let followups = w.app.get("/v1/followups?branch=sh", &w.mgr).await;
    assert_eq!(
        followups.body["tasks"].as_array().unwrap().len(),
        12,
        "{}",
        followups.body
    );
    let retier = w
        .app
        .post("/v1/branches/sh/retier", &w.mgr, json!({}))
        .await;
    assert_eq!(retier.body["customers"], 1, "{}", retier.body);
    assert_eq!(retier.body["changes"], json!([]));
}

/// Rewrites the signing-index entries of the store in `dir` as JSON, as
/// servers before the binary form wrote them.
async fn signing_entries_as_json(dir: &std::path::Path) {
    let store = open_when_released(dir).await;
    let mut batch = Batch::new();
    let mut rewritten = 0;
    for tag in [keys::IX_DEAL_SIGNED, keys::IX_DEAL_CUSTOMER_SIGNED] {
        for (k, v) in store
            .scan(&keys::prefix(tag, &[]), None, usize::MAX)
            .unwrap()
        {
            assert_eq!(v[0], 1, "written in the binary form");
            let record = dealflow::incentive::DealRecord::decode(&v).unwrap();
            batch.put(k, serde_json::to_vec(&record).unwrap());
            rewritten += 1;
        }
    }
    assert_eq!(rewritten, 6);
    store.commit(batch).await.unwrap();
    store.flush().unwrap();
}

#[tokio::test]
async fn signing_index_entries_written_as_json_still_settle_tier_and_cancel() {
    // Given contracts signed and settled, tiered and reported
    let w = world("sh", "UTC").await;
    let (c, d) = w.three_orders().await;
    let jan = w.draft("sh", "2026-01").await;
    let q2 = w.draft("sh", "2026-Q2").await;
    let referrals = "/v1/reports/referrals?branch=sh&from=2026-01-01&to=2026-12-31";
    let team = w.app.get("/v1/reports/team?branch=sh", &w.mgr).await;
    let referred = w.app.get(referrals, &w.mgr).await;
    // When their signing-index entries are JSON, as servers before the
    // binary form wrote them
    let w = w.restart(signing_entries_as_json).await;

    // Then the same drafts, the same reports, and a re-tier changes nothing
    assert_eq!(w.draft("sh", "2026-01").await["lines"], jan["lines"]);
    assert_eq!(w.draft("sh", "2026-Q2").await["lines"], q2["lines"]);
    assert_eq!(amount(lines_of(&q2, &c)[0]), "2500", "{q2}");
    let again = w.app.get("/v1/reports/team?branch=sh", &w.mgr).await;
    assert_eq!(again.body["reps"], team.body["reps"]);
    assert_eq!(w.app.get(referrals, &w.mgr).await.body, referred.body);
    let retier = w
        .app
        .post("/v1/branches/sh/retier", &w.mgr, json!({}))
        .await;
    assert_eq!(retier.status, StatusCode::OK, "{}", retier.body);
    assert_eq!(retier.body["changes"], json!([]));
    // And cancelling the first order (which reads the customer's entries)
    // moves the window's start to the next one
    w.app
        .ok(
            &format!("/v1/deals/{d}/cancel"),
            &w.mgr,
            json!({"reason": "void"}),
        )
        .await;
    let customer = w.app.get(&format!("/v1/customers/{c}"), ADMIN).await;
    assert_eq!(customer.body["first_order_at"], "2026-02-01T10:00:00Z");
}

#[tokio::test]
async fn a_rule_declaring_its_subjects_is_asked_about_no_others() {
    // Given two global rules paying 1 CNY for any subject, one declaring it
    // settles customers only
    let w = world("sh", "UTC").await;
    let (c, d) = w.three_orders().await;
    let pays_all = |rule: &str| {
        format!(
            r#"fn bonus(input) {{ #{{ lines: [#{{ rule: "{rule}", amount: dec(1), explanation: input.subject_kind }}] }} }}"#
        )
    };
    for (name, source) in [
        (
            "flat-customers",
            format!(
                "{}\nfn bonus_subjects() {{ [\"customer\"] }}",
                pays_all("flat_c")
            ),
        ),
        ("flat-all", pays_all("flat_a")),
    ] {
        let up = w.live_rule(name, &source).await;
        let declared = if name == "flat-all" {
            Value::Null
        } else {
            json!(["customer"])
        };
        assert_eq!(up["bonus_subjects"], declared, "{up}");
    }
    let rules = |s: &Value, subject: &str| -> Vec<String> {
        let mut r: Vec<String> = lines_of(s, subject)
            .iter()
            .map(|l| l["rule"].as_str().unwrap().to_string())
            .collect();
        r.sort();
        r
    };

    // Then the contract of January is paid by the undeclared rule only
    let jan = w.draft("sh", "2026-01").await;
    assert_eq!(rules(&jan, &d), ["flat_a", "new_brand_sale"], "{jan}");
    // And the customer whose window closed in Q2 by both
    let q2 = w.draft("sh", "2026-Q2").await;
    assert_eq!(rules(&q2, &c), ["flat_a", "flat_c", "new_customer"], "{q2}");
    // And the version listing shows the declaration
    let versions = w
        .app
        .get("/v1/policies/flat-customers/versions", ADMIN)
        .await;
    assert_eq!(
        versions.body["items"][0]["bonus_subjects"],
        json!(["customer"]),
        "{}",
        versions.body
    );
}

#[tokio::test]
async fn a_store_written_by_a_newer_server_is_refused_at_start() {
    // Given a store whose schema is newer than this server's
    let w = world("sh", "UTC").await;
    let TestApp {
        router,
        services,
        dir,
    } = w.app;
    services.tiering_idle().await;
    drop(router);
    drop(services);
    {
        let store = open_when_released(dir.path()).await;
        let mut batch = Batch::new();
        batch.put(keys::key(keys::META, &["schema"]), b"99".to_vec());
        store.commit(batch).await.unwrap();
        store.flush().unwrap();
    }
    // When this server opens it, the upgrade step refuses it
    let store = open_when_released(dir.path()).await;
    let services = dealflow::Services::new(std::sync::Arc::new(store));
    let err = services.upgrade_store().await.unwrap_err().to_string();
    assert!(err.contains("newer server (schema 99)"), "{err}");
}

#[tokio::test]
async fn a_settlement_started_as_a_job_runs_on_its_own_and_is_found_again_with_its_result() {
    // Given a March contract of a new brand (800 CNY)
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    w.signed(
        &c,
        "li",
        "USD",
        &[("volvo", "80000", "64000")],
        "2026-03-02T10:00:00Z",
        None,
    )
    .await;
    let body = json!({"branch": "sh", "period": "2026-03"})
        .to_string()
        .into_bytes();

    // When the manager drafts March as a job
    let r = w
        .app
        .send_raw(
            axum::http::Method::POST,
            "/v1/settlements",
            Some(&w.mgr),
            Some(body.clone()),
            &[("prefer", "respond-async")],
        )
        .await;

    // Then the answer comes at once: 202 with the job and where it lives
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let job = &r.body["job"];
    let id = job["id"].as_str().expect("a job id").to_string();
    assert_eq!(job["kind"], "settlement");
    assert_eq!(job["branch"], "sh");
    assert_eq!(job["by"], "wang");
    assert_eq!(job["request"]["period"], "2026-03");
    assert_eq!(r.headers["location"], format!("/v1/jobs/{id}").as_str());

    // And the job finishes by itself, with the settlement as its result
    let started = std::time::Instant::now();
    let done = loop {
        let j = w.app.get(&format!("/v1/jobs/{id}"), &w.mgr).await;
        assert_eq!(j.status, StatusCode::OK, "{}", j.body);
        if j.body["state"] != "running" {
            break j.body;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "still running: {}",
            j.body
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(done["total"].as_u64().unwrap() > 0, "{done}");
    assert_eq!(done["done"], done["total"], "{done}");
    assert!(done["finished_at"].is_string());
    let settlement = done["result"]["id"]
        .as_str()
        .expect("the settlement")
        .to_string();
    assert_eq!(done["result"]["total"], "800");
    let stored = w
        .app
        .get(&format!("/v1/settlements/{settlement}"), &w.mgr)
        .await;
    assert_eq!(
        stored.status,
        StatusCode::OK,
        "the draft is stored: {}",
        stored.body
    );
    assert_eq!(stored.body["status"], "draft");

    // And it is found again in the branch's jobs; a rep sees no jobs
    let listed = w.app.get("/v1/jobs?branch=sh", &w.mgr).await;
    assert!(
        listed.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["id"] == id.as_str()),
        "{}",
        listed.body
    );
    assert_eq!(
        w.app.get(&format!("/v1/jobs/{id}"), &w.li).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        w.app.get("/v1/jobs", &w.li).await.status,
        StatusCode::FORBIDDEN
    );

    // When a job is asked for with a bad period, or by a rep
    let bad = json!({"branch": "sh", "period": "2026-13"})
        .to_string()
        .into_bytes();
    let r = w
        .app
        .send_raw(
            axum::http::Method::POST,
            "/v1/settlements?async=true",
            Some(&w.mgr),
            Some(bad),
            &[],
        )
        .await;
    // Then it is refused at once, as the synchronous route would, and no job starts
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    let r = w
        .app
        .send_raw(
            axum::http::Method::POST,
            "/v1/settlements?async=true",
            Some(&w.li),
            Some(body),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let listed = w.app.get("/v1/jobs?branch=sh", &w.mgr).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 1);
}
