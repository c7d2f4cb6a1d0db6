//! The policy records the API shows and takes: a policy and its
//! activations, a version, an upload and its answer, an activation
//! request, and the effective view.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::policy::config::PolicyConfig;
use crate::policy::hooks::Hook;
use crate::policy::live::{Runtime, Scope};

/// One activation in a policy's history.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Activation {
    /// The version made live (`null`: deactivated).
    pub version: Option<u64>,
    /// When.
    #[serde(with = "crate::domain::time::ms")]
    pub at: DateTime<Utc>,
    /// By whom.
    pub by: String,
    /// The business date from which it applies (bonus rules).
    #[serde(default)]
    pub effective_from: Option<NaiveDate>,
    /// Parameters set with this activation, over the version's own.
    #[serde(default, skip_serializing_if = "PolicyConfig::is_empty")]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub config: PolicyConfig,
}

/// A policy: its scope, versions and which one is live.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Policy {
    /// Name, `[a-z0-9-]{1,40}`.
    pub name: String,
    /// `global` or `branch:<id>`.
    pub scope: Scope,
    /// Newest version.
    pub latest_version: u64,
    /// The live version, if any.
    pub active_version: Option<u64>,
    /// Every activation, oldest first.
    pub activations: Vec<Activation>,
    /// Created at.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
}

/// An immutable version of a policy.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PolicyVersion {
    /// Policy name.
    pub name: String,
    /// Version number (1, 2, …).
    pub version: u64,
    /// SHA-256 of the script text or module bytes.
    pub sha256: String,
    /// Runtime.
    pub runtime: Runtime,
    /// Hooks it implements.
    pub hooks: Vec<Hook>,
    /// Its example tests (all passed at upload).
    pub tests: Vec<String>,
    /// The subject kinds its `bonus` hook settles, when it declares them
    /// (rhai: `fn bonus_subjects()`); absent: every subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bonus_subjects: Option<Vec<String>>,
    /// Parameters set at upload (an activation may set others over them).
    #[serde(default, skip_serializing_if = "PolicyConfig::is_empty")]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub config: PolicyConfig,
    /// The plugin interface version a wasm policy implements (`1.0.0` or
    /// `1.1.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// Size in bytes.
    pub size: usize,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When.
    #[serde(with = "crate::domain::time::ms")]
    pub uploaded_at: DateTime<Utc>,
}

/// Body of `POST /v1/policies`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    /// Name, `[a-z0-9-]{1,40}`; a new name creates the policy.
    #[schema(schema_with = crate::domain::schema::slug)]
    pub name: String,
    /// `global` (admins) or `branch:<id>` (admins, that branch's manager).
    #[schema(schema_with = crate::domain::schema::policy_scope)]
    pub scope: String,
    /// `rhai` or `wasm`.
    pub runtime: Runtime,
    /// The rhai script (runtime `rhai`).
    #[serde(default)]
    pub source: Option<String>,
    /// The WebAssembly component or module, base64 (runtime `wasm`).
    #[serde(default)]
    pub module: Option<String>,
    /// Parameters the policy reads while it runs (rhai `config(key)`,
    /// wasm the `config` import): keys `[a-z][a-z0-9_]*` (at most 40
    /// characters), text values of at most 256 characters without control
    /// characters, at most 32 keys. A script's example tests must pass
    /// under them.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::policy_config)]
    pub config: Option<PolicyConfig>,
    /// `true`: compile, check the hooks and run the example tests, and
    /// store nothing (an editor's "check"); answers 200 as an upload would.
    #[serde(default)]
    pub dry_run: bool,
}

/// Response of `POST /v1/policies`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UploadedPolicy {
    /// Name.
    pub name: String,
    /// The version stored (an existing one when the content is identical).
    pub version: u64,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Hooks implemented.
    pub hooks: Vec<Hook>,
    /// Example tests run and passed.
    pub tests: Vec<String>,
    /// The subject kinds its `bonus` hook settles, when it declares them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bonus_subjects: Option<Vec<String>>,
    /// The parameters stored with the version.
    #[serde(skip_serializing_if = "PolicyConfig::is_empty")]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub config: PolicyConfig,
    /// The plugin interface version a wasm policy implements.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// False when identical content and parameters were already stored as
    /// `version` (and for a dry run).
    pub created: bool,
    /// A dry run: nothing was stored; `version` is the stored version with
    /// identical content and parameters, else the number an upload would
    /// get now.
    pub dry_run: bool,
}

/// One version with its content (`GET /v1/policies/{name}/versions/{v}`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyVersionDetail {
    /// The version's description.
    #[serde(flatten)]
    pub meta: PolicyVersion,
    /// The rhai script as uploaded; absent for WebAssembly (a binary module).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// Body of `POST /v1/policies/{name}/versions/{v}/activate` (optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivateRequest {
    /// The business date from which the version applies (bonus rules).
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_day")]
    #[schema(schema_with = crate::domain::schema::opt_day)]
    pub effective_from: Option<NaiveDate>,
    /// Parameters for this activation, over the version's own (as at
    /// upload); the version's example tests must pass under them.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::policy_config)]
    pub config: Option<PolicyConfig>,
}

/// Body of `POST /v1/policies/{name}/deactivate` (optional).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeactivateRequest {
    /// The business date from which no version applies (a bonus rule keeps
    /// settling the subjects before it).
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_day")]
    #[schema(schema_with = crate::domain::schema::opt_day)]
    pub effective_from: Option<NaiveDate>,
}

/// A policy version that decides a hook.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DecidingPolicy {
    /// Name.
    pub name: String,
    /// Live version.
    pub version: u64,
    /// Its hash.
    pub sha256: String,
    /// Its scope.
    pub scope: Scope,
    /// Its runtime.
    pub runtime: Runtime,
    /// The parameters it runs with (the version's, with the activation's
    /// over them).
    #[serde(skip_serializing_if = "PolicyConfig::is_empty")]
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub config: PolicyConfig,
}

/// Who decides one hook for a branch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EffectiveHook {
    /// The hook.
    pub hook: Hook,
    /// The deciding policies (every guard must allow; every after-hook runs).
    pub policies: Vec<DecidingPolicy>,
    /// `overridden` when the branch's own policies decide, `inherited` when
    /// the global ones do, `none` when no policy implements the hook.
    pub source: String,
}
