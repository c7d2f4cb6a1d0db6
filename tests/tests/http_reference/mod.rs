//! Renders the server's OpenAPI document (`dealflow::api::openapi()`, the
//! one `GET /openapi.json` serves) as `docs/http-reference.md`: every
//! operation with its method, path, summary (which says who may call it),
//! authentication, parameters, request body and responses, then every named
//! schema as a table of its fields. `$ref`s become links to the schema
//! sections; an inline schema identical to a named one (the items of a
//! `Page_*`) links to it too.
//!
//! The output depends only on the document: keys are visited in sorted
//! order, so the same document always renders the same bytes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The text above the generated part: what the document does not say.
const PREAMBLE: &str = r#"# HTTP reference

<!-- Generated from the server's OpenAPI document by tests/tests/http_reference/mod.rs.
     Do not edit by hand: run `UPDATE_DOCS=1 cargo test -p dealflow-tests --test readme http_reference`. -->

This page is generated from the OpenAPI document the server publishes at
`GET /openapi.json` (`dealflow::api::openapi()`); a test fails when the two
differ. The business rules behind the routes are in
[business-rules.md](business-rules.md), policies in
[policy-guide.md](policy-guide.md).

## Conventions

- **JSON** in and out (`Content-Type: application/json`). A body must be a
  JSON object; unknown fields are refused (400 `invalid_body`, `details.path`
  names the field), so typos never pass silently. Bodies are limited to
  1 MiB (policy uploads: 1,500,000 bytes), 413 `payload_too_large` beyond.
- **Authentication**: `Authorization: Bearer <token>` on every operation
  except those marked "no token". A missing or unknown token is 401
  `unauthorized`; a role or branch outside the caller's scope is 403
  `forbidden`. Admins may do everything; a manager everything inside their
  branch; a rep works inside their branch: its customers, and their own
  deals, records, tasks and statement. Each operation's summary says when
  it needs more (e.g. "(admin)").
- **Money** is a decimal string (`"10000.01"`), never a binary float;
  numbers are accepted on input and normalised. A line's amount and cost
  are at most 10^12, with at most 6 decimal places.
- **Times** are RFC 3339 (`2026-03-15T09:30:00Z`), stored and shown at
  millisecond precision; dates are `YYYY-MM-DD`. Writes that record a
  business fact take an optional `at` (a deal: `opened_at`) so history can
  be imported; it defaults to now and may not lie more than 5 minutes in
  the future.
- **Lists** page with `?limit=&cursor=` (`limit` 1 to 500, default 50) and
  answer `{"items": [...], "next_cursor": ...}`; pass `next_cursor` back as
  `cursor` until it is null.
- **Versions**: resources carry a `version`; a single branch, brand,
  pipeline, customer, record, deal or task is also answered with it as its
  `ETag`. Send `If-Match: <version>` on a write to have it refused with 409
  `version_conflict` (and nothing changed) when someone changed the
  resource since you read it.
- **Errors** have one body, [ErrorBody](#errorbody):
  `{"error": {"code", "message", "details"}}`, `details` naming the field or
  the rule when there is one. Codes: `invalid_json`, `invalid_body`,
  `invalid_query`, `invalid_path`, `invalid_header`, `bad_request` (400);
  `unauthorized` (401); `forbidden` (403); `not_found` (404);
  `method_not_allowed` (405); `version_conflict`, `duplicate`,
  `invalid_state`, `stale_draft` (409); `payload_too_large` (413);
  `unsupported_media_type` (415); `validation_failed`, `unknown_reference`,
  `invalid_transition`, `guard_rejected`, `policy_failed`, `policy_invalid`
  (422); `internal` (500, the request was not applied); `unavailable` (503).
"#;

/// HTTP methods in the order an operation's section lists them.
const METHODS: [&str; 8] = [
    "get", "put", "post", "patch", "delete", "head", "options", "trace",
];

/// Schema keywords the renderer turns into words; any other keyword is
/// shown as `keyword: value`, so nothing the document says is dropped.
const STRUCTURAL: [&str; 12] = [
    "type",
    "format",
    "items",
    "properties",
    "required",
    "additionalProperties",
    "propertyNames",
    "description",
    "$ref",
    "oneOf",
    "allOf",
    "enum",
];

/// Renders the whole reference from `doc` (the OpenAPI document as JSON).
pub fn render(doc: &Value) -> String {
    let doc = link_inline_copies(doc);
    let mut out = String::from(PREAMBLE);
    let info = &doc["info"];
    let _ = writeln!(
        out,
        "\nDocument: {}, version {}, OpenAPI {}.",
        text(&info["title"]),
        text(&info["version"]),
        text(&doc["openapi"])
    );
    if let Some(d) = info["description"].as_str() {
        let _ = writeln!(out, "{}", escape_prose(d));
    }

    let by_tag = operations(&doc);
    let mut anchors = BTreeSet::new();
    out.push_str("\n## Operations\n\n| group | method | path | summary |\n|---|---|---|---|\n");
    for (tag, ops) in &by_tag {
        for op in ops {
            let _ = writeln!(
                out,
                "| {tag} | {} | [`{}`](#{}) | {} |",
                op.method.to_uppercase(),
                op.path,
                anchor(&op.heading()),
                cell(op.body["summary"].as_str().unwrap_or_default())
            );
        }
    }
    for (tag, ops) in &by_tag {
        let _ = writeln!(out, "\n## Operations: {tag}");
        for op in ops {
            claim(&mut anchors, &op.heading());
            render_operation(&mut out, op);
        }
    }

    out.push_str("\n## Schemas\n");
    let empty = Map::new();
    let schemas = doc["components"]["schemas"].as_object().unwrap_or(&empty);
    for (name, schema) in sorted(schemas) {
        claim(&mut anchors, name);
        render_schema(&mut out, name, schema);
    }
    out
}

/// One operation of the document.
struct Operation<'a> {
    method: &'a str,
    path: &'a str,
    body: &'a Value,
}

