//! HTTP benchmark of durable deal transitions, against an axum hello-world
//! route measured in the same run.
//!
//! Run: `cargo bench -p dealflow-tests --bench transitions`
//! (`BENCH_SECS` sets the measured seconds per phase, default 10;
//! `BENCH_CONNS` the connections, default 64).
//!
//! Every phase starts a real server in this process on `127.0.0.1:0` over a
//! fresh temporary directory and drives it with 64 concurrent keep-alive
//! HTTP/1.1 connections (one request in flight per connection). Server and
//! client run on separate multi-threaded tokio runtimes of this process and
//! share the machine's cores, as a load generator on the same host would.
//!
//! Phases:
//! - `hello`: a separate tiny axum router answering `GET /hello` with
//!   "hello" (run first and last; the reference rate is their mean);
//! - `group`, `per-write`, `none`: `POST /v1/deals/{id}/transitions` through
//!   `dealflow::server::run` with each `Durability`. The branch pipeline is
//!   a(open) ⇄ b(open) → won(won); every connection owns its own deals and
//!   moves each back and forth between a and b forever;
//! - `raw`: a tiny axum route doing one store commit of one key (a single
//!   sled insert + group commit, no JSON, no service layer): the anchor of
//!   docs/dependencies.md;
//! - `raw: a transition's 5 keys`: the store work of one move and nothing
//!   else (read the deal, expect it unchanged, rewrite it, add a history
//!   entry, delete and put its stage index entry, append its `transition`
//!   event to the log; a transition's value sizes) through the same group
//!   commit: the floor the store sets;
//! - breakdown rows (on the `None` server): `GET /v1/deals/{id}` (auth, a
//!   read, JSON out) and `dry_run` transitions (everything but the write);
//!   and group commit again with the default policies deactivated (what the
//!   transition hooks cost).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;
use dealflow::store::{Batch, Durability, SledStore, Store};
use dealflow::Services;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

// As the `dealflow` binary.
#[global_allocator]
static ALLOCATOR: dealflow::MiMalloc = dealflow::MiMalloc;

const TOKEN: &str = "bench-admin-token-0123456789";
/// Deals each connection owns (`BENCH_DEALS_PER_CONN` overrides). Enough
/// that a deal is moved about as often in a phase as a real one is in its
/// life (lead → qualify → visit → quote → sign is four moves): with few
/// deals each would be moved hundreds of times, and its `stages_passed`
/// (which every read, hook input and response carries) would grow to
/// hundreds of entries no real deal has.
const DEALS_PER_CONN: u64 = 256;

/// What one phase measured.
struct Outcome {
    name: String,
    requests: u64,
    errors: u64,
    seconds: f64,
    p50_us: u64,
    p99_us: u64,
    first_error: Option<String>,
    /// CPU seconds per second during the measured window, by thread group.
    cpu: BTreeMap<String, f64>,
}

impl Outcome {
    fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// CPU ticks (user + system) of every thread of this process, by thread id,
/// with the thread's name; empty where `/proc` is not available.
fn thread_ticks() -> HashMap<u32, (String, u64)> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for entry in dir.flatten() {
        let Ok(tid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        // Fields after the name start at field 3 (state); utime and stime
        // are fields 14 and 15.
        let rest: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ticks = |i: usize| rest.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        out.insert(tid, (name, ticks(11) + ticks(12)));
    }
    out
}

/// Names threads by role: the runtimes (workers and their blocking pools),
/// the group-commit writer thread, sled's own threads, and the rest.
fn thread_group(name: &str) -> String {
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '-');
    match base {
        "server" | "client" => base.to_string(),
        // Linux keeps 15 bytes of a thread's name.
        b if b.starts_with("dealflow-writ") => "writer".to_string(),
        b if b.starts_with("sled") => "sled".to_string(),
        _ => "other".to_string(),
    }
}

