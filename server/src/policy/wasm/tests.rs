//! Limit tests with tiny hostile fixtures: core modules written in WAT with
//! the world's exact core signatures (taken from the WIT with wit-parser),
//! the `component-type` section embedded as wit-bindgen would, and one
//! hostile body per test. Each test asserts the *kind* of error. The
//! fixtures implement the frozen interface 1.0.0 (limits do not depend on
//! the version; the SDK's plugins exercise 1.1.0).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::json;
use wit_parser::abi::{AbiVariant, WasmType};
use wit_parser::{Resolve, WorldId, WorldItem};

use std::sync::Arc;

use super::*;
use crate::policy::hooks::{BonusInput, Hook, TransitionInput};
use crate::policy::{Executable, PolicyCalls};

/// The world 1.0.0, parsed from the SDK's frozen WIT.
fn world() -> &'static (Resolve, WorldId) {
    static WORLD: OnceLock<(Resolve, WorldId)> = OnceLock::new();
    WORLD.get_or_init(|| {
        let mut resolve = Resolve::new();
        let (pkg, _) = resolve
            .push_dir(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../plugin-sdk/wit-1.0"
            ))
            .expect("the policy WIT parses");
        let world = resolve
            .select_world(&[pkg], Some("policy"))
            .expect("world `policy`");
        (resolve, world)
    })
}

/// One host for the whole test binary (engines are process-wide in use).
fn host() -> &'static WasmHost {
    static HOST: OnceLock<WasmHost> = OnceLock::new();
    HOST.get_or_init(|| WasmHost::new(&Limits::default()).expect("engine"))
}

/// Generous limits, for tests that are about something else.
fn roomy() -> Limits {
    Limits {
        deadline: Duration::from_secs(5),
        fuel: 50_000_000,
        memory_bytes: 8 << 20,
        ..Limits::default()
    }
}

// Bodies of hook functions. Memory below 1024 is the fixture's scratch
// space: 32 = the `hooks` answer, 48 = the hook list, 64 = a hook's answer.

/// `Ok(guard-verdict { allow: true, reason: none, missing: [] })`.
const ALLOW: &str = "(i32.store8 (i32.const 68) (i32.const 1)) (i32.const 64)";
/// `Ok(guard-verdict { allow: false, reason: none, .. })`: a rejection without reason.
const REJECT_WITHOUT_REASON: &str = "(i32.const 64)";
/// `Err("nope")`.
const ERR_NOPE: &str =
    "(i32.store8 (i32.const 64) (i32.const 1)) (i32.store (i32.const 68) (i32.const 200)) \
                        (i32.store (i32.const 72) (i32.const 4)) (i32.const 64)";
/// `Ok(bonus-output { lines: [{ rule: "r", amount: "1e3", explanation: "e", flag: none }] })`.
const BAD_DECIMAL: &str = "(i32.store (i32.const 68) (i32.const 300)) (i32.store (i32.const 72) (i32.const 1)) \
     (i32.store (i32.const 300) (i32.const 400)) (i32.store (i32.const 304) (i32.const 1)) \
     (i32.store (i32.const 308) (i32.const 404)) (i32.store (i32.const 312) (i32.const 3)) \
     (i32.store (i32.const 316) (i32.const 408)) (i32.store (i32.const 320) (i32.const 1)) (i32.const 64)";
/// Spins forever.
const SPIN: &str = "(loop $l (br $l)) unreachable";
/// Grows memory until refused, then aborts as a Rust guest would.
const MEMORY_BOMB: &str =
    "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable";
/// Recurses forever.
const RECURSE: &str = "(call $recurse (i32.const 0))";

/// A plugin fixture: the hooks `hooks()` lists, bodies of the hook
/// functions by name (unlisted ones are `unreachable`) and extra fields
/// (first in the module, so they may be imports).
struct Fixture {
    hooks: Vec<u8>,
    bodies: HashMap<&'static str, &'static str>,
    extra: &'static str,
}

impl Fixture {
    fn new(hooks: &[Hook]) -> Self {
        let disc = |h: &Hook| Hook::ALL.iter().position(|x| x == h).unwrap() as u8;
        Self {
            hooks: hooks.iter().map(disc).collect(),
            bodies: HashMap::new(),
            extra: "",
        }
    }

    fn body(mut self, hook: &'static str, body: &'static str) -> Self {
        self.bodies.insert(hook, body);
        self
    }

    fn extra(mut self, extra: &'static str) -> Self {
        self.extra = extra;
        self
    }

