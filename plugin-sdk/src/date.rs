//! Dates and times as the interface carries them: dates as `YYYY-MM-DD`,
//! times as RFC 3339 strings in UTC.

pub use chrono::{Datelike, NaiveDate};

/// Parses a `YYYY-MM-DD` date.
///
/// ```
/// use dealflow_plugin_sdk::date;
/// assert_eq!(date::parse_date("2026-03-31").unwrap().to_string(), "2026-03-31");
/// assert!(date::parse_date("2026-02-30").is_err());
/// ```
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    if s.len() != 10 {
        return Err(format!("`{s}` is not a YYYY-MM-DD date"));
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| format!("`{s}` is not a YYYY-MM-DD date"))
}

/// The UTC calendar date of an RFC 3339 time (`2026-03-31T23:30:00Z` →
/// 2026-03-31).
pub fn utc_date_of(time: &str) -> Result<NaiveDate, String> {
    chrono::DateTime::parse_from_rfc3339(time)
        .map(|t| t.naive_utc().date())
        .map_err(|_| format!("`{time}` is not an RFC 3339 time"))
}

/// Whole days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: NaiveDate, to: NaiveDate) -> i64 {
    (to - from).num_days()
}

/// `date` moved by `days` (negative moves back); `None` out of range.
pub fn add_days(date: NaiveDate, days: i64) -> Option<NaiveDate> {
    date.checked_add_signed(chrono::TimeDelta::try_days(days)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_strictly() {
        assert!(parse_date("2026-1-05").is_err());
        assert!(parse_date("2026-01-05T00:00:00Z").is_err());
        assert_eq!(parse_date("2024-02-29").unwrap().day(), 29);
    }

    #[test]
    fn utc_date_of_converts_offsets() {
        assert_eq!(
            utc_date_of("2026-03-31T23:30:00Z").unwrap().to_string(),
            "2026-03-31"
        );
        assert_eq!(
            utc_date_of("2026-04-01T01:00:00+08:00")
                .unwrap()
                .to_string(),
            "2026-03-31"
        );
        assert!(utc_date_of("2026-03-31").is_err());
    }

    #[test]
    fn day_arithmetic() {
        let a = parse_date("2026-02-27").unwrap();
        let b = add_days(a, 3).unwrap();
        assert_eq!(b.to_string(), "2026-03-02");
        assert_eq!(days_between(a, b), 3);
        assert_eq!(days_between(b, a), -3);
    }
}