/// CPU seconds per second by thread group between two samples.
fn cpu_between(
    a: &HashMap<u32, (String, u64)>,
    b: &HashMap<u32, (String, u64)>,
    secs: f64,
) -> BTreeMap<String, f64> {
    const TICKS_PER_SEC: f64 = 100.0;
    let mut out = BTreeMap::new();
    for (tid, (name, after)) in b {
        let before = a.get(tid).map_or(0, |(_, t)| *t);
        *out.entry(thread_group(name)).or_insert(0.0) +=
            after.saturating_sub(before) as f64 / TICKS_PER_SEC / secs;
    }
    out
}

/// The request a connection sends next.
trait Script: Send + 'static {
    /// Method, path and body of the next request.
    fn next(&mut self) -> (Method, String, Option<Bytes>);
}

/// `GET /hello` forever.
struct Hello;

impl Script for Hello {
    fn next(&mut self) -> (Method, String, Option<Bytes>) {
        (Method::GET, "/hello".into(), None)
    }
}

/// `POST /raw` forever.
struct Raw;

impl Script for Raw {
    fn next(&mut self) -> (Method, String, Option<Bytes>) {
        (Method::POST, "/raw".into(), Some(Bytes::from_static(b"{}")))
    }
}

/// Deals the five-key raw phase spreads its writes over.
const RAW_DEALS: u64 = 4096;
/// A stored deal of the bench (binary form) is about this long…
const RAW_DEAL_BYTES: usize = 320;
/// …its history entry (JSON) about this…
const RAW_HISTORY_BYTES: usize = 200;
/// …and its `transition` event (JSON) about this.
const RAW_EVENT_BYTES: usize = 330;

/// What a `POST /raw` request writes.
#[derive(Clone, Copy)]
enum RawWork {
    /// One new key holding the body.
    OneInsert,
    /// One transition's store work without the service: read a deal,
    /// expect it unchanged, rewrite it, add a history entry, move its stage
    /// index entry, append its event to the log.
    TransitionKeys,
}

impl RawWork {
    async fn commit(
        self,
        store: &dyn Store,
        counter: &AtomicU64,
        body: Bytes,
    ) -> Result<(), String> {
        loop {
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let mut batch = Batch::new();
            match self {
                Self::OneInsert => {
                    batch.put(format!("raw\0{n:020}").into_bytes(), body.to_vec());
                }
                Self::TransitionKeys => {
                    let slot = n % RAW_DEALS;
                    let deal = format!("deal\0{slot:020}").into_bytes();
                    let current = store.get(&deal).map_err(|e| e.to_string())?;
                    let (from, to) = if (n / RAW_DEALS) % 2 == 1 {
                        ("a", "b")
                    } else {
                        ("b", "a")
                    };
                    batch.expect(deal.clone(), current.as_deref());
                    batch.put(deal, vec![b'd'; RAW_DEAL_BYTES]);
                    batch.put(
                        format!("history\0{slot:020}\0{n:020}").into_bytes(),
                        vec![b'h'; RAW_HISTORY_BYTES],
                    );
                    batch.delete(format!("ix\0stage\0{from}\0{slot:020}").into_bytes());
                    batch.put(
                        format!("ix\0stage\0{to}\0{slot:020}").into_bytes(),
                        format!("{slot:020}").into_bytes(),
                    );
                    batch.event(vec![b'e'; RAW_EVENT_BYTES]);
                }
            }
            match store.commit(batch).await {
                // Two requests on one deal slot: the later one retries, as a
                // transition would.
                Err(dealflow::store::StoreError::Conflict { .. }) => continue,
                other => return other.map_err(|e| e.to_string()),
            }
        }
    }
}

/// Moves the connection's own deals a → b → a …, round robin.
struct Moves {
    deals: Vec<(String, bool)>,
    turn: usize,
}