    /// The core module, with the world's `component-type` section.
    fn core(&self) -> Vec<u8> {
        let (resolve, world) = world();
        let mut funcs = String::new();
        for item in resolve.worlds[*world].exports.values() {
            let WorldItem::Function(f) = item else {
                continue;
            };
            let sig = resolve.wasm_signature(AbiVariant::GuestExport, f);
            let ty = |t: &WasmType| match t {
                WasmType::I64 | WasmType::PointerOrI64 => "i64",
                WasmType::F32 => "f32",
                WasmType::F64 => "f64",
                _ => "i32",
            };
            let params: String = sig
                .params
                .iter()
                .map(|t| format!("(param {}) ", ty(t)))
                .collect();
            let results: String = sig
                .results
                .iter()
                .map(|t| format!("(result {}) ", ty(t)))
                .collect();
            let body = if f.name == "hooks" {
                format!(
                    "(i32.store (i32.const 32) (i32.const 48)) (i32.store (i32.const 36) (i32.const {})) (i32.const 32)",
                    self.hooks.len()
                )
            } else {
                self.bodies
                    .get(f.name.as_str())
                    .copied()
                    .unwrap_or("unreachable")
                    .to_string()
            };
            funcs.push_str(&format!(
                "(func (export \"{}\") {params}{results}{body})\n",
                f.name
            ));
        }
        let hook_bytes: String = self.hooks.iter().map(|b| format!("\\{b:02x}")).collect();
        let wat = format!(
            r#"(module
  {extra}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                           (i32.xor (i32.sub (local.get 2) (i32.const 1)) (i32.const -1))))
    (global.set $heap (i32.add (local.get $p) (local.get 3)))
    (block $ok
      (loop $grow
        (br_if $ok (i32.le_u (global.get $heap) (i32.shl (memory.size) (i32.const 16))))
        (if (i32.eq (memory.grow (i32.const 1)) (i32.const -1)) (then unreachable))
        (br $grow)))
    (local.get $p))
  (func $recurse (param i32) (result i32) (call $recurse (i32.add (local.get 0) (i32.const 1))))
  (data (i32.const 48) "{hook_bytes}")
  (data (i32.const 200) "nope")
  (data (i32.const 400) "r")
  (data (i32.const 404) "1e3")
  (data (i32.const 408) "e")
  {funcs}
)"#,
            extra = self.extra
        );
        let mut bytes = wat::parse_str(&wat).unwrap_or_else(|e| panic!("fixture WAT: {e}\n{wat}"));
        wit_component::embed_component_metadata(
            &mut bytes,
            resolve,
            *world,
            wit_component::StringEncoding::UTF8,
        )
        .expect("embed metadata");
        bytes
    }

    /// The same plugin as a component.
    fn component(&self) -> Vec<u8> {
        wit_component::ComponentEncoder::default()
            .module(&self.core())
            .and_then(|e| e.validate(true).encode())
            .expect("componentize")
    }

    fn compile(&self) -> WasmPolicy {
        host()
            .compile(&self.core(), &roomy())
            .expect("fixture compiles")
    }
}

fn transition() -> Arc<TransitionInput> {
    serde_json::from_value(json!({
        "branch": {"id": "sh", "timezone": "Asia/Shanghai"},
        "deal": {
            "id": "D-1", "title": "Fleet of 3", "owner": "rep1", "currency": "CNY", "needs": ["fleet"],
            "prepayment_ratio": "0.3", "opened_at": "2026-03-01T02:00:00Z", "stage": "negotiation",
            "stages_passed": ["lead", "negotiation"], "signed_at": null,
            "lines": [{"brand": "volvo", "brand_new": true, "product": "XC90", "amount": "600000", "cost": "500000"}],
            "amount_total": "600000", "cost_total": "500000", "attributes": {"source": "fair"}
        },
        "customer": {"id": "C-1", "name": "ACME", "segment": "enterprise", "source": "self_developed", "tier": "B",
                     "owner": "rep1", "referred_by": null, "last_contact_at": "2026-03-02T02:00:00Z"},
        "records": [{"at": "2026-03-02T02:00:00Z", "by": "rep1", "kind": "visit", "summary": "demo", "has_problems": false}],
        "from": "negotiation", "to": "won", "to_kind": "won", "at": "2026-03-20T02:00:00Z",
        "actor": {"user": "rep1", "role": "rep"}
    }))
    .map(Arc::new)
    .expect("sample transition")
}

