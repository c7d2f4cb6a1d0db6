//! WebAssembly policies through the HTTP API with the real wasmtime: the
//! example plugins built from source by this crate's build script, uploaded
//! as base64 components, deciding transitions and booking tasks; hostile
//! plugins failing closed while other branches keep working; and uploads
//! that are not valid plugins refused.

use axum::http::StatusCode;
use dealflow_tests::{
    wasm_upload_body, TestApp, ADMIN, PLUGIN_HANDOVER_REVIEW, PLUGIN_HOSTILE,
    PLUGIN_LARGE_DEAL_GUARD, PLUGIN_NEW_BRAND_BONUS,
};
use serde_json::{json, Value};

/// Branches `sh` and `bj`, brand `volvo`, a manager and a rep in `sh`.
async fn world() -> (TestApp, String, String) {
    let app = TestApp::new().await;
    app.branch("sh").await;
    app.branch("bj").await;
    app.brand("volvo").await;
    let mgr = app.token("manager", Some("sh"), "wang").await;
    let rep = app.token("rep", Some("sh"), "li").await;
    (app, mgr, rep)
}

/// A deal of `amount` CNY for a new customer of `branch`, owned by `li`.
async fn deal_of(app: &TestApp, branch: &str, amount: &str) -> String {
    let customer = app.customer(ADMIN, branch, "li").await;
    let body = json!({"customer_id": customer, "title": "Fleet", "owner": "li", "currency": "CNY",
                      "needs": ["fleet renewal"],
                      "lines": [{"brand": "volvo", "product": "XC90", "amount": amount, "cost": "1"}]});
    let deal = app.ok("/v1/deals", ADMIN, body).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    app.ok(
        &format!("/v1/customers/{customer}/records"),
        ADMIN,
        json!({"kind": "visit", "summary": "met the fleet manager", "by": "li"}),
    )
    .await;
    deal
}

/// Moves a deal through `stages`, each of which must succeed.
async fn walk(app: &TestApp, token: &str, deal: &str, stages: &[&str]) {
    for to in stages {
        let r = app.move_to(token, deal, to).await;
        assert_eq!(r.status, StatusCode::OK, "to {to}: {}", r.body);
    }
}

