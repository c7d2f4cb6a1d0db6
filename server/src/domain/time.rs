//! Times and days on the wire. Every instant the server writes is RFC 3339
//! in UTC with exactly three fractional digits (`2026-03-15T09:30:00.000Z`),
//! so times sort as text (chrono's own serde drops a zero fraction, and
//! `…:00Z` sorts after `…:00.500Z`). An instant a client sends may be an
//! RFC 3339 time or a day (`2026-03-15`, read as 00:00 UTC of that day); a
//! day is `YYYY-MM-DD`. Bad values are refused with what is expected, never
//! with the parser's own words.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::Serializer;
use std::fmt;

/// What an instant field accepts, as error messages say it.
pub const INSTANT_EXPECTED: &str =
    "a date like 2026-04-03 or an RFC 3339 time like 2026-04-03T09:30:00Z";

/// What a day field accepts, as error messages say it.
pub const DAY_EXPECTED: &str = "a date like 2026-04-03";

/// The one text form of an instant: `2026-03-15T09:30:00.000Z`.
pub fn format(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A day written `YYYY-MM-DD` (four-digit year, two-digit month and day).
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

/// An RFC 3339 time, or a day (its first instant in UTC).
pub fn parse_instant(s: &str) -> Option<DateTime<Utc>> {
    if let Some(day) = parse_day(s) {
        return Some(day.and_time(NaiveTime::MIN).and_utc());
    }
    // RFC 3339 needs the `T` (chrono also takes a space) and a full time.
    if s.len() < 20 || !matches!(s.as_bytes()[10], b'T' | b't') {
        return None;
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Serde helpers for an instant field: written with milliseconds, read as
/// any RFC 3339 time (stored records written before keep their form).
pub mod ms {
    use super::*;

    /// Writes `2026-03-15T09:30:00.000Z`.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// Reads what [`serialize`] (or chrono) wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        d.deserialize_str(InstantVisitor)
    }
}

/// [`ms`] for an optional instant (`null` when absent).
pub mod ms_opt {
    use super::*;

    /// Writes `null` or `2026-03-15T09:30:00.000Z`.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format(t)),
            None => s.serialize_none(),
        }
    }

    /// Reads `null` or an instant.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        de_opt_instant(d)
    }
}

/// Serde helper: an instant a client sends (a time or a day).
pub fn de_instant<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    d.deserialize_str(InstantVisitor)
}

/// Serde helper: an optional instant a client sends (`null` or absent: none).
pub fn de_opt_instant<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
    d.deserialize_option(OptVisitor(InstantVisitor))
}

/// Serde helper: a day a client sends (`YYYY-MM-DD`).
pub fn de_day<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
    d.deserialize_str(DayVisitor)
}

/// Serde helper: an optional day a client sends (`null` or absent: none).
pub fn de_opt_day<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
    d.deserialize_option(OptVisitor(DayVisitor))
}

#[derive(Clone, Copy)]
struct InstantVisitor;

impl Visitor<'_> for InstantVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(INSTANT_EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_instant(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

#[derive(Clone, Copy)]
struct DayVisitor;

impl Visitor<'_> for DayVisitor {
    type Value = NaiveDate;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(DAY_EXPECTED)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_day(v).ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

/// `null` (or a missing value) as `None`, anything else through `V`.
struct OptVisitor<V>(V);

impl<'de, V: Visitor<'de> + Copy> Visitor<'de> for OptVisitor<V> {
    type Value = Option<V::Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.expecting(f)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self.0).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_are_written_with_milliseconds() {
        let t = parse_instant("2026-03-15T09:30:00Z").unwrap();
        assert_eq!(format(&t), "2026-03-15T09:30:00.000Z");
        let t = parse_instant("2026-03-15T17:30:00.5+08:00").unwrap();
        assert_eq!(format(&t), "2026-03-15T09:30:00.500Z");
    }

    #[test]
    fn a_day_is_its_first_instant_in_utc() {
        let t = parse_instant("2026-04-03").unwrap();
        assert_eq!(format(&t), "2026-04-03T00:00:00.000Z");
    }

    #[test]
    fn junk_is_refused() {
        for s in [
            "",
            "2026",
            "2026-4-3",
            "2026-04-31",
            "2026-04-03 09:30:00Z",
            "2026-04-03T09:30",
            "last year",
            "+2026-04-03",
        ] {
            assert!(parse_instant(s).is_none(), "{s}");
        }
        assert!(parse_day("2026-04-03T00:00:00Z").is_none());
        assert!(parse_day("20260403").is_none());
    }

    #[test]
    fn the_message_says_what_is_expected() {
        let e = serde_json::from_str::<Wrapper>(r#"{"at": "June"}"#).unwrap_err();
        assert!(e.to_string().contains(INSTANT_EXPECTED), "{e}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Wrapper {
        #[serde(deserialize_with = "de_instant")]
        at: DateTime<Utc>,
    }
}
