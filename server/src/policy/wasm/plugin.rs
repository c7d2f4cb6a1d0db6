//! A compiled plugin of one interface version ([`Plugin`]): its checked
//! hook exports, a fresh instance per hook call, and the batched `bonus`
//! calls of a settlement.
//!
//! One source for every version: each version module (`v1_0`, `v1_1`)
//! includes this file as its `plugin` module and supplies, as its own
//! items, the bindings (`wit`, `PolicyPre`), `convert` (hook records ↔ its
//! WIT records) and `ask` (what a plugin declares about itself).

use std::sync::Arc;
use std::time::Duration;

use wasmtime::component::{Component, Instance};
use wasmtime::{Engine, Store};

use super::{ask, convert, wit, PolicyPre};
use crate::policy::hooks::{
    AfterOutput, AssignInput, AssignOutput, BonusInput, BonusOutput, CadenceInput, CadenceOutput,
    GuardVerdict, Hook, TierInput, TierOutput, TransitionInput,
};
use crate::policy::wasm::hook::{wit_hooks, HookExport, WitHook};
use crate::policy::wasm::limiter::CallLimiter;
use crate::policy::wasm::{
    clip, epoch_ticks, finish, CallState, LogBudget, BONUS_CALLS_PER_INSTANCE,
};
use crate::policy::{Executable, Limits, PolicyError};

wit_hooks! {
    /// `guard: func(input: transition-input) -> result<guard-verdict, string>`.
    GuardHook: Guard, TransitionInput -> GuardVerdict;
    /// `after: func(input: transition-input) -> result<after-output, string>`.
    AfterHook: After, TransitionInput -> AfterOutput;
    /// `tier: func(input: tier-input) -> result<tier-output, string>`.
    TierHook: Tier, TierInput -> TierOutput;
    /// `cadence: func(input: cadence-input) -> result<cadence-output, string>`.
    CadenceHook: Cadence, CadenceInput -> CadenceOutput;
    /// `assign: func(input: assign-input) -> result<assign-output, string>`.
    AssignHook: Assign, AssignInput -> AssignOutput;
    /// `bonus: func(input: bonus-input) -> result<bonus-output, string>`.
    BonusHook: Bonus, BonusInput -> BonusOutput;
}

/// The hook exports of one component, each checked against its hook's
/// types; `None` where the component has no such export.
pub(super) struct Exports {
    guard: Option<HookExport<GuardHook>>,
    after: Option<HookExport<AfterHook>>,
    tier: Option<HookExport<TierHook>>,
    cadence: Option<HookExport<CadenceHook>>,
    assign: Option<HookExport<AssignHook>>,
    bonus: Option<HookExport<BonusHook>>,
}

impl Exports {
    /// Finds and checks every hook export of `component` on `instance`.
    fn find(
        component: &Component,
        instance: &Instance,
        store: &mut Store<CallState>,
    ) -> Result<Self, PolicyError> {
        Ok(Self {
            guard: HookExport::find(component, instance, store)?,
            after: HookExport::find(component, instance, store)?,
            tier: HookExport::find(component, instance, store)?,
            cadence: HookExport::find(component, instance, store)?,
            assign: HookExport::find(component, instance, store)?,
            bonus: HookExport::find(component, instance, store)?,
        })
    }
}

/// A compiled plugin, ready to run the hooks it implements; each call runs
/// in a fresh instance (but see [`BONUS_CALLS_PER_INSTANCE`]).
pub struct Plugin {
    /// The engine (for new stores).
    engine: Engine,
    /// The type-checked pre-instance.
    pre: PolicyPre<CallState>,
    /// Each hook's export, type-checked once: a call instantiates and
    /// fetches only the function it runs.
    exports: Exports,
    /// The hooks it implements, sorted.
    hooks: Vec<Hook>,
    /// The subject kinds its `bonus` hook settles, when it declares them.
    bonus_subjects: Option<Vec<String>>,
    /// The ticker's period.
    epoch_tick: Duration,
    /// How many `log` lines it may still write (per version).
    log: Arc<LogBudget>,
}

