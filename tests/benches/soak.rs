//! Soak: a branch's mixed day, for a long time, against the real server.
//!
//! Run: `cargo bench -p dealflow-tests --bench soak` (`SOAK_MINUTES`, default
//! 10, at most 240; `SOAK_CONNS` reps working at once, default 8;
//! `SOAK_CACHE_MB` the server's page cache, default 64).
//!
//! The server is the production one (`dealflow::server::open` over a fresh
//! data dir, default `group` durability and page cache, `server::run` on
//! `127.0.0.1:0`) on its own two-worker runtime; the load runs on another
//! runtime of this process over keep-alive HTTP/1.1 connections:
//! - each rep connection loops: opens deals (with needs), moves them
//!   `lead → qualify → visit`, logs a communication record, then
//!   `quote → sign` (one in twenty goes to `lost`), logs records, reads
//!   deals, customers, histories and its follow-ups (completing up to eight
//!   of the tasks signings create per look), edits deals with
//!   `If-Match`, creates customers without an owner (fair assignment) and
//!   asks for dry runs;
//! - one manager connection, on a clock: every 30 s a new version of a
//!   branch guard is uploaded and activated or the guard is deactivated;
//!   every minute the team and referral reports; every 2 minutes a re-tier;
//!   every 3 minutes a settlement draft of the current month.
//!
//! Every answer must be 2xx. Per minute it prints the reps' requests, their
//! rate, p50/p99/max latency, errors, the manager's slowest call and the
//! process's resident memory (server and load generator share the process;
//! the generator's part is a fixed set of connections). At the end it
//! judges the run: no error, no stall (no minute whose p99 is over 10× the
//! first minute's, none without completed requests), flat memory (the last
//! minute's RSS within 20 % of the fifth's).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use dealflow::config::{Cli, Command};
use dealflow_tests::bench::{env_num, rss_mib, Conn};
use dealflow_tests::Gen;
use hyper::{Method, StatusCode};
use parking_lot::Mutex;
use serde_json::{json, Value};

// As the `dealflow` binary.
#[global_allocator]
static ALLOCATOR: dealflow::MiMalloc = dealflow::MiMalloc;

const TOKEN: &str = "soak-admin-token-0123456789";
const BRANCH: &str = "soak";
/// Customers each rep brings in at the start.
const CUSTOMERS_PER_REP: usize = 40;
/// Open deals each rep keeps in flight.
const OPEN_DEALS: usize = 12;

/// What one minute saw.
#[derive(Default)]
struct Minute {
    /// Latencies of the reps' requests, in µs.
    lat: Vec<u32>,
    /// The same, by kind of request.
    by_kind: std::collections::BTreeMap<&'static str, Vec<u32>>,
    /// Non-2xx answers and transport errors.
    errors: u64,
    /// The first error's text.
    first_error: Option<String>,
    /// The manager's slowest call: what, and how long in ms.
    slowest_bulk: Option<(String, u64)>,
    /// Resident memory at the minute's end, in MiB.
    rss: f64,
}

/// The run's per-minute record, shared by every connection.
struct Record {
    start: Instant,
    minutes: Mutex<Vec<Minute>>,
}

impl Record {
    fn minute_of(&self, t: Instant) -> usize {
        (t.duration_since(self.start).as_secs() / 60) as usize
    }

    fn with<R>(&self, t: Instant, f: impl FnOnce(&mut Minute) -> R) -> R {
        let i = self.minute_of(t);
        let mut m = self.minutes.lock();
        if m.len() <= i {
            m.resize_with(i + 1, Minute::default);
        }
        f(&mut m[i])
    }

    /// Notes one rep request.
    fn request(
        &self,
        t0: Instant,
        what: &'static str,
        outcome: &Result<(StatusCode, Value), String>,
    ) {
        let dt = t0.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        self.with(t0, |m| match outcome {
            Ok((s, _)) if s.is_success() => {
                m.lat.push(dt);
                m.by_kind.entry(what).or_default().push(dt);
            }
            other => {
                m.errors += 1;
                if m.first_error.is_none() {
                    m.first_error = Some(match other {
                        Ok((s, v)) => format!("{what}: {s} {v}"),
                        Err(e) => format!("{what}: {e}"),
                    });
                }
            }
        });
    }

