//! The live policy set: which compiled version of each policy is active.
//! A request takes one snapshot at its start and is decided wholly by it;
//! activation swaps in a new snapshot atomically, so requests that start
//! after `activate` returns see the new version and none sees half of each.

use std::sync::Arc;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::hooks::Hook;
use super::Executable;

/// Where a policy applies.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Every branch (the HQ default).
    Global,
    /// One branch; overrides global policies for the hooks it implements.
    Branch(String),
}

impl Scope {
    /// Parses `global` or `branch:<id>`.
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "global" => Some(Scope::Global),
            _ => s
                .strip_prefix("branch:")
                .filter(|b| crate::domain::ids::is_slug(b))
                .map(|b| Scope::Branch(b.to_string())),
        }
    }

    /// The branch, for branch scopes.
    pub fn branch(&self) -> Option<&str> {
        match self {
            Scope::Global => None,
            Scope::Branch(b) => Some(b),
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Branch(b) => write!(f, "branch:{b}"),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Scope::parse(&s).ok_or_else(|| {
            serde::de::Error::custom(format!("`{s}` is not `global` or `branch:<id>`"))
        })
    }
}

impl utoipa::PartialSchema for Scope {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        String::schema()
    }
}

impl ToSchema for Scope {}

/// The language a policy version is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// A rhai script.
    Rhai,
    /// A WebAssembly component (or core module with an embedded WIT world).
    Wasm,
}

/// An active policy version, compiled.
pub struct LivePolicy {
    /// Policy name.
    pub name: String,
    /// Active version.
    pub version: u64,
    /// SHA-256 of the version's source or module.
    pub sha256: String,
    /// Scope.
    pub scope: Scope,
    /// Runtime.
    pub runtime: Runtime,
    /// The compiled version.
    pub exec: Arc<dyn Executable>,
}

impl LivePolicy {
    /// Whether it implements `hook`.
    pub fn implements(&self, hook: Hook) -> bool {
        self.exec.hooks().contains(&hook)
    }
}

/// One consistent set of active policies.
#[derive(Default, Clone)]
pub struct LiveSet {
    /// Active policies, ordered by name.
    policies: Vec<Arc<LivePolicy>>,
}

impl LiveSet {
    /// The policies that decide `hook` for `branch`: the branch's own active
    /// policies implementing it when there are any, the global ones otherwise.
    pub fn effective(&self, branch: &str, hook: Hook) -> (Vec<Arc<LivePolicy>>, bool) {
        let own: Vec<_> = self
            .policies
            .iter()
            .filter(|p| p.scope.branch() == Some(branch) && p.implements(hook))
            .cloned()
            .collect();
        if !own.is_empty() {
            return (own, true);
        }
        let global = self
            .policies
            .iter()
            .filter(|p| p.scope == Scope::Global && p.implements(hook))
            .cloned()
            .collect();
        (global, false)
    }

    /// The active version of `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Arc<LivePolicy>> {
        self.policies.iter().find(|p| p.name == name)
    }

    /// Every active policy.
    pub fn all(&self) -> &[Arc<LivePolicy>] {
        &self.policies
    }
}

/// The swappable live set.
#[derive(Default)]
pub struct Live {
    /// The current snapshot.
    current: RwLock<Arc<LiveSet>>,
}

impl Live {
    /// The current snapshot (one `Arc` clone).
    pub fn snapshot(&self) -> Arc<LiveSet> {
        Arc::clone(&self.current.read())
    }

    /// Makes `policy` the active version of its name (or deactivates `name`).
    pub fn set(&self, name: &str, policy: Option<Arc<LivePolicy>>) {
        let mut cur = self.current.write();
        let mut next = LiveSet::clone(&cur);
        next.policies.retain(|p| p.name != name);
        if let Some(p) = policy {
            next.policies.push(p);
            next.policies.sort_by(|a, b| a.name.cmp(&b.name));
        }
        *cur = Arc::new(next);
    }
}
