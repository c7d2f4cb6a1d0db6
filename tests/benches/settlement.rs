//! Benchmark: settling one quarter of a large branch with the default bonus
//! rules in rhai, with the new-brand rule in wasm, and with a native Rust
//! implementation of the same rules (the limit), in one run.
//!
//! Run: `cargo bench -p dealflow-tests --bench settlement`
//! (`BENCH_CUSTOMERS`, default 100,000; `BENCH_DEALS_PER_CUSTOMER`, default
//! 10: one first order in Q4 2025, the rest in Q1 2026; `BENCH_CACHE_MB`,
//! the store's page cache, default 1024 as `dealflow serve`; `BENCH_ONLY`,
//! rows whose names contain it; `BENCH_STORE`, a directory to generate the
//! store into once and reuse on later runs of the same sizes).
//!
//! The data is written straight into a sled store in the server's key
//! layout (deals with their indexes, customers with their first orders),
//! then `Services::compute_period(branch, "2026-Q1", rules)` runs the
//! quarter: every deal signed in Q1 is a deal subject (new-brand bonus),
//! every customer whose 3-month window closed in Q1 a customer subject
//! (new-customer bonus, reading its orders). Each row reports the wall time,
//! deals/s and the process's peak resident memory during the row
//! (`VmHWM`, reset before each row). The last row is a real
//! `create_settlement` (the same computation plus storing the draft).

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Duration, TimeZone, Utc};
use dealflow::auth::Principal;
use dealflow::domain::branch::NewBranch;
use dealflow::domain::customer::{Customer, Segment, Source, Tier};
use dealflow::domain::deal::{Deal, Line};
use dealflow::domain::fx::NewFxRate;
use dealflow::domain::pipeline::StageKind;
use dealflow::domain::settlement::{LinePolicy, NewSettlement};
use dealflow::domain::token::{NewToken, Role};
use dealflow::incentive::inputs::DealRecord;
use dealflow::incentive::native::{self, NativeRule};
use dealflow::policy::executor::Executor;
use dealflow::policy::hooks::{BonusInput, BonusOutput};
use dealflow::policy::live::Runtime;
use dealflow::policy::{Executable, Limits};
use dealflow::service::RuleVersion;
use dealflow::store::{keys, Batch, Store};
use dealflow_tests::bench::{admin, env_num, open_store, open_store_in, peak_mib, reset_peak};
use dealflow_tests::Gen;
use rust_decimal::Decimal;

// As the `dealflow` binary.
#[global_allocator]
static ALLOCATOR: dealflow::MiMalloc = dealflow::MiMalloc;

const BRANCH: &str = "bench";
const REPS: usize = 20;
/// Brands sold long ago (never new in the quarter).
const OLD_BRANDS: u64 = 1000;
/// Brands first sold in the quarter (their first contract earns §5.1).
const NEW_BRANDS: u64 = 200;

fn deal(
    id: u64,
    customer: &str,
    owner: &str,
    signed: DateTime<Utc>,
    g: &mut Gen,
    new_brand: Option<String>,
    prepayment: Option<Decimal>,
) -> Deal {
    let currency = match g.below(10) {
        0..=6 => "CNY",
        7 | 8 => "USD",
        _ => "EUR",
    };
    let mut lines: Vec<Line> = (0..1 + g.below(3))
        .map(|_| {
            let amount = Decimal::new(100_000 + g.below(30_000_000) as i64, 2);
            let cost = amount * Decimal::new(60 + g.below(36) as i64, 2);
            Line {
                brand: format!("b{:04}", g.below(OLD_BRANDS)),
                product: "model".into(),
                amount,
                cost: cost.round_dp(2),
            }
        })
        .collect();
    if let Some(b) = &new_brand {
        lines[0].brand = b.clone();
    }
    let opened = signed - Duration::days(20);
    let mut d = Deal {
        id: format!("deal_{id:012}"),
        branch: BRANCH.into(),
        customer_id: customer.into(),
        title: "Contract".into(),
        owner: owner.into(),
        currency: currency.into(),
        needs: vec!["fleet".into()],
        prepayment_ratio: prepayment,
        opened_at: opened,
        lines,
        amount_total: Decimal::ZERO,
        cost_total: Decimal::ZERO,
        stage: "sign".into(),
        stage_entered_at: signed,
        stage_kind: StageKind::Won,
        stages_passed: vec!["lead".into(), "sign".into()],
        signed_at: Some(signed),
        lost_at: None,
        new_brands: new_brand.into_iter().collect(),
        cancelled_at: None,
        cancel_reason: None,
        attributes: Default::default(),
        created_at: opened,
        updated_at: signed,
        version: 2,
    };
    d.retotal();
    d
}

