//! Guest-side SDK for dealflow WebAssembly policy plugins.
//!
//! A plugin implements any subset of the policy hooks of the WIT world
//! `dealflow:policy@1.0.0` (in `wit/policy.wit`) as **plain typed Rust
//! functions** and exports them with one macro, [`export_policy!`]:
//!
//! ```
//! use dealflow_plugin_sdk::{export_policy, GuardVerdict, TransitionInput};
//!
//! /// Refuses to win a deal without lines.
//! pub fn guard(input: TransitionInput) -> Result<GuardVerdict, String> {
//!     if input.to_kind == "won" && input.deal.lines.is_empty() {
//!         return Ok(GuardVerdict::reject("a deal without lines cannot be won", ["at least one line"]));
//!     }
//!     Ok(GuardVerdict::allow())
//! }
//!
//! export_policy! { guard: guard }
//! ```
//!
//! Hooks left out of the macro are not implemented: `hooks()` omits them and
//! the host never calls them. A function whose signature does not match its
//! hook is refused at compile time ("expected function signature
//! `fn(TransitionInput) -> _`, found `fn(TierInput) -> _`"):
//!
//! ```compile_fail,E0631
//! use dealflow_plugin_sdk::{export_policy, GuardVerdict, TierInput};
//!
//! // A guard takes a `TransitionInput`, not a `TierInput`.
//! fn guard(input: TierInput) -> Result<GuardVerdict, String> {
//!     Ok(GuardVerdict::allow())
//! }
//!
//! export_policy! { guard: guard }
//! ```
//!
//! ("expected `guard` to return `Result<GuardVerdict, String>`, but it
//! returns `Result<TierOutput, String>`"):
//!
//! ```compile_fail,E0271
//! use dealflow_plugin_sdk::{export_policy, TierOutput, TransitionInput};
//!
//! fn guard(input: TransitionInput) -> Result<TierOutput, String> {
//!     Ok(TierOutput { tiers: Vec::new() })
//! }
//!
//! export_policy! { guard: guard }
//! ```
//!
//! Hook names are checked too:
//!
//! ```compile_fail
//! use dealflow_plugin_sdk::{export_policy, GuardVerdict, TransitionInput};
//!
//! fn guard(input: TransitionInput) -> Result<GuardVerdict, String> {
//!     Ok(GuardVerdict::allow())
//! }
//!
//! export_policy! { gaurd: guard }
//! ```
//!
//! Because hooks are plain functions of plain records, a plugin's logic is
//! unit-tested natively with `cargo test`; the same crate built for
//! `wasm32-unknown-unknown` (as a `cdylib`) is the plugin. The host
//! componentizes the core module with the `component-type` section this SDK
//! embeds, or accepts a component made with `wasm-tools component new`.
//!
//! Decimals (money, ratios, rates) cross the interface as strings: parse and
//! format them with [`money`]. Dates and times are strings too: see [`date`].
//! Plugins get no imports at all: no clock, no randomness, no I/O.
//!
//! # Layout
//! - the record types of the interface, re-exported under their WIT names
//!   ([`TransitionInput`], [`GuardVerdict`], [`BonusInput`], …), with a few
//!   constructors and accessors;
//! - [`export_policy!`]: the export macro;
//! - [`money`]: strict decimal parsing and formatting;
//! - [`date`]: date parsing and arithmetic;
//! - [`testing`]: sample inputs for native unit tests;
//! - `bump` (wasm32 only, feature `bump-allocator`, on by default): the
//!   plugin's allocator, a bump allocator: each call runs in a fresh
//!   instance, so memory is reclaimed when the call ends. Turn the feature
//!   off to use Rust's default allocator (or your own).

#![deny(missing_docs)]

extern crate self as dealflow_plugin_sdk;

#[cfg(all(
    target_arch = "wasm32",
    not(target_feature = "atomics"),
    feature = "bump-allocator"
))]
pub mod bump;
pub mod date;
pub mod money;
mod records;
pub mod testing;

