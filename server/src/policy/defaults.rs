//! The default policies' sources (`policies/`), compiled into the binary:
//! the registry installs them on a fresh store, and the runtime's tests
//! check that each compiles and passes its example tests.

/// The default policies of docs/business-rules.md as rhai scripts, by name: a
/// fresh server installs each as version 1 of a global policy and makes it
/// live.
pub const SCRIPTS: [(&str, &str); 8] = [
    (
        "quote-late",
        include_str!("../../../policies/quote-late.rhai"),
    ),
    (
        "after-sign",
        include_str!("../../../policies/after-sign.rhai"),
    ),
    (
        "pareto-tiering",
        include_str!("../../../policies/pareto-tiering.rhai"),
    ),
    (
        "visit-cadence",
        include_str!("../../../policies/visit-cadence.rhai"),
    ),
    (
        "fair-assignment",
        include_str!("../../../policies/fair-assignment.rhai"),
    ),
    (
        "new-brand-bonus",
        include_str!("../../../policies/new-brand-bonus.rhai"),
    ),
    (
        "new-customer-bonus",
        include_str!("../../../policies/new-customer-bonus.rhai"),
    ),
    (
        "no-new-customer",
        include_str!("../../../policies/no-new-customer.rhai"),
    ),
];

/// The new-brand bonus as a WebAssembly component (built from
/// `plugins/new-brand-bonus`; a test checks it agrees with a fresh build and
/// with the script): installed as version 2 of `new-brand-bonus`, inactive,
/// an alternative an admin can activate.
pub const NEW_BRAND_BONUS_WASM: &[u8] = include_bytes!("../../../policies/new-brand-bonus.wasm");
