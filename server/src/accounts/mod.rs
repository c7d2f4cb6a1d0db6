//! Key accounts without I/O (docs/business-rules.md §1–2): a native Rust version of the
//! default Pareto tiering (the benchmark's limit and the tests' oracle) and
//! when a customer is due or overdue for contact under its cadence.

pub mod cadence;
pub mod pareto;
