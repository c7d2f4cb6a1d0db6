//! The stage pipeline: each branch's definition (the default until it sets
//! its own) and the transition of a deal from one stage to the next.

mod definition;
pub mod hook_input;
mod transition;

pub use definition::{OrphanedStage, PipelineCache, PipelineChange};
pub(crate) use transition::policy_failed;
pub use transition::TransitionOutcome;
