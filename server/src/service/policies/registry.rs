//! The registry's in-memory side: the executor, the live set and the cache
//! of compiled versions; where a stored version is compiled (once) and
//! given its parameters.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::records::{Policy, PolicyVersion};
use super::{body_key, version_key};
use crate::policy::config::{self, Configured, PolicyConfig};
use crate::policy::executor::Executor;
use crate::policy::live::{Live, LivePolicy};
use crate::policy::Executable;
use crate::service::{ServiceError, Services};

/// The registry's in-memory side.
pub struct PolicyRegistry {
    /// Compiles and runs policies.
    pub executor: Executor,
    /// The live set.
    pub live: Live,
    /// Compiled versions by (name, version).
    pub(super) compiled: Mutex<HashMap<(String, u64), Arc<dyn Executable>>>,
    /// Serialises activations so the live set follows the store's order.
    pub(super) activation: tokio::sync::Mutex<()>,
}

impl PolicyRegistry {
    /// A registry over `executor`.
    pub fn new(executor: Executor) -> Self {
        Self {
            executor,
            live: Live::default(),
            compiled: Mutex::default(),
            activation: tokio::sync::Mutex::new(()),
        }
    }
}

impl Services {
    /// Compiles (or takes from the cache) a stored version.
    pub(crate) fn compiled(
        &self,
        name: &str,
        v: u64,
    ) -> Result<(PolicyVersion, Arc<dyn Executable>), ServiceError> {
        let meta: PolicyVersion = self
            .repo
            .read(&version_key(name, v))?
            .ok_or_else(|| ServiceError::not_found("policy version", &format!("{name}@{v}")))?
            .value;
        if let Some(e) = self.policies.compiled.lock().get(&(name.to_string(), v)) {
            return Ok((meta, Arc::clone(e)));
        }
        let body = self
            .repo
            .store()
            .get(&body_key(name, v))?
            .ok_or_else(|| ServiceError::not_found("policy version", &format!("{name}@{v}")))?;
        let exec = self
            .policies
            .executor
            .compile(meta.runtime, &body)
            .map_err(ServiceError::PolicyInvalid)?;
        self.policies
            .compiled
            .lock()
            .insert((name.to_string(), v), Arc::clone(&exec));
        Ok((meta, exec))
    }

    /// Version `v` of `p` ready to go live with `overrides` over its own
    /// parameters.
    pub(super) fn live_policy(
        &self,
        p: &Policy,
        v: u64,
        overrides: &PolicyConfig,
    ) -> Result<Arc<LivePolicy>, ServiceError> {
        let (meta, exec) = self.configured(&p.name, v, overrides)?;
        Ok(Arc::new(LivePolicy {
            name: p.name.clone(),
            version: v,
            sha256: meta.sha256,
            scope: p.scope.clone(),
            runtime: meta.runtime,
            config: config::merged(&meta.config, overrides),
            exec,
            slow: Default::default(),
        }))
    }

    /// Version `v` of `name`, compiled, running with its own parameters and
    /// `overrides` over them.
    pub(crate) fn configured(
        &self,
        name: &str,
        v: u64,
        overrides: &PolicyConfig,
    ) -> Result<(PolicyVersion, Arc<dyn Executable>), ServiceError> {
        let (meta, exec) = self.compiled(name, v)?;
        let exec = Configured::wrap(exec, &config::merged(&meta.config, overrides));
        Ok((meta, exec))
    }
}
