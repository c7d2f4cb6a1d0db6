//! The typed plugin boundary: each hook paired, in the type system, with
//! the WIT types of its parameter and result ([`WitHook`]), and a hook's
//! export that exists only once wasmtime has checked the component's
//! function against exactly those types ([`HookExport`]). A call can then
//! take the unchecked fast path (no type check per call) without any caller
//! having to promise that the types match: they cannot differ.

use std::marker::PhantomData;

use wasmtime::component::{Component, ComponentExportIndex, Instance, Lift, Lower, TypedFunc};
use wasmtime::Store;

use super::CallState;
use crate::policy::hooks::Hook;
use crate::policy::PolicyError;

/// A hook of the WIT world and its types there.
pub(crate) trait WitHook: 'static {
    /// The hook.
    const HOOK: Hook;
    /// Its input record, borrowing the host's strings.
    type Input<'a>: Lower + Sync;
    /// Its answer (the `ok` side of its `result<_, string>`).
    type Output: Lift + Send + Sync + 'static;
}

/// The typed function of hook `H`: one input, an answer or the plugin's
/// error message.
pub(crate) type HookFunc<'p, 'i, H> =
    TypedFunc<(&'p <H as WitHook>::Input<'i>,), (Result<<H as WitHook>::Output, String>,)>;

/// Declares, in a version module, a marker type per hook with that
/// version's WIT types (`wit::…`).
macro_rules! wit_hooks {
    ($($(#[$doc:meta])* $marker:ident: $hook:ident, $input:ident -> $output:ident;)*) => {$(
        $(#[$doc])*
        pub(crate) enum $marker {}
        impl $crate::policy::wasm::hook::WitHook for $marker {
            const HOOK: $crate::policy::hooks::Hook = $crate::policy::hooks::Hook::$hook;
            type Input<'a> = wit::$input<'a>;
            type Output = wit::$output;
        }
    )*};
}
pub(super) use wit_hooks;

/// The export of hook `H` in one component, its type checked against
/// `H`'s WIT types when it was found.
pub(crate) struct HookExport<H> {
    /// Where the function is among the component's exports.
    index: ComponentExportIndex,
    /// The hook whose types were checked.
    _hook: PhantomData<fn() -> H>,
}

impl<H: WitHook> HookExport<H> {
    /// `H`'s export of the component `instance` is an instance of, when it
    /// has one; `Interface` when it has one of another type.
    pub(crate) fn find(
        component: &Component,
        instance: &Instance,
        store: &mut Store<CallState>,
    ) -> Result<Option<Self>, PolicyError> {
        let name = H::HOOK.name();
        let Some(index) = component.get_export_index(None, name) else {
            return Ok(None);
        };
        instance
            .get_typed_func::<(&H::Input<'_>,), (Result<H::Output, String>,)>(&mut *store, index)
            .map_err(|e| {
                PolicyError::Interface(format!(
                    "the `{name}` export does not have the interface's type: {e:#}"
                ))
            })?;
        Ok(Some(Self {
            index,
            _hook: PhantomData,
        }))
    }

    /// The typed function of `instance` (an instance of the component this
    /// export was found in).
    pub(crate) fn func<'p, 'i>(
        &self,
        instance: &Instance,
        store: &mut Store<CallState>,
    ) -> wasmtime::Result<HookFunc<'p, 'i, H>> {
        let func = instance.get_func(&mut *store, self.index).ok_or_else(|| {
            wasmtime::Error::msg(format!("the plugin lost its `{}` export", H::HOOK.name()))
        })?;
        // SAFETY: a `HookExport<H>` is only made by `find`, after
        // `get_typed_func` checked this very export against `H`'s parameter
        // and result types (lifetimes do not change a component type); the
        // index carries its component's id, and `get_func` finds nothing in
        // an instance of any other component.
        Ok(unsafe { TypedFunc::new_unchecked(func) })
    }
}
