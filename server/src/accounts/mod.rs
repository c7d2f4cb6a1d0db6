//! Key accounts without I/O (docs/business-rules.md §1–2): when a customer is
//! due or overdue for contact under its cadence, and, with the `testing`
//! feature only, a native Rust version of the default Pareto tiering (the
//! benchmark's limit and the tests' oracle).

pub mod cadence;
#[cfg(any(test, feature = "testing"))]
pub mod pareto;
