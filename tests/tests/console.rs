//! The web console, in a real browser (headless Chromium through WebDriver,
//! `dealflow_tests::browser`) against the real binary: a rep's day from
//! sign-in to a signed deal, what the page shows at each step, that the
//! console asks nothing of another origin, and that its session is safe
//! (an HttpOnly cookie, refused from another site, ended by signing out).
//! Plus what the server answers for the console's page itself (its
//! security headers, no inline script), through the router.
//!
//! Screenshots of each main page are saved under
//! `target/console-screenshots/`.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use chrono::Utc;
use dealflow_tests::browser::{Browser, BOUND};
use dealflow_tests::{TestApp, ADMIN};
use serde_json::{json, Value};

/// The rep's world: branch `sh` (Shanghai time), rep `li`, a key customer
/// met 50 days ago (overdue for its monthly visit) whose first contract is
/// signed (so after-sign tasks wait for li), and a new customer with a deal
/// in `lead` that has no needs and no record yet.
struct World {
    li: String,
    deal: String,
}

async fn world(b: &Browser) -> World {
    let post = |path: &'static str, token: String, body: Value| async move {
        b.ok(Method::POST, path, &token, body).await
    };
    post(
        "/v1/branches",
        ADMIN.into(),
        json!({"id": "sh", "name": "Shanghai", "timezone": "Asia/Shanghai"}),
    )
    .await;
    post(
        "/v1/brands",
        ADMIN.into(),
        json!({"id": "volvo", "name": "Volvo", "introduced_at": "2025-01-01"}),
    )
    .await;
    let li = b.token("rep", Some("sh"), "li").await;
    let customer = |name: &str| json!({"name": name, "branch": "sh", "owner": "li", "segment": "industrial", "source": "self_developed"});
    let daqing = post("/v1/customers", li.clone(), customer("Daqing Oilfield")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ago = |days: i64| (Utc::now() - chrono::Duration::days(days)).to_rfc3339();
    let old = post(
        "/v1/deals",
        li.clone(),
        json!({"customer_id": daqing, "title": "3 SUVs", "owner": "li", "currency": "CNY",
               "needs": ["3 SUVs for field crews"], "opened_at": ago(60),
               "lines": [{"brand": "volvo", "product": "XC90", "amount": "1800000", "cost": "1500000"}]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    b.ok(
        Method::POST,
        &format!("/v1/customers/{daqing}/records"),
        &li,
        json!({"kind": "visit", "summary": "Met the fleet manager", "at": ago(50)}),
    )
    .await;
    for to in ["qualify", "visit", "quote", "sign"] {
        b.ok(
            Method::POST,
            &format!("/v1/deals/{old}/transitions"),
            &li,
            json!({ "to": to }),
        )
        .await;
    }
    // The signing re-tiers the branch in the background: Daqing becomes A.
    let started = Instant::now();
    loop {
        let auth = format!("Bearer {li}");
        let c = b
            .http(
                Method::GET,
                &format!("/v1/customers/{daqing}"),
                &[("authorization", &auth)],
                None,
            )
            .await;
        if c.body["tier"] == "A" {
            break;
        }
        assert!(
            started.elapsed() < BOUND,
            "Daqing never became A: {}",
            c.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let shengli = post(
        "/v1/customers",
        li.clone(),
        customer("Shengli Oilfield Services"),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deal = post(
        "/v1/deals",
        li.clone(),
        json!({"customer_id": shengli, "title": "5 SUVs", "owner": "li", "currency": "CNY",
               "lines": [{"brand": "volvo", "product": "XC90", "amount": "3000000", "cost": "2500000"}]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    World { li, deal }
}

/// Moves the open deal card `title` to the panel's default next stage,
/// checking what the panel says first.
async fn move_card(b: &Browser, title: &str, stage: &str) {
    b.click_button(&format!("Move: {title}")).await;
    b.wait_for_text(&format!(
        "Every check passes: the deal can move to {stage}."
    ))
    .await;
    b.click_button(&format!("Move to {stage}")).await;
    b.wait_for_text(&format!("“{title}” moved to {stage}."))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rep_logs_a_visit_from_today_and_takes_a_deal_past_the_quote_late_veto_to_signed() {
    // Given the rep's world and a browser on the console
    let b = Browser::start().await;
    let w = world(&b).await;

    // When the rep signs in with their token
    b.open("/").await;
    b.wait_for_text("Sign in to dealflow").await;
    b.record_all_requests().await;
    b.screenshot("sign-in").await;
    b.sign_in(&w.li).await;

    // Then Today lists the overdue key customer and the after-sign tasks,
    // most urgent first
    b.wait_for_text("Today").await;
    b.wait_for_text("1 overdue, 0 due, 4 open tasks").await;
    b.wait_count(".item-overdue", 1).await;
    let first = b
        .wait_js(
            "the first item",
            "document.querySelector('.items li') && document.querySelector('.items li').innerText",
        )
        .await;
    assert!(
        first.as_str().unwrap().contains("Daqing Oilfield")
            && first.as_str().unwrap().contains("Overdue since"),
        "the overdue customer comes first: {first}"
    );
    b.screenshot("today").await;
    // (and on a phone)
    b.client.set_window_size(390, 844).await.expect("resize");
    b.screenshot("today-phone").await;
    b.client.set_window_size(1280, 900).await.expect("resize");

    // When the rep taps it and logs the visit
    b.click_button("Log a record: Daqing Oilfield").await;
    b.wait_for_text("Log a record: Daqing Oilfield").await;
    b.fill("Summary", "Visited the fleet manager at the field office")
        .await;
    b.fill(
        "The customer's feedback",
        "Happy with the XC90s; wants a service plan",
    )
    .await;
    b.fill("Next steps", "Send the service plan offer").await;
    b.click_button("Save record").await;

    // Then the item is cleared, the tasks stay
    b.wait_for_text("Saved: Daqing Oilfield is done for today.")
        .await;
    b.wait_for_text("0 overdue, 0 due, 4 open tasks").await;
    b.wait_count(".item-overdue", 0).await;

    // When the rep opens the board and moves the new deal through qualify and visit
    b.open("/#/deals").await;
    b.wait_for_text("My deals").await;
    b.wait_for_text("5 SUVs").await;
    move_card(&b, "5 SUVs", "Qualify").await;
    move_card(&b, "5 SUVs", "Visit").await;

    // And tries to move it to quote
    b.click_button("Move: 5 SUVs").await;

    // Then the server's dry run is shown: quote late refuses, in words,
    // with what is missing and the forms that supply it; the move waits
    b.wait_for_text("The deal cannot move to Quote yet.").await;
    let page = b.text().await;
    assert!(
        page.contains("Quote late: a price is quoted only once"),
        "{page}"
    );
    assert!(page.contains("refuses"), "{page}");
    assert!(page.contains("record the customer's needs"), "{page}");
    assert!(
        page.contains("log a communication record with the customer since the deal was opened"),
        "{page}"
    );
    assert!(
        b.button_disabled("Move to Quote").await,
        "the move waits for a yes"
    );
    b.screenshot("board-veto").await;

    // When the rep supplies the needs from the panel
    b.click_button("Record the customer's needs").await;
    b.fill(
        "Customer's needs (one per line)",
        "5 SUVs for the drilling crews\nDelivery before the winter",
    )
    .await;
    b.click_button("Save needs").await;
    // Then only the record is missing
    b.wait_for_no_text("Record the customer's needs").await;
    b.wait_for_text("The deal cannot move to Quote yet.").await;

    // When the rep logs a record with the customer from the panel
    b.click_button("Log a record with Shengli Oilfield Services")
        .await;
    b.fill("Summary", "Met the procurement head; budget confirmed")
        .await;
    b.click_button("Save record").await;

    // Then every check passes, and the deal moves to quote
    b.wait_for_text("Every check passes: the deal can move to Quote.")
        .await;
    b.click_button("Move to Quote").await;
    b.wait_for_text("“5 SUVs” moved to Quote.").await;

    // When the rep signs it
    move_card(&b, "5 SUVs", "Signed").await;

    // Then the card is in the signed column with its signing date
    let signed = b
        .wait_js(
            "the card in the signed column",
            "(() => { const col = document.getElementById('col-sign').closest('section');
                      return [...col.querySelectorAll('.deal-card')].some(c => c.innerText.includes('5 SUVs') && c.innerText.includes('Signed ')); })()",
        )
        .await;
    assert_eq!(signed, json!(true));
    let auth = format!("Bearer {}", w.li);
    let deal = b
        .http(
            Method::GET,
            &format!("/v1/deals/{}", w.deal),
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(deal.body["stage"], "sign", "{}", deal.body);
    assert_eq!(deal.body["needs"].as_array().map(Vec::len), Some(2));

    // When someone else opens a deal for li, the board shows it without a reload
    let daqing = deal.body["customer_id"].as_str().unwrap().to_string();
    b.ok(
        Method::POST,
        "/v1/deals",
        ADMIN,
        json!({"customer_id": daqing, "title": "2 service vans", "owner": "li", "currency": "CNY",
               "lines": [{"brand": "volvo", "product": "V90", "amount": "700000", "cost": "600000"}]}),
    )
    .await;
    b.wait_for_text("2 service vans").await;
    b.screenshot("board").await;

    // And the customers page lists li's customers with tiers, searchable
    b.open("/#/customers").await;
    b.wait_for_text("My customers").await;
    b.wait_for_text("Daqing Oilfield").await;
    b.fill("Search by name", "shengli").await;
    b.click_button("Search").await;
    b.wait_for_no_text("Daqing Oilfield").await;
    b.wait_for_text("Shengli Oilfield Services").await;
    b.screenshot("customers").await;

    // And the statement page answers for the current month
    b.open("/#/statement").await;
    b.wait_for_text("No bonus lines in this period yet.").await;
    b.screenshot("statement").await;

    // And the console switches to Chinese
    b.choose("Language", "中文").await;
    b.wait_for_text("今日").await;
    b.wait_for_text("我的奖金明细").await;
    b.choose("语言", "English").await;
    b.wait_for_text("My statement").await;

    // And in all of this the page asked nothing of another origin
    // (the event stream, open all along, is listed only once it ends: the
    // page's live status and the van that came without a reload show it)
    let requests = b.requests().await;
    assert!(
        requests.iter().any(|u| u.contains("/v1/deals/"))
            && requests.iter().any(|u| u.ends_with(".js")),
        "the requests were recorded: {requests:?}"
    );
    b.wait_for_text("Live").await;
    let foreign = b.foreign_requests().await;
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_is_an_httponly_cookie_refused_from_another_site_and_ended_by_signing_out() {
    // Given a rep signed in to the console
    let b = Browser::start().await;
    b.ok(
        Method::POST,
        "/v1/branches",
        ADMIN,
        json!({"id": "sh", "name": "Shanghai", "timezone": "Asia/Shanghai"}),
    )
    .await;
    let li = b.token("rep", Some("sh"), "li").await;
    b.sign_in(&li).await;

    // Then scripts can read neither the session nor the token
    let visible = b
        .client
        .execute(
            "return document.cookie + JSON.stringify(localStorage) + JSON.stringify(sessionStorage);",
            vec![],
        )
        .await
        .unwrap();
    let visible = visible.as_str().unwrap();
    assert!(!visible.contains("dealflow_session"), "{visible}");
    assert!(
        !visible.contains(&li),
        "the token is kept nowhere: {visible}"
    );
    let cookie = b
        .session_cookie()
        .await
        .expect("the browser holds the session cookie");

    // When a page of another site sends a write with the browser's cookie
    let jar = format!("dealflow_session={cookie}");
    let host = b.base.trim_start_matches("http://").to_string();
    let r = b
        .http(
            Method::POST,
            "/v1/customers",
            &[
                ("cookie", &jar),
                ("host", &host),
                ("origin", "http://evil.example"),
            ],
            Some(json!({"name": "Forged", "branch": "sh", "owner": "li",
                        "segment": "enterprise", "source": "self_developed"})),
        )
        .await;
    // Then it is refused, and nothing was written
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.body["error"]["code"], "csrf_failed", "{}", r.body);
    let auth = format!("Bearer {li}");
    let listed = b
        .http(
            Method::GET,
            "/v1/customers",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(listed.body["items"], json!([]));

    // When the rep signs out
    b.click_button("Sign out").await;

    // Then the console shows the sign-in page, and the server has ended
    // the session: the old cookie opens nothing
    b.wait_for_text("Sign in to dealflow").await;
    let r = b
        .http(
            Method::GET,
            "/v1/sessions/current",
            &[("cookie", &jar)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    let foreign = b.foreign_requests().await;
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    b.close().await;
}

#[tokio::test]
async fn the_console_page_has_a_strict_csp_and_no_inline_script() {
    // Given a server
    let app = TestApp::new().await;
    // When a browser asks for the console
    let r = app.send(Method::GET, "/", None, None).await;
    // Then it is the HTML page with the security headers
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = r.headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    // And every script of the page is a file of this origin, none inline
    let html = r.body.as_str().expect("HTML");
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(!scripts.is_empty());
    for s in &scripts {
        let tag = &s[..s.find('>').expect("tag end")];
        assert!(
            tag.contains("src=\"/console/"),
            "inline or foreign script: <script{tag}>"
        );
        assert!(
            s[s.find('>').unwrap() + 1..]
                .trim_start()
                .starts_with("</script>"),
            "a script with a body"
        );
    }
    assert!(!html.contains("style="), "no inline styles");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from another origin"
    );

    // When it asks for a module again with the ETag it has
    let js = app.send(Method::GET, "/console/app.js", None, None).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let etag = js.headers["etag"].to_str().unwrap().to_string();
    let again = app
        .send_raw(
            Method::GET,
            "/console/app.js",
            None,
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    // Then 304, nothing resent
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert_eq!(again.body, Value::Null);
}

// ---------------------------------------------------------------------------
// The manager's, rules and admin pages
// ---------------------------------------------------------------------------

/// A branch manager's world: branch `sh` (Shanghai time) whose pipeline
/// signs in one move, manager `wang`, reps `li` and `zhao`, new brands
/// `volvo` and `polestar`, CNY at 7.1 per USD, and in November 2026 one
/// new-brand contract each: li's 80,000 USD (800 CNY of bonus) and zhao's
/// 40,000 USD (500 CNY). Also an open deal of li's and a customer of li's.
struct Branch {
    wang: String,
    li: String,
    zhao: String,
    /// li's customer with the signed contract.
    acme: String,
}

async fn manager_world(b: &Browser) -> Branch {
    let post = |path: &'static str, body: Value| async move {
        b.ok(Method::POST, path, ADMIN, body).await
    };
    post(
        "/v1/branches",
        json!({"id": "sh", "name": "Shanghai", "timezone": "Asia/Shanghai"}),
    )
    .await;
    for (id, name) in [("volvo", "Volvo"), ("polestar", "Polestar")] {
        post(
            "/v1/brands",
            json!({"id": id, "name": name, "introduced_at": "2025-01-01"}),
        )
        .await;
    }
    post(
        "/v1/fx-rates",
        json!({"currency": "CNY", "date": "2020-01-01", "per_usd": "7.1"}),
    )
    .await;
    b.ok(
        Method::PUT,
        "/v1/branches/sh/pipeline",
        ADMIN,
        json!({"stages": [{"id": "open", "name": "Open"}, {"id": "sign", "name": "Signed", "kind": "won"}, {"id": "lost", "name": "Lost", "kind": "lost"}],
               "moves": [{"from": "open", "to": "sign"}, {"from": "open", "to": "lost"}]}),
    )
    .await;
    let wang = b.token("manager", Some("sh"), "wang").await;
    let li = b.token("rep", Some("sh"), "li").await;
    let zhao = b.token("rep", Some("sh"), "zhao").await;
    let customer = |name: &str, owner: &str| json!({"name": name, "branch": "sh", "owner": owner, "segment": "enterprise", "source": "self_developed"});
    let acme = post("/v1/customers", customer("ACME Fleet", "li")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let bohai = post("/v1/customers", customer("Bohai Logistics", "zhao")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for (cus, owner, brand, amount, cost, at) in [
        (
            &acme,
            "li",
            "volvo",
            "80000",
            "64000",
            "2026-11-05T02:00:00Z",
        ),
        (
            &bohai,
            "zhao",
            "polestar",
            "40000",
            "1000",
            "2026-11-06T02:00:00Z",
        ),
    ] {
        let deal = post(
            "/v1/deals",
            json!({"customer_id": cus, "title": format!("{brand} fleet"), "owner": owner, "currency": "USD",
                   "opened_at": "2026-10-01T00:00:00Z",
                   "lines": [{"brand": brand, "product": "p", "amount": amount, "cost": cost}]}),
        )
        .await;
        let id = deal["id"].as_str().unwrap();
        b.ok(
            Method::POST,
            &format!("/v1/deals/{id}/transitions"),
            ADMIN,
            json!({"to": "sign", "at": at}),
        )
        .await;
    }
    post(
        "/v1/deals",
        json!({"customer_id": acme, "title": "Spare parts", "owner": "li", "currency": "CNY",
               "lines": [{"brand": "volvo", "product": "parts", "amount": "250000", "cost": "200000"}]}),
    )
    .await;
    // Customers without revenue yet (tier C), so the team's spread has some shape.
    b.token("rep", Some("sh"), "chen").await;
    for (name, owner) in [
        ("Harbin Ice Works", "li"),
        ("Qingdao Brewing", "li"),
        ("Wuhan Steel", "zhao"),
        ("Xi'an Aero Parts", "chen"),
        ("Chengdu Pandas Travel", "chen"),
        ("Suzhou Silk", "chen"),
    ] {
        post("/v1/customers", customer(name, owner)).await;
    }
    Branch {
        wang,
        li,
        zhao,
        acme,
    }
}

/// Follows the link shown as `text`.
async fn click_link(b: &Browser, text: &str) {
    let arg = serde_json::to_string(text).unwrap();
    b.wait_js(
        &format!("a link {text:?}"),
        &format!("[...document.querySelectorAll('a')].some(a => a.innerText.trim() === {arg})"),
    )
    .await;
    let link = b
        .client
        .find(fantoccini::Locator::LinkText(text))
        .await
        .expect("the link");
    link.click().await.expect("click the link");
}

/// The text of `path` fetched by the page itself, with its session (what
/// a click on a download link of the page would save).
async fn fetched_by_page(b: &Browser, path: &str) -> String {
    let arg = serde_json::to_string(path).unwrap();
    b.client
        .execute(
            &format!("window.__fetched = null; fetch({arg}, {{credentials: 'same-origin'}}).then(r => r.text()).then(t => window.__fetched = t); return true;"),
            vec![],
        )
        .await
        .expect("start the fetch");
    b.wait_js("the download", "window.__fetched")
        .await
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_drafts_reads_approves_and_pays_a_settlement_and_downloads_it() {
    // Given the branch and its manager signed in
    let b = Browser::start().await;
    let w = manager_world(&b).await;
    b.record_all_requests().await;
    b.sign_in(&w.wang).await;

    // When the manager drafts November
    b.open("/#/settlements").await;
    b.wait_for_text("Settlements of the branch").await;
    b.wait_for_text("No settlement yet: draft a period.").await;
    b.fill("Period", "2026-11").await;
    b.click_button("Draft this period").await;

    // Then the draft opens with every line, its explanation and its policy version
    b.wait_for_text("Drafted 2026-11: 2 lines").await;
    b.wait_for_text("Settlement 2026-11 (draft)").await;
    let page = b.text().await;
    assert!(page.contains("Total: CN¥1,300.00"), "{page}");
    for expected in [
        "Bonus per rep for 2026-11 (CNY)",
        "new-brand-bonus v1",
        "CN¥800.00",
        "CN¥500.00",
    ] {
        assert!(page.contains(expected), "{expected}: {page}");
    }
    let explanation = b
        .wait_js(
            "li's line",
            "[...document.querySelectorAll('.settlement-lines tbody tr')].map(r => r.innerText).find(t => t.startsWith('li'))",
        )
        .await;
    let explanation = explanation.as_str().unwrap();
    assert!(
        explanation.contains("80000") && explanation.contains("USD"),
        "the line explains its inputs: {explanation}"
    );
    b.screenshot("settlement-draft").await;

    // When the manager approves it, then marks it paid
    b.click_button("Approve").await;
    b.wait_for_text("Approved: the awards are announced.").await;
    b.wait_for_text("Settlement 2026-11 (approved)").await;
    b.click_button("Mark paid").await;
    b.wait_for_text("Settlement 2026-11 (paid)").await;
    b.screenshot("settlement-paid").await;
    // (and on a phone)
    b.client.set_window_size(390, 844).await.expect("resize");
    b.screenshot("settlement-phone").await;
    b.client.set_window_size(1280, 900).await.expect("resize");

    // And downloads it as CSV: a row per line, per rep, and the total
    let href = b
        .wait_js(
            "the CSV link",
            "[...document.querySelectorAll('a[download]')].map(a => a.getAttribute('href')).find(h => h.includes('/v1/settlements/'))",
        )
        .await;
    let csv = fetched_by_page(&b, href.as_str().unwrap()).await;
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 6, "{csv}");
    assert!(rows[0].starts_with("settlement,status,rep,rule,"), "{csv}");
    assert!(rows[1].contains(",paid,li,new_brand_sale,deal,"), "{csv}");
    assert!(rows[1].contains(",800,CNY,"), "{csv}");
    assert!(rows[2].contains(",paid,zhao,new_brand_sale,deal,"), "{csv}");
    assert_eq!(
        &rows[3..],
        [
            "total,paid,li,,,,2026-11,800,CNY,,,,",
            "total,paid,zhao,,,,2026-11,500,CNY,,,,",
            "total,paid,,,,,2026-11,1300,CNY,,,,"
        ]
    );
    // (and li's own statement from the link beside the chart)
    let href = b
        .wait_js(
            "li's statement link",
            "[...document.querySelectorAll('a[download]')].map(a => a.getAttribute('href')).find(h => h.includes('rep=li'))",
        )
        .await;
    let statement = fetched_by_page(&b, href.as_str().unwrap()).await;
    assert!(
        statement.lines().nth(1).unwrap().contains(",paid,li,"),
        "{statement}"
    );

    // When the manager looks at the team
    b.open("/#/team").await;
    b.wait_for_text("Customers by tier per rep").await;
    // Then the spread shows per rep, as charts and a table
    let table = b
        .wait_js(
            "the team table",
            "document.querySelector('.team-table') && document.querySelector('.team-table').innerText",
        )
        .await;
    let table = table.as_str().unwrap();
    assert!(table.contains("li") && table.contains("zhao"), "{table}");
    b.wait_count(".charts figure", 4).await;
    b.screenshot("team").await;
    // (in Chinese too)
    b.choose("Language", "中文").await;
    b.wait_for_text("各销售代表的客户等级分布").await;
    b.wait_for_text("分公司合计").await;
    b.choose("语言", "English").await;
    b.wait_for_text("Customers by tier per rep").await;

    // And the board shows the funnel, filtered by rep
    b.open("/#/board").await;
    b.wait_for_text("Pipeline by stage: deals and value").await;
    b.wait_for_text("Spare parts").await;
    b.wait_for_text("polestar fleet").await;
    b.choose("Rep", "li").await;
    b.wait_for_no_text("polestar fleet").await;
    b.wait_for_text("Spare parts").await;
    b.screenshot("manager-board").await;

    // And referrals answer
    b.open("/#/referrals").await;
    b.wait_for_text("No referred customer signed in this range.")
        .await;

    // When the manager reassigns li's customer to zhao, with a reason
    b.open("/#/customers").await;
    b.wait_for_text("ACME Fleet").await;
    b.click_button("Reassign: ACME Fleet").await;
    b.choose("New account manager", "zhao").await;
    b.click_button("Save the reassignment").await;
    // Then a missing reason is shown at its field, and nothing changed
    b.wait_js(
        "the reason's error",
        "document.querySelector('.field.has-error textarea[name=reason]')",
    )
    .await;
    b.fill(
        "Reason (kept in the customer’s history)",
        "li moves to the Hangzhou office",
    )
    .await;
    b.click_button("Save the reassignment").await;
    b.wait_for_no_text("Reassign ACME Fleet").await;
    let auth = format!("Bearer {}", w.wang);
    let history = b
        .http(
            Method::GET,
            &format!("/v1/customers/{}/history", w.acme),
            &[("authorization", &auth)],
            None,
        )
        .await;
    let change = history.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "owner_changed")
        .cloned()
        .unwrap_or_else(|| panic!("no owner change: {}", history.body));
    assert_eq!(
        (
            change["from"].as_str(),
            change["to"].as_str(),
            change["reason"].as_str()
        ),
        (
            Some("li"),
            Some("zhao"),
            Some("li moves to the Hangzhou office")
        )
    );
    let _ = (&w.li, &w.zhao);

    // And nothing was asked of another origin
    let foreign = b.foreign_requests().await;
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    b.close().await;
}

/// Shanghai's own stage guard, version 1: it allows every move.
const GUARD_V1: &str = "fn guard(input) {\n    #{ allow: true }\n}\n\nfn test_allows() {\n    assert(guard(#{}).allow, \"allows\");\n}\n";

/// The manager's edit of the guard with a syntax error on line 3 (`and`
/// is not a rhai operator).
const GUARD_BROKEN: &str = "fn guard(input) {\n    let big = input.deal.amount_total > dec(1000000);\n    if big and input.to == \"sign\" {\n        return #{ allow: false, reason: \"a deal over 1,000,000 is signed by the manager\" };\n    }\n    #{ allow: true }\n}\n";

/// The same edit, fixed, with an example test.
const GUARD_FIXED: &str = "fn guard(input) {\n    let big = input.deal.amount_total > dec(1000000);\n    if big && input.to == \"sign\" {\n        return #{ allow: false, reason: \"a deal over 1,000,000 is signed by the manager\" };\n    }\n    #{ allow: true }\n}\n\nfn test_small_deals_pass() {\n    assert(guard(#{ to: \"sign\", deal: #{ amount_total: dec(10) } }).allow, \"small deals pass\");\n}\n";

/// Shanghai's own bonus rule: a flat amount per new-brand contract.
fn flat_bonus(amount: u32) -> String {
    format!(
        "fn bonus_subjects() {{ [\"deal\"] }}\n\nfn bonus(input) {{\n    let any = false;\n    for l in input.deal.lines {{ if l.brand_new {{ any = true; }} }}\n    if !any {{ return #{{ lines: [] }}; }}\n    #{{ lines: [#{{ rule: \"new_brand_sale\", amount: dec({amount}), explanation: \"flat {amount} per new-brand contract\" }}] }}\n}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manager_fixes_a_guard_at_its_line_simulates_a_bonus_change_activates_and_rolls_back() {
    // Given the branch with its own guard and its own bonus rule (300 per
    // new-brand contract), both live, and its manager signed in
    let b = Browser::start().await;
    let w = manager_world(&b).await;
    for (name, source) in [
        ("sh-guard", GUARD_V1.to_string()),
        ("sh-bonus", flat_bonus(300)),
    ] {
        let up = b
            .ok(
                Method::POST,
                "/v1/policies",
                &w.wang,
                json!({"name": name, "scope": "branch:sh", "runtime": "rhai", "source": source}),
            )
            .await;
        assert_eq!(up["version"], 1);
        b.ok(
            Method::POST,
            &format!("/v1/policies/{name}/versions/1/activate"),
            &w.wang,
            json!({}),
        )
        .await;
    }
    b.record_all_requests().await;
    b.sign_in(&w.wang).await;

    // When the manager opens the rules
    b.open("/#/rules").await;
    // Then each hook names the version that decides it, the branch's own or inherited
    b.wait_for_text("What decides each hook in sh").await;
    let effective = b
        .wait_js(
            "the effective policies",
            "document.querySelector('.effective') && document.querySelector('.effective').innerText",
        )
        .await;
    let effective = effective.as_str().unwrap();
    for expected in [
        "Stage guard\tsh-guard v1 (rhai)\tthe branch’s own",
        "Bonus rules\tsh-bonus v1 (rhai)\tthe branch’s own",
        "Customer tiers\tpareto-tiering v1 (rhai)\tinherited (global)",
    ] {
        assert!(effective.contains(expected), "{expected}: {effective}");
    }
    b.screenshot("rules").await;

    // When the manager edits the guard and makes a syntax error on line 3
    click_link(&b, "sh-guard v1").await;
    b.wait_for_text("Policy sh-guard").await;
    b.fill("Script", GUARD_BROKEN).await;
    b.click_button("Upload as a new version").await;
    // Then the compiler's message is shown at line 3, marked in the gutter
    b.wait_for_text("Line 3, column").await;
    let marked = b
        .wait_js("the marked line", "document.querySelector('.gutter-error') && document.querySelector('.gutter-error').innerText")
        .await;
    assert_eq!(marked, json!("3"));
    b.screenshot("policy-error").await;
    // And nothing was stored
    b.wait_for_text("Latest version\nv1").await;

    // When the manager fixes it and runs its example tests
    b.fill("Script", GUARD_FIXED).await;
    b.click_button("Run the example tests").await;
    b.wait_for_text("Compiles; hooks: Stage guard; example tests passed: test_small_deals_pass.")
        .await;
    b.wait_for_no_text("Line 3, column").await;
    // And uploads and activates it
    b.click_button("Upload as a new version").await;
    b.wait_for_text("Uploaded as version 2 (not live yet).")
        .await;
    b.click_button("Activate v2").await;
    b.click_button("Confirm").await;
    b.wait_for_text("Version 2 is live.").await;

    // When the manager changes the bonus rule to 100 per contract and simulates it on November
    b.open("/#/policy?name=sh-bonus").await;
    b.wait_for_text("Policy sh-bonus").await;
    b.fill("Script", &flat_bonus(100)).await;
    b.click_button("Upload as a new version").await;
    b.wait_for_text("Uploaded as version 2 (not live yet).")
        .await;
    b.click_button("Simulate v2").await;
    b.fill("Period", "2026-11").await;
    b.click_button("Simulate").await;
    // Then each rep's difference and every changed line show, before anything is live
    b.wait_for_text("Total: CN¥600.00 now, CN¥200.00 with version 2")
        .await;
    let sim = b
        .wait_js(
            "the simulation",
            "document.querySelector('.simulation') && document.querySelector('.simulation').innerText",
        )
        .await;
    let sim = sim.as_str().unwrap();
    assert!(
        sim.contains("li\tCN¥300.00\tCN¥100.00\t-CN¥200.00"),
        "{sim}"
    );
    assert!(
        sim.contains("zhao\tCN¥300.00\tCN¥100.00\t-CN¥200.00"),
        "{sim}"
    );
    assert!(sim.contains("Every line that changes (2)"), "{sim}");
    assert!(sim.contains("flat 100 per new-brand contract"), "{sim}");
    b.client
        .execute(
            "document.querySelector('.simulate').scrollIntoView();",
            vec![],
        )
        .await
        .expect("scroll");
    b.screenshot("policy-simulate").await;

    // When the manager compares the two versions
    b.click_button("Compare").await;
    // Then the changed line shows, removed and added
    let diff = b
        .wait_js(
            "the diff",
            "document.querySelector('.diff') && document.querySelector('.diff').innerText",
        )
        .await;
    let diff = diff.as_str().unwrap();
    assert!(
        diff.contains("-    #{ lines: [#{ rule: \"new_brand_sale\", amount: dec(300)"),
        "{diff}"
    );
    assert!(
        diff.contains("+    #{ lines: [#{ rule: \"new_brand_sale\", amount: dec(100)"),
        "{diff}"
    );

    // When the manager activates version 2, then rolls back
    b.click_button("Activate v2").await;
    b.click_button("Confirm").await;
    b.wait_for_text("Version 2 is live.").await;
    b.click_button("Roll back to v1").await;
    // Then version 1 decides again, as the API says too
    b.wait_for_text("Rolled back: version 1 is live again.")
        .await;
    let auth = format!("Bearer {}", w.wang);
    let p = b
        .http(
            Method::GET,
            "/v1/policies/sh-bonus",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(p.body["active_version"], 1, "{}", p.body);
    let versions: Vec<Value> = p.body["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].clone())
        .collect();
    assert_eq!(versions, [json!(1), json!(2), json!(1)]);
    // And the rules page shows the new guard deciding
    b.open("/#/rules").await;
    b.wait_for_text("sh-guard v2").await;

    // When the manager uploads a WebAssembly plugin as a new branch policy
    b.choose("Kind", "WebAssembly plugin").await;
    b.fill("Name", "large-deal").await;
    b.field("WebAssembly module (.wasm)")
        .await
        .send_keys(dealflow_tests::PLUGIN_LARGE_DEAL_GUARD)
        .await
        .expect("choose the file");
    b.click_button("Upload as a new version").await;
    // Then its page opens with version 1, a guard, not yet live
    b.wait_for_text("Policy large-deal").await;
    b.wait_for_text("Activate v1").await;
    let row = b
        .wait_js(
            "the version row",
            "document.querySelector('.versions tbody tr') && document.querySelector('.versions tbody tr').innerText",
        )
        .await;
    assert!(row.as_str().unwrap().contains("wasm\tStage guard"), "{row}");

    let foreign = b.foreign_requests().await;
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    let _ = (&w.li, &w.zhao, &w.acme);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_revokes_a_token_and_that_reps_open_page_is_signed_out() {
    // Given rep li signed in, with Today open, in one window (the console
    // at `localhost`, so its cookie is not the admin's)
    let b = Browser::start().await;
    b.ok(
        Method::POST,
        "/v1/branches",
        ADMIN,
        json!({"id": "sh", "name": "Shanghai", "timezone": "Asia/Shanghai"}),
    )
    .await;
    b.ok(
        Method::POST,
        "/v1/fx-rates",
        ADMIN,
        json!({"currency": "CNY", "date": "2026-01-01", "per_usd": "7.01"}),
    )
    .await;
    let li = b.token("rep", Some("sh"), "li").await;
    let rep_base = b.base.replace("127.0.0.1", "localhost");
    let rep_window = b.client.window().await.expect("window");
    b.client.goto(&format!("{rep_base}/")).await.expect("open");
    b.fill("Access token", &li).await;
    b.click_button("Sign in").await;
    b.wait_for_text("li (rep, sh)").await;
    b.wait_for_text("Live").await;

    // And the admin signed in in another window
    let admin_window = b.client.new_window(false).await.expect("new window").handle;
    b.client
        .switch_to_window(admin_window.clone())
        .await
        .expect("switch");
    b.record_all_requests().await;
    b.sign_in(ADMIN).await;

    // When the admin adds a branch with its time zone, a brand, and corrects a rate
    b.open("/#/branches").await;
    b.fill("Id", "bj").await;
    b.fill("Name", "Beijing").await;
    b.choose("Time zone", "Asia/Shanghai").await;
    b.click_button("Create branch").await;
    b.wait_for_text("Branch bj created.").await;
    b.wait_for_text("Pipeline of Beijing").await;
    b.click_button("Pipeline of Beijing").await;
    b.wait_for_text("The default pipeline (the branch has not set its own).")
        .await;
    // (and names its first stage, then saves the pipeline)
    b.fill("Name", "Inquiry").await;
    b.click_button("Save the pipeline").await;
    b.wait_for_text("Pipeline saved (version 1).").await;
    b.screenshot("branches").await;
    let pipeline = b
        .ok(Method::GET, "/v1/branches/bj/pipeline", ADMIN, Value::Null)
        .await;
    assert_eq!(pipeline["stages"][0]["name"], "Inquiry", "{pipeline}");
    assert_eq!(pipeline["default"], false);
    b.open("/#/brands").await;
    b.fill("Id", "byd").await;
    b.fill("Name", "BYD").await;
    b.click_button("Add brand").await;
    b.wait_for_text("Brand byd added.").await;
    b.wait_for_text("new (never sold)").await;
    b.open("/#/fx").await;
    b.click_button("Correct CNY from Jan 1, 2026").await;
    b.fill("The right rate (units per 1 USD)", "7.1").await;
    b.click_button("Save correction").await;
    // (a correction needs a reason: said at its field, and nothing changed)
    b.wait_js(
        "the reason's error",
        "document.querySelector('.field.has-error textarea[name=reason]')",
    )
    .await;
    b.fill("Reason", "typed 7.01 for 7.1").await;
    b.click_button("Save correction").await;
    b.wait_for_text("Corrected: CNY from Jan 1, 2026 is 7.1 per USD.")
        .await;
    b.click_button("Show the 2 versions").await;
    b.wait_for_text("by admin: typed 7.01 for 7.1").await;
    b.screenshot("fx").await;

    // And issues a token for a new rep: the secret is shown once
    b.open("/#/tokens").await;
    b.wait_for_text("li").await;
    b.fill("Holder", "zhou").await;
    b.choose("Branch", "sh").await;
    b.click_button("Issue token").await;
    b.wait_for_text("Give it to zhou now").await;
    let secret = b
        .wait_js(
            "the secret",
            "document.querySelector('input[name=secret]').value",
        )
        .await;
    let auth = format!("Bearer {}", secret.as_str().unwrap());
    let works = b
        .http(
            Method::GET,
            "/v1/followups?branch=sh",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(
        works.status,
        StatusCode::OK,
        "the secret works: {}",
        works.body
    );
    b.click_button("Close").await;

    // When the admin revokes li's token
    b.click_button("Revoke the token of li").await;
    b.click_button("Revoke it now").await;
    b.wait_for_text("The token of li is revoked.").await;
    b.screenshot("tokens").await;

    // Then li's open page is signed out, saying why
    b.client.switch_to_window(rep_window).await.expect("switch");
    b.wait_for_text("Sign in to dealflow").await;
    b.wait_for_text("Your session ended").await;
    // And the token opens nothing any more
    let auth = format!("Bearer {li}");
    let r = b
        .http(
            Method::GET,
            "/v1/followups?branch=sh",
            &[("authorization", &auth)],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);

    // And neither window asked anything of another origin
    let origin = format!("{rep_base}/");
    let foreign: Vec<String> = b
        .requests()
        .await
        .into_iter()
        .filter(|u| !u.starts_with(&origin) && u != &rep_base)
        .collect();
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    b.client
        .switch_to_window(admin_window)
        .await
        .expect("switch");
    let foreign = b.foreign_requests().await;
    assert!(foreign.is_empty(), "requests to other origins: {foreign:?}");
    b.close().await;
}
