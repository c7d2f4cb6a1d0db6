//! Guest-side SDK for dealflow WebAssembly policy plugins.
//!
//! A plugin implements any subset of the policy hooks of the WIT world
//! `dealflow:policy@1.1.0` (in `wit/policy.wit`) as **plain typed Rust
//! functions** and exports them with one macro, [`export_policy!`]:
//!
//! ```
//! use dealflow_plugin_sdk::{export_policy, GuardVerdict, StageKind, TransitionInput};
//!
//! /// Refuses to win a deal without lines.
//! pub fn guard(input: TransitionInput) -> Result<GuardVerdict, String> {
//!     if input.to_kind == StageKind::Won && input.deal.lines.is_empty() {
//!         return Ok(GuardVerdict::reject("a deal without lines cannot be won", ["at least one line"]));
//!     }
//!     Ok(GuardVerdict::allow())
//! }
//!
//! export_policy! { guard: guard }
//! ```
//!
//! A hook returns `Result<Output, String>` or `Result<Output, PluginError>`;
//! `?` converts the SDK's errors (and `String`, `&str`) into a
//! [`PluginError`]. A bonus rule says which subjects it settles with
//! `bonus_subjects`, so a settlement asks it about no other:
//!
//! ```
//! use dealflow_plugin_sdk::{export_policy, money, BonusInput, BonusLine, BonusOutput, PluginError, SubjectKind};
//!
//! /// Pays 1 % of a signed deal's total, up to a parameter `cap` (CNY).
//! pub fn bonus(input: BonusInput) -> Result<BonusOutput, PluginError> {
//!     let Some(deal) = input.deal else { return Ok(BonusOutput::none()) };
//!     let cap = money::parse(&dealflow_plugin_sdk::config("cap").unwrap_or("500".into()))?;
//!     let pay = (money::parse(&deal.amount_total)? / money::Decimal::ONE_HUNDRED).min(cap);
//!     Ok(BonusOutput::one(BonusLine::new("one_percent", pay, format!("1 % of deal {}, at most {cap}", deal.id))))
//! }
//!
//! export_policy! { bonus: bonus, bonus_subjects: [SubjectKind::Deal] }
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
//! Closed sets (stage kinds, tiers, segments, sources, subject kinds, roles,
//! record kinds) are enums. A plugin may read its parameters with
//! [`config`] (set when the policy is uploaded or activated, so a threshold
//! changes without a new build) and write to the server's log with [`log`]
//! (rate-limited); it gets nothing else: no clock, no randomness, no I/O.
//!
//! # Instances: fresh per call, except a settlement's `bonus` calls
//! Every hook call runs in a fresh instance, with one exception: in a
//! settlement, one instance answers up to 64 `bonus` calls in a row (the
//! host's `BONUS_CALLS_PER_INSTANCE`; instantiating is most of a small
//! call's cost). So a `bonus` hook must not rely on a fresh instance:
//! statics it changes are seen by the next subjects' calls, and memory it
//! does not free stays allocated across them (with the bump allocator,
//! freed memory other than the latest block is only reclaimed when the
//! instance ends). Each call still gets its own fuel and deadline; a call
//! that traps is retried alone on a fresh instance, so its answer is what
//! a single call gives. Write `bonus` as a function of its input only.
//!
//! # Layout
//! - the record types of the interface, re-exported under their WIT names
//!   ([`TransitionInput`], [`GuardVerdict`], [`BonusInput`], …), with a few
//!   constructors and accessors;
//! - [`export_policy!`]: the export macro;
//! - [`money`]: strict decimal parsing and formatting;
//! - [`date`]: date parsing and arithmetic;
//! - [`testing`]: sample inputs for native unit tests;
//! - [`PluginError`]: the error a hook may return;
//! - [`config`] and [`log`]: the host's two imports;
//! - `bump` (wasm32 only, feature `bump-allocator`, on by default): the
//!   plugin's allocator, a bump allocator: memory is reclaimed when the
//!   instance ends (see above for when that is). Turn the feature off to
//!   use Rust's default allocator (or your own).

#![deny(missing_docs)]

extern crate self as dealflow_plugin_sdk;

#[cfg(all(
    target_arch = "wasm32",
    not(target_feature = "atomics"),
    feature = "bump-allocator"
))]
pub mod bump;
pub mod date;
mod error;
mod host;
pub mod money;
mod records;
pub mod testing;

