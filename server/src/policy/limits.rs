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