impl Script for Moves {
    fn next(&mut self) -> (Method, String, Option<Bytes>) {
        let i = self.turn % self.deals.len();
        self.turn += 1;
        let (id, in_a) = &mut self.deals[i];
        let to = if *in_a { "b" } else { "a" };
        *in_a = !*in_a;
        (
            Method::POST,
            format!("/v1/deals/{id}/transitions"),
            Some(Bytes::from(format!("{{\"to\":\"{to}\"}}"))),
        )
    }
}

/// `GET /v1/deals/{id}` over the connection's deals (auth, one store read,
/// JSON out: the request overhead without a write).
struct Reads {
    ids: Vec<String>,
    turn: usize,
}

impl Script for Reads {
    fn next(&mut self) -> (Method, String, Option<Bytes>) {
        self.turn += 1;
        let id = &self.ids[self.turn % self.ids.len()];
        (Method::GET, format!("/v1/deals/{id}"), None)
    }
}

/// `dry_run` transitions: everything a move does (auth, parse, read, pipeline,
/// policy hooks) except the write.
struct DryRuns {
    ids: Vec<String>,
    turn: usize,
}

impl Script for DryRuns {
    fn next(&mut self) -> (Method, String, Option<Bytes>) {
        self.turn += 1;
        let id = &self.ids[self.turn % self.ids.len()];
        (
            Method::POST,
            format!("/v1/deals/{id}/transitions"),
            Some(Bytes::from_static(b"{\"to\":\"b\",\"dry_run\":true}")),
        )
    }
}

/// One keep-alive HTTP/1.1 connection.
struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Self { sender }
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<(StatusCode, Bytes), String> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("authorization", format!("Bearer {TOKEN}"));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let bytes = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, bytes))
    }

    /// A set-up call that must succeed.
    async fn setup(&mut self, method: Method, path: &str, body: Value) -> Value {
        let (status, bytes) = self
            .call(method.clone(), path, Some(Bytes::from(body.to_string())))
            .await
            .expect("set-up request");
        assert!(
            status.is_success(),
            "set-up {method} {path}: {status} {}",
            String::from_utf8_lossy(&bytes)
        );
        serde_json::from_slice(&bytes).expect("set-up JSON")
    }
}

/// Drives `scripts.len()` connections for `warmup + secs`; measures the
/// requests that start after the warm-up.
fn drive<S: Script>(
    client: &Runtime,
    name: &str,
    addr: SocketAddr,
    scripts: Vec<S>,
    warmup: Duration,
    secs: Duration,
) -> Outcome {
    client.block_on(async move {
        let mut conns = Vec::new();
        for _ in 0..scripts.len() {
            conns.push(Conn::open(addr).await);
        }
        let start = Instant::now();
        let measure_from = start + warmup;
        let end = measure_from + secs;
        let errors = Arc::new(AtomicU64::new(0));
        let sampler = tokio::spawn(async move {
            tokio::time::sleep_until(measure_from.into()).await;
            let a = thread_ticks();
            tokio::time::sleep_until(end.into()).await;
            (a, thread_ticks())
        });
        let mut tasks = Vec::new();
        for (mut conn, mut script) in conns.into_iter().zip(scripts) {
            let errors = Arc::clone(&errors);
            tasks.push(tokio::spawn(async move {
                let mut lat: Vec<u32> = Vec::with_capacity(1 << 14);
                let mut first_error = None;
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let (method, path, body) = script.next();
                    let outcome = conn.call(method, &path, body).await;
                    let dt = t0.elapsed();
                    let ok = matches!(&outcome, Ok((s, _)) if s.is_success());
                    if t0 >= measure_from && Instant::now() <= end {
                        if ok {
                            lat.push(dt.as_micros().min(u128::from(u32::MAX)) as u32);
                        } else {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if !ok && first_error.is_none() {
                        first_error = Some(match outcome {
                            Ok((s, b)) => format!("{s} {}", String::from_utf8_lossy(&b)),
                            Err(e) => e,
                        });
                    }
                    if let Some(e) = &first_error {
                        if e.contains("connection") {
                            break;
                        }
                    }
                }
                (lat, first_error)
            }));
        }
        let mut all = Vec::new();
        let mut first_error = None;
        for t in tasks {
            let (lat, err) = t.await.expect("connection task");
            all.extend(lat);
            first_error = first_error.or(err);
        }
        let (ticks_from, ticks_to) = sampler.await.expect("sampler");
        all.sort_unstable();
        let pct = |p: f64| -> u64 {
            if all.is_empty() {
                0
            } else {
                u64::from(all[((all.len() - 1) as f64 * p).round() as usize])
            }
        };
        Outcome {
            name: name.to_string(),
            requests: all.len() as u64,
            errors: errors.load(Ordering::Relaxed),
            seconds: secs.as_secs_f64(),
            p50_us: pct(0.50),
            p99_us: pct(0.99),
            first_error,
            cpu: cpu_between(&ticks_from, &ticks_to, secs.as_secs_f64()),
        }
    })
}

/// A running in-process server and how to stop it.
struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    fn stop(mut self, server: &Runtime) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        server
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), self.done).await })
            .expect("server stops within 30 s")
            .expect("server task");
    }
}

