//! Turns what serde and the standard parsers say about a refused field
//! ("invalid type: integer `5`, expected a string at line 1 column 9",
//! "invalid digit found in string", "missing field `branch`") into one
//! sentence that names the field and says what it must be, plus that
//! field's path for `details.field`. Bodies and query strings go through
//! here, so every route words its errors alike.

/// A refused input: which field and a sentence saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The field's path (`lines[0].amount`, `limit`), or `.` for the whole input.
    pub field: String,
    /// A sentence for a human.
    pub message: String,
}

/// What kind of input a field sits in, for the sentences.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A JSON body.
    Body,
    /// The query string.
    Query,
}

impl Place {
    fn noun(self) -> &'static str {
        match self {
            Place::Body => "a field of this body",
            Place::Query => "a query parameter of this route",
        }
    }
}

/// Words the error `raw` (serde's or a parser's message) raised at `path`
/// (serde_path_to_error's rendering: `.` for the root).
pub fn refusal(place: Place, path: &str, raw: &str) -> Refusal {
    let msg = strip_location(raw);
    let at = |name: &str| join(path, name);
    if let Some(name) = between(msg, "missing field `", "`") {
        let field = at(name);
        return Refusal {
            message: format!("`{field}` is required"),
            field,
        };
    }
    if let Some(name) = between(msg, "duplicate field `", "`") {
        let field = at(name);
        return Refusal {
            message: format!("`{field}` is given more than once"),
            field,
        };
    }
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let (name, tail) = rest.split_once('`').unwrap_or((rest, ""));
        // serde_path_to_error's path already ends at the unknown key.
        let field = if path == name || path.ends_with(&format!(".{name}")) {
            path.to_string()
        } else {
            at(name)
        };
        let known = tail
            .strip_prefix(", expected one of ")
            .or_else(|| tail.strip_prefix(", expected "))
            .map(|k| format!("; expected {k}"))
            .unwrap_or_default();
        return Refusal {
            message: format!("`{field}` is not {}{known}", place.noun()),
            field,
        };
    }
    let field = if path.is_empty() {
        ".".into()
    } else {
        path.to_string()
    };
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        let (value, tail) = rest.split_once('`').unwrap_or((rest, ""));
        let allowed = tail
            .strip_prefix(", expected one of ")
            .or_else(|| tail.strip_prefix(", expected "))
            .unwrap_or("nothing");
        // serde lists two as "`a` or `b`", more as "`a`, `b`, `c`".
        let one_of = if allowed.contains(", ") {
            "one of "
        } else {
            ""
        };
        return Refusal {
            message: format!("`{field}` must be {one_of}{allowed}, not `{value}`"),
            field,
        };
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((got, expected)) = rest.rsplit_once(", expected ") {
                return Refusal {
                    message: format!("`{field}` must be {}, not {got}", expected_words(expected)),
                    field,
                };
            }
        }
    }
    if let Some(expected) = msg
        .strip_prefix("invalid length ")
        .and_then(|r| r.split_once(", expected "))
        .map(|(_, e)| e)
    {
        return Refusal {
            message: format!("`{field}` must be {}", expected_words(expected)),
            field,
        };
    }
    // The standard library's integer and boolean parse errors (query
    // strings and path segments are parsed with `FromStr`).
    let message = match msg {
        "invalid digit found in string"
        | "cannot parse integer from empty string"
        | "invalid digit"
        | "invalid float literal" => format!("`{field}` must be a whole number"),
        "number too large to fit in target type" | "number too small to fit in target type" => {
            format!("`{field}` must be a whole number in range")
        }
        "provided string was not `true` or `false`" => {
            format!("`{field}` must be `true` or `false`")
        }
        m if m.starts_with("must ") => format!("`{field}` {m}"),
        m if field == "." => m.to_string(),
        m => format!("`{field}`: {m}"),
    };
    Refusal { field, message }
}

/// serde's names for what it expected, in words.
fn expected_words(expected: &str) -> String {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a whole number, 0 or more".into(),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number".into(),
        "a sequence" => "a list".into(),
        "a map" => "an object".into(),
        "a boolean" => "`true` or `false`".into(),
        e if e.starts_with("struct ") => "an object".into(),
        e => e.to_string(),
    }
}

/// `path.name`, or `name` at the root.
fn join(path: &str, name: &str) -> String {
    if path.is_empty() || path == "." {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// The text between `start` (at the beginning) and the next `end`.
fn between<'a>(msg: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let rest = msg.strip_prefix(start)?;
    rest.split_once(end).map(|(inside, _)| inside)
}

/// serde_json's message without its ` at line L column C` suffix.
pub fn strip_location(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i)
            if msg[i + 9..].split_once(" column ").is_some_and(|(l, c)| {
                l.bytes().all(|b| b.is_ascii_digit()) && c.bytes().all(|b| b.is_ascii_digit())
            }) =>
        {
            &msg[..i]
        }
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn says(place: Place, path: &str, raw: &str) -> (String, String) {
        let r = refusal(place, path, raw);
        (r.field, r.message)
    }

    #[test]
    fn serde_messages_become_sentences_naming_the_field() {
        assert_eq!(
            says(
                Place::Body,
                "title",
                "invalid type: integer `42`, expected a string at line 1 column 12"
            ),
            (
                "title".into(),
                "`title` must be a string, not integer `42`".into()
            )
        );
        assert_eq!(
            says(Place::Body, ".", "missing field `name` at line 1 column 2"),
            ("name".into(), "`name` is required".into())
        );
        assert_eq!(
            says(
                Place::Body,
                "lines[0]",
                "unknown field `qty`, expected one of `brand`, `product`"
            ),
            (
                "lines[0].qty".into(),
                "`lines[0].qty` is not a field of this body; expected `brand`, `product`".into()
            )
        );
        assert_eq!(
            says(
                Place::Query,
                "tier",
                "unknown variant `Z`, expected one of `A`, `B`, `C`"
            ),
            (
                "tier".into(),
                "`tier` must be one of `A`, `B`, `C`, not `Z`".into()
            )
        );
        assert_eq!(
            says(Place::Query, "limit", "invalid digit found in string"),
            ("limit".into(), "`limit` must be a whole number".into())
        );
    }

    #[test]
    fn our_own_reasons_read_after_the_field() {
        assert_eq!(
            says(
                Place::Body,
                "at",
                "invalid value: string \"June\", expected a date like 2026-04-03"
            )
            .1,
            "`at` must be a date like 2026-04-03, not string \"June\""
        );
        assert_eq!(
            says(Place::Body, "amount", "`1e5` is not a decimal number").1,
            "`amount`: `1e5` is not a decimal number"
        );
    }
}
