//! Per-activation configuration: key/value parameters set when a version is
//! uploaded or activated (thresholds, amounts), so a branch edits a number
//! without a new version. A policy reads them while it runs — rhai with
//! `config(key)` / `config_or(key, default)`, WebAssembly through the
//! interface's `config` import — and they are shown with the version, the
//! activation and the effective view.
//!
//! The values reach a call through [`Configured`], which wraps a compiled
//! version and makes its configuration the *current* one of the calling
//! thread for the call's duration (hook calls are synchronous, so a
//! thread-local is exact and keeps the hook signatures unchanged). A
//! version without configuration is not wrapped at all.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;

use super::hooks::{
    AfterOutput, AssignInput, AssignOutput, BonusInput, BonusOutput, CadenceInput, CadenceOutput,
    GuardVerdict, Hook, TierInput, TierOutput, TransitionInput,
};
use super::{Executable, Limits, PolicyError};

/// A policy's parameters: key → value, both text.
pub type PolicyConfig = BTreeMap<String, String>;

/// Most parameters one policy may have.
pub const MAX_ENTRIES: usize = 32;
/// Longest key, in bytes (`[a-z][a-z0-9_]*`).
pub const MAX_KEY_BYTES: usize = 40;
/// Longest value, in characters (as JSON Schema's `maxLength` counts).
pub const MAX_VALUE_CHARS: usize = 256;

/// Checks a configuration: at most [`MAX_ENTRIES`] keys of the form
/// `[a-z][a-z0-9_]*` (at most [`MAX_KEY_BYTES`]), values of at most
/// [`MAX_VALUE_CHARS`] characters without control characters. The error names the
/// offending key.
pub fn check(config: &PolicyConfig) -> Result<(), String> {
    if config.len() > MAX_ENTRIES {
        return Err(format!(
            "has {} keys; at most {MAX_ENTRIES} are allowed",
            config.len()
        ));
    }
    for (key, value) in config {
        let well_formed = key.len() <= MAX_KEY_BYTES
            && key.starts_with(|c: char| c.is_ascii_lowercase())
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(format!(
                "key `{key}` must match [a-z][a-z0-9_]* (at most {MAX_KEY_BYTES} characters)"
            ));
        }
        let chars = value.chars().count();
        if chars > MAX_VALUE_CHARS {
            return Err(format!(
                "value of `{key}` is {chars} characters; at most {MAX_VALUE_CHARS} are allowed"
            ));
        }
        if value.chars().any(char::is_control) {
            return Err(format!("value of `{key}` has a control character"));
        }
    }
    Ok(())
}

