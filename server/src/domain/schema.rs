//! The OpenAPI shapes of the field kinds the validators enforce, built from
//! the same limits, so the published document says exactly what a request
//! may hold: a generated client never sends what the server refuses, and
//! the server never refuses what the document allows. Used through
//! `#[schema(schema_with = …)]` and `#[param(schema_with = …)]`.
//!
//! Patterns are ECMA-262, as JSON Schema reads them. Whitespace is Rust's
//! (`char::is_whitespace`, what `str::trim` removes) and control characters
//! are Unicode's `Cc` (`char::is_control`), spelled out as classes because
//! the regex dialects disagree on `\s` and have no `\p{Cc}` in common.

use utoipa::openapi::schema::{
    AdditionalProperties, Array, ArrayBuilder, Object, ObjectBuilder, OneOfBuilder, Schema,
    SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, Ref, RefOr};

use super::currency::CODES;
use super::money::MAX_SCALE;
use super::validate::{
    MAX_FOLLOWUPS, MAX_LINES, MAX_NAME, MAX_NEEDS, MAX_PAGE, MAX_STAGES, MAX_TEXT, MAX_USER,
};

/// What `str::trim` removes.
const SPACE: &str =
    r"\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";
/// Control characters free text refuses (all but tab, line feed, return).
const TEXT_CONTROL: &str = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f";
/// Every control character.
const CONTROL: &str = r"\u0000-\u001f\u007f-\u009f";

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn nullable(o: ObjectBuilder) -> RefOr<Schema> {
    let mut o = o.build();
    if let Some(values) = o.enum_values.as_mut() {
        values.push(serde_json::Value::Null);
    }
    let mut types = match o.schema_type.clone() {
        SchemaType::Type(t) => vec![t],
        SchemaType::Array(ts) => ts,
        SchemaType::AnyValue => return RefOr::T(Schema::Object(o)),
    };
    types.push(Type::Null);
    o.schema_type = SchemaType::Array(types);
    RefOr::T(Schema::Object(o))
}

/// The pattern of a text `validate::text` accepts: something besides
/// whitespace, no control characters but tab and line breaks inside.
fn text_pattern() -> String {
    format!(
        "^[{SPACE}]*[^{SPACE}{TEXT_CONTROL}](?:[^{TEXT_CONTROL}]*[^{SPACE}{TEXT_CONTROL}])?[{SPACE}]*$"
    )
}

fn text_of(max: usize) -> ObjectBuilder {
    string()
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(text_pattern()))
}

/// An id the admin chooses (branches, brands, policy names): `[a-z0-9-]{1,40}`.
pub fn slug() -> Object {
    string()
        .pattern(Some("^[a-z0-9-]{1,40}$"))
        .min_length(Some(1))
        .max_length(Some(40))
        .build()
}

/// A short required text (names, titles): `validate::name`.
pub fn name() -> Object {
    text_of(MAX_NAME).build()
}

/// A long required text (summaries, reasons): `validate::text`.
pub fn text() -> Object {
    text_of(MAX_TEXT).build()
}

/// A long optional text (`validate::opt_text`): null, blank (read as
/// absent) or a text.
pub fn opt_text() -> RefOr<Schema> {
    let pattern = format!(
        "^[{SPACE}]*(?:[^{SPACE}{TEXT_CONTROL}](?:[^{TEXT_CONTROL}]*[^{SPACE}{TEXT_CONTROL}])?[{SPACE}]*)?$"
    );
    nullable(string().max_length(Some(MAX_TEXT)).pattern(Some(pattern)))
}

/// A long optional text that must not be blank when given (an override's
/// reason): null, or a text.
pub fn opt_required_text() -> RefOr<Schema> {
    nullable(text_of(MAX_TEXT))
}

/// A user name (`validate::user`): 1 to 64 characters, no control
/// characters, no whitespace at either end.
pub fn user() -> Object {
    string()
        .min_length(Some(1))
        .max_length(Some(MAX_USER))
        .pattern(Some(user_pattern()))
        .build()
}

