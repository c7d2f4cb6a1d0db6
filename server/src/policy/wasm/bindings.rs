//! Host bindings of the WIT world `dealflow:policy/policy@1.0.0`, generated
//! from `plugin-sdk/wit/policy.wit` (the one definition guest and host share).

wasmtime::component::bindgen!({
    world: "policy",
    path: "../plugin-sdk/wit",
});

pub use self::dealflow::policy::types;