pub use error::PluginError;
pub use host::{config, log};

/// The generated bindings of the world `dealflow:policy/policy@1.1.0`.
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
    LineInfo, LogLevel, OrderInfo, RecordInfo, RecordKind, RepLoad, RevenueInfo, Role, Segment,
    Source, StageKind, SubjectKind, TaskSpec, Tier, TierAssignment, TierInput, TierOutput,
    TransitionInput,
};

/// What the export macro expands to; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use std::string::String;
    pub use std::vec::Vec;

    use crate::wit::Guest;
    use crate::{
        AfterOutput, AssignInput, AssignOutput, BonusInput, BonusOutput, CadenceInput,
        CadenceOutput, GuardVerdict, Hook, SubjectKind, TierInput, TierOutput, TransitionInput,
    };

    /// A function that can serve as a hook taking `I` and answering `O`.
    #[diagnostic::on_unimplemented(
        message = "`{Self}` cannot be this hook: it must be a function `fn({I}) -> Result<{O}, String>` (or `PluginError`)",
        label = "wrong signature for this hook",
        note = "each hook is a plain function: guard/after take `TransitionInput`, tier `TierInput`, cadence \
                `CadenceInput`, assign `AssignInput`, bonus `BonusInput`; each returns `Result<Output, String>` \
                or `Result<Output, PluginError>`"
    )]
    pub trait HookFn<I, O> {
        /// Runs the hook.
        fn run(self, input: I) -> Result<O, String>;
    }

    impl<I, O, E: Into<String>, F: FnOnce(I) -> Result<O, E>> HookFn<I, O> for F {
        fn run(self, input: I) -> Result<O, String> {
            self(input).map_err(Into::into)
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
        /// The implemented hooks (`None`: an entry of the macro that is no
        /// hook, such as `bonus_subjects`).
        const HOOKS: &'static [Option<Hook>];
        /// The subjects `bonus` settles; empty: every subject.
        const BONUS_SUBJECTS: &'static [SubjectKind] = &[];

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
            P::HOOKS.iter().flatten().copied().collect()
        }
        fn bonus_subjects() -> Vec<SubjectKind> {
            P::BONUS_SUBJECTS.to_vec()
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
/// the hook's signature (the error may be `String` or [`PluginError`]):
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
/// A bonus rule may add `bonus_subjects: [SubjectKind::Deal, …]`: the
/// subjects it settles (a settlement asks it about no other; without it,
/// every subject). Use the macro once per plugin crate.
#[macro_export]
macro_rules! export_policy {
    ($($hook:ident : $func:expr),+ $(,)?) => {
        const _: () = {
            #[doc(hidden)]
            struct __DealflowPolicy;

            impl $crate::__private::Policy for __DealflowPolicy {
                const HOOKS: &'static [::core::option::Option<$crate::Hook>] =
                    &[$($crate::__dealflow_hook!(variant $hook)),+];
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
    (variant guard) => { ::core::option::Option::Some($crate::Hook::Guard) };
    (variant after) => { ::core::option::Option::Some($crate::Hook::After) };
    (variant tier) => { ::core::option::Option::Some($crate::Hook::Tier) };
    (variant cadence) => { ::core::option::Option::Some($crate::Hook::Cadence) };
    (variant assign) => { ::core::option::Option::Some($crate::Hook::Assign) };
    (variant bonus) => { ::core::option::Option::Some($crate::Hook::Bonus) };
    (variant bonus_subjects) => { ::core::option::Option::None };
    (variant $other:ident) => {
        ::core::compile_error!(::core::concat!(
            "`", ::core::stringify!($other),
            "` is not a dealflow hook: the hooks are guard, after, tier, cadence, assign and bonus \
             (and `bonus_subjects` lists what `bonus` settles)"
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
    (method bonus_subjects $subjects:expr) => {
        const BONUS_SUBJECTS: &'static [$crate::SubjectKind] = &$subjects;
    };
    (method $other:ident $f:expr) => {};
    (@fn $name:ident $f:expr, $in:ty, $out:ty) => {
        fn $name(input: $in) -> ::core::result::Result<$out, $crate::__private::String> {
            $crate::__private::call::<$in, $out, _>($f, input)
        }
    };
}