impl Plugin {
    /// Instantiates `component` once under `limits`, asks it which hooks it
    /// implements and checks its hook exports.
    pub(in crate::policy::wasm) fn load(
        engine: &Engine,
        component: &Component,
        pre: PolicyPre<CallState>,
        epoch_tick: Duration,
        log: Arc<LogBudget>,
        limits: &Limits,
    ) -> Result<Self, PolicyError> {
        let mut store = new_store(engine, epoch_tick, &log, limits)?;
        let instance = pre
            .instance_pre()
            .instantiate(&mut store)
            .map_err(|e| finish::<()>(Err(e), &store, limits).unwrap_err())?;
        let exports = Exports::find(component, &instance, &mut store)?;
        let declared = ask::declared(&mut store, &instance);
        let (mut hooks, bonus_subjects) =
            finish(declared.map(Ok), &store, limits).map_err(|e| match e {
                PolicyError::Budget(_) | PolicyError::Deadline(_) | PolicyError::Resource(_) => e,
                other => PolicyError::Interface(format!("the plugin did not answer: {other}")),
            })?;
        hooks.sort();
        hooks.dedup();
        if hooks.is_empty() {
            return Err(PolicyError::Interface(
                "the plugin implements no hook: `hooks()` returned an empty list".into(),
            ));
        }
        let bonus_subjects = crate::policy::answer::checked_subjects(bonus_subjects, &hooks)?;
        Ok(Self {
            engine: engine.clone(),
            pre,
            exports,
            hooks,
            bonus_subjects,
            epoch_tick,
            log,
        })
    }

    /// Calls hook `H` with `input` on a fresh instance under `limits`,
    /// fetching only that hook's function.
    fn call_hook<H: WitHook>(
        &self,
        export: &Option<HookExport<H>>,
        input: &H::Input<'_>,
        limits: &Limits,
    ) -> Result<H::Output, PolicyError> {
        let export = match export {
            Some(export) if self.hooks.contains(&H::HOOK) => export,
            _ => return Err(PolicyError::NotImplemented(H::HOOK.name())),
        };
        let mut store = new_store(&self.engine, self.epoch_tick, &self.log, limits)?;
        let outcome = self
            .pre
            .instance_pre()
            .instantiate(&mut store)
            .and_then(|instance| {
                let func = export.func(&instance, &mut store)?;
                func.call(&mut store, (input,)).map(|(r,)| r)
            });
        finish(outcome, &store, limits)
    }
}

/// A fresh store under `limits`: memory cap, fuel and epoch deadline.
fn new_store(
    engine: &Engine,
    epoch_tick: Duration,
    log: &Arc<LogBudget>,
    limits: &Limits,
) -> Result<Store<CallState>, PolicyError> {
    let mut store = Store::new(
        engine,
        CallState {
            limiter: CallLimiter::new(limits.memory_bytes),
            log: Arc::clone(log),
        },
    );
    store.limiter(|s| &mut s.limiter);
    store
        .set_fuel(limits.fuel)
        .map_err(|e| PolicyError::Failed(format!("cannot set fuel: {e}")))?;
    store.set_epoch_deadline(epoch_ticks(limits.deadline, epoch_tick));
    store.epoch_deadline_trap();
    Ok(store)
}

impl Executable for Plugin {
    fn hooks(&self) -> &[Hook] {
        &self.hooks
    }

    fn bonus_subjects(&self) -> Option<&[String]> {
        self.bonus_subjects.as_deref()
    }

    fn run_guard(
        &self,
        input: &Arc<TransitionInput>,
        limits: &Limits,
    ) -> Result<GuardVerdict, PolicyError> {
        convert::with_transition(input, |i| self.call_hook(&self.exports.guard, i, limits))
            .and_then(|r| r)
            .map(convert::guard_verdict)
    }

    fn run_after(
        &self,
        input: &Arc<TransitionInput>,
        limits: &Limits,
    ) -> Result<AfterOutput, PolicyError> {
        convert::with_transition(input, |i| self.call_hook(&self.exports.after, i, limits))
            .and_then(|r| r)
            .and_then(convert::after_output)
    }

