//! A compiled script ([`RhaiPolicy`]): its hooks and example tests found at
//! compile time, the subjects its `bonus` hook declares, and the hook calls.

use std::sync::Arc;

use rhai::{Dynamic, Engine, ImmutableString, AST};
use serde::de::DeserializeOwned;

use super::call::{call_fn, call_fn_unmapped, failure_position, map_error};
use super::output::{bonus_output, decode, decode_bonus, guard_verdict};
use super::{input, RhaiHost};
use crate::policy::hooks::{
    AfterOutput, AssignInput, AssignOutput, BonusInput, BonusOutput, CadenceInput, CadenceOutput,
    GuardVerdict, Hook, TierInput, TierOutput, TransitionInput,
};
use crate::policy::{Executable, Limits, PolicyError, TestFailure};

/// A compiled script.
pub struct RhaiPolicy {
    /// The engine it runs on.
    pub(super) host: RhaiHost,
    /// The compiled script.
    pub(super) ast: Arc<AST>,
    /// Hooks it defines.
    pub(super) hooks: Vec<Hook>,
    /// Its example tests.
    pub(super) tests: Vec<String>,
    /// The subject kinds its `bonus` hook settles, when it declares them.
    pub(super) bonus_subjects: Option<Vec<String>>,
}

/// The optional function declaring which subjects a `bonus` hook settles:
/// `fn bonus_subjects() { ["deal"] }`.
pub(super) const BONUS_SUBJECTS: &str = "bonus_subjects";

impl RhaiPolicy {
    /// Names of the script's example tests.
    pub fn tests(&self) -> &[String] {
        &self.tests
    }

    /// Runs every example test; the first failure is the error, with the
    /// line and column where it failed, so an editor can point at it.
    pub fn run_examples(&self) -> Result<(), PolicyError> {
        let limits = &self.host.limits;
        for name in &self.tests {
            if let Err(e) = call_fn_unmapped(&self.host.engine, &self.ast, name, Vec::new(), limits)
            {
                let at = failure_position(&e);
                return Err(PolicyError::TestFailed(Box::new(TestFailure {
                    name: name.clone(),
                    message: map_error(*e, limits).to_string(),
                    line: at.line(),
                    column: at.position(),
                })));
            }
        }
        Ok(())
    }

    /// What `bonus_subjects()` answers: a non-empty array of distinct
    /// `deal`, `customer`, `rep`.
    pub(super) fn declared_subjects(&self) -> Result<Vec<String>, PolicyError> {
        let wrong = |why: String| {
            PolicyError::Interface(format!(
                "`{BONUS_SUBJECTS}()` must return a non-empty array of distinct \"deal\", \"customer\" or \"rep\": {why}"
            ))
        };
        let out = self.call_raw(
            &self.host.engine,
            BONUS_SUBJECTS,
            Vec::new(),
            &self.host.limits,
        )?;
        let list = out
            .read_lock::<rhai::Array>()
            .ok_or_else(|| wrong(format!("it returned a {}", out.type_name())))?;
        let mut kinds: Vec<String> = Vec::new();
        for item in list.iter() {
            let kind = item
                .read_lock::<ImmutableString>()
                .map(|s| s.to_string())
                .ok_or_else(|| wrong(format!("`{item}` is not a string")))?;
            if !["deal", "customer", "rep"].contains(&kind.as_str()) {
                return Err(wrong(format!("`{kind}` is no subject kind")));
            }
            if kinds.contains(&kind) {
                return Err(wrong(format!("`{kind}` twice")));
            }
            kinds.push(kind);
        }
        if kinds.is_empty() {
            return Err(wrong("it is empty".into()));
        }
        Ok(kinds)
    }

    fn call_raw(
        &self,
        engine: &Engine,
        name: &str,
        args: Vec<Dynamic>,
        limits: &Limits,
    ) -> Result<Dynamic, PolicyError> {
        call_fn(engine, &self.ast, name, args, limits)
    }

    /// Calls `hook` with a read-only view of `input`; the script's raw answer.
    fn call_dynamic<I: Send + Sync + 'static>(
        &self,
        hook: Hook,
        input: &Arc<I>,
        limits: &Limits,
    ) -> Result<Dynamic, PolicyError> {
        if !self.hooks.contains(&hook) {
            return Err(PolicyError::NotImplemented(hook.name()));
        }
        // Whole-branch hooks run under the bulk limits (the caller passes
        // `limits.bulk()` for them).
        let engine = if hook == Hook::Tier {
            &self.host.bulk
        } else {
            &self.host.engine
        };
        self.call_raw(
            engine,
            hook.name(),
            vec![input::view(Arc::clone(input))],
            limits,
        )
    }

    fn call<I: Send + Sync + 'static, O: DeserializeOwned>(
        &self,
        hook: Hook,
        input: &Arc<I>,
        limits: &Limits,
    ) -> Result<O, PolicyError> {
        decode(&self.call_dynamic(hook, input, limits)?)
    }
}

impl Executable for RhaiPolicy {
    fn hooks(&self) -> &[Hook] {
        &self.hooks
    }

    fn tests(&self) -> Vec<String> {
        self.tests.clone()
    }

    fn run_tests(&self) -> Result<(), PolicyError> {
        self.run_examples()
    }

    fn bonus_subjects(&self) -> Option<&[String]> {
        self.bonus_subjects.as_deref()
    }

    fn run_guard(
        &self,
        input: &Arc<TransitionInput>,
        limits: &Limits,
    ) -> Result<GuardVerdict, PolicyError> {
        let out = self.call_dynamic(Hook::Guard, input, limits)?;
        match guard_verdict(&out) {
            Some(v) => Ok(v),
            None => decode(&out),
        }
    }

    fn run_after(
        &self,
        input: &Arc<TransitionInput>,
        limits: &Limits,
    ) -> Result<AfterOutput, PolicyError> {
        self.call(Hook::After, input, limits)
    }

    fn run_tier(&self, input: &Arc<TierInput>, limits: &Limits) -> Result<TierOutput, PolicyError> {
        self.call(Hook::Tier, input, limits)
    }

    fn run_cadence(
        &self,
        input: &Arc<CadenceInput>,
        limits: &Limits,
    ) -> Result<CadenceOutput, PolicyError> {
        self.call(Hook::Cadence, input, limits)
    }

    fn run_assign(
        &self,
        input: &Arc<AssignInput>,
        limits: &Limits,
    ) -> Result<AssignOutput, PolicyError> {
        self.call(Hook::Assign, input, limits)
    }

    fn run_bonus(
        &self,
        input: &Arc<BonusInput>,
        limits: &Limits,
    ) -> Result<BonusOutput, PolicyError> {
        let out = self.call_dynamic(Hook::Bonus, input, limits)?;
        match bonus_output(&out) {
            Some(o) => Ok(o),
            None => decode_bonus(&out),
        }
    }
}
