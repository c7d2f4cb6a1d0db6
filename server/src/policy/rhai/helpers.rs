//! The helper library scripts get on top of rhai's packages: decimals and
//! money rounding and grouping, dates and times, a native `contains` on
//! string lists, running totals for ranked lists, and the assertions of
//! example tests.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Position};
use rust_decimal::Decimal;

use super::output::to_json;

type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

fn runtime_error(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

fn parse_time(s: &str) -> RhaiResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| runtime_error(format!("`{s}` is not an RFC 3339 time")))
}

fn parse_date(s: &str) -> RhaiResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| runtime_error(format!("`{s}` is not a YYYY-MM-DD date")))
}

/// Registers the helpers scripts get: decimals, dates and test assertions.
pub(super) fn register(engine: &mut Engine) {
    // `list.contains(text)` and `text in list`, compared natively: the
    // package's generic version calls `==` through the engine for every
    // element, which made it the most expensive line of a typical guard.
    // Same answers: a string equals a string, or a char equal to it.
    engine.register_fn(
        "contains",
        |list: &mut rhai::Array, text: ImmutableString| {
            list.iter().any(|d| {
                d.read_lock::<ImmutableString>().map_or_else(
                    || d.as_char().is_ok_and(|c| text.chars().eq([c])),
                    |s| *s == text,
                )
            })
        },
    );
    engine.register_fn("dec", |s: ImmutableString| -> RhaiResult<Decimal> {
        crate::domain::money::parse_decimal(&s).map_err(runtime_error)
    });
    engine.register_fn("dec", |i: rhai::INT| Decimal::from(i));
    engine.register_fn("dec", |d: Decimal| d);
    engine.register_fn(
        "round_money",
        |d: Decimal, places: rhai::INT| -> RhaiResult<Decimal> {
            let places =
                u32::try_from(places).map_err(|_| runtime_error("places must be 0 to 28"))?;
            Ok(d.round_dp_with_strategy(
                places.min(28),
                rust_decimal::RoundingStrategy::MidpointAwayFromZero,
            ))
        },
    );
    engine.register_fn("money", |d: Decimal| d.normalize().to_string());
    engine.register_fn("money", |i: rhai::INT| i.to_string());
    engine.register_fn("grouped", |d: Decimal| grouped(d));
    engine.register_fn("grouped", |i: rhai::INT| grouped(Decimal::from(i)));
    engine.register_fn("running_totals", running_totals);
    engine.register_fn("join", join);
    register_config(engine);
    engine.register_fn(
        "days_between",
        |a: ImmutableString, b: ImmutableString| -> RhaiResult<rhai::INT> {
            let (a, b) = (parse_time(&a)?, parse_time(&b)?);
            Ok((b - a).num_days())
        },
    );
    engine.register_fn(
        "date_of",
        |ts: ImmutableString, tz: ImmutableString| -> RhaiResult<String> {
            let t = parse_time(&ts)?;
            let tz: chrono_tz::Tz = tz
                .parse()
                .map_err(|_| runtime_error(format!("`{tz}` is not a time zone")))?;
            Ok(t.with_timezone(&tz).date_naive().to_string())
        },
    );
    engine.register_fn(
        "add_days",
        |d: ImmutableString, n: rhai::INT| -> RhaiResult<String> {
            let d = parse_date(&d)?;
            d.checked_add_signed(chrono::Duration::days(n))
                .map(|d| d.to_string())
                .ok_or_else(|| runtime_error("date out of range"))
        },
    );
    engine.register_fn(
        "add_months",
        |d: ImmutableString, n: rhai::INT| -> RhaiResult<String> {
            let d = parse_date(&d)?;
            let m = Months::new(
                u32::try_from(n.unsigned_abs()).map_err(|_| runtime_error("too many months"))?,
            );
            let r = if n >= 0 {
                d.checked_add_months(m)
            } else {
                d.checked_sub_months(m)
            };
            r.map(|d| d.to_string())
                .ok_or_else(|| runtime_error("date out of range"))
        },
    );
    engine.register_fn(
        "days_between_dates",
        |a: ImmutableString, b: ImmutableString| -> RhaiResult<rhai::INT> {
            Ok((parse_date(&b)? - parse_date(&a)?).num_days())
        },
    );
    engine.register_fn("year_of", |d: ImmutableString| -> RhaiResult<rhai::INT> {
        Ok(rhai::INT::from(parse_date(&d)?.year()))
    });
    engine.register_fn(
        "assert",
        |ok: bool, msg: ImmutableString| -> RhaiResult<()> {
            if ok {
                Ok(())
            } else {
                Err(runtime_error(format!("assertion failed: {msg}")))
            }
        },
    );
    engine.register_fn("assert_eq", |a: Dynamic, b: Dynamic| -> RhaiResult<()> {
        let (ja, jb) = (to_json(&a).ok(), to_json(&b).ok());
        if ja.is_some() && ja == jb {
            Ok(())
        } else {
            Err(runtime_error(format!("assertion failed: {a:?} != {b:?}")))
        }
    });
}