fn user_pattern() -> String {
    format!("^[^{SPACE}{CONTROL}](?:[^{CONTROL}]*[^{SPACE}{CONTROL}])?$")
}

/// An optional user name (null: none).
pub fn opt_user() -> RefOr<Schema> {
    nullable(
        string()
            .min_length(Some(1))
            .max_length(Some(MAX_USER))
            .pattern(Some(user_pattern())),
    )
}

/// An active ISO 4217 code.
pub fn currency() -> Object {
    string()
        .enum_values(Some(CODES.split_ascii_whitespace()))
        .build()
}

/// A currency an FX rate is recorded for: any ISO 4217 code but the base, USD.
pub fn fx_currency() -> Object {
    string()
        .enum_values(Some(CODES.split_ascii_whitespace().filter(|c| *c != "USD")))
        .build()
}

/// Decimal text as `money::parse_decimal` reads it, with the bounds of
/// `money::check_amount`: at most 10^12 and `places` places, at most 40
/// characters once trimmed.
fn decimal_pattern(allow_zero: bool, places: u32) -> String {
    let under = places - 1;
    // 1 to 999,999,999,999 with up to six places, 10^12 itself, or a
    // fraction below 1; at most ten padding zeros each side keeps the
    // trimmed text within 40 characters.
    let positive = format!(
        r"\+?0{{0,10}}(?:[1-9][0-9]{{0,11}}(?:\.[0-9]{{0,{places}}}0{{0,10}})?|1000000000000(?:\.0{{0,10}})?|\.[0-9]{{0,{under}}}[1-9]0{{0,10}})"
    );
    let body = if allow_zero {
        format!(r"(?:{positive}|[+-]?(?:0{{1,10}}\.?0{{0,10}}|\.0{{1,10}}))")
    } else {
        positive
    };
    format!("^[{SPACE}]*{body}[{SPACE}]*$")
}

fn money_of(allow_zero: bool, places: u32, what: &str) -> OneOfBuilder {
    let min = if allow_zero { 0 } else { 1 };
    OneOfBuilder::new()
        .item(
            string()
                .pattern(Some(decimal_pattern(allow_zero, places)))
                .description(Some(format!(
                    "{what} as a decimal string (`\"10000.01\"`): at most 10^12, {places} places"
                ))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(min))
                .maximum(Some(1_000_000_000_000i64)),
        )
}

/// A positive amount of money (a line's `amount`).
pub fn amount() -> RefOr<Schema> {
    RefOr::T(Schema::OneOf(
        money_of(false, MAX_SCALE, "more than 0").build(),
    ))
}

/// An amount of money that may be zero (a line's `cost`).
pub fn cost() -> RefOr<Schema> {
    RefOr::T(Schema::OneOf(
        money_of(true, MAX_SCALE, "0 or more").build(),
    ))
}

/// Units of a currency per USD: more than 0, at most 10^12 (the server
/// takes up to 28 significant digits; the document promises 16 places).
pub fn per_usd() -> RefOr<Schema> {
    RefOr::T(Schema::OneOf(money_of(false, 16, "more than 0").build()))
}

/// A share from 0 to 1 (a deal's `prepayment_ratio`), or null to clear it.
pub fn ratio() -> RefOr<Schema> {
    let alternatives = [
        r"\+?0{1,10}(?:\.[0-9]{0,27})?",
        r"\+?\.[0-9]{1,27}",
        r"\+?0{0,10}1(?:\.0{0,27})?",
        r"-(?:0{1,10}\.?0{0,27}|\.0{1,27})",
    ]
    .join("|");
    let pattern = format!("^[{SPACE}]*(?:{alternatives})[{SPACE}]*$");
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(string().pattern(Some(pattern)))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(1)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some("A share from 0 to 1 as a decimal string (`\"0.3\"`)"))
            .build(),
    ))
}

