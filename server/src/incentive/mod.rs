//! Incentives without I/O: settlement periods, the bonus-hook inputs a
//! settlement hands each rule (docs/business-rules.md §5), and, with the
//! `testing` feature only, a native Rust version of the default rules (the
//! benchmark's limit and the tests' oracle).

pub mod deal_record;
pub mod inputs;
#[cfg(any(test, feature = "testing"))]
pub mod native;
pub mod period;

pub use deal_record::DealRecord;
pub use inputs::{FxTable, SubjectKind};
pub use period::{Period, PeriodKind};