    /// Notes one manager call.
    fn bulk(&self, t0: Instant, what: &str, outcome: &Result<(StatusCode, Value), String>) {
        let ms = t0.elapsed().as_millis() as u64;
        self.with(t0, |m| {
            if !matches!(outcome, Ok((s, _)) if s.is_success()) {
                m.errors += 1;
                if m.first_error.is_none() {
                    m.first_error = Some(format!("{what}: {outcome:?}"));
                }
            }
            if m.slowest_bulk.as_ref().is_none_or(|(_, slow)| ms > *slow) {
                m.slowest_bulk = Some((what.to_string(), ms));
            }
        });
    }
}

/// A rep's deal in flight: its id, customer, version and where it is.
struct Deal {
    id: String,
    customer: String,
    version: u64,
    stage: &'static str,
}

/// One rep's loop.
async fn rep_loop(
    addr: SocketAddr,
    token: String,
    user: String,
    customers: Vec<String>,
    seed: u64,
    record: Arc<Record>,
    stop: Arc<AtomicBool>,
) {
    let mut c = Conn::open(addr, &token).await.expect("connect");
    let mut gen = Gen(seed);
    let mut deals: Vec<Deal> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        let t0 = Instant::now();
        let customer = customers[gen.below(customers.len() as u64) as usize].clone();
        let roll = gen.below(100);
        let (what, outcome) = if deals.len() < OPEN_DEALS {
            let body = json!({"customer_id": customer, "title": "Fleet", "owner": user,
                              "currency": "CNY", "needs": ["vans for the field crews"],
                              "lines": [{"brand": "volvo", "product": "XC90",
                                         "amount": (100_000 + gen.below(900_000)).to_string(),
                                         "cost": "80000"}]});
            let r = c.call(Method::POST, "/v1/deals", Some(&body), None).await;
            if let Ok((s, v)) = &r {
                if s.is_success() {
                    deals.push(Deal {
                        id: v["id"].as_str().unwrap_or_default().into(),
                        customer: customer.clone(),
                        version: v["version"].as_u64().unwrap_or(1),
                        stage: "lead",
                    });
                }
            }
            ("open a deal", r)
        } else if roll < 40 {
            let i = gen.below(deals.len() as u64) as usize;
            let next = match deals[i].stage {
                "lead" => "qualify",
                "qualify" => "visit",
                "visit" => "quote",
                _ if gen.chance(5) => "lost",
                _ => "sign",
            };
            if next == "quote" {
                // Quote late: the customer was met since the deal opened.
                let body =
                    json!({"kind": "visit", "summary": "walked the yard with the fleet manager"});
                let path = format!("/v1/customers/{}/records", deals[i].customer);
                let r = c.call(Method::POST, &path, Some(&body), None).await;
                record.request(t0, "record before quote", &r);
            }
            let t0 = Instant::now();
            let path = format!("/v1/deals/{}/transitions", deals[i].id);
            let r = c
                .call(Method::POST, &path, Some(&json!({"to": next})), None)
                .await;
            if matches!(&r, Ok((s, _)) if s.is_success()) {
                if matches!(next, "sign" | "lost") {
                    deals.swap_remove(i);
                } else {
                    deals[i].stage = next;
                    deals[i].version += 1;
                }
            }
            record.request(t0, "transition", &r);
            continue;
        } else if roll < 55 {
            let body = json!({"kind": "call", "summary": "asked about the next delivery",
                              "feedback": "happy with the service", "next_steps": "send the new catalogue"});
            let path = format!("/v1/customers/{customer}/records");
            (
                "log a record",
                c.call(Method::POST, &path, Some(&body), None).await,
            )
        } else if roll < 65 {
            let d = &deals[gen.below(deals.len() as u64) as usize];
            (
                "read a deal",
                c.call(Method::GET, &format!("/v1/deals/{}", d.id), None, None)
                    .await,
            )
        } else if roll < 70 {
            let path = format!("/v1/customers/{customer}");
            (
                "read a customer",
                c.call(Method::GET, &path, None, None).await,
            )
        } else if roll < 75 {
            (
                "list my deals",
                c.call(Method::GET, "/v1/deals?limit=50", None, None).await,
            )
        } else if roll < 78 {
            (
                "list customers",
                c.call(Method::GET, "/v1/customers?limit=50", None, None)
                    .await,
            )
        } else if roll < 84 {
            let r = c
                .call(Method::GET, "/v1/followups?limit=50", None, None)
                .await;
            record.request(t0, "my follow-ups", &r);
            // The rep works through the day's tasks (each signing creates
            // four, about eight signings per hundred requests): up to
            // eight done per look at the list (six looks per hundred
            // requests), so open tasks stay level instead of piling up.
            let tasks: Vec<String> = match &r {
                Ok((_, v)) => v["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["id"].as_str().map(str::to_string))
                    .take(8)
                    .collect(),
                Err(_) => Vec::new(),
            };
            for id in tasks {
                let t0 = Instant::now();
                let path = format!("/v1/tasks/{id}/complete");
                let body = json!({"note": "done"});
                let r = c.call(Method::POST, &path, Some(&body), None).await;
                record.request(t0, "complete a task", &r);
            }
            continue;
        } else if roll < 89 {
            let i = gen.below(deals.len() as u64) as usize;
            let body = json!({"title": format!("Fleet {}", gen.below(1000))});
            let path = format!("/v1/deals/{}", deals[i].id);
            let r = c
                .call(Method::PATCH, &path, Some(&body), Some(deals[i].version))
                .await;
            if let Ok((s, v)) = &r {
                if s.is_success() {
                    deals[i].version = v["version"].as_u64().unwrap_or(deals[i].version);
                }
            }
            ("edit a deal", r)
        } else if roll < 92 && gen.chance(10) {
            // A walk-in now and then (0.3 % of requests): a branch gains a
            // few customers a day, not dozens a second.
            let body = json!({"name": "Walk-in", "branch": BRANCH, "segment": "individual",
                              "source": "assigned"});
            (
                "new customer, fair assignment",
                c.call(Method::POST, "/v1/customers", Some(&body), None)
                    .await,
            )
        } else if roll < 96 {
            let d = &deals[gen.below(deals.len() as u64) as usize];
            let path = format!("/v1/deals/{}/history", d.id);
            ("deal history", c.call(Method::GET, &path, None, None).await)
        } else {
            let d = &deals[gen.below(deals.len() as u64) as usize];
            let path = format!("/v1/deals/{}/transitions", d.id);
            let body = json!({"to": "quote", "dry_run": true});
            (
                "dry run",
                c.call(Method::POST, &path, Some(&body), None).await,
            )
        };
        record.request(t0, what, &outcome);
    }
}

