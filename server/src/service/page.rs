//! Cursor paging over index prefixes: `?limit=&cursor=` in,
//! `{"items", "next_cursor"}` out. Cursors are opaque (hex of the last key).

use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::ServiceError;
use crate::domain::validate::FieldError;

/// Default page size.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page size.
pub const MAX_LIMIT: usize = crate::domain::validate::MAX_PAGE;

/// The paging part of a list query.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PageRequest {
    /// Page size, 1 to 500 (default 50).
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}

impl PageRequest {
    /// The page size, checked.
    pub fn limit(&self) -> Result<usize, ServiceError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(n) => Err(ServiceError::BadParameter(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}, not {n}"),
            ))),
        }
    }

    /// The key suffix to continue after, decoded.
    pub fn after(&self) -> Result<Option<Vec<u8>>, ServiceError> {
        match &self.cursor {
            None => Ok(None),
            Some(c) if c.is_empty() => Ok(None),
            Some(c) => hex::decode(c).map(Some).map_err(|_| {
                ServiceError::BadParameter(FieldError::new(
                    "cursor",
                    "is not one this server issued; pass a `next_cursor` from a previous page",
                ))
            }),
        }
    }
}

/// Encodes a key suffix as a cursor.
pub fn cursor_of(suffix: &[u8]) -> String {
    hex::encode(suffix)
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Page<T> {
    /// The items of this page.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}