/// A day, `YYYY-MM-DD`.
pub fn day() -> Object {
    string()
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .pattern(Some(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"))
        .build()
}

/// An optional day.
pub fn opt_day() -> RefOr<Schema> {
    nullable(
        string()
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
            .pattern(Some(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")),
    )
}

/// An instant a client sends: an RFC 3339 time, or a day (00:00 UTC).
/// Business times start in 1970.
fn instant_of() -> OneOfBuilder {
    OneOfBuilder::new()
        .item(
            string()
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .pattern(Some(
                    r"^(?:19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}[Tt]",
                )),
        )
        .item(
            string()
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
                .pattern(Some(r"^(?:19[7-9][0-9]|[2-9][0-9]{3})-[0-9]{2}-[0-9]{2}$")),
        )
        .description(Some(
            "An RFC 3339 time (`2026-04-03T09:30:00Z`) or a day (`2026-04-03`, 00:00 UTC)",
        ))
}

/// An optional instant a client sends (null: now, or none).
pub fn opt_instant() -> RefOr<Schema> {
    RefOr::T(Schema::OneOf(
        instant_of()
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .build(),
    ))
}

/// A settlement period: `2026-03`, `2026-Q1`, `2026-H1` or `2026`, from 1970.
pub fn period() -> Object {
    string()
        .pattern(Some(
            r"^(?:19[7-9][0-9]|[2-9][0-9]{3})(?:-(?:0[1-9]|1[0-2]|Q[1-4]|H[12]))?$",
        ))
        .build()
}

/// An IANA time zone name the server knows.
pub fn timezone() -> RefOr<Schema> {
    nullable(string().enum_values(Some(chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()))))
}

/// A page size: 1 to `max`.
pub fn limit_up_to(max: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(max as f64))
        .build()
}

/// An optional short text: null (unchanged) or a name.
pub fn opt_name() -> RefOr<Schema> {
    nullable(text_of(MAX_NAME))
}

/// An optional currency: null (unchanged) or an ISO 4217 code.
pub fn opt_currency() -> RefOr<Schema> {
    nullable(string().enum_values(Some(CODES.split_ascii_whitespace())))
}

/// A deal's needs: one text, a list of up to `MAX_NEEDS` texts, or null.
pub fn needs() -> RefOr<Schema> {
    RefOr::T(Schema::OneOf(
        OneOfBuilder::new()
            .item(text())
            .item(ArrayBuilder::new().items(text()).max_items(Some(MAX_NEEDS)))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some("One need, or a list of them"))
            .build(),
    ))
}

/// A deal's lines: 1 to `MAX_LINES`.
pub fn lines() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("Line"))
        .min_items(Some(1))
        .max_items(Some(MAX_LINES))
        .build()
}

/// Optional replacement lines (null: unchanged).
pub fn opt_lines() -> RefOr<Schema> {
    let mut a = lines();
    a.schema_type = SchemaType::Array(vec![Type::Array, Type::Null]);
    RefOr::T(Schema::Array(a))
}

/// Attribute changes: keys of 1 to 64 `[A-Za-z0-9_.-]`, values a text of
/// at most 1,000 characters without control characters, or null to remove.
pub fn attributes() -> RefOr<Schema> {
    let value = nullable(
        string()
            .max_length(Some(1000))
            .pattern(Some(format!("^[^{CONTROL}]*$"))),
    );
    let value = match value {
        RefOr::T(s) => s,
        RefOr::Ref(_) => unreachable!("built inline"),
    };
    nullable(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property_names(Some(string().pattern(Some("^[A-Za-z0-9_.-]{1,64}$"))))
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(value)))),
    )
}

/// A policy's parameters: at most 32 keys `[a-z][a-z0-9_]*` of at most 40
/// characters, text values of at most 256 characters without control
/// characters (`policy::config::check` holds the server to it).
pub fn policy_config() -> RefOr<Schema> {
    nullable(
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .max_properties(Some(32))
            .property_names(Some(string().pattern(Some("^[a-z][a-z0-9_]{0,39}$"))))
            .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::Object(
                string()
                    .max_length(Some(256))
                    .pattern(Some(format!("^[^{CONTROL}]*$")))
                    .build(),
            ))))),
    )
}

/// A policy's scope: `global` or `branch:<id>`.
pub fn policy_scope() -> Object {
    string()
        .pattern(Some("^(?:global|branch:[a-z0-9-]{1,40})$"))
        .build()
}

