//! Calling a script function under the call's limits: the per-thread
//! deadline `on_progress` checks, and rhai's errors mapped to
//! [`PolicyError`] by kind.

use std::cell::Cell;
use std::time::Instant;

use rhai::{CallFnOptions, Dynamic, Engine, EvalAltResult, Position, Scope, AST};

use crate::policy::{Limits, PolicyError};

thread_local! {
    /// The deadline of the call running on this thread, checked by `on_progress`.
    pub(super) static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// How often (in operations) the deadline is checked: reading the clock on
/// every operation would cost more than the operations themselves.
const DEADLINE_CHECK_EVERY: u64 = 1024;

/// Restores the thread's deadline when a call ends, even by panic.
pub(super) struct DeadlineGuard;

impl Drop for DeadlineGuard {
    fn drop(&mut self) {
        DEADLINE.with(|d| d.set(None));
    }
}

pub(super) fn map_error(e: EvalAltResult, limits: &Limits) -> PolicyError {
    use EvalAltResult as E;
    match e {
        E::ErrorTooManyOperations(_) => {
            PolicyError::Budget(format!("{} operations", limits.max_operations))
        }
        E::ErrorTerminated(..) => PolicyError::Deadline(limits.deadline.as_millis() as u64),
        E::ErrorStackOverflow(_) => {
            PolicyError::Resource(format!("call depth over {}", limits.max_call_depth))
        }
        E::ErrorDataTooLarge(what, _) => PolicyError::Resource(format!("{what} too large")),
        E::ErrorTooManyVariables(_) => PolicyError::Resource("too many variables".into()),
        E::ErrorMismatchOutputType(want, got, _) => {
            PolicyError::BadOutput(format!("expected {want}, got {got}"))
        }
        E::ErrorInFunctionCall(_, _, inner, _) => map_error(*inner, limits),
        other => PolicyError::Failed(other.to_string()),
    }
}

/// The engine's `on_progress` callback: ends the call (`ErrorTerminated`)
/// once this thread's deadline has passed, reading the clock every
/// [`DEADLINE_CHECK_EVERY`] operations.
pub(super) fn past_deadline(ops: u64) -> Option<Dynamic> {
    if !ops.is_multiple_of(DEADLINE_CHECK_EVERY) {
        return None;
    }
    match DEADLINE.with(Cell::get) {
        Some(deadline) if Instant::now() > deadline => Some(Dynamic::from("deadline")),
        _ => None,
    }
}

/// Calls `name` of `ast` on `engine` with `args` under `limits`' deadline
/// (the engine carries the other limits).
pub(super) fn call_fn(
    engine: &Engine,
    ast: &AST,
    name: &str,
    args: Vec<Dynamic>,
    limits: &Limits,
) -> Result<Dynamic, PolicyError> {
    call_fn_unmapped(engine, ast, name, args, limits).map_err(|e| map_error(*e, limits))
}

/// [`call_fn`] with rhai's own error, which knows where it happened.
pub(super) fn call_fn_unmapped(
    engine: &Engine,
    ast: &AST,
    name: &str,
    args: Vec<Dynamic>,
    limits: &Limits,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let _guard = DeadlineGuard;
    DEADLINE.with(|d| d.set(Some(Instant::now() + limits.deadline)));
    let mut scope = Scope::new();
    let options = CallFnOptions::new().eval_ast(false).rewind_scope(true);
    engine.call_fn_with_options::<Dynamic>(options, &mut scope, ast, name, args)
}

/// Where an error happened: the innermost known position (inside the
/// function a test called, when the failure is there), else the call's.
pub(super) fn failure_position(e: &EvalAltResult) -> Position {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, _, inner, at) => {
            let inside = failure_position(inner);
            if inside.is_none() {
                *at
            } else {
                inside
            }
        }
        other => other.position(),
    }
}
