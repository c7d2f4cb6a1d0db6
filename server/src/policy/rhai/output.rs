//! A script's answer read back as the hook's output record: the plain
//! shapes of the hot hooks (`guard`, `bonus`) read straight from their maps,
//! everything else through JSON (exact for decimals).

use rhai::{Dynamic, ImmutableString, Map};
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::policy::answer::output_decimal;
use crate::policy::hooks::{BonusLine, BonusOutput, GuardVerdict};
use crate::policy::PolicyError;

/// A hook's answer as its output type, through JSON (exact for decimals).
pub(super) fn decode<O: DeserializeOwned>(out: &Dynamic) -> Result<O, PolicyError> {
    let json = to_json(out).map_err(PolicyError::BadOutput)?;
    serde_json::from_value(json).map_err(|e| PolicyError::BadOutput(e.to_string()))
}

/// A guard's answer read straight from its map: guards run on every move,
/// and the JSON round trip cost as much as a short script. Anything but the
/// plain shape (`allow` bool, `reason` string or `()`, `missing` strings)
/// returns `None` and takes [`decode`], which gives the same value or the
/// error message.
pub(super) fn guard_verdict(out: &Dynamic) -> Option<GuardVerdict> {
    let text = |d: &Dynamic| d.read_lock::<ImmutableString>().map(|s| s.to_string());
    let map = out.read_lock::<Map>()?;
    let mut verdict = GuardVerdict::default();
    let mut has_allow = false;
    for (key, value) in map.iter() {
        match key.as_str() {
            "allow" => {
                verdict.allow = value.as_bool().ok()?;
                has_allow = true;
            }
            "reason" if value.is_unit() => verdict.reason = None,
            "reason" => verdict.reason = Some(text(value)?),
            "missing" => {
                verdict.missing = value
                    .read_lock::<rhai::Array>()?
                    .iter()
                    .map(text)
                    .collect::<Option<_>>()?;
            }
            _ => return None,
        }
    }
    has_allow.then_some(verdict)
}

/// A bonus answer read straight from its maps: a settlement calls `bonus`
/// once per subject, and most answers are `#{ lines: [] }`. Only the plain
/// shape (`rule` and `explanation` strings, `amount` a decimal, an integer
/// or a decimal string, `flag` a string or `()`); anything else returns
/// `None` and takes [`decode_bonus`], which gives the same value or the error.
pub(super) fn bonus_output(out: &Dynamic) -> Option<BonusOutput> {
    let map = out.read_lock::<Map>()?;
    let mut output = BonusOutput::default();
    for (key, value) in map.iter() {
        if key.as_str() != "lines" {
            return None;
        }
        output.lines = value
            .read_lock::<rhai::Array>()?
            .iter()
            .map(bonus_line)
            .collect::<Option<_>>()?;
    }
    Some(output)
}

/// A bonus answer through JSON: the shape checked by serde, amounts read
/// by [`output_decimal`] like a plugin's (a number, or exactly a decimal
/// string).
pub(super) fn decode_bonus(out: &Dynamic) -> Result<BonusOutput, PolicyError> {
    /// A line as the script wrote it, its amount not yet read.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        rule: String,
        amount: Value,
        explanation: String,
        #[serde(default)]
        flag: Option<String>,
    }
    /// The answer as the script wrote it.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Answer {
        #[serde(default)]
        lines: Vec<Line>,
    }
    let answer: Answer = decode(out)?;
    let lines = answer
        .lines
        .into_iter()
        .map(|l| {
            let amount = match &l.amount {
                Value::String(s) => output_decimal("amount", s)?,
                Value::Number(n) => output_decimal("amount", &n.to_string())?,
                other => {
                    return Err(PolicyError::BadOutput(format!(
                        "`amount` is not a decimal number: {other}"
                    )))
                }
            };
            Ok(BonusLine {
                rule: l.rule,
                amount,
                explanation: l.explanation,
                flag: l.flag,
            })
        })
        .collect::<Result<_, PolicyError>>()?;
    Ok(BonusOutput { lines })
}

/// One line of [`bonus_output`].
fn bonus_line(line: &Dynamic) -> Option<BonusLine> {
    let text = |d: &Dynamic| d.read_lock::<ImmutableString>().map(|s| s.to_string());
    let map = line.read_lock::<Map>()?;
    let (mut rule, mut amount, mut explanation, mut flag) = (None, None, None, None);
    for (key, value) in map.iter() {
        match key.as_str() {
            "rule" => rule = Some(text(value)?),
            "amount" => {
                amount = Some(if let Some(d) = value.read_lock::<Decimal>() {
                    d.normalize()
                } else if let Ok(i) = value.as_int() {
                    Decimal::from(i)
                } else {
                    output_decimal("amount", &text(value)?).ok()?
                })
            }
            "explanation" => explanation = Some(text(value)?),
            "flag" if value.is_unit() => flag = None,
            "flag" => flag = Some(text(value)?),
            _ => return None,
        }
    }
    Some(BonusLine {
        rule: rule?,
        amount: amount?,
        explanation: explanation?,
        flag,
    })
}

/// rhai → JSON, exactly: decimals become decimal strings.
pub(super) fn to_json(d: &Dynamic) -> Result<Value, String> {
    if d.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = d.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = d.as_int() {
        return Ok(Value::from(i));
    }
    if let Some(x) = d.clone().try_cast::<Decimal>() {
        return Ok(Value::String(x.normalize().to_string()));
    }
    if d.is_string() {
        return Ok(Value::String(d.clone().into_string().unwrap_or_default()));
    }
    if d.is_char() {
        return Ok(Value::String(
            d.as_char().map(String::from).unwrap_or_default(),
        ));
    }
    if d.is_array() {
        let a = d
            .clone()
            .into_array()
            .map_err(|t| format!("not an array: {t}"))?;
        return a
            .iter()
            .map(to_json)
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if d.is_map() {
        let m = d.clone().cast::<Map>();
        let mut o = serde_json::Map::new();
        for (k, v) in &m {
            o.insert(k.to_string(), to_json(v)?);
        }
        return Ok(Value::Object(o));
    }
    Err(format!(
        "a value of type `{}` cannot be returned",
        d.type_name()
    ))
}
