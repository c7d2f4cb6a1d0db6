//! Benchmark (issue 17): a rep's day on one big branch, against the real
//! server over loopback HTTP.
//!
//! Run: `cargo bench -p dealflow-tests --bench rep_day` (`BENCH_CUSTOMERS`,
//! default 100,000; `BENCH_DEALS_PER_CUSTOMER`, default 1; `BENCH_RUNS`
//! requests per row, default 200; `BENCH_CACHE_MB`, default 1024 as
//! `dealflow serve`; `BENCH_DIR`, where the store goes, default a temporary
//! directory, deleted at the end).
//!
//! The branch is written straight into a sled store in the layout of
//! schema 6 (the server before maintained indexes): 40 reps owning the
//! customers round-robin, a tenth of them referred by an earlier customer,
//! three in ten contacted in the last 120 days (`last_contact_at`; the
//! records themselves are not written), per customer its deals (one in five
//! signed over the trailing 12 months, three in ten open, the rest lost),
//! two open follow-up tasks per signed deal due within ±60 days. The real
//! server (`server::open`, `server::run` on `127.0.0.1:0`, its own
//! two-worker runtime) then opens it: the upgrade to schema 7 builds the
//! counters and indexes, the background workers the due index (one cadence
//! call per customer) and the revenue roll-ups; both are timed.
//!
//! Rows (sequential requests from one keep-alive connection, p50/p99/max):
//! follow-ups of one rep and of the branch (limit 50), the team report, a
//! page of the referral report (limit 50; its first and its third page),
//! fair assignment (a customer created without owner), a single read;
//! then the same while 8 connections write communication records as fast
//! as they can; the straightforward computations the indexes replaced
//! (the server's oracles, in-process on the same store: "before"); a
//! re-tier with follow-ups read during it; the first follow-ups and team
//! report after a restart.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use clap::Parser as _;
use dealflow::cli::{Cli, Command};
use dealflow::config::ServeArgs;
use dealflow::domain::branch::NewBranch;
use dealflow::domain::customer::{Customer, Segment, Source, Tier};
use dealflow::domain::deal::{Deal, Line};
use dealflow::domain::fx::NewFxRate;
use dealflow::domain::pipeline::StageKind;
use dealflow::domain::task::{Task, TaskStatus};
use dealflow::incentive::inputs::DealRecord;
use dealflow::store::{keys, Batch, Store};
use dealflow::Services;
use dealflow_tests::bench::{admin, env_num, Conn};
use dealflow_tests::Gen;
use hyper::Method;
use rust_decimal::Decimal;
use serde_json::json;

// As the `dealflow` binary.
#[global_allocator]
static ALLOCATOR: dealflow::MiMalloc = dealflow::MiMalloc;

const TOKEN: &str = "rep-day-admin-token-0123456789";
const BRANCH: &str = "big";
const REPS: usize = 40;
/// Connections writing records in the loaded rows.
const WRITERS: usize = 8;

