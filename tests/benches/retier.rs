//! Benchmark: re-tiering one branch of 100,000 customers with 1,000,000
//! signed deals over the trailing 12 months, with the default rhai policy
//! (`pareto-tiering`) and with a native Rust implementation of the same rule
//! (the limit), in one run.
//!
//! Run: `cargo bench -p dealflow-tests --bench retier`
//! (`BENCH_CUSTOMERS`, default 100,000; `BENCH_DEALS_PER_CUSTOMER`, default
//! 10; `BENCH_CACHE_MB`, the store's page cache, default 1024 as
//! `dealflow serve`).
//!
//! The data is written straight into a sled store in the server's key
//! layout (deals with their indexes, customers with their tier index, every
//! customer in tier C). Rows:
//! - `compute_tiers` with each runtime: reading every customer and the
//!   branch's signed revenue, one tier call over the whole branch, the diff
//!   (nothing written);
//! - a real `retier` with the live default policy, first from all-C (it
//!   writes every change with its history entry), then again (nothing
//!   changes: the steady state after a signing).

use std::sync::Arc;
use std::time::Instant;

use chrono::{Duration, Utc};
use dealflow::accounts::pareto::NativeTiering;
use dealflow::domain::branch::{Branch, NewBranch};
use dealflow::domain::customer::{Customer, Segment, Source, Tier};
use dealflow::domain::deal::{Deal, Line};
use dealflow::domain::fx::NewFxRate;
use dealflow::domain::pipeline::StageKind;
use dealflow::incentive::inputs::DealRecord;
use dealflow::policy::executor::Executor;
use dealflow::policy::live::Runtime;
use dealflow::policy::{Executable, Limits};
use dealflow::store::{keys, Batch, Store};
use dealflow_tests::bench::{admin, env_num, open_store, peak_mib, reset_peak};
use dealflow_tests::Gen;
use rust_decimal::Decimal;

// As the `dealflow` binary.
#[global_allocator]
static ALLOCATOR: dealflow::MiMalloc = dealflow::MiMalloc;

const BRANCH: &str = "bench";
const REPS: usize = 20;

/// Writes the branch's customers and signed deals; returns the deal count.
fn generate(rt: &tokio::runtime::Runtime, store: &dyn Store, customers: u64, per: u64) -> u64 {
    let mut g = Gen(0x7E_0001);
    let now = Utc::now();
    let mut batch = Batch::new();
    let mut deals = 0u64;
    for c in 0..customers {
        let owner = format!("rep{:02}", c as usize % REPS);
        let cid = format!("cus_{c:012}");
        // A heavy tail: a few customers buy far more (the 80/20 of §1).
        let scale = 1 + g.below(10) * g.below(10) * g.below(10);
        for _ in 0..per {
            let signed = now - Duration::minutes(1 + g.below(360 * 24 * 60) as i64);
            let amount = Decimal::new((10_000 + g.below(1_000_000)) as i64 * scale as i64, 2);
            let currency = if g.chance(20) { "USD" } else { "CNY" };
            let mut d = Deal {
                id: format!("deal_{deals:012}"),
                branch: BRANCH.into(),
                customer_id: cid.clone(),
                title: "Contract".into(),
                owner: owner.clone(),
                currency: currency.into(),
                needs: vec!["fleet".into()],
                prepayment_ratio: None,
                opened_at: signed - Duration::days(20),
                lines: vec![Line {
                    brand: format!("b{:03}", g.below(500)),
                    product: "model".into(),
                    amount,
                    cost: (amount * Decimal::new(80, 2)).round_dp(2),
                }],
                amount_total: Decimal::ZERO,
                cost_total: Decimal::ZERO,
                stage: "sign".into(),
                stage_entered_at: signed,
                stage_kind: StageKind::Won,
                stages_passed: vec!["lead".into(), "sign".into()],
                signed_at: Some(signed),
                lost_at: None,
                new_brands: Vec::new(),
                cancelled_at: None,
                cancel_reason: None,
                attributes: Default::default(),
                created_at: signed - Duration::days(20),
                updated_at: signed,
                version: 2,
            };
            d.retotal();
            let id = d.id.as_bytes();
            let t = keys::time(&signed);
            let record = DealRecord::from(&d).encode();
            batch.put(keys::key(keys::DEAL, &[&d.id]), d.to_stored());
            batch.put(keys::key(keys::IX_DEAL_BRANCH, &[BRANCH, &d.id]), id);
            batch.put(keys::key(keys::IX_DEAL_CUSTOMER, &[&cid, &d.id]), id);
            batch.put(keys::key(keys::IX_DEAL_OWNER, &[BRANCH, &owner, &d.id]), id);
            batch.put(keys::key(keys::IX_DEAL_STAGE, &[BRANCH, "sign", &d.id]), id);
            batch.put(
                keys::key(keys::IX_DEAL_SIGNED, &[BRANCH, &t, &d.id]),
                record.clone(),
            );
            batch.put(
                keys::key(keys::IX_DEAL_CUSTOMER_SIGNED, &[&cid, &t, &d.id]),
                record,
            );
            deals += 1;
        }
        let created = now - Duration::days(400);
        let customer = Customer {
            id: cid.clone(),
            name: format!("Customer {c}"),
            branch: BRANCH.into(),
            owner: Some(owner.clone()),
            segment: Segment::Enterprise,
            source: Source::Assigned,
            referred_by: None,
            tier: Tier::C,
            last_contact_at: None,
            first_order_at: None,
            created_at: created,
            updated_at: created,
            version: 1,
        };
        batch.put(
            keys::key(keys::CUSTOMER, &[&cid]),
            serde_json::to_vec(&customer).unwrap(),
        );
        batch.put(
            keys::key(keys::IX_CUSTOMER_BRANCH, &[BRANCH, &cid]),
            cid.as_bytes(),
        );
        batch.put(
            keys::key(keys::IX_CUSTOMER_OWNER, &[BRANCH, &owner, &cid]),
            cid.as_bytes(),
        );
        batch.put(
            keys::key(keys::IX_CUSTOMER_TIER, &[BRANCH, "C", &cid]),
            owner.as_bytes(),
        );
        if c % 200 == 199 {
            rt.block_on(store.commit(std::mem::take(&mut batch)))
                .expect("bulk write");
        }
    }
    rt.block_on(store.commit(batch)).expect("bulk write");
    store.flush().expect("flush");
    deals
}