/// A stage id: `[a-z0-9_-]{1,40}`.
pub fn stage_id() -> Object {
    string().pattern(Some("^[a-z0-9_-]{1,40}$")).build()
}

/// A pipeline's stages: 1 to `MAX_STAGES`.
pub fn stages() -> Array {
    ArrayBuilder::new()
        .items(Ref::from_schema_name("Stage"))
        .min_items(Some(1))
        .max_items(Some(MAX_STAGES))
        .build()
}

/// A page size of a list: 1 to 500 (50 when absent).
pub fn limit() -> Object {
    limit_up_to(MAX_PAGE)
}

/// The follow-ups' size: 1 to 10,000 (1,000 when absent).
pub fn followup_limit() -> Object {
    limit_up_to(MAX_FOLLOWUPS)
}

/// A cursor: the `next_cursor` of a previous page (hex).
pub fn cursor() -> Object {
    string().pattern(Some("^(?:[0-9a-fA-F]{2})*$")).build()
}

/// A statement's format.
pub fn statement_format() -> Object {
    string().enum_values(Some(["json", "csv"])).build()
}

/// Whether a settlement is read with its lines.
pub fn lines_wanted() -> Object {
    string().enum_values(Some(["all", "none"])).build()
}

/// `derived` (a body's schema as derived from its type, so fields added
/// later stay in) with `properties` replaced and `required` added.
fn variant(derived: &Object, properties: &[(&str, RefOr<Schema>)], required: &[&str]) -> Schema {
    let mut o = derived.clone();
    o.description = None;
    for (name, schema) in properties {
        o.properties.insert((*name).to_string(), schema.clone());
    }
    for r in required {
        if !o.required.iter().any(|x| x == r) {
            o.required.push((*r).to_string());
        }
    }
    Schema::Object(o)
}

fn one_of_strings(values: &[&str]) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        string().enum_values(Some(values.iter().copied())).build(),
    ))
}

fn null() -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new().schema_type(Type::Null).build(),
    ))
}

fn of(o: Object) -> RefOr<Schema> {
    RefOr::T(Schema::Object(o))
}

/// Body of `POST /v1/tokens` from its derived schema: an admin token has
/// no branch, a manager's or rep's names one (a relation no derived schema
/// says).
pub fn new_token(derived: &Object) -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(variant(
                derived,
                &[("role", one_of_strings(&["admin"])), ("branch", null())],
                &[],
            ))
            .item(variant(
                derived,
                &[
                    ("role", one_of_strings(&["manager", "rep"])),
                    ("branch", of(slug())),
                ],
                &["branch"],
            ))
            .description(Some(
                "An admin token (no branch), or a manager's or rep's token for a branch",
            ))
            .build(),
    )
}

/// Body of `POST /v1/policies` from its derived schema: a rhai script in
/// `source`, or a base64 WebAssembly module in `module`, as `runtime` says.
pub fn new_policy(derived: &Object) -> Schema {
    // Canonical base64 with padding (what the server's decoder accepts):
    // the last symbol before padding carries no stray bits.
    let base64 = format!(
        "^[{SPACE}]*(?:[A-Za-z0-9+/]{{4}})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{{2}}[AEIMQUYcgkosw048]=)?[{SPACE}]*$"
    );
    let runtime = |runtime: &str, field: &str, value: RefOr<Schema>, other: &str| {
        variant(
            derived,
            &[
                ("name", of(slug())),
                ("scope", of(policy_scope())),
                ("runtime", one_of_strings(&[runtime])),
                (field, value),
                (other, null()),
            ],
            &[field],
        )
    };
    Schema::OneOf(
        OneOfBuilder::new()
            .item(runtime("rhai", "source", of(string().build()), "module"))
            .item(runtime(
                "wasm",
                "module",
                of(string().pattern(Some(base64)).build()),
                "source",
            ))
            .description(Some(
                "A new policy version: a rhai `source`, or a base64 WebAssembly `module`",
            ))
            .build(),
    )
}