impl Operation<'_> {
    fn heading(&self) -> String {
        format!("`{} {}`", self.method.to_uppercase(), self.path)
    }
}

/// Every operation, grouped by its first tag, each group in path order.
fn operations(doc: &Value) -> BTreeMap<String, Vec<Operation<'_>>> {
    let mut by_tag: BTreeMap<String, Vec<Operation<'_>>> = BTreeMap::new();
    let Some(paths) = doc["paths"].as_object() else {
        return by_tag;
    };
    for (path, item) in sorted(paths) {
        for method in METHODS {
            if let Some(body) = item.get(method) {
                let tag = body["tags"][0].as_str().unwrap_or("other").to_string();
                by_tag
                    .entry(tag)
                    .or_default()
                    .push(Operation { method, path, body });
            }
        }
    }
    by_tag
}

fn render_operation(out: &mut String, op: &Operation<'_>) {
    let b = op.body;
    let _ = writeln!(out, "\n### {}\n", op.heading());
    for key in ["summary", "description"] {
        if let Some(t) = b[key].as_str().filter(|t| !t.is_empty()) {
            let _ = writeln!(out, "{}\n", escape_prose(t));
        }
    }
    // An operation's own `security` replaces the document's; an empty
    // requirement (`{}`) among them means it can be called without one.
    let open = b["security"].as_array().is_some_and(|reqs| {
        reqs.iter()
            .any(|r| r.as_object().is_some_and(Map::is_empty))
    });
    let _ = writeln!(
        out,
        "- Authentication: {}",
        if open { "no token" } else { "bearer token" }
    );
    if let Some(id) = b["operationId"].as_str() {
        let _ = writeln!(out, "- Operation id: `{id}`");
    }
    if b["deprecated"].as_bool() == Some(true) {
        out.push_str("- Deprecated.\n");
    }

    if let Some(params) = b["parameters"].as_array().filter(|p| !p.is_empty()) {
        out.push_str("\nParameters:\n\n| name | in | type | required | description |\n|---|---|---|---|---|\n");
        for p in params {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} |",
                text(&p["name"]),
                text(&p["in"]),
                cell(&type_of(&p["schema"])),
                yes_no(p["required"].as_bool() == Some(true)),
                cell(p["description"].as_str().unwrap_or_default())
            );
        }
    }

    if let Some(req) = b.get("requestBody") {
        let required = req["required"].as_bool() == Some(true);
        let _ = writeln!(
            out,
            "\nRequest body ({}):",
            if required { "required" } else { "optional" }
        );
        if let Some(d) = req["description"].as_str().filter(|d| !d.is_empty()) {
            let _ = writeln!(out, "{}", escape_prose(d));
        }
        out.push('\n');
        render_content(out, &req["content"]);
    }

    out.push_str("\nResponses:\n\n| status | description | body |\n|---|---|---|\n");
    let empty = Map::new();
    let responses = b["responses"].as_object().unwrap_or(&empty);
    let mut statuses: Vec<&String> = responses.keys().collect();
    // Numeric statuses first, then ranges such as `4XX`, then `default`.
    statuses.sort_by_key(|s| (s.parse::<u16>().is_err(), s.as_str() == "default", *s));
    for status in statuses {
        let r = &responses[status];
        let mut bodies = Vec::new();
        for (media, content) in sorted(r["content"].as_object().unwrap_or(&empty)) {
            match content.get("schema") {
                Some(s) => bodies.push(format!("`{media}`: {}", type_of(s))),
                None => bodies.push(format!("`{media}`")),
            }
        }
        let description = match r["description"].as_str().unwrap_or_default() {
            "" if status.ends_with("XX") => "a client error (see Conventions)",
            d => d,
        };
        let _ = writeln!(
            out,
            "| {status} | {} | {} |",
            cell(description),
            cell(&bodies.join("; "))
        );
        for (name, header) in sorted(r["headers"].as_object().unwrap_or(&empty)) {
            let _ = writeln!(
                out,
                "| | header `{name}`: {} | {} |",
                cell(header["description"].as_str().unwrap_or_default()),
                cell(&type_of(&header["schema"]))
            );
        }
    }
}

