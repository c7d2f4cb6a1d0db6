//! Settlements end to end through the router over a real sled store, with
//! the default bonus policies (docs/business-rules.md §5): what each period settles, the
//! lifecycle draft → approved → paid, double-pay prevention, true-ups,
//! effective dating, statements, and simulate == settle; who may change a
//! signed contract's money; first sales by signing time, whatever order the
//! history arrives in (a property test replays generated histories).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use dealflow::store::{keys, Batch, Store};
use dealflow_tests::{open_app, open_when_released, wasm_upload_body, Reply, TestApp, ADMIN};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
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

    /// A volvo contract in USD at a 20 % margin signed at `at`.
    async fn volvo(&self, customer: &str, owner: &str, usd: u32, at: &str) -> String {
        let (amount, cost) = (usd.to_string(), (usd / 5 * 4).to_string());
        self.signed(
            customer,
            owner,
            "USD",
            &[("volvo", &amount, &cost)],
            at,
            None,
        )
        .await
    }

    /// The brands a contract sells new.
    async fn new_brands(&self, deal: &str) -> Value {
        self.app.get(&format!("/v1/deals/{deal}"), ADMIN).await.body["new_brands"].clone()
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
async fn a_big_settlement_is_read_without_its_lines_and_its_lines_a_page_at_a_time() {
    // Given a quarter that closes five customers' windows, three of li's and two of zhao's
    let w = world("sh", "UTC").await;
    for owner in ["li", "li", "zhao", "li", "zhao"] {
        let c = w
            .customer("sh", owner, "enterprise", "self_developed")
            .await;
        w.signed(
            &c,
            owner,
            "CNY",
            &[("bmw", "40000", "30000")],
            "2026-01-15T09:00:00Z",
            None,
        )
        .await;
    }
    let full = w.draft("sh", "2026-Q2").await;
    let id = full["id"].as_str().unwrap().to_string();
    let all_lines = full["lines"].as_array().unwrap().clone();
    assert_eq!(all_lines.len(), 5, "{full}");
    assert_eq!(full["line_count"], 5);

    // When the manager reads it, or lists the branch's settlements, without lines
    let head = w
        .app
        .get(&format!("/v1/settlements/{id}?lines=none"), &w.mgr)
        .await;
    assert_eq!(head.status, StatusCode::OK, "{}", head.body);
    assert_eq!(head.body["lines"], json!([]));
    assert_eq!(head.body["line_count"], 5);
    assert_eq!(head.body["totals"], full["totals"]);
    assert_eq!(head.body["total"], full["total"]);
    let list = w
        .app
        .get("/v1/settlements?branch=sh&lines=none", &w.mgr)
        .await;
    assert_eq!(list.body["items"][0]["lines"], json!([]), "{}", list.body);
    assert_eq!(list.body["items"][0]["line_count"], 5);
    // (by default every line is there, as before)
    let listed = w.app.get("/v1/settlements?branch=sh", &w.mgr).await;
    assert_eq!(listed.body["items"][0]["lines"], json!(all_lines));

    // Then its lines come a page at a time, in the settlement's order
    let mut paged = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => format!("/v1/settlements/{id}/lines?limit=2"),
            Some(c) => format!("/v1/settlements/{id}/lines?limit=2&cursor={c}"),
        };
        let page = w.app.get(&path, &w.mgr).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body["items"].as_array().unwrap().len() <= 2);
        paged.extend(page.body["items"].as_array().unwrap().iter().cloned());
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(paged, all_lines);
    assert_eq!(pages, 3);
    // And one rep's lines alone
    let zhao = w
        .app
        .get(&format!("/v1/settlements/{id}/lines?rep=zhao"), &w.mgr)
        .await;
    let only: Vec<Value> = all_lines
        .iter()
        .filter(|l| l["rep"] == "zhao")
        .cloned()
        .collect();
    assert_eq!(zhao.body["items"], json!(only), "{}", zhao.body);
    assert_eq!(only.len(), 2);

    // And mistakes get clear errors; a rep reads no one's lines
    for (query, field) in [
        ("lines?cursor=zz", "cursor"),
        ("lines?limit=0", "limit"),
        ("?lines=some", "lines"),
    ] {
        let r = w
            .app
            .get(
                &format!(
                    "/v1/settlements/{id}{}",
                    if query.starts_with('?') {
                        query.to_string()
                    } else {
                        format!("/{query}")
                    }
                ),
                &w.mgr,
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert_eq!(
            r.body["error"]["details"]["field"], field,
            "{query}: {}",
            r.body
        );
    }
    let r = w
        .app
        .get(&format!("/v1/settlements/{id}/lines"), &w.li)
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = w.app.get("/v1/settlements/stl_nope/lines", &w.mgr).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
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
async fn a_paid_contracts_money_is_changed_only_by_a_manager_with_a_reason_and_trued_up() {
    // Given li's contract, signed in March and paid 800 CNY by March's settlement
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let d = w.volvo(&c, "li", 80000, "2026-03-02T10:00:00Z").await;
    let march = w.draft("sh", "2026-03").await;
    let id = march["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;
    let path = format!("/v1/deals/{d}");
    let before = w.app.get(&path, &w.li).await.body;

    // When li, its owner, raises it to 8,000,000 at a cost of 1, or moves
    // its currency, prepayment or signing time (even with a reason)
    for body in [
        json!({"lines": [{"brand": "volvo", "product": "p", "amount": "8000000", "cost": "1"}]}),
        json!({"currency": "CNY"}),
        json!({"prepayment_ratio": "0.5", "title": "Fleet"}),
        json!({"signed_at": "2026-03-20T10:00:00Z", "reason": "signed later"}),
    ] {
        let r = w.app.patch(&path, &w.li, body.clone(), None).await;
        // Then each is 403, saying who may change it
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::FORBIDDEN, "forbidden"),
            "{body}: {}",
            r.body
        );
        let m = r.body["error"]["message"].as_str().unwrap();
        assert!(
            m.contains("changed only by a manager of `sh` or an admin, with a reason"),
            "{m}"
        );
    }
    // And nothing changed
    assert_eq!(w.app.get(&path, &w.li).await.body, before);
    // While what is not money stays the owner's to edit
    let r = w
        .app
        .patch(&path, &w.li, json!({"title": "Fleet renewal"}), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // When the manager shrinks the lines to 40,000 USD without a reason
    let shrink =
        json!({"lines": [{"brand": "volvo", "product": "p", "amount": "40000", "cost": "32000"}]});
    let r = w.app.patch(&path, &w.mgr, shrink.clone(), None).await;
    // Then it is 422 naming `reason`, and nothing changed
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
        "{}",
        r.body
    );
    assert_eq!(r.body["error"]["details"]["field"], "reason");
    let now = w.app.get(&path, &w.mgr).await.body;
    assert_eq!(now["lines"], before["lines"]);
    assert_eq!(now["version"], before["version"].as_u64().unwrap() + 1);

    // When the manager does it with a reason (a 500 CNY tier)
    let mut body = shrink;
    body["reason"] = json!("the customer took 4 cars, not 8");
    let r = w.app.patch(&path, &w.mgr, body, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["amount_total"], "40000");

    // Then the history keeps who, why, and the lines before and after
    let history = w.app.get(&format!("{path}/history"), &w.li).await;
    let last = history.body["items"].as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "updated");
    assert_eq!(last["by"], "wang");
    assert_eq!(last["reason"], "the customer took 4 cars, not 8");
    assert_eq!(last["changes"]["lines"]["from"][0]["amount"], "80000");
    assert_eq!(last["changes"]["lines"]["to"][0]["amount"], "40000");

    // And the next settlement carries a reasoned -300 CNY adjustment
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

    // A rep cannot cancel a contract, and is told who may; an open deal
    // cannot be cancelled
    let r = w.app.post(&cancel, &w.li, body.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let m = r.body["error"]["message"].as_str().unwrap();
    assert!(
        m.contains("cancelled only by a manager of `sh` or an admin, with a reason"),
        "{m}"
    );
    assert!(w.app.get(&format!("/v1/deals/{d}"), &w.mgr).await.body["cancelled_at"].is_null());
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
    let last = history.body["items"].as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "cancelled");
    assert_eq!(last["by"], "wang");
    assert_eq!(last["reason"], "customer withdrew");

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
    assert_eq!(customer.body["first_order_at"], "2026-02-01T09:00:00.000Z");
}