fn put_deal(batch: &mut Batch, d: &Deal) {
    let id = d.id.as_bytes();
    let t = keys::time(&d.signed_at.expect("signed"));
    batch.put(keys::key(keys::DEAL, &[&d.id]), d.to_stored());
    batch.put(keys::key(keys::IX_DEAL_BRANCH, &[BRANCH, &d.id]), id);
    batch.put(
        keys::key(keys::IX_DEAL_CUSTOMER, &[&d.customer_id, &d.id]),
        id,
    );
    batch.put(
        keys::key(keys::IX_DEAL_OWNER, &[BRANCH, &d.owner, &d.id]),
        id,
    );
    batch.put(keys::key(keys::IX_DEAL_STAGE, &[BRANCH, "sign", &d.id]), id);
    // The signing indexes carry the deal as settlements read it.
    let record = DealRecord::from(d).encode();
    batch.put(
        keys::key(keys::IX_DEAL_SIGNED, &[BRANCH, &t, &d.id]),
        record.clone(),
    );
    batch.put(
        keys::key(keys::IX_DEAL_CUSTOMER_SIGNED, &[&d.customer_id, &t, &d.id]),
        record,
    );
}

/// Writes the branch's customers and deals; returns (deals, deals in Q1).
fn generate(
    rt: &tokio::runtime::Runtime,
    store: &dyn Store,
    customers: u64,
    per: u64,
) -> (u64, u64) {
    let mut g = Gen(0xBE_0001);
    let q4 = Utc.with_ymd_and_hms(2025, 10, 1, 1, 0, 0).unwrap();
    let q1 = Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap();
    let mut next_deal = 0u64;
    let (mut total, mut in_q1) = (0u64, 0u64);
    let mut batch = Batch::new();
    let mut pending = 0;
    for c in 0..customers {
        let owner = format!("rep{:02}", c as usize % REPS);
        let cid = format!("cus_{c:012}");
        let source = match g.below(5) {
            0 | 1 => Source::SelfDeveloped,
            2 | 3 => Source::Assigned,
            _ => Source::Referral,
        };
        let segment = match g.below(4) {
            0 => Segment::Industrial,
            1 => Segment::Government,
            2 => Segment::Enterprise,
            _ => Segment::Individual,
        };
        let first_at = q4 + Duration::minutes(g.below(92 * 24 * 60) as i64);
        for k in 0..per {
            let signed = if k == 0 {
                first_at
            } else {
                q1 + Duration::minutes(g.below(89 * 24 * 60) as i64)
            };
            let new_brand = (k == 1 && c < NEW_BRANDS).then(|| format!("n{c:04}"));
            let prepayment = (k == 0).then(|| Decimal::new(30 + g.below(71) as i64, 2));
            let d = deal(
                next_deal, &cid, &owner, signed, &mut g, new_brand, prepayment,
            );
            next_deal += 1;
            total += 1;
            if k > 0 {
                in_q1 += 1;
            }
            put_deal(&mut batch, &d);
            pending += 1;
        }
        let customer = Customer {
            id: cid.clone(),
            name: format!("Customer {c}"),
            branch: BRANCH.into(),
            owner: Some(owner),
            segment,
            source,
            referred_by: None,
            tier: Tier::C,
            last_contact_at: None,
            first_order_at: Some(first_at),
            created_at: first_at - Duration::days(30),
            updated_at: first_at,
            version: 2,
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
            keys::key(
                keys::IX_CUSTOMER_FIRST_ORDER,
                &[BRANCH, &keys::time(&first_at), &cid],
            ),
            cid.as_bytes(),
        );
        if pending >= 2000 {
            rt.block_on(store.commit(std::mem::take(&mut batch)))
                .expect("bulk write");
            pending = 0;
        }
    }
    rt.block_on(store.commit(batch)).expect("bulk write");
    store.flush().expect("flush");
    (total, in_q1)
}

fn rule(name: &str, exec: Arc<dyn Executable>) -> RuleVersion {
    RuleVersion {
        policy: LinePolicy {
            name: name.into(),
            version: 1,
            sha256: String::new(),
        },
        own: false,
        exec,
    }
}

fn native(name: &str, f: fn(&BonusInput) -> Result<BonusOutput, String>) -> RuleVersion {
    rule(name, Arc::new(NativeRule(f)))
}

