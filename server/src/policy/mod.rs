//! Policies: branch rules as rhai scripts or WebAssembly plugins, compiled
//! once per version, executed per hook call within hard limits.
//!
//! - [`hooks`]: the interface (hook points and their input/output records).
//! - [`answer`]: the checks every hook answer passes, for both runtimes.
//! - [`config`]: per-activation parameters and how a call reads them.
//! - [`defaults`]: the default policies' sources.
//! - [`limits`]: the named limits every execution runs under.
//! - [`rhai`]: the rhai engine, its sandbox and the script bridge.
//! - [`wasm`]: the wasmtime component host.

pub mod answer;
pub mod config;
pub mod defaults;
pub mod executor;
pub mod hook_values;
pub mod hooks;
pub mod limits;
pub mod live;

pub mod rhai;
pub mod wasm;

use std::sync::Arc;

use answer::HookOutput;

use hooks::{
    AfterOutput, AssignInput, AssignOutput, BonusInput, BonusOutput, CadenceInput, CadenceOutput,
    GuardVerdict, Hook, TierInput, TierOutput, TransitionInput,
};
pub use limits::Limits;

/// Why a policy could not be compiled or did not return a usable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PolicyError {
    /// The source or module does not compile.
    #[error("does not compile: {message}")]
    Compile {
        /// The compiler's message.
        message: String,
        /// 1-based line, for scripts.
        line: Option<usize>,
        /// 1-based column, for scripts.
        column: Option<usize>,
    },
    /// The policy does not fit the interface (no hooks, unknown exports, …).
    #[error("does not fit the policy interface: {0}")]
    Interface(String),
    /// The policy carries example tests and one failed (boxed: this
    /// error travels inside every service error, which stays small).
    #[error("example test `{}` failed: {}", .0.name, .0.message)]
    TestFailed(Box<TestFailure>),
    /// The call ran past its operation budget or fuel.
    #[error("exceeded its budget of {0}")]
    Budget(String),
    /// The call ran past its wall-clock deadline.
    #[error("exceeded its deadline of {0} ms")]
    Deadline(u64),
    /// The call needed more memory than allowed (or nested too deep).
    #[error("exceeded a memory or size limit: {0}")]
    Resource(String),
    /// The script threw, or the plugin trapped or returned an error.
    #[error("failed: {0}")]
    Failed(String),
    /// The answer does not have the hook's output shape.
    #[error("returned the wrong shape: {0}")]
    BadOutput(String),
    /// The policy does not implement the hook it was asked for.
    #[error("does not implement the `{0}` hook")]
    NotImplemented(&'static str),
}

/// Which example test failed, how, and where.
#[derive(Debug, Clone)]
pub struct TestFailure {
    /// The test's name.
    pub name: String,
    /// What failed.
    pub message: String,
    /// 1-based line where it failed (the innermost call), for scripts.
    pub line: Option<usize>,
    /// 1-based column where it failed, for scripts.
    pub column: Option<usize>,
}

/// A compiled policy version, ready to run any hook it implements: what a
/// runtime (rhai, wasm, a test's native rule) implements. Its `run_*`
/// methods give the runtime's answer as is; the rest of the server calls
/// the hooks through [`PolicyCalls`], which checks every answer once
/// ([`answer::HookOutput`]). Calls are synchronous CPU work: run them off
/// the async workers. Inputs are shared (`Arc`) so a runtime can hand them
/// to a script without copying them.
pub trait Executable: Send + Sync {
    /// The hooks the policy implements.
    fn hooks(&self) -> &[Hook];
    /// Names of the example tests it carries (run at compile).
    fn tests(&self) -> Vec<String> {
        Vec::new()
    }
    /// Runs its example tests again (under the current configuration: an
    /// activation's parameters are tried this way); the first failure is
    /// the error.
    fn run_tests(&self) -> Result<(), PolicyError> {
        Ok(())
    }

    // A hook the policy does not implement answers `NotImplemented`: native
    // policies (benchmarks' limits, tests' oracles) implement one hook each.

