//! Policies through the HTTP API with the real rhai runtime: the defaults a
//! fresh server installs, the quote-late guard, dry runs, admin overrides,
//! uploads (valid, invalid, identical), activation and rollback, branch
//! overrides, fault isolation of hostile scripts, and hot swap under load.

use std::collections::BTreeSet;

use axum::http::StatusCode;
use dealflow_tests::{deal_body, TestApp, ADMIN};
use serde_json::{json, Value};

/// A server with branches `sh` and `bj`, brand `volvo`, a manager per branch
/// and a rep `li` in `sh`.
struct World {
    app: TestApp,
    sh_mgr: String,
    bj_mgr: String,
    rep: String,
}

async fn world() -> World {
    let app = TestApp::new().await;
    app.branch("sh").await;
    app.branch("bj").await;
    app.brand("volvo").await;
    let sh_mgr = app.token("manager", Some("sh"), "wang").await;
    let bj_mgr = app.token("manager", Some("bj"), "zhao").await;
    let rep = app.token("rep", Some("sh"), "li").await;
    World {
        app,
        sh_mgr,
        bj_mgr,
        rep,
    }
}

/// A deal of a new customer in `branch`, owned by `li`, moved to `visit`.
async fn deal_at_visit(app: &TestApp, branch: &str) -> (String, String) {
    let customer = app.customer(ADMIN, branch, "li").await;
    let deal = app.deal(ADMIN, &customer, "li", "volvo").await;
    for to in ["qualify", "visit"] {
        let r = app.move_to(ADMIN, &deal, to).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    (customer, deal)
}

/// Gives the deal needs and its customer a communication record.
async fn satisfy_quote_late(app: &TestApp, customer: &str, deal: &str) {
    let r = app
        .patch(
            &format!("/v1/deals/{deal}"),
            ADMIN,
            json!({"needs": ["3 SUVs"]}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.ok(
        &format!("/v1/customers/{customer}/records"),
        ADMIN,
        json!({"kind": "visit", "summary": "met the fleet manager", "by": "li"}),
    )
    .await;
}

async fn upload(
    app: &TestApp,
    token: &str,
    name: &str,
    scope: &str,
    source: &str,
) -> (StatusCode, Value) {
    let r = app
        .post(
            "/v1/policies",
            token,
            json!({"name": name, "scope": scope, "runtime": "rhai", "source": source}),
        )
        .await;
    (r.status, r.body)
}

async fn activate(app: &TestApp, token: &str, name: &str, version: u64) -> StatusCode {
    app.post(
        &format!("/v1/policies/{name}/versions/{version}/activate"),
        token,
        json!({}),
    )
    .await
    .status
}

async fn history_of(app: &TestApp, deal: &str) -> Vec<Value> {
    let r = app.get(&format!("/v1/deals/{deal}/history"), ADMIN).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

async fn deal_version(app: &TestApp, deal: &str) -> u64 {
    app.get(&format!("/v1/deals/{deal}"), ADMIN).await.body["version"]
        .as_u64()
        .expect("version")
}

#[tokio::test]
async fn a_fresh_server_runs_the_default_policies() {
    // Given a fresh server
    let w = world().await;
    // When an admin lists policies and a branch's effective set
    let list = w.app.get("/v1/policies", ADMIN).await;
    let eff = w.app.get("/v1/branches/sh/policies", &w.rep).await;
    // Then the seven defaults are global, version 1 and active
    let names: BTreeSet<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["active_version"] == 1 && p["scope"] == "global")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "after-sign",
            "fair-assignment",
            "new-brand-bonus",
            "new-customer-bonus",
            "no-new-customer",
            "pareto-tiering",
            "quote-late",
            "visit-cadence"
        ])
    );
    assert_eq!(eff.status, StatusCode::OK);
    let guard = eff
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hook"] == "guard")
        .unwrap();
    assert_eq!(guard["source"], "inherited");
    assert_eq!(guard["policies"][0]["name"], "quote-late");
    assert_eq!(guard["policies"][0]["version"], 1);
    assert_eq!(guard["policies"][0]["sha256"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn quote_late_rejects_then_allows_and_every_decision_is_in_the_history() {
    let w = world().await;
    let (customer, deal) = deal_at_visit(&w.app, "sh").await;
    let before = deal_version(&w.app, &deal).await;

    // When the rep asks for a dry run of the move to quote
    let dry = w
        .app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            &w.rep,
            json!({"to": "quote", "dry_run": true}),
        )
        .await;
    // Then every verdict and what is missing come back, and nothing changed
    assert_eq!(dry.status, StatusCode::OK);
    assert_eq!(dry.body["allowed"], false);
    assert_eq!(
        dry.body["missing"].as_array().unwrap().len(),
        2,
        "{}",
        dry.body
    );
    let quote_late = &dry.body["verdicts"].as_array().unwrap()[1];
    assert_eq!(quote_late["policy"], "quote-late");
    assert_eq!(quote_late["allow"], false);
    assert_eq!(deal_version(&w.app, &deal).await, before);

    // When it moves for real
    let r = w.app.move_to(&w.rep, &deal, "quote").await;
    // Then the guard vetoes with policy, version and reason, and nothing changed
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.code(), "guard_rejected");
    assert_eq!(r.body["error"]["details"]["policy"], "quote-late");
    assert_eq!(r.body["error"]["details"]["version"], 1);
    assert!(r.body["error"]["details"]["reason"]
        .as_str()
        .unwrap()
        .contains("quote late"));
    assert_eq!(deal_version(&w.app, &deal).await, before);

    // Given needs and a communication record since the deal opened
    satisfy_quote_late(&w.app, &customer, &deal).await;
    // Then the move passes, and signing runs the after-sign follow-up
    assert_eq!(
        w.app.move_to(&w.rep, &deal, "quote").await.status,
        StatusCode::OK
    );
    let signed = w.app.move_to(&w.rep, &deal, "sign").await;
    assert_eq!(signed.status, StatusCode::OK);
    assert_eq!(signed.body["attributes"]["follow_up_plan"], "standard");
    let tasks = w
        .app
        .get(&format!("/v1/tasks?deal_id={deal}"), &w.rep)
        .await;
    assert_eq!(
        tasks.body["items"].as_array().unwrap().len(),
        4,
        "{}",
        tasks.body
    );
    assert_eq!(tasks.body["items"][0]["created_by_policy"], "after-sign@1");
    assert_eq!(tasks.body["items"][0]["assignee"], "li");

    let history = w
        .app
        .get(&format!("/v1/deals/{deal}/history"), &w.rep)
        .await;
    let last = history.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let decided: Vec<(String, String, u64)> = last["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["hook"].as_str().unwrap().to_string(),
                d["policy"].as_str().unwrap().to_string(),
                d["version"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        decided,
        vec![
            ("guard".into(), "quote-late".into(), 1),
            ("after".into(), "after-sign".into(), 1)
        ]
    );
}

#[tokio::test]
async fn only_an_admin_may_force_a_vetoed_move_and_the_override_is_recorded() {
    let w = world().await;
    let (_, deal) = deal_at_visit(&w.app, "sh").await;
    // A manager may not override
    let r = w
        .app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            &w.sh_mgr,
            json!({"to": "quote", "override_reason": "customer insists"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // An admin may, with a written reason
    let r = w
        .app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            ADMIN,
            json!({"to": "quote", "override_reason": "tender deadline today; GM approved"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let history = w.app.get(&format!("/v1/deals/{deal}/history"), ADMIN).await;
    let last = history.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        last["override_reason"],
        "tender deadline today; GM approved"
    );
    assert_eq!(last["decisions"][0]["allow"], false);
    assert_eq!(last["decisions"][0]["overridden"], true);
}

#[tokio::test]
async fn invalid_uploads_are_refused_with_the_compilers_message_and_leave_nothing() {
    let w = world().await;
    // A syntax error: 422 with line and column
    let (s, b) = upload(
        &w.app,
        ADMIN,
        "broken",
        "global",
        "fn guard(i) {\n  let x = ;\n}",
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(b["error"]["code"], "policy_invalid");
    assert_eq!(b["error"]["details"]["line"], 2);
    // No hook, a failing example test, a hook with the wrong arity
    for src in [
        "fn helper(x) { x }",
        "fn guard(i) { #{ allow: true } }\nfn test_it() { assert(false, \"boom\"); }",
        "fn guard() { #{ allow: true } }",
    ] {
        let (s, b) = upload(&w.app, ADMIN, "broken", "global", src).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{src}: {b}");
        assert_eq!(b["error"]["code"], "policy_invalid");
    }
    // Nothing was stored, so nothing can be activated
    assert_eq!(
        w.app.get("/v1/policies/broken", ADMIN).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        activate(&w.app, ADMIN, "broken", 1).await,
        StatusCode::NOT_FOUND
    );
    // Malformed envelopes
    let r = w
        .app
        .post(
            "/v1/policies",
            ADMIN,
            json!({"name": "x", "scope": "global", "runtime": "wasm", "module": "%%%"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let r = w
        .app
        .post("/v1/policies", ADMIN, json!({"name": "x", "scope": "planet", "runtime": "rhai", "source": "fn guard(i) { #{allow: true} }"}))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_refusal_points_at_the_line_of_the_error_or_of_the_failing_test() {
    let w = world().await;
    // Given a branch guard whose example test fails on line 6, inside the guard it calls
    let failing = "fn guard(i) {\n  #{ allow: i.deal.needs.len() > 0 }\n}\n\nfn test_needs() {\n  assert(guard(#{ deal: #{ needs: [] } }).allow, \"needs are required\");\n}";
    // When the manager uploads it
    let (s, b) = upload(&w.app, &w.sh_mgr, "sh-guard", "branch:sh", failing).await;
    // Then it is refused naming the test, the line and the column where the assertion failed
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "policy_invalid");
    let d = &b["error"]["details"];
    assert_eq!(d["test"], "test_needs", "{b}");
    assert_eq!(d["line"], 6, "{b}");
    assert_eq!(d["column"], 3, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .contains("needs are required"),
        "{b}"
    );
    // And a syntax error on line 3 points at line 3
    let (s, b) = upload(
        &w.app,
        &w.sh_mgr,
        "sh-guard",
        "branch:sh",
        "fn guard(i) {\n  let ok = true;\n  if ok { #{ allow: true } \n",
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert!(b["error"]["details"]["line"].as_u64().is_some(), "{b}");
    assert!(b["error"]["details"]["test"].is_null(), "{b}");
}

#[tokio::test]
async fn a_dry_run_upload_checks_everything_and_stores_nothing() {
    let w = world().await;
    let good = "fn guard(i) { #{ allow: true } }\nfn test_allows() { assert(guard(#{}).allow, \"allows\"); }";
    let dry = |source: &str| json!({"name": "sh-guard", "scope": "branch:sh", "runtime": "rhai", "source": source, "dry_run": true});
    // When a manager checks a new script without storing it
    let r = w.app.post("/v1/policies", &w.sh_mgr, dry(good)).await;
    // Then the checks pass and report what an upload would store
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["dry_run"], true);
    assert_eq!(r.body["created"], false);
    assert_eq!(r.body["version"], 1);
    assert_eq!(r.body["hooks"], json!(["guard"]));
    assert_eq!(r.body["tests"], json!(["test_allows"]));
    // And nothing was stored: no policy, no event
    assert_eq!(
        w.app.get("/v1/policies/sh-guard", ADMIN).await.status,
        StatusCode::NOT_FOUND
    );
    // A dry run of a broken script is refused as an upload would be
    let r = w
        .app
        .post("/v1/policies", &w.sh_mgr, dry("fn guard(i) { let = }"))
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "policy_invalid");
    // It follows the same rules: another branch's manager may not check it
    let r = w.app.post("/v1/policies", &w.bj_mgr, dry(good)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Once stored, a dry run of the same content names that version
    let (s, _) = upload(&w.app, &w.sh_mgr, "sh-guard", "branch:sh", good).await;
    assert_eq!(s, StatusCode::CREATED);
    let r = w.app.post("/v1/policies", &w.sh_mgr, dry(good)).await;
    assert_eq!(
        (r.body["version"].as_u64(), r.body["dry_run"].as_bool()),
        (Some(1), Some(true))
    );
    let other = "fn guard(i) { #{ allow: false, reason: \"no\" } }";
    let r = w.app.post("/v1/policies", &w.sh_mgr, dry(other)).await;
    assert_eq!(r.body["version"], 2, "{}", r.body);
    let versions = w.app.get("/v1/policies/sh-guard/versions", ADMIN).await;
    assert_eq!(versions.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_version_reads_back_with_its_script_for_comparing() {
    let w = world().await;
    let v2 = "fn guard(i) {\n  #{ allow: true }\n}";
    let (s, _) = upload(
        &w.app,
        &w.sh_mgr,
        "sh-guard",
        "branch:sh",
        "fn guard(i) { #{ allow: false } }",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = upload(&w.app, &w.sh_mgr, "sh-guard", "branch:sh", v2).await;
    assert_eq!(s, StatusCode::CREATED);
    // When the branch's rep reads version 2
    let r = w.app.get("/v1/policies/sh-guard/versions/2", &w.rep).await;
    // Then it comes with its script exactly as uploaded, beside its description
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["source"], v2);
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.body["runtime"], "rhai");
    assert_eq!(r.body["uploaded_by"], "wang");
    // A WebAssembly version has no script to show
    let wasm = w
        .app
        .get("/v1/policies/new-brand-bonus/versions/2", ADMIN)
        .await;
    assert_eq!(wasm.status, StatusCode::OK);
    assert_eq!(wasm.body["runtime"], "wasm");
    assert!(wasm.body.get("source").is_none(), "{}", wasm.body);
    // Unknown versions are 404; another branch's policy is not readable
    assert_eq!(
        w.app
            .get("/v1/policies/sh-guard/versions/3", ADMIN)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        w.app
            .get("/v1/policies/sh-guard/versions/1", &w.bj_mgr)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn uploads_are_versioned_by_content_and_activation_rolls_back() {
    let w = world().await;
    let (customer, deal) = deal_at_visit(&w.app, "sh").await;
    let _ = customer;
    // Given quote-late v2 that allows everything
    let (s, up) = upload(
        &w.app,
        ADMIN,
        "quote-late",
        "global",
        "fn guard(i) { #{ allow: true } }",
    )
    .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(up["version"], 2);
    // Identical content is the same version
    let (s, again) = upload(
        &w.app,
        ADMIN,
        "quote-late",
        "global",
        "fn guard(i) { #{ allow: true } }",
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(again["version"], 2);
    assert_eq!(again["created"], false);
    // Uploading did not activate it
    assert_eq!(
        w.app.move_to(ADMIN, &deal, "quote").await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // When v2 is activated the move passes; when v1 is re-activated it is vetoed again
    assert_eq!(
        activate(&w.app, ADMIN, "quote-late", 2).await,
        StatusCode::OK
    );
    let path = format!("/v1/deals/{deal}/transitions");
    let dry = json!({"to": "quote", "dry_run": true});
    assert_eq!(
        w.app.post(&path, ADMIN, dry.clone()).await.body["allowed"],
        true
    );
    assert_eq!(
        activate(&w.app, ADMIN, "quote-late", 1).await,
        StatusCode::OK
    );
    assert_eq!(w.app.post(&path, ADMIN, dry).await.body["allowed"], false);
    let p = w.app.get("/v1/policies/quote-late", ADMIN).await;
    assert_eq!(p.body["active_version"], 1);
    let versions: Vec<u64> = p.body["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, vec![1, 2, 1]);
    // Unknown versions are 404
    assert_eq!(
        activate(&w.app, ADMIN, "quote-late", 9).await,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_branch_policy_overrides_the_global_one_for_that_branch_only() {
    let w = world().await;
    let (_, sh_deal) = deal_at_visit(&w.app, "sh").await;
    let (_, bj_deal) = deal_at_visit(&w.app, "bj").await;
    // Given sh's manager uploads and activates a guard forbidding `lost`
    let src = "fn guard(i) { if i.to == \"lost\" { #{ allow: false, reason: \"sh never gives up\" } } else { #{ allow: true } } }";
    let (s, _) = upload(&w.app, &w.sh_mgr, "sh-persistence", "branch:sh", src).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        activate(&w.app, &w.sh_mgr, "sh-persistence", 1).await,
        StatusCode::OK
    );
    // Then sh's deals are decided by it, bj's by the global guard
    let r = w.app.move_to(ADMIN, &sh_deal, "lost").await;
    assert_eq!(r.code(), "guard_rejected");
    assert_eq!(r.body["error"]["details"]["policy"], "sh-persistence");
    assert_eq!(
        w.app.move_to(ADMIN, &bj_deal, "lost").await.status,
        StatusCode::OK
    );
    let eff = w.app.get("/v1/branches/sh/policies", &w.sh_mgr).await;
    let guard = eff
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hook"] == "guard")
        .unwrap()
        .clone();
    assert_eq!(guard["source"], "overridden");
    assert_eq!(guard["policies"][0]["name"], "sh-persistence");
    let eff = w.app.get("/v1/branches/bj/policies", &w.bj_mgr).await;
    let guard = eff
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["hook"] == "guard")
        .unwrap()
        .clone();
    assert_eq!(guard["source"], "inherited");
}

#[tokio::test]
async fn policy_routes_respect_roles_and_branches() {
    let w = world().await;
    let src = "fn guard(i) { #{ allow: true } }";
    // A rep may not upload; a manager may not upload global or for another branch
    assert_eq!(
        upload(&w.app, &w.rep, "a", "branch:sh", src).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(&w.app, &w.sh_mgr, "a", "global", src).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(&w.app, &w.sh_mgr, "a", "branch:bj", src).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(&w.app, &w.sh_mgr, "a", "branch:sh", src).await.0,
        StatusCode::CREATED
    );
    // bj's manager can neither see nor activate sh's policy, nor touch global ones
    assert_eq!(
        w.app.get("/v1/policies/a", &w.bj_mgr).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        activate(&w.app, &w.bj_mgr, "a", 1).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        activate(&w.app, &w.sh_mgr, "quote-late", 1).await,
        StatusCode::FORBIDDEN
    );
    // Lists only hold what the caller may see
    let names: Vec<String> = w.app.get("/v1/policies", &w.bj_mgr).await.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(!names.contains(&"a".to_string()), "{names:?}");
    assert_eq!(
        w.app
            .get("/v1/branches/sh/policies", &w.bj_mgr)
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn hostile_guards_fail_closed_and_other_branches_keep_working() {
    let w = world().await;
    let hostile = [
        ("loop", "fn guard(i) { loop { } }"),
        ("recursion", "fn f(n) { f(n + 1) }\nfn guard(i) { f(0) }"),
        ("memory", "fn guard(i) { let s = \"xx\"; loop { s += s; } }"),
        ("throw", "fn guard(i) { throw \"no\"; }"),
        ("shape", "fn guard(i) { [1, 2, 3] }"),
    ];
    for (name, src) in hostile {
        let (s, b) = upload(&w.app, ADMIN, &format!("hostile-{name}"), "branch:sh", src).await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    for (name, _) in hostile {
        // Given only this hostile guard is live for sh
        assert_eq!(
            activate(&w.app, ADMIN, &format!("hostile-{name}"), 1).await,
            StatusCode::OK
        );
        let (_, sh_deal) = deal_at_visit_or_lead(&w.app, "sh").await;
        let before = deal_version(&w.app, &sh_deal).await;
        let (_, bj_deal) = deal_at_visit_or_lead(&w.app, "bj").await;
        // When both branches move deals at the same time
        let (sh, bj) = tokio::join!(
            w.app.move_to(ADMIN, &sh_deal, "qualify"),
            w.app.move_to(ADMIN, &bj_deal, "qualify")
        );
        // Then sh's move fails closed with policy_failed and changes nothing
        assert_eq!(
            sh.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            sh.body
        );
        assert_eq!(sh.code(), "policy_failed", "{name}: {}", sh.body);
        assert_eq!(
            sh.body["error"]["details"]["policy"],
            format!("hostile-{name}")
        );
        assert_eq!(deal_version(&w.app, &sh_deal).await, before);
        // And bj's move succeeds
        assert_eq!(bj.status, StatusCode::OK, "{name}: {}", bj.body);
        // And the server keeps serving
        assert_eq!(w.app.get("/healthz", ADMIN).await.status, StatusCode::OK);
        let r = w
            .app
            .post(
                &format!("/v1/policies/hostile-{name}/deactivate"),
                ADMIN,
                json!({}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
}

/// A fresh deal in `branch` (at `lead`), without moving it.
async fn deal_at_visit_or_lead(app: &TestApp, branch: &str) -> (String, String) {
    let customer = app.customer(ADMIN, branch, "li").await;
    let deal = app.deal(ADMIN, &customer, "li", "volvo").await;
    (customer, deal)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swap_under_load_never_mixes_versions_and_never_fails() {
    let w = world().await;
    // Given two versions of a policy whose guard and after-hook both name their version
    let v = |n: u32| {
        format!(
            "fn guard(i) {{ #{{ allow: true, reason: \"v{n}\" }} }}\nfn after(i) {{ #{{ set: #{{ decided_by: \"v{n}\" }} }} }}"
        )
    };
    assert_eq!(
        upload(&w.app, ADMIN, "swap", "branch:sh", &v(1)).await.0,
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&w.app, ADMIN, "swap", "branch:sh", &v(2)).await.0,
        StatusCode::CREATED
    );
    assert_eq!(activate(&w.app, ADMIN, "swap", 1).await, StatusCode::OK);
    // A pipeline where a deal can move back and forth forever
    let r = w
        .app
        .send(
            axum::http::Method::PUT,
            "/v1/branches/sh/pipeline",
            Some(ADMIN),
            Some(json!({"stages": [{"id": "a"}, {"id": "b"}, {"id": "won", "kind": "won"}],
                        "moves": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}, {"from": "b", "to": "won"}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let mut deals = Vec::new();
    for _ in 0..4 {
        let c = w.app.customer(ADMIN, "sh", "li").await;
        deals.push(
            w.app
                .ok("/v1/deals", ADMIN, deal_body(&c, "li", "volvo"))
                .await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let app = std::sync::Arc::new(w.app);

    // When clients drive transitions continuously while an admin flips versions
    let mut drivers = Vec::new();
    for deal in deals.clone() {
        let app = app.clone();
        drivers.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for i in 0..40 {
                let to = if i % 2 == 0 { "b" } else { "a" };
                let r = app.move_to(ADMIN, &deal, to).await;
                outcomes.push((r.status, r.body));
            }
            outcomes
        }));
    }
    let swapper = {
        let app = app.clone();
        tokio::spawn(async move {
            let mut checks = Vec::new();
            for i in 0..20u64 {
                let version = 1 + (i % 2);
                let s = activate(&app, ADMIN, "swap", version).await;
                assert_eq!(s, StatusCode::OK);
                // A request that starts after activate returns sees the new version
                let c = app.customer(ADMIN, "sh", "li").await;
                let d = app.deal(ADMIN, &c, "li", "volvo").await;
                let r = app.move_to(ADMIN, &d, "b").await;
                checks.push((version, r.body["attributes"]["decided_by"].clone()));
            }
            checks
        })
    };

    // Then no request failed, and each was decided wholly by one version
    for d in drivers {
        for (status, body) in d.await.unwrap() {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
    }
    for (version, decided_by) in swapper.await.unwrap() {
        assert_eq!(decided_by, json!(format!("v{version}")));
    }
    for deal in deals {
        let h = app
            .get(&format!("/v1/deals/{deal}/history?limit=500"), ADMIN)
            .await;
        for e in h.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "transition")
        {
            let versions: BTreeSet<u64> = e["decisions"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["policy"] == "swap")
                .map(|d| d["version"].as_u64().unwrap())
                .collect();
            assert_eq!(versions.len(), 1, "mixed versions in one request: {e}");
        }
    }
}

#[tokio::test]
async fn a_refused_move_is_kept_in_the_history_as_a_veto_naming_every_guard() {
    // Given a deal at `visit` and, beside quote-late, a second global guard that also refuses
    let w = world().await;
    let (customer, deal) = deal_at_visit(&w.app, "sh").await;
    let budget = r#"
        fn guard(input) {
            if input.to == "quote" && !("budget" in input.deal.attributes) {
                return #{ allow: false, reason: "the budget is not known", missing: ["the customer's budget"] };
            }
            #{ allow: true }
        }"#;
    let (status, up) = upload(&w.app, ADMIN, "budget-known", "global", budget).await;
    assert_eq!(status, StatusCode::CREATED, "{up}");
    assert_eq!(
        activate(&w.app, ADMIN, "budget-known", 1).await,
        StatusCode::OK
    );
    let before = deal_version(&w.app, &deal).await;

    // When the rep moves it to quote
    let r = w.app.move_to(&w.rep, &deal, "quote").await;
    // Then both guards are named, each with its reason and what is missing
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "guard_rejected");
    let vetoes = r.body["error"]["details"]["vetoes"]
        .as_array()
        .unwrap()
        .clone();
    let named: BTreeSet<&str> = vetoes
        .iter()
        .map(|v| v["policy"].as_str().unwrap())
        .collect();
    assert_eq!(named, BTreeSet::from(["quote-late", "budget-known"]));
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("quote-late") && message.contains("budget-known"),
        "{message}"
    );
    let budget_veto = vetoes
        .iter()
        .find(|v| v["policy"] == "budget-known")
        .unwrap();
    assert_eq!(budget_veto["missing"], json!(["the customer's budget"]));
    assert_eq!(budget_veto["sha256"], up["sha256"]);

    // And the deal did not change, but its history keeps the veto
    assert_eq!(deal_version(&w.app, &deal).await, before);
    let items = history_of(&w.app, &deal).await;
    let veto = items.last().unwrap();
    assert_eq!(veto["action"], "veto");
    assert_eq!(veto["seq"], before);
    assert_eq!(
        (veto["from"].as_str(), veto["to"].as_str()),
        (Some("visit"), Some("quote"))
    );
    assert_eq!(veto["by"], "li");
    assert!(veto["at"].is_string() && veto["recorded_at"].is_string());
    let refused: Vec<&Value> = veto["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["allow"] == false)
        .collect();
    assert_eq!(refused.len(), 2, "{veto}");
    for d in &refused {
        assert_eq!(d["hook"], "guard");
        assert_eq!(d["version"], 1);
        assert_eq!(d["sha256"].as_str().unwrap().len(), 64);
        assert!(!d["reason"].as_str().unwrap().is_empty());
        assert!(!d["missing"].as_array().unwrap().is_empty(), "{d}");
    }

    // When a guard fails instead of answering, the refusal is kept too
    let broken = r#"fn guard(input) { throw "no budget table"; }"#;
    let (status, _) = upload(&w.app, ADMIN, "budget-known", "global", broken).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        activate(&w.app, ADMIN, "budget-known", 2).await,
        StatusCode::OK
    );
    satisfy_quote_late(&w.app, &customer, &deal).await;
    let before = deal_version(&w.app, &deal).await;
    let r = w.app.move_to(&w.rep, &deal, "quote").await;
    assert_eq!(r.code(), "policy_failed", "{}", r.body);
    assert_eq!(deal_version(&w.app, &deal).await, before);
    let items = history_of(&w.app, &deal).await;
    let veto = items.last().unwrap();
    assert_eq!(
        (veto["action"].as_str(), veto["seq"].as_u64()),
        (Some("veto"), Some(before))
    );
    let failed = veto["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["policy"] == "budget-known")
        .unwrap();
    assert_eq!(
        (failed["allow"].as_bool(), failed["version"].as_u64()),
        (Some(false), Some(2))
    );
    assert!(
        failed["reason"].as_str().unwrap().contains("failed"),
        "{failed}"
    );

    // And the vetoes are still there after a restart, in order
    let app = TestApp::reopen(w.app.close().await).await;
    let items = history_of(&app, &deal).await;
    let vetoes: Vec<u64> = items
        .iter()
        .filter(|e| e["action"] == "veto")
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(vetoes.len(), 2, "{items:?}");
    assert!(vetoes[0] < vetoes[1]);
}

/// A branch guard whose limit is a parameter: deals over `max_amount` CNY
/// (1,000,000 unless configured) may not be quoted.
const AMOUNT_CAP: &str = r#"
fn cap() { config_or("max_amount", 1000000) }
fn guard(i) {
    if i.to != "quote" || i.deal.amount_total <= cap() { return #{ allow: true }; }
    #{ allow: false, reason: `over the ${cap()} CNY cap` }
}
fn test_the_cap_reads_as_a_number() {
    assert(guard(#{ to: "quote", deal: #{ amount_total: cap() } }).allow, "at the cap");
}
"#;

/// The effective view's deciding policy `name` for `hook` in `branch`.
async fn deciding(app: &TestApp, branch: &str, hook: &str, name: &str) -> Value {
    let r = app
        .get(&format!("/v1/branches/{branch}/policies"), ADMIN)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
        .as_array()
        .expect("hooks")
        .iter()
        .find(|h| h["hook"] == hook)
        .and_then(|h| h["policies"].as_array())
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("{name} does not decide {hook}: {}", r.body))
}

#[tokio::test]
async fn a_threshold_is_edited_per_activation_without_a_new_version() {
    // Given a branch guard uploaded with a cap of 500,000 CNY, and a deal
    // of 600,000 CNY ready to be quoted
    let w = world().await;
    let (customer, deal) = deal_at_visit(&w.app, "sh").await;
    satisfy_quote_late(&w.app, &customer, &deal).await;
    let up = w
        .app
        .post(
            "/v1/policies",
            &w.sh_mgr,
            json!({"name": "amount-cap", "scope": "branch:sh", "runtime": "rhai",
                   "source": AMOUNT_CAP, "config": {"max_amount": "500000"}}),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["config"], json!({"max_amount": "500000"}));
    assert_eq!(
        activate(&w.app, &w.sh_mgr, "amount-cap", 1).await,
        StatusCode::OK
    );
    let dry = json!({"to": "quote", "dry_run": true});
    let path = format!("/v1/deals/{deal}/transitions");
    let r = w.app.post(&path, ADMIN, dry.clone()).await;
    assert_eq!(r.body["allowed"], false, "{}", r.body);
    assert!(
        r.body.to_string().contains("over the 500000 CNY cap"),
        "{}",
        r.body
    );
    assert_eq!(
        deciding(&w.app, "sh", "guard", "amount-cap").await["config"],
        json!({"max_amount": "500000"})
    );

    // When the manager activates the same version with a cap of 700,000
    let r = w
        .app
        .post(
            "/v1/policies/amount-cap/versions/1/activate",
            &w.sh_mgr,
            json!({"config": {"max_amount": "700000"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Then the deal may be quoted, still by version 1, and the activation
    // and the effective view show the parameters in force
    assert_eq!(
        w.app.post(&path, ADMIN, dry.clone()).await.body["allowed"],
        true
    );
    let p = w.app.get("/v1/policies/amount-cap", ADMIN).await.body;
    assert_eq!(p["latest_version"], 1);
    assert_eq!(
        p["activations"][1]["config"],
        json!({"max_amount": "700000"})
    );
    let live = deciding(&w.app, "sh", "guard", "amount-cap").await;
    assert_eq!(
        (live["version"].clone(), live["config"].clone()),
        (json!(1), json!({"max_amount": "700000"}))
    );
    let versions = w
        .app
        .get("/v1/policies/amount-cap/versions", ADMIN)
        .await
        .body;
    assert_eq!(
        versions["items"][0]["config"],
        json!({"max_amount": "500000"})
    );

    // And parameters the script cannot read, or that are malformed, are
    // refused and change nothing
    let bad = |config: Value| {
        w.app.post(
            "/v1/policies/amount-cap/versions/1/activate",
            &w.sh_mgr,
            json!({"config": config}),
        )
    };
    let r = bad(json!({"max_amount": "lots"})).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(
        r.body
            .to_string()
            .contains("config `max_amount` is `lots`, which is not an integer"),
        "{}",
        r.body
    );
    for (config, why) in [
        (json!({"Max": "1"}), "key `Max`"),
        (json!({"max_amount": "x".repeat(257)}), "at most 256"),
        (json!({"max_amount": 5}), "config"),
    ] {
        let r = bad(config).await;
        assert!(r.status.is_client_error(), "{why}: {}", r.body);
        assert_eq!(
            r.body["error"]["details"]["field"]
                .as_str()
                .map(|f| f.starts_with("config")),
            Some(true),
            "{}",
            r.body
        );
        assert!(r.body.to_string().contains(why), "{why}: {}", r.body);
    }
    let after = w.app.get("/v1/policies/amount-cap", ADMIN).await.body;
    assert_eq!(after["activations"].as_array().map(Vec::len), Some(2));

    // And after a restart the activation's parameters still decide
    let dir = w.app.close().await;
    let app = TestApp::reopen(dir).await;
    assert_eq!(app.post(&path, ADMIN, dry).await.body["allowed"], true);
    assert_eq!(
        deciding(&app, "sh", "guard", "amount-cap").await["config"],
        json!({"max_amount": "700000"})
    );
}
