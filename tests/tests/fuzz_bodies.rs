//! Fuzzing the write routes with generated and malformed JSON bodies.
//!
//! Thousands of bodies go to every create and patch route: valid ones, and
//! valid ones with fields of the wrong type, unknown or duplicate keys, huge,
//! negative and absurd numbers, too many decimals, deep nesting, invalid
//! UTF-8, truncated JSON, giant strings and `null` where a value is required.
//! Each request is judged on its own, against the state just before it:
//!
//! - never a 5xx; every non-2xx is a 4xx with
//!   `{"error":{"code":<snake_case>,"message":<string>}}`;
//! - a rejected request changes nothing: the whole store is byte-identical,
//!   the target resource read back over HTTP is byte-identical, and no commit
//!   reached the store;
//! - an accepted request commits exactly once and moves the version of the
//!   resource it wrote by exactly one (a create: to 1), touching only that
//!   resource, its history, its indexes and the event log;
//! - a guard's veto is the one refusal that writes: its `veto` event, alone.
//!
//! One app per test function (an app per case would be far too slow). The
//! app sits on a store wrapper that counts the commits reaching sled, so a
//! write the HTTP view cannot see is caught too. `FUZZ_CASES` overrides the
//! number of generated cases per test, `FUZZ_SEED` the seed.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use dealflow::domain::deal::Deal;
use dealflow::store::{
    keys, Batch, CommittedEvent, Durability, Entry, SledStore, Store, StoreError, StoreFuture,
};
use dealflow::Services;
use dealflow_tests::ADMIN;
use http_body_util::BodyExt;
use proptest::prelude::*;
use proptest::sample::{select, Index};

use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};
use serde_json::{json, Value};
use tower::ServiceExt;

// ---------------------------------------------------------------------------
// The app under test, on a store that counts applied commits.

/// A [`SledStore`] that counts the commits that reached the database.
struct CountingStore {
    inner: SledStore,
    applied: AtomicU64,
}

impl Store for CountingStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan(
        &self,
        prefix: &[u8],
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan(prefix, after, limit)
    }

    fn scan_last(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.inner.scan_last(prefix, limit)
    }

    fn count(&self, prefix: &[u8]) -> Result<usize, StoreError> {
        self.inner.count(prefix)
    }

    fn commit(&self, batch: Batch) -> StoreFuture<'_, ()> {
        // A token's last use is stored in the background, at most once a
        // minute, apart from what any request writes, and so are the
        // revenue roll-ups converted after an FX change: not counted.
        let writes = batch
            .written_keys()
            .any(|k| !is_token_use(k) && !is_revenue_rollup(k));
        let inner = self.inner.commit(batch);
        Box::pin(async move {
            let result = inner.await;
            // A conflict or a backend failure applies nothing; a durability
            // failure comes after the batch was applied.
            let applied = matches!(result, Ok(()) | Err(StoreError::Durability(_)));
            if writes && applied {
                self.applied.fetch_add(1, Ordering::SeqCst);
            }
            result
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn next_id(&self) -> Result<u64, StoreError> {
        self.inner.next_id()
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<Vec<CommittedEvent>, StoreError> {
        self.inner.events_after(after, limit)
    }

    fn last_event_id(&self) -> u64 {
        self.inner.last_event_id()
    }

    fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<CommittedEvent> {
        self.inner.subscribe_events()
    }

    fn trim_events(&self, through: u64) -> StoreFuture<'_, usize> {
        self.inner.trim_events(through)
    }

    fn backup(
        &self,
        dir: &std::path::Path,
        progress: dealflow::store::backup::ProgressFn<'_>,
    ) -> Result<dealflow::store::backup::BackupCopy, StoreError> {
        self.inner.backup(dir, progress)
    }
}

/// True for the key of a token's last use.
fn is_token_use(key: &[u8]) -> bool {
    key.starts_with(&keys::prefix(keys::TOKEN_USED, &[]))
}

/// Whether `key` is one of the revenue roll-ups (and their FX stamp and
/// mark), which the background conversion after an FX change also writes,
/// between any two requests: neither counted nor compared here (the
/// property test in key_accounts checks them against the signings).
fn is_revenue_rollup(key: &[u8]) -> bool {
    [
        keys::CONTRIBUTION,
        keys::REVENUE_MONTH,
        keys::REVENUE_DAY,
        keys::REFERRAL_MONTH,
        keys::REFERRAL_DAY,
        "rv.fx",
    ]
    .iter()
    .any(|tag| key.starts_with(&keys::prefix(tag, &[])))
}

/// A response with its raw body.
#[derive(Debug, Clone)]
struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(600)
            .collect()
    }
}

struct App {
    router: Router,
    store: Arc<CountingStore>,
    _dir: tempfile::TempDir,
}

impl App {
    async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(CountingStore {
            inner: SledStore::open(dir.path(), Durability::Group).expect("open store"),
            applied: AtomicU64::new(0),
        });
        let services = Services::new(store.clone()).expect("the policy engines start");
        services.init_policies().await.expect("default policies");
        services
            .bootstrap_admin(Some(ADMIN))
            .await
            .expect("admin token");
        // Each request is checked for exactly its own writes: the re-tier
        // a signing queues (its durable mark is checked) stays queued.
        services.pause_tiering();
        Self {
            router: dealflow::router(services),
            store,
            _dir: dir,
        }
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
        headers: &[(&str, String)],
    ) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {token}"));
        for (k, v) in headers {
            req = req.header(*k, v.as_str());
        }
        let req = req
            .body(body.map_or_else(Body::empty, Body::from))
            .expect("request");
        let res = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router never fails");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    /// A set-up request that must succeed.
    async fn setup(&self, method: Method, path: &str, body: Value) -> Value {
        let r = self
            .send(
                method.clone(),
                path,
                ADMIN,
                Some(body.to_string().into_bytes()),
                &[("content-type", "application/json".into())],
            )
            .await;
        assert!(
            r.status.is_success(),
            "set-up {method} {path} failed: {} {}",
            r.status,
            r.text()
        );
        r.json()
    }

    /// Every key and value in the store, in key order.
    /// Every entry but the tokens' last uses and the revenue roll-ups (see
    /// `CountingStore::commit`).
    fn dump(&self) -> Vec<Entry> {
        let mut all = self.store.scan(b"", None, usize::MAX).expect("scan");
        all.retain(|(k, _)| !is_token_use(k) && !is_revenue_rollup(k));
        all
    }

    fn applied(&self) -> u64 {
        self.store.applied.load(Ordering::SeqCst)
    }
}

// ---------------------------------------------------------------------------
// A JSON tree that can hold raw (possibly invalid) text and duplicate keys.

#[derive(Debug, Clone)]
enum J {
    Raw(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl From<&Value> for J {
    fn from(v: &Value) -> Self {
        match v {
            Value::Array(a) => J::Arr(a.iter().map(J::from).collect()),
            Value::Object(o) => J::Obj(o.iter().map(|(k, v)| (k.clone(), J::from(v))).collect()),
            scalar => J::Raw(scalar.to_string()),
        }
    }
}

impl J {
    fn render(&self, out: &mut String) {
        match self {
            J::Raw(s) => out.push_str(s),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push(']');
            }
            J::Obj(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).expect("key"));
                    out.push(':');
                    v.render(out);
                }
                out.push('}');
            }
        }
    }

    /// Paths of every node but the root; `objects` also collects the paths
    /// of object nodes (the root included).
    fn walk(
        &self,
        at: &mut Vec<usize>,
        nodes: &mut Vec<Vec<usize>>,
        objects: &mut Vec<Vec<usize>>,
    ) {
        let children: Vec<&J> = match self {
            J::Raw(_) => return,
            J::Arr(items) => items.iter().collect(),
            J::Obj(members) => {
                objects.push(at.clone());
                members.iter().map(|(_, v)| v).collect()
            }
        };
        for (i, child) in children.into_iter().enumerate() {
            at.push(i);
            nodes.push(at.clone());
            child.walk(at, nodes, objects);
            at.pop();
        }
    }

    fn node_paths(&self) -> (Vec<Vec<usize>>, Vec<Vec<usize>>) {
        let (mut nodes, mut objects) = (Vec::new(), Vec::new());
        self.walk(&mut Vec::new(), &mut nodes, &mut objects);
        (nodes, objects)
    }

    fn at_mut(&mut self, path: &[usize]) -> &mut J {
        let Some((first, rest)) = path.split_first() else {
            return self;
        };
        match self {
            J::Raw(_) => unreachable!("paths only lead through containers"),
            J::Arr(items) => items[*first].at_mut(rest),
            J::Obj(members) => members[*first].1.at_mut(rest),
        }
    }

    fn remove(&mut self, path: &[usize]) {
        let (last, parent) = path.split_last().expect("not the root");
        match self.at_mut(parent) {
            J::Arr(items) => {
                items.remove(*last);
            }
            J::Obj(members) => {
                members.remove(*last);
            }
            J::Raw(_) => unreachable!(),
        }
    }

    /// The key of the member at `path`, when its parent is an object.
    fn member_key(&mut self, path: &[usize]) -> Option<String> {
        let (last, parent) = path.split_last()?;
        match self.at_mut(parent) {
            J::Obj(members) => Some(members[*last].0.clone()),
            _ => None,
        }
    }
}

fn render(j: &J) -> Vec<u8> {
    let mut s = String::new();
    j.render(&mut s);
    s.into_bytes()
}

// ---------------------------------------------------------------------------
// Hostile values and mutations.