/// The manager's clock: policy activations, reports, re-tiers, settlements.
async fn manager_loop(addr: SocketAddr, token: String, record: Arc<Record>, stop: Arc<AtomicBool>) {
    let mut c = Conn::open(addr, &token).await.expect("connect");
    let mut admin = Conn::open(addr, TOKEN).await.expect("connect");
    let mut tick: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_secs(30)).await;
        tick += 1;
        if !tick.is_multiple_of(2) {
            let source = format!(
                "/// Soak guard, version {tick}.\nfn guard(input) {{ if input.to == \"quote\" && input.deal.needs.is_empty() {{ return #{{ allow: false, reason: \"needs first ({tick})\" }}; }} #{{ allow: true }} }}"
            );
            let body = json!({"name": "soak-guard", "scope": format!("branch:{BRANCH}"),
                              "runtime": "rhai", "source": source});
            let t0 = Instant::now();
            let up = c
                .call(Method::POST, "/v1/policies", Some(&body), None)
                .await;
            record.bulk(t0, "upload a guard", &up);
            if let Ok((_, v)) = &up {
                let version = v["version"].as_u64().unwrap_or(0);
                let t0 = Instant::now();
                let path = format!("/v1/policies/soak-guard/versions/{version}/activate");
                let r = c.call(Method::POST, &path, Some(&json!({})), None).await;
                record.bulk(t0, "activate the guard", &r);
            }
        } else {
            let t0 = Instant::now();
            let r = c
                .call(
                    Method::POST,
                    "/v1/policies/soak-guard/deactivate",
                    None,
                    None,
                )
                .await;
            record.bulk(t0, "deactivate the guard", &r);
        }
        if tick.is_multiple_of(2) {
            let t0 = Instant::now();
            let r = c
                .call(
                    Method::GET,
                    &format!("/v1/reports/team?branch={BRANCH}"),
                    None,
                    None,
                )
                .await;
            record.bulk(t0, "team report", &r);
            let t0 = Instant::now();
            let path = format!("/v1/reports/referrals?branch={BRANCH}");
            let r = c.call(Method::GET, &path, None, None).await;
            record.bulk(t0, "referral report", &r);
        }
        if tick.is_multiple_of(4) {
            let t0 = Instant::now();
            let path = format!("/v1/branches/{BRANCH}/retier");
            let r = c.call(Method::POST, &path, Some(&json!({})), None).await;
            record.bulk(t0, "re-tier", &r);
        }
        if tick.is_multiple_of(6) {
            let period = chrono::Utc::now()
                .with_timezone(&chrono_tz::Asia::Shanghai)
                .format("%Y-%m")
                .to_string();
            let t0 = Instant::now();
            let body = json!({"branch": BRANCH, "period": period});
            let r = c
                .call(Method::POST, "/v1/settlements", Some(&body), None)
                .await;
            record.bulk(t0, "settlement draft", &r);
            let t0 = Instant::now();
            let r = admin.call(Method::GET, "/metrics", None, None).await;
            record.bulk(t0, "metrics", &r);
        }
    }
}

