//! The browser-test harness: the real `dealflow` binary on a loopback port
//! over a fresh data directory, Debian's headless Chromium driven through
//! WebDriver (`chromedriver`, installed with apt-get when missing), and
//! helpers that act and look as a person would: find a control by its
//! label or its text, wait for what the page shows (polling with a bound,
//! never sleeping and hoping), list every request the page made, and save
//! a screenshot of a page under `target/console-screenshots/`.
//!
//! One browser serves every step of a test; [`Browser::close`] ends the
//! browser, the driver and the server.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::{dealflow_binary, ensure_command, start_binary, Server, ADMIN};

/// How long any wait for the page lasts before the test fails.
pub const BOUND: Duration = Duration::from_secs(20);

/// Chromium's command line: headless, no sandbox (tests run as root), and
/// nothing that phones home.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
];

/// A kill-on-drop child process (chromedriver, the server).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A browser on the console of a real server.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    /// `http://127.0.0.1:<port>` of the server.
    pub base: String,
    _server: Process,
    _driver: Process,
    _data: tempfile::TempDir,
    _profile: tempfile::TempDir,
}

/// A reply of [`Browser::http`].
#[derive(Debug)]
pub struct HttpReply {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The body, as JSON when it is (else a string).
    pub body: Value,
}

impl HttpReply {
    /// The body as text (for non-JSON answers).
    pub fn text(&self) -> String {
        match &self.body {
            Value::String(s) => s.clone(),
            v => v.to_string(),
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Where screenshots go: `target/console-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    let bin = dealflow_binary();
    let target = bin
        .parent()
        .and_then(|p| p.parent())
        .expect("target dir")
        .to_path_buf();
    target.join("console-screenshots")
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &std::path::Path) -> Option<std::time::SystemTime> {
    let mut out = None;
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        let t = if p.is_dir() {
            newest(&p)
        } else {
            e.metadata().and_then(|m| m.modified()).ok()
        };
        out = out.max(t);
    }
    out
}

/// Fails when the binary is older than the console or server sources: the
/// console is compiled into it, and `cargo test -p dealflow-tests` alone
/// does not rebuild it (`cargo test --workspace` does).
fn assert_binary_fresh() {
    let bin = dealflow_binary();
    let built = std::fs::metadata(&bin).and_then(|m| m.modified()).ok();
    let server = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../server");
    let sources = [server.join("console"), server.join("src")]
        .iter()
        .filter_map(|d| newest(d))
        .max();
    assert!(
        built.is_some() && sources <= built,
        "{} is older than the server's sources: run `cargo build -p dealflow` (or `cargo test --workspace`)",
        bin.display()
    );
}

impl Browser {
    /// Starts the server, chromedriver and a headless Chromium with a
    /// fresh profile, and opens the console.
    pub async fn start() -> Browser {
        assert_binary_fresh();
        ensure_command("chromium", "chromium");
        ensure_command("chromedriver", "chromium-driver");
        let data = tempfile::tempdir().expect("data dir");
        let Server { child, base } = start_binary(data.path());
        let server = Process(child);
        let port = free_port();
        let driver = Process(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start chromedriver"),
        );
        let profile = tempfile::tempdir().expect("profile dir");
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let caps = json!({
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
            "pageLoadStrategy": "normal"
        });
        let caps = caps.as_object().expect("object").clone();
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                // chromedriver is still starting: it listens within a second or two.
                Err(e) if started.elapsed() < BOUND => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    let _ = e;
                }
                Err(e) => panic!("cannot start a Chromium session: {e}"),
            }
        };
        Browser {
            client,
            base,
            _server: server,
            _driver: driver,
            _data: data,
            _profile: profile,
        }
    }

    /// Ends the browser session (the driver and server end on drop).
    pub async fn close(self) {
        let Browser { client, .. } = self;
        let _ = client.close().await;
    }

    /// Opens `path` (e.g. `/` or `/#/deals`) of the console.
    pub async fn open(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    /// Signs in through the sign-in page with `token` and waits for the
    /// navigation to show.
    pub async fn sign_in(&self, token: &str) {
        self.open("/").await;
        self.fill("Access token", token).await;
        self.click_button("Sign in").await;
        self.wait_for_text("Sign out").await;
    }

    /// Waits until `f` (a JavaScript expression) is truthy; its last value
    /// and `what` are in the failure message.
    pub async fn wait_js(&self, what: &str, expr: &str) -> Value {
        let started = Instant::now();
        loop {
            let v = self
                .client
                .execute(&format!("return ({expr});"), vec![])
                .await
                .unwrap_or(Value::Null);
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return v;
            }
            if started.elapsed() > BOUND {
                let text = self.text().await;
                let shot = self.screenshot("failure").await;
                panic!(
                    "waited {BOUND:?} for {what}; last value {v}; screenshot {}; the page shows:\n{text}",
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the page shows as text (`innerText` of the body, and of
    /// an open dialog).
    pub async fn text(&self) -> String {
        self.client
            .execute("return document.body.innerText;", vec![])
            .await
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Waits until the page shows `text`.
    pub async fn wait_for_text(&self, text: &str) {
        let arg = serde_json::to_string(text).expect("string");
        self.wait_js(
            &format!("the page to show {text:?}"),
            &format!("document.body.innerText.includes({arg})"),
        )
        .await;
    }

    /// Waits until the page no longer shows `text`.
    pub async fn wait_for_no_text(&self, text: &str) {
        let arg = serde_json::to_string(text).expect("string");
        self.wait_js(
            &format!("the page to stop showing {text:?}"),
            &format!("!document.body.innerText.includes({arg})"),
        )
        .await;
    }

    /// Waits until `selector` matches `n` elements.
    pub async fn wait_count(&self, selector: &str, n: usize) {
        let arg = serde_json::to_string(selector).expect("string");
        self.wait_js(
            &format!("{n} elements matching {selector}"),
            &format!("document.querySelectorAll({arg}).length === {n}"),
        )
        .await;
    }

    /// The form control labelled `label` (a `<label for>` whose text,
    /// without a required marker, is `label`), waiting for it to appear.
    pub async fn field(&self, label: &str) -> Element {
        let arg = serde_json::to_string(label).expect("string");
        let id = self
            .wait_js(
                &format!("a field labelled {label:?}"),
                &format!(
                    "(() => {{ const want = {arg};
                      for (const l of document.querySelectorAll('label[for]')) {{
                        const text = l.textContent.replace(/\\s*\\*\\s*$/, '').trim();
                        if (text === want && document.getElementById(l.htmlFor)) return l.htmlFor;
                      }}
                      for (const e of document.querySelectorAll('[aria-label]')) {{
                        if (e.getAttribute('aria-label') === want && e.matches('input,select,textarea')) {{
                          if (!e.id) e.id = 'aria-' + Math.random().toString(36).slice(2);
                          return e.id;
                        }}
                      }}
                      return null; }})()"
                ),
            )
            .await;
        let id = id.as_str().expect("an id").to_string();
        match self.client.find(Locator::Id(&id)).await {
            Ok(e) => e,
            // Re-rendered between the script and the lookup: look again.
            Err(_) => Box::pin(self.field(label)).await,
        }
    }

    /// Types `value` into the field labelled `label` (clearing it first),
    /// and types it again when a re-render between the clearing and the
    /// typing put the old value back.
    pub async fn fill(&self, label: &str, value: &str) {
        let started = Instant::now();
        loop {
            let f = self.field(label).await;
            let typed = async {
                f.clear().await?;
                f.send_keys(value).await?;
                f.prop("value").await
            };
            match typed.await {
                Ok(Some(v)) if v == value => return,
                Ok(v) if started.elapsed() > BOUND => {
                    panic!("typed {value:?} into {label:?}, it holds {v:?}")
                }
                Ok(_) => {}
                Err(e) if started.elapsed() > BOUND => panic!("cannot type into {label:?}: {e}"),
                // Re-rendered under our hands: find it again.
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Picks the option shown as `option` in the select labelled `label`.
    pub async fn choose(&self, label: &str, option: &str) {
        let f = self.field(label).await;
        f.select_by_label(option).await.expect("select");
    }

    /// The button whose text or accessible name is `text`, waiting for it
    /// to be there and enabled.
    pub async fn button(&self, text: &str) -> Element {
        loop {
            if let Some(b) = self.try_button(text).await {
                return b;
            }
        }
    }

    /// Clicks the button `text` (found again when the page re-rendered it
    /// between finding and clicking).
    pub async fn click_button(&self, text: &str) {
        let started = Instant::now();
        loop {
            let Some(b) = self.try_button(text).await else {
                continue;
            };
            match b.click().await {
                Ok(()) => return,
                Err(e) if started.elapsed() > BOUND => panic!("cannot click {text:?}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// The button `text` once it is there, or `None` when it was replaced
    /// right after being found.
    async fn try_button(&self, text: &str) -> Option<Element> {
        let arg = serde_json::to_string(text).expect("string");
        let id = self
            .wait_js(
                &format!("an enabled button {text:?}"),
                &format!(
                    "(() => {{ const want = {arg};
                      const all = [...document.querySelectorAll('button')];
                      const b = all.find(b => !b.disabled && (b.getAttribute('aria-label') === want || b.innerText.trim() === want));
                      if (!b) return null;
                      if (!b.id) b.id = 'btn-' + Math.random().toString(36).slice(2);
                      return b.id; }})()"
                ),
            )
            .await;
        let id = id.as_str().expect("an id").to_string();
        self.client.find(Locator::Id(&id)).await.ok()
    }

    /// Whether a button `text` is shown but disabled.
    pub async fn button_disabled(&self, text: &str) -> bool {
        let arg = serde_json::to_string(text).expect("string");
        self.client
            .execute(
                &format!(
                    "return [...document.querySelectorAll('button')].some(b => b.disabled && b.innerText.trim() === {arg});"
                ),
                vec![],
            )
            .await
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// Every URL the page has requested or points its elements at: the
    /// document, each finished request (scripts, styles, images, fetches)
    /// from the Resource Timing API, and every `src` and `href` in the
    /// page (a request still open, such as the event stream, is listed by
    /// Resource Timing only once it ends).
    pub async fn requests(&self) -> Vec<String> {
        let v = self
            .client
            .execute(
                "return [location.href, ...performance.getEntriesByType('navigation').map(e => e.name),
                         ...performance.getEntriesByType('resource').map(e => e.name),
                         ...[...document.querySelectorAll('[src],[href]')].map(e => e.src || e.href)
                            .filter(u => typeof u === 'string' && u !== '')];",
                vec![],
            )
            .await
            .expect("read the resource timings");
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The requests that went anywhere but the server (none, in a console
    /// that works on a closed network).
    pub async fn foreign_requests(&self) -> Vec<String> {
        let origin = format!("{}/", self.base);
        self.requests()
            .await
            .into_iter()
            .filter(|u| !u.starts_with(&origin) && u != &self.base)
            .collect()
    }

    /// Lets the resource timing buffer hold every request of a long test.
    pub async fn record_all_requests(&self) {
        let _ = self
            .client
            .execute("performance.setResourceTimingBufferSize(100000);", vec![])
            .await;
    }

    /// Saves a screenshot as `target/console-screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// The value of the HttpOnly session cookie, as the browser holds it
    /// (WebDriver sees what scripts cannot).
    pub async fn session_cookie(&self) -> Option<String> {
        self.client
            .get_all_cookies()
            .await
            .ok()?
            .into_iter()
            .find(|c| c.name() == "dealflow_session")
            .map(|c| c.value().to_string())
    }

    /// Sends one request to the server, as an API client or a page of
    /// another site would (set-up and checks outside the browser).
    pub async fn http(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> HttpReply {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(HttpConnector::new());
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let res = client
            .request(req.body(Full::new(Bytes::from(bytes))).expect("request"))
            .await
            .expect("the server answers");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        HttpReply {
            status,
            headers,
            body,
        }
    }

    /// A request with a bearer token that must succeed (set-up).
    pub async fn ok(&self, method: Method, path: &str, token: &str, body: Value) -> Value {
        let auth = format!("Bearer {token}");
        let r = self
            .http(
                method.clone(),
                path,
                &[("authorization", &auth)],
                Some(body),
            )
            .await;
        assert!(
            r.status.is_success(),
            "set-up {method} {path}: {} {}",
            r.status,
            r.body
        );
        r.body
    }

    /// Issues a token as the admin; returns the secret.
    pub async fn token(&self, role: &str, branch: Option<&str>, user: &str) -> String {
        let mut body = json!({"role": role, "user": user});
        if let Some(b) = branch {
            body["branch"] = json!(b);
        }
        self.ok(Method::POST, "/v1/tokens", ADMIN, body).await["token"]
            .as_str()
            .expect("token")
            .to_string()
    }
}