/// Raw JSON texts (some not JSON at all) put in place of a field's value.
const NASTY: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "-0.0",
    "0.0",
    "1",
    "-1",
    "1.5",
    "1e308",
    "-1e308",
    "1e309",
    "1E+2",
    "1e-7",
    "2.5e3",
    "1000000000000",
    "1000000000001",
    "1000000000000.000001",
    "1000000000000.0000001",
    "999999999999.999999",
    "0.000001",
    "0.0000001",
    "0.1234567",
    "123456789012345678901234567890",
    "18446744073709551615",
    "18446744073709551616",
    "-9223372036854775808",
    "-9223372036854775809",
    "4.9e-324",
    "1.7976931348623157e308",
    "NaN",
    "Infinity",
    "-Infinity",
    "nan",
    "01",
    "1.",
    ".5",
    "+1",
    "0x10",
    "\"\"",
    "\" \"",
    "\"NaN\"",
    "\"Infinity\"",
    "\"-0\"",
    "\"-0.000\"",
    "\"1e5\"",
    "\"1E3\"",
    "\"0x10\"",
    "\" 12 \"",
    "\"+5\"",
    "\"12.\"",
    "\".5\"",
    "\".\"",
    "\"-\"",
    "\"+\"",
    "\"--1\"",
    "\"1_000\"",
    "\"1,000.00\"",
    "\"\u{0661}\u{0662}\"",
    "\"12.34.56\"",
    "\"0.00000000000000000000000000000001\"",
    "\"0.0000000000000000000000000001\"",
    "\"79228162514264337593543950336\"",
    "\"79228162514264337593543950335\"",
    "\"1000000000000.0000000000000000001\"",
    "\"999999999999999999999999999999999999999\"",
    "\"1000000000000.000001\"",
    "\"0.1234567\"",
    "\"\\u0000\"",
    "\"a\\u0000b\"",
    "\"\\ud800\"",
    "\"\\udc00x\"",
    "\"\\u001b[31m\"",
    "\"\\t\"",
    "\"\\n\"",
    "\"\u{65e5}\u{672c}\u{8a9e}\"",
    "\"\u{1f697}\"",
    "\"\\u202e\"",
    "\"\u{feff}\"",
    "\"2026-03-15T09:30:00Z\"",
    "\"2026-03-15\"",
    "\"2026-02-30\"",
    "\"2026-13-01T00:00:00Z\"",
    "\"1969-12-31T23:59:59Z\"",
    "\"1970-01-01T00:00:00Z\"",
    "\"0000-01-01T00:00:00Z\"",
    "\"9999-12-31T23:59:59Z\"",
    "\"+275760-09-13T00:00:00Z\"",
    "\"2026-03-15T09:30:00+14:00\"",
    "\"2026-03-15T09:30:00.123456789Z\"",
    "\"2026-03-15 09:30:00\"",
    "\"yesterday\"",
    "\"admin\"",
    "\"rep1\"",
    "\"fz\"",
    "\"other\"",
    "\"bz\"",
    "\"../../etc/passwd\"",
    "\"cus_000000000001\"",
    "\"deal_000000000001\"",
    "\"a\"",
    "\"b\"",
    "\"won\"",
    "\"lost\"",
    "\"CNY\"",
    "\"usd\"",
    "\"XXX\"",
    "\"EURO\"",
    "\"enterprise\"",
    "\"ENTERPRISE\"",
    "\"referral\"",
    "\"visit\"",
    "[]",
    "{}",
    "[null]",
    "[\"x\"]",
    "[1,2,3]",
    "{\"a\":1}",
    "{\"brand\":\"bz\"}",
    "[[[[[]]]]]",
];

/// Whole bodies that replace the generated one.
const WHOLE: &[&str] = &[
    "",
    " ",
    "null",
    "[]",
    "\"x\"",
    "0",
    "{}",
    "{",
    "}",
    "{\"\":1}",
    "[{}]",
    "\u{feff}{}",
    "{}{}",
    "{\"to\":\"a\"}",
    "{\"name\":\"x\",\"name\":\"y\"}",
    "{\"a\":",
    "{'to':'a'}",
];

/// Byte sequences that are not valid UTF-8 (or not valid in JSON).
const BAD_BYTES: &[&[u8]] = &[
    &[0xff],
    &[0xfe],
    &[0xc3],
    &[0xc3, 0x28],
    &[0xed, 0xa0, 0x80],
    &[0xf4, 0x90, 0x80, 0x80],
    &[0xc0, 0xaf],
    &[0x80],
    &[0x00],
    &[0x1b],
    &[0xef, 0xbb, 0xbf],
];

/// Text appended after the body.
const TRAILERS: &[&str] = &[
    "}", " x", "{}", ",", "\n", "  ", "\u{0}", "//c", "]", "null",
];

/// Names for added (mostly unknown) fields.
const FIELD_NAMES: &[&str] = &[
    "extra",
    "Name",
    "name ",
    "__proto__",
    "id",
    "version",
    "stage",
    "tier",
    "constructor",
    "",
    "branch",
    "to",
    "lines",
    "amount",
    "dry_run",
];

/// A position in a collection of any size, as a fraction of its length
/// (0 is the first element; shrinks toward it).
#[derive(Debug, Clone, Copy)]
struct Frac(u64);

impl Frac {
    fn index(self, n: usize) -> usize {
        ((n.max(1) as u128 * u128::from(self.0)) >> 64) as usize
    }

    /// The fraction that selects element `k` of `n`.
    fn at(k: usize, n: usize) -> Self {
        Frac((((k as u128) << 64).div_ceil(n as u128)) as u64)
    }
}

fn frac() -> impl Strategy<Value = Frac> {
    any::<Index>().prop_map(|i| Frac(i.index(usize::MAX) as u64))
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace a node with raw text.
    Replace(Frac, String),
    /// Remove a node.
    Remove(Frac),
    /// Add a member to an object.
    AddField(Frac, String, String),
    /// Repeat an object member's key with another value.
    DuplicateKey(Frac, String),
    /// Wrap a node's value in this many arrays.
    Nest(Frac, usize),
    /// Replace a node with a string of this many characters.
    GiantString(Frac, usize),
    /// Replace the whole body.
    Whole(String),
    /// Cut the rendered body at a byte.
    Truncate(Frac),
    /// Insert bytes into the rendered body.
    Bytes(Frac, Vec<u8>),
    /// Append text to the rendered body.
    Trailing(String),
}

fn nasty() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(NASTY).prop_map(str::to_string),
        1 => any::<f64>().prop_map(|f| format!("{f}")),
        1 => any::<f64>().prop_map(|f| format!("{f:e}")),
        1 => any::<i64>().prop_map(|i| i.to_string()),
        1 => any::<u128>().prop_map(|i| i.to_string()),
        2 => (any::<u64>(), 0usize..40, any::<bool>(), any::<bool>()).prop_map(|(m, places, neg, quoted)| {
            let digits = format!("{m:0>width$}", width = places + 1);
            let (int, frac) = digits.split_at(digits.len() - places);
            let sign = if neg { "-" } else { "" };
            let text = if places == 0 { format!("{sign}{int}") } else { format!("{sign}{int}.{frac}") };
            if quoted { format!("\"{text}\"") } else { text }
        }),
        2 => any::<String>().prop_map(|s| serde_json::to_string(&s).expect("string")),
        1 => "[a-z0-9_-]{0,42}".prop_map(|s| serde_json::to_string(&s).expect("string")),
        1 => (1usize..300).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d))),
        1 => (1usize..200).prop_map(|d| format!("{}1{}", "{\"a\":".repeat(d), "}".repeat(d))),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        8 => (frac(), nasty()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => frac().prop_map(Mutation::Remove),
        2 => (frac(), select(FIELD_NAMES), nasty())
            .prop_map(|(i, k, v)| Mutation::AddField(i, k.to_string(), v)),
        2 => (frac(), nasty()).prop_map(|(i, v)| Mutation::DuplicateKey(i, v)),
        1 => (frac(), select(vec![2usize, 64, 127, 128, 129, 1000, 20_000]))
            .prop_map(|(i, d)| Mutation::Nest(i, d)),
        1 => (frac(), select(vec![201usize, 10_001, 100_000, 1_100_000]))
            .prop_map(|(i, n)| Mutation::GiantString(i, n)),
        1 => select(WHOLE).prop_map(|s| Mutation::Whole(s.to_string())),
        2 => frac().prop_map(Mutation::Truncate),
        2 => (frac(), select(BAD_BYTES)).prop_map(|(i, b)| Mutation::Bytes(i, b.to_vec())),
        1 => select(TRAILERS).prop_map(|s| Mutation::Trailing(s.to_string())),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop_oneof![
        1 => Just(Vec::new()),
        1 => prop::collection::vec(mutation(), 1..=3),
    ]
}