/// A request body's media types: a named schema as a link, an inline object
/// as its field table.
fn render_content(out: &mut String, content: &Value) {
    let empty = Map::new();
    for (media, c) in sorted(content.as_object().unwrap_or(&empty)) {
        let schema = &c["schema"];
        if schema.get("properties").is_some() {
            let _ = writeln!(out, "`{media}`, an object:\n");
            fields_table(out, schema);
        } else {
            let _ = writeln!(out, "`{media}`: {}", type_of(schema));
        }
    }
}

fn render_schema(out: &mut String, name: &str, schema: &Value) {
    let _ = writeln!(out, "\n### {name}\n");
    if let Some(d) = schema["description"].as_str() {
        let _ = writeln!(out, "{}\n", escape_prose(d));
    }
    if let Some(parts) = schema["allOf"].as_array() {
        // A composition: the named parts by link, the inline ones as fields.
        let named: Vec<String> = parts
            .iter()
            .filter(|p| p.get("$ref").is_some())
            .map(type_of)
            .collect();
        if !named.is_empty() {
            let _ = writeln!(out, "Every field of {}, and:\n", named.join(", "));
        }
        for p in parts.iter().filter(|p| p.get("$ref").is_none()) {
            fields_table(out, p);
        }
        return;
    }
    if schema.get("properties").is_some() {
        fields_table(out, schema);
        let extra = constraints(schema);
        if !extra.is_empty() {
            let _ = writeln!(out, "\nAlso: {}.", escape_prose(&extra.join(", ")));
        }
    } else {
        let _ = writeln!(out, "Type: {}.", escape_prose(&type_of(schema)));
    }
}

/// The field table of an object schema (required fields marked).
fn fields_table(out: &mut String, schema: &Value) {
    let required: BTreeSet<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    out.push_str("| field | type | required | description |\n|---|---|---|---|\n");
    let empty = Map::new();
    for (field, s) in sorted(schema["properties"].as_object().unwrap_or(&empty)) {
        let _ = writeln!(
            out,
            "| `{field}` | {} | {} | {} |",
            cell(&type_of(s)),
            yes_no(required.contains(field.as_str())),
            cell(s["description"].as_str().unwrap_or_default())
        );
    }
}

/// A schema as a short phrase: `string (date-time)`, `array of [Line](#line)`,
/// `string or null`, `one of "admin", "manager", "rep"`.
fn type_of(s: &Value) -> String {
    let mut words = if let Some(r) = s["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or(r);
        format!("[{name}](#{})", anchor(name))
    } else if let Some(variants) = s["oneOf"].as_array() {
        variants
            .iter()
            .map(type_of)
            .collect::<Vec<_>>()
            .join(" or ")
    } else if let Some(parts) = s["allOf"].as_array() {
        format!(
            "all of {}",
            parts.iter().map(type_of).collect::<Vec<_>>().join(" and ")
        )
    } else if let Some(values) = s["enum"].as_array() {
        let values: Vec<String> = values.iter().map(Value::to_string).collect();
        format!("one of {}", values.join(", "))
    } else {
        let types: Vec<&str> = match &s["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if types.is_empty() {
            "any JSON value".to_string()
        } else {
            types
                .iter()
                .map(|t| match *t {
                    "array" => format!("array of {}", type_of(&s["items"])),
                    "object" => match s.get("additionalProperties") {
                        Some(Value::Bool(false)) | None => "object".to_string(),
                        Some(Value::Bool(true)) => "map of string to any JSON value".to_string(),
                        Some(v) => format!("map of string to {}", type_of(v)),
                    },
                    "null" => "null".to_string(),
                    t => match s["format"].as_str() {
                        Some(f) => format!("{t} ({f})"),
                        None => t.to_string(),
                    },
                })
                .collect::<Vec<_>>()
                .join(" or ")
        }
    };
    let extra = constraints(s);
    if !extra.is_empty() {
        let _ = write!(words, ", {}", extra.join(", "));
    }
    words
}

