//! The wasmtime component host: WebAssembly policy plugins implementing the
//! WIT world `dealflow:policy/policy@1.1.0` (`plugin-sdk/wit/policy.wit`)
//! or the frozen `@1.0.0` (`plugin-sdk/wit-1.0/policy.wit`).
//!
//! - One [`WasmHost`] per process: one `Engine` with the component model,
//!   the pooling allocator, fuel and epoch interruption, and an epoch ticker
//!   thread that holds only a weak engine handle (it stops once the engine
//!   and every plugin compiled on it are gone).
//! - [`WasmHost::compile`] takes untrusted bytes: a component, or a core
//!   module carrying the `component-type` section that wit-bindgen embeds
//!   (componentized here with `wit-component`). It compiles them itself
//!   (never `deserialize`), refuses every import but the interface's own
//!   `config` and `log` (no WASI, no other host functions), finds which
//!   interface version the plugin exports, keeps a pre-instance, checks
//!   each hook export's type once and asks the plugin once which hooks it
//!   implements (and, in 1.1, which bonus subjects it settles).
//! - Each hook call of a [`WasmPolicy`] gets a fresh `Store` and instance from
//!   the pre-instance (a few microseconds with the pooling allocator), a
//!   memory cap, a fuel budget and an epoch deadline from [`Limits`];
//!   a settlement's `bonus` calls share an instance by up to
//!   [`BONUS_CALLS_PER_INSTANCE`].
//!
//! Errors map to [`PolicyError`] by kind: fuel → `Budget`, deadline →
//! `Deadline`, memory or stack → `Resource`, traps and the plugin's own
//! `Err` → `Failed`, malformed answers → `BadOutput`.
//!
//! Submodules: `bindings` (the host side of both WIT versions), `hook` (each
//! hook paired with its WIT types; exports checked once), `v1_0` and
//! `v1_1` (one module per version, each compiling the shared `convert.rs`,
//! hook records ↔ WIT records, and `plugin.rs`, a compiled plugin and its
//! calls), `policy` (a plugin of either version), `log` (the `log`
//! import's budget), `limiter` (the per-call memory limiter).

mod bindings;
mod hook;
mod limiter;
mod log;
mod policy;
#[cfg(test)]
mod tests;
mod v1_0;
mod v1_1;

use std::borrow::Cow;
use std::time::Duration;

use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolConcurrencyLimitError,
    PoolingAllocationConfig, Store, Trap,
};

use super::{Limits, PolicyError};
use limiter::CallLimiter;
use log::LogBudget;
pub use policy::WasmPolicy;

/// The interface versions the host serves, newest first.
pub const INTERFACE_VERSIONS: [&str; 2] = ["1.1.0", "1.0.0"];

/// Most `bonus` calls one instance serves in a settlement: bounds what a
/// plugin's bump allocator holds (it frees nothing until the instance
/// ends) and how far state kept between calls could reach.
pub const BONUS_CALLS_PER_INSTANCE: usize = 64;

/// Longest error message taken from a plugin's `Err(..)`, in bytes.
const MAX_PLUGIN_MESSAGE: usize = 2048;

/// How the engine is sized. The per-call limits (fuel, deadline, memory)
/// come from [`Limits`]; these are the process-wide ceilings.
#[derive(Debug, Clone)]
pub struct WasmHostConfig {
    /// Most plugin instances alive at once, across all plugins: one per
    /// running hook call. A call beyond it fails with `Resource`.
    pub max_instances: u32,
    /// Hard ceiling on any instance's linear memory, in bytes;
    /// `Limits::memory_bytes` caps each call at or below it.
    pub max_memory_bytes: usize,
    /// Period of the epoch ticker: the granularity of deadlines.
    pub epoch_tick: Duration,
}

impl Default for WasmHostConfig {
    fn default() -> Self {
        Self {
            max_instances: 256,
            max_memory_bytes: 256 << 20,
            epoch_tick: Duration::from_millis(5),
        }
    }
}

/// The WebAssembly engine shared by every plugin. Cheap to clone.
#[derive(Clone)]
pub struct WasmHost {
    /// The engine (reference-counted by wasmtime).
    engine: Engine,
    /// The ticker's period, to turn deadlines into epoch ticks.
    epoch_tick: Duration,
}

impl std::fmt::Debug for WasmHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmHost")
            .field("epoch_tick", &self.epoch_tick)
            .finish_non_exhaustive()
    }
}

/// What one call's store holds.
struct CallState {
    /// The memory limiter (and what it refused).
    limiter: CallLimiter,
    /// The plugin version's `log` budget (interface 1.1).
    log: std::sync::Arc<LogBudget>,
}

impl WasmHost {
    /// An engine with the default sizing, its memory ceiling at
    /// `limits.memory_bytes`.
    pub fn new(limits: &Limits) -> Result<Self, PolicyError> {
        Self::with_config(&WasmHostConfig {
            max_memory_bytes: limits.memory_bytes,
            ..WasmHostConfig::default()
        })
    }

