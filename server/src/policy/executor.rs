//! Runs policy code off the async workers with bounded concurrency, and
//! compiles uploads with the right runtime.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::live::Runtime;
use super::rhai::RhaiHost;
use super::wasm::WasmHost;
use super::{Executable, Limits, PolicyError};

/// Compiles and runs policies.
#[derive(Clone)]
pub struct Executor {
    /// Limits of every call.
    pub limits: Arc<Limits>,
    /// The rhai engine.
    rhai: RhaiHost,
    /// The wasmtime host.
    wasm: WasmHost,
    /// Bounds concurrent policy executions.
    permits: Arc<Semaphore>,
}

impl Executor {
    /// An executor allowing `max_concurrent` policy executions at once.
    pub fn new(limits: Limits, max_concurrent: usize) -> Result<Self, PolicyError> {
        Ok(Self {
            rhai: RhaiHost::new(limits.clone()),
            wasm: WasmHost::new(&limits)?,
            limits: Arc::new(limits),
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
        })
    }

    /// Compiles a version (checks its hooks, runs its example tests).
    pub fn compile(
        &self,
        runtime: Runtime,
        bytes: &[u8],
    ) -> Result<Arc<dyn Executable>, PolicyError> {
        match runtime {
            Runtime::Rhai => {
                let src = std::str::from_utf8(bytes).map_err(|_| PolicyError::Compile {
                    message: "the script is not UTF-8".into(),
                    line: None,
                    column: None,
                })?;
                Ok(Arc::new(self.rhai.compile(src)?))
            }
            Runtime::Wasm => Ok(Arc::new(self.wasm.compile(bytes, &self.limits)?)),
        }
    }

    /// Runs `work` right here when `inline` (every policy involved has kept
    /// within [`super::live::INLINE_BUDGET`] so far), else like [`Self::run`].
    /// A panic is contained either way.
    pub async fn run_hooks<T: Send + 'static>(
        &self,
        inline: bool,
        work: impl FnOnce(&Limits) -> T + Send + 'static,
    ) -> Result<T, PolicyError> {
        if !inline {
            return self.run(work).await;
        }
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&self.limits)))
            .map_err(|_| panicked("the panic was caught on the worker"))
    }

    /// Runs `work` on the blocking pool once a permit is free. A panic in a
    /// runtime is contained and reported as a failed policy.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Limits) -> T + Send + 'static,
    ) -> Result<T, PolicyError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .expect("the semaphore is never closed");
        let limits = Arc::clone(&self.limits);
        tokio::task::spawn_blocking(move || work(&limits))
            .await
            .map_err(|e| panicked(&e.to_string()))
    }
}

/// A panic inside a runtime, reported as a failed policy.
fn panicked(detail: &str) -> PolicyError {
    tracing::error!(error = %detail, "a policy runtime panicked");
    PolicyError::Failed("the policy runtime panicked".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_is_contained_inline_and_on_the_pool() {
        let executor = Executor::new(Limits::default(), 2).unwrap();
        for inline in [true, false] {
            let out = executor
                .run_hooks(inline, |_| -> u32 { panic!("boom") })
                .await;
            assert!(
                matches!(out, Err(PolicyError::Failed(_))),
                "inline={inline}"
            );
            assert_eq!(executor.run_hooks(inline, |_| 5).await.unwrap(), 5);
        }
    }
}