/// `d` without trailing zeros, its whole part grouped by thousands:
/// `100000` → `100,000`, `-71000.070` → `-71,000.07`.
fn grouped(d: Decimal) -> String {
    let text = d.normalize().to_string();
    let (sign, digits) = text
        .strip_prefix('-')
        .map_or(("", text.as_str()), |t| ("-", t));
    let (whole, fraction) = digits
        .split_once('.')
        .map_or((digits, None), |(w, f)| (w, Some(f)));
    let mut out = String::with_capacity(text.len() + whole.len() / 3);
    out.push_str(sign);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = fraction {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// `config(key)`: the policy's parameter `key` as text, `()` when unset;
/// `config_or(key, default)`: the parameter read as the type of `default`
/// (a decimal, an integer, a bool or a string), `default` when unset, an
/// error naming the parameter when it does not read as that type.
fn register_config(engine: &mut Engine) {
    use crate::policy::config::current;
    engine.register_fn("config", |key: ImmutableString| -> Dynamic {
        current(&key).map_or(Dynamic::UNIT, Dynamic::from)
    });
    fn read<T>(
        key: &str,
        default: T,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
    ) -> RhaiResult<T> {
        match current(key) {
            None => Ok(default),
            Some(v) => parse(&v).ok_or_else(|| {
                runtime_error(format!("config `{key}` is `{v}`, which is not {what}"))
            }),
        }
    }
    engine.register_fn(
        "config_or",
        |key: ImmutableString, default: Decimal| -> RhaiResult<Decimal> {
            read(&key, default, "a decimal number", |v| {
                crate::domain::money::parse_decimal(v).ok()
            })
        },
    );
    engine.register_fn(
        "config_or",
        |key: ImmutableString, default: rhai::INT| -> RhaiResult<rhai::INT> {
            read(&key, default, "an integer", |v| v.parse().ok())
        },
    );
    engine.register_fn(
        "config_or",
        |key: ImmutableString, default: bool| -> RhaiResult<bool> {
            read(&key, default, "`true` or `false`", |v| v.parse().ok())
        },
    );
    engine.register_fn(
        "config_or",
        |key: ImmutableString, default: ImmutableString| -> RhaiResult<ImmutableString> {
            read(&key, default, "text", |v| Some(v.into()))
        },
    );
}

/// The items of `list` as text, `separator` between them: strings as they
/// are, other values as they print (`join([300, 500], " / ")` is
/// `300 / 500`).
fn join(list: rhai::Array, separator: ImmutableString) -> String {
    let mut out = String::new();
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.push_str(&separator);
        }
        match item.read_lock::<ImmutableString>() {
            Some(s) => out.push_str(&s),
            None => out.push_str(&item.to_string()),
        }
    }
    out
}

/// For `values` (decimals or integers) ranked highest first, one map per
/// value: `above`, the sum of every larger value (equal values share it, so
/// ties fall on the same side of a boundary), and `through`, the running
/// sum up to and including this one. Built natively in one pass: a script
/// building the same list element by element re-measures the whole list on
/// every step (rhai checks a growing value's size after each change).
fn running_totals(values: rhai::Array) -> RhaiResult<rhai::Array> {
    let mut out = rhai::Array::with_capacity(values.len());
    let (mut through, mut above, mut previous) = (Decimal::ZERO, Decimal::ZERO, None);
    for v in &values {
        let value = if let Some(d) = v.read_lock::<Decimal>() {
            *d
        } else if let Ok(i) = v.as_int() {
            Decimal::from(i)
        } else {
            return Err(runtime_error(format!(
                "running_totals takes decimals, not a {}",
                v.type_name()
            )));
        };
        if previous.is_some_and(|p| p < value) {
            return Err(runtime_error(
                "running_totals takes values ranked highest first",
            ));
        }
        if previous != Some(value) {
            above = through;
        }
        through += value;
        previous = Some(value);
        let mut m = rhai::Map::new();
        m.insert("above".into(), Dynamic::from_decimal(above));
        m.insert("through".into(), Dynamic::from_decimal(through));
        out.push(Dynamic::from_map(m));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_by_thousands_keeps_sign_and_fraction() {
        for (d, want) in [
            (Decimal::new(100_000, 0), "100,000"),
            (Decimal::new(1_000, 0), "1,000"),
            (Decimal::new(999, 0), "999"),
            (Decimal::new(-7_100_007_000, 5), "-71,000.07"),
            (Decimal::new(1_000_001, 2), "10,000.01"),
            (Decimal::ZERO, "0"),
        ] {
            assert_eq!(grouped(d), want);
        }
    }

    #[test]
    fn running_totals_share_the_sum_above_among_ties() {
        let values: rhai::Array = [40, 40, 10, 10, 0]
            .into_iter()
            .map(Dynamic::from_int)
            .collect();
        let totals = running_totals(values).unwrap();
        let read = |i: usize, k: &str| {
            totals[i].read_lock::<rhai::Map>().unwrap()[k]
                .read_lock::<Decimal>()
                .map(|d| *d)
                .unwrap()
        };
        let above: Vec<Decimal> = (0..5).map(|i| read(i, "above")).collect();
        let through: Vec<Decimal> = (0..5).map(|i| read(i, "through")).collect();
        assert_eq!(above, [0, 0, 80, 80, 100].map(Decimal::from));
        assert_eq!(through, [40, 80, 90, 100, 100].map(Decimal::from));
        let unranked: rhai::Array = [1, 2].into_iter().map(Dynamic::from_int).collect();
        assert!(running_totals(unranked).is_err());
    }
}
