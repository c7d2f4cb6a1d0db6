//! Per-call cost of a policy hook, measured in one run with native Rust as
//! the limit: the default quote-late guard as a rhai script and natively,
//! and the large-deal guard as a WebAssembly component (a fresh Store and
//! instance per call, from the cached pre-instance) and natively.
//!
//! Run: `cargo bench -p dealflow-tests --bench policy_calls`
//! (`BENCH_CALLS` sets the number of calls per case, default 20000;
//! `BENCH_RHAI_GUARD=path.rhai` adds a row for your own rhai guard).

use std::hint::black_box;
use std::time::Instant;

use dealflow::policy::hooks::{
    ActorInfo, BranchInfo, CustomerInfo, DealInfo, GuardVerdict, LineInfo, RecordInfo,
    TransitionInput,
};
use dealflow::policy::rhai::RhaiHost;
use dealflow::policy::wasm::WasmHost;
use dealflow::policy::{Limits, PolicyCalls};
use rust_decimal::Decimal;

// As the `dealflow` binary.
#[global_allocator]
static ALLOCATOR: dealflow::MiMalloc = dealflow::MiMalloc;

fn input(to: &str, to_kind: &str) -> TransitionInput {
    let line = |brand: &str, amount: i64| LineInfo {
        brand: brand.into(),
        brand_new: true,
        product: "XC90".into(),
        amount: Decimal::from(amount),
        cost: Decimal::from(amount * 8 / 10),
    };
    TransitionInput {
        branch: BranchInfo {
            id: "sh".into(),
            timezone: "Asia/Shanghai".into(),
        },
        deal: DealInfo {
            id: "deal_000000000001".into(),
            title: "Fleet of 3".into(),
            owner: "li".into(),
            currency: "CNY".into(),
            needs: vec!["3 SUVs for field crews".into()],
            prepayment_ratio: None,
            opened_at: "2026-03-01T08:00:00.000Z".into(),
            stage: "visit".into(),
            stages_passed: vec!["lead".into(), "qualify".into(), "visit".into()],
            signed_at: None,
            lines: vec![
                line("volvo", 600_000),
                line("volvo", 700_000),
                line("byd", 300_000),
            ],
            amount_total: Decimal::from(1_600_000),
            cost_total: Decimal::from(1_280_000),
            attributes: Default::default(),
        },
        customer: CustomerInfo {
            id: "cus_000000000001".into(),
            name: "Daqing Oilfield".into(),
            segment: "industrial".into(),
            source: "referral".into(),
            tier: "A".into(),
            owner: Some("li".into()),
            referred_by: None,
            last_contact_at: Some("2026-03-05T08:00:00.000Z".into()),
        },
        records: (1..=5)
            .map(|d| RecordInfo {
                at: format!("2026-03-0{d}T08:00:00.000Z"),
                by: "li".into(),
                kind: "visit".into(),
                summary: "met the fleet manager".into(),
                has_problems: false,
            })
            .collect(),
        from: "visit".into(),
        to: to.into(),
        to_kind: to_kind.into(),
        at: "2026-03-06T08:00:00.000Z".into(),
        actor: ActorInfo {
            user: "li".into(),
            role: "rep".into(),
        },
    }
}

/// The quote-late rule in plain Rust (the limit).
fn native_quote_late(i: &TransitionInput) -> GuardVerdict {
    if i.to != "quote" {
        return GuardVerdict {
            allow: true,
            ..Default::default()
        };
    }
    let mut missing = Vec::new();
    if !i.deal.stages_passed.iter().any(|s| s == "qualify") {
        missing.push("the deal must pass `qualify` first".to_string());
    }
    if i.deal.needs.is_empty() {
        missing.push("record the customer's needs".to_string());
    }
    if i.customer
        .last_contact_at
        .as_ref()
        .is_none_or(|last| *last < i.deal.opened_at)
    {
        missing.push("log a communication record".to_string());
    }
    GuardVerdict {
        allow: missing.is_empty(),
        reason: (!missing.is_empty()).then(|| format!("quote late: {}", missing[0])),
        missing,
    }
}

/// The large-deal rule in plain Rust (the limit).
fn native_large_deal(i: &TransitionInput) -> GuardVerdict {
    let approved = i
        .deal
        .attributes
        .get("manager_approved")
        .map(String::as_str)
        == Some("yes");
    let allow = i.to_kind != "won" || i.deal.amount_total <= Decimal::from(1_000_000) || approved;
    GuardVerdict {
        allow,
        reason: (!allow).then(|| format!("deal {} over the threshold", i.deal.id)),
        missing: Vec::new(),
    }
}

