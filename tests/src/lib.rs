//! Shared helpers for the end-to-end tests: an in-process server driven
//! through the router (no socket), and the real `dealflow` binary started on
//! a loopback port.
//!
//! [`browser`] drives headless Chromium against the real binary for the
//! console's tests.
//!
//! Tests read as Given / When / Then; every helper here only sets the stage
//! and sends requests, it asserts nothing on the test's behalf except that
//! set-up requests succeed.

pub mod browser;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use dealflow::service::Retention;
use dealflow::store::{Durability, SledStore};
use dealflow::Services;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// The admin token every test server starts with.
pub const ADMIN: &str = "test-admin-token-0123456789";

/// A response, decoded.
#[derive(Debug, Clone)]
pub struct Reply {
    /// Status code.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body as JSON (`Value::Null` when empty, a string when not JSON).
    pub body: Value,
}

impl Reply {
    /// The error code of an error body.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// A string field of the body.
    pub fn str(&self, field: &str) -> String {
        self.body[field].as_str().unwrap_or_default().to_string()
    }
}

/// A server on a temporary sled database, driven through the router.
pub struct TestApp {
    /// The application.
    pub router: Router,
    /// The services (for reopening checks).
    pub services: Services,
    /// Keeps the database directory alive.
    pub dir: tempfile::TempDir,
}

impl TestApp {
    /// A fresh server with the admin token [`ADMIN`].
    pub async fn new() -> Self {
        Self::with_event_retention(Retention::default()).await
    }