#[tokio::test]
async fn an_imported_earlier_contract_is_the_brands_first_sale_and_the_next_settlement_trues_up() {
    // Given a May contract that first sold volvo, paid 800 CNY by May's
    // approved settlement
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let may = w.volvo(&c, "li", 80000, "2026-05-10T10:00:00Z").await;
    let may_s = w.draft("sh", "2026-05").await;
    assert_eq!(amount(lines_of(&may_s, &may)[0]), "800");
    let id = may_s["id"].as_str().unwrap();
    w.app
        .ok(&format!("/v1/settlements/{id}/approve"), &w.mgr, json!({}))
        .await;

    // When an April contract with volvo arrives after it (imported history)
    let april = w.volvo(&c, "zhao", 40000, "2026-04-10T10:00:00Z").await;

    // Then the April contract is the brand's first sale, by its own date
    let brand = w.app.get("/v1/brands/volvo", &w.li).await.body;
    assert_eq!(brand["new"], false);
    assert_eq!(brand["first_signed_deal"], april.as_str());
    assert_eq!(brand["first_signed_at"], "2026-04-10T10:00:00.000Z");
    assert_eq!(w.new_brands(&april).await, json!(["volvo"]));
    assert_eq!(w.new_brands(&may).await, json!([]));
    // And the May contract's history says why it changed
    let history = w.app.get(&format!("/v1/deals/{may}/history"), ADMIN).await;
    let last = history.body["items"].as_array().unwrap().last().unwrap();
    assert_eq!(last["action"], "updated");
    assert_eq!(last["changes"]["new_brands"]["from"], json!(["volvo"]));
    assert_eq!(last["changes"]["new_brands"]["to"], json!([]));
    let why = last["reason"].as_str().unwrap();
    assert!(
        why.contains(&format!("deal {april} was signed earlier")),
        "{why}"
    );

    // And the next settlement takes May's 800 CNY back, saying why
    let june = w.draft("sh", "2026-06").await;
    let back = lines_of(&june, &may);
    assert_eq!(back.len(), 1, "{june}");
    assert_eq!(amount(back[0]), "-800");
    assert_eq!(back[0]["adjusts"]["now"], "0");
    assert!(back[0]["explanation"]
        .as_str()
        .unwrap()
        .contains("no longer pays it"));
    // And April, settled again, pays zhao's April contract (500 CNY)
    let april_s = w.draft("sh", "2026-04").await;
    let paid = lines_of(&april_s, &april);
    assert_eq!(amount(paid[0]), "500", "{april_s}");
    assert_eq!(paid[0]["rep"], "zhao");

    // When the April contract is cancelled
    w.app
        .ok(
            &format!("/v1/deals/{april}/cancel"),
            &w.mgr,
            json!({"reason": "never delivered"}),
        )
        .await;
    // Then the May contract is the brand's first sale again
    let brand = w.app.get("/v1/brands/volvo", &w.li).await.body;
    assert_eq!(brand["first_signed_deal"], may.as_str());
    assert_eq!(w.new_brands(&may).await, json!(["volvo"]));
    assert_eq!(w.new_brands(&april).await, json!([]));

    // And so it stays after a restart
    let app = TestApp::reopen(w.app.close().await).await;
    let brand = app.get("/v1/brands/volvo", ADMIN).await.body;
    assert_eq!(brand["first_signed_deal"], may.as_str());
    assert_eq!(brand["first_signed_at"], "2026-05-10T10:00:00.000Z");
    let may_now = app.get(&format!("/v1/deals/{may}"), ADMIN).await.body;
    assert_eq!(may_now["new_brands"], json!(["volvo"]));
}