/// Writes the branch in schema 6's layout; returns (deals, signed, tasks).
/// Ids carry `_bench_` so that none is one the server's id generator
/// issues later (a customer created in the run).
fn generate(
    rt: &tokio::runtime::Runtime,
    store: &dyn Store,
    customers: u64,
    per: u64,
) -> (u64, u64, u64) {
    let mut g = Gen(0x17_0017);
    let now = Utc::now();
    let mut batch = Batch::new();
    let (mut deals, mut signed_deals, mut tasks) = (0u64, 0u64, 0u64);
    for c in 0..customers {
        let owner = format!("rep{:02}", c as usize % REPS);
        let cid = format!("cus_bench_{c:07}");
        let scale = 1 + g.below(10) * g.below(10) * g.below(10);
        for _ in 0..per {
            let kind = g.below(10);
            let (stage, stage_kind) = match kind {
                0 | 1 => ("sign", StageKind::Won),
                2..=4 => ("lead", StageKind::Open),
                _ => ("lost", StageKind::Lost),
            };
            let at = now - Duration::minutes(1 + g.below(360 * 24 * 60) as i64);
            let amount = Decimal::new((10_000 + g.below(1_000_000)) as i64 * scale as i64, 2);
            let mut d = Deal {
                id: format!("deal_bench_{deals:07}"),
                branch: BRANCH.into(),
                customer_id: cid.clone(),
                title: "Contract".into(),
                owner: owner.clone(),
                currency: if g.chance(20) { "USD" } else { "CNY" }.into(),
                needs: vec!["fleet".into()],
                prepayment_ratio: None,
                opened_at: at - Duration::days(20),
                lines: vec![Line {
                    brand: format!("b{:03}", g.below(500)),
                    product: "model".into(),
                    amount,
                    cost: (amount * Decimal::new(80, 2)).round_dp(2),
                }],
                amount_total: Decimal::ZERO,
                cost_total: Decimal::ZERO,
                stage: stage.into(),
                stage_entered_at: at,
                stage_kind,
                stages_passed: vec!["lead".into(), stage.into()],
                signed_at: (stage_kind == StageKind::Won).then_some(at),
                lost_at: (stage_kind == StageKind::Lost).then_some(at),
                new_brands: Vec::new(),
                cancelled_at: None,
                cancel_reason: None,
                attributes: Default::default(),
                created_at: at - Duration::days(20),
                updated_at: at,
                version: 2,
            };
            d.retotal();
            let id = d.id.as_bytes();
            batch.put(keys::key(keys::DEAL, &[&d.id]), d.to_stored());
            batch.put(keys::key(keys::IX_DEAL_BRANCH, &[BRANCH, &d.id]), id);
            batch.put(keys::key(keys::IX_DEAL_CUSTOMER, &[&cid, &d.id]), id);
            batch.put(keys::key(keys::IX_DEAL_OWNER, &[BRANCH, &owner, &d.id]), id);
            batch.put(keys::key(keys::IX_DEAL_STAGE, &[BRANCH, stage, &d.id]), id);
            match stage_kind {
                StageKind::Won => {
                    let t = keys::time(&at);
                    let record = DealRecord::from(&d).encode();
                    batch.put(
                        keys::key(keys::IX_DEAL_SIGNED, &[BRANCH, &t, &d.id]),
                        record.clone(),
                    );
                    batch.put(
                        keys::key(keys::IX_DEAL_CUSTOMER_SIGNED, &[&cid, &t, &d.id]),
                        record,
                    );
                    for k in 0..2 {
                        let task = Task {
                            id: format!("task_bench_{tasks:07}"),
                            branch: BRANCH.into(),
                            customer_id: cid.clone(),
                            deal_id: Some(d.id.clone()),
                            title: format!("Follow-up {k}"),
                            kind: Some("thank_you_visit".into()),
                            assignee: owner.clone(),
                            due_at: now + Duration::minutes(g.below(120 * 24 * 60) as i64)
                                - Duration::days(60),
                            status: TaskStatus::Open,
                            note: None,
                            created_by_policy: Some("after-sign@1".into()),
                            closed_by: None,
                            closed_at: None,
                            created_at: at,
                            version: 1,
                        };
                        let tid = task.id.as_bytes();
                        batch.put(
                            keys::key(keys::TASK, &[&task.id]),
                            serde_json::to_vec(&task).unwrap(),
                        );
                        batch.put(keys::key(keys::IX_TASK_BRANCH, &[BRANCH, &task.id]), tid);
                        batch.put(keys::key(keys::IX_TASK_OPEN, &[BRANCH, &task.id]), tid);
                        batch.put(keys::key(keys::IX_TASK_DEAL, &[&d.id, &task.id]), tid);
                        tasks += 1;
                    }
                    signed_deals += 1;
                }
                StageKind::Open => {
                    batch.put(keys::key(keys::IX_DEAL_OPEN, &[BRANCH, &owner, &d.id]), id);
                }
                StageKind::Lost => {}
            }
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
            referred_by: (c > 0 && g.chance(10)).then(|| format!("cus_bench_{:07}", g.below(c))),
            tier: Tier::C,
            last_contact_at: g
                .chance(30)
                .then(|| now - Duration::minutes(g.below(120 * 24 * 60) as i64)),
            first_order_at: None,
            created_at: created,
            updated_at: created,
            version: 1,
        };
        batch.put(
            keys::key(keys::CUSTOMER, &[&cid]),
            serde_json::to_vec(&customer).unwrap(),
        );
        for (tag, parts) in [
            (keys::IX_CUSTOMER_BRANCH, vec![BRANCH, &cid]),
            (keys::IX_CUSTOMER_OWNER, vec![BRANCH, &owner, &cid]),
        ] {
            batch.put(keys::key(tag, &parts), cid.as_bytes());
        }
        batch.put(
            keys::key(keys::IX_CUSTOMER_TIER, &[BRANCH, "C", &cid]),
            owner.as_bytes(),
        );
        if c % 200 == 199 {
            rt.block_on(store.commit(std::mem::take(&mut batch)))
                .expect("bulk write");
        }
    }
    batch.put(keys::key(keys::META, &["schema"]), b"6".to_vec());
    rt.block_on(store.commit(batch)).expect("bulk write");
    store.flush().expect("flush");
    (deals, signed_deals, tasks)
}