    fn run_tier(&self, input: &Arc<TierInput>, limits: &Limits) -> Result<TierOutput, PolicyError> {
        convert::with_tier_input(input, |i| self.call_hook(&self.exports.tier, i, limits))
            .and_then(|r| r)
            .map(convert::tier_output)
    }

    fn run_cadence(
        &self,
        input: &Arc<CadenceInput>,
        limits: &Limits,
    ) -> Result<CadenceOutput, PolicyError> {
        convert::with_cadence_input(input, |i| self.call_hook(&self.exports.cadence, i, limits))
            .and_then(|r| r)
            .map(convert::cadence_output)
    }

    fn run_assign(
        &self,
        input: &Arc<AssignInput>,
        limits: &Limits,
    ) -> Result<AssignOutput, PolicyError> {
        convert::with_assign_input(input, |i| self.call_hook(&self.exports.assign, i, limits))
            .and_then(|r| r)
            .map(convert::assign_output)
    }

    fn run_bonus(
        &self,
        input: &Arc<BonusInput>,
        limits: &Limits,
    ) -> Result<BonusOutput, PolicyError> {
        convert::with_bonus_input(input, |i| self.call_hook(&self.exports.bonus, i, limits))
            .and_then(|r| r)
            .and_then(convert::bonus_output)
    }

    /// Serves up to [`BONUS_CALLS_PER_INSTANCE`] subjects from one instance
    /// (instantiation is most of a short call's cost), each call with fresh
    /// fuel and deadline. A call that traps (or runs out of memory the
    /// earlier calls left allocated) is retried alone on a fresh instance,
    /// so its answer is what a single call gives; the rest continue on a new
    /// instance.
    fn run_bonus_many(
        &self,
        inputs: &[Arc<BonusInput>],
        limits: &Limits,
    ) -> Vec<Result<BonusOutput, PolicyError>> {
        let export = match &self.exports.bonus {
            Some(export) if self.hooks.contains(&Hook::Bonus) => export,
            _ => return inputs.iter().map(|i| self.run_bonus(i, limits)).collect(),
        };
        let mut out = Vec::with_capacity(inputs.len());
        while out.len() < inputs.len() {
            self.bonus_on_one_instance(export, &inputs[out.len()..], limits, &mut out);
        }
        out
    }
}

impl Plugin {
    /// Answers the first of `inputs` (at least one, at most
    /// [`BONUS_CALLS_PER_INSTANCE`]) on one instance, pushing to `out`.
    fn bonus_on_one_instance(
        &self,
        export: &HookExport<BonusHook>,
        inputs: &[Arc<BonusInput>],
        limits: &Limits,
        out: &mut Vec<Result<BonusOutput, PolicyError>>,
    ) {
        let alone =
            |out: &mut Vec<_>, input: &Arc<BonusInput>| out.push(self.run_bonus(input, limits));
        let Ok(mut store) = new_store(&self.engine, self.epoch_tick, &self.log, limits) else {
            return alone(out, &inputs[0]);
        };
        let Ok(instance) = self.pre.instance_pre().instantiate(&mut store) else {
            return alone(out, &inputs[0]);
        };
        for input in inputs.iter().take(BONUS_CALLS_PER_INSTANCE) {
            if store.set_fuel(limits.fuel).is_err() {
                return alone(out, input);
            }
            store.set_epoch_deadline(epoch_ticks(limits.deadline, self.epoch_tick));
            let outcome = convert::with_bonus_input(input, |i| {
                let func = export.func(&instance, &mut store)?;
                func.call(&mut store, (i,)).map(|(r,)| r)
            });
            let outcome = match outcome {
                Ok(outcome) => outcome,
                // The input has no form in this interface: nothing ran.
                Err(e) => {
                    out.push(Err(e));
                    continue;
                }
            };
            match outcome {
                Ok(Ok(o)) => out.push(convert::bonus_output(o)),
                Ok(Err(msg)) => out.push(Err(PolicyError::Failed(clip(msg)))),
                // The instance is unusable after a trap: this input gets
                // one of its own, the rest a new shared one.
                Err(_) => return alone(out, input),
            }
        }
    }
}
