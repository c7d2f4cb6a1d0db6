//! Field-level validation shared by every resource: one error shape naming
//! the field and the reason.

/// A refused field: which one and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON path of the field (`lines[2].amount`).
    pub field: String,
    /// Why it was refused, as a sentence fragment.
    pub reason: String,
}

impl FieldError {
    /// A new field error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Longest free text accepted in a short field (names, titles).
pub const MAX_NAME: usize = 200;
/// Longest free text accepted in a long field (summaries, notes).
pub const MAX_TEXT: usize = 10_000;
/// Largest page of a list (`limit`).
pub const MAX_PAGE: usize = 500;
/// Most customers and tasks one follow-ups answer lists (`limit`).
pub const MAX_FOLLOWUPS: usize = 10_000;
/// Longest user name (token holders, owners, authors).
pub const MAX_USER: usize = 64;
/// Most lines a deal may have.
pub const MAX_LINES: usize = 500;
/// Most needs a deal may list.
pub const MAX_NEEDS: usize = 100;
/// Most stages a pipeline may have.
pub const MAX_STAGES: usize = 32;

/// Trims and checks a required short text.
pub fn name(field: &str, value: &str) -> Result<String, FieldError> {
    text(field, value, MAX_NAME)
}

/// Trims and checks a required text of at most `max` characters (counted
/// before trimming, as the published `maxLength` counts them).
pub fn text(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let t = value.trim();
    if t.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if t.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(t.to_string())
}

/// Checks an optional long text; blank becomes `None`.
pub fn opt_text(field: &str, value: Option<&str>) -> Result<Option<String>, FieldError> {
    match value {
        None => Ok(None),
        Some(v) if v.trim().is_empty() => Ok(None),
        Some(v) => text(field, v, MAX_TEXT).map(Some),
    }
}

/// Checks a user name (token users, owners, authors): printable, no spaces
/// at the ends, at most 64 characters.
pub fn user(field: &str, value: &str) -> Result<String, FieldError> {
    let ok = (1..=MAX_USER).contains(&value.chars().count())
        && value.trim() == value
        && !value.chars().any(char::is_control);
    if ok {
        Ok(value.to_string())
    } else {
        Err(FieldError::new(
            field,
            "must be 1 to 64 printable characters without surrounding spaces",
        ))
    }
}