/// The generated bindings of the world `dealflow:policy/policy@1.0.0`.
/// Use the re-exports at the crate root instead.
#[doc(hidden)]
#[allow(missing_docs, clippy::all)]
pub mod wit {
    wit_bindgen::generate!({
        world: "policy",
        path: "wit",
        pub_export_macro: true,
        default_bindings_module: "::dealflow_plugin_sdk::wit",
        additional_derives: [PartialEq],
    });
}

pub use wit::dealflow::policy::types::{
    ActorInfo, AfterOutput, AssignInput, AssignOutput, BonusInput, BonusLine, BonusOutput,
    BranchInfo, CadenceInput, CadenceOutput, CustomerInfo, DealInfo, EventSpec, GuardVerdict, Hook,
    LineInfo, OrderInfo, RecordInfo, RepLoad, RevenueInfo, TaskSpec, TierAssignment, TierInput,
    TierOutput, TransitionInput,
};

/// What the export macro expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use std::string::String;
    pub use std::vec::Vec;

    use crate::wit::Guest;
    use crate::{
        AfterOutput, AssignInput, AssignOutput, BonusInput, BonusOutput, CadenceInput,
        CadenceOutput, GuardVerdict, Hook, TierInput, TierOutput, TransitionInput,
    };

    /// A function that can serve as a hook taking `I` and answering `O`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be this hook: it must be a function `fn({I}) -> Result<{O}, String>`",
        label = "wrong signature for this hook",
        note = "each hook is a plain function: guard/after take `TransitionInput`, tier `TierInput`, cadence \
                `CadenceInput`, assign `AssignInput`, bonus `BonusInput`; each returns `Result<Output, String>`"
    )]
    pub trait HookFn<I, O> {
        /// Runs the hook.
        fn run(self, input: I) -> Result<O, String>;
    }

    impl<I, O, F: FnOnce(I) -> Result<O, String>> HookFn<I, O> for F {
        fn run(self, input: I) -> Result<O, String> {
            self(input)
        }
    }

    /// Calls `f` as a hook (the bound gives the signature error).
    #[inline]
    pub fn call<I, O, F: HookFn<I, O>>(f: F, input: I) -> Result<O, String> {
        f.run(input)
    }

    /// The error a hook that is not exported answers (the host never calls
    /// it: `hooks()` does not list it).
    pub fn not_implemented<T>(hook: &str) -> Result<T, String> {
        Err(format!("the `{hook}` hook is not implemented"))
    }

    /// The hooks a plugin implements; the export macro implements it, every
    /// method it does not override answers "not implemented".
    pub trait Policy {
        /// The implemented hooks.
        const HOOKS: &'static [Hook];

        /// See [`crate::wit::Guest::guard`].
        fn guard(_input: TransitionInput) -> Result<GuardVerdict, String> {
            not_implemented("guard")
        }
        /// See [`crate::wit::Guest::after`].
        fn after(_input: TransitionInput) -> Result<AfterOutput, String> {
            not_implemented("after")
        }
        /// See [`crate::wit::Guest::tier`].
        fn tier(_input: TierInput) -> Result<TierOutput, String> {
            not_implemented("tier")
        }
        /// See [`crate::wit::Guest::cadence`].
        fn cadence(_input: CadenceInput) -> Result<CadenceOutput, String> {
            not_implemented("cadence")
        }
        /// See [`crate::wit::Guest::assign`].
        fn assign(_input: AssignInput) -> Result<AssignOutput, String> {
            not_implemented("assign")
        }
        /// See [`crate::wit::Guest::bonus`].
        fn bonus(_input: BonusInput) -> Result<BonusOutput, String> {
            not_implemented("bonus")
        }
    }

    impl<P: Policy> Guest for P {
        fn hooks() -> Vec<Hook> {
            P::HOOKS.to_vec()
        }
        fn guard(input: TransitionInput) -> Result<GuardVerdict, String> {
            P::guard(input)
        }
        fn after(input: TransitionInput) -> Result<AfterOutput, String> {
            P::after(input)
        }
        fn tier(input: TierInput) -> Result<TierOutput, String> {
            P::tier(input)
        }
        fn cadence(input: CadenceInput) -> Result<CadenceOutput, String> {
            P::cadence(input)
        }
        fn assign(input: AssignInput) -> Result<AssignOutput, String> {
            P::assign(input)
        }
        fn bonus(input: BonusInput) -> Result<BonusOutput, String> {
            P::bonus(input)
        }
    }
}