fn serve_router(server: &Runtime, app: Router) -> Running {
    server.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        Running {
            addr,
            stop: Some(tx),
            done,
        }
    })
}

fn serve_store(server: &Runtime, store: Arc<dyn Store>) -> Running {
    server.block_on(async {
        let services = Services::new(store).expect("the policy engines start");
        services.init_policies().await.expect("default policies");
        services
            .bootstrap_admin(Some(TOKEN))
            .await
            .expect("admin token");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(async move {
            dealflow::server::run(listener, services, async {
                let _ = rx.await;
            })
            .await
            .expect("serve");
        });
        Running {
            addr,
            stop: Some(tx),
            done,
        }
    })
}

/// Branch, pipeline, brand, customer, and `conns × deals_per_conn` deals.
fn set_up_deals(client: &Runtime, addr: SocketAddr, conns: usize) -> Vec<Moves> {
    let deals_per_conn = env_num("BENCH_DEALS_PER_CONN", DEALS_PER_CONN).max(1);
    client.block_on(async move {
        let mut c = Conn::open(addr).await;
        c.setup(
            Method::POST,
            "/v1/branches",
            json!({"id": "bench", "name": "Bench"}),
        )
        .await;
        c.setup(
            Method::PUT,
            "/v1/branches/bench/pipeline",
            json!({
                "stages": [{"id": "a"}, {"id": "b"}, {"id": "won", "kind": "won"}],
                "moves": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"},
                          {"from": "b", "to": "won"}]
            }),
        )
        .await;
        c.setup(
            Method::POST,
            "/v1/brands",
            json!({"id": "volvo", "name": "Volvo", "introduced_at": "2026-01-01"}),
        )
        .await;
        let customer = c
            .setup(
                Method::POST,
                "/v1/customers",
                json!({"name": "ACME", "branch": "bench", "owner": "rep",
                       "segment": "enterprise", "source": "self_developed"}),
            )
            .await["id"]
            .as_str()
            .expect("customer id")
            .to_string();
        // Every connection creates its own deals, all at once.
        let creators: Vec<_> = (0..conns)
            .map(|_| {
                let customer = customer.clone();
                tokio::spawn(async move {
                    let mut c = Conn::open(addr).await;
                    let mut deals = Vec::new();
                    for _ in 0..deals_per_conn {
                        let d = c
                            .setup(
                                Method::POST,
                                "/v1/deals",
                                json!({"customer_id": customer, "title": "Fleet", "owner": "rep",
                                       "currency": "CNY",
                                       "lines": [{"brand": "volvo", "product": "XC90",
                                                  "amount": "600000", "cost": "500000"}]}),
                            )
                            .await;
                        assert_eq!(d["stage"], "a", "deals start in a");
                        deals.push((d["id"].as_str().expect("deal id").to_string(), true));
                    }
                    Moves { deals, turn: 0 }
                })
            })
            .collect();
        let mut scripts = Vec::new();
        for creator in creators {
            scripts.push(creator.await.expect("deal set-up"));
        }
        scripts
    })
}