    /// Before a transition.
    fn run_guard(&self, _: &Arc<TransitionInput>, _: &Limits) -> Result<GuardVerdict, PolicyError> {
        Err(PolicyError::NotImplemented("guard"))
    }
    /// After a transition.
    fn run_after(&self, _: &Arc<TransitionInput>, _: &Limits) -> Result<AfterOutput, PolicyError> {
        Err(PolicyError::NotImplemented("after"))
    }
    /// Customer tiering (a whole branch: runs under [`Limits::bulk`]).
    fn run_tier(&self, _: &Arc<TierInput>, _: &Limits) -> Result<TierOutput, PolicyError> {
        Err(PolicyError::NotImplemented("tier"))
    }
    /// Visit cadence.
    fn run_cadence(&self, _: &Arc<CadenceInput>, _: &Limits) -> Result<CadenceOutput, PolicyError> {
        Err(PolicyError::NotImplemented("cadence"))
    }
    /// Assignment of a new customer.
    fn run_assign(&self, _: &Arc<AssignInput>, _: &Limits) -> Result<AssignOutput, PolicyError> {
        Err(PolicyError::NotImplemented("assign"))
    }
    /// Bonus rules.
    fn run_bonus(&self, _: &Arc<BonusInput>, _: &Limits) -> Result<BonusOutput, PolicyError> {
        Err(PolicyError::NotImplemented("bonus"))
    }
    /// The version of the plugin interface it implements (`1.0.0`,
    /// `1.1.0`), for WebAssembly plugins.
    fn interface(&self) -> Option<&'static str> {
        None
    }
    /// The subject kinds (`deal`, `customer`, `rep`) its `bonus` hook
    /// settles, when the policy declares them: a settlement asks it about no
    /// other subject (as if it answered no lines for them). `None`: every
    /// subject.
    fn bonus_subjects(&self) -> Option<&[String]> {
        None
    }
    /// Bonus rules over many subjects of one settlement, one answer per
    /// input in order; each call keeps its own limits. By default one
    /// `run_bonus` call each; a runtime may share set-up work between them.
    fn run_bonus_many(
        &self,
        inputs: &[Arc<BonusInput>],
        limits: &Limits,
    ) -> Vec<Result<BonusOutput, PolicyError>> {
        inputs.iter().map(|i| self.run_bonus(i, limits)).collect()
    }
}

/// The hook calls the server makes: the runtime's answer, checked once by
/// [`answer::HookOutput::checked`] whichever runtime gave it. Implemented
/// for every [`Executable`] (and only by this blanket impl, so no runtime
/// can skip the checks).
pub trait PolicyCalls: Executable {
    /// Before a transition: allow, or reject with a reason.
    fn guard(
        &self,
        input: &Arc<TransitionInput>,
        limits: &Limits,
    ) -> Result<GuardVerdict, PolicyError> {
        self.run_guard(input, limits).and_then(HookOutput::checked)
    }
    /// After a transition.
    fn after(
        &self,
        input: &Arc<TransitionInput>,
        limits: &Limits,
    ) -> Result<AfterOutput, PolicyError> {
        self.run_after(input, limits).and_then(HookOutput::checked)
    }
    /// Customer tiering.
    fn tier(&self, input: &Arc<TierInput>, limits: &Limits) -> Result<TierOutput, PolicyError> {
        self.run_tier(input, limits).and_then(HookOutput::checked)
    }
    /// Visit cadence.
    fn cadence(
        &self,
        input: &Arc<CadenceInput>,
        limits: &Limits,
    ) -> Result<CadenceOutput, PolicyError> {
        self.run_cadence(input, limits)
            .and_then(HookOutput::checked)
    }
    /// Assignment of a new customer.
    fn assign(
        &self,
        input: &Arc<AssignInput>,
        limits: &Limits,
    ) -> Result<AssignOutput, PolicyError> {
        self.run_assign(input, limits).and_then(HookOutput::checked)
    }
    /// Bonus rules.
    fn bonus(&self, input: &Arc<BonusInput>, limits: &Limits) -> Result<BonusOutput, PolicyError> {
        self.run_bonus(input, limits).and_then(HookOutput::checked)
    }
    /// Bonus rules over many subjects, one checked answer per input.
    fn bonus_many(
        &self,
        inputs: &[Arc<BonusInput>],
        limits: &Limits,
    ) -> Vec<Result<BonusOutput, PolicyError>> {
        self.run_bonus_many(inputs, limits)
            .into_iter()
            .map(|r| r.and_then(HookOutput::checked))
            .collect()
    }
}

impl<E: Executable + ?Sized> PolicyCalls for E {}