    /// An engine sized by `config`, with its epoch ticker running.
    pub fn with_config(config: &WasmHostConfig) -> Result<Self, PolicyError> {
        let n = config.max_instances.max(1);
        // Resetting an instance's memory for the next call: where Linux can
        // tell which pages were dirtied (PAGEMAP_SCAN), those alone are
        // zeroed in place and stay resident (no `madvise`, no page faults on
        // the next call); elsewhere only the lowest pages are kept.
        let scan = PoolingAllocationConfig::is_pagemap_scan_available();
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(2))
            .total_memories(n)
            .total_tables(n.saturating_mul(2))
            .max_core_instances_per_component(8)
            .max_memories_per_component(2)
            .max_tables_per_component(4)
            .max_memory_size(config.max_memory_bytes)
            .pagemap_scan(if scan { Enabled::Yes } else { Enabled::No })
            .linear_memory_keep_resident(if scan { 2 << 20 } else { 64 << 10 })
            .table_keep_resident(16 << 10);
        let mut wasm = Config::new();
        wasm.wasm_component_model(true)
            .consume_fuel(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .cranelift_opt_level(OptLevel::Speed)
            .parallel_compilation(true)
            .max_wasm_stack(512 << 10);
        let engine = Engine::new(&wasm).map_err(|e| {
            PolicyError::Resource(format!("cannot start the WebAssembly engine: {e:#}"))
        })?;
        let tick = config.epoch_tick.max(Duration::from_millis(1));
        spawn_ticker(&engine, tick)?;
        Ok(Self {
            engine,
            epoch_tick: tick,
        })
    }

    /// Compiles an uploaded plugin: a component, or a core module that
    /// embeds the `component-type` section wit-bindgen emits.
    ///
    /// Refuses oversized uploads (`Resource`), bytes that are not
    /// WebAssembly (`Compile`), and plugins that import anything, do not
    /// export the policy world or implement no hook (`Interface`). Asks the
    /// plugin for its hooks under `limits`. CPU-heavy: call it off the async
    /// workers.
    pub fn compile(&self, bytes: &[u8], limits: &Limits) -> Result<WasmPolicy, PolicyError> {
        if bytes.len() > limits.max_upload_bytes {
            return Err(PolicyError::Resource(format!(
                "the module is {} bytes; the limit is {}",
                bytes.len(),
                limits.max_upload_bytes
            )));
        }
        let component_bytes = if is_core_module(bytes) {
            Cow::Owned(componentize(bytes)?)
        } else {
            Cow::Borrowed(bytes)
        };
        let component =
            Component::new(&self.engine, &component_bytes).map_err(|e| PolicyError::Compile {
                message: format!("{e:#}"),
                line: None,
                column: None,
            })?;
        check_imports(&self.engine, &component)?;
        // The linker holds the 1.1 imports (`config`, `log`); a 1.0 plugin
        // imports nothing but type-only instances, which need no definition.
        let mut linker = Linker::<CallState>::new(&self.engine);
        bindings::v1_1::Policy::add_to_linker::<CallState, wasmtime::component::HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )
        .map_err(|e| PolicyError::Interface(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| PolicyError::Interface(format!("{e:#}")))?;
        let log = std::sync::Arc::new(LogBudget::new(hex_prefix(bytes)));
        let tick = self.epoch_tick;
        let newest = match v1_1::PolicyPre::new(pre.clone()) {
            Ok(pre) => {
                let plugin =
                    v1_1::plugin::Plugin::load(&self.engine, &component, pre, tick, log, limits)?;
                return Ok(WasmPolicy::V1_1(plugin));
            }
            Err(e) => e,
        };
        let pre = v1_0::PolicyPre::new(pre).map_err(|older| {
            PolicyError::Interface(format!(
                "the plugin exports neither the dealflow:policy@1.1.0 world ({newest:#}) nor \
                 dealflow:policy@1.0.0 ({older:#})"
            ))
        })?;
        let plugin = v1_0::plugin::Plugin::load(&self.engine, &component, pre, tick, log, limits)?;
        Ok(WasmPolicy::V1_0(plugin))
    }

