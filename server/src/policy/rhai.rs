//! The rhai runtime: one sandboxed engine, an AST compiled once per policy
//! version, and the bridge between the hook records and rhai values.
//!
//! The sandbox: `Engine::new_raw` plus only the packages policies need (no
//! file `import` — the crate is built with `no_module` —, no `sleep`, no
//! clock: the language-core package is left out and `no_time` is on; `eval`
//! is disabled); `print`/`debug` go to tracing; limits on operations, call
//! depth, expression depth, string, array and map sizes; a wall-clock
//! deadline checked from `on_progress`. Numbers are integers or `Decimal`
//! (the crate is built with `decimal` + `no_float`, so `0.10` is a decimal),
//! so a script never computes money in floating point.
//!
//! Submodules: `helpers` (the functions scripts get), `input` (hook inputs
//! as lazy read-only values), `value` (scalars → rhai values), `call` (a
//! call under its limits), `policy` (a compiled script and its hooks),
//! `output` (answers → output records).

mod call;
mod helpers;
pub mod input;
mod output;
mod policy;
#[cfg(test)]
mod tests;
pub mod value;

use std::sync::Arc;

use rhai::packages::{
    ArithmeticPackage, BasicArrayPackage, BasicFnPackage, BasicIteratorPackage, BasicMapPackage,
    BasicMathPackage, BasicStringPackage, LogicPackage, MoreStringPackage, Package,
};
use rhai::{Engine, Module};

use super::hooks::Hook;
use super::{Limits, PolicyError};
pub use policy::RhaiPolicy;
use policy::BONUS_SUBJECTS;

/// The shared, sandboxed rhai engine.
#[derive(Clone)]
pub struct RhaiHost {
    /// The engine (immutable after construction, shared by every call).
    engine: Arc<Engine>,
    /// The same engine under [`Limits::bulk`], for whole-branch hooks
    /// (rhai's size and operation caps are the engine's, not the call's).
    bulk: Arc<Engine>,
    /// The limits it was built with.
    limits: Limits,
}

impl RhaiHost {
    /// Builds the sandboxed engines with `limits` (and their bulk form).
    pub fn new(limits: Limits) -> Self {
        Self {
            engine: Arc::new(Self::engine(&limits)),
            bulk: Arc::new(Self::engine(&limits.bulk())),
            limits,
        }
    }

    fn engine(limits: &Limits) -> Engine {
        let mut engine = Engine::new_raw();
        // One module holding every package: a call resolves its function
        // with one lookup instead of one per package (resolution is redone
        // on every hook call, since each call starts with fresh caches).
        let mut packages = Module::new();
        for module in [
            ArithmeticPackage::new().as_shared_module(),
            LogicPackage::new().as_shared_module(),
            BasicStringPackage::new().as_shared_module(),
            MoreStringPackage::new().as_shared_module(),
            BasicIteratorPackage::new().as_shared_module(),
            BasicFnPackage::new().as_shared_module(),
            BasicArrayPackage::new().as_shared_module(),
            BasicMapPackage::new().as_shared_module(),
            BasicMathPackage::new().as_shared_module(),
        ] {
            packages.combine_flatten((*module).clone());
        }
        packages.build_index();
        engine.register_global_module(packages.into());
        helpers::register(&mut engine);
        input::register(&mut engine);
        engine.disable_symbol("eval");
        engine.set_strict_variables(true);
        engine.set_max_operations(limits.max_operations);
        engine.set_max_call_levels(limits.max_call_depth);
        engine.set_max_expr_depths(limits.max_expr_depth.0, limits.max_expr_depth.1);
        engine.set_max_string_size(limits.max_string_size);
        engine.set_max_array_size(limits.max_array_size);
        engine.set_max_map_size(limits.max_map_size);
        engine.on_print(|s| tracing::info!(target: "dealflow::policy::print", "{s}"));
        engine.on_debug(|s, src, pos| tracing::debug!(target: "dealflow::policy::debug", source = ?src, %pos, "{s}"));
        engine.on_progress(call::past_deadline);
        engine
    }

    /// Compiles a script; checks its hooks and runs its example tests
    /// (functions named `test_*` without parameters).
    pub fn compile(&self, source: &str) -> Result<RhaiPolicy, PolicyError> {
        if source.len() > self.limits.max_upload_bytes {
            return Err(PolicyError::Resource(format!(
                "the script is {} bytes; the limit is {}",
                source.len(),
                self.limits.max_upload_bytes
            )));
        }
        let ast = self
            .engine
            .compile(source)
            .map_err(|e| PolicyError::Compile {
                message: e.to_string(),
                line: e.position().line(),
                column: e.position().position(),
            })?;
        let mut hooks = Vec::new();
        let mut tests = Vec::new();
        let mut declares_subjects = false;
        for f in ast.iter_functions() {
            if f.name == BONUS_SUBJECTS {
                if !f.params.is_empty() {
                    return Err(PolicyError::Interface(format!(
                        "`{BONUS_SUBJECTS}` takes no parameter (it declares the subjects `bonus` settles)"
                    )));
                }
                declares_subjects = true;
                continue;
            }
            if let Some(h) = Hook::ALL.iter().find(|h| h.name() == f.name) {
                if f.params.len() != 1 {
                    return Err(PolicyError::Interface(format!(
                        "`{}` must take exactly one parameter (the hook's input)",
                        f.name
                    )));
                }
                hooks.push(*h);
            } else if f.name.starts_with("test_") && f.params.is_empty() {
                tests.push(f.name.to_string());
            }
        }
        hooks.sort();
        hooks.dedup();
        if hooks.is_empty() {
            return Err(PolicyError::Interface(
                "the script defines no hook function (guard, after, tier, cadence, assign or bonus)".into(),
            ));
        }
        if declares_subjects && !hooks.contains(&Hook::Bonus) {
            return Err(PolicyError::Interface(format!(
                "`{BONUS_SUBJECTS}` is declared but there is no `bonus` hook"
            )));
        }
        let mut policy = RhaiPolicy {
            host: self.clone(),
            ast: Arc::new(ast),
            hooks,
            tests,
            bonus_subjects: None,
        };
        policy.run_examples()?;
        if declares_subjects {
            policy.bonus_subjects = Some(policy.declared_subjects()?);
        }
        Ok(policy)
    }
}