/// p50, p99 and max of latencies in µs, as ms.
fn stats(mut lat: Vec<u64>) -> (f64, f64, f64) {
    lat.sort_unstable();
    let at = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    (at(0.5), at(0.99), at(1.0))
}

fn row(name: &str, lat: Vec<u64>, extra: &str) {
    let n = lat.len();
    let (p50, p99, max) = stats(lat);
    println!("| {name} | {n} | {p50:.2} | {p99:.2} | {max:.2} | {extra} |");
}

/// The server on its own runtime; stopped by `stop`.
struct Running {
    addr: SocketAddr,
    services: Services,
    stop: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
}

fn start(rt: &tokio::runtime::Runtime, args: &ServeArgs) -> Running {
    rt.block_on(async {
        // sled lets go of the previous handle's lock from its own threads.
        let mut tries = 0;
        let services = loop {
            match dealflow::server::open(args).await {
                Ok(s) => break s,
                Err(e) if tries < 200 => {
                    tries += 1;
                    if tries == 1 {
                        eprintln!("opening again ({e})");
                    }
                    tokio::time::sleep(StdDuration::from_millis(50)).await;
                }
                Err(e) => panic!("open the server: {e}"),
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = services.clone();
        let served = tokio::spawn(async move {
            dealflow::server::run(listener, serving.clone(), async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
            serving.flush().expect("flush");
        });
        Running {
            addr,
            services,
            stop,
            served,
        }
    })
}

fn stop(rt: &tokio::runtime::Runtime, running: Running) {
    let _ = running.stop.send(());
    rt.block_on(running.served).expect("stopped");
    drop(running.services);
}

/// `runs` sequential GETs of `path`; their latencies in µs.
async fn gets(conn: &mut Conn, path: &str, runs: usize) -> Vec<u64> {
    let mut lat = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let (s, v) = conn.call(Method::GET, path, None, None).await.expect("get");
        assert!(s.is_success(), "{path}: {s} {v}");
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat
}

/// `runs` customers created without an owner (fair assignment).
async fn assignments(conn: &mut Conn, runs: usize) -> Vec<u64> {
    let body =
        json!({"name": "Walk-in", "branch": BRANCH, "segment": "enterprise", "source": "assigned"});
    let mut lat = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        let (s, v) = conn
            .call(Method::POST, "/v1/customers", Some(&body), None)
            .await
            .expect("post");
        assert!(s.is_success(), "assignment: {s} {v}");
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat
}

/// The measured rows, as one table section.
async fn measure(addr: SocketAddr, manager: &str, customers: u64, runs: usize, label: &str) {
    let mut conn = Conn::open(addr, manager).await.expect("connect");
    let rep_path = format!("/v1/followups?branch={BRANCH}&owner=rep07&limit=50");
    let branch_path = format!("/v1/followups?branch={BRANCH}&limit=50");
    let team_path = format!("/v1/reports/team?branch={BRANCH}");
    let referrals = format!("/v1/reports/referrals?branch={BRANCH}&limit=50");
    // The third page: two cursors on.
    let mut third = referrals.clone();
    for _ in 0..2 {
        let (_, v) = conn
            .call(Method::GET, &third, None, None)
            .await
            .expect("page");
        let cursor = v["next_cursor"].as_str().unwrap_or_default().to_string();
        third = format!("{referrals}&cursor={cursor}");
    }
    let (_, page) = conn
        .call(Method::GET, &referrals, None, None)
        .await
        .expect("page");
    let bytes = page.to_string().len();
    let one = format!("/v1/customers/cus_bench_{:07}", customers / 2);
    for (name, path) in [
        ("follow-ups, one rep, limit 50", &rep_path),
        ("follow-ups, whole branch, limit 50", &branch_path),
        ("team report", &team_path),
        ("referrals, first page of 50", &referrals),
        ("referrals, third page of 50", &third),
        ("a single read (customer)", &one),
    ] {
        gets(&mut conn, path, 3).await;
        let extra = if name.starts_with("referrals, first") {
            format!("{bytes} bytes; totals {}", page["totals"])
        } else {
            String::new()
        };
        row(
            &format!("{name}{label}"),
            gets(&mut conn, path, runs).await,
            &extra,
        );
    }
    row(
        &format!("fair assignment (POST /v1/customers without owner){label}"),
        assignments(&mut conn, runs.min(100)).await,
        "",
    );
}

fn main() {
    let customers = env_num("BENCH_CUSTOMERS", 100_000);
    let per = env_num("BENCH_DEALS_PER_CUSTOMER", 1).max(1);
    let runs = env_num("BENCH_RUNS", 200).max(10) as usize;
    let cache_mb = env_num("BENCH_CACHE_MB", 1024);
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("server")
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("client")
        .enable_all()
        .build()
        .expect("client runtime");
    let dir = match std::env::var("BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).expect("data dir"),
        Err(_) => tempfile::tempdir().expect("data dir"),
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!("rep_day: {customers} customers × {per} deals, {cores} cores; generating…");

    // Given the branch as a server of schema 6 left it
    let started = Instant::now();
    let (deals, signed, tasks) = {
        let store: Arc<dyn Store> = Arc::new(
            dealflow::store::SledStore::open_with_cache(
                dir.path(),
                dealflow::store::Durability::None,
                cache_mb << 20,
            )
            .expect("open store"),
        );
        let services = Services::new(Arc::clone(&store)).expect("engines");
        server_rt.block_on(async {
            services.upgrade_store().await.expect("fresh store");
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
                        name: "Big".into(),
                        timezone: Some("Asia/Shanghai".into()),
                    },
                )
                .await
                .expect("branch");
            services.revenue_counts_idle().await;
        });
        generate(&server_rt, store.as_ref(), customers, per)
    };
    let generated = started.elapsed().as_secs_f64();
    let size_mb = dir_size(dir.path()) as f64 / (1 << 20) as f64;
    eprintln!("generated in {generated:.1} s ({size_mb:.0} MiB)");

    let cache = cache_mb.to_string();
    let cli = Cli::parse_from([
        "dealflow".as_ref(),
        "serve".as_ref(),
        "--admin-token".as_ref(),
        TOKEN.as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
        "--cache-mb".as_ref(),
        cache.as_ref(),
    ]);
    let Some(Command::Serve(args)) = cli.command else {
        unreachable!("parsed as serve")
    };

    // When the current server opens it (the upgrade to schema 7), and its
    // background workers build the due index and the revenue roll-ups
    let t = Instant::now();
    let running = start(&server_rt, &args);
    let upgrade = t.elapsed().as_secs_f64();
    let t = Instant::now();
    server_rt.block_on(async {
        running.services.due_index_idle().await;
        running.services.revenue_counts_idle().await;
    });
    let background = t.elapsed().as_secs_f64();
    assert!(
        running.services.counters_ready(BRANCH).expect("ready"),
        "the maintained indexes are served"
    );

    println!();
    println!("{customers} customers, {deals} deals ({signed} signed over 12 months), {tasks} open tasks, {REPS} reps; branch `{BRANCH}` (Asia/Shanghai); {cores} cores; store cache {cache_mb} MiB; store {size_mb:.0} MiB");
    println!();
    println!("generated in {generated:.1} s; start with the upgrade to schema 7: {upgrade:.1} s; due index and revenue roll-ups built in the background: {background:.1} s");

    let addr = running.addr;
    let manager = client_rt.block_on(async {
        let mut admin = Conn::open(addr, TOKEN).await.expect("connect");
        for r in 0..REPS {
            let body = json!({"role": "rep", "branch": BRANCH, "user": format!("rep{r:02}")});
            admin.ok(Method::POST, "/v1/tokens", body).await;
        }
        let body = json!({"role": "manager", "branch": BRANCH, "user": "wang"});
        admin.ok(Method::POST, "/v1/tokens", body).await["token"]
            .as_str()
            .expect("token")
            .to_string()
    });

    println!();
    println!("| request | n | p50 ms | p99 ms | max ms | note |");
    println!("|---|---:|---:|---:|---:|---|");
    client_rt.block_on(measure(addr, &manager, customers, runs, ""));

    // The same while 8 connections write communication records
    let writing = Arc::new(AtomicBool::new(true));
    let written = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (writing, written, manager) =
                (Arc::clone(&writing), Arc::clone(&written), manager.clone());
            client_rt.spawn(async move {
                let mut conn = Conn::open(addr, &manager).await.expect("connect");
                let mut g = Gen(0x5EED + w as u64);
                while writing.load(Ordering::Relaxed) {
                    let c = g.below(customers);
                    let body = json!({"kind": "call", "summary": "called", "by": format!("rep{:02}", c as usize % REPS)});
                    let (s, v) = conn
                        .call(Method::POST, &format!("/v1/customers/cus_bench_{c:07}/records"), Some(&body), None)
                        .await
                        .expect("record");
                    assert!(s.is_success(), "record: {s} {v}");
                    written.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let t = Instant::now();
    client_rt.block_on(measure(
        addr,
        &manager,
        customers,
        runs,
        ", 8 clients writing",
    ));
    writing.store(false, Ordering::Relaxed);
    for w in writers {
        client_rt.block_on(w).expect("writer");
    }
    let rate = written.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64();
    println!();
    println!("writes during the loaded rows: {rate:.0} records/s");

    // Before: the straightforward computations, in-process on the same store
    println!();
    println!("| straightforward computation (before; in-process, same store) | n | p50 ms | p99 ms | max ms | note |");
    println!("|---|---:|---:|---:|---:|---|");
    let svc = &running.services;
    let oracle_runs = env_num("BENCH_ORACLE_RUNS", 5).max(1) as usize;
    let time = |f: &dyn Fn()| {
        (0..oracle_runs)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed().as_micros() as u64
            })
            .collect::<Vec<_>>()
    };
    let now = Utc::now();
    row(
        "follow-ups, one rep (cadence policy per customer, every task read)",
        time(&|| {
            server_rt
                .block_on(svc.followups_oracle(BRANCH, Some("rep07"), now, None))
                .expect("oracle");
        }),
        "",
    );
    row(
        "follow-ups, whole branch",
        time(&|| {
            server_rt
                .block_on(svc.followups_oracle(BRANCH, None, now, None))
                .expect("oracle");
        }),
        "",
    );
    row(
        "team report (every customer, open deal, signing, task)",
        time(&|| {
            server_rt
                .block_on(svc.team_report_oracle(BRANCH, Utc::now()))
                .expect("oracle");
        }),
        "",
    );
    row(
        "referral report, whole",
        time(&|| {
            svc.referral_report_oracle(BRANCH, None, None)
                .expect("oracle");
        }),
        "",
    );
    row(
        "reps' loads for fair assignment (index walks)",
        time(&|| {
            svc.rep_loads_oracle(BRANCH).expect("oracle");
        }),
        "",
    );

    // A re-tier, with follow-ups read during it
    println!();
    let during = client_rt.block_on(async {
        let mut conn = Conn::open(addr, &manager).await.expect("connect");
        let mut retier_conn = Conn::open(addr, &manager).await.expect("connect");
        let path = format!("/v1/followups?branch={BRANCH}&owner=rep07&limit=50");
        let quiet = gets(&mut conn, &path, runs).await;
        let t = Instant::now();
        let retier = tokio::spawn(async move {
            let (s, v) = retier_conn
                .call(
                    Method::POST,
                    &format!("/v1/branches/{BRANCH}/retier"),
                    Some(&json!({})),
                    None,
                )
                .await
                .expect("retier");
            assert!(s.is_success(), "retier: {s} {v}");
            (
                t.elapsed().as_secs_f64(),
                v["changes"].as_array().map_or(0, Vec::len),
            )
        });
        let mut lat = Vec::new();
        while !retier.is_finished() {
            lat.extend(gets(&mut conn, &path, 1).await);
        }
        let (secs, changes) = retier.await.expect("retier");
        (quiet, lat, secs, changes)
    });
    let (quiet, lat, secs, changes) = during;
    println!(
        "re-tier (POST /v1/branches/{BRANCH}/retier, from all C): {secs:.2} s, {changes} changes"
    );
    println!();
    println!("| request | n | p50 ms | p99 ms | max ms | note |");
    println!("|---|---:|---:|---:|---:|---|");
    row("follow-ups, one rep, without a re-tier", quiet, "");
    row("follow-ups, one rep, during the re-tier", lat, "");
    server_rt.block_on(async {
        running.services.tiering_idle().await;
        running.services.due_index_idle().await;
    });

    // The first request after a restart
    stop(&server_rt, running);
    let mut firsts = Vec::new();
    for path in [
        format!("/v1/followups?branch={BRANCH}&owner=rep07&limit=50"),
        format!("/v1/reports/team?branch={BRANCH}"),
    ] {
        let running = start(&server_rt, &args);
        let addr = running.addr;
        let (first, warm) = client_rt.block_on(async {
            let mut conn = Conn::open(addr, &manager).await.expect("connect");
            let first = gets(&mut conn, &path, 1).await[0];
            let warm = stats(gets(&mut conn, &path, runs.min(50)).await).0;
            (first, warm)
        });
        firsts.push((path, first as f64 / 1000.0, warm));
        stop(&server_rt, running);
    }
    println!();
    println!("| after a restart | first ms | warm p50 ms |");
    println!("|---|---:|---:|");
    for (path, first, warm) in firsts {
        println!("| `GET {path}` | {first:.2} | {warm:.2} |");
    }
}

/// Bytes under `dir`.
fn dir_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
