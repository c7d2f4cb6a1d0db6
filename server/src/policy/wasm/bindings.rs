//! Host bindings of the two versions of the WIT world the host serves,
//! generated from the one definition guest and host share:
//! `dealflow:policy/policy@1.1.0` (`plugin-sdk/wit/policy.wit`) and the
//! frozen `@1.0.0` (`plugin-sdk/wit-1.0/policy.wit`) that plugins built
//! before 1.1 implement.

/// Interface 1.0.0: no imports, strings for closed sets.
pub mod v1_0 {
    wasmtime::component::bindgen!({
        world: "policy",
        path: "../plugin-sdk/wit-1.0",
        // Hook inputs borrow the host's strings instead of copying each one
        // before it is copied again into the guest.
        ownership: Borrowing { duplicate_if_necessary: true },
    });

    pub use self::dealflow::policy::types;
}

/// Interface 1.1.0: enums, `bonus-subjects`, the `config` and `log`
/// imports.
pub mod v1_1 {
    wasmtime::component::bindgen!({
        world: "policy",
        path: "../plugin-sdk/wit",
        ownership: Borrowing { duplicate_if_necessary: true },
    });

    pub use self::dealflow::policy::types;
}
