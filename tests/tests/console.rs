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