/// p50 and p99 of `calls` timed calls, in microseconds.
fn measure(calls: usize, mut f: impl FnMut() -> bool) -> (f64, f64, f64) {
    for _ in 0..calls / 10 {
        black_box(f());
    }
    let mut ns: Vec<u64> = Vec::with_capacity(calls);
    let start = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        black_box(f());
        ns.push(t.elapsed().as_nanos() as u64);
    }
    let total = start.elapsed().as_secs_f64();
    ns.sort_unstable();
    let q = |p: f64| ns[((ns.len() as f64 * p) as usize).min(ns.len() - 1)] as f64 / 1000.0;
    (q(0.50), q(0.99), calls as f64 / total)
}

fn main() {
    let calls: usize = std::env::var("BENCH_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let limits = Limits::default();
    let rhai = RhaiHost::new(limits.clone())
        .compile(include_str!("../../policies/quote-late.rhai"))
        .expect("quote-late compiles");
    let wasm_host = WasmHost::new(&limits).expect("wasm host");
    let wasm = wasm_host
        .compile(
            &std::fs::read(dealflow_tests::PLUGIN_LARGE_DEAL_GUARD).expect("plugin built"),
            &limits,
        )
        .expect("large-deal-guard compiles");
    // The large-deal rule of the wasm plugin, as a rhai script: the same
    // rule in both runtimes.
    let rhai_large_deal = RhaiHost::new(limits.clone())
        .compile(
            r#"fn guard(input) {
                if input.to_kind != "won" { return #{ allow: true }; }
                let deal = input.deal;
                if deal.amount_total <= 1000000 || deal.attributes.get("manager_approved") == "yes" {
                    return #{ allow: true };
                }
                #{ allow: false, reason: `deal ${deal.id} over the threshold`, missing: ["manager_approved"] }
            }"#,
        )
        .expect("the rhai large-deal guard compiles");
    let trivial = RhaiHost::new(limits.clone())
        .compile("fn guard(i) { #{ allow: true } }")
        .expect("trivial guard compiles");
    let quote = std::sync::Arc::new(input("quote", "open"));
    let sign = std::sync::Arc::new(input("sign", "won"));

    // Same answers first: the benchmark compares equal work.
    assert_eq!(
        rhai.guard(&quote, &limits).unwrap().allow,
        native_quote_late(&quote).allow
    );
    assert_eq!(
        wasm.guard(&sign, &limits).unwrap().allow,
        native_large_deal(&sign).allow
    );
    assert_eq!(
        rhai_large_deal.guard(&sign, &limits).unwrap().allow,
        native_large_deal(&sign).allow
    );

    let rows = [
        (
            "quote-late guard, native Rust (limit)",
            measure(calls, || native_quote_late(&quote).allow),
        ),
        (
            "quote-late guard, rhai (cached AST)",
            measure(calls, || rhai.guard(&quote, &limits).unwrap().allow),
        ),
        (
            "breakdown: a rhai guard answering allow at once",
            measure(calls, || trivial.guard(&quote, &limits).unwrap().allow),
        ),
        (
            "large-deal guard, native Rust (limit)",
            measure(calls, || native_large_deal(&sign).allow),
        ),
        (
            "large-deal guard, rhai (cached AST)",
            measure(calls, || rhai_large_deal.guard(&sign, &limits).is_ok()),
        ),
        (
            "large-deal guard, wasm (fresh instance per call)",
            measure(calls, || wasm.guard(&sign, &limits).unwrap().allow),
        ),
    ];
    let mut rows = rows.to_vec();
    if let Ok(path) = std::env::var("BENCH_RHAI_GUARD") {
        let own = RhaiHost::new(limits.clone())
            .compile(&std::fs::read_to_string(&path).expect("BENCH_RHAI_GUARD file"))
            .expect("BENCH_RHAI_GUARD compiles");
        rows.push((
            "your guard (BENCH_RHAI_GUARD), rhai",
            measure(calls, || own.guard(&quote, &limits).is_ok()),
        ));
    }
    println!("\n## Per-call cost of a guard ({calls} calls each, one run)\n");
    println!("| case | p50 µs | p99 µs | calls/s |");
    println!("|---|---:|---:|---:|");
    for (name, (p50, p99, rate)) in rows {
        println!("| {name} | {p50:.2} | {p99:.2} | {rate:.0} |");
    }
    println!("\nTargets: rhai guard p50 ≤ 5 µs; wasm guard p50 ≤ 20 µs including instantiation.");
}