fn main() {
    let customers = env_num("BENCH_CUSTOMERS", 100_000);
    let per = env_num("BENCH_DEALS_PER_CUSTOMER", 10).max(2);
    // The store's page cache, as `dealflow serve --cache-mb`.
    let cache_mb = env_num("BENCH_CACHE_MB", 1024);
    // `BENCH_STORE=/some/dir`: generate into that directory once and reuse
    // it on later runs with the same sizes (generating takes minutes).
    let reuse = std::env::var_os("BENCH_STORE").map(std::path::PathBuf::from);
    let (rt, _dir, store, services) = match &reuse {
        Some(path) => {
            let (rt, store, services) = open_store_in(path, cache_mb);
            (rt, None, store, services)
        }
        None => {
            let (rt, dir, store, services) = open_store(cache_mb);
            (rt, Some(dir), store, services)
        }
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let marker = reuse.as_ref().map(|p| p.join("bench-generated"));
    let sizes = format!("{customers} {per}");
    let stored = marker
        .as_ref()
        .and_then(|m| std::fs::read_to_string(m).ok())
        .and_then(|s| {
            let (size, counts) = s.trim().split_once(';')?;
            let (deals, in_q1) = counts.split_once(' ')?;
            (size == sizes).then(|| (deals.parse().ok(), in_q1.parse().ok()))
        });
    let (deals, in_q1) = match stored {
        Some((Some(deals), Some(in_q1))) => {
            eprintln!(
                "settlement bench: reusing the store in {:?}",
                reuse.unwrap()
            );
            (deals, in_q1)
        }
        _ => {
            let (deals, in_q1) = setup(&rt, store.as_ref(), &services, customers, per, cores);
            if let Some(m) = &marker {
                std::fs::write(m, format!("{sizes};{deals} {in_q1}")).expect("marker");
            }
            (deals, in_q1)
        }
    };
    run(&rt, &services, customers, deals, in_q1, cores, cache_mb);
}

/// Creates the branch, its rates and a manager's token, and writes the
/// branch's customers and deals; returns (deals, deals in Q1).
fn setup(
    rt: &tokio::runtime::Runtime,
    store: &dyn Store,
    services: &dealflow::Services,
    customers: u64,
    per: u64,
    cores: usize,
) -> (u64, u64) {
    rt.block_on(async {
        services.init_policies().await.expect("defaults");
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
            .expect("branch");
        for (currency, rate) in [("CNY", "7.1"), ("EUR", "0.92")] {
            services
                .create_fx_rate(
                    &admin(),
                    NewFxRate {
                        currency: currency.into(),
                        date: "2025-01-01".parse().unwrap(),
                        per_usd: rate.parse().unwrap(),
                    },
                )
                .await
                .expect("rate");
        }
        services
            .issue_token(
                &admin(),
                NewToken {
                    role: Role::Manager,
                    branch: Some(BRANCH.into()),
                    user: "boss".into(),
                    expires_at: None,
                },
            )
            .await
            .expect("token");
    });
    eprintln!("settlement bench: {customers} customers × {per} deals, {cores} cores; generating…");
    let started = Instant::now();
    let (deals, in_q1) = generate(rt, store, customers, per);
    eprintln!(
        "generated {deals} deals ({in_q1} signed in 2026-Q1) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (deals, in_q1)
}

/// Settles the quarter with each set of rules, then once for real.
fn run(
    rt: &tokio::runtime::Runtime,
    services: &dealflow::Services,
    customers: u64,
    deals: u64,
    in_q1: u64,
    cores: usize,
    cache_mb: u64,
) {
    let ex = Executor::new(Limits::default(), 2).expect("engines");
    let read = |p: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(p),
        )
        .unwrap()
    };
    let rhai = |p: &str| ex.compile(Runtime::Rhai, &read(p)).expect("compile");
    let nb_rhai = rhai("policies/new-brand-bonus.rhai");
    let nc_rhai = rhai("policies/new-customer-bonus.rhai");
    let nn_rhai = rhai("policies/no-new-customer.rhai");
    let nb_wasm = ex
        .compile(Runtime::Wasm, &read("policies/new-brand-bonus.wasm"))
        .expect("compile wasm");

    type Rows = Vec<(&'static str, Box<dyn Fn() -> Vec<RuleVersion>>)>;
    let (a, b, c, w) = (
        nb_rhai.clone(),
        nc_rhai.clone(),
        nn_rhai.clone(),
        nb_wasm.clone(),
    );
    let (a2, w2) = (nb_rhai.clone(), nb_wasm.clone());
    let (b2, c2) = (nc_rhai.clone(), nn_rhai.clone());
    let rows: Rows = vec![
        (
            "quarter, native Rust rules (limit)",
            Box::new(|| {
                vec![
                    native("new-brand-bonus", native::new_brand_sale),
                    native("new-customer-bonus", native::new_customer),
                    native("no-new-customer", native::no_new_customer),
                ]
            }),
        ),
        (
            "quarter, rhai rules (the defaults)",
            Box::new(move || {
                vec![
                    rule("new-brand-bonus", a.clone()),
                    rule("new-customer-bonus", b.clone()),
                    rule("no-new-customer", c.clone()),
                ]
            }),
        ),
        (
            "quarter, wasm new-brand rule + rhai customer rules",
            Box::new(move || {
                vec![
                    rule("new-brand-bonus", w.clone()),
                    rule("new-customer-bonus", b2.clone()),
                    rule("no-new-customer", c2.clone()),
                ]
            }),
        ),
        (
            "new-brand rule only, native Rust (limit)",
            Box::new(|| vec![native("new-brand-bonus", native::new_brand_sale)]),
        ),
        (
            "new-brand rule only, rhai",
            Box::new(move || vec![rule("new-brand-bonus", a2.clone())]),
        ),
        (
            "new-brand rule only, wasm",
            Box::new(move || vec![rule("new-brand-bonus", w2.clone())]),
        ),
    ];

    println!();
    println!("{customers} customers, {deals} signed deals ({in_q1} in the quarter); quarter 2026-Q1 of branch `{BRANCH}` (Asia/Shanghai); {cores} cores; store cache {cache_mb} MiB");
    println!();
    println!("| run | seconds | deals/s | lines | paid CNY | peak RSS MiB |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut results = Vec::new();
    // `BENCH_ONLY=quarter`: only the rows whose names contain it.
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    for (name, rules) in rows.iter().filter(|(n, _)| n.contains(only.as_str())) {
        reset_peak();
        let t = Instant::now();
        let lines = services
            .compute_period(BRANCH, "2026-Q1", Some(rules()))
            .expect("settle");
        let secs = t.elapsed().as_secs_f64();
        let paid: Decimal = lines.iter().map(|l| l.amount).sum();
        println!(
            "| {name} | {secs:.2} | {:.0} | {} | {} | {:.0} |",
            in_q1 as f64 / secs,
            lines.len(),
            paid.normalize(),
            peak_mib()
        );
        results.push((name, secs, paid));
    }
    // The real thing: a draft through the service with the stored defaults.
    reset_peak();
    let manager = Principal {
        role: Role::Manager,
        branch: Some(BRANCH.into()),
        user: "boss".into(),
    };
    let t = Instant::now();
    let draft = rt
        .block_on(services.create_settlement(
            &manager,
            NewSettlement {
                branch: BRANCH.into(),
                period: "2026-Q1".into(),
            },
        ))
        .expect("create settlement");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "| create_settlement (stored defaults, draft written) | {secs:.2} | {:.0} | {} | {} | {:.0} |",
        in_q1 as f64 / secs,
        draft.lines.len(),
        draft.total,
        peak_mib()
    );
    println!();
    if results.len() < rows.len() {
        return;
    }
    let secs_of = |n: &str| results.iter().find(|r| *r.0 == n).map(|r| r.1).unwrap();
    let paid_of = |n: &str| results.iter().find(|r| *r.0 == n).map(|r| r.2).unwrap();
    let native_q = secs_of("quarter, native Rust rules (limit)");
    let wasm_q = secs_of("quarter, wasm new-brand rule + rhai customer rules");
    let rhai_q = secs_of("quarter, rhai rules (the defaults)");
    let native_nb = secs_of("new-brand rule only, native Rust (limit)");
    let wasm_nb = secs_of("new-brand rule only, wasm");
    println!(
        "whole quarter: rhai {rhai_q:.2} s, wasm {wasm_q:.2} s (target ≤ 10 s each); native {native_q:.2} s"
    );
    println!(
        "wasm against native: new-brand rule only {:.2}×, whole quarter {:.2}× (target ≤ 3×)",
        wasm_nb / native_nb,
        wasm_q / native_q
    );
    let agree = paid_of("quarter, native Rust rules (limit)")
        == paid_of("quarter, rhai rules (the defaults)")
        && paid_of("quarter, rhai rules (the defaults)")
            == paid_of("quarter, wasm new-brand rule + rhai customer rules");
    println!("all runtimes pay the same total: {agree}");
}