fn pct(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let minutes = env_num("SOAK_MINUTES", 10).clamp(1, 240);
    let reps = env_num("SOAK_CONNS", 8).clamp(1, 64) as usize;
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
    let dir = tempfile::tempdir().expect("data dir");
    // The server's own defaults, as `dealflow serve` would take them, but
    // a page cache that fills within the first minutes (SOAK_CACHE_MB,
    // default 64): sled's cache grows with the data up to its size, so
    // with the default 1 GiB a 30-minute run's RSS would rise with the
    // data written and hide a leak instead of showing one.
    let cache_mb = env_num("SOAK_CACHE_MB", 64).to_string();
    let cli = Cli::parse_from([
        "dealflow".as_ref(),
        "serve".as_ref(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
        "--admin-token".as_ref(),
        TOKEN.as_ref(),
        "--data-dir".as_ref(),
        dir.path().as_os_str(),
        "--cache-mb".as_ref(),
        cache_mb.as_ref(),
    ]);
    let Some(Command::Serve(args)) = cli.command else {
        unreachable!("parsed as serve")
    };
    let (addr, stop_server, served) = server_rt.block_on(async {
        let services = dealflow::server::open(&args)
            .await
            .expect("open the server");
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            dealflow::server::run(listener, services.clone(), async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
            services.flush().expect("flush");
        });
        (addr, tx, served)
    });
    println!("soak: {minutes} minute(s), {reps} reps and a manager, server on {addr}");

    let record = client_rt.block_on(async move {
        // Given a branch in Beijing time, a brand, a rate, a manager and reps with customers
        let mut admin = Conn::open(addr, TOKEN).await.expect("connect");
        admin
            .ok(Method::POST, "/v1/branches", json!({"id": BRANCH, "name": "Soak", "timezone": "Asia/Shanghai"}))
            .await;
        admin
            .ok(Method::POST, "/v1/brands", json!({"id": "volvo", "name": "Volvo", "introduced_at": "2020-01-01"}))
            .await;
        admin
            .ok(Method::POST, "/v1/fx-rates", json!({"currency": "CNY", "date": "2020-01-01", "per_usd": "7.1"}))
            .await;
        let token = |role: &str, user: &str| json!({"role": role, "branch": BRANCH, "user": user});
        let manager = admin.ok(Method::POST, "/v1/tokens", token("manager", "wang")).await["token"]
            .as_str()
            .expect("token")
            .to_string();
        let mut people = Vec::new();
        for r in 0..reps {
            let user = format!("rep{r}");
            let t = admin.ok(Method::POST, "/v1/tokens", token("rep", &user)).await["token"]
                .as_str()
                .expect("token")
                .to_string();
            let mut c = Conn::open(addr, &t).await.expect("connect");
            let mut customers = Vec::new();
            for i in 0..CUSTOMERS_PER_REP {
                let (segment, source) = if i % 3 == 0 { ("industrial", "self_developed") } else { ("enterprise", "assigned") };
                let body = json!({"name": format!("Customer {r}-{i}"), "branch": BRANCH, "owner": user,
                                  "segment": segment, "source": source});
                customers.push(c.ok(Method::POST, "/v1/customers", body).await["id"].as_str().expect("id").to_string());
            }
            people.push((t, user, customers));
        }

        // When they work for the configured time
        let record = Arc::new(Record {
            start: Instant::now(),
            minutes: Mutex::new(Vec::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for (i, (t, user, customers)) in people.into_iter().enumerate() {
            tasks.push(tokio::spawn(rep_loop(
                addr,
                t,
                user,
                customers,
                0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1),
                Arc::clone(&record),
                Arc::clone(&stop),
            )));
        }
        tasks.push(tokio::spawn(manager_loop(
            addr,
            manager,
            Arc::clone(&record),
            Arc::clone(&stop),
        )));
        for m in 1..=minutes {
            tokio::time::sleep_until((record.start + Duration::from_secs(60 * m)).into()).await;
            let at = record.start + Duration::from_secs(60 * m) - Duration::from_millis(1);
            record.with(at, |minute| minute.rss = rss_mib());
            report_minute(&record, m as usize - 1);
        }
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(120), t).await;
        }
        record
    });
    let _ = stop_server.send(());
    server_rt.block_on(served).expect("server task");
    judge(&record, minutes as usize);
}

