//! A policy plugin that misbehaves on demand, for the fault-isolation tests:
//! the deal attribute `mode` picks how its `guard` (and `after`) hook fails.
//! Without `mode` it behaves (allows the move, does nothing after it), so
//! the tests can first show it working.

use core::hint::black_box;

use dealflow_plugin_sdk::{
    export_policy, log, AfterOutput, GuardVerdict, LogLevel, TransitionInput,
};

/// How the hook misbehaves.
fn misbehave(input: &TransitionInput) -> Result<(), String> {
    match input.deal.attribute("mode") {
        None | Some("well") => Ok(()),
        // Spins until the host's fuel (or deadline) stops it.
        Some("loop") => {
            let mut n: u64 = 0;
            loop {
                n = black_box(n.wrapping_add(1));
            }
        }
        // Recurses until the wasm stack is exhausted.
        Some("recursion") => {
            black_box(deep(black_box(0)));
            Ok(())
        }
        // Allocates until the host's memory cap refuses to grow memory.
        Some("memory") => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(black_box(vec![1u8; 1 << 20]));
                black_box(&hoard);
            }
        }
        Some("panic") => panic!("the plugin panicked on purpose"),
        // Floods the log: the host keeps a few lines and the call goes on.
        Some("chatty") => {
            for i in 0..10_000 {
                log(LogLevel::Warn, &format!("line {i} of a flood"));
            }
            Ok(())
        }
        Some("error") => Err("the plugin refused on purpose".into()),
        Some(other) => Err(format!("unknown mode `{other}`")),
    }
}

fn deep(n: u64) -> u64 {
    // Enough live state per frame that the optimizer cannot turn this into
    // a loop; the exit is never taken (the depth is not reachable).
    let frame = black_box([n; 16]);
    if frame[black_box(0)] == u64::MAX {
        return 0;
    }
    deep(frame[black_box(3)] + 1) + frame[black_box(5)]
}

/// The guard: allows the move unless `mode` says to misbehave; modes
/// `shape` and `blank` answer a rejection without a reason (none, or only
/// spaces), which the host refuses as bad output.
pub fn guard(input: TransitionInput) -> Result<GuardVerdict, String> {
    let no_reason = match input.deal.attribute("mode") {
        Some("shape") => Some(None),
        Some("blank") => Some(Some("  ".to_string())),
        _ => None,
    };
    if let Some(reason) = no_reason {
        return Ok(GuardVerdict {
            allow: false,
            reason,
            missing: Vec::new(),
        });
    }
    misbehave(&input)?;
    Ok(GuardVerdict::allow())
}

/// The after hook: misbehaves like the guard when `after_mode` is set.
pub fn after(input: TransitionInput) -> Result<AfterOutput, String> {
    if let Some(mode) = input.deal.attribute("after_mode") {
        let mut shifted = input.clone();
        shifted.deal.attributes.push(("mode".into(), mode.into()));
        misbehave(&shifted)?;
    }
    Ok(AfterOutput::none())
}

export_policy! { guard: guard, after: after }
