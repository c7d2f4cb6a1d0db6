//! PATCH semantics for nullable fields: absent leaves a field alone, `null`
//! clears it, a value sets it.

use serde::{Deserialize, Deserializer};

/// Serde helper for `Option<Option<T>>`: `None` when absent (with
/// `#[serde(default)]`), `Some(None)` for `null`, `Some(Some(v))` for a value.
pub fn double_option<'de, T, D>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    T: Deserialize<'de>,
    D: Deserializer<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}