/// What a schema says beyond its type: bounds, lengths, patterns, defaults,
/// and any other keyword as `keyword: value`.
fn constraints(s: &Value) -> Vec<String> {
    let Some(map) = s.as_object() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (key, v) in sorted(map) {
        if STRUCTURAL.contains(&key.as_str()) {
            continue;
        }
        let said = match key.as_str() {
            "minimum" => format!("≥ {v}"),
            "maximum" => format!("≤ {v}"),
            "exclusiveMinimum" => format!("> {v}"),
            "exclusiveMaximum" => format!("< {v}"),
            "minLength" => format!("at least {v} characters"),
            "maxLength" => format!("at most {v} characters"),
            "minItems" => format!("at least {v} items"),
            "maxItems" => format!("at most {v} items"),
            "pattern" => format!("matching `{}`", text(v)),
            "default" => format!("default `{v}`"),
            _ => format!("{key}: `{v}`"),
        };
        out.push(said);
    }
    // Map keys that are plain strings say nothing worth a word.
    if let Some(names) = s
        .get("propertyNames")
        .filter(|n| **n != serde_json::json!({"type": "string"}))
    {
        out.push(format!("keys: {}", type_of(names)));
    }
    out
}

/// Replaces every inline object schema that is identical to a named one
/// (other than the named one itself) by a `$ref` to it. Only objects with
/// fields: a plain `{"type": "string"}` is no copy of a named string type.
fn link_inline_copies(doc: &Value) -> Value {
    let mut named: BTreeMap<String, String> = BTreeMap::new();
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            if schema.get("properties").is_some() {
                named.insert(schema.to_string(), name.clone());
            }
        }
    }
    fn walk(v: &Value, named: &BTreeMap<String, String>, root: bool) -> Value {
        if !root {
            if let Some(name) = named.get(&v.to_string()) {
                return serde_json::json!({ "$ref": format!("#/components/schemas/{name}") });
            }
        }
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.clone(), walk(v, named, false)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(|v| walk(v, named, false)).collect()),
            other => other.clone(),
        }
    }
    let mut out = doc.clone();
    if let Some(schemas) = out["components"]["schemas"].as_object_mut() {
        for schema in schemas.values_mut() {
            *schema = walk(schema, &named, true);
        }
    }
    if let Some(paths) = out.get_mut("paths") {
        *paths = walk(paths, &named, true);
    }
    out
}

/// A map's entries in key order (whatever order the map keeps).
fn sorted(m: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped
/// (`-` and `_` kept), spaces as `-`.
pub fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// Records a heading's anchor; two headings with one anchor would make
/// links ambiguous.
fn claim(anchors: &mut BTreeSet<String>, heading: &str) {
    assert!(
        anchors.insert(anchor(heading)),
        "two sections of the HTTP reference share the anchor #{}",
        anchor(heading)
    );
}

fn text(v: &Value) -> String {
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// Prose for Markdown: `<` outside code spans becomes `&lt;`, so
/// `<version>` is shown rather than taken for an HTML tag.
fn escape_prose(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut in_code = false;
    for c in t.chars() {
        match c {
            '`' => {
                in_code = !in_code;
                out.push(c);
            }
            '<' if !in_code => out.push_str("&lt;"),
            c => out.push(c),
        }
    }
    out
}

/// Text for a table cell: one line, `|` escaped.
fn cell(t: &str) -> String {
    escape_prose(&t.split_whitespace().collect::<Vec<_>>().join(" ")).replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_read_as_phrases() {
        assert_eq!(
            type_of(&json!({"type": ["string", "null"], "format": "date-time"})),
            "string (date-time) or null"
        );
        assert_eq!(
            type_of(&json!({"type": "array", "items": {"$ref": "#/components/schemas/Line"}})),
            "array of [Line](#line)"
        );
        assert_eq!(
            type_of(&json!({"type": "integer", "minimum": 0})),
            "integer, ≥ 0"
        );
        assert_eq!(
            type_of(&json!({"enum": ["a", "b"], "type": "string"})),
            "one of \"a\", \"b\""
        );
        assert_eq!(
            type_of(&json!({"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Tier"}]})),
            "null or [Tier](#tier)"
        );
        assert_eq!(
            type_of(&json!({"type": "object", "additionalProperties": {"type": "string"}})),
            "map of string to string"
        );
        assert_eq!(
            type_of(&json!({"type": "string", "x-unknown": 1})),
            "string, x-unknown: `1`"
        );
    }

    #[test]
    fn anchors_follow_github() {
        assert_eq!(anchor("`GET /v1/deals/{id}`"), "get-v1dealsid");
        assert_eq!(anchor("Page_Deal"), "page_deal");
    }

    #[test]
    fn prose_keeps_placeholders_visible() {
        assert_eq!(
            escape_prose("send <token> or `<v>`"),
            "send &lt;token> or `<v>`"
        );
        assert_eq!(cell("a |\n b"), "a \\| b");
    }
}
