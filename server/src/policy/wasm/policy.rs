//! A compiled plugin of either interface version ([`WasmPolicy`]).

use std::sync::Arc;

use super::{v1_0, v1_1};
use crate::policy::hooks::{
    AfterOutput, AssignInput, AssignOutput, BonusInput, BonusOutput, CadenceInput, CadenceOutput,
    GuardVerdict, Hook, TierInput, TierOutput, TransitionInput,
};
use crate::policy::{Executable, Limits, PolicyError};

/// A compiled plugin, ready to run the hooks it implements.
pub enum WasmPolicy {
    /// A plugin of interface 1.0.0.
    V1_0(v1_0::plugin::Plugin),
    /// A plugin of interface 1.1.0.
    V1_1(v1_1::plugin::Plugin),
}

impl WasmPolicy {
    /// The interface version it implements (`1.0.0` or `1.1.0`).
    pub fn interface_version(&self) -> &'static str {
        match self {
            Self::V1_0(_) => "1.0.0",
            Self::V1_1(_) => "1.1.0",
        }
    }

    fn plugin(&self) -> &dyn Executable {
        match self {
            Self::V1_0(p) => p,
            Self::V1_1(p) => p,
        }
    }
}

impl std::fmt::Debug for WasmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicy")
            .field("interface", &self.interface_version())
            .field("hooks", &self.plugin().hooks())
            .finish_non_exhaustive()
    }
}

impl Executable for WasmPolicy {
    fn hooks(&self) -> &[Hook] {
        self.plugin().hooks()
    }
    fn interface(&self) -> Option<&'static str> {
        Some(self.interface_version())
    }
    fn bonus_subjects(&self) -> Option<&[String]> {
        self.plugin().bonus_subjects()
    }
    fn run_guard(&self, i: &Arc<TransitionInput>, l: &Limits) -> Result<GuardVerdict, PolicyError> {
        self.plugin().run_guard(i, l)
    }
    fn run_after(&self, i: &Arc<TransitionInput>, l: &Limits) -> Result<AfterOutput, PolicyError> {
        self.plugin().run_after(i, l)
    }
    fn run_tier(&self, i: &Arc<TierInput>, l: &Limits) -> Result<TierOutput, PolicyError> {
        self.plugin().run_tier(i, l)
    }
    fn run_cadence(&self, i: &Arc<CadenceInput>, l: &Limits) -> Result<CadenceOutput, PolicyError> {
        self.plugin().run_cadence(i, l)
    }
    fn run_assign(&self, i: &Arc<AssignInput>, l: &Limits) -> Result<AssignOutput, PolicyError> {
        self.plugin().run_assign(i, l)
    }
    fn run_bonus(&self, i: &Arc<BonusInput>, l: &Limits) -> Result<BonusOutput, PolicyError> {
        self.plugin().run_bonus(i, l)
    }
    fn run_bonus_many(
        &self,
        inputs: &[Arc<BonusInput>],
        l: &Limits,
    ) -> Vec<Result<BonusOutput, PolicyError>> {
        self.plugin().run_bonus_many(inputs, l)
    }
}