#[tokio::test]
async fn a_corrected_signing_time_moves_the_brands_first_sale_and_the_customers_first_order() {
    // Given an industrial customer's two volvo contracts: A signed 10 March
    // (its first order, the brand's first sale), B on 20 March
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "industrial", "self_developed").await;
    let a = w.volvo(&c, "li", 80000, "2026-03-10T10:00:00Z").await;
    let b = w.volvo(&c, "li", 40000, "2026-03-20T10:00:00Z").await;
    let first_order = || async {
        w.app.get(&format!("/v1/customers/{c}"), ADMIN).await.body["first_order_at"].clone()
    };
    assert_eq!(first_order().await, "2026-03-10T10:00:00.000Z");
    let path = format!("/v1/deals/{a}");

    // When li tries to correct A's signing time
    let fix = json!({"signed_at": "2026-03-25T10:00:00Z", "reason": "signed on the 25th"});
    let r = w.app.patch(&path, &w.li, fix.clone(), None).await;
    // Then it is 403 and nothing moved
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(first_order().await, "2026-03-10T10:00:00.000Z");

    // When the manager corrects it to 25 March, with a reason
    let r = w.app.patch(&path, &w.mgr, fix, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["signed_at"], "2026-03-25T10:00:00.000Z");
    assert_eq!(r.body["stage_entered_at"], "2026-03-25T10:00:00.000Z");
    assert_eq!(r.body["new_brands"], json!([]));

    // Then B is the brand's first sale and the customer's first order
    let brand = w.app.get("/v1/brands/volvo", ADMIN).await.body;
    assert_eq!(brand["first_signed_deal"], b.as_str());
    assert_eq!(brand["first_signed_at"], "2026-03-20T10:00:00.000Z");
    let b_now = w.app.get(&format!("/v1/deals/{b}"), ADMIN).await.body;
    assert_eq!(b_now["new_brands"], json!(["volvo"]));
    assert_eq!(first_order().await, "2026-03-20T10:00:00.000Z");
    // And A's history keeps the reason beside both times
    let history = w.app.get(&format!("{path}/history"), ADMIN).await;
    let last = history.body["items"].as_array().unwrap().last().unwrap();
    assert_eq!(last["reason"], "signed on the 25th");
    assert_eq!(
        last["changes"]["signed_at"],
        json!({"from": "2026-03-10T10:00:00Z", "to": "2026-03-25T10:00:00Z"})
    );
    // And March pays the new-brand sale to B (500 CNY), not A
    let march = w.draft("sh", "2026-03").await;
    assert_eq!(amount(lines_of(&march, &b)[0]), "500", "{march}");
    assert!(lines_of(&march, &a).is_empty(), "{march}");

    // And a signing time before the deal was opened, or of a deal not
    // signed, is refused naming `signed_at`
    let early = json!({"signed_at": "2025-01-01T00:00:00Z", "reason": "typo"});
    let r = w.app.patch(&path, &w.mgr, early.clone(), None).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "signed_at");
    let open = w.app.deal(ADMIN, &c, "li", "volvo").await;
    let r = w
        .app
        .patch(&format!("/v1/deals/{open}"), &w.mgr, early, None)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.body["error"]["details"]["field"], "signed_at");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contracts_signed_and_cancelled_at_once_agree_on_the_first_sale() {
    // Given twelve volvo contracts of one customer, signed on twelve
    // different days, every third one then cancelled
    let w = std::sync::Arc::new(world("sh", "UTC").await);
    let c = w.customer("sh", "li", "enterprise", "self_developed").await;
    let mut ids = Vec::new();
    for _ in 0..12 {
        let mut body = dealflow_tests::deal_body(&c, "li", "volvo");
        body["opened_at"] = json!("2025-06-01T00:00:00Z");
        ids.push(
            w.app.ok("/v1/deals", ADMIN, body).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    // When all of it arrives at once, latest first
    let mut arrivals = tokio::task::JoinSet::new();
    for (i, id) in ids.iter().enumerate().rev() {
        let (w, id) = (std::sync::Arc::clone(&w), id.clone());
        arrivals.spawn(async move {
            let at = format!("2026-02-{:02}T10:00:00Z", i + 1);
            let r = w
                .app
                .post(
                    &format!("/v1/deals/{id}/transitions"),
                    ADMIN,
                    json!({"to": "sign", "at": at}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            if i % 3 == 0 {
                let r = w
                    .app
                    .post(
                        &format!("/v1/deals/{id}/cancel"),
                        &w.mgr,
                        json!({"reason": "void", "at": at}),
                    )
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            }
        });
    }
    while let Some(done) = arrivals.join_next().await {
        done.expect("every arrival is accepted");
    }
    // Then the earliest contract not cancelled (2 February) is the brand's
    // first sale, the only one selling it new, and the customer's first order
    let brand = w.app.get("/v1/brands/volvo", ADMIN).await.body;
    assert_eq!(brand["first_signed_deal"], ids[1].as_str(), "{brand}");
    assert_eq!(brand["first_signed_at"], "2026-02-02T10:00:00.000Z");
    for (i, id) in ids.iter().enumerate() {
        let want = if i == 1 { json!(["volvo"]) } else { json!([]) };
        assert_eq!(w.new_brands(id).await, want, "contract {i}");
    }
    let customer = w.app.get(&format!("/v1/customers/{c}"), ADMIN).await.body;
    assert_eq!(customer["first_order_at"], "2026-02-02T10:00:00.000Z");
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
async fn a_plugin_built_for_interface_1_0_still_pays_what_the_1_1_build_pays() {
    // Given contracts around the new-brand tiers, and the default wasm
    // alternative (version 2, built for interface 1.1.0)
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
    let v2 = w
        .app
        .get("/v1/policies/new-brand-bonus/versions", ADMIN)
        .await
        .body["items"][1]
        .clone();
    assert_eq!(v2["interface"], "1.1.0", "{v2}");
    assert_eq!(v2["bonus_subjects"], json!(["deal"]), "{v2}");

    // When the same rule built for interface 1.0.0 before 1.1 existed is
    // uploaded as version 3
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/new-brand-bonus-1.0.0.wasm"
    );
    let up = w
        .app
        .post(
            "/v1/policies",
            ADMIN,
            wasm_upload_body(fixture, "new-brand-bonus", "global"),
        )
        .await;

    // Then it loads as a 1.0.0 plugin (which declares no subjects) …
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["version"], 3);
    assert_eq!(up.body["interface"], "1.0.0");
    assert!(up.body.get("bonus_subjects").is_none(), "{}", up.body);
    // … and each version, once live, pays the same lines
    let mut drafts = Vec::new();
    for v in [2, 3] {
        w.app
            .ok(
                &format!("/v1/policies/new-brand-bonus/versions/{v}/activate"),
                ADMIN,
                json!({}),
            )
            .await;
        drafts.push(w.draft("sh", "2026-03").await);
    }
    let paid = |s: &Value| -> Vec<(String, String, String)> {
        s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                (
                    l["subject"].as_str().unwrap().to_string(),
                    amount(l),
                    l["explanation"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(paid(&drafts[0]), paid(&drafts[1]));
    assert_eq!(drafts[1]["total"], "1300");
    assert!(drafts[1]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["policy"]["version"] == 3));
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
    assert_eq!(customer.body["first_order_at"], "2026-01-15T10:00:00.000Z");
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
    assert_eq!(customer.body["first_order_at"], "2026-02-01T10:00:00.000Z");
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

/// Rewrites the store in `dir` as a server of schema 4 would have left it
/// after `later` and then `earlier` were signed with `brand`: no brand
/// index, and the first contract to arrive (`later`) as the brand's first
/// sale.
async fn first_to_arrive_at_schema_4(
    dir: &std::path::Path,
    brand: &str,
    later: &str,
    earlier: &str,
) {
    use dealflow::domain::deal::Deal;
    use dealflow::incentive::inputs::DealRecord;
    let store = open_when_released(dir).await;
    let mut batch = Batch::new();
    batch.put(keys::key(keys::META, &["schema"]), b"4".to_vec());
    for (k, _) in store
        .scan(&keys::prefix(keys::IX_BRAND_SIGNED, &[]), None, usize::MAX)
        .unwrap()
    {
        batch.delete(k);
    }
    let mut first_signed_at = None;
    for (id, new_brands) in [(later, vec![brand.to_string()]), (earlier, Vec::new())] {
        let key = keys::key(keys::DEAL, &[id]);
        let mut d = Deal::from_stored(&store.get(&key).unwrap().unwrap()).unwrap();
        d.new_brands = new_brands;
        let t = keys::time(&d.signed_at.unwrap());
        first_signed_at.get_or_insert(d.signed_at.unwrap());
        let record = DealRecord::from(&d).encode();
        batch.put(
            keys::key(keys::IX_DEAL_SIGNED, &[&d.branch, &t, id]),
            record.clone(),
        );
        batch.put(
            keys::key(keys::IX_DEAL_CUSTOMER_SIGNED, &[&d.customer_id, &t, id]),
            record,
        );
        batch.put(key, d.to_stored());
    }
    let key = keys::key(keys::BRAND, &[brand]);
    let mut b: Value = serde_json::from_slice(&store.get(&key).unwrap().unwrap()).unwrap();
    b["first_signed_deal"] = json!(later);
    b["first_signed_at"] = json!(first_signed_at);
    batch.put(key, serde_json::to_vec(&b).unwrap());
    store.commit(batch).await.unwrap();
    store.flush().unwrap();
}

#[tokio::test]
async fn a_store_that_kept_the_first_contract_to_arrive_is_corrected_at_upgrade() {
    // Given a May contract, then an imported April one, both with volvo,
    // in a store whose server kept the first to arrive (May) as the
    // brand's first sale
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let may = w.volvo(&c, "li", 80000, "2026-05-10T10:00:00Z").await;
    let april = w.volvo(&c, "li", 40000, "2026-04-10T10:00:00Z").await;
    let w = w
        .restart(async |dir| first_to_arrive_at_schema_4(dir, "volvo", &may, &april).await)
        .await;

    // When the current server has opened it (above)
    // Then the April contract is the brand's first sale
    let brand = w.app.get("/v1/brands/volvo", ADMIN).await.body;
    assert_eq!(brand["first_signed_deal"], april.as_str());
    assert_eq!(brand["first_signed_at"], "2026-04-10T10:00:00.000Z");
    assert_eq!(w.new_brands(&april).await, json!(["volvo"]));
    assert_eq!(w.new_brands(&may).await, json!([]));
    // And the corrected contracts' histories say why
    let history = w.app.get(&format!("/v1/deals/{may}/history"), ADMIN).await;
    let last = history.body["items"].as_array().unwrap().last().unwrap();
    assert_eq!(last["by"], "system");
    assert!(last["reason"].as_str().unwrap().contains("store upgrade"));
    // And settlements pay April's contract, not May's
    assert_eq!(
        amount(lines_of(&w.draft("sh", "2026-04").await, &april)[0]),
        "500"
    );
    assert!(lines_of(&w.draft("sh", "2026-05").await, &may).is_empty());
    // And the brand index is back: cancelling April gives May the brand
    w.app
        .ok(
            &format!("/v1/deals/{april}/cancel"),
            &w.mgr,
            json!({"reason": "void"}),
        )
        .await;
    let brand = w.app.get("/v1/brands/volvo", ADMIN).await.body;
    assert_eq!(brand["first_signed_deal"], may.as_str());
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
    let services =
        dealflow::Services::new(std::sync::Arc::new(store)).expect("the policy engines start");
    let err = services.upgrade_store().await.unwrap_err().to_string();
    assert!(err.contains("newer server (schema 99)"), "{err}");
}

// ---------------------------------------------------------------------------
// Imported history decides by its own dates: a generated history, signed in
// random arrival orders (some contracts first arriving with a wrong signing
// time or wrong lines that a manager corrects later), settles line for line
// as the same history lived through in the order of its dates.

/// A line of a generated contract: (brand, amount in thousands, cost as a
/// percentage of the amount).
type GenLine = (usize, u32, u32);

/// One contract of a generated history.
#[derive(Debug, Clone)]
struct Contract {
    /// Index of its customer.
    customer: usize,
    currency: &'static str,
    lines: Vec<GenLine>,
    /// Minutes after 2026-01-01T00:00Z (distinct per contract).
    signed: i64,
    /// Prepayment in percent.
    prepayment: Option<u32>,
    /// Cancelled this many days after its signing.
    cancelled: Option<i64>,
    /// How it first arrives wrong in a shuffled run (a manager corrects it
    /// later, with a reason).
    wrong: Option<Wrong>,
}

#[derive(Debug, Clone)]
enum Wrong {
    /// Signed this many days too early.
    Early(i64),
    /// With these lines instead.
    Lines(Vec<GenLine>),
}

/// Customers (segment, source, owner), contracts, and the seeds of the
/// shuffled arrival orders.
#[derive(Debug, Clone)]
struct History {
    customers: Vec<(&'static str, &'static str, &'static str)>,
    contracts: Vec<Contract>,
    orders: Vec<u64>,
}

const GEN_BRANDS: [&str; 3] = ["volvo", "polestar", "bmw"];

fn gen_lines() -> impl Strategy<Value = Vec<GenLine>> {
    prop::collection::vec((0..3usize, 5u32..150, 70u32..98), 1..=2)
}

fn gen_history() -> impl Strategy<Value = History> {
    let customer = (
        select(vec!["industrial", "enterprise"]),
        select(vec!["self_developed", "assigned"]),
        select(vec!["li", "zhao"]),
    );
    let wrong = prop_oneof![
        (1i64..60).prop_map(Wrong::Early),
        gen_lines().prop_map(Wrong::Lines)
    ];
    let contract = (
        0..3usize,
        select(vec!["CNY", "USD"]),
        gen_lines(),
        (0i64..181, 0i64..24),
        prop::option::of(0u32..=100),
        prop::option::weighted(0.2, 0i64..40),
        prop::option::weighted(0.3, wrong),
    );
    (
        prop::collection::vec(customer, 3),
        prop::collection::vec(contract, 5..=9),
        prop::collection::vec(any::<u64>(), 2),
    )
        .prop_map(|(customers, contracts, orders)| History {
            customers,
            contracts: contracts
                .into_iter()
                .enumerate()
                .map(
                    |(
                        i,
                        (customer, currency, lines, (day, hour), prepayment, cancelled, wrong),
                    )| {
                        Contract {
                            customer,
                            currency,
                            lines,
                            signed: (day * 24 + hour) * 60 + i as i64,
                            prepayment,
                            cancelled,
                            wrong,
                        }
                    },
                )
                .collect(),
            orders,
        })
}

/// What arrives: a contract signed, cancelled, or corrected.
#[derive(Debug, Clone, Copy)]
enum Arrival {
    Sign(usize),
    Cancel(usize),
    Correct(usize),
}

/// `minutes` after 2026-01-01T00:00Z, as RFC 3339.
fn gen_time(minutes: i64) -> String {
    let base: chrono::DateTime<chrono::Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    (base + chrono::Duration::minutes(minutes)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Contract {
    /// Minutes of its cancellation.
    fn cancel_at(&self) -> Option<i64> {
        self.cancelled.map(|d| self.signed + d * 24 * 60 + 1)
    }
}

/// The history in the order of its dates, each contract right the first time.
fn in_date_order(h: &History) -> Vec<Arrival> {
    let mut dated: Vec<(i64, Arrival)> = Vec::new();
    for (i, c) in h.contracts.iter().enumerate() {
        dated.push((c.signed, Arrival::Sign(i)));
        if let Some(t) = c.cancel_at() {
            dated.push((t, Arrival::Cancel(i)));
        }
    }
    dated.sort_by_key(|(t, _)| *t);
    dated.into_iter().map(|(_, a)| a).collect()
}

/// A random arrival order: a contract's cancellation and correction come
/// after its signing, anything else in any order.
fn shuffled(h: &History, seed: u64) -> Vec<Arrival> {
    let mut g = dealflow_tests::Gen(seed | 1);
    let mut ready: Vec<Arrival> = (0..h.contracts.len()).map(Arrival::Sign).collect();
    let mut order = Vec::new();
    while !ready.is_empty() {
        let next = ready.swap_remove(g.below(ready.len() as u64) as usize);
        if let Arrival::Sign(i) = next {
            let c = &h.contracts[i];
            if c.cancelled.is_some() {
                ready.push(Arrival::Cancel(i));
            }
            if c.wrong.is_some() {
                ready.push(Arrival::Correct(i));
            }
        }
        order.push(next);
    }
    order
}

fn gen_line_bodies(lines: &[GenLine]) -> Value {
    lines
        .iter()
        .map(|(b, thousands, cost)| {
            let amount = u64::from(*thousands) * 1000;
            json!({"brand": GEN_BRANDS[*b], "product": "p", "amount": amount.to_string(),
                   "cost": (amount * u64::from(*cost) / 100).to_string()})
        })
        .collect()
}

/// Plays `arrivals` of `h` on `w` (contracts arriving wrong when
/// `with_mistakes`); the ids of its deals and customers.
async fn play(
    w: &World,
    h: &History,
    arrivals: &[Arrival],
    with_mistakes: bool,
) -> (Vec<String>, Vec<String>) {
    let mut customers = Vec::new();
    for (segment, source, owner) in &h.customers {
        customers.push(w.customer("sh", owner, segment, source).await);
    }
    let mut deals = vec![String::new(); h.contracts.len()];
    for a in arrivals {
        match *a {
            Arrival::Sign(i) => {
                let c = &h.contracts[i];
                let (mut lines, mut at) = (c.lines.clone(), c.signed);
                match &c.wrong {
                    Some(Wrong::Early(days)) if with_mistakes => at -= days * 24 * 60,
                    Some(Wrong::Lines(l)) if with_mistakes => lines = l.clone(),
                    _ => {}
                }
                let owner = h.customers[c.customer].2;
                let mut body = json!({"customer_id": customers[c.customer], "title": format!("D{i}"),
                                      "owner": owner, "currency": c.currency,
                                      "lines": gen_line_bodies(&lines), "opened_at": "2025-06-01T00:00:00Z"});
                if let Some(p) = c.prepayment {
                    body["prepayment_ratio"] = json!(rust_decimal::Decimal::new(p.into(), 2));
                }
                let id = w.app.ok("/v1/deals", ADMIN, body).await["id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                w.app
                    .ok(
                        &format!("/v1/deals/{id}/transitions"),
                        ADMIN,
                        json!({"to": "sign", "at": gen_time(at)}),
                    )
                    .await;
                deals[i] = id;
            }
            Arrival::Cancel(i) => {
                let at = h.contracts[i].cancel_at().unwrap();
                w.app
                    .ok(
                        &format!("/v1/deals/{}/cancel", deals[i]),
                        &w.mgr,
                        json!({"reason": "withdrawn", "at": gen_time(at)}),
                    )
                    .await;
            }
            Arrival::Correct(i) => {
                let c = &h.contracts[i];
                let mut body = match c.wrong {
                    Some(Wrong::Early(_)) => json!({"signed_at": gen_time(c.signed)}),
                    _ => json!({"lines": gen_line_bodies(&c.lines)}),
                };
                body["reason"] = json!("imported with a mistake");
                let r = w
                    .app
                    .patch(&format!("/v1/deals/{}", deals[i]), &w.mgr, body, None)
                    .await;
                assert_eq!(r.status, StatusCode::OK, "correcting D{i}: {}", r.body);
            }
        }
    }
    (deals, customers)
}

/// Every period a generated history touches.
const GEN_PERIODS: [&str; 10] = [
    "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-Q1", "2026-Q2",
    "2026-Q3", "2026",
];

/// What a history settles to, with ids replaced by the history's own
/// labels (`D3`, `C1`): each period's lines (sorted), each brand's first
/// sale, each contract's new brands, each customer's first order.
async fn settled(w: &World, deals: &[String], customers: &[String]) -> BTreeMap<String, Value> {
    let labels: Vec<(String, String)> = deals
        .iter()
        .enumerate()
        .map(|(i, d)| (d.clone(), format!("D{i}")))
        .chain(
            customers
                .iter()
                .enumerate()
                .map(|(i, c)| (c.clone(), format!("C{i}"))),
        )
        .collect();
    let relabel = |v: &Value| -> Value {
        let mut text = v.to_string();
        for (id, label) in &labels {
            text = text.replace(id.as_str(), label);
        }
        serde_json::from_str(&text).unwrap()
    };
    let mut out = BTreeMap::new();
    for period in GEN_PERIODS {
        let s = w.draft("sh", period).await;
        let mut lines: Vec<String> = s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| relabel(l).to_string())
            .collect();
        lines.sort();
        out.insert(format!("settlement {period}"), json!(lines));
    }
    for b in GEN_BRANDS {
        let brand = w.app.get(&format!("/v1/brands/{b}"), ADMIN).await.body;
        out.insert(
            format!("brand {b}"),
            relabel(&json!([
                brand["new"],
                brand["first_signed_deal"],
                brand["first_signed_at"]
            ])),
        );
    }
    for (i, d) in deals.iter().enumerate() {
        let deal = w.app.get(&format!("/v1/deals/{d}"), ADMIN).await.body;
        out.insert(format!("D{i} new_brands"), deal["new_brands"].clone());
    }
    for (i, c) in customers.iter().enumerate() {
        let customer = w.app.get(&format!("/v1/customers/{c}"), ADMIN).await.body;
        out.insert(
            format!("C{i} first_order_at"),
            customer["first_order_at"].clone(),
        );
    }
    out
}

/// Lives `h` through in date order, then replays it in each shuffled order
/// on a fresh server; every answer must be the same.
async fn same_in_every_order(h: History) -> Result<(), TestCaseError> {
    let lived = {
        let w = world("sh", "UTC").await;
        let (d, c) = play(&w, &h, &in_date_order(&h), false).await;
        settled(&w, &d, &c).await
    };
    for seed in &h.orders {
        let w = world("sh", "UTC").await;
        let order = shuffled(&h, *seed);
        let (d, c) = play(&w, &h, &order, true).await;
        let imported = settled(&w, &d, &c).await;
        for (what, want) in &lived {
            prop_assert_eq!(
                &imported[what],
                want,
                "{} differs when the history arrives as {:?}",
                what,
                order
            );
        }
    }
    Ok(())
}

#[test]
fn imported_history_settles_line_for_line_as_lived_through_in_any_arrival_order() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cases = std::env::var("ARRIVAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(0x51_6e_ed),
        // Each case runs three servers: shrink a failure a little, not long.
        max_shrink_iters: 24,
        ..Config::default()
    });
    if let Err(e) = runner.run(&gen_history(), |h| rt.block_on(same_in_every_order(h))) {
        panic!("{e}");
    }
}

#[tokio::test]
async fn a_corrected_fx_rate_keeps_its_history_and_is_trued_up_while_approved_lines_keep_theirs() {
    // Given a CNY rate mistyped as 71.5 (meant 7.15) from 1 March, and a
    // 250,000 CNY new-brand contract signed on 2 March: about 3,500 USD at
    // the typo, so March's approved and paid settlement pays it 0 CNY
    let w = world("sh", "UTC").await;
    w.app
        .ok(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "CNY", "date": "2026-03-01", "per_usd": "71.5"}),
        )
        .await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let d = w
        .signed(
            &c,
            "li",
            "CNY",
            &[("volvo", "250000", "200000")],
            "2026-03-02T10:00:00Z",
            None,
        )
        .await;
    let march = w.draft("sh", "2026-03").await;
    let march_id = march["id"].as_str().unwrap().to_string();
    let paid = lines_of(&march, &d);
    assert_eq!(amount(paid[0]), "0", "{march}");
    for step in ["approve", "pay"] {
        w.app
            .ok(
                &format!("/v1/settlements/{march_id}/{step}"),
                &w.mgr,
                json!({}),
            )
            .await;
    }
    let rate = "/v1/fx-rates/CNY/2026-03-01";

    // When a manager or a rep tries to correct it, or the admin corrects
    // one that does not exist, or without a reason
    let fix = json!({"per_usd": "7.15", "reason": "typo: 71.5 for 7.15"});
    for token in [&w.mgr, &w.li] {
        let r = w
            .app
            .send(
                axum::http::Method::PUT,
                rate,
                Some(token),
                Some(fix.clone()),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    }
    let r = w
        .app
        .send(
            axum::http::Method::PUT,
            "/v1/fx-rates/CNY/2026-03-02",
            Some(ADMIN),
            Some(fix.clone()),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = w
        .app
        .send(
            axum::http::Method::PUT,
            rate,
            Some(ADMIN),
            Some(json!({"per_usd": "7.15"})),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_body"),
        "{}",
        r.body
    );
    assert_eq!(r.body["error"]["details"]["field"], "reason");
    // Then nothing changed
    assert_eq!(w.app.get(rate, &w.li).await.body["per_usd"], "71.5");

    // When the admin corrects it, with a reason and the version read
    let r = w
        .app
        .send_raw(
            axum::http::Method::PUT,
            rate,
            Some(ADMIN),
            Some(fix.to_string().into_bytes()),
            &[("if-match", "\"1\"")],
        )
        .await;
    // Then it is version 2, with who and why
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["per_usd"], "7.15");
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["recorded_by"], "admin");
    assert_eq!(r.body["reason"], "typo: 71.5 for 7.15");
    // And a second correction from the stale version is a conflict
    let r = w
        .app
        .send_raw(
            axum::http::Method::PUT,
            rate,
            Some(ADMIN),
            Some(
                json!({"per_usd": "7.2", "reason": "again"})
                    .to_string()
                    .into_bytes(),
            ),
            &[("if-match", "\"1\"")],
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::CONFLICT, "version_conflict"),
        "{}",
        r.body
    );

    // And the rate's history keeps both versions, oldest first
    let h = w.app.get(&format!("{rate}/history"), &w.li).await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.body);
    let versions: Vec<(Value, Value)> = h.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].clone(), v["per_usd"].clone()))
        .collect();
    assert_eq!(
        versions,
        vec![(json!(1), json!("71.5")), (json!(2), json!("7.15"))]
    );

    // And March, approved and paid, still says it used version 1 at 71.5
    let m = w
        .app
        .get(&format!("/v1/settlements/{march_id}"), &w.mgr)
        .await;
    assert_eq!(m.body["lines"], march["lines"]);
    assert_eq!(
        lines_of(&m.body, &d)[0]["fx_rates"],
        json!([{"currency": "CNY", "date": "2026-03-01", "per_usd": "71.5", "version": 1}])
    );
    assert!(lines_of(&m.body, &d)[0]["explanation"]
        .as_str()
        .unwrap()
        .contains("71.5"));

    // And the next draft pays the difference at the corrected rate (about
    // 34,965 USD: 500 CNY), saying which rate was corrected
    let april = w.draft("sh", "2026-04").await;
    let up = lines_of(&april, &d);
    assert_eq!(up.len(), 1, "{april}");
    assert_eq!(amount(up[0]), "500");
    assert_eq!(up[0]["adjusts"]["paid"], "0");
    assert_eq!(up[0]["adjusts"]["now"], "500");
    assert_eq!(
        up[0]["fx_rates"],
        json!([{"currency": "CNY", "date": "2026-03-01", "per_usd": "7.15", "version": 2}])
    );
    let reason = up[0]["adjusts"]["reason"].as_str().unwrap();
    assert!(
        reason.contains(
            "the CNY rate of 2026-03-01 was corrected from 71.5 (version 1) to 7.15 (version 2)"
        ),
        "{reason}"
    );

    // And all of it survives a restart
    let w = w.restart(async |_| {}).await;
    let h2 = w.app.get(&format!("{rate}/history"), ADMIN).await;
    assert_eq!(h2.body, h.body);
    let m2 = w
        .app
        .get(&format!("/v1/settlements/{march_id}"), &w.mgr)
        .await;
    assert_eq!(m2.body["lines"], march["lines"]);
}

