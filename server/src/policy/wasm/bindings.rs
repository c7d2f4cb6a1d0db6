//! Host bindings of the WIT world `dealflow:policy/policy@1.0.0`, generated
//! from `plugin-sdk/wit/policy.wit` (the one definition guest and host share).

wasmtime::component::bindgen!({
    world: "policy",
    path: "../plugin-sdk/wit",
    // Hook inputs borrow the host's strings instead of copying each one
    // before it is copied again into the guest.
    ownership: Borrowing { duplicate_if_necessary: true },
});

pub use self::dealflow::policy::types;
