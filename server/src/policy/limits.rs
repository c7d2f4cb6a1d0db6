//! The limits every policy execution runs under: named, with sane defaults,
//! each enforced by the runtime and each hit by a test.

use std::time::Duration;

/// Execution limits for one hook call.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Wall-clock deadline of one call.
    pub deadline: Duration,
    /// rhai: most operations one call may run.
    pub max_operations: u64,
    /// rhai: deepest function-call nesting.
    pub max_call_depth: usize,
    /// rhai: deepest expression nesting (global, in functions).
    pub max_expr_depth: (usize, usize),
    /// rhai: longest string.
    pub max_string_size: usize,
    /// rhai: longest array.
    pub max_array_size: usize,
    /// rhai: largest map.
    pub max_map_size: usize,
    /// wasm: fuel (roughly instructions) one call may burn.
    pub fuel: u64,
    /// wasm: most linear memory one instance may grow to, in bytes.
    pub memory_bytes: usize,
    /// Largest policy upload (script text or module), in bytes.
    pub max_upload_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(200),
            max_operations: 2_000_000,
            max_call_depth: 64,
            max_expr_depth: (64, 32),
            max_string_size: 1 << 20,
            max_array_size: 100_000,
            max_map_size: 100_000,
            fuel: 200_000_000,
            memory_bytes: 64 << 20,
            max_upload_bytes: 1 << 20,
        }
    }
}

impl Limits {
    /// The limits of a whole-branch hook (`tier`): one call sees every
    /// customer of a branch at once (100,000 and more), so it gets the
    /// budget of that many small calls, still bounded: 30 s, 10^9
    /// operations, arrays and maps of 5,000,000, 64 MiB of strings in one
    /// value, 500 × the fuel, 8 × the memory (with the defaults).
    pub fn bulk(&self) -> Limits {
        Limits {
            deadline: self.deadline.saturating_mul(150),
            max_operations: self.max_operations.saturating_mul(500),
            // rhai counts a value's strings together: 100,000 tiers with a
            // reason each are megabytes.
            max_string_size: self.max_string_size.saturating_mul(64),
            max_array_size: self.max_array_size.saturating_mul(50),
            max_map_size: self.max_map_size.saturating_mul(50),
            fuel: self.fuel.saturating_mul(500),
            memory_bytes: self.memory_bytes.saturating_mul(8),
            ..self.clone()
        }
    }
}