/// Exports hook functions as the plugin's implementation of the policy world.
///
/// List each implemented hook as `name: function`, where `name` is one of
/// `guard`, `after`, `tier`, `cadence`, `assign`, `bonus` and `function` has
/// the hook's signature:
///
/// | hook | signature |
/// |---|---|
/// | `guard` | `fn(TransitionInput) -> Result<GuardVerdict, String>` |
/// | `after` | `fn(TransitionInput) -> Result<AfterOutput, String>` |
/// | `tier` | `fn(TierInput) -> Result<TierOutput, String>` |
/// | `cadence` | `fn(CadenceInput) -> Result<CadenceOutput, String>` |
/// | `assign` | `fn(AssignInput) -> Result<AssignOutput, String>` |
/// | `bonus` | `fn(BonusInput) -> Result<BonusOutput, String>` |
///
/// An `Err(message)` reaches the host as a failed call with that message.
/// Use the macro once per plugin crate.
#[macro_export]
macro_rules! export_policy {
    ($($hook:ident : $func:expr),+ $(,)?) => {
        const _: () = {
            #[doc(hidden)]
            struct __DealflowPolicy;

            impl $crate::__private::Policy for __DealflowPolicy {
                const HOOKS: &'static [$crate::Hook] = &[$($crate::__dealflow_hook!(variant $hook)),+];
                $($crate::__dealflow_hook!(method $hook $func);)+
            }

            $crate::__export_policy_impl!(__DealflowPolicy with_types_in $crate::wit);
        };
    };
}

/// One hook of [`export_policy!`]: its `Hook` variant, or its method.
#[doc(hidden)]
#[macro_export]
macro_rules! __dealflow_hook {
    (variant guard) => { $crate::Hook::Guard };
    (variant after) => { $crate::Hook::After };
    (variant tier) => { $crate::Hook::Tier };
    (variant cadence) => { $crate::Hook::Cadence };
    (variant assign) => { $crate::Hook::Assign };
    (variant bonus) => { $crate::Hook::Bonus };
    (variant $other:ident) => {
        ::core::compile_error!(::core::concat!(
            "`", ::core::stringify!($other),
            "` is not a dealflow hook: the hooks are guard, after, tier, cadence, assign and bonus"
        ))
    };
    (method guard $f:expr) => {
        $crate::__dealflow_hook!(@fn guard $f, $crate::TransitionInput, $crate::GuardVerdict);
    };
    (method after $f:expr) => {
        $crate::__dealflow_hook!(@fn after $f, $crate::TransitionInput, $crate::AfterOutput);
    };
    (method tier $f:expr) => {
        $crate::__dealflow_hook!(@fn tier $f, $crate::TierInput, $crate::TierOutput);
    };
    (method cadence $f:expr) => {
        $crate::__dealflow_hook!(@fn cadence $f, $crate::CadenceInput, $crate::CadenceOutput);
    };
    (method assign $f:expr) => {
        $crate::__dealflow_hook!(@fn assign $f, $crate::AssignInput, $crate::AssignOutput);
    };
    (method bonus $f:expr) => {
        $crate::__dealflow_hook!(@fn bonus $f, $crate::BonusInput, $crate::BonusOutput);
    };
    (method $other:ident $f:expr) => {};
    (@fn $name:ident $f:expr, $in:ty, $out:ty) => {
        fn $name(input: $in) -> ::core::result::Result<$out, $crate::__private::String> {
            $crate::__private::call::<$in, $out, _>($f, input)
        }
    };
}
