//! Runs policy code off the async workers with bounded concurrency, and
//! compiles uploads with the right runtime.

use std::sync::Arc;

use tokio::sync::Semaphore;

use super::live::Runtime;
use super::rhai_runtime::RhaiHost;
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
            .map_err(|e| {
                tracing::error!(error = %e, "a policy runtime panicked");
                PolicyError::Failed("the policy runtime panicked".into())
            })
    }
}