fn main() {
    let customers = env_num("BENCH_CUSTOMERS", 100_000);
    let per = env_num("BENCH_DEALS_PER_CUSTOMER", 10).max(1);
    let cache_mb = env_num("BENCH_CACHE_MB", 1024);
    let (rt, _dir, store, services) = open_store(cache_mb);
    let branch: Branch = rt.block_on(async {
        services.init_policies().await.expect("defaults");
        services
            .create_fx_rate(
                &admin(),
                NewFxRate {
                    currency: "CNY".into(),
                    date: "2020-01-01".parse().unwrap(),
                    per_usd: "7.1".parse().unwrap(),
                },
            )
            .await
            .expect("rate");
        services
            .create_branch(
                &admin(),
                NewBranch {
                    id: BRANCH.into(),
                    name: "Bench".into(),
                    timezone: Some("Asia/Shanghai".into()),
                },
            )
            .await
            .expect("branch")
    });
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!("retier bench: {customers} customers × {per} deals, {cores} cores; generating…");
    let started = Instant::now();
    let deals = generate(&rt, store.as_ref(), customers, per);
    eprintln!(
        "generated {deals} deals in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let ex = Executor::new(Limits::default(), 2).expect("engines");
    let script = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../policies/pareto-tiering.rhai"),
    )
    .unwrap();
    let pareto_rhai = ex.compile(Runtime::Rhai, &script).expect("compile");
    let native: Arc<dyn Executable> = Arc::new(NativeTiering);

    println!();
    println!("{customers} customers, {deals} signed deals in the trailing 12 months; branch `{BRANCH}` (Asia/Shanghai); {cores} cores; store cache {cache_mb} MiB");
    println!();
    println!("| run | seconds | customers/s | changes | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|");
    let row = |name: &str, secs: f64, changes: &[dealflow::service::TierChange]| {
        println!(
            "| {name} | {secs:.2} | {:.0} | {} | {:.0} |",
            customers as f64 / secs,
            changes.len(),
            peak_mib()
        );
    };
    let mut computed = Vec::new();
    for (name, exec) in [
        ("compute tiers, native Rust (limit)", &native),
        ("compute tiers, rhai pareto-tiering (default)", &pareto_rhai),
    ] {
        reset_peak();
        let t = Instant::now();
        // On a blocking-pool thread, as the server runs it (the same rhai
        // call measured 3× slower on the process's main thread).
        let (svc, b, e, l) = (
            services.clone(),
            branch.clone(),
            Arc::clone(exec),
            ex.limits.clone(),
        );
        let report = rt
            .block_on(async {
                tokio::task::spawn_blocking(move || {
                    svc.compute_tiers(&b, Utc::now(), e.as_ref(), &l)
                })
                .await
            })
            .unwrap()
            .expect("tiers");
        row(name, t.elapsed().as_secs_f64(), &report.changes);
        computed.push(report.changes);
    }
    assert_eq!(
        computed[0]
            .iter()
            .map(|c| (&c.customer_id, c.to))
            .collect::<Vec<_>>(),
        computed[1]
            .iter()
            .map(|c| (&c.customer_id, c.to))
            .collect::<Vec<_>>(),
        "the native rule and the script must agree"
    );
    let count = |t: Tier| computed[1].iter().filter(|c| c.to == t).count();
    let (a, b) = (count(Tier::A), count(Tier::B));
    for name in [
        "retier, rhai default, from all C (writes every change)",
        "retier, rhai default, again (nothing changes)",
    ] {
        reset_peak();
        let t = Instant::now();
        let report = rt
            .block_on(services.retier(&branch, "bench", "retier", Utc::now()))
            .expect("retier");
        row(name, t.elapsed().as_secs_f64(), &report.changes);
    }
    println!();
    println!(
        "tiers: A {a}, B {b}, C {} (from all C)",
        customers as usize - a - b
    );
}