/// Uploads a component and activates its version; returns the upload reply.
async fn install(app: &TestApp, path: &str, name: &str, scope: &str) -> Value {
    let r = app
        .post("/v1/policies", ADMIN, wasm_upload_body(path, name, scope))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let version = r.body["version"].as_u64().expect("version");
    let a = app
        .post(
            &format!("/v1/policies/{name}/versions/{version}/activate"),
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    r.body
}

async fn deal_version(app: &TestApp, deal: &str) -> u64 {
    app.get(&format!("/v1/deals/{deal}"), ADMIN).await.body["version"]
        .as_u64()
        .expect("version")
}

#[tokio::test]
async fn uploaded_wasm_guard_and_after_hooks_decide_large_deals_in_their_branch() {
    let (app, mgr, rep) = world().await;
    // Given the large-deal guard and the handover-review after hook are live for sh
    let uploaded = install(&app, PLUGIN_LARGE_DEAL_GUARD, "large-deal", "branch:sh").await;
    assert_eq!(uploaded["version"], 1);
    let guard_sha = uploaded["sha256"].as_str().expect("sha256").to_string();
    let uploaded = install(&app, PLUGIN_HANDOVER_REVIEW, "handover", "branch:sh").await;
    let after_sha = uploaded["sha256"].as_str().expect("sha256").to_string();
    let effective = app.get("/v1/branches/sh/policies", &mgr).await;
    assert_eq!(effective.status, StatusCode::OK);
    let text = effective.body.to_string();
    assert!(
        text.contains("large-deal") && text.contains("handover"),
        "{text}"
    );

    // When a rep signs a 2,000,000 CNY deal of sh without approval
    let deal = deal_of(&app, "sh", "2000000").await;
    walk(&app, &rep, &deal, &["qualify", "visit", "quote"]).await;
    let before = deal_version(&app, &deal).await;
    let dry = app
        .post(
            &format!("/v1/deals/{deal}/transitions"),
            &rep,
            json!({"to": "sign", "dry_run": true}),
        )
        .await;
    // Then the dry run names what is missing
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.body);
    assert_eq!(dry.body["allowed"], false);
    assert!(
        dry.body["missing"].to_string().contains("manager_approved"),
        "{}",
        dry.body
    );
    // And the real move is vetoed by the plugin, with its version
    let r = app.move_to(&rep, &deal, "sign").await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert_eq!(r.code(), "guard_rejected");
    assert_eq!(r.body["error"]["details"]["policy"], "large-deal");
    assert_eq!(r.body["error"]["details"]["version"], 1);
    assert!(
        r.body["error"]["details"]["reason"]
            .as_str()
            .unwrap()
            .contains("large-deal threshold"),
        "{}",
        r.body
    );
    assert_eq!(deal_version(&app, &deal).await, before);

    // And the rep cannot approve their own deal
    let selfie = app
        .patch(
            &format!("/v1/deals/{deal}"),
            &rep,
            json!({"attributes": {"manager_approved": "yes"}}),
            None,
        )
        .await;
    assert_eq!(selfie.status, StatusCode::FORBIDDEN, "{}", selfie.body);

    // When the manager approves it
    let approved = app
        .patch(
            &format!("/v1/deals/{deal}"),
            &mgr,
            json!({"attributes": {"manager_approved": "yes"}}),
            None,
        )
        .await;
    assert_eq!(approved.status, StatusCode::OK, "{}", approved.body);
    // Then the rep signs it, and the after hook books the handover review
    let signed = app.move_to(&rep, &deal, "sign").await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.body);
    assert_eq!(signed.body["attributes"]["large_deal"], "yes");
    let tasks = app.get(&format!("/v1/tasks?deal_id={deal}"), &rep).await;
    let items = tasks.body["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{}", tasks.body);
    assert_eq!(items[0]["assignee"], "li");
    assert_eq!(items[0]["created_by_policy"], "handover@1");
    assert!(items[0]["title"]
        .as_str()
        .unwrap()
        .contains("2,000,000.00 CNY"));

    // And both decisions are in the history with name, version and hash
    let history = app.get(&format!("/v1/deals/{deal}/history"), &rep).await;
    let last = history.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let decisions = last["decisions"].as_array().expect("decisions");
    for (hook, policy, sha) in [
        ("guard", "large-deal", &guard_sha),
        ("after", "handover", &after_sha),
    ] {
        let d = decisions
            .iter()
            .find(|d| d["hook"] == hook && d["policy"] == policy)
            .unwrap_or_else(|| panic!("no {hook} decision of {policy}: {last}"));
        assert_eq!(d["version"], 1);
        assert_eq!(d["sha256"], sha.as_str(), "{d}");
    }

    // And a large deal of bj, where the plugin is not live, signs unapproved
    let bj = deal_of(&app, "bj", "2000000").await;
    walk(&app, ADMIN, &bj, &["qualify", "visit", "quote", "sign"]).await;
}