fn bonus_input() -> Arc<BonusInput> {
    serde_json::from_value(json!({
        "branch": {"id": "sh", "timezone": "Asia/Shanghai"}, "period": "2026-03", "period_kind": "month",
        "rep": "rep1", "subject_kind": "rep", "subject": "rep1", "deal": null, "cny_per_usd": "7.1",
        "per_usd": null, "customer": null, "orders": [], "new_customers": 2
    }))
    .map(Arc::new)
    .expect("sample bonus input")
}

#[test]
fn a_well_behaved_fixture_answers_and_lists_its_hooks() {
    let p = Fixture::new(&[Hook::Guard, Hook::Bonus, Hook::Guard])
        .body("guard", ALLOW)
        .compile();
    assert_eq!(p.hooks(), &[Hook::Guard, Hook::Bonus]);
    let v = p.guard(&transition(), &roomy()).expect("guard answers");
    assert!(v.allow);
    assert_eq!(v.reason, None);
    assert!(v.missing.is_empty());
}

#[test]
fn a_component_is_accepted_as_well_as_a_core_module() {
    let bytes = Fixture::new(&[Hook::Guard])
        .body("guard", ALLOW)
        .component();
    // The world `use`s the records of `types`, so a component imports that
    // interface: an instance of types only, which the empty linker accepts.
    let component = Component::new(host().engine(), &bytes).unwrap();
    let imports: Vec<String> = component
        .component_type()
        .imports(host().engine())
        .map(|(name, _)| name.to_string())
        .collect();
    assert_eq!(imports, ["dealflow:policy/types@1.0.0"]);
    let p = host()
        .compile(&bytes, &roomy())
        .expect("component compiles");
    assert!(p.guard(&transition(), &roomy()).unwrap().allow);
}

#[test]
fn an_unlisted_hook_is_not_implemented() {
    let p = Fixture::new(&[Hook::Guard]).body("guard", ALLOW).compile();
    let err = p.bonus(&bonus_input(), &roomy()).unwrap_err();
    assert!(
        matches!(err, PolicyError::NotImplemented("bonus")),
        "{err:?}"
    );
    let err = p.after(&transition(), &roomy()).unwrap_err();
    assert!(
        matches!(err, PolicyError::NotImplemented("after")),
        "{err:?}"
    );
}

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let p = Fixture::new(&[Hook::Guard]).body("guard", SPIN).compile();
    let limits = Limits {
        fuel: 1_000_000,
        ..roomy()
    };
    let err = p.guard(&transition(), &limits).unwrap_err();
    assert!(matches!(err, PolicyError::Budget(_)), "{err:?}");
}

#[test]
fn an_infinite_loop_hits_the_deadline() {
    let p = Fixture::new(&[Hook::Guard]).body("guard", SPIN).compile();
    let limits = Limits {
        fuel: u64::MAX,
        deadline: Duration::from_millis(50),
        ..roomy()
    };
    let started = Instant::now();
    let err = p.guard(&transition(), &limits).unwrap_err();
    assert!(matches!(err, PolicyError::Deadline(50)), "{err:?}");
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(50), "stopped early: {took:?}");
    assert!(took < Duration::from_secs(2), "stopped late: {took:?}");
}

#[test]
fn a_memory_bomb_hits_the_memory_cap() {
    let p = Fixture::new(&[Hook::Guard])
        .body("guard", MEMORY_BOMB)
        .compile();
    let limits = Limits {
        memory_bytes: 2 << 20,
        ..roomy()
    };
    let err = p.guard(&transition(), &limits).unwrap_err();
    assert!(matches!(err, PolicyError::Resource(_)), "{err:?}");
}

#[test]
fn a_memory_too_large_to_start_is_a_resource_error() {
    let p = Fixture::new(&[Hook::Guard]).body("guard", ALLOW).compile();
    let limits = Limits {
        memory_bytes: 32 << 10, // less than the fixture's one 64 KiB page
        ..roomy()
    };
    let err = p.guard(&transition(), &limits).unwrap_err();
    assert!(matches!(err, PolicyError::Resource(_)), "{err:?}");
}

#[test]
fn endless_recursion_exhausts_the_stack() {
    let p = Fixture::new(&[Hook::Guard])
        .body("guard", RECURSE)
        .compile();
    let err = p.guard(&transition(), &roomy()).unwrap_err();
    assert!(matches!(err, PolicyError::Resource(_)), "{err:?}");
}

#[test]
fn unreachable_is_a_failure() {
    let p = Fixture::new(&[Hook::Guard]).compile();
    let err = p.guard(&transition(), &roomy()).unwrap_err();
    let PolicyError::Failed(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains("unreachable"), "{msg}");
}