/// Takes every policy out of the live set (no hooks run on transitions).
fn deactivate_policies(client: &Runtime, addr: SocketAddr) {
    client.block_on(async {
        let mut c = Conn::open(addr).await;
        let (_, list) = c
            .call(Method::GET, "/v1/policies?limit=500", None)
            .await
            .expect("list policies");
        let list: Value = serde_json::from_slice(&list).expect("policies JSON");
        for p in list["items"].as_array().into_iter().flatten() {
            if let Some(name) = p["name"].as_str() {
                c.setup(
                    Method::POST,
                    &format!("/v1/policies/{name}/deactivate"),
                    json!({}),
                )
                .await;
            }
        }
    });
}

/// The rhai guard of the policy phase: a margin check that reads the deal on
/// every move (not an early return).
const MARGIN_GUARD: &str = r#"
fn guard(input) {
    if input.to_kind == "lost" { return #{ allow: true }; }
    let deal = input.deal;
    if deal.lines.is_empty() || deal.amount_total <= deal.cost_total {
        return #{ allow: false, reason: "no margin", missing: ["a price above cost"] };
    }
    #{ allow: true }
}
"#;

/// Which policies are live during a phase.
#[derive(Clone, Copy, PartialEq)]
enum Policies {
    /// The defaults a fresh server installs (quote-late, after-sign, …).
    Defaults,
    /// None: no hook runs on a transition.
    Off,
    /// Only a rhai guard (`MARGIN_GUARD`) and a wasm after-hook (the
    /// `handover-review` example plugin), both global.
    RhaiGuardWasmAfter,
}

/// Uploads and activates the rhai guard and the wasm after-hook.
fn install_policy_pair(client: &Runtime, addr: SocketAddr) {
    client.block_on(async {
        let mut c = Conn::open(addr).await;
        for (name, body) in [
            (
                "margin-guard",
                json!({"name": "margin-guard", "scope": "global", "runtime": "rhai",
                       "source": MARGIN_GUARD}),
            ),
            (
                "handover",
                dealflow_tests::wasm_upload_body(
                    dealflow_tests::PLUGIN_HANDOVER_REVIEW,
                    "handover",
                    "global",
                ),
            ),
        ] {
            let up = c.setup(Method::POST, "/v1/policies", body).await;
            let v = up["version"].as_u64().expect("version");
            c.setup(
                Method::POST,
                &format!("/v1/policies/{name}/versions/{v}/activate"),
                json!({}),
            )
            .await;
        }
    });
}

fn runtime(name: &str) -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name(name)
        .build()
        .expect("runtime")
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing
    // special either; both just run this.
    let secs = Duration::from_secs(env_num("BENCH_SECS", 10).max(1));
    let warmup = (secs / 5).clamp(Duration::from_millis(500), Duration::from_secs(2));
    let conns = env_num("BENCH_CONNS", 64).max(1) as usize;
    // `BENCH_ONLY=group,raw`: run only the phases whose names contain one
    // of these words (the hello-world reference always runs).
    let only: Vec<String> = std::env::var("BENCH_ONLY")
        .unwrap_or_default()
        .split(',')
        .map(|w| w.trim().to_ascii_lowercase())
        .filter(|w| !w.is_empty())
        .collect();
    let wanted = |name: &str| {
        let name = name.to_ascii_lowercase();
        only.is_empty() || only.iter().any(|w| name.contains(w.as_str()))
    };
    let server = runtime("server");
    let client = runtime("client");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    eprintln!(
        "transitions bench: {conns} connections, {} s per phase after {} ms warm-up, {cores} cores shared by server and client",
        secs.as_secs(),
        warmup.as_millis()
    );
    let mut results = Vec::new();

    let hello = || Router::new().route("/hello", get(|| async { "hello" }));

    // (a) hello-world, first.
    let s = serve_router(&server, hello());
    results.push(drive(
        &client,
        "hello (first)",
        s.addr,
        (0..conns).map(|_| Hello).collect(),
        warmup,
        secs,
    ));
    s.stop(&server);
    eprintln!("done: hello (first)");

    let phase = |name: &str, store: Arc<dyn Store>, policies: Policies, breakdown: bool| {
        let s = serve_store(&server, store);
        let scripts = set_up_deals(&client, s.addr, conns);
        if policies != Policies::Defaults {
            deactivate_policies(&client, s.addr);
        }
        if policies == Policies::RhaiGuardWasmAfter {
            install_policy_pair(&client, s.addr);
        }
        let ids: Vec<Vec<String>> = scripts
            .iter()
            .map(|m| m.deals.iter().map(|d| d.0.clone()).collect())
            .collect();
        let mut out = Vec::new();
        if wanted(name) {
            out.push(drive(&client, name, s.addr, scripts, warmup, secs));
            eprintln!("done: {name}");
        }
        if breakdown {
            let reads = ids
                .iter()
                .map(|ids| Reads {
                    ids: ids.clone(),
                    turn: 0,
                })
                .collect();
            out.push(drive(
                &client,
                "breakdown: GET /v1/deals/{id}",
                s.addr,
                reads,
                warmup,
                secs,
            ));
            let dry = ids
                .iter()
                .map(|ids| DryRuns {
                    ids: ids.clone(),
                    turn: 0,
                })
                .collect();
            out.push(drive(
                &client,
                "breakdown: dry-run transitions",
                s.addr,
                dry,
                warmup,
                secs,
            ));
            eprintln!("done: breakdown");
        }
        s.stop(&server);
        out
    };
    let sled_store = |durability: Durability| -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), durability).expect("open store");
        (dir, Arc::new(store))
    };

    // (b, c, d) transitions under each durability; the breakdown rows run on
    // the `None` server once its transitions are measured.
    for (name, durability) in [
        ("transitions, Durability::Group", Durability::Group),
        ("transitions, Durability::PerWrite", Durability::PerWrite),
        ("transitions, Durability::None", Durability::None),
    ] {
        let breakdown = durability == Durability::None && wanted("breakdown");
        if wanted(name) || breakdown {
            let (_dir, store) = sled_store(durability);
            results.extend(phase(name, store, Policies::Defaults, breakdown));
        }
    }

    // Group commit again with every policy taken out of the live set (what
    // the default hooks cost), and with only a rhai guard and a wasm
    // after-hook live: the policy runtimes' cost on the same route.
    for (name, policies) in [
        (
            "transitions, Durability::Group, policies off",
            Policies::Off,
        ),
        (
            "transitions, Durability::Group, rhai guard + wasm after-hook",
            Policies::RhaiGuardWasmAfter,
        ),
    ] {
        if wanted(name) {
            let (_dir, store) = sled_store(Durability::Group);
            results.extend(phase(name, store, policies, false));
        }
    }

    // The raw anchor: one key per request through the store's group commit;
    // and the store floor of a transition: the keys one move writes (the
    // deal, read and expected unchanged, then rewritten; a new history
    // entry; the stage index's delete and put; its event in the log), with
    // a transition's value sizes, through the same group commit, and
    // nothing else.
    for (name, work) in [
        ("raw: 1 insert + group commit", RawWork::OneInsert),
        (
            "raw: a transition's 5 keys + group commit",
            RawWork::TransitionKeys,
        ),
    ] {
        if !wanted(name) {
            continue;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path(), Durability::Group).expect("open store"));
        let counter = Arc::new(AtomicU64::new(0));
        let app = Router::new().route(
            "/raw",
            post(move |body: Bytes| {
                let store = Arc::clone(&store);
                let counter = Arc::clone(&counter);
                async move {
                    match work.commit(store.as_ref(), &counter, body).await {
                        Ok(()) => (StatusCode::OK, "ok"),
                        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "failed"),
                    }
                }
            }),
        );
        let s = serve_router(&server, app);
        results.push(drive(
            &client,
            name,
            s.addr,
            (0..conns).map(|_| Raw).collect(),
            warmup,
            secs,
        ));
        s.stop(&server);
        eprintln!("done: {name}");
    }

    // (a) hello-world again, last: the reference is the mean of both.
    let s = serve_router(&server, hello());
    results.push(drive(
        &client,
        "hello (last)",
        s.addr,
        (0..conns).map(|_| Hello).collect(),
        warmup,
        secs,
    ));
    s.stop(&server);

    let hello_rate = (results[0].rate() + results[results.len() - 1].rate()) / 2.0;
    println!();
    println!(
        "{conns} keep-alive HTTP/1.1 connections, {} s per phase; {cores} cores shared by server and client",
        secs.as_secs()
    );
    println!();
    println!("| phase | requests/s | p50 ms | p99 ms | errors | ratio to hello-world |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {:.0} | {:.2} | {:.2} | {} | {:.2} |",
            r.name,
            r.rate(),
            r.p50_us as f64 / 1000.0,
            r.p99_us as f64 / 1000.0,
            r.errors,
            r.rate() / hello_rate
        );
    }
    println!();
    println!("CPU during each measured window, in cores (CPU seconds per second):");
    println!();
    println!("| phase | total | server runtime | client runtime | writer | sled | other |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        let g = |k: &str| r.cpu.get(k).copied().unwrap_or(0.0);
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r.name,
            r.cpu.values().sum::<f64>(),
            g("server"),
            g("client"),
            g("writer"),
            g("sled"),
            g("other")
        );
    }
    println!();
    for r in &results {
        if let Some(e) = &r.first_error {
            println!(
                "first error in `{}`: {}",
                r.name,
                e.chars().take(300).collect::<String>()
            );
        }
    }
    let deals = conns as u64 * env_num("BENCH_DEALS_PER_CONN", DEALS_PER_CONN).max(1);
    if let Some(g) = results.iter().find(|r| r.name.contains("Group")) {
        println!();
        println!(
            "{deals} deals per transitions phase: at the Group rate each is moved about {:.0} times in the phase",
            g.rate() * (secs + warmup).as_secs_f64() / deals as f64
        );
    }
    // The target is about the default phase (default policies live); with
    // `BENCH_ONLY` it may not have run.
    if let Some(group) = results
        .iter()
        .find(|r| r.name == "transitions, Durability::Group")
    {
        println!();
        println!(
            "durable (group) transitions: {:.0} % of hello-world (target ≥ 40 %)",
            group.rate() / hello_rate * 100.0
        );
    }
    let rate_of = |needle: &str| {
        results
            .iter()
            .find(|r| r.name.ends_with(needle))
            .map(Outcome::rate)
    };
    if let Some(floor) = rate_of("a transition's 5 keys + group commit") {
        println!(
            "the store alone, writing one transition's keys and nothing else: {:.0} % of hello-world (no transition can exceed it)",
            floor / hello_rate * 100.0
        );
        if let Some(group) = rate_of("transitions, Durability::Group") {
            println!(
                "durable (group) transitions: {:.0} % of the store's floor (target ≥ 75 %)",
                group / floor * 100.0
            );
        }
    }
    if let (Some(off), Some(pair)) = (
        rate_of("Group, policies off"),
        rate_of("Group, rhai guard + wasm after-hook"),
    ) {
        println!(
            "transitions with a rhai guard and a wasm after-hook: {:.0} % of the same route with no policy (target ≥ 80 %)",
            pair / off * 100.0
        );
    }
}