/// Applies the mutations: tree ones first, in order, then byte ones.
fn apply(body: &Value, mutations: &[Mutation]) -> Vec<u8> {
    let mut tree = J::from(body);
    let mut whole: Option<String> = None;
    for m in mutations {
        let (nodes, objects) = tree.node_paths();
        let node = |i: &Frac| (!nodes.is_empty()).then(|| nodes[i.index(nodes.len())].clone());
        match m {
            Mutation::Replace(i, v) => {
                if let Some(p) = node(i) {
                    *tree.at_mut(&p) = J::Raw(v.clone());
                }
            }
            Mutation::Remove(i) => {
                if let Some(p) = node(i) {
                    tree.remove(&p);
                }
            }
            Mutation::AddField(i, k, v) => {
                let p = &objects[i.index(objects.len())];
                if let J::Obj(members) = tree.at_mut(p) {
                    members.push((k.clone(), J::Raw(v.clone())));
                }
            }
            Mutation::DuplicateKey(i, v) => {
                if let Some(p) = node(i) {
                    if let Some(key) = tree.member_key(&p) {
                        let parent = &p[..p.len() - 1];
                        if let J::Obj(members) = tree.at_mut(parent) {
                            members.push((key, J::Raw(v.clone())));
                        }
                    }
                }
            }
            Mutation::Nest(i, depth) => {
                if let Some(p) = node(i) {
                    let inner = render(tree.at_mut(&p));
                    let inner = String::from_utf8(inner).expect("rendered text");
                    *tree.at_mut(&p) = J::Raw(format!(
                        "{}{inner}{}",
                        "[".repeat(*depth),
                        "]".repeat(*depth)
                    ));
                }
            }
            Mutation::GiantString(i, n) => {
                if let Some(p) = node(i) {
                    *tree.at_mut(&p) = J::Raw(format!("\"{}\"", "g".repeat(*n)));
                }
            }
            Mutation::Whole(s) => whole = Some(s.clone()),
            Mutation::Truncate(_) | Mutation::Bytes(..) | Mutation::Trailing(_) => {}
        }
    }
    let mut bytes = whole.map_or_else(|| render(&tree), String::into_bytes);
    for m in mutations {
        match m {
            Mutation::Truncate(i) => {
                let at = i.index(bytes.len().max(1));
                bytes.truncate(at);
            }
            Mutation::Bytes(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Trailing(s) => bytes.extend_from_slice(s.as_bytes()),
            _ => {}
        }
    }
    bytes
}

// ---------------------------------------------------------------------------
// Routes, fixtures and valid bodies.

const BRANCH: &str = "fz";
/// The open stages of the fuzzed branch's pipeline (`quote` has the default
/// quote-late guard).
const OPEN_STAGES: &[&str] = &["a", "qualify", "b", "quote"];
/// Its allowed moves.
const MOVES: &[(&str, &str)] = &[
    ("a", "b"),
    ("b", "a"),
    ("a", "qualify"),
    ("qualify", "a"),
    ("qualify", "quote"),
    ("b", "quote"),
    ("quote", "a"),
    ("quote", "won"),
    ("b", "won"),
    ("a", "lost"),
    ("quote", "lost"),
];
const OTHER: &str = "other";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Route {
    CreateCustomer,
    PatchCustomer,
    CreateRecord,
    CreateDeal,
    PatchDeal,
    Transition,
    CreateBranch,
    CreateBrand,
    CreateFx,
}

impl Route {
    fn method(self) -> Method {
        match self {
            Route::PatchCustomer | Route::PatchDeal => Method::PATCH,
            _ => Method::POST,
        }
    }

    fn path(self, target: &str) -> String {
        match self {
            Route::CreateCustomer => "/v1/customers".into(),
            Route::PatchCustomer => format!("/v1/customers/{target}"),
            Route::CreateRecord => format!("/v1/customers/{target}/records"),
            Route::CreateDeal => "/v1/deals".into(),
            Route::PatchDeal => format!("/v1/deals/{target}"),
            Route::Transition => format!("/v1/deals/{target}/transitions"),
            Route::CreateBranch => "/v1/branches".into(),
            Route::CreateBrand => "/v1/brands".into(),
            Route::CreateFx => "/v1/fx-rates".into(),
        }
    }

    /// The namespace of the resource the route reads or writes by path.
    fn target_tag(self) -> Option<&'static str> {
        match self {
            Route::PatchCustomer | Route::CreateRecord => Some("cu"),
            Route::PatchDeal | Route::Transition => Some("dl"),
            _ => None,
        }
    }

    /// The namespace of the record a create makes.
    fn created_tag(self) -> Option<&'static str> {
        match self {
            Route::CreateCustomer => Some("cu"),
            Route::CreateRecord => Some("rc"),
            Route::CreateDeal => Some("dl"),
            Route::CreateBranch => Some("br"),
            Route::CreateBrand => Some("bd"),
            Route::CreateFx => Some("fx"),
            _ => None,
        }
    }

    /// Namespaces an accepted request of this route may write.
    fn may_write(self) -> &'static [&'static str] {
        match self {
            // (an assignment by policy is kept in the customer's history)
            Route::CreateCustomer | Route::PatchCustomer => {
                &["cu", "ix.cu.br", "ix.cu.own", "ix.cu.tier", "ch", "ev"]
            }
            Route::CreateRecord => &["rc", "ix.rc.cu", "ix.rc.by", "cu", "ev"],
            // (a signed deal's new amount changes its signing index entries
            // and marks its branch for a re-tier; its new lines or signing
            // time may move first sales: brands, other deals, first orders)
            Route::CreateDeal | Route::PatchDeal => &[
                "dl",
                "dh",
                "ix.dl.br",
                "ix.dl.own",
                "ix.dl.st",
                "ix.dl.cu",
                "ix.dl.open",
                "ix.dl.sg",
                "ix.dl.cs",
                "tier.dirty",
                "ev",
                "bd",
                "ix.bd.sg",
                "sg.stamp",
                "cu",
                "ix.cu.fo",
            ],
            // (a signing marks its branch for a re-tier)
            Route::Transition => &[
                "dl",
                "dh",
                "ix.dl.own",
                "ix.dl.st",
                "ix.dl.sg",
                "ix.dl.cs",
                "ix.dl.open",
                "cu",
                "ix.cu.fo",
                "tier.dirty",
                "bd",
                "ix.bd.sg",
                "sg.stamp",
                "task",
                "ix.task.br",
                "ix.task.dl",
                "ix.task.open",
                "ev",
            ],
            Route::CreateBranch => &["br", "ev"],
            Route::CreateBrand => &["bd", "ev"],
            // A rate and its first version in its history.
            Route::CreateFx => &["fx", "fx.rev", "ev"],
        }
    }

    /// The maintained indexes and counters a write of the route may move
    /// besides its resource (schema 7): due index entries and their
    /// overdue buckets, per-owner counts, open tasks in due order, the
    /// referral index and counts, revenue contributions and roll-ups (and
    /// their FX stamp), a new branch's cadence stamp.
    fn maintained(self) -> &'static [&'static str] {
        const DUE: [&str; 8] = [
            "due",
            "ix.due.own",
            "ix.due.br",
            "due.dirty",
            "due.failed",
            "od",
            "ix.od",
            "rep.n",
        ];
        const REVENUE: [&str; 6] = ["rv.deal", "rv.m", "rv.d", "rf.m", "rf.d", "rv.fx"];
        match self {
            Route::CreateCustomer | Route::PatchCustomer | Route::CreateDeal | Route::PatchDeal => {
                &const { concat_tags::<16>(&[&DUE, &REVENUE, &["ix.cu.ref", "rf.n"]]) }
            }
            Route::CreateRecord => &DUE,
            Route::Transition => {
                &const { concat_tags::<16>(&[&DUE, &REVENUE, &["ix.task.due.own", "ix.task.due.br"]]) }
            }
            Route::CreateBranch => &["due.stamp"],
            Route::CreateBrand => &[],
            Route::CreateFx => &["rv.fx"],
        }
    }

    /// The GET that shows the target resource.
    fn target_get(self, target: &str) -> Option<String> {
        match self.target_tag()? {
            "cu" => Some(format!("/v1/customers/{target}")),
            _ => Some(format!("/v1/deals/{target}")),
        }
    }
}

/// Ids that do not exist (or are not ids at all), percent-encoded.
const BOGUS_TARGETS: &[&str] = &[
    "cus_zzzzzzzzzzzz",
    "deal_zzzzzzzzzzzz",
    "nope",
    "%FF",
    "%00",
    "a%2Fb",
    "%20",
    "..",
];

/// Hands out values from the generated picks (index 0 is the plain case).
struct Picker<'a> {
    picks: &'a [Frac],
    pos: usize,
}

impl Picker<'_> {
    fn idx(&mut self, n: usize) -> usize {
        let i = self.picks[self.pos % self.picks.len()].index(n.max(1));
        self.pos += 1;
        i
    }

    fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
        xs[self.idx(xs.len())].clone()
    }

    /// True with `pct` % probability (true when shrunk).
    fn chance(&mut self, pct: usize) -> bool {
        self.idx(100) < pct
    }
}

/// An object from optional members.
fn obj(members: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        members
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
            .collect(),
    )
}

/// Mostly one of `valid` (88 %), else one of `invalid`; shrinks to `valid[0]`.
fn field(p: &mut Picker<'_>, valid: &[Value], invalid: &[Value]) -> Value {
    if invalid.is_empty() || p.chance(88) {
        p.pick(valid)
    } else {
        p.pick(invalid)
    }
}

/// Like [`field`] for an optional member present `pct` % of the time.
fn opt_field(p: &mut Picker<'_>, pct: usize, valid: &[Value], invalid: &[Value]) -> Option<Value> {
    if p.chance(pct) {
        Some(field(p, valid, invalid))
    } else {
        None
    }
}

fn valid_names() -> Vec<Value> {
    vec![
        json!("ACME"),
        json!("  Trimmed Co  "),
        json!("\u{65e5}\u{672c}\u{8a9e}\u{306e}\u{4f1a}\u{793e}"),
        json!("O'Brien & Sons"),
        json!("x"),
        json!("a".repeat(200)),
        json!("tab\tname"),
        json!("\u{1f697} Motors"),
    ]
}

fn invalid_names() -> Vec<Value> {
    vec![
        json!("a".repeat(201)),
        json!(""),
        json!("   "),
        json!("nul\u{0}name"),
        json!("esc\u{1b}[31m"),
        Value::Null,
        json!(42),
    ]
}

fn valid_amounts() -> Vec<Value> {
    vec![
        json!("600000"),
        json!(600000),
        json!("0.01"),
        json!("1000000000000"),
        json!(1_000_000_000_000i64),
        json!("12.345678"),
        json!(12.5),
        json!("+5"),
        json!(" 7 "),
    ]
}

fn invalid_amounts() -> Vec<Value> {
    vec![
        json!("0"),
        json!("-5"),
        json!("1000000000000.01"),
        json!("1.1234567"),
        json!("1e3"),
        json!("abc"),
        json!("-0"),
        json!(1e308),
        json!(-0.0),
    ]
}

