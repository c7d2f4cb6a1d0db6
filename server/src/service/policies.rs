//! The policy registry: immutable, content-hashed versions in the store;
//! activation and rollback switch the live version atomically; compiled
//! versions are cached by name and version.
//!
//! - `records`: what the API shows and takes;
//! - `registry`: the executor, the live set, the compile cache;
//! - `defaults`: the default policies a fresh server installs;
//! - here: the use cases (upload, activate, deactivate, list, the
//!   effective view) and their parameters.

mod defaults;
mod records;
mod registry;

use std::sync::Arc;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use serde_json::json;

pub use records::{
    ActivateRequest, Activation, DeactivateRequest, DecidingPolicy, EffectiveHook, NewPolicy,
    Policy, PolicyVersion, PolicyVersionDetail, UploadedPolicy,
};
pub use registry::PolicyRegistry;

use super::repo::{encode, Source, Stored};
use super::{events, now, Page, PageRequest, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::ids;
use crate::policy::config::{self, Configured, PolicyConfig};
use crate::policy::hooks::Hook;
use crate::policy::live::{Runtime, Scope};
use crate::policy::Executable;
use crate::store::{keys, Batch, StoreError};

pub(super) fn version_key(name: &str, v: u64) -> Vec<u8> {
    keys::key(keys::POLICY_VERSION, &[name, &format!("{v:010}")])
}

pub(super) fn body_key(name: &str, v: u64) -> Vec<u8> {
    keys::key(keys::POLICY_BODY, &[name, &format!("{v:010}")])
}

impl Services {
    fn require_scope(&self, caller: &Principal, scope: &Scope) -> Result<(), ServiceError> {
        match scope {
            Scope::Global => Ok(caller.require_admin()?),
            Scope::Branch(b) => Ok(caller.require_manager_of(b)?),
        }
    }

    fn visible_policy(
        &self,
        caller: &Principal,
        name: &str,
    ) -> Result<Stored<Policy>, ServiceError> {
        let p: Stored<Policy> = self.repo.fetch(keys::POLICY, "policy", name)?;
        caller.may_read(&ResourceRef::policy(name, p.value.scope.branch()))?;
        Ok(p)
    }

    /// Stores a new version (compiled, hooks checked, example tests run);
    /// nothing is activated.
    pub async fn upload_policy(
        &self,
        caller: &Principal,
        req: NewPolicy,
    ) -> Result<UploadedPolicy, ServiceError> {
        if !ids::is_slug(&req.name) {
            return Err(ServiceError::invalid("name", "must match [a-z0-9-]{1,40}"));
        }
        let scope = Scope::parse(&req.scope)
            .ok_or_else(|| ServiceError::invalid("scope", "must be `global` or `branch:<id>`"))?;
        self.require_scope(caller, &scope)?;
        if let Some(b) = scope.branch() {
            self.require_branch_exists("scope", b)?;
        }
        let params = checked_config(req.config)?;
        let limits = Arc::clone(&self.policies.executor.limits);
        let body: Vec<u8> = match (req.runtime, req.source, req.module) {
            (Runtime::Rhai, Some(s), None) => s.into_bytes(),
            (Runtime::Wasm, None, Some(m)) => {
                if m.len() > limits.max_upload_bytes / 3 * 4 + 8 {
                    return Err(ServiceError::TooLarge(format!(
                        "the module is larger than the {} byte limit",
                        limits.max_upload_bytes
                    )));
                }
                base64::engine::general_purpose::STANDARD
                    .decode(m.trim())
                    .map_err(|e| ServiceError::invalid("module", format!("is not base64: {e}")))?
            }
            (Runtime::Rhai, _, _) => {
                return Err(ServiceError::invalid(
                    "source",
                    "a rhai policy sends its script in `source` (and no `module`)",
                ))
            }
            (Runtime::Wasm, _, _) => {
                return Err(ServiceError::invalid(
                    "module",
                    "a wasm policy sends base64 in `module` (and no `source`)",
                ))
            }
        };
        if body.len() > limits.max_upload_bytes {
            return Err(ServiceError::TooLarge(format!(
                "the policy is {} bytes; the limit is {}",
                body.len(),
                limits.max_upload_bytes
            )));
        }
        let sha256 = hex::encode(Sha256::digest(&body));
        let key = keys::key(keys::POLICY, &[&req.name]);
        let existing = self.repo.read::<Policy>(&key)?;
        if let Some(p) = &existing {
            if p.value.scope != scope {
                return Err(ServiceError::invalid(
                    "scope",
                    format!(
                        "policy `{}` exists with scope `{}`",
                        req.name, p.value.scope
                    ),
                ));
            }
            for v in 1..=p.value.latest_version {
                if let Some(meta) = self
                    .repo
                    .read::<PolicyVersion>(&version_key(&req.name, v))?
                {
                    if meta.value.sha256 == sha256 && meta.value.config == params {
                        return Ok(UploadedPolicy {
                            name: req.name,
                            version: v,
                            sha256,
                            hooks: meta.value.hooks,
                            tests: meta.value.tests,
                            bonus_subjects: meta.value.bonus_subjects,
                            config: meta.value.config,
                            interface: meta.value.interface,
                            created: false,
                            dry_run: req.dry_run,
                        });
                    }
                }
            }
        }
        let runtime = req.runtime;
        let executor = self.policies.executor.clone();
        let compile_body = body.clone();
        let tried = params.clone();
        let exec = self
            .policies
            .executor
            .run(move |_| {
                let exec = executor.compile(runtime, &compile_body)?;
                try_config(&exec, &tried)?;
                Ok(exec)
            })
            .await
            .and_then(|r| r)
            .map_err(ServiceError::PolicyInvalid)?;
        let tests = policy_tests(exec.as_ref());
        if req.dry_run {
            return Ok(UploadedPolicy {
                name: req.name,
                version: existing.as_ref().map_or(0, |p| p.value.latest_version) + 1,
                sha256,
                hooks: exec.hooks().to_vec(),
                tests,
                bonus_subjects: exec.bonus_subjects().map(<[String]>::to_vec),
                config: params,
                interface: exec.interface().map(str::to_string),
                created: false,
                dry_run: true,
            });
        }
        let now = now();
        let mut policy = existing
            .as_ref()
            .map(|p| p.value.clone())
            .unwrap_or(Policy {
                name: req.name.clone(),
                scope: scope.clone(),
                latest_version: 0,
                active_version: None,
                activations: Vec::new(),
                created_at: now,
            });
        policy.latest_version += 1;
        let version = policy.latest_version;
        let meta = PolicyVersion {
            name: req.name.clone(),
            version,
            sha256: sha256.clone(),
            runtime,
            hooks: exec.hooks().to_vec(),
            tests: tests.clone(),
            bonus_subjects: exec.bonus_subjects().map(<[String]>::to_vec),
            config: params,
            interface: exec.interface().map(str::to_string),
            size: body.len(),
            uploaded_by: caller.user.clone(),
            uploaded_at: now,
        };
        let mut batch = Batch::new();
        batch.expect(key.clone(), existing.as_ref().map(|p| p.raw.as_slice()));
        batch.put(key, encode(&policy));
        batch.put(version_key(&req.name, version), encode(&meta));
        batch.put(body_key(&req.name, version), body);
        events::add(
            &mut batch,
            EventKind::PolicyUploaded,
            ResourceRef::policy(&req.name, scope.branch()),
            &caller.user,
            json!({"policy": req.name, "version": version, "sha256": sha256, "runtime": runtime,
                   "hooks": meta.hooks, "config": meta.config}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
            other => other?,
        }
        self.policies
            .compiled
            .lock()
            .insert((req.name.clone(), version), exec);
        Ok(UploadedPolicy {
            name: req.name,
            version,
            sha256,
            hooks: meta.hooks,
            tests,
            bonus_subjects: meta.bonus_subjects,
            config: meta.config,
            interface: meta.interface,
            created: true,
            dry_run: false,
        })
    }

    /// Makes `version` live at once (also how rollback is done).
    pub async fn activate_policy(
        &self,
        caller: &Principal,
        name: &str,
        version: u64,
        req: ActivateRequest,
    ) -> Result<Policy, ServiceError> {
        let _serial = self.policies.activation.lock().await;
        let stored = self.visible_policy(caller, name)?;
        self.require_scope(caller, &stored.value.scope)?;
        let mut p = stored.value.clone();
        let overrides = checked_config(req.config)?;
        let live = self.live_policy(&p, version, &overrides)?;
        if !overrides.is_empty() {
            let exec = Arc::clone(&live.exec);
            self.policies
                .executor
                .run(move |_| exec.run_tests())
                .await
                .and_then(|r| r)
                .map_err(ServiceError::PolicyInvalid)?;
        }
        // Going back to a version older than the live one is a rollback.
        let kind = match p.active_version {
            Some(current) if version < current => EventKind::PolicyRolledBack,
            _ => EventKind::PolicyActivated,
        };
        let previous = p.active_version;
        p.active_version = Some(version);
        p.activations.push(Activation {
            version: Some(version),
            at: now(),
            by: caller.user.clone(),
            effective_from: req.effective_from,
            config: overrides.clone(),
        });
        let key = keys::key(keys::POLICY, &[name]);
        let mut batch = Batch::new();
        batch
            .expect(key.clone(), Some(&stored.raw))
            .put(key, encode(&p));
        events::add(
            &mut batch,
            kind,
            ResourceRef::policy(name, p.scope.branch()),
            &caller.user,
            json!({"policy": name, "version": version, "previous": previous, "by": caller.user,
                   "effective_from": req.effective_from, "config": overrides}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
            other => other?,
        }
        let tiers = live.implements(crate::policy::hooks::Hook::Tier);
        let cadence = live.implements(crate::policy::hooks::Hook::Cadence);
        self.policies.live.set(name, Some(live));
        tracing::info!(policy = name, version, by = %caller.user, "policy activated");
        if cadence {
            self.cadence_changed(&self.scope_branches(&p.scope)?)
                .await?;
        }
        if tiers {
            self.retier_scope(&p.scope, "tier policy activated").await?;
        }
        Ok(p)
    }

    /// Takes a policy out of the live set (no version decides for it). A
    /// bonus rule deactivated `effective_from` a day still settles the
    /// subjects before it with the version that was in force.
    pub async fn deactivate_policy(
        &self,
        caller: &Principal,
        name: &str,
        req: DeactivateRequest,
    ) -> Result<Policy, ServiceError> {
        let _serial = self.policies.activation.lock().await;
        let stored = self.visible_policy(caller, name)?;
        self.require_scope(caller, &stored.value.scope)?;
        let mut p = stored.value.clone();
        let previous = p.active_version;
        p.active_version = None;
        p.activations.push(Activation {
            version: None,
            at: now(),
            by: caller.user.clone(),
            effective_from: req.effective_from,
            config: PolicyConfig::new(),
        });
        let key = keys::key(keys::POLICY, &[name]);
        let mut batch = Batch::new();
        batch
            .expect(key.clone(), Some(&stored.raw))
            .put(key, encode(&p));
        events::add(
            &mut batch,
            EventKind::PolicyDeactivated,
            ResourceRef::policy(name, p.scope.branch()),
            &caller.user,
            json!({"policy": name, "previous": previous, "by": caller.user,
                   "effective_from": req.effective_from}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => return Err(ServiceError::Contended),
            other => other?,
        }
        let snapshot = self.policies.live.snapshot();
        let was = |hook| snapshot.get(name).is_some_and(|l| l.implements(hook));
        let tiers = was(crate::policy::hooks::Hook::Tier);
        let cadence = was(crate::policy::hooks::Hook::Cadence);
        self.policies.live.set(name, None);
        if cadence {
            self.cadence_changed(&self.scope_branches(&p.scope)?)
                .await?;
        }
        if tiers {
            self.retier_scope(&p.scope, "tier policy deactivated")
                .await?;
        }
        Ok(p)
    }

    /// Re-tiers (in the background) the branches a tier policy of `scope`
    /// decides for: its branch, or every branch for a global one.
    async fn retier_scope(&self, scope: &Scope, cause: &str) -> Result<(), ServiceError> {
        self.mark_for_retier(&self.scope_branches(scope)?, cause)
            .await
    }

    /// The branches a policy of `scope` may decide for.
    fn scope_branches(&self, scope: &Scope) -> Result<Vec<String>, ServiceError> {
        Ok(match scope {
            Scope::Branch(b) => vec![b.clone()],
            Scope::Global => self.branch_ids()?,
        })
    }

    /// Policies the caller may see: all for admins, global and their own
    /// branch's otherwise.
    pub fn list_policies(
        &self,
        caller: &Principal,
        page: &PageRequest,
    ) -> Result<Page<Policy>, ServiceError> {
        let own = caller.branch.clone();
        let admin = caller.is_admin();
        self.repo.list(
            Source::Primary(keys::prefix(keys::POLICY, &[])),
            page,
            move |p: &Policy| {
                admin || p.scope == Scope::Global || p.scope.branch() == own.as_deref()
            },
        )
    }

    /// One policy.
    pub fn policy(&self, caller: &Principal, name: &str) -> Result<Policy, ServiceError> {
        Ok(self.visible_policy(caller, name)?.value)
    }

    /// One version with its script (rhai) for reading and comparing.
    pub fn policy_version(
        &self,
        caller: &Principal,
        name: &str,
        version: u64,
    ) -> Result<PolicyVersionDetail, ServiceError> {
        self.visible_policy(caller, name)?;
        let missing = || ServiceError::not_found("policy version", &format!("{name}@{version}"));
        let meta: PolicyVersion = self
            .repo
            .read(&version_key(name, version))?
            .ok_or_else(missing)?
            .value;
        let source = match meta.runtime {
            Runtime::Rhai => {
                let body = self
                    .repo
                    .store()
                    .get(&body_key(name, version))?
                    .ok_or_else(missing)?;
                // Uploads of rhai are checked to be UTF-8 when compiled.
                Some(String::from_utf8_lossy(&body).into_owned())
            }
            Runtime::Wasm => None,
        };
        Ok(PolicyVersionDetail { meta, source })
    }

    /// A policy's versions, oldest first.
    pub fn policy_versions(
        &self,
        caller: &Principal,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<PolicyVersion>, ServiceError> {
        self.visible_policy(caller, name)?;
        self.repo.list(
            Source::Primary(keys::prefix(keys::POLICY_VERSION, &[name])),
            page,
            |_: &PolicyVersion| true,
        )
    }

    /// For each hook, which policy versions decide for `branch`.
    pub fn effective_policies(
        &self,
        caller: &Principal,
        branch: &str,
    ) -> Result<Vec<EffectiveHook>, ServiceError> {
        caller.require_branch(branch)?;
        if !self.repo.exists(keys::BRANCH, branch)? {
            return Err(ServiceError::not_found("branch", branch));
        }
        let live = self.policies.live.snapshot();
        Ok(Hook::ALL
            .iter()
            .map(|hook| {
                let (deciding, own) = live.effective(branch, *hook);
                let source = match (deciding.is_empty(), own) {
                    (true, _) => "none",
                    (false, true) => "overridden",
                    (false, false) => "inherited",
                };
                EffectiveHook {
                    hook: *hook,
                    policies: deciding
                        .iter()
                        .map(|p| DecidingPolicy {
                            name: p.name.clone(),
                            version: p.version,
                            sha256: p.sha256.clone(),
                            scope: p.scope.clone(),
                            runtime: p.runtime,
                            config: p.config.clone(),
                        })
                        .collect(),
                    source: source.into(),
                }
            })
            .collect())
    }
}

fn policy_tests(exec: &dyn Executable) -> Vec<String> {
    exec.tests()
}

/// The parameters `p`'s latest activation of version `v` set (none when
/// its latest activation is of another version).
pub(crate) fn activation_config(p: &Policy, v: u64) -> PolicyConfig {
    p.activations
        .last()
        .filter(|a| a.version == Some(v))
        .map(|a| a.config.clone())
        .unwrap_or_default()
}

/// A request's parameters, checked ([`config::check`]); none is empty.
fn checked_config(params: Option<PolicyConfig>) -> Result<PolicyConfig, ServiceError> {
    let params = params.unwrap_or_default();
    config::check(&params).map_err(|m| ServiceError::invalid("config", m))?;
    Ok(params)
}

/// Runs a new version's example tests again under its parameters (they ran
/// without them at compile): a parameter the script cannot read refuses
/// the upload.
fn try_config(
    exec: &Arc<dyn Executable>,
    params: &PolicyConfig,
) -> Result<(), crate::policy::PolicyError> {
    if params.is_empty() {
        return Ok(());
    }
    Configured::wrap(Arc::clone(exec), params).run_tests()
}
