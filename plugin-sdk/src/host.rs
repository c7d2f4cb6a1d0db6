//! The host's two imports of interface 1.1: [`config`] and [`log`]. Built
//! natively (for a plugin's unit tests) they read the parameters set with
//! [`crate::testing::set_config`] and print to standard error.

use crate::LogLevel;

/// The policy's parameter `key`, if set: parameters are set when the policy
/// is uploaded or activated (`"config": {"cap": "500"}`), so a branch
/// changes a threshold without a new build. Values are text; parse them
/// (e.g. with [`crate::money::parse`]) and say in the error which one was
/// wrong.
pub fn config(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    {
        crate::wit::config(key)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        crate::testing::configured(key)
    }
}

/// Writes `message` to the server's log at `level`, under the plugin's
/// hash. The host keeps at most 10 lines per second per policy version and
/// drops (and counts) the rest; it never fails.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        crate::wit::log(level, message)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        eprintln!("[{level:?}] {message}");
    }
}
