//! The authorization matrix (docs/http-reference.md), end to end through the router: for
//! each role (admin, the manager of branch `a`, rep `li` of branch `a`) and
//! each route, in the caller's own branch `a` and in another branch `b`, the
//! exact status; and that lists only ever hold what the caller may see.

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use dealflow_tests::{deal_body, Reply, TestApp, ADMIN};
use serde_json::{json, Value};

/// The callers of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    Manager,
    Rep,
}

const EVERYONE: [Who; 3] = [Who::Admin, Who::Manager, Who::Rep];

/// Two branches and data in both: in `a`, customers of rep `li` and rep
/// `zhao` and deals of each; in `b`, a customer and a deal.
struct Fixture {
    app: TestApp,
    manager: String,
    rep: String,
    cus_a: String,
    cus_a_zhao: String,
    cus_b: String,
    deal_li: String,
    deal_zhao: String,
    deal_b: String,
    /// Records by li and zhao on `cus_a`, by chen on `cus_b`.
    records: Vec<String>,
}

impl Fixture {
    async fn new() -> Self {
        let app = TestApp::new().await;
        app.branch("a").await;
        app.branch("b").await;
        app.brand("volvo").await;
        let manager = app.token("manager", Some("a"), "wang").await;
        let rep = app.token("rep", Some("a"), "li").await;
        let cus_a = app.customer(ADMIN, "a", "li").await;
        let cus_a_zhao = app.customer(ADMIN, "a", "zhao").await;
        let cus_b = app.customer(ADMIN, "b", "chen").await;
        let deal_li = app.deal(ADMIN, &cus_a, "li", "volvo").await;
        let deal_zhao = app.deal(ADMIN, &cus_a_zhao, "zhao", "volvo").await;
        let deal_b = app.deal(ADMIN, &cus_b, "chen", "volvo").await;
        let mut records = Vec::new();
        for (c, by) in [(&cus_a, "li"), (&cus_a, "zhao"), (&cus_b, "chen")] {
            // li writes their own (a rep corrects the records they wrote)
            let writer = if by == "li" { rep.as_str() } else { ADMIN };
            let r = app
                .ok(
                    &format!("/v1/customers/{c}/records"),
                    writer,
                    json!({"by": by, "kind": "call", "summary": format!("call by {by}")}),
                )
                .await;
            records.push(r["id"].as_str().expect("id").to_string());
        }
        Self {
            app,
            manager,
            rep,
            cus_a,
            cus_a_zhao,
            cus_b,
            deal_li,
            deal_zhao,
            deal_b,
            records,
        }
    }

    /// The follow-up tasks of a fresh deal signed by the admin (past the
    /// quote-late guard with an override).
    async fn signed_tasks(&self, customer: &str, owner: &str) -> Vec<String> {
        let deal = self.fresh_deal(customer, owner).await;
        for to in ["qualify", "visit", "quote", "sign"] {
            self.app
                .ok(
                    &format!("/v1/deals/{deal}/transitions"),
                    ADMIN,
                    json!({"to": to, "override_reason": "authorization matrix set-up"}),
                )
                .await;
        }
        let r = self
            .get(Who::Admin, &format!("/v1/tasks?deal_id={deal}"))
            .await;
        r.body["items"]
            .as_array()
            .expect("tasks")
            .iter()
            .map(|t| t["id"].as_str().expect("id").to_string())
            .collect()
    }

    fn token(&self, who: Who) -> &str {
        match who {
            Who::Admin => ADMIN,
            Who::Manager => &self.manager,
            Who::Rep => &self.rep,
        }
    }

    /// A fresh deal (set up by the admin), so a write by one role never
    /// changes what the next role finds.
    async fn fresh_deal(&self, customer: &str, owner: &str) -> String {
        self.app.deal(ADMIN, customer, owner, "volvo").await
    }

    async fn get(&self, who: Who, path: &str) -> Reply {
        self.app.get(path, self.token(who)).await
    }
}

/// One row of the matrix: a request and the status each role gets.
struct Case {
    name: String,
    method: Method,
    path: String,
    body: Option<Value>,
    /// admin, manager of `a`, rep `li` of `a`.
    expect: [u16; 3],
}

fn case(name: &str, method: Method, path: String, body: Option<Value>, expect: [u16; 3]) -> Case {
    Case {
        name: name.to_string(),
        method,
        path,
        body,
        expect,
    }
}

impl Case {
    fn expected(&self, who: Who) -> u16 {
        match who {
            Who::Admin => self.expect[0],
            Who::Manager => self.expect[1],
            Who::Rep => self.expect[2],
        }
    }
}

/// Issues a token no row uses, for the revocation rows; returns its id.
async fn fresh_token(f: &Fixture, role: &str, branch: Option<&str>) -> String {
    let mut body = json!({"role": role, "user": "spare"});
    if let Some(b) = branch {
        body["branch"] = json!(b);
    }
    f.app.ok("/v1/tokens", ADMIN, body).await["id"]
        .as_str()
        .expect("id")
        .to_string()
}

/// The default pipeline as a definition (PUT rows write it back unchanged in
/// substance, so later rows still find the default stages).
fn default_pipeline() -> Value {
    json!({
        "stages": [
            {"id": "lead"}, {"id": "qualify"}, {"id": "visit"}, {"id": "quote"},
            {"id": "sign", "kind": "won"}, {"id": "lost", "kind": "lost"}
        ],
        "moves": [
            {"from": "lead", "to": "qualify"}, {"from": "qualify", "to": "visit"},
            {"from": "visit", "to": "quote"}, {"from": "quote", "to": "sign"},
            {"from": "lead", "to": "lost"}, {"from": "qualify", "to": "lost"},
            {"from": "visit", "to": "lost"}, {"from": "quote", "to": "lost"}
        ]
    })
}