    #[cfg(test)]
    fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Starts the thread that advances the engine's epoch every `tick`; it holds
/// only a weak handle and ends when the engine is gone.
fn spawn_ticker(engine: &Engine, tick: Duration) -> Result<(), PolicyError> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("wasm-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(tick);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })
        .map(drop)
        .map_err(|e| PolicyError::Resource(format!("cannot start the epoch ticker: {e}")))
}

/// Whether `bytes` is a binary core module (as opposed to a component or text).
fn is_core_module(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [1, 0, 0, 0]
}

/// Turns a wit-bindgen core module into a component.
fn componentize(core: &[u8]) -> Result<Vec<u8>, PolicyError> {
    let (stripped, _) =
        wit_component::metadata::decode(core).map_err(|e| PolicyError::Compile {
            message: format!("{e:#}"),
            line: None,
            column: None,
        })?;
    if stripped.is_none() {
        return Err(PolicyError::Interface(
            "a core module must embed the `component-type` custom section that wit-bindgen emits \
             (build the plugin with dealflow-plugin-sdk), or be uploaded as a component"
                .into(),
        ));
    }
    wit_component::ComponentEncoder::default()
        .module(core)
        .and_then(|e| e.validate(true).encode())
        .map_err(|e| {
            PolicyError::Interface(format!("cannot make a component of the module: {e:#}"))
        })
}

/// The functions interface 1.1 lets a plugin import (the linker checks
/// their types).
const HOST_FUNCTIONS: [&str; 2] = ["config", "log"];

/// Refuses every import except type-only instances (the interfaces whose
/// records the world uses carry no functions) and the host's own functions
/// ([`HOST_FUNCTIONS`]).
fn check_imports(engine: &Engine, component: &Component) -> Result<(), PolicyError> {
    let ty = component.component_type();
    let mut refused = Vec::new();
    for (name, import) in ty.imports(engine) {
        if HOST_FUNCTIONS.contains(&name) && matches!(import.ty, ComponentItem::ComponentFunc(_)) {
            continue;
        }
        let (harmless, kind) = match &import.ty {
            ComponentItem::ComponentInstance(i) => (
                i.exports(engine)
                    .all(|(_, e)| matches!(e.ty, ComponentItem::Type(_))),
                "an instance with functions",
            ),
            ComponentItem::Type(_) => (true, "a type"),
            ComponentItem::ComponentFunc(_) | ComponentItem::CoreFunc(_) => (false, "a function"),
            ComponentItem::Module(_) => (false, "a module"),
            ComponentItem::Component(_) => (false, "a component"),
            ComponentItem::Resource(_) => (false, "a resource"),
        };
        if !harmless {
            refused.push(format!("`{name}` ({kind})"));
        }
    }
    if refused.is_empty() {
        Ok(())
    } else {
        Err(PolicyError::Interface(format!(
            "the plugin imports {}; plugins get no imports but the interface's `config` and `log` (no WASI, \
             no other host functions): build it for wasm32-unknown-unknown with dealflow-plugin-sdk",
            refused.join(", ")
        )))
    }
}

/// Epoch ticks for `deadline`: never early, at most about one tick late.
fn epoch_ticks(deadline: Duration, tick: Duration) -> u64 {
    let ticks = deadline.as_nanos().div_ceil(tick.as_nanos().max(1));
    u64::try_from(ticks).unwrap_or(u64::MAX).saturating_add(1)
}

/// The kind of error a failed call (or instantiation) is.
fn classify(err: &wasmtime::Error, state: &CallState, limits: &Limits) -> PolicyError {
    let trap = err.downcast_ref::<Trap>();
    match trap {
        Some(Trap::OutOfFuel) => return PolicyError::Budget(format!("{} fuel", limits.fuel)),
        Some(Trap::Interrupt) => return PolicyError::Deadline(limits.deadline.as_millis() as u64),
        Some(Trap::StackOverflow) => {
            return PolicyError::Resource("the call stack is exhausted (recursion too deep)".into())
        }
        _ => {}
    }
    if let Some(refusal) = state.limiter.refusal() {
        return PolicyError::Resource(refusal);
    }
    if let Some(e) = err.downcast_ref::<PoolConcurrencyLimitError>() {
        return PolicyError::Resource(format!("too many plugin calls at once ({e})"));
    }
    match trap {
        Some(t) => PolicyError::Failed(format!("the plugin trapped: {t}")),
        None => PolicyError::Failed(format!("{err:#}")),
    }
}

/// The outcome of a call: the plugin's answer, its own error, or the host's
/// verdict on how it failed.
fn finish<R>(
    outcome: wasmtime::Result<Result<R, String>>,
    store: &Store<CallState>,
    limits: &Limits,
) -> Result<R, PolicyError> {
    match outcome {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(msg)) => Err(PolicyError::Failed(clip(msg))),
        Err(e) => Err(classify(&e, store.data(), limits)),
    }
}

/// Cuts a plugin's message to [`MAX_PLUGIN_MESSAGE`] bytes.
fn clip(mut msg: String) -> String {
    if msg.len() > MAX_PLUGIN_MESSAGE {
        let mut end = MAX_PLUGIN_MESSAGE;
        while !msg.is_char_boundary(end) {
            end -= 1;
        }
        msg.truncate(end);
        msg.push('…');
    }
    msg
}

/// The first 12 hex digits of the SHA-256 of `bytes`: how log lines name
/// the plugin version (the version record shows the full hash).
fn hex_prefix(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(bytes)[..6])
}
