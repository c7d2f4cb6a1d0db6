//! The per-call resource limiter: wasmtime's `StoreLimits` (memory cap,
//! instance/table/memory counts) plus a record of whether it refused
//! anything, so a trap that follows a refused `memory.grow` (a Rust guest
//! aborts on allocation failure) is reported as the memory limit it is.

use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

/// Most table elements one instance may have (a Rust plugin's function
/// table holds a few hundred).
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Limits one call's store and remembers what it refused.
pub(super) struct CallLimiter {
    /// wasmtime's own limiter, doing the counting.
    inner: StoreLimits,
    /// The memory cap, in bytes (for messages).
    memory_bytes: usize,
    /// The size (in bytes) a refused memory growth asked for, if any.
    refused: Option<usize>,
}

impl CallLimiter {
    /// A limiter capping linear memory at `memory_bytes`.
    pub(super) fn new(memory_bytes: usize) -> Self {
        Self {
            inner: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .table_elements(MAX_TABLE_ELEMENTS)
                .instances(16)
                .memories(4)
                .tables(4)
                .build(),
            memory_bytes,
            refused: None,
        }
    }

    /// What was refused, as a sentence, if anything was.
    pub(super) fn refusal(&self) -> Option<String> {
        self.refused.map(|asked| {
            format!(
                "linear memory is capped at {} bytes; the plugin asked for {asked}",
                self.memory_bytes
            )
        })
    }
}

impl ResourceLimiter for CallLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.refused = Some(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        // The pool's own cap (or the OS) refused: the same limit, seen lower down.
        self.refused.get_or_insert(self.memory_bytes);
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