/// `base` with `overrides` on top (an activation's parameters over the
/// version's).
pub fn merged(base: &PolicyConfig, overrides: &PolicyConfig) -> PolicyConfig {
    let mut out = base.clone();
    out.extend(overrides.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

thread_local! {
    /// The configuration of the call running on this thread.
    static CURRENT: RefCell<Option<Arc<PolicyConfig>>> = const { RefCell::new(None) };
}

/// The value of `key` in the configuration of the call running on this
/// thread (none outside a configured call).
pub fn current(key: &str) -> Option<String> {
    CURRENT.with(|c| c.borrow().as_ref().and_then(|m| m.get(key).cloned()))
}

/// Makes `config` current until dropped, restoring what was current before
/// (even on panic).
struct Current(Option<Arc<PolicyConfig>>);

impl Current {
    fn set(config: &Arc<PolicyConfig>) -> Self {
        Self(CURRENT.with(|c| c.replace(Some(Arc::clone(config)))))
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = self.0.take());
    }
}

/// A compiled version running under a configuration.
pub struct Configured {
    /// The version.
    inner: Arc<dyn Executable>,
    /// Its parameters.
    config: Arc<PolicyConfig>,
}

impl Configured {
    /// `exec` under `config`; `exec` itself when `config` is empty.
    pub fn wrap(exec: Arc<dyn Executable>, config: &PolicyConfig) -> Arc<dyn Executable> {
        if config.is_empty() {
            return exec;
        }
        Arc::new(Self {
            inner: exec,
            config: Arc::new(config.clone()),
        })
    }

    fn with<T>(&self, call: impl FnOnce(&dyn Executable) -> T) -> T {
        let _current = Current::set(&self.config);
        call(self.inner.as_ref())
    }
}

impl Executable for Configured {
    fn hooks(&self) -> &[Hook] {
        self.inner.hooks()
    }
    fn tests(&self) -> Vec<String> {
        self.inner.tests()
    }
    fn run_tests(&self) -> Result<(), PolicyError> {
        self.with(|e| e.run_tests())
    }
    fn bonus_subjects(&self) -> Option<&[String]> {
        self.inner.bonus_subjects()
    }
    fn interface(&self) -> Option<&'static str> {
        self.inner.interface()
    }
    fn run_guard(&self, i: &Arc<TransitionInput>, l: &Limits) -> Result<GuardVerdict, PolicyError> {
        self.with(|e| e.run_guard(i, l))
    }
    fn run_after(&self, i: &Arc<TransitionInput>, l: &Limits) -> Result<AfterOutput, PolicyError> {
        self.with(|e| e.run_after(i, l))
    }
    fn run_tier(&self, i: &Arc<TierInput>, l: &Limits) -> Result<TierOutput, PolicyError> {
        self.with(|e| e.run_tier(i, l))
    }
    fn run_cadence(&self, i: &Arc<CadenceInput>, l: &Limits) -> Result<CadenceOutput, PolicyError> {
        self.with(|e| e.run_cadence(i, l))
    }
    fn run_assign(&self, i: &Arc<AssignInput>, l: &Limits) -> Result<AssignOutput, PolicyError> {
        self.with(|e| e.run_assign(i, l))
    }
    fn run_bonus(&self, i: &Arc<BonusInput>, l: &Limits) -> Result<BonusOutput, PolicyError> {
        self.with(|e| e.run_bonus(i, l))
    }
    fn run_bonus_many(
        &self,
        inputs: &[Arc<BonusInput>],
        l: &Limits,
    ) -> Vec<Result<BonusOutput, PolicyError>> {
        self.with(|e| e.run_bonus_many(inputs, l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> PolicyConfig {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn keys_and_values_are_checked() {
        assert!(check(&config(&[("threshold_usd", "10000"), ("a1", "x y")])).is_ok());
        // Counted in characters, as the OpenAPI document's maxLength counts.
        assert!(check(&config(&[("region", &"华东".repeat(128))])).is_ok());
        for (bad, why) in [
            (config(&[("Threshold", "1")]), "key `Threshold`"),
            (config(&[("1a", "1")]), "key `1a`"),
            (config(&[("a-b", "1")]), "key `a-b`"),
            (config(&[(&"k".repeat(41), "1")]), "must match"),
            (config(&[("k", &"v".repeat(257))]), "257 characters"),
            (config(&[("k", &"值".repeat(257))]), "257 characters"),
            (config(&[("k", "a\nb")]), "control character"),
        ] {
            let err = check(&bad).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let many: PolicyConfig = (0..33).map(|i| (format!("k{i}"), "v".into())).collect();
        assert!(check(&many).unwrap_err().contains("33 keys"));
    }

    #[test]
    fn overrides_win_and_the_current_config_is_restored() {
        let merged = merged(&config(&[("a", "1"), ("b", "2")]), &config(&[("b", "3")]));
        assert_eq!(merged, config(&[("a", "1"), ("b", "3")]));
        assert_eq!(current("a"), None);
        let outer = Current::set(&Arc::new(merged));
        {
            let _inner = Current::set(&Arc::new(config(&[("a", "9")])));
            assert_eq!(current("a").as_deref(), Some("9"));
        }
        assert_eq!(current("b").as_deref(), Some("3"));
        drop(outer);
        assert_eq!(current("a"), None);
    }
}