    /// A fresh server whose event log keeps only what `retention` allows.
    pub async fn with_event_retention(retention: Retention) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let (router, services) = open_app_with(dir.path(), retention).await;
        Self {
            router,
            services,
            dir,
        }
    }

    /// Drops every handle on the database (once the background re-tier
    /// and event-log trim are done with it) and returns its directory, to
    /// reopen or edit it.
    pub async fn close(self) -> tempfile::TempDir {
        self.services.tiering_idle().await;
        self.services.due_index_idle().await;
        self.services.event_trim_idle().await;
        let Self {
            router,
            services,
            dir,
        } = self;
        drop(router);
        drop(services);
        dir
    }

    /// A server on the database in `dir`, as a restarted binary opens it.
    pub async fn reopen(dir: tempfile::TempDir) -> Self {
        let (router, services) = open_app(dir.path()).await;
        Self {
            router,
            services,
            dir,
        }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let raw = body.map(|b| b.to_string().into_bytes());
        self.send_raw(method, path, token, raw, &[]).await
    }

    /// Sends raw bytes with extra headers.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req
            .body(body.map_or_else(Body::empty, Body::from))
            .expect("request");
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("router never fails");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GET.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    /// PATCH a JSON body, optionally with `If-Match`.
    pub async fn patch(
        &self,
        path: &str,
        token: &str,
        body: Value,
        if_match: Option<u64>,
    ) -> Reply {
        let v = if_match.map(|v| format!("\"{v}\""));
        let headers: Vec<(&str, &str)> = v.iter().map(|v| ("if-match", v.as_str())).collect();
        self.send_raw(
            Method::PATCH,
            path,
            Some(token),
            Some(body.to_string().into_bytes()),
            &headers,
        )
        .await
    }

    /// POST that must succeed (set-up); returns the body.
    pub async fn ok(&self, path: &str, token: &str, body: Value) -> Value {
        let r = self.post(path, token, body).await;
        assert!(
            r.status.is_success(),
            "set-up POST {path} failed: {} {}",
            r.status,
            r.body
        );
        r.body
    }

    /// Creates a branch (as admin).
    pub async fn branch(&self, id: &str) {
        self.ok(
            "/v1/branches",
            ADMIN,
            json!({"id": id, "name": format!("Branch {id}")}),
        )
        .await;
    }

    /// Creates a brand (as admin).
    pub async fn brand(&self, id: &str) {
        self.ok(
            "/v1/brands",
            ADMIN,
            json!({"id": id, "name": id, "introduced_at": "2026-01-01"}),
        )
        .await;
    }

    /// Issues a token and returns its secret.
    pub async fn token(&self, role: &str, branch: Option<&str>, user: &str) -> String {
        let mut body = json!({"role": role, "user": user});
        if let Some(b) = branch {
            body["branch"] = json!(b);
        }
        self.ok("/v1/tokens", ADMIN, body).await["token"]
            .as_str()
            .expect("token")
            .to_string()
    }

    /// Creates a customer in `branch` owned by `owner`; returns its id.
    pub async fn customer(&self, token: &str, branch: &str, owner: &str) -> String {
        let body = json!({"name": "ACME", "branch": branch, "owner": owner,
                          "segment": "enterprise", "source": "self_developed"});
        self.ok("/v1/customers", token, body).await["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Opens a deal with one line of `brand`; returns its id.
    pub async fn deal(&self, token: &str, customer: &str, owner: &str, brand: &str) -> String {
        self.ok("/v1/deals", token, deal_body(customer, owner, brand))
            .await["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Gives `branch` a pipeline that signs in one move (`open` → `sign`,
    /// or `lost`), for tests about what follows a signing.
    pub async fn one_move_pipeline(&self, branch: &str) {
        let r = self
            .send(
                Method::PUT,
                &format!("/v1/branches/{branch}/pipeline"),
                Some(ADMIN),
                Some(json!({
                    "stages": [{"id": "open"}, {"id": "sign", "kind": "won"}, {"id": "lost", "kind": "lost"}],
                    "moves": [{"from": "open", "to": "sign"}, {"from": "open", "to": "lost"}]
                })),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    /// Signs in with `token` (`POST /v1/sessions`, as the console does);
    /// the session's cookie and CSRF token, and the reply.
    pub async fn sign_in(&self, token: &str) -> (Session, Reply) {
        let r = self
            .send(
                Method::POST,
                "/v1/sessions",
                None,
                Some(json!({ "token": token })),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "sign-in failed: {}", r.body);
        (Session::of(&r), r)
    }

    /// Sends a request as a browser with `session` would: the cookie, a
    /// same-origin `Origin` and, for writes, the CSRF token; `headers`
    /// are added (and may override those).
    pub async fn send_session(
        &self,
        method: Method,
        path: &str,
        session: &Session,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let cookie = format!("dealflow_session={}", session.id);
        let mut all: Vec<(&str, &str)> = vec![("cookie", &cookie), ("host", "127.0.0.1:8080")];
        if !matches!(method, Method::GET | Method::HEAD) {
            all.push(("origin", "http://127.0.0.1:8080"));
            all.push(("x-csrf-token", &session.csrf));
        }
        all.retain(|(k, _)| !headers.iter().any(|(h, _)| h.eq_ignore_ascii_case(k)));
        all.extend_from_slice(headers);
        let raw = body.map(|b| b.to_string().into_bytes());
        self.send_raw(method, path, None, raw, &all).await
    }

    /// Moves a deal; returns the reply.
    pub async fn move_to(&self, token: &str, deal: &str, to: &str) -> Reply {
        self.post(
            &format!("/v1/deals/{deal}/transitions"),
            token,
            json!({"to": to}),
        )
        .await
    }
}

/// A signed-in browser session: the cookie's value and its CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    /// The `dealflow_session` cookie's value.
    pub id: String,
    /// The session's CSRF token (`X-CSRF-Token`).
    pub csrf: String,
    /// The whole `Set-Cookie` header that set it.
    pub set_cookie: String,
}

impl Session {
    /// The session a `POST /v1/sessions` reply opened.
    pub fn of(r: &Reply) -> Self {
        let set_cookie = r
            .headers
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .expect("Set-Cookie")
            .to_string();
        let id = set_cookie
            .split(';')
            .next()
            .and_then(|kv| kv.strip_prefix("dealflow_session="))
            .expect("the dealflow_session cookie")
            .to_string();
        Session {
            id,
            csrf: r.str("csrf_token"),
            set_cookie,
        }
    }
}

/// A valid deal body.
pub fn deal_body(customer: &str, owner: &str, brand: &str) -> Value {
    json!({"customer_id": customer, "title": "Fleet of 3", "owner": owner, "currency": "CNY",
           "lines": [{"brand": brand, "product": "XC90", "amount": "600000", "cost": "500000"}]})
}

/// Opens the router over the sled database in `dir` (reopen to test
/// persistence).
pub async fn open_app(dir: &Path) -> (Router, Services) {
    open_app_with(dir, Retention::default()).await
}

/// [`open_app`] with the event log kept for `retention`.
pub async fn open_app_with(dir: &Path, retention: Retention) -> (Router, Services) {
    let store = open_when_released(dir).await;
    let services = Services::new(Arc::new(store))
        .expect("the policy engines start")
        .with_event_retention(retention);
    services
        .bootstrap_admin(Some(ADMIN))
        .await
        .expect("admin token");
    services.upgrade_store().await.expect("store upgrade");
    services.init_policies().await.expect("default policies");
    services.resume_tiering().await.expect("tiering resumes");
    services
        .resume_due_index()
        .await
        .expect("the due index resumes");
    services
        .resume_revenue_counts()
        .expect("the revenue counters resume");
    (dealflow::router(services.clone()), services)
}

/// Opens the store in `dir` once the previous handle in this process has let
/// go of it: sled releases its file lock from its own background threads,
/// shortly after the last handle is dropped, so a reopen right after a drop
/// can find it still locked (seen under load: `WouldBlock`).
pub async fn open_when_released(dir: &Path) -> SledStore {
    let mut tries = 0;
    loop {
        match SledStore::open(dir, Durability::Group) {
            Ok(store) => return store,
            Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err(e) => panic!("open store: {e:?}"),
        }
    }
}

/// The `dealflow` binary built by `cargo test --workspace` (cargo builds the
/// server's binary for its own integration tests, next to the test binaries).
pub fn dealflow_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("DEALFLOW_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/dealflow
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join(format!("dealflow{}", std::env::consts::EXE_SUFFIX))
}

/// What a run of the `dealflow` command printed, and whether it succeeded.
#[derive(Debug)]
pub struct CliRun {
    /// Exit status 0.
    pub ok: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error (progress lines and errors).
    pub stderr: String,
}

/// Runs the `dealflow` binary with `args` and extra environment variables,
/// and waits for it.
pub fn run_cli(args: &[&std::ffi::OsStr], env: &[(&str, &str)]) -> CliRun {
    let out = Command::new(dealflow_binary())
        .args(args)
        .envs(env.iter().copied())
        .env_remove("DEALFLOW_ADMIN_TOKEN")
        .output()
        .expect("run dealflow");
    CliRun {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running server process and its base URL.
pub struct Server {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

/// Starts the real binary on a free loopback port over `dir`, with the
/// admin token [`ADMIN`], and waits until it listens.
pub fn start_binary(dir: &Path) -> Server {
    let bin = dealflow_binary();
    assert!(
        bin.exists(),
        "{} is missing: run the suite with `cargo test --workspace`, which builds it",
        bin.display()
    );
    let mut child = Command::new(bin)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
            "--data-dir",
        ])
        .arg(dir)
        .env("DEALFLOW_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dealflow");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .expect("log line");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if v["message"] == "dealflow listening" {
            break v["addr"].as_str().expect("addr").to_string();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        base: format!("http://{addr}"),
    }
}

/// An HTTP client for a [`Server`].
pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<hyper::body::Bytes>,
>;

/// A new [`HttpClient`].
pub fn http_client() -> HttpClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// Sends a JSON request to a real server as the admin; the status and the
/// body as JSON (`null` when it is not JSON).
pub async fn call(
    client: &HttpClient,
    method: Method,
    url: String,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(
            body.map(|b| b.to_string()).unwrap_or_default(),
        )))
        .expect("request");
    let res = client.request(req).await.expect("server answers");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// The `large-deal-guard` example plugin as a WebAssembly component, built
/// from `plugins/large-deal-guard` by this crate's `build.rs`.
pub const PLUGIN_LARGE_DEAL_GUARD: &str = env!("PLUGIN_LARGE_DEAL_GUARD");

/// The `handover-review` example plugin (an after hook) as a WebAssembly
/// component, built from `plugins/handover-review` by this crate's `build.rs`.
pub const PLUGIN_HANDOVER_REVIEW: &str = env!("PLUGIN_HANDOVER_REVIEW");

/// The `new-brand-bonus` example plugin as a WebAssembly component, built
/// from `plugins/new-brand-bonus` by this crate's `build.rs`.
pub const PLUGIN_NEW_BRAND_BONUS: &str = env!("PLUGIN_NEW_BRAND_BONUS");

/// The `hostile-plugin` test fixture (`tests/hostile-plugin`) as a
/// WebAssembly component: misbehaves as its deal attribute `mode` says.
pub const PLUGIN_HOSTILE: &str = env!("PLUGIN_HOSTILE_PLUGIN");

/// The JSON body uploading the component at `path` as policy `name`.
pub fn wasm_upload_body(path: &str, name: &str, scope: &str) -> Value {
    use base64::Engine as _;
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    json!({"name": name, "scope": scope, "runtime": "wasm",
           "module": base64::engine::general_purpose::STANDARD.encode(bytes)})
}

/// A small deterministic generator (xorshift64*), so a failure reproduces.
pub struct Gen(pub u64);

impl Gen {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A decimal with `places` decimals below `max`.
    pub fn decimal(&mut self, max: u64, places: u32) -> rust_decimal::Decimal {
        let scale = 10u64.pow(places);
        rust_decimal::Decimal::new((self.below(max * scale)) as i64, places)
    }
}

/// What the benchmarks share: knobs from the environment, an admin
/// principal, the process's peak memory.
pub mod bench {
    use dealflow::auth::Principal;
    use dealflow::domain::token::Role;

    /// A multi-threaded runtime and services over a fresh sled store in a
    /// temporary directory (kept alive by the returned handle) with a page
    /// cache of `cache_mb` MiB, as `dealflow serve --cache-mb`; writes are
    /// not flushed one by one (set-up writes in bulk, then flushes).
    pub fn open_store(
        cache_mb: u64,
    ) -> (
        tokio::runtime::Runtime,
        tempfile::TempDir,
        std::sync::Arc<dyn dealflow::store::Store>,
        dealflow::Services,
    ) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (rt, store, services) = open_store_in(dir.path(), cache_mb);
        (rt, dir, store, services)
    }

    /// As [`open_store`], over the sled store in `path` (created if
    /// missing, kept afterwards): lets a benchmark reuse data it took
    /// minutes to generate.
    pub fn open_store_in(
        path: &std::path::Path,
        cache_mb: u64,
    ) -> (
        tokio::runtime::Runtime,
        std::sync::Arc<dyn dealflow::store::Store>,
        dealflow::Services,
    ) {
        use dealflow::store::{Durability, SledStore, Store};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
            SledStore::open_with_cache(path, Durability::None, cache_mb << 20).expect("open store"),
        );
        let services = dealflow::Services::new(std::sync::Arc::clone(&store))
            .expect("the policy engines start");
        (rt, store, services)
    }

    /// A number from the environment, or `default`.
    pub fn env_num(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// An admin acting in a benchmark's set-up.
    pub fn admin() -> Principal {
        Principal {
            role: Role::Admin,
            branch: None,
            user: "bench".into(),
        }
    }

    /// Peak resident memory since the last [`reset_peak`], in MiB.
    pub fn peak_mib() -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmHWM:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// Resets the peak to the current resident memory (Linux).
    pub fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }

    /// Resident memory now, in MiB (Linux; 0 elsewhere).
    pub fn rss_mib() -> f64 {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// One keep-alive HTTP/1.1 connection of a load generator, sending one
    /// caller's bearer token.
    pub struct Conn {
        sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>,
        token: String,
    }

    impl Conn {
        /// Connects to `addr` as the holder of `token`.
        pub async fn open(addr: std::net::SocketAddr, token: &str) -> Result<Self, String> {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|e| e.to_string())?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                    .await
                    .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Self {
                sender,
                token: token.to_string(),
            })
        }

        /// Sends one request (a JSON body when given) and reads the whole answer.
        pub async fn call(
            &mut self,
            method: hyper::Method,
            path: &str,
            body: Option<&serde_json::Value>,
            if_match: Option<u64>,
        ) -> Result<(hyper::StatusCode, serde_json::Value), String> {
            use http_body_util::BodyExt as _;
            let mut req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header("host", "127.0.0.1")
                .header("authorization", format!("Bearer {}", self.token));
            if body.is_some() {
                req = req.header("content-type", "application/json");
            }
            if let Some(v) = if_match {
                req = req.header("if-match", format!("\"{v}\""));
            }
            let bytes = body.map(|b| b.to_string()).unwrap_or_default();
            let req = req
                .body(http_body_util::Full::new(hyper::body::Bytes::from(bytes)))
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
            let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                serde_json::Value::String(String::from_utf8_lossy(&bytes).into())
            });
            Ok((status, value))
        }

        /// A request that must succeed (set-up); returns the body.
        pub async fn ok(
            &mut self,
            method: hyper::Method,
            path: &str,
            body: serde_json::Value,
        ) -> serde_json::Value {
            let (status, v) = self
                .call(method.clone(), path, Some(&body), None)
                .await
                .unwrap_or_else(|e| panic!("set-up {method} {path}: {e}"));
            assert!(status.is_success(), "set-up {method} {path}: {status} {v}");
            v
        }
    }
}

/// Makes sure `command` is on the `PATH`, installing Debian's `package`
/// with apt-get when it is missing (these machines run tests as root, and
/// the README promises one test command on a fresh machine); panics with
/// what to install when that is not possible.
pub fn ensure_command(command: &str, package: &str) {
    let found = |c: &str| {
        Command::new("bash")
            .args(["-c", &format!("command -v {c}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found(command) {
        return;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = || apt(&["install", "-y", "-q", package]);
    // A fresh machine may have no package lists yet.
    let installed = install() || (apt(&["update", "-q"]) && install());
    assert!(
        installed && found(command),
        "this test needs `{command}`: install Debian's `{package}` package"
    );
}