/// The matrix for `who`, with fresh resources for the rows that write.
async fn matrix(f: &Fixture, who: Who) -> Vec<Case> {
    use Method as M;
    let tag = format!("{who:?}").to_lowercase();
    let (cus_a, cus_a_zhao, cus_b) = (&f.cus_a, &f.cus_a_zhao, &f.cus_b);
    let (deal_li, deal_zhao, deal_b) = (&f.deal_li, &f.deal_zhao, &f.deal_b);
    let move_li = f.fresh_deal(cus_a, "li").await;
    let move_zhao = f.fresh_deal(cus_a_zhao, "zhao").await;
    let move_b = f.fresh_deal(cus_b, "chen").await;
    let give_away = f.fresh_deal(cus_a, "li").await;
    // Settlements of periods of each role's own, so rows do not collide.
    let month = match who {
        Who::Admin => "01",
        Who::Manager => "02",
        Who::Rep => "03",
    };
    let (draft_a, draft_b) = (
        settlement(f, "a", &format!("2025-{month}"), false).await,
        settlement(f, "b", &format!("2025-{month}"), false).await,
    );
    let approved_a = settlement(f, "a", &format!("2023-{month}"), true).await;
    let approved_b = settlement(f, "b", &format!("2023-{month}"), true).await;
    let customer = |branch: &str, owner: Option<&str>| {
        let mut b = json!({"name": "New Co", "branch": branch, "segment": "enterprise",
                           "source": "self_developed"});
        if let Some(o) = owner {
            b["owner"] = json!(o);
        }
        Some(b)
    };
    let (task_li, task_zhao, task_b) = (
        f.signed_tasks(cus_a, "li").await,
        f.signed_tasks(cus_a_zhao, "zhao").await,
        f.signed_tasks(cus_b, "chen").await,
    );
    let (rec_li, rec_zhao, rec_b) = (&f.records[0], &f.records[1], &f.records[2]);
    let note = Some(json!({"note": format!("closed by {tag}")}));
    let correction = Some(json!({"next_steps": format!("corrected by {tag}")}));
    let call = Some(json!({"kind": "call", "summary": "follow-up"}));
    let to_qualify = Some(json!({"to": "qualify"}));
    let dry = Some(json!({"to": "qualify", "dry_run": true}));
    let rename = Some(json!({"title": format!("renamed by {tag}")}));
    vec![
        // --- operations: anyone
        case("healthz", M::GET, "/healthz".into(), None, [200, 200, 200]),
        case("metrics", M::GET, "/metrics".into(), None, [200, 200, 200]),
        case(
            "openapi",
            M::GET,
            "/openapi.json".into(),
            None,
            [200, 200, 200],
        ),
        // --- tokens: admin only
        case(
            "issue token in a",
            M::POST,
            "/v1/tokens".into(),
            Some(json!({"role": "rep", "branch": "a", "user": format!("new-{tag}")})),
            [201, 403, 403],
        ),
        case(
            "issue token in b",
            M::POST,
            "/v1/tokens".into(),
            Some(json!({"role": "manager", "branch": "b", "user": format!("new-{tag}")})),
            [201, 403, 403],
        ),
        case(
            "issue admin token",
            M::POST,
            "/v1/tokens".into(),
            Some(json!({"role": "admin", "user": format!("root-{tag}")})),
            [201, 403, 403],
        ),
        case(
            "list tokens",
            M::GET,
            "/v1/tokens".into(),
            None,
            [200, 200, 403],
        ),
        case(
            "list tokens of b",
            M::GET,
            "/v1/tokens?branch=b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "revoke a rep token in a",
            M::DELETE,
            format!("/v1/tokens/{}", fresh_token(f, "rep", Some("a")).await),
            None,
            [200, 200, 403],
        ),
        case(
            "revoke a rep token in b",
            M::DELETE,
            format!("/v1/tokens/{}", fresh_token(f, "rep", Some("b")).await),
            None,
            [200, 403, 403],
        ),
        case(
            "revoke a manager token in a",
            M::DELETE,
            format!("/v1/tokens/{}", fresh_token(f, "manager", Some("a")).await),
            None,
            [200, 403, 403],
        ),
        case(
            "revoke an admin token",
            M::DELETE,
            format!("/v1/tokens/{}", fresh_token(f, "admin", None).await),
            None,
            [200, 403, 403],
        ),
        // --- branches
        case(
            "create branch",
            M::POST,
            "/v1/branches".into(),
            Some(json!({"id": format!("new-{tag}"), "name": "New"})),
            [201, 403, 403],
        ),
        case(
            "list branches",
            M::GET,
            "/v1/branches".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "read own branch",
            M::GET,
            "/v1/branches/a".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "read other branch",
            M::GET,
            "/v1/branches/b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "read own pipeline",
            M::GET,
            "/v1/branches/a/pipeline".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "read other pipeline",
            M::GET,
            "/v1/branches/b/pipeline".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "set own pipeline",
            M::PUT,
            "/v1/branches/a/pipeline".into(),
            Some(default_pipeline()),
            [200, 200, 403],
        ),
        case(
            "set other pipeline",
            M::PUT,
            "/v1/branches/b/pipeline".into(),
            Some(default_pipeline()),
            [200, 403, 403],
        ),
        // --- catalog: everyone reads, the admin writes
        case(
            "create brand",
            M::POST,
            "/v1/brands".into(),
            Some(json!({"id": format!("brand-{tag}"), "name": "B", "introduced_at": "2026-01-01"})),
            [201, 403, 403],
        ),
        case(
            "list brands",
            M::GET,
            "/v1/brands".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "read brand",
            M::GET,
            "/v1/brands/volvo".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "record fx rate",
            M::POST,
            "/v1/fx-rates".into(),
            Some(
                json!({"currency": "CNY", "per_usd": "7.1", "date": match who {
                    Who::Admin => "2026-01-01", Who::Manager => "2026-01-02", Who::Rep => "2026-01-03"
                }}),
            ),
            [201, 403, 403],
        ),
        case(
            "list fx rates",
            M::GET,
            "/v1/fx-rates".into(),
            None,
            [200, 200, 200],
        ),
        // --- customers
        case(
            "create customer in own branch",
            M::POST,
            "/v1/customers".into(),
            customer("a", Some("li")),
            [201, 201, 201],
        ),
        case(
            "create customer without owner",
            M::POST,
            "/v1/customers".into(),
            customer("a", None),
            [201, 201, 201],
        ),
        case(
            "create customer for another rep",
            M::POST,
            "/v1/customers".into(),
            customer("a", Some("zhao")),
            [201, 201, 403],
        ),
        case(
            "create customer in other branch",
            M::POST,
            "/v1/customers".into(),
            customer("b", Some("chen")),
            [201, 403, 403],
        ),
        case(
            "list customers",
            M::GET,
            "/v1/customers".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "list own branch customers",
            M::GET,
            "/v1/customers?branch=a".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "list other branch customers",
            M::GET,
            "/v1/customers?branch=b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "read own customer",
            M::GET,
            format!("/v1/customers/{cus_a}"),
            None,
            [200, 200, 200],
        ),
        case(
            "read colleague's customer",
            M::GET,
            format!("/v1/customers/{cus_a_zhao}"),
            None,
            [200, 200, 200],
        ),
        case(
            "read other branch customer",
            M::GET,
            format!("/v1/customers/{cus_b}"),
            None,
            [200, 403, 403],
        ),
        case(
            "rename own customer",
            M::PATCH,
            format!("/v1/customers/{cus_a}"),
            Some(json!({"name": format!("ACME by {tag}")})),
            [200, 200, 200],
        ),
        case(
            "give own customer away",
            M::PATCH,
            format!("/v1/customers/{cus_a}"),
            Some(json!({"owner": "zhao", "reason": "territory change"})),
            [200, 200, 403],
        ),
        case(
            "rename other branch customer",
            M::PATCH,
            format!("/v1/customers/{cus_b}"),
            Some(json!({"name": format!("B Co by {tag}")})),
            [200, 403, 403],
        ),
        // --- communication records
        case(
            "add record in own branch",
            M::POST,
            format!("/v1/customers/{cus_a}/records"),
            call.clone(),
            [201, 201, 201],
        ),
        case(
            "add record for another rep",
            M::POST,
            format!("/v1/customers/{cus_a}/records"),
            Some(json!({"by": "zhao", "kind": "visit", "summary": "x"})),
            [201, 201, 403],
        ),
        case(
            "add record in other branch",
            M::POST,
            format!("/v1/customers/{cus_b}/records"),
            call,
            [201, 403, 403],
        ),
        case(
            "list records in own branch",
            M::GET,
            format!("/v1/customers/{cus_a}/records"),
            None,
            [200, 200, 200],
        ),
        case(
            "list records in other branch",
            M::GET,
            format!("/v1/customers/{cus_b}/records"),
            None,
            [200, 403, 403],
        ),
        // --- deals
        case(
            "open own deal",
            M::POST,
            "/v1/deals".into(),
            Some(deal_body(cus_a, "li", "volvo")),
            [201, 201, 201],
        ),
        case(
            "open deal for another rep",
            M::POST,
            "/v1/deals".into(),
            Some(deal_body(cus_a_zhao, "zhao", "volvo")),
            [201, 201, 403],
        ),
        case(
            "open deal in other branch",
            M::POST,
            "/v1/deals".into(),
            Some(deal_body(cus_b, "chen", "volvo")),
            [201, 403, 403],
        ),
        case(
            "list deals",
            M::GET,
            "/v1/deals".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "list own branch deals",
            M::GET,
            "/v1/deals?branch=a".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "list other branch deals",
            M::GET,
            "/v1/deals?branch=b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "list own deals by owner",
            M::GET,
            "/v1/deals?owner=li".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "list another rep's deals",
            M::GET,
            "/v1/deals?owner=zhao".into(),
            None,
            [200, 200, 403],
        ),
        case(
            "read own deal",
            M::GET,
            format!("/v1/deals/{deal_li}"),
            None,
            [200, 200, 200],
        ),
        case(
            "read another rep's deal",
            M::GET,
            format!("/v1/deals/{deal_zhao}"),
            None,
            [200, 200, 403],
        ),
        case(
            "read other branch deal",
            M::GET,
            format!("/v1/deals/{deal_b}"),
            None,
            [200, 403, 403],
        ),
        case(
            "rename own deal",
            M::PATCH,
            format!("/v1/deals/{deal_li}"),
            rename.clone(),
            [200, 200, 200],
        ),
        case(
            "rename another rep's deal",
            M::PATCH,
            format!("/v1/deals/{deal_zhao}"),
            rename.clone(),
            [200, 200, 403],
        ),
        case(
            "rename other branch deal",
            M::PATCH,
            format!("/v1/deals/{deal_b}"),
            rename,
            [200, 403, 403],
        ),
        case(
            "give own deal away",
            M::PATCH,
            format!("/v1/deals/{give_away}"),
            Some(json!({"owner": "zhao", "reason": "territory change"})),
            [200, 200, 403],
        ),
        case(
            "move own deal",
            M::POST,
            format!("/v1/deals/{move_li}/transitions"),
            to_qualify.clone(),
            [200, 200, 200],
        ),
        case(
            "move another rep's deal",
            M::POST,
            format!("/v1/deals/{move_zhao}/transitions"),
            to_qualify.clone(),
            [200, 200, 403],
        ),
        case(
            "move other branch deal",
            M::POST,
            format!("/v1/deals/{move_b}/transitions"),
            to_qualify,
            [200, 403, 403],
        ),
        case(
            "dry-run own deal",
            M::POST,
            format!("/v1/deals/{deal_li}/transitions"),
            dry.clone(),
            [200, 200, 200],
        ),
        case(
            "dry-run another rep's deal",
            M::POST,
            format!("/v1/deals/{deal_zhao}/transitions"),
            dry.clone(),
            [200, 200, 403],
        ),
        case(
            "dry-run other branch deal",
            M::POST,
            format!("/v1/deals/{deal_b}/transitions"),
            dry,
            [200, 403, 403],
        ),
        case(
            "override own deal",
            M::POST,
            format!("/v1/deals/{deal_li}/transitions"),
            Some(json!({"to": "qualify", "dry_run": true, "override_reason": "boss said so"})),
            [200, 403, 403],
        ),
        case(
            "own deal history",
            M::GET,
            format!("/v1/deals/{deal_li}/history"),
            None,
            [200, 200, 200],
        ),
        case(
            "another rep's deal history",
            M::GET,
            format!("/v1/deals/{deal_zhao}/history"),
            None,
            [200, 200, 403],
        ),
        case(
            "other branch deal history",
            M::GET,
            format!("/v1/deals/{deal_b}/history"),
            None,
            [200, 403, 403],
        ),
        // --- key accounts: tiers, follow-ups, records, reports
        case(
            "retier a",
            M::POST,
            "/v1/branches/a/retier".into(),
            None,
            [200, 200, 403],
        ),
        case(
            "retier b",
            M::POST,
            "/v1/branches/b/retier".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "customer history in a",
            M::GET,
            format!("/v1/customers/{cus_a}/history"),
            None,
            [200, 200, 200],
        ),
        case(
            "customer history in b",
            M::GET,
            format!("/v1/customers/{cus_b}/history"),
            None,
            [200, 403, 403],
        ),
        case(
            "follow-ups of a",
            M::GET,
            "/v1/followups?branch=a".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "follow-ups of b",
            M::GET,
            "/v1/followups?branch=b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "another rep's follow-ups",
            M::GET,
            "/v1/followups?branch=a&owner=zhao".into(),
            None,
            [200, 200, 403],
        ),
        case(
            "team report of a",
            M::GET,
            "/v1/reports/team?branch=a".into(),
            None,
            [200, 200, 403],
        ),
        case(
            "team report of b",
            M::GET,
            "/v1/reports/team?branch=b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "referral report of a",
            M::GET,
            "/v1/reports/referrals?branch=a".into(),
            None,
            [200, 200, 403],
        ),
        case(
            "referral report of b",
            M::GET,
            "/v1/reports/referrals?branch=b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "records of a",
            M::GET,
            "/v1/records?branch=a".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "another rep's records",
            M::GET,
            "/v1/records?branch=a&by=zhao".into(),
            None,
            [200, 200, 403],
        ),
        case(
            "records of b",
            M::GET,
            "/v1/records?branch=b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "correct own record",
            M::PATCH,
            format!("/v1/customers/{cus_a}/records/{rec_li}"),
            correction.clone(),
            [200, 200, 200],
        ),
        case(
            "correct another rep's record",
            M::PATCH,
            format!("/v1/customers/{cus_a}/records/{rec_zhao}"),
            correction.clone(),
            [200, 200, 403],
        ),
        case(
            "correct a record of b",
            M::PATCH,
            format!("/v1/customers/{cus_b}/records/{rec_b}"),
            correction,
            [200, 403, 403],
        ),
        case(
            "own record's revisions",
            M::GET,
            format!("/v1/customers/{cus_a}/records/{rec_li}/revisions"),
            None,
            [200, 200, 200],
        ),
        case(
            "another rep's record's revisions",
            M::GET,
            format!("/v1/customers/{cus_a}/records/{rec_zhao}/revisions"),
            None,
            [200, 200, 403],
        ),
        case(
            "revisions of a record of b",
            M::GET,
            format!("/v1/customers/{cus_b}/records/{rec_b}/revisions"),
            None,
            [200, 403, 403],
        ),
        case(
            "complete own task",
            M::POST,
            format!("/v1/tasks/{}/complete", task_li[0]),
            note.clone(),
            [200, 200, 200],
        ),
        case(
            "complete another rep's task",
            M::POST,
            format!("/v1/tasks/{}/complete", task_zhao[0]),
            note.clone(),
            [200, 200, 403],
        ),
        case(
            "complete a task of b",
            M::POST,
            format!("/v1/tasks/{}/complete", task_b[0]),
            note.clone(),
            [200, 403, 403],
        ),
        case(
            "dismiss own task",
            M::POST,
            format!("/v1/tasks/{}/dismiss", task_li[1]),
            note.clone(),
            [200, 200, 200],
        ),
        case(
            "dismiss another rep's task",
            M::POST,
            format!("/v1/tasks/{}/dismiss", task_zhao[1]),
            note.clone(),
            [200, 200, 403],
        ),
        case(
            "dismiss a task of b",
            M::POST,
            format!("/v1/tasks/{}/dismiss", task_b[1]),
            note,
            [200, 403, 403],
        ),
        // --- settlements: the branch's manager (and admins); statements
        // for a rep's own lines
        case(
            "draft settlement in a",
            M::POST,
            "/v1/settlements".into(),
            Some(json!({"branch": "a", "period": format!("2024-{month}")})),
            [201, 201, 403],
        ),
        case(
            "draft settlement in b",
            M::POST,
            "/v1/settlements".into(),
            Some(json!({"branch": "b", "period": format!("2024-{month}")})),
            [201, 403, 403],
        ),
        case(
            "approve a draft of a",
            M::POST,
            format!("/v1/settlements/{draft_a}/approve"),
            None,
            [200, 200, 403],
        ),
        case(
            "approve a draft of b",
            M::POST,
            format!("/v1/settlements/{draft_b}/approve"),
            None,
            [200, 403, 403],
        ),
        case(
            "pay a settlement of b",
            M::POST,
            format!("/v1/settlements/{approved_b}/pay"),
            None,
            [200, 403, 403],
        ),
        case(
            "read a settlement of a",
            M::GET,
            format!("/v1/settlements/{approved_a}"),
            None,
            [200, 200, 403],
        ),
        case(
            "list settlements of b",
            M::GET,
            "/v1/settlements?branch=b".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "own statement",
            M::GET,
            "/v1/statements?branch=a&rep=li&period=2024-01".into(),
            None,
            [200, 200, 200],
        ),
        case(
            "another rep's statement",
            M::GET,
            "/v1/statements?branch=a&rep=zhao&period=2024-01".into(),
            None,
            [200, 200, 403],
        ),
        case(
            "statement in b",
            M::GET,
            "/v1/statements?branch=b&rep=chen&period=2024-01".into(),
            None,
            [200, 403, 403],
        ),
        case(
            "simulate a bonus rule on a",
            M::POST,
            "/v1/policies/new-brand-bonus/versions/1/simulate".into(),
            Some(json!({"branch": "a", "period": "2024-01"})),
            [200, 200, 403],
        ),
        case(
            "simulate a bonus rule on b",
            M::POST,
            "/v1/policies/new-brand-bonus/versions/1/simulate".into(),
            Some(json!({"branch": "b", "period": "2024-01"})),
            [200, 403, 403],
        ),
    ]
}

