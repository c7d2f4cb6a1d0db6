//! The helper library scripts get on top of rhai's packages: decimals and
//! money rounding, dates and times, a native `contains` on string lists and
//! the assertions of example tests.

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