fn valid_times() -> Vec<Value> {
    vec![
        json!("2025-06-01T00:00:00Z"),
        json!("2026-03-15T09:30:00Z"),
        json!("2025-06-01T08:00:00+08:00"),
        json!("2025-06-01T00:00:00.123456Z"),
        json!("2025-06-01"),
    ]
}

fn invalid_times() -> Vec<Value> {
    vec![
        json!("2020-01-01T00:00:00Z"),
        json!("2099-01-01T00:00:00Z"),
        json!("1960-01-01T00:00:00Z"),
        json!("2025-06-01 00:00:00"),
    ]
}

/// The mutable state of one fuzzing session.
struct Session {
    app: App,
    mgr: String,
    rep1: String,
    rep2: String,
    customers: Vec<String>,
    other_customer: String,
    deals: Vec<String>,
    fresh: usize,
    /// The current stage of the deal a transition targets.
    stage_hint: Option<String>,
    stats: BTreeMap<(Route, u16), usize>,
}

/// One generated request before it meets the current state.
#[derive(Debug, Clone)]
struct Case {
    route: Route,
    caller: Frac,
    target: Frac,
    picks: Vec<Frac>,
    mutations: Vec<Mutation>,
    content_type: Frac,
    if_match: Frac,
}

fn case(routes: &'static [Route]) -> impl Strategy<Value = Case> {
    (
        select(routes),
        frac(),
        frac(),
        prop::collection::vec(frac(), 32),
        mutations(),
        frac(),
        frac(),
    )
        .prop_map(
            |(route, caller, target, picks, mutations, content_type, if_match)| Case {
                route,
                caller,
                target,
                picks,
                mutations,
                content_type,
                if_match,
            },
        )
}

/// A request ready to send, with what the checks need to know about it.
struct Prepared {
    route: Route,
    token: String,
    target: String,
    body: Vec<u8>,
    headers: Vec<(&'static str, String)>,
}

fn key(tag: &str, id: &str) -> Vec<u8> {
    let mut k = tag.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

fn lookup<'a>(dump: &'a [Entry], k: &[u8]) -> Option<&'a [u8]> {
    dump.binary_search_by(|(key, _)| key.as_slice().cmp(k))
        .ok()
        .map(|i| dump[i].1.as_slice())
}

fn stored(dump: &[Entry], tag: &str, id: &str) -> Option<Value> {
    lookup(dump, &key(tag, id)).map(|raw| as_json(tag.as_bytes(), raw))
}

/// A stored record as JSON: deals have a binary form of their own.
fn as_json(tag: &[u8], raw: &[u8]) -> Value {
    if tag == keys::DEAL.as_bytes() {
        serde_json::to_value(Deal::from_stored(raw).expect("a stored deal")).expect("deal JSON")
    } else {
        serde_json::from_slice(raw).expect("stored JSON")
    }
}

fn tag_of(k: &[u8]) -> &[u8] {
    k.split(|b| *b == 0).next().unwrap_or(k)
}

fn count_tag(dump: &[Entry], tag: &str) -> usize {
    dump.iter()
        .filter(|(k, _)| tag_of(k) == tag.as_bytes())
        .count()
}

fn count_prefix(dump: &[Entry], prefix: &[u8]) -> usize {
    dump.iter().filter(|(k, _)| k.starts_with(prefix)).count()
}