/// Prints one finished minute.
fn report_minute(record: &Record, i: usize) {
    let mut minutes = record.minutes.lock();
    if minutes.len() <= i {
        minutes.resize_with(i + 1, Minute::default);
    }
    let m = &mut minutes[i];
    m.lat.sort_unstable();
    // The three kinds of request with the slowest p99 this minute.
    let mut kinds: Vec<(u32, usize, &str)> = m
        .by_kind
        .iter_mut()
        .map(|(k, v)| {
            v.sort_unstable();
            (pct(v, 0.99), v.len(), *k)
        })
        .collect();
    kinds.sort_unstable_by(|a, b| b.cmp(a));
    let slowest_kinds: Vec<String> = kinds
        .iter()
        .take(3)
        .map(|(p, n, k)| format!("{k} {:.1} ms ({n})", f64::from(*p) / 1000.0))
        .collect();
    let slow = m
        .slowest_bulk
        .as_ref()
        .map_or_else(String::new, |(w, ms)| format!("{w} {ms} ms"));
    println!(
        "minute {:>3}: {:>7} requests {:>7.0}/s  p50 {:>6.1} ms  p99 {:>7.1} ms  max {:>7.1} ms  errors {:>3}  rss {:>6.0} MiB  slowest manager call: {slow}{}",
        i + 1,
        m.lat.len(),
        m.lat.len() as f64 / 60.0,
        f64::from(pct(&m.lat, 0.50)) / 1000.0,
        f64::from(pct(&m.lat, 0.99)) / 1000.0,
        f64::from(m.lat.last().copied().unwrap_or(0)) / 1000.0,
        m.errors,
        m.rss,
        m.first_error
            .as_ref()
            .map_or_else(String::new, |e| format!("\n    first error: {e}"))
    );
    println!(
        "            slowest p99 by kind: {}",
        slowest_kinds.join(", ")
    );
}

/// The run's verdict against the soak criteria.
fn judge(record: &Record, minutes: usize) {
    let ms = record.minutes.lock();
    let ms = &ms[..minutes.min(ms.len())];
    let errors: u64 = ms.iter().map(|m| m.errors).sum();
    let requests: usize = ms.iter().map(|m| m.lat.len()).sum();
    let first_p99 = ms.first().map_or(0, |m| pct(&m.lat, 0.99)).max(1);
    let worst = ms
        .iter()
        .enumerate()
        .max_by_key(|(_, m)| pct(&m.lat, 0.99))
        .map(|(i, m)| (i + 1, pct(&m.lat, 0.99)));
    let idle = ms.iter().position(|m| m.lat.is_empty());
    let stall_free = idle.is_none() && worst.is_none_or(|(_, p)| p <= first_p99 * 10);
    let rss_fifth = ms.get(4).map(|m| m.rss);
    let rss_last = ms.last().map(|m| m.rss);
    println!(
        "\nsoak summary: {requests} rep requests in {minutes} min ({:.0}/s), {errors} errors",
        requests as f64 / (minutes as f64 * 60.0)
    );
    println!(
        "  errors: {}",
        if errors == 0 { "none (PASS)" } else { "FAIL" }
    );
    println!(
        "  stalls: first minute p99 {:.1} ms, worst minute {} p99 {:.1} ms ({:.1}x){} ({})",
        f64::from(first_p99) / 1000.0,
        worst.map_or(0, |w| w.0),
        f64::from(worst.map_or(0, |w| w.1)) / 1000.0,
        f64::from(worst.map_or(0, |w| w.1)) / f64::from(first_p99),
        idle.map_or_else(String::new, |i| format!(
            ", minute {} completed nothing",
            i + 1
        )),
        if stall_free {
            "PASS: within 10x"
        } else {
            "FAIL"
        }
    );
    match (rss_fifth, rss_last) {
        (Some(fifth), Some(last)) if fifth > 0.0 => println!(
            "  memory: minute 5 {fifth:.0} MiB, last minute {last:.0} MiB ({:+.1} %) ({})",
            (last / fifth - 1.0) * 100.0,
            if (last / fifth - 1.0).abs() <= 0.20 {
                "PASS: within 20 %"
            } else {
                "FAIL"
            }
        ),
        _ => println!("  memory: fewer than 5 minutes, not judged"),
    }
}
