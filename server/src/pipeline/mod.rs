//! Deal transitions: moving a deal from one stage of its branch's pipeline
//! to the next, asking the branch's guards and after-hooks (a feature above
//! the services it uses; the definitions themselves are `service::pipelines`).

pub mod hook_input;
mod transition;

pub use transition::TransitionOutcome;
