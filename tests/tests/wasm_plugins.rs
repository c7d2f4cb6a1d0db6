//! The example plugins (`plugins/*`), built to WebAssembly components by
//! this crate's `build.rs`, loaded into the server's wasmtime host and called
//! with real inputs.

use std::sync::{Arc, OnceLock};

use dealflow::policy::hooks::{BonusInput, Hook, TransitionInput};
use dealflow::policy::wasm::{WasmHost, WasmPolicy};
use dealflow::policy::{Executable, Limits, PolicyCalls, PolicyError};
use dealflow_tests::{PLUGIN_LARGE_DEAL_GUARD, PLUGIN_NEW_BRAND_BONUS};
use serde_json::{json, Value};

fn host() -> &'static WasmHost {
    static HOST: OnceLock<WasmHost> = OnceLock::new();
    HOST.get_or_init(|| WasmHost::new(&Limits::default()).expect("wasm engine"))
}

fn load(path: &str) -> WasmPolicy {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    host()
        .compile(&bytes, &Limits::default())
        .expect("the plugin compiles")
}

fn guard_plugin() -> &'static WasmPolicy {
    static P: OnceLock<WasmPolicy> = OnceLock::new();
    P.get_or_init(|| load(PLUGIN_LARGE_DEAL_GUARD))
}

fn bonus_plugin() -> &'static WasmPolicy {
    static P: OnceLock<WasmPolicy> = OnceLock::new();
    P.get_or_init(|| load(PLUGIN_NEW_BRAND_BONUS))
}

/// A deal in `currency` with `lines` of (brand, new?, amount, cost).
fn deal(currency: &str, lines: &[(&str, bool, &str, &str)], attributes: Value) -> Value {
    let sum = |i: usize| -> String {
        let cents: i128 = lines
            .iter()
            .map(|l| {
                let s = if i == 0 { l.2 } else { l.3 };
                let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
                int.parse::<i128>().unwrap() * 100 + format!("{frac:0<2}").parse::<i128>().unwrap()
            })
            .sum();
        format!("{}.{:02}", cents / 100, cents % 100)
    };
    json!({
        "id": "D-42", "title": "Fleet", "owner": "rep1", "currency": currency, "needs": [],
        "prepayment_ratio": null, "opened_at": "2026-03-01T02:00:00Z", "stage": "negotiation",
        "stages_passed": ["lead", "negotiation"], "signed_at": "2026-03-20T02:00:00Z",
        "lines": lines.iter().map(|(brand, new, amount, cost)| json!({
            "brand": brand, "brand_new": new, "product": "XC90", "amount": amount, "cost": cost
        })).collect::<Vec<_>>(),
        "amount_total": sum(0), "cost_total": sum(1), "attributes": attributes
    })
}

fn transition(deal: Value, to: &str, to_kind: &str) -> Arc<TransitionInput> {
    serde_json::from_value(json!({
        "branch": {"id": "sh", "timezone": "Asia/Shanghai"},
        "deal": deal,
        "customer": {"id": "C-1", "name": "ACME", "segment": "enterprise", "source": "self_developed",
                     "tier": "B", "owner": "rep1", "referred_by": null, "last_contact_at": null},
        "records": [],
        "from": "negotiation", "to": to, "to_kind": to_kind, "at": "2026-03-20T02:00:00Z",
        "actor": {"user": "rep1", "role": "rep"}
    }))
    .map(Arc::new)
    .expect("transition input")
}

fn deal_bonus(deal: Value, per_usd: &str) -> Arc<BonusInput> {
    serde_json::from_value(json!({
        "branch": {"id": "sh", "timezone": "Asia/Shanghai"}, "period": "2026-03", "period_kind": "month",
        "rep": "rep1", "subject_kind": "deal", "subject": "D-42", "deal": deal, "cny_per_usd": "7.1",
        "per_usd": per_usd, "customer": null, "orders": [], "new_customers": 0
    }))
    .map(Arc::new)
    .expect("bonus input")
}

/// The bonus (CNY, as text) and explanation for one new-brand line in USD.
fn bonus_usd(amount: &str, cost: &str) -> (String, String) {
    let out = bonus_plugin()
        .bonus(
            &deal_bonus(
                deal("USD", &[("volvo", true, amount, cost)], json!({})),
                "1",
            ),
            &Limits::default(),
        )
        .expect("the bonus hook answers");
    assert_eq!(out.lines.len(), 1, "{out:?}");
    let line = &out.lines[0];
    assert_eq!(line.rule, "new_brand_sale");
    (
        line.amount.normalize().to_string(),
        line.explanation.clone(),
    )
}

#[test]
fn each_plugin_lists_exactly_its_hooks() {
    assert_eq!(guard_plugin().hooks(), &[Hook::Guard]);
    assert_eq!(bonus_plugin().hooks(), &[Hook::Bonus]);
}