/// A settlement of `branch` for `period`, drafted by the admin, approved
/// when `approve`; returns its id.
async fn settlement(f: &Fixture, branch: &str, period: &str, approve: bool) -> String {
    let id = f
        .app
        .ok(
            "/v1/settlements",
            ADMIN,
            json!({"branch": branch, "period": period}),
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_string();
    if approve {
        f.app
            .ok(&format!("/v1/settlements/{id}/approve"), ADMIN, json!({}))
            .await;
    }
    id
}

/// Asserts a 403 carries the documented error body.
#[track_caller]
fn assert_forbidden_body(r: &Reply, what: &str) {
    assert_eq!(r.body["error"]["code"], "forbidden", "{what}: {}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {}",
        r.body
    );
    assert_eq!(r.body.as_object().map(|o| o.len()), Some(1), "{what}");
}

#[tokio::test]
async fn every_route_answers_each_role_with_the_exact_status() {
    // Given two branches with data in both
    let f = Fixture::new().await;
    let mut failures = Vec::new();
    for who in EVERYONE {
        for c in matrix(&f, who).await {
            // When this role sends the request
            let r = f
                .app
                .send(
                    c.method.clone(),
                    &c.path,
                    Some(f.token(who)),
                    c.body.clone(),
                )
                .await;
            // Then the status is exactly the matrix's
            let want = c.expected(who);
            if r.status.as_u16() != want {
                failures.push(format!(
                    "{who:?} / {} ({} {}): want {want}, got {} {}",
                    c.name, c.method, c.path, r.status, r.body
                ));
                continue;
            }
            // And a refusal has the error body and changed nothing visible
            if want == 403 {
                assert_forbidden_body(&r, &format!("{who:?} / {}", c.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What the admin reads at the places refused writes could have touched.
async fn snapshot(f: &Fixture) -> Vec<(String, Value)> {
    let paths = [
        format!("/v1/customers/{}", f.cus_a),
        format!("/v1/customers/{}", f.cus_b),
        format!("/v1/deals/{}", f.deal_li),
        format!("/v1/deals/{}", f.deal_zhao),
        format!("/v1/deals/{}", f.deal_b),
        format!("/v1/deals/{}/history", f.deal_zhao),
        format!("/v1/deals/{}/history", f.deal_b),
        format!("/v1/customers/{}/records", f.cus_b),
        "/v1/branches/b/pipeline".to_string(),
        "/v1/customers?branch=b".to_string(),
        "/v1/deals?branch=b".to_string(),
        "/v1/branches".to_string(),
        "/v1/brands".to_string(),
        "/v1/fx-rates".to_string(),
        "/v1/settlements?branch=b".to_string(),
    ];
    let mut out = Vec::new();
    for p in paths {
        let body = f.app.get(&p, ADMIN).await.body;
        out.push((p, body));
    }
    out
}

#[tokio::test]
async fn refused_writes_change_nothing() {
    // Given two branches with data in both
    let f = Fixture::new().await;
    let before = snapshot(&f).await;

    // When the manager and the rep attempt every write outside their scope
    let tries: Vec<(Who, Method, String, Value)> = vec![
        (
            Who::Manager,
            Method::POST,
            "/v1/branches".into(),
            json!({"id": "x", "name": "X"}),
        ),
        (
            Who::Rep,
            Method::POST,
            "/v1/branches".into(),
            json!({"id": "x", "name": "X"}),
        ),
        (
            Who::Manager,
            Method::PUT,
            "/v1/branches/b/pipeline".into(),
            default_pipeline(),
        ),
        (
            Who::Rep,
            Method::PUT,
            "/v1/branches/b/pipeline".into(),
            default_pipeline(),
        ),
        (
            Who::Manager,
            Method::POST,
            "/v1/brands".into(),
            json!({"id": "x", "name": "X", "introduced_at": "2026-01-01"}),
        ),
        (
            Who::Rep,
            Method::POST,
            "/v1/fx-rates".into(),
            json!({"currency": "EUR", "date": "2026-01-01", "per_usd": "1"}),
        ),
        (
            Who::Manager,
            Method::POST,
            "/v1/customers".into(),
            json!({"name": "X", "branch": "b", "segment": "enterprise", "source": "assigned"}),
        ),
        (
            Who::Manager,
            Method::PATCH,
            format!("/v1/customers/{}", f.cus_b),
            json!({"name": "hijacked"}),
        ),
        (
            Who::Rep,
            Method::PATCH,
            format!("/v1/customers/{}", f.cus_a),
            json!({"owner": "zhao"}),
        ),
        (
            Who::Rep,
            Method::POST,
            format!("/v1/customers/{}/records", f.cus_b),
            json!({"kind": "call", "summary": "x"}),
        ),
        (
            Who::Manager,
            Method::POST,
            "/v1/deals".into(),
            deal_body(&f.cus_b, "chen", "volvo"),
        ),
        (
            Who::Rep,
            Method::PATCH,
            format!("/v1/deals/{}", f.deal_zhao),
            json!({"title": "mine now"}),
        ),
        (
            Who::Rep,
            Method::PATCH,
            format!("/v1/deals/{}", f.deal_li),
            json!({"owner": "zhao"}),
        ),
        (
            Who::Manager,
            Method::PATCH,
            format!("/v1/deals/{}", f.deal_b),
            json!({"title": "x"}),
        ),
        (
            Who::Rep,
            Method::POST,
            format!("/v1/deals/{}/transitions", f.deal_zhao),
            json!({"to": "lost"}),
        ),
        (
            Who::Manager,
            Method::POST,
            format!("/v1/deals/{}/transitions", f.deal_b),
            json!({"to": "lost"}),
        ),
        (
            Who::Manager,
            Method::POST,
            format!("/v1/deals/{}/transitions", f.deal_li),
            json!({"to": "qualify", "override_reason": "x"}),
        ),
    ];
    for (who, method, path, body) in tries {
        let r = f
            .app
            .send(method.clone(), &path, Some(f.token(who)), Some(body))
            .await;
        // Then each is 403 with the error body
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{who:?} {method} {path}: {}",
            r.body
        );
        assert_forbidden_body(&r, &format!("{who:?} {method} {path}"));
    }
    // And nothing anyone can read has changed
    let after = snapshot(&f).await;
    for ((p, b), (_, a)) in before.iter().zip(&after) {
        assert_eq!(a, b, "{p} changed after refused writes");
    }
}

fn items(r: &Reply) -> Vec<Value> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["items"].as_array().expect("items").clone()
}

fn field_set(items: &[Value], field: &str) -> BTreeSet<String> {
    items
        .iter()
        .map(|i| i[field].as_str().unwrap_or("<none>").to_string())
        .collect()
}

#[tokio::test]
async fn a_rep_lists_only_their_own_deals() {
    // Given deals of li, of zhao in the same branch, and of branch b
    let f = Fixture::new().await;
    let second_li = f.fresh_deal(&f.cus_a_zhao, "li").await;

    // When rep li lists deals, with and without filters, and page by page
    for q in [
        "",
        "?branch=a",
        "?owner=li",
        "?stage=lead",
        "?branch=a&stage=lead",
        "?limit=1",
    ] {
        let r = f.get(Who::Rep, &format!("/v1/deals{q}")).await;
        let got = items(&r);
        // Then only li's deals of branch a come back
        assert!(
            got.iter().all(|d| d["owner"] == "li" && d["branch"] == "a"),
            "{q}: {got:?}"
        );
        if !q.contains("limit") {
            assert_eq!(
                field_set(&got, "id"),
                BTreeSet::from([f.deal_li.clone(), second_li.clone()]),
                "{q}"
            );
        }
    }
    // And filtering by a colleague's customer shows only li's deal there
    let r = f
        .get(Who::Rep, &format!("/v1/deals?customer_id={}", f.cus_a_zhao))
        .await;
    assert_eq!(
        field_set(&items(&r), "id"),
        BTreeSet::from([second_li.clone()])
    );
    // And filtering by another branch's customer shows nothing
    let r = f
        .get(Who::Rep, &format!("/v1/deals?customer_id={}", f.cus_b))
        .await;
    assert_eq!(items(&r), Vec::<Value>::new());
    // And walking page by page yields the same two deals, each once
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = f
            .get(Who::Rep, &format!("/v1/deals?limit=1&cursor={cursor}"))
            .await;
        seen.extend(field_set(&items(&r), "id"));
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
        assert!(seen.len() < 100, "paging never ends");
    }
    seen.sort();
    let mut want = vec![f.deal_li.clone(), second_li];
    want.sort();
    assert_eq!(seen, want);
}

#[tokio::test]
async fn a_manager_lists_their_whole_branch_and_nothing_else() {
    // Given data in branches a and b
    let f = Fixture::new().await;

    // When the manager of a lists deals, customers and branches
    let deals = items(&f.get(Who::Manager, "/v1/deals").await);
    let customers = items(&f.get(Who::Manager, "/v1/customers").await);
    let branches = items(&f.get(Who::Manager, "/v1/branches").await);

    // Then every deal of a (any owner) is there, none of b
    assert_eq!(
        field_set(&deals, "id"),
        BTreeSet::from([f.deal_li.clone(), f.deal_zhao.clone()])
    );
    assert_eq!(
        field_set(&deals, "branch"),
        BTreeSet::from(["a".to_string()])
    );
    // And every customer of a, none of b
    assert_eq!(
        field_set(&customers, "id"),
        BTreeSet::from([f.cus_a.clone(), f.cus_a_zhao.clone()])
    );
    assert!(customers.iter().all(|c| c["branch"] == "a"));
    // And only their own branch
    assert_eq!(
        field_set(&branches, "id"),
        BTreeSet::from(["a".to_string()])
    );
    // And filters never widen the scope
    for q in [
        "/v1/customers?owner=chen",
        "/v1/customers?tier=C&owner=chen",
        "/v1/deals?owner=chen",
        "/v1/deals?stage=lead&owner=chen",
    ] {
        assert_eq!(
            items(&f.get(Who::Manager, q).await),
            Vec::<Value>::new(),
            "{q}"
        );
    }
    let r = f
        .get(Who::Manager, &format!("/v1/deals?customer_id={}", f.cus_b))
        .await;
    assert_eq!(items(&r), Vec::<Value>::new());
}

#[tokio::test]
async fn a_rep_sees_every_customer_of_their_branch_but_not_of_another() {
    // Given customers of li and zhao in a, and one in b
    let f = Fixture::new().await;
    // When rep li lists customers
    let customers = items(&f.get(Who::Rep, "/v1/customers").await);
    // Then the branch's customers are there (the HTTP contract: their branch's customers)
    assert_eq!(
        field_set(&customers, "id"),
        BTreeSet::from([f.cus_a.clone(), f.cus_a_zhao.clone()])
    );
    // And asking for branch b is refused
    let r = f.get(Who::Rep, "/v1/customers?branch=b").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_forbidden_body(&r, "rep lists b");
    // And the rep's branch list is their own
    let branches = items(&f.get(Who::Rep, "/v1/branches").await);
    assert_eq!(
        field_set(&branches, "id"),
        BTreeSet::from(["a".to_string()])
    );
}

#[tokio::test]
async fn a_rep_lists_only_their_own_records_and_a_manager_all_of_the_branch() {
    // Given records by li and zhao on a customer of a
    let f = Fixture::new().await;
    let path = format!("/v1/customers/{}/records", f.cus_a);
    // When li lists the customer's records
    let mine = items(&f.get(Who::Rep, &path).await);
    // Then only li's come back
    assert_eq!(field_set(&mine, "by"), BTreeSet::from(["li".to_string()]));
    // When the manager lists them
    let all = items(&f.get(Who::Manager, &path).await);
    // Then both authors' records come back
    assert_eq!(
        field_set(&all, "by"),
        BTreeSet::from(["li".to_string(), "zhao".to_string()])
    );
    // And the admin sees them too
    assert_eq!(items(&f.get(Who::Admin, &path).await).len(), 2);
}

#[tokio::test]
async fn the_admin_sees_every_branch() {
    // Given data in branches a and b
    let f = Fixture::new().await;
    // When the admin lists deals, customers and branches
    let deals = items(&f.get(Who::Admin, "/v1/deals").await);
    let customers = items(&f.get(Who::Admin, "/v1/customers").await);
    let branches = items(&f.get(Who::Admin, "/v1/branches").await);
    // Then both branches' data are there
    assert_eq!(
        field_set(&deals, "id"),
        BTreeSet::from([f.deal_li.clone(), f.deal_zhao.clone(), f.deal_b.clone()])
    );
    assert_eq!(
        field_set(&customers, "id"),
        BTreeSet::from([f.cus_a.clone(), f.cus_a_zhao.clone(), f.cus_b.clone()])
    );
    assert_eq!(
        field_set(&branches, "id"),
        BTreeSet::from(["a".to_string(), "b".to_string()])
    );
    // And a branch filter narrows to that branch
    let only_b = items(&f.get(Who::Admin, "/v1/deals?branch=b").await);
    assert_eq!(field_set(&only_b, "id"), BTreeSet::from([f.deal_b.clone()]));
}

#[tokio::test]
async fn a_manager_or_rep_of_another_branch_cannot_reach_branch_a() {
    // Given a manager and a rep of branch b
    let f = Fixture::new().await;
    let mgr_b = f.app.token("manager", Some("b"), "sun").await;
    let rep_b = f.app.token("rep", Some("b"), "chen").await;
    for token in [&mgr_b, &rep_b] {
        for path in [
            "/v1/branches/a".to_string(),
            "/v1/branches/a/pipeline".to_string(),
            "/v1/customers?branch=a".to_string(),
            "/v1/deals?branch=a".to_string(),
            format!("/v1/customers/{}", f.cus_a),
            format!("/v1/customers/{}/records", f.cus_a),
            format!("/v1/deals/{}", f.deal_li),
            format!("/v1/deals/{}/history", f.deal_li),
        ] {
            // When they read branch a's data
            let r = f.app.get(&path, token).await;
            // Then 403
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
            assert_forbidden_body(&r, &path);
        }
        // And their own lists hold only branch b
        let deals = items(&f.app.get("/v1/deals", token).await);
        assert!(deals.iter().all(|d| d["branch"] == "b"), "{deals:?}");
        let customers = items(&f.app.get("/v1/customers", token).await);
        assert!(
            customers.iter().all(|c| c["branch"] == "b"),
            "{customers:?}"
        );
    }
    // And b's rep still works on b's own deal
    let r = f.app.get(&format!("/v1/deals/{}", f.deal_b), &rep_b).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn an_out_of_scope_deal_patch_is_403_even_when_the_body_is_invalid() {
    // Given deals of zhao (branch a) and of branch b
    let f = Fixture::new().await;
    for (who, deal) in [
        (Who::Manager, &f.deal_b),
        (Who::Rep, &f.deal_zhao),
        (Who::Rep, &f.deal_b),
    ] {
        // When the caller patches a deal outside their scope with invalid lines
        let r = f
            .app
            .patch(
                &format!("/v1/deals/{deal}"),
                f.token(who),
                json!({"lines": []}),
                None,
            )
            .await;
        // Then the refusal is about scope (403), not about the body
        assert_eq!(
            r.status,
            StatusCode::FORBIDDEN,
            "{who:?} {deal}: {}",
            r.body
        );
        assert_forbidden_body(&r, &format!("{who:?} {deal}"));
    }
}

// ---------------------------------------------------------------------------
// Browser sessions: a token once, then an HttpOnly cookie and CSRF checks
// ---------------------------------------------------------------------------

fn customer_body(branch: &str, owner: &str) -> Value {
    json!({"name": "Daqing Oilfield", "branch": branch, "owner": owner,
           "segment": "industrial", "source": "self_developed"})
}

#[tokio::test]
async fn a_token_opens_a_session_whose_cookie_authenticates_until_sign_out() {
    // Given a rep's token
    let app = TestApp::new().await;
    app.branch("a").await;
    let rep = app.token("rep", Some("a"), "li").await;

    // When the rep signs in with it
    let (session, r) = app.sign_in(&rep).await;

    // Then the answer names the caller and sets a cookie scripts cannot read
    assert_eq!(r.body["user"], "li");
    assert_eq!(r.body["role"], "rep");
    assert_eq!(r.body["branch"], "a");
    assert!(!session.csrf.is_empty());
    let flags: Vec<&str> = session.set_cookie.split(';').map(str::trim).collect();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(
            flags.contains(&flag),
            "{flag} missing: {}",
            session.set_cookie
        );
    }
    assert!(
        !flags.contains(&"Secure"),
        "plain http: {}",
        session.set_cookie
    );
    assert!(
        !session.set_cookie.contains(&rep),
        "the cookie is not the token"
    );

    // And the cookie reads and, with the CSRF token, writes as the rep
    let who = app
        .send_session(Method::GET, "/v1/sessions/current", &session, None, &[])
        .await;
    assert_eq!(who.status, StatusCode::OK, "{}", who.body);
    assert_eq!(who.body["user"], "li");
    assert_eq!(who.body["csrf_token"], session.csrf.as_str());
    let created = app
        .send_session(
            Method::POST,
            "/v1/customers",
            &session,
            Some(customer_body("a", "li")),
            &[],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let listed = app
        .send_session(Method::GET, "/v1/customers", &session, None, &[])
        .await;
    assert_eq!(listed.body["items"].as_array().map(Vec::len), Some(1));

    // When the rep signs out
    let out = app
        .send_session(Method::DELETE, "/v1/sessions/current", &session, None, &[])
        .await;

    // Then the session ends on the server: the same cookie opens nothing
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.body);
    let cleared = out.headers["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    for path in ["/v1/sessions/current", "/v1/customers"] {
        let r = app
            .send_session(Method::GET, path, &session, None, &[])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.body);
        assert!(r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sign in again"));
    }
    // And the token itself still works for API clients
    assert_eq!(app.get("/v1/customers", &rep).await.status, StatusCode::OK);
}

#[tokio::test]
async fn cookie_writes_without_the_csrf_token_or_from_another_site_are_refused() {
    // Given a signed-in rep
    let app = TestApp::new().await;
    app.branch("a").await;
    let rep = app.token("rep", Some("a"), "li").await;
    let (session, _) = app.sign_in(&rep).await;
    let refusals: [(&str, Vec<(&str, &str)>); 4] = [
        ("no CSRF token", vec![("x-csrf-token", "")]),
        ("a wrong CSRF token", vec![("x-csrf-token", "0123")]),
        ("another origin", vec![("origin", "http://evil.example")]),
        ("another site", vec![("sec-fetch-site", "cross-site")]),
    ];
    for (what, headers) in refusals {
        let mut headers = headers;
        // (an empty value stands for "not sent")
        let drop_csrf = headers
            .iter()
            .any(|(k, v)| *k == "x-csrf-token" && v.is_empty());
        headers.retain(|(_, v)| !v.is_empty());
        let mut session = session.clone();
        if drop_csrf {
            session.csrf = String::new();
        }
        // When a write comes with the cookie but `what`
        let r = app
            .send_session(
                Method::POST,
                "/v1/customers",
                &session,
                Some(customer_body("a", "li")),
                &headers,
            )
            .await;
        // Then 403 csrf_failed, with a message naming the header
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.body);
        assert_eq!(r.code(), "csrf_failed", "{what}");
        assert!(
            r.body["error"]["details"]["field"].is_string(),
            "{what}: {}",
            r.body
        );
    }
    // And nothing was written
    let listed = app.get("/v1/customers", &rep).await;
    assert_eq!(listed.body["items"], json!([]));
    // And a bearer-token client is not asked for any of it
    let r = app
        .send_raw(
            Method::POST,
            "/v1/customers",
            Some(&rep),
            Some(customer_body("a", "li").to_string().into_bytes()),
            &[("origin", "http://evil.example")],
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn a_session_survives_a_restart_and_ends_when_its_token_is_revoked() {
    // Given a rep signed in, and the server restarted
    let app = TestApp::new().await;
    app.branch("a").await;
    let issued = app
        .ok(
            "/v1/tokens",
            ADMIN,
            json!({"role": "rep", "branch": "a", "user": "li"}),
        )
        .await;
    let (session, _) = app.sign_in(issued["token"].as_str().unwrap()).await;
    let app = TestApp::reopen(app.close().await).await;
    let who = app
        .send_session(Method::GET, "/v1/sessions/current", &session, None, &[])
        .await;
    assert_eq!(
        who.status,
        StatusCode::OK,
        "kept across a restart: {}",
        who.body
    );

    // When the admin revokes the token the session was opened with
    let id = issued["id"].as_str().unwrap();
    let r = app
        .send(
            Method::DELETE,
            &format!("/v1/tokens/{id}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Then the session stops working at once
    let r = app
        .send_session(Method::GET, "/v1/customers", &session, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
}

#[tokio::test]
async fn signing_in_refuses_bad_tokens_and_marks_the_cookie_secure_over_https() {
    // Given a rep's token
    let app = TestApp::new().await;
    app.branch("a").await;
    let rep = app.token("rep", Some("a"), "li").await;
    // When someone signs in with a token that does not exist
    let r = app
        .send(
            Method::POST,
            "/v1/sessions",
            None,
            Some(json!({"token": "dft_nope"})),
        )
        .await;
    // Then 401 and no cookie
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(r.headers.get("set-cookie").is_none());
    // When the body has an unknown field
    let r = app
        .send(
            Method::POST,
            "/v1/sessions",
            None,
            Some(json!({"token": rep, "remember": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // When a page of another site tries to sign the browser in
    let r = app
        .send_raw(
            Method::POST,
            "/v1/sessions",
            None,
            Some(json!({"token": rep}).to_string().into_bytes()),
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "csrf_failed");
    // When the request came through an https proxy
    let r = app
        .send_raw(
            Method::POST,
            "/v1/sessions",
            None,
            Some(json!({"token": rep}).to_string().into_bytes()),
            &[("x-forwarded-proto", "https")],
        )
        .await;
    // Then the cookie is Secure
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let cookie = r.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.split(';').any(|f| f.trim() == "Secure"), "{cookie}");
}