#[tokio::test]
async fn a_bonus_rule_deactivated_from_a_day_keeps_what_it_paid_before_it() {
    // Given a new-brand contract of March, settled and paid (800 CNY), and
    // another new brand's contract signed in April
    let w = world("sh", "UTC").await;
    let c = w.customer("sh", "li", "enterprise", "assigned").await;
    let march = w.volvo(&c, "li", 80000, "2026-03-02T10:00:00Z").await;
    let april = w
        .signed(
            &c,
            "li",
            "USD",
            &[("polestar", "80000", "64000")],
            "2026-04-10T10:00:00Z",
            None,
        )
        .await;
    let s = w.draft("sh", "2026-03").await;
    assert_eq!(amount(lines_of(&s, &march)[0]), "800");
    let id = s["id"].as_str().unwrap();
    for step in ["approve", "pay"] {
        let path = format!("/v1/settlements/{id}/{step}");
        w.app.ok(&path, &w.mgr, json!({})).await;
    }

    // When the rule is deactivated from 1 April (as the CLI's
    // `policy deactivate new-brand-bonus --effective-from 2026-04-01` does)
    let r = w
        .app
        .post(
            "/v1/policies/new-brand-bonus/deactivate",
            ADMIN,
            json!({"effective_from": "2026-04-01"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body["active_version"].is_null());
    assert_eq!(
        r.body["activations"].as_array().unwrap().last().unwrap()["effective_from"],
        "2026-04-01"
    );

    // Then April pays nothing for April's contract and takes nothing back
    // from March's
    let s = w.draft("sh", "2026-04").await;
    assert!(lines_of(&s, &april).is_empty(), "{s}");
    assert!(lines_of(&s, &march).is_empty(), "{s}");

    // While a deactivation without a day stops the rule on every day, and
    // the next settlement reverses what it paid
    w.app
        .ok("/v1/policies/new-brand-bonus/deactivate", ADMIN, json!({}))
        .await;
    let s = w.draft("sh", "2026-04").await;
    let reversal = lines_of(&s, &march);
    assert_eq!(reversal.len(), 1, "{s}");
    assert_eq!(amount(reversal[0]), "-800");
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
    // (the job keeps the settlement's head; its lines are the settlement's)
    assert_eq!(done["result"]["line_count"], 1, "{done}");
    assert_eq!(done["result"]["lines"], json!([]), "{done}");
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