#[tokio::test]
async fn hostile_wasm_hooks_fail_closed_and_other_branches_keep_working() {
    let (app, _mgr, _rep) = world().await;
    install(&app, PLUGIN_HOSTILE, "hostile", "branch:sh").await;
    // Well-behaved first: the plugin itself works.
    let calm = deal_of(&app, "sh", "1000").await;
    walk(&app, ADMIN, &calm, &["qualify"]).await;

    let modes = [
        ("mode", "loop"),
        ("mode", "recursion"),
        ("mode", "memory"),
        ("mode", "panic"),
        ("mode", "error"),
        ("mode", "shape"),
        ("after_mode", "loop"),
        ("after_mode", "memory"),
        ("after_mode", "panic"),
    ];
    for (attribute, mode) in modes {
        let what = format!("{attribute}={mode}");
        // Given a deal of sh whose move makes the plugin misbehave
        let sh_deal = deal_of(&app, "sh", "1000").await;
        let r = app
            .patch(
                &format!("/v1/deals/{sh_deal}"),
                ADMIN,
                json!({"attributes": {attribute: mode}}),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{what}: {}", r.body);
        let before = deal_version(&app, &sh_deal).await;
        let bj_deal = deal_of(&app, "bj", "1000").await;
        // When both branches move a deal at the same time
        let (sh, bj) = tokio::join!(
            app.move_to(ADMIN, &sh_deal, "qualify"),
            app.move_to(ADMIN, &bj_deal, "qualify")
        );
        // Then sh's move fails closed with policy_failed and changes nothing
        assert_eq!(
            sh.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            sh.body
        );
        assert_eq!(sh.code(), "policy_failed", "{what}: {}", sh.body);
        assert_eq!(sh.body["error"]["details"]["policy"], "hostile", "{what}");
        assert_eq!(deal_version(&app, &sh_deal).await, before, "{what}");
        // And bj's move succeeds, and the server keeps serving
        assert_eq!(bj.status, StatusCode::OK, "{what}: {}", bj.body);
        assert_eq!(app.get("/healthz", ADMIN).await.status, StatusCode::OK);
    }
    // And the plugin still serves well-behaved calls afterwards
    walk(&app, ADMIN, &calm, &["visit"]).await;
}

#[tokio::test]
async fn a_script_and_a_plugin_that_veto_without_a_reason_are_refused_alike() {
    // Given a plugin in sh and a script in bj, each vetoing with a reason
    // of only spaces
    let (app, _mgr, _rep) = world().await;
    install(&app, PLUGIN_HOSTILE, "hostile", "branch:sh").await;
    let script = "fn guard(i) { #{ allow: false, reason: \"  \" } }";
    let r = app
        .post(
            "/v1/policies",
            ADMIN,
            json!({"name": "blank-veto", "scope": "branch:bj", "runtime": "rhai", "source": script}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let a = app
        .post(
            "/v1/policies/blank-veto/versions/1/activate",
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let sh = deal_of(&app, "sh", "1000").await;
    let r = app
        .patch(
            &format!("/v1/deals/{sh}"),
            ADMIN,
            json!({"attributes": {"mode": "blank"}}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let bj = deal_of(&app, "bj", "1000").await;
    let before = (deal_version(&app, &sh).await, deal_version(&app, &bj).await);

    // When each deal is moved
    let from_plugin = app.move_to(ADMIN, &sh, "qualify").await;
    let from_script = app.move_to(ADMIN, &bj, "qualify").await;

    // Then both moves fail closed as policy_failed with the same error, and
    // neither deal changed
    for (r, policy) in [(&from_plugin, "hostile"), (&from_script, "blank-veto")] {
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
        assert_eq!(r.code(), "policy_failed", "{}", r.body);
        assert_eq!(r.body["error"]["details"]["policy"], policy);
        assert_eq!(r.body["error"]["details"]["hook"], "guard");
    }
    assert_eq!(
        from_plugin.body["error"]["details"]["error"],
        "returned the wrong shape: a rejection must give a `reason`"
    );
    assert_eq!(
        from_plugin.body["error"]["details"]["error"],
        from_script.body["error"]["details"]["error"]
    );
    assert_eq!(
        (deal_version(&app, &sh).await, deal_version(&app, &bj).await),
        before
    );
}

#[tokio::test]
async fn a_plugin_reads_its_threshold_from_the_activation_and_may_log() {
    // Given the large-deal guard live in sh with its threshold raised to
    // 3,000,000 CNY when activated, and a deal of 2,000,000 CNY
    let (app, _mgr, rep) = world().await;
    let up = app
        .post(
            "/v1/policies",
            ADMIN,
            wasm_upload_body(PLUGIN_LARGE_DEAL_GUARD, "large-deal", "branch:sh"),
        )
        .await;
    assert_eq!(up.status, StatusCode::CREATED, "{}", up.body);
    assert_eq!(up.body["interface"], "1.1.0");
    let a = app
        .post(
            "/v1/policies/large-deal/versions/1/activate",
            ADMIN,
            json!({"config": {"threshold": "3000000"}}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let big = deal_of(&app, "sh", "2000000").await;
    walk(&app, &rep, &big, &["qualify", "visit", "quote"]).await;

    // When the rep signs it without approval
    let r = app.move_to(&rep, &big, "sign").await;

    // Then the plugin lets it through under the activation's threshold
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // And with the threshold back at its default the next one is vetoed
    let a = app
        .post(
            "/v1/policies/large-deal/versions/1/activate",
            ADMIN,
            json!({}),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let next = deal_of(&app, "sh", "2000000").await;
    walk(&app, &rep, &next, &["qualify", "visit", "quote"]).await;
    let r = app.move_to(&rep, &next, "sign").await;
    assert_eq!(r.code(), "guard_rejected", "{}", r.body);
    assert!(r.body.to_string().contains("1,000,000 CNY"), "{}", r.body);

    // And a plugin flooding the log is cut short by the host, not failed
    install(&app, PLUGIN_HOSTILE, "hostile", "branch:bj").await;
    let chatty = deal_of(&app, "bj", "1000").await;
    let r = app
        .patch(
            &format!("/v1/deals/{chatty}"),
            ADMIN,
            json!({"attributes": {"mode": "chatty"}}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    walk(&app, ADMIN, &chatty, &["qualify"]).await;
}

#[tokio::test]
async fn uploads_that_are_not_valid_plugins_are_refused_and_leave_nothing() {
    use base64::Engine as _;
    let (app, mgr, _rep) = world().await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let cases = [
        ("garbage", b64(b"definitely not wasm"), "policy_invalid"),
        // A valid core module that is not a dealflow plugin.
        ("bare-module", b64(b"\0asm\x01\0\0\0"), "policy_invalid"),
        ("not-base64", "%%%".to_string(), "validation_failed"),
    ];
    for (name, module, code) in &cases {
        let r = app
            .post(
                "/v1/policies",
                ADMIN,
                json!({"name": name, "scope": "global", "runtime": "wasm", "module": module}),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: {}",
            r.body
        );
        assert_eq!(r.code(), *code, "{name}: {}", r.body);
        let got = app.get(&format!("/v1/policies/{name}"), ADMIN).await;
        assert_eq!(got.status, StatusCode::NOT_FOUND, "{name}: {}", got.body);
    }
    // An enormous module is refused before it is compiled.
    let huge = b64(&vec![0u8; (1 << 20) + 1]);
    let r = app
        .post(
            "/v1/policies",
            ADMIN,
            json!({"name": "huge", "scope": "global", "runtime": "wasm", "module": huge}),
        )
        .await;
    assert!(
        r.status == StatusCode::PAYLOAD_TOO_LARGE || r.status == StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        r.body
    );
    assert_eq!(
        app.get("/v1/policies/huge", ADMIN).await.status,
        StatusCode::NOT_FOUND
    );
    // A plugin uploaded for another branch by a manager is refused.
    let r = app
        .post(
            "/v1/policies",
            &mgr,
            wasm_upload_body(PLUGIN_NEW_BRAND_BONUS, "bonus", "branch:bj"),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The same plugin uploaded twice is one version.
    let body = wasm_upload_body(PLUGIN_NEW_BRAND_BONUS, "bonus", "global");
    assert_eq!(
        app.post("/v1/policies", ADMIN, body.clone()).await.status,
        StatusCode::CREATED
    );
    let again = app.post("/v1/policies", ADMIN, body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["version"], 1);
}
