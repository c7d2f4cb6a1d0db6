//! Interface 1.0.0 (`plugin-sdk/wit-1.0/policy.wit`, frozen): plugins
//! built before 1.1 keep running. Closed sets cross as text, plugins import
//! nothing and declare no bonus subjects.

pub use super::bindings::v1_0::types as wit;
pub use super::bindings::v1_0::PolicyPre;
use crate::policy::PolicyError;

// The same sources as the other version's: compiled here against this
// version's bindings (`wit`, `PolicyPre`) and closed-set conversions, so
// both versions share one definition of the conversions and the calls.
#[allow(clippy::duplicate_mod)]
#[path = "convert.rs"]
pub(super) mod convert;
#[allow(clippy::duplicate_mod)]
#[path = "plugin.rs"]
pub(super) mod plugin;

/// What a plugin declares about itself.
pub(super) mod ask {
    use wasmtime::component::Instance;
    use wasmtime::Store;

    use super::super::bindings::v1_0::Policy;
    use super::convert::hook_from_wit;
    use crate::policy::hooks::Hook;
    use crate::policy::wasm::CallState;

    /// Its hooks (1.0.0 plugins declare no bonus subjects).
    pub(crate) fn declared(
        store: &mut Store<CallState>,
        instance: &Instance,
    ) -> wasmtime::Result<(Vec<Hook>, Option<Vec<String>>)> {
        let policy = Policy::new(&mut *store, instance)?;
        let hooks = policy.call_hooks(&mut *store)?;
        Ok((hooks.into_iter().map(hook_from_wit).collect(), None))
    }
}

// Closed sets are text in 1.0.0: handed over as they are.

fn same(s: &str) -> Result<&str, PolicyError> {
    Ok(s)
}

use same as record_kind;
use same as role;
use same as segment;
use same as source;
use same as stage_kind;
use same as subject_kind;
use same as tier;

/// A tier the plugin answered, as text.
fn tier_text(t: String) -> String {
    t
}