#[test]
fn the_plugins_own_error_is_a_failure_with_its_message() {
    let p = Fixture::new(&[Hook::Guard])
        .body("guard", ERR_NOPE)
        .compile();
    let err = p.guard(&transition(), &roomy()).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Failed(m) if m == "nope"),
        "{err:?}"
    );
}

#[test]
fn a_malformed_decimal_from_the_plugin_is_bad_output() {
    let p = Fixture::new(&[Hook::Bonus])
        .body("bonus", BAD_DECIMAL)
        .compile();
    let err = p.bonus(&bonus_input(), &roomy()).unwrap_err();
    assert!(
        matches!(&err, PolicyError::BadOutput(m) if m.contains("1e3")),
        "{err:?}"
    );
}

#[test]
fn a_rejection_without_reason_is_bad_output() {
    let p = Fixture::new(&[Hook::Guard])
        .body("guard", REJECT_WITHOUT_REASON)
        .compile();
    let err = p.guard(&transition(), &roomy()).unwrap_err();
    assert!(matches!(err, PolicyError::BadOutput(_)), "{err:?}");
}

#[test]
fn a_component_importing_anything_is_refused() {
    for wat in [
        r#"(component (import "evil" (func)))"#,
        r#"(component (import "wasi:clocks/wall-clock@0.2.0" (instance (export "now" (func (result u64))))))"#,
    ] {
        let err = host().compile(wat.as_bytes(), &roomy()).unwrap_err();
        assert!(
            matches!(&err, PolicyError::Interface(m) if m.contains("imports")),
            "{wat}: {err:?}"
        );
    }
}

#[test]
fn a_core_module_importing_anything_is_refused() {
    let bytes = Fixture::new(&[Hook::Guard])
        .body("guard", ALLOW)
        .extra(r#"(import "env" "now" (func (result i64)))"#)
        .core();
    let err = host().compile(&bytes, &roomy()).unwrap_err();
    assert!(matches!(err, PolicyError::Interface(_)), "{err:?}");
}

#[test]
fn garbage_does_not_compile() {
    for bytes in [
        &b"definitely not wasm"[..],
        b"\0asm\x01\0\0\0garbage!",
        b"\0asm\x0d\0\x01\0garbage!",
        b"",
        b"(component (core module (func (result i32))))",
    ] {
        let err = host().compile(bytes, &roomy()).unwrap_err();
        assert!(
            matches!(err, PolicyError::Compile { .. }),
            "{bytes:?}: {err:?}"
        );
    }
}

#[test]
fn an_oversize_upload_is_refused_before_compiling() {
    let limits = Limits {
        max_upload_bytes: 64,
        ..roomy()
    };
    let err = host().compile(&[0u8; 65], &limits).unwrap_err();
    assert!(matches!(err, PolicyError::Resource(_)), "{err:?}");
}

#[test]
fn a_core_module_without_the_component_type_section_is_refused() {
    let bytes =
        wat::parse_str(r#"(module (func (export "hooks") (result i32) i32.const 0))"#).unwrap();
    let err = host().compile(&bytes, &roomy()).unwrap_err();
    assert!(
        matches!(&err, PolicyError::Interface(m) if m.contains("component-type")),
        "{err:?}"
    );
}

#[test]
fn a_component_without_the_world_is_refused() {
    let err = host().compile(b"(component)", &roomy()).unwrap_err();
    assert!(matches!(err, PolicyError::Interface(_)), "{err:?}");
}

#[test]
fn a_plugin_with_no_hooks_is_refused() {
    let err = host()
        .compile(&Fixture::new(&[]).core(), &roomy())
        .unwrap_err();
    assert!(
        matches!(&err, PolicyError::Interface(m) if m.contains("no hook")),
        "{err:?}"
    );
}

#[test]
fn the_ticker_lets_the_engine_go() {
    let host = WasmHost::with_config(&WasmHostConfig {
        max_instances: 2,
        max_memory_bytes: 1 << 20,
        epoch_tick: Duration::from_millis(1),
    })
    .unwrap();
    let weak = host.engine().weak();
    drop(host);
    // The ticker may hold a strong handle for the instant of a tick.
    let gone = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        weak.upgrade().is_none()
    });
    assert!(gone, "the engine outlived its host");
}

#[test]
fn epoch_ticks_are_never_early() {
    assert_eq!(
        epoch_ticks(Duration::from_millis(200), Duration::from_millis(5)),
        41
    );
    assert_eq!(
        epoch_ticks(Duration::from_millis(201), Duration::from_millis(5)),
        42
    );
    assert_eq!(epoch_ticks(Duration::ZERO, Duration::from_millis(5)), 1);
}