#[test]
fn a_large_deal_is_won_only_with_a_managers_approval() {
    // Given a deal a cent over 1,000,000 CNY without approval
    let big = deal(
        "CNY",
        &[("volvo", false, "1000000.01", "800000")],
        json!({}),
    );
    // When it is moved to a won stage, then the guard refuses and says what is missing
    let v = guard_plugin()
        .guard(&transition(big, "won", "won"), &Limits::default())
        .unwrap();
    assert!(!v.allow);
    assert!(
        v.reason.as_deref().unwrap().contains("1,000,000.01 CNY"),
        "{v:?}"
    );
    assert!(
        v.missing.iter().any(|m| m.contains("manager_approved")),
        "{v:?}"
    );

    // Given the same deal approved, then it may be won
    let approved = deal(
        "CNY",
        &[("volvo", false, "1000000.01", "800000")],
        json!({"manager_approved": "yes"}),
    );
    assert!(
        guard_plugin()
            .guard(&transition(approved, "won", "won"), &Limits::default())
            .unwrap()
            .allow
    );

    // Given a deal of exactly 1,000,000, then no approval is needed
    let at = deal("CNY", &[("volvo", false, "1000000", "800000")], json!({}));
    assert!(
        guard_plugin()
            .guard(&transition(at, "won", "won"), &Limits::default())
            .unwrap()
            .allow
    );

    // Given a big deal moved to an open stage, then the guard does not object
    let big = deal("CNY", &[("volvo", false, "5000000", "800000")], json!({}));
    assert!(
        guard_plugin()
            .guard(&transition(big, "proposal", "open"), &Limits::default())
            .unwrap()
            .allow
    );
}

#[test]
fn the_guard_plugin_does_not_implement_bonus() {
    let input = deal_bonus(
        deal("USD", &[("volvo", true, "20000", "1")], json!({})),
        "1",
    );
    let err = guard_plugin()
        .bonus(&input, &Limits::default())
        .unwrap_err();
    assert!(
        matches!(err, PolicyError::NotImplemented("bonus")),
        "{err:?}"
    );
}

#[test]
fn new_brand_bonus_starts_just_over_10000_usd() {
    // 20 % margin on both sides of the 10,000 USD boundary
    assert_eq!(bonus_usd("10000.00", "8000").0, "0");
    assert_eq!(bonus_usd("10000.01", "8000").0, "300");
}

#[test]
fn new_brand_bonus_needs_a_ten_percent_margin() {
    // 9.99 % margin: nothing
    let (paid, why) = bonus_usd("20000", "18002");
    assert_eq!(paid, "0");
    assert!(why.contains("margin below 10 %"), "{why}");
    // exactly 10 %: the tier pays
    let (paid, why) = bonus_usd("20000", "18000");
    assert_eq!(paid, "300");
    assert!(why.contains("margin 10.00 %"), "{why}");
}

#[test]
fn new_brand_bonus_tiers_through_the_host() {
    for (amount, want) in [
        ("30000", "300"),
        ("30000.01", "500"),
        ("60000", "500"),
        ("60000.01", "800"),
        ("100000", "800"),
        ("100000.01", "1000"),
    ] {
        let cost = format!(
            "{}",
            amount.split('.').next().unwrap().parse::<i64>().unwrap() / 2
        );
        assert_eq!(bonus_usd(amount, &cost).0, want, "{amount} USD");
    }
}

#[test]
fn new_brand_bonus_converts_with_per_usd_and_counts_new_brands_only() {
    // Given 71,000.07 CNY of a new brand at 7.1 CNY per USD (10,000.01 USD) and an old brand beside it
    let d = deal(
        "CNY",
        &[
            ("volvo", true, "71000.07", "60000"),
            ("bmw", false, "900000", "899999"),
        ],
        json!({}),
    );
    // When the bonus is computed
    let out = bonus_plugin()
        .bonus(&deal_bonus(d, "7.1"), &Limits::default())
        .unwrap();
    // Then the new brand alone earns the first tier, and the explanation shows the inputs and thresholds
    let line = &out.lines[0];
    assert_eq!(line.amount.normalize().to_string(), "300");
    for part in [
        "71,000.07 CNY",
        "7.1 CNY per USD",
        "10,000.01 USD",
        "tier > 10,000 and ≤ 30,000 USD",
        "thresholds",
    ] {
        assert!(
            line.explanation.contains(part),
            "`{part}` missing: {}",
            line.explanation
        );
    }
    assert!(!line.explanation.contains("bmw"), "{}", line.explanation);
}

#[test]
fn a_plugin_error_reaches_the_host_as_failed() {
    // A non-USD deal without a rate: the plugin answers Err(..)
    let mut input = deal_bonus(
        deal("EUR", &[("volvo", true, "20000", "1")], json!({})),
        "1",
    );
    Arc::make_mut(&mut input).per_usd = None;
    let err = bonus_plugin()
        .bonus(&input, &Limits::default())
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Failed(m) if m.contains("EUR per USD")),
        "{err:?}"
    );
}