/// Keys whose values differ between two dumps (both in key order).
fn diff(before: &[Entry], after: &[Entry]) -> Vec<Vec<u8>> {
    if before == after {
        return Vec::new();
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < before.len() || j < after.len() {
        match (before.get(i), after.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                if a.1 != b.1 {
                    out.push(a.0.clone());
                }
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                out.push(a.0.clone());
                i += 1;
            }
            (Some(_), Some(b)) => {
                out.push(b.0.clone());
                j += 1;
            }
            (Some(a), None) => {
                out.push(a.0.clone());
                i += 1;
            }
            (None, Some(b)) => {
                out.push(b.0.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    out
}

fn printable(k: &[u8]) -> String {
    String::from_utf8_lossy(k).replace('\0', "/")
}

fn version_of(v: &Value) -> Option<u64> {
    v["version"].as_u64()
}

type Check = Result<(), String>;

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Every non-2xx must be a 4xx with the API's error body.
fn check_error_body(r: &Resp) -> Check {
    ensure(r.status.is_client_error(), || {
        format!("status {} is neither 2xx nor 4xx", r.status)
    })?;
    let ct = r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ensure(ct.starts_with("application/json"), || {
        format!("error content-type is `{ct}`")
    })?;
    let body: Value = serde_json::from_slice(&r.body)
        .map_err(|e| format!("error body is not JSON ({e}): {}", r.text()))?;
    let top = body.as_object().ok_or("error body is not an object")?;
    ensure(top.len() == 1 && top.contains_key("error"), || {
        format!("error body has other members: {body}")
    })?;
    let err = body["error"]
        .as_object()
        .ok_or("`error` is not an object")?;
    ensure(
        err.keys()
            .all(|k| ["code", "message", "details"].contains(&k.as_str())),
        || format!("unexpected members in {body}"),
    )?;
    let code = err
        .get("code")
        .and_then(Value::as_str)
        .ok_or("`error.code` is not a string")?;
    let snake = !code.is_empty()
        && code.split('_').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && code.as_bytes()[0].is_ascii_lowercase();
    ensure(snake, || format!("code `{code}` is not snake_case"))?;
    let message = err
        .get("message")
        .and_then(Value::as_str)
        .ok_or("`error.message` is not a string")?;
    ensure(!message.trim().is_empty(), || "empty message".to_string())
}

/// A plain decimal text (`-012.340`) in normal form (`-12.34`); `None`
/// for anything else (exponents, junk).
fn norm_decimal(text: &str) -> Option<String> {
    let t = text.trim();
    let (neg, t) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let body = if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    };
    Some(if neg && body != "0" {
        format!("-{body}")
    } else {
        body
    })
}

/// True when a normalised decimal text has more digits than a 96-bit
/// decimal holds (28 places, or 28 significant digits): the server's parser
/// rounds those instead of refusing them.
fn beyond_decimal_precision(norm: &str) -> bool {
    let t = norm.trim_start_matches('-');
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    let int = int.trim_start_matches('0');
    frac.len() > 28 || int.len() + frac.len() > 28
}

/// The text of a JSON value that carries a decimal.
fn decimal_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// An accepted write keeps every amount exactly as sent (normalised):
/// nothing is rounded, truncated or saturated on the way in.
fn check_echo(route: Route, sent: &[u8], got: &Value) -> Check {
    let Ok(sent) = serde_json::from_slice::<Value>(sent) else {
        return Ok(());
    };
    let mut pairs: Vec<(String, &Value, &Value)> = Vec::new();
    match route {
        Route::CreateDeal | Route::PatchDeal => {
            if let Some(lines) = sent["lines"].as_array() {
                for (i, line) in lines.iter().enumerate() {
                    for f in ["amount", "cost"] {
                        pairs.push((format!("lines[{i}].{f}"), &line[f], &got["lines"][i][f]));
                    }
                }
            }
            if sent.get("prepayment_ratio").is_some_and(|v| !v.is_null()) {
                pairs.push((
                    "prepayment_ratio".into(),
                    &sent["prepayment_ratio"],
                    &got["prepayment_ratio"],
                ));
            }
        }
        Route::CreateFx => pairs.push(("per_usd".into(), &sent["per_usd"], &got["per_usd"])),
        _ => {}
    }
    for (field, sent, got) in pairs {
        let Some(want) = decimal_text(sent).as_deref().and_then(norm_decimal) else {
            continue;
        };
        if beyond_decimal_precision(&want) {
            // Known server bug, reproduced by the ignored test
            // `decimals_beyond_28_digits_are_refused_not_rounded`: remove
            // this exemption once it passes.
            continue;
        }
        let have = decimal_text(got).as_deref().and_then(norm_decimal);
        ensure(have.as_deref() == Some(want.as_str()), || {
            format!("accepted `{field}` = {sent} but kept it as {got}")
        })?;
    }
    Ok(())
}

/// An accepted write answers with what it stored; a communication record
/// changes nothing of its customer but `last_contact_at` (and, when that
/// moves, the version and `updated_at` that tell clients it moved).
fn check_stored(
    route: Route,
    target: &str,
    got: &Value,
    before: &[Entry],
    after: &[Entry],
) -> Check {
    let (tag, id) = match route {
        Route::CreateFx => return Ok(()),
        Route::CreateRecord => {
            let (Some(mut old), Some(mut new)) =
                (stored(before, "cu", target), stored(after, "cu", target))
            else {
                return Err("the record's customer is missing".into());
            };
            for field in ["last_contact_at", "version", "updated_at"] {
                old[field] = Value::Null;
                new[field] = Value::Null;
            }

            ensure(old == new, || {
                format!("a record changed its customer beyond last_contact_at: {old} -> {new}")
            })?;
            ("rc", got["id"].as_str().unwrap_or_default().to_string())
        }
        Route::PatchCustomer => ("cu", target.to_string()),
        Route::PatchDeal | Route::Transition => {
            if got["dry_run"] == json!(true) {
                return Ok(());
            }
            ("dl", target.to_string())
        }
        other => (
            other.created_tag().expect("a create"),
            got["id"].as_str().unwrap_or_default().to_string(),
        ),
    };
    let kept = stored(after, tag, &id).ok_or_else(|| format!("{tag} {id} is not stored"))?;
    ensure(&kept == got, || format!("answered {got} but stored {kept}"))
}

impl Session {
    async fn new() -> Self {
        let app = App::new().await;
        for b in [BRANCH, OTHER] {
            app.setup(
                Method::POST,
                "/v1/branches",
                json!({"id": b, "name": format!("Branch {b}")}),
            )
            .await;
        }
        app.setup(
            Method::PUT,
            &format!("/v1/branches/{BRANCH}/pipeline"),
            json!({
                "stages": [{"id": "a"}, {"id": "qualify"}, {"id": "b"}, {"id": "quote"},
                           {"id": "won", "kind": "won"}, {"id": "lost", "kind": "lost"}],
                "moves": MOVES.iter().map(|(f, t)| json!({"from": f, "to": t})).collect::<Vec<_>>(),
            }),
        )
        .await;
        for brand in ["bz", "bz2"] {
            app.setup(
                Method::POST,
                "/v1/brands",
                json!({"id": brand, "name": brand, "introduced_at": "2026-01-01"}),
            )
            .await;
        }
        let token = |role: &str, branch: &str, user: &str| {
            let body = json!({"role": role, "branch": branch, "user": user});
            let app = &app;
            async move {
                app.setup(Method::POST, "/v1/tokens", body).await["token"]
                    .as_str()
                    .expect("token")
                    .to_string()
            }
        };
        let mgr = token("manager", BRANCH, "mgr").await;
        let rep1 = token("rep", BRANCH, "rep1").await;
        let rep2 = token("rep", OTHER, "rep2").await;
        let mut s = Self {
            app,
            mgr,
            rep1,
            rep2,
            customers: Vec::new(),
            other_customer: String::new(),
            deals: Vec::new(),
            fresh: 0,
            stage_hint: None,
            stats: BTreeMap::new(),
        };
        s.other_customer = s.new_customer(OTHER, "rep2").await;
        for _ in 0..4 {
            let c = s.new_customer(BRANCH, "rep1").await;
            s.customers.push(c);
        }
        s.replenish_deals().await;
        s
    }

    async fn new_customer(&self, branch: &str, owner: &str) -> String {
        self.app
            .setup(
                Method::POST,
                "/v1/customers",
                json!({"name": "Fixture Co", "branch": branch, "owner": owner,
                       "segment": "enterprise", "source": "self_developed"}),
            )
            .await["id"]
            .as_str()
            .expect("id")
            .to_string()
    }

    /// Keeps a handful of open deals around to patch and move.
    async fn replenish_deals(&mut self) {
        let dump = self.app.dump();
        // Open deals, and two signed ones (whose money only a manager or
        // admin changes, with a reason, moving first sales).
        let mut signed = 0;
        self.deals.retain(|d| {
            let stage =
                stored(&dump, "dl", d).map(|v| v["stage"].as_str().unwrap_or("").to_string());
            match stage.as_deref() {
                Some(s) if OPEN_STAGES.contains(&s) => true,
                Some("won") => {
                    signed += 1;
                    signed <= 2
                }
                _ => false,
            }
        });
        while self.deals.len() < 6 {
            let customer = self.customers[self.deals.len() % self.customers.len()].clone();
            let body = json!({"customer_id": customer, "title": "Fleet", "owner": "rep1",
                "currency": "CNY", "opened_at": "2025-01-01T00:00:00Z",
                "lines": [{"brand": "bz", "product": "XC90", "amount": "600000", "cost": "500000"}]});
            let d = self.app.setup(Method::POST, "/v1/deals", body).await;
            self.deals.push(d["id"].as_str().expect("id").to_string());
        }
    }

    fn fresh(&mut self) -> usize {
        self.fresh += 1;
        self.fresh
    }

    /// A body of a route: mostly valid field values (all of them with every
    /// pick at 0), some invalid ones; mutations come on top.
    fn body(&mut self, route: Route, target: &str, p: &mut Picker<'_>) -> Value {
        let (names, bad_names) = (valid_names(), invalid_names());
        match route {
            Route::CreateCustomer => {
                let referrer = p.pick(&self.customers);
                obj(vec![
                    ("name", Some(field(p, &names, &bad_names))),
                    (
                        "branch",
                        Some(field(
                            p,
                            &[json!(BRANCH)],
                            &[json!(OTHER), json!("nope"), json!("FZ"), json!("")],
                        )),
                    ),
                    (
                        "owner",
                        opt_field(
                            p,
                            60,
                            &[json!("rep1"), json!("mgr"), Value::Null],
                            &[
                                json!(" rep1"),
                                json!("rep2"),
                                json!("x".repeat(65)),
                                json!(""),
                            ],
                        ),
                    ),
                    (
                        "segment",
                        Some(field(
                            p,
                            &[
                                json!("enterprise"),
                                json!("industrial"),
                                json!("government"),
                                json!("individual"),
                            ],
                            &[json!("Enterprise"), json!("retail")],
                        )),
                    ),
                    (
                        "source",
                        Some(field(
                            p,
                            &[
                                json!("self_developed"),
                                json!("assigned"),
                                json!("referral"),
                            ],
                            &[json!("cold")],
                        )),
                    ),
                    (
                        "referred_by",
                        opt_field(
                            p,
                            30,
                            &[json!(referrer), Value::Null],
                            &[json!("cus_zzzzzzzzzzzz"), json!(self.other_customer)],
                        ),
                    ),
                ])
            }
            Route::PatchCustomer => {
                let referrer = p.pick(&self.customers);
                obj(vec![
                    ("name", opt_field(p, 40, &names, &bad_names)),
                    (
                        "owner",
                        opt_field(
                            p,
                            30,
                            &[json!("rep1"), Value::Null, json!("mgr")],
                            &[json!(""), json!(" x")],
                        ),
                    ),
                    (
                        "segment",
                        opt_field(
                            p,
                            30,
                            &[json!("government"), json!("individual")],
                            &[json!("alien")],
                        ),
                    ),
                    (
                        "source",
                        opt_field(
                            p,
                            30,
                            &[json!("assigned"), json!("referral")],
                            &[json!("SELF")],
                        ),
                    ),
                    (
                        "referred_by",
                        opt_field(
                            p,
                            20,
                            &[json!(referrer), Value::Null],
                            &[
                                json!(target),
                                json!("cus_zzzzzzzzzzzz"),
                                json!(self.other_customer),
                            ],
                        ),
                    ),
                ])
            }
            Route::CreateRecord => obj(vec![
                (
                    "kind",
                    Some(field(
                        p,
                        &[
                            json!("visit"),
                            json!("call"),
                            json!("meeting"),
                            json!("message"),
                        ],
                        &[json!("email"), json!("VISIT")],
                    )),
                ),
                (
                    "summary",
                    Some(field(
                        p,
                        &[
                            json!("Met the buyer"),
                            json!("x".repeat(10_000)),
                            json!("line\nbreak"),
                        ],
                        &[json!(""), json!("x".repeat(10_001)), json!("bell\u{7}")],
                    )),
                ),
                ("at", opt_field(p, 50, &valid_times(), &invalid_times())),
                (
                    "by",
                    opt_field(
                        p,
                        30,
                        &[json!("admin"), json!("rep1"), json!("mgr")],
                        &[json!(""), json!(" a")],
                    ),
                ),
                (
                    "contact",
                    opt_field(p, 30, &[json!("Ms. Li"), Value::Null], &[json!("\u{0}")]),
                ),
                (
                    "feedback",
                    opt_field(p, 30, &[json!("Likes the price"), json!("  ")], &[json!(7)]),
                ),
                (
                    "problems",
                    opt_field(p, 30, &[json!("Budget"), Value::Null], &[json!(["a"])]),
                ),
                (
                    "next_steps",
                    opt_field(
                        p,
                        30,
                        &[json!("Send a quote")],
                        &[json!("y".repeat(10_001))],
                    ),
                ),
            ]),
            Route::CreateDeal => {
                let customer = p.pick(&self.customers);
                let lines = self.lines(p);
                obj(vec![
                    (
                        "customer_id",
                        Some(field(
                            p,
                            &[json!(customer)],
                            &[
                                json!("cus_zzzzzzzzzzzz"),
                                json!(self.other_customer),
                                json!(""),
                            ],
                        )),
                    ),
                    ("title", Some(field(p, &names, &bad_names))),
                    (
                        "owner",
                        Some(field(
                            p,
                            &[json!("rep1"), json!("mgr")],
                            &[json!("rep2"), json!(" x")],
                        )),
                    ),
                    (
                        "currency",
                        Some(field(
                            p,
                            &[json!("CNY"), json!("USD"), json!("EUR")],
                            &[json!("cny"), json!("XXX")],
                        )),
                    ),
                    (
                        "needs",
                        opt_field(
                            p,
                            40,
                            &[
                                json!(["fleet", "service"]),
                                json!("one text"),
                                json!([]),
                                Value::Null,
                            ],
                            &[json!([""]), json!(["n".repeat(10_001)]), json!([1])],
                        ),
                    ),
                    (
                        "prepayment_ratio",
                        opt_field(
                            p,
                            40,
                            &[
                                json!("0.3"),
                                json!(0.3),
                                json!("1"),
                                Value::Null,
                                json!("0"),
                                json!(0),
                            ],
                            &[json!("1.01"), json!("-0.1"), json!("NaN")],
                        ),
                    ),
                    (
                        "opened_at",
                        opt_field(p, 40, &valid_times(), &invalid_times()),
                    ),
                    ("lines", Some(lines)),
                ])
            }
            Route::PatchDeal => {
                let lines = self.lines(p);
                obj(vec![
                    ("title", opt_field(p, 40, &names, &bad_names)),
                    (
                        "owner",
                        opt_field(
                            p,
                            30,
                            &[json!("rep1"), json!("mgr")],
                            &[json!("rep2"), json!("")],
                        ),
                    ),
                    (
                        "currency",
                        opt_field(p, 30, &[json!("USD"), json!("CNY")], &[json!("usd")]),
                    ),
                    (
                        "needs",
                        opt_field(
                            p,
                            30,
                            &[json!(["fleet"]), json!("text"), json!([])],
                            &[json!({})],
                        ),
                    ),
                    (
                        "prepayment_ratio",
                        opt_field(
                            p,
                            30,
                            &[json!("0.5"), Value::Null, json!("0.25")],
                            &[json!(2)],
                        ),
                    ),
                    ("lines", p.chance(30).then_some(lines)),
                    (
                        "signed_at",
                        opt_field(p, 15, &valid_times(), &invalid_times()),
                    ),
                    (
                        "reason",
                        opt_field(p, 40, &[json!("price renegotiated")], &[json!("\u{7}")]),
                    ),
                ])
            }
            Route::Transition => {
                let mut legal: Vec<Value> = MOVES
                    .iter()
                    .filter(|(from, _)| self.stage_hint.as_deref() == Some(*from))
                    .map(|(_, to)| json!(to))
                    .collect();
                if legal.is_empty() {
                    legal.push(json!("b"));
                }
                obj(vec![
                    (
                        "to",
                        Some(field(
                            p,
                            &legal,
                            &[
                                json!("b"),
                                json!("a"),
                                json!("qualify"),
                                json!("quote"),
                                json!("won"),
                                json!("lost"),
                                json!("lead"),
                                json!("zz"),
                                json!(""),
                                json!("A"),
                            ],
                        )),
                    ),
                    ("at", opt_field(p, 25, &valid_times(), &invalid_times())),
                    (
                        "note",
                        opt_field(
                            p,
                            30,
                            &[json!("called"), json!("")],
                            &[json!("n".repeat(10_001))],
                        ),
                    ),
                    (
                        "dry_run",
                        opt_field(
                            p,
                            20,
                            &[json!(false), json!(true)],
                            &[json!("true"), json!(1)],
                        ),
                    ),
                    (
                        "override_reason",
                        opt_field(p, 10, &[json!("boss said so")], &[json!("")]),
                    ),
                ])
            }
            Route::CreateBranch => {
                let fresh = format!("b-{}", self.fresh());
                obj(vec![
                    (
                        "id",
                        Some(field(
                            p,
                            &[json!(fresh)],
                            &[
                                json!(BRANCH),
                                json!("Bad_ID"),
                                json!(""),
                                json!("a".repeat(41)),
                            ],
                        )),
                    ),
                    ("name", Some(field(p, &names, &bad_names))),
                    (
                        "timezone",
                        opt_field(
                            p,
                            50,
                            &[json!("Asia/Shanghai"), json!("UTC"), Value::Null],
                            &[json!("Mars/Olympus"), json!(""), json!("utc")],
                        ),
                    ),
                ])
            }
            Route::CreateBrand => {
                let fresh = format!("brand-{}", self.fresh());
                obj(vec![
                    (
                        "id",
                        Some(field(
                            p,
                            &[json!(fresh)],
                            &[json!("bz"), json!("Bad ID"), json!("")],
                        )),
                    ),
                    ("name", Some(field(p, &names, &bad_names))),
                    (
                        "introduced_at",
                        Some(field(
                            p,
                            &[json!("2026-01-01"), json!("1999-12-31")],
                            &[
                                json!("2026-02-30"),
                                json!("20260101"),
                                json!("2026-1-1"),
                                json!("+10000-01-01"),
                            ],
                        )),
                    ),
                ])
            }
            Route::CreateFx => {
                let n = self.fresh();
                let fresh = format!(
                    "{}-{:02}-{:02}",
                    2000 + n / 336,
                    (n / 28) % 12 + 1,
                    n % 28 + 1
                );
                obj(vec![
                    (
                        "currency",
                        Some(field(
                            p,
                            &[json!("CNY"), json!("EUR"), json!("JPY")],
                            &[json!("USD"), json!("cny"), json!("XYZ")],
                        )),
                    ),
                    (
                        "date",
                        Some(field(
                            p,
                            &[json!(fresh)],
                            &[json!("2026-02-30"), json!("2026-1-1")],
                        )),
                    ),
                    (
                        "per_usd",
                        Some(field(
                            p,
                            &[
                                json!("7.10"),
                                json!(7.1),
                                json!("1000000000000"),
                                json!("0.000001"),
                            ],
                            &[
                                json!("0"),
                                json!("-1"),
                                json!("1000000000000.5"),
                                json!("1e2"),
                                json!(1e308),
                            ],
                        )),
                    ),
                ])
            }
        }
    }

    fn lines(&self, p: &mut Picker<'_>) -> Value {
        let n = if p.chance(92) {
            p.pick(&[1usize, 2, 3])
        } else {
            p.pick(&[0usize, 501])
        };
        let lines: Vec<Value> = (0..n)
            .map(|_| {
                json!({
                    "brand": field(p, &[json!("bz"), json!("bz2")], &[json!("nope"), json!("BZ")]),
                    "product": field(p, &[json!("XC90"), json!("EX30")], &[json!("")]),
                    "amount": field(p, &valid_amounts(), &invalid_amounts()),
                    "cost": field(p, &valid_amounts(), &invalid_amounts()),
                })
            })
            .collect();
        Value::Array(lines)
    }

    /// Turns a generated case into a request against the current state.
    fn prepare(&mut self, c: &Case, dump: &[Entry]) -> Prepared {
        let mut p = Picker {
            picks: &c.picks,
            pos: 0,
        };
        let token = match c.caller.index(10) {
            0..=5 => ADMIN.to_string(),
            6 | 7 => self.mgr.clone(),
            8 => self.rep1.clone(),
            _ => self.rep2.clone(),
        };
        let pool = match c.route.target_tag() {
            Some("cu") => &self.customers,
            Some(_) => &self.deals,
            None => &self.deals,
        };
        let target = if p.idx(20) == 19 {
            p.pick(BOGUS_TARGETS).to_string()
        } else {
            pool[c.target.index(pool.len())].clone()
        };
        self.stage_hint =
            stored(dump, "dl", &target).map(|d| d["stage"].as_str().unwrap_or("").to_string());
        let body = self.body(c.route, &target, &mut p);
        let body = apply(&body, &c.mutations);
        let mut headers = Vec::new();
        match c.content_type.index(20) {
            0..=15 => headers.push(("content-type", "application/json".to_string())),
            16 => headers.push(("content-type", "application/json; charset=utf-8".into())),
            17 => {}
            18 => headers.push(("content-type", "text/plain".into())),
            _ => headers.push(("content-type", "application/merge-patch+json".into())),
        }
        if matches!(
            c.route,
            Route::PatchCustomer | Route::PatchDeal | Route::Transition
        ) {
            let current = c
                .route
                .target_tag()
                .and_then(|tag| stored(dump, tag, &target))
                .and_then(|v| version_of(&v))
                .unwrap_or(1);
            match c.if_match.index(8) {
                0..=3 => {}
                4 => headers.push(("if-match", format!("\"{current}\""))),
                5 => headers.push(("if-match", current.to_string())),
                6 => headers.push(("if-match", format!("\"{}\"", current + 1))),
                _ => headers.push(("if-match", "\"abc\"".into())),
            }
        }
        Prepared {
            route: c.route,
            token,
            target,
            body,
            headers,
        }
    }

    /// Sends one request and checks the properties; returns the status.
    async fn exec(&mut self, req: &Prepared) -> Check {
        let route = req.route;
        let path = route.path(&req.target);
        let describe = |r: Option<&Resp>| {
            let body = String::from_utf8_lossy(&req.body);
            let body: String = body.chars().take(500).collect();
            let resp = r.map_or_else(String::new, |r| format!(" -> {} {}", r.status, r.text()));
            format!(
                "{} {path} {:?} body ({} bytes): {body}{resp}",
                route.method(),
                req.headers,
                req.body.len()
            )
        };
        let get = route.target_get(&req.target);
        let before = self.app.dump();
        let applied_before = self.app.applied();
        let seen_before = match &get {
            Some(g) => Some(self.app.send(Method::GET, g, ADMIN, None, &[]).await),
            None => None,
        };
        let headers: Vec<(&str, String)> =
            req.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
        let r = self
            .app
            .send(
                route.method(),
                &path,
                &req.token,
                Some(req.body.clone()),
                &headers,
            )
            .await;
        *self.stats.entry((route, r.status.as_u16())).or_default() += 1;
        let after = self.app.dump();
        let commits = self.app.applied() - applied_before;
        let changed = diff(&before, &after);
        let changed_text = || {
            changed
                .iter()
                .take(8)
                .map(|k| printable(k))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let fail = |what: String| Err(format!("{what}\n  request: {}", describe(Some(&r))));

        if !r.status.is_success() {
            if let Err(e) = check_error_body(&r) {
                return fail(e);
            }
            // A move a guard refuses (or fails on) is a decision of record:
            // one commit writing its `veto` entry in the deal's history and
            // its `veto` event; the deal itself, its indexes and everything
            // else stay as they were.
            let code = r.json()["error"]["code"].clone();
            let vetoed = route == Route::Transition
                && (code == json!("guard_rejected") || code == json!("policy_failed"));
            let veto_prefix = key("dh", &format!("{}\0", req.target));
            let only_a_veto = vetoed
                && changed.len() == 2
                && changed.iter().all(|k| lookup(&before, k).is_none())
                && changed
                    .iter()
                    .any(|k| k.starts_with(&veto_prefix) && printable(k).contains("/veto_"))
                && changed.iter().any(|k| {
                    tag_of(k) == keys::EVENT.as_bytes()
                        && lookup(&after, k)
                            .and_then(|raw| serde_json::from_slice::<Value>(raw).ok())
                            .is_some_and(|e| e["kind"] == "veto")
                })
                && commits == 1;
            if !changed.is_empty() && !only_a_veto {
                return fail(format!(
                    "partial write: a rejected request changed {}",
                    changed_text()
                ));
            }
            if commits != 0 && !only_a_veto {
                return fail(format!("a rejected request applied {commits} commit(s)"));
            }
            if let (Some(g), Some(b)) = (&get, &seen_before) {
                let now = self.app.send(Method::GET, g, ADMIN, None, &[]).await;
                if now.status != b.status || now.body != b.body {
                    return fail(format!("GET {g} changed after a rejected request"));
                }
            }
            return Ok(());
        }

        // Accepted.
        let body = r.json();
        let expected_status = if route.created_tag().is_some() {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        if r.status != expected_status {
            return fail(format!("expected {expected_status}"));
        }
        for k in &changed {
            if !route
                .may_write()
                .iter()
                .chain(route.maintained())
                .any(|t| tag_of(k) == t.as_bytes())
            {
                return fail(format!("wrote outside its resource: {}", printable(k)));
            }
        }
        let etag = r
            .headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let check_etag = |v: u64| {
            ensure(etag.as_deref() == Some(&format!("\"{v}\"")), || {
                format!("ETag {etag:?} is not version {v}")
            })
        };
        let result: Check = match route {
            Route::CreateCustomer
            | Route::CreateRecord
            | Route::CreateDeal
            | Route::CreateBranch
            | Route::CreateBrand
            | Route::CreateFx => {
                let tag = route.created_tag().expect("a create");
                let id = match route {
                    Route::CreateFx => format!(
                        "{}\0{}",
                        body["currency"].as_str().unwrap_or(""),
                        body["date"].as_str().unwrap_or("")
                    ),
                    _ => body["id"].as_str().unwrap_or("").to_string(),
                };
                let new_record = stored(&after, tag, &id);
                let was = stored(&before, tag, &id);
                (|| {
                    ensure(commits == 1, || format!("{commits} commits for one create"))?;
                    ensure(was.is_none(), || {
                        format!("{tag} {id} existed before its create")
                    })?;
                    ensure(
                        count_tag(&after, tag) == count_tag(&before, tag) + 1,
                        || format!("the number of `{tag}` records did not grow by one"),
                    )?;
                    let stored = new_record.ok_or_else(|| format!("{tag} {id} was not stored"))?;
                    ensure(version_of(&stored) == Some(1), || {
                        format!("stored version {:?}", stored["version"])
                    })?;
                    ensure(version_of(&body) == Some(1), || {
                        "response version is not 1".into()
                    })?;
                    check_etag(1)?;
                    Ok(())
                })()
            }
            Route::PatchCustomer | Route::PatchDeal | Route::Transition => {
                let tag = route.target_tag().expect("a target");
                let old = stored(&before, tag, &req.target).and_then(|v| version_of(&v));
                let new = stored(&after, tag, &req.target).and_then(|v| version_of(&v));
                let history = key("dh", &format!("{}\0", req.target));
                let history = &history[..history.len() - 1];
                let (h_old, h_new) = (
                    count_prefix(&before, history),
                    count_prefix(&after, history),
                );
                let noop = (route == Route::PatchDeal || body["dry_run"] == json!(true))
                    && changed.is_empty()
                    && commits == 0;
                (|| {
                    let old = old.ok_or("the target did not exist")?;
                    let new = new.ok_or("the target vanished")?;
                    if noop {
                        // A deal patch that changes nothing, or a dry run.
                        ensure(new == old, || "version moved without a write".into())?;
                        return Ok(());
                    }
                    ensure(commits == 1, || format!("{commits} commits for one write"))?;
                    ensure(new == old + 1, || {
                        format!("version went from {old} to {new}")
                    })?;
                    ensure(version_of(&body) == Some(new), || {
                        format!("response version {:?}, stored {new}", body["version"])
                    })?;
                    check_etag(new)?;
                    if tag == "dl" {
                        ensure(h_new == h_old + 1, || {
                            format!("history went from {h_old} to {h_new} entries")
                        })?;
                    }
                    Ok(())
                })()
            }
        };
        let result = result
            .and_then(|()| check_echo(route, &req.body, &body))
            .and_then(|()| check_stored(route, &req.target, &body, &before, &after));
        if let Err(e) = result {
            return fail(format!("{e}; changed: {}", changed_text()));
        }

        // Keep the pools useful.
        match route {
            Route::CreateCustomer => {
                let id = body["id"].as_str().unwrap_or_default().to_string();
                if body["branch"] == json!(BRANCH) && self.customers.len() < 24 {
                    self.customers.push(id);
                }
            }
            Route::Transition | Route::PatchDeal => self.replenish_deals().await,
            _ => {}
        }
        Ok(())
    }

    /// Frac and history coherence over the whole store (run at the end).
    fn check_invariants(&self) {
        let dump = self.app.dump();
        let has = |k: Vec<u8>| lookup(&dump, &k).is_some();
        let k = |tag: &str, parts: &[&str]| {
            let mut k = tag.as_bytes().to_vec();
            for p in parts {
                k.push(0);
                k.extend_from_slice(p.as_bytes());
            }
            k
        };
        let mut expected_ix: BTreeSet<Vec<u8>> = BTreeSet::new();
        for (key, raw) in &dump {
            let v: Value = match tag_of(key) {
                b"dl" | b"cu" => as_json(tag_of(key), raw),
                _ => continue,
            };
            let s = |f: &str| v[f].as_str().unwrap_or_default().to_string();
            let (id, branch) = (s("id"), s("branch"));
            if tag_of(key) == b"dl" {
                let version = version_of(&v).expect("version");
                for seq in 1..=version {
                    assert!(
                        has(k("dh", &[&id, &format!("{seq:020}")])),
                        "deal {id} lacks history entry {seq}"
                    );
                }
                // One entry per version, plus the vetoes kept under the
                // versions whose moves were refused.
                let prefix = k("dh", &[&id, ""]);
                let entries = dump
                    .iter()
                    .filter(|(key, _)| key.starts_with(&prefix))
                    .filter(|(key, _)| !printable(key).contains("/veto_"))
                    .count();
                assert_eq!(
                    entries as u64, version,
                    "deal {id}: history length vs version"
                );
                expected_ix.insert(k("ix.dl.br", &[&branch, &id]));
                expected_ix.insert(k("ix.dl.own", &[&branch, &s("owner"), &id]));
                expected_ix.insert(k("ix.dl.st", &[&branch, &s("stage"), &id]));
                expected_ix.insert(k("ix.dl.cu", &[&s("customer_id"), &id]));
                if s("stage_kind") == "open" {
                    expected_ix.insert(k("ix.dl.open", &[&branch, &s("owner"), &id]));
                }
                if let Some(t) = time_key(&v["signed_at"]) {
                    expected_ix.insert(k("ix.dl.sg", &[&branch, &t, &id]));
                    expected_ix.insert(k("ix.dl.cs", &[&s("customer_id"), &t, &id]));
                }
            } else {
                expected_ix.insert(k("ix.cu.br", &[&branch, &id]));
                expected_ix.insert(k("ix.cu.tier", &[&branch, &s("tier"), &id]));
                if let Some(t) = time_key(&v["first_order_at"]) {
                    expected_ix.insert(k("ix.cu.fo", &[&branch, &t, &id]));
                }
                if let Some(o) = v["owner"].as_str() {
                    expected_ix.insert(k("ix.cu.own", &[&branch, o, &id]));
                }
                if let Some(r) = v["referred_by"].as_str() {
                    expected_ix.insert(k("ix.cu.ref", &[&branch, r, &id]));
                }
            }
        }
        let actual_ix: BTreeSet<Vec<u8>> = dump
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k.starts_with(b"ix.dl.") || k.starts_with(b"ix.cu."))
            .collect();
        let missing: Vec<String> = expected_ix
            .difference(&actual_ix)
            .map(|k| printable(k))
            .collect();
        let stale: Vec<String> = actual_ix
            .difference(&expected_ix)
            .map(|k| printable(k))
            .collect();
        assert!(missing.is_empty(), "missing index entries: {missing:?}");
        assert!(stale.is_empty(), "stale index entries: {stale:?}");
        // The brand index holds each signed contract not cancelled under
        // each brand of its lines; a brand's first sale is its first entry,
        // and the only contract selling the brand new.
        let deals: Vec<Value> = dump
            .iter()
            .filter(|(key, _)| tag_of(key) == b"dl")
            .map(|(_, raw)| as_json(b"dl", raw))
            .collect();
        let mut expected_bd = BTreeSet::new();
        for d in &deals {
            if let (Some(t), true) = (time_key(&d["signed_at"]), d["cancelled_at"].is_null()) {
                for l in d["lines"].as_array().into_iter().flatten() {
                    let (b, id) = (
                        l["brand"].as_str().unwrap_or_default(),
                        d["id"].as_str().unwrap_or_default(),
                    );
                    expected_bd.insert(k("ix.bd.sg", &[b, &t, id]));
                }
            }
        }
        let actual_bd: BTreeSet<Vec<u8>> = dump
            .iter()
            .map(|(k, _)| k.clone())
            .filter(|k| k.starts_with(b"ix.bd."))
            .collect();
        assert_eq!(actual_bd, expected_bd, "brand index");
        for (_, raw) in dump.iter().filter(|(key, _)| tag_of(key) == b"bd") {
            let b: Value = serde_json::from_slice(raw).expect("brand JSON");
            let id = b["id"].as_str().unwrap_or_default();
            let first = actual_bd
                .iter()
                .find(|key| key.starts_with(&k("ix.bd.sg", &[id, ""])))
                .map(|key| {
                    printable(key)
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string()
                });
            assert_eq!(
                b["first_signed_deal"].as_str(),
                first.as_deref(),
                "brand {id}'s first sale"
            );
            assert_eq!(b["new"], json!(first.is_none()), "brand {id} is new");
            let selling: Vec<&str> = deals
                .iter()
                .filter(|d| {
                    d["new_brands"]
                        .as_array()
                        .is_some_and(|n| n.contains(&json!(id)))
                })
                .map(|d| d["id"].as_str().unwrap_or_default())
                .collect();
            assert_eq!(
                selling,
                first.as_deref().into_iter().collect::<Vec<_>>(),
                "deals selling {id} new"
            );
        }
        // Every record has exactly one entry in each of its indexes.
        for (key, raw) in dump.iter().filter(|(k, _)| tag_of(k) == b"rc") {
            let v: Value = serde_json::from_slice(raw).expect("record JSON");
            let id = v["id"].as_str().unwrap_or_default();
            let by_customer = k(
                "ix.rc.cu",
                &[v["customer_id"].as_str().unwrap_or_default(), ""],
            );
            let n = dump
                .iter()
                .filter(|(k, val)| k.starts_with(&by_customer) && val == id.as_bytes())
                .count();
            assert_eq!(
                n,
                1,
                "record {} has {n} customer index entries",
                printable(key)
            );
        }
    }

    fn report(&self, name: &str) {
        let mut lines = Vec::new();
        let mut per_route: BTreeMap<Route, (usize, usize)> = BTreeMap::new();
        for ((route, status), n) in &self.stats {
            let e = per_route.entry(*route).or_default();
            if (200..300).contains(status) {
                e.0 += n;
            } else {
                e.1 += n;
            }
            lines.push(format!("{route:?} {status}: {n}"));
        }
        eprintln!("[{name}] {}", lines.join(", "));
        for (route, (ok, rejected)) in per_route {
            assert!(ok > 0 && rejected > 0, "{name}: {route:?} saw {ok} accepted and {rejected} rejected requests; the generator is not mixing");
        }
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed() -> u64 {
    std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x0dea_1f10)
}

/// Runs `n` generated cases of `routes` against one session.
fn fuzz(name: &str, routes: &'static [Route], n: u32) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let started = std::time::Instant::now();
    let session = RefCell::new(rt.block_on(Session::new()));
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed()),
        max_shrink_iters: 256,
        ..Config::default()
    });
    let result = runner.run(&case(routes), |c| {
        let mut s = session.borrow_mut();
        let dump = s.app.dump();
        let req = s.prepare(&c, &dump);
        rt.block_on(s.exec(&req)).map_err(TestCaseError::fail)
    });
    let s = session.borrow();
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    s.check_invariants();
    s.report(name);
    let dump = s.app.dump();
    let tags: Vec<String> = ["cu", "rc", "dl", "dh", "task", "br", "bd", "fx"]
        .iter()
        .map(|t| format!("{t} {}", count_tag(&dump, t)))
        .collect();
    eprintln!("[{name}] records in the store: {}", tags.join(", "));
    eprintln!(
        "[{name}] {n} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn customers_and_records_survive_hostile_bodies() {
    fuzz(
        "customers",
        &[
            Route::CreateCustomer,
            Route::PatchCustomer,
            Route::CreateRecord,
        ],
        cases(1100),
    );
}

#[test]
fn deals_and_transitions_survive_hostile_bodies() {
    fuzz(
        "deals",
        &[Route::CreateDeal, Route::PatchDeal, Route::Transition],
        cases(1400),
    );
}

#[test]
fn catalog_survives_hostile_bodies() {
    fuzz(
        "catalog",
        &[Route::CreateBranch, Route::CreateBrand, Route::CreateFx],
        cases(700),
    );
}

/// Not random: every hostile value in every field of each route's plain
/// body, every truncation of it, every unknown or duplicated member, every
/// whole-body oddity and invalid bytes at its start, middle and end. A fresh
/// app per route keeps the store (and its snapshots) small.
fn sweep(routes: &[Route]) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let zero = vec![Frac(0); 32];
    let mut failures = Vec::new();
    let mut sent = 0usize;
    for &route in routes {
        rt.block_on(async {
            let mut s = Session::new().await;
            // Every pick at 0: every optional member present, valid values.
            let plain = |s: &mut Session| {
                let target = match route.target_tag() {
                    Some("cu") => s.customers[0].clone(),
                    _ => s.deals[0].clone(),
                };
                let mut p = Picker {
                    picks: &zero,
                    pos: 0,
                };
                let body = s.body(route, &target, &mut p);
                (target, body)
            };
            let (_, body) = plain(&mut s);
            let (nodes, objects) = J::from(&body).node_paths();
            let len = render(&J::from(&body)).len();
            let mut variants: Vec<Vec<Mutation>> = vec![Vec::new()];
            for n in 0..nodes.len() {
                let i = Frac::at(n, nodes.len());
                for v in NASTY {
                    variants.push(vec![Mutation::Replace(i, (*v).to_string())]);
                }
                variants.push(vec![Mutation::Remove(i)]);
                variants.push(vec![Mutation::DuplicateKey(i, "\"dup\"".into())]);
                variants.push(vec![Mutation::Nest(i, 200)]);
                variants.push(vec![Mutation::GiantString(i, 100_000)]);
            }
            for o in 0..objects.len() {
                let i = Frac::at(o, objects.len());
                variants.push(vec![Mutation::AddField(i, "unknown".into(), "1".into())]);
            }
            for cut in 0..len {
                variants.push(vec![Mutation::Truncate(Frac::at(cut, len))]);
            }
            for w in WHOLE {
                variants.push(vec![Mutation::Whole((*w).to_string())]);
            }
            for b in BAD_BYTES {
                for at in [1, len / 2, len - 1] {
                    variants.push(vec![Mutation::Bytes(Frac::at(at, len + 1), b.to_vec())]);
                }
            }
            for m in variants {
                let (target, body) = plain(&mut s);
                let req = Prepared {
                    route,
                    token: ADMIN.to_string(),
                    target,
                    body: apply(&body, &m),
                    headers: vec![("content-type", "application/json".into())],
                };
                sent += 1;
                if let Err(e) = s.exec(&req).await {
                    failures.push(format!("{e}\n  mutation: {m:?}"));
                }
            }
            s.check_invariants();
        });
    }
    eprintln!("[sweep {routes:?}] {sent} requests");
    assert!(
        failures.is_empty(),
        "{} of {sent} requests broke a property; the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

#[test]
fn sweep_customers_and_records() {
    sweep(&[
        Route::CreateCustomer,
        Route::PatchCustomer,
        Route::CreateRecord,
    ]);
}

#[test]
fn sweep_deals_and_transitions() {
    sweep(&[Route::CreateDeal, Route::PatchDeal, Route::Transition]);
}

#[test]
fn sweep_catalog() {
    sweep(&[Route::CreateBranch, Route::CreateBrand, Route::CreateFx]);
}

// ---------------------------------------------------------------------------
// Server bugs the fuzzing found (fixed), as minimal reproductions.

/// Decimal inputs with more digits than a 96-bit decimal holds are rounded
/// by the parser (`Decimal::from_str`) instead of refused, so the 10^12 cap,
/// the 6-place limit of amounts and "positive" checks are bypassed, and what
/// is stored is not what was sent.
#[tokio::test]
async fn decimals_beyond_28_digits_are_refused_not_rounded() {
    let app = dealflow_tests::TestApp::new().await;
    app.branch("b").await;
    app.brand("volvo").await;
    let customer = app.customer(ADMIN, "b", "rep").await;
    let deal = |amount: &str, cost: &str| {
        json!({"customer_id": customer, "title": "Fleet", "owner": "rep", "currency": "CNY",
               "lines": [{"brand": "volvo", "product": "XC90", "amount": amount, "cost": cost}]})
    };
    let mut accepted = Vec::new();
    for (what, body) in [
        // 10^12 + 10^-19: over the cap, stored as exactly 10^12.
        (
            "amount over the cap",
            deal("1000000000000.0000000000000000001", "1"),
        ),
        // 32 decimal places (limit 6): stored as a cost of 0.
        (
            "cost with 32 places",
            deal("1", "0.00000000000000000000000000000001"),
        ),
    ] {
        let r = app.post("/v1/deals", ADMIN, body).await;
        if r.status.is_success() {
            accepted.push(format!("{what}: {}", r.body["lines"][0]));
        }
    }
    let r = app
        .post(
            "/v1/fx-rates",
            ADMIN,
            json!({"currency": "CNY", "date": "2026-01-01",
                   "per_usd": "1000000000000.0000000000000000001"}),
        )
        .await;
    if r.status.is_success() {
        accepted.push(format!("per_usd over the cap: {}", r.body["per_usd"]));
    }
    assert!(accepted.is_empty(), "accepted and rounded: {accepted:?}");
}

/// A communication record moves its customer's `last_contact_at` but not
/// its version, so the customer's representation changes under the same
/// version and ETag (`If-None-Match`/`If-Match` clients cannot see it).
#[tokio::test]
async fn a_record_that_moves_last_contact_bumps_the_customer_version() {
    let app = dealflow_tests::TestApp::new().await;
    app.branch("b").await;
    let customer = app.customer(ADMIN, "b", "rep").await;
    let before = app.get(&format!("/v1/customers/{customer}"), ADMIN).await;
    let r = app
        .post(
            &format!("/v1/customers/{customer}/records"),
            ADMIN,
            json!({"kind": "visit", "summary": "Met the buyer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let after = app.get(&format!("/v1/customers/{customer}"), ADMIN).await;
    assert_ne!(before.body, after.body, "the record moved last_contact_at");
    assert_eq!(
        version_of(&after.body),
        version_of(&before.body).map(|v| v + 1),
        "the customer changed ({} -> {}) but its version did not move (ETag {:?} -> {:?})",
        before.body["last_contact_at"],
        after.body["last_contact_at"],
        before.headers.get("etag"),
        after.headers.get("etag"),
    );
}

/// A stored time as it appears in time-index keys.
fn time_key(v: &Value) -> Option<String> {
    let t: chrono::DateTime<chrono::Utc> = v.as_str()?.parse().ok()?;
    Some(dealflow::store::keys::time(&t))
}

/// The tags of `lists` in one array of `N` (`N` their total length).
const fn concat_tags<const N: usize>(lists: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let (mut i, mut n) = (0, 0);
    while i < lists.len() {
        let mut j = 0;
        while j < lists[i].len() {
            out[n] = lists[i][j];
            n += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(n == N, "N is the total length");
    out
}
