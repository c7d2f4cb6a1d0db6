//! [`PluginError`]: what a hook may return instead of `String`, so `?`
//! works on the SDK's parsers and on text.

use core::fmt;

/// A hook's failure: its message reaches the host, which reports the call
/// as failed with it (a failing guard fails closed). `?` converts into it
/// from `String`, `&str` and the errors of the SDK's parsers.
///
/// ```
/// use dealflow_plugin_sdk::{money, PluginError};
///
/// fn total(text: &str) -> Result<money::Decimal, PluginError> {
///     let d = money::parse(text)?;
///     if d.is_sign_negative() {
///         return Err(PluginError::new(format!("{text} is negative")));
///     }
///     Ok(d)
/// }
/// assert_eq!(total("-1").unwrap_err().message(), "-1 is negative");
/// assert!(total("x").is_err());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PluginError(String);

impl PluginError {
    /// An error saying `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// What it says.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PluginError({:?})", self.0)
    }
}

impl From<String> for PluginError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<&str> for PluginError {
    fn from(message: &str) -> Self {
        Self(message.into())
    }
}

impl From<rust_decimal::Error> for PluginError {
    fn from(e: rust_decimal::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<chrono::ParseError> for PluginError {
    fn from(e: chrono::ParseError) -> Self {
        Self(e.to_string())
    }
}

impl From<core::num::ParseIntError> for PluginError {
    fn from(e: core::num::ParseIntError) -> Self {
        Self(e.to_string())
    }
}

impl From<PluginError> for String {
    fn from(e: PluginError) -> Self {
        e.0
    }
}
