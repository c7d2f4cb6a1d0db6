//! Settlement periods (`2026-03`, `2026-Q1`, `2026-H1`, `2026`) as ranges of
//! a branch's local calendar days.

use std::fmt;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;

/// How long a period is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PeriodKind {
    /// A calendar month.
    Month,
    /// A calendar quarter.
    Quarter,
    /// A calendar half-year.
    Half,
    /// A calendar year.
    Year,
}

impl PeriodKind {
    /// The name hooks see in `period_kind`.
    pub fn name(self) -> &'static str {
        match self {
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
            PeriodKind::Half => "half",
            PeriodKind::Year => "year",
        }
    }

    /// Months in one period of this kind.
    fn months(self) -> u32 {
        match self {
            PeriodKind::Month => 1,
            PeriodKind::Quarter => 3,
            PeriodKind::Half => 6,
            PeriodKind::Year => 12,
        }
    }
}

/// One calendar period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    /// Calendar year.
    pub year: i32,
    /// Month, quarter or half.
    pub kind: PeriodKind,
    /// 1-based index of the period within its year (1 for a year).
    pub index: u32,
}

impl Period {
    /// Parses `YYYY-MM`, `YYYY-Q1`…`Q4`, `YYYY-H1`/`H2` or `YYYY`.
    pub fn parse(text: &str) -> Result<Period, String> {
        let bad =
            || format!("`{text}` is not a period: use `2026-03`, `2026-Q1`, `2026-H1` or `2026`");
        let (year, rest) = match text.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (text, None),
        };
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let year: i32 = year.parse().map_err(|_| bad())?;
        if year < 1970 {
            return Err(bad());
        }
        let number = |s: &str, max: u32| {
            s.parse::<u32>()
                .ok()
                .filter(|n| (1..=max).contains(n) && !s.starts_with('+'))
        };
        let (kind, index) = match rest {
            None => (PeriodKind::Year, Some(1)),
            Some(r) if r.len() == 2 && r.starts_with('Q') => {
                (PeriodKind::Quarter, number(&r[1..], 4))
            }
            Some(r) if r.len() == 2 && r.starts_with('H') => (PeriodKind::Half, number(&r[1..], 2)),
            Some(r) if r.len() == 2 && r.bytes().all(|b| b.is_ascii_digit()) => {
                (PeriodKind::Month, number(r, 12))
            }
            Some(_) => (PeriodKind::Month, None),
        };
        let index = index.ok_or_else(bad)?;
        Ok(Period { year, kind, index })
    }

    /// The period of `kind` containing `day`.
    pub fn containing(kind: PeriodKind, day: NaiveDate) -> Period {
        let index = match kind {
            PeriodKind::Year => 1,
            _ => (day.month() - 1) / kind.months() + 1,
        };
        Period {
            year: day.year(),
            kind,
            index,
        }
    }

    /// Its first day.
    pub fn first_day(&self) -> NaiveDate {
        let month = (self.index - 1) * self.kind.months() + 1;
        NaiveDate::from_ymd_opt(self.year, month, 1).expect("a valid period starts on a real day")
    }

    /// Its last day.
    pub fn last_day(&self) -> NaiveDate {
        self.first_day()
            .checked_add_months(Months::new(self.kind.months()))
            .and_then(|d| d.pred_opt())
            .expect("a period ends on a real day")
    }

    /// Whether `day` falls in it.
    pub fn contains(&self, day: NaiveDate) -> bool {
        self.first_day() <= day && day <= self.last_day()
    }

    /// The periods of `kind` inside it, in order (none when `kind` is longer).
    pub fn parts(&self, kind: PeriodKind) -> Vec<Period> {
        if kind > self.kind {
            return Vec::new();
        }
        let first = Period::containing(kind, self.first_day());
        let count = self.kind.months() / kind.months();
        (0..count)
            .map(|i| Period {
                index: first.index + i,
                ..first
            })
            .collect()
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PeriodKind::Month => write!(f, "{}-{:02}", self.year, self.index),
            PeriodKind::Quarter => write!(f, "{}-Q{}", self.year, self.index),
            PeriodKind::Half => write!(f, "{}-H{}", self.year, self.index),
            PeriodKind::Year => write!(f, "{}", self.year),
        }
    }
}

/// The branch-local calendar day of an instant.
pub fn local_day(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    at.with_timezone(&tz).date_naive()
}

/// The first instant of a local day, in UTC (the earliest when a DST change
/// makes midnight ambiguous or skipped).
pub fn day_start(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    use chrono::TimeZone;
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => t.to_utc(),
        // Midnight skipped by a DST jump: the day starts an hour later.
        chrono::LocalResult::None => tz
            .from_local_datetime(&(midnight + chrono::Duration::hours(1)))
            .earliest()
            .map_or_else(|| midnight.and_utc(), |t| t.to_utc()),
    }
}

/// The last day of the 3-calendar-month window that starts on `first`
/// (docs/business-rules.md §5.2: a first order on 15 Jan counts orders up to and
/// including 14 Apr). When the same day does not exist three months on (a
/// first order on 30 Nov), the window runs to the end of that month.
pub fn window_last_day(first: NaiveDate) -> NaiveDate {
    let on = first
        .checked_add_months(Months::new(3))
        .expect("a window ends on a real day");
    if on.day() < first.day() {
        on
    } else {
        on.pred_opt().expect("a real day")
    }
}

/// The earliest first-order day whose window can close inside `period`
/// (a safe lower bound for an index scan; filter with [`window_last_day`]).
pub fn earliest_window_start(period: &Period) -> NaiveDate {
    period
        .first_day()
        .checked_sub_months(Months::new(4))
        .expect("a real day")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn periods_parse_and_span_their_days() {
        let cases = [
            ("2026-03", "2026-03-01", "2026-03-31"),
            ("2026-02", "2026-02-01", "2026-02-28"),
            ("2024-02", "2024-02-01", "2024-02-29"),
            ("2026-Q1", "2026-01-01", "2026-03-31"),
            ("2026-Q4", "2026-10-01", "2026-12-31"),
            ("2026-H2", "2026-07-01", "2026-12-31"),
            ("2026", "2026-01-01", "2026-12-31"),
        ];
        for (text, first, last) in cases {
            let p = Period::parse(text).unwrap();
            assert_eq!(p.to_string(), text);
            assert_eq!((p.first_day(), p.last_day()), (d(first), d(last)), "{text}");
        }
        for bad in [
            "",
            "2026-13",
            "2026-00",
            "2026-Q5",
            "2026-Q0",
            "2026-H3",
            "26-03",
            "2026-3",
            "2026-q1",
            "2026-03-01",
            "1969",
            "2026-+1",
            "abcd",
        ] {
            assert!(Period::parse(bad).is_err(), "`{bad}` should be refused");
        }
    }

    #[test]
    fn parts_and_containing_periods() {
        let y = Period::parse("2026").unwrap();
        let halves: Vec<String> = y
            .parts(PeriodKind::Half)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(halves, ["2026-H1", "2026-H2"]);
        let q2 = Period::parse("2026-Q2").unwrap();
        let months: Vec<String> = q2
            .parts(PeriodKind::Month)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(months, ["2026-04", "2026-05", "2026-06"]);
        assert!(q2.parts(PeriodKind::Half).is_empty());
        assert_eq!(
            Period::containing(PeriodKind::Quarter, d("2026-09-30")).to_string(),
            "2026-Q3"
        );
        assert_eq!(
            Period::containing(PeriodKind::Half, d("2026-07-01")).to_string(),
            "2026-H2"
        );
    }

    #[test]
    fn the_three_month_window_ends_the_day_before_the_same_date_three_months_on() {
        assert_eq!(window_last_day(d("2026-01-15")), d("2026-04-14"));
        assert_eq!(window_last_day(d("2026-01-01")), d("2026-03-31"));
        // No 30 Feb or 31 Apr: the window runs to the end of that month.
        assert_eq!(window_last_day(d("2025-11-30")), d("2026-02-28"));
        assert_eq!(window_last_day(d("2026-01-31")), d("2026-04-30"));
        assert_eq!(window_last_day(d("2026-02-28")), d("2026-05-27"));
        let q2 = Period::parse("2026-Q2").unwrap();
        assert!(window_last_day(earliest_window_start(&q2)) < q2.first_day());
    }

    #[test]
    fn local_days_follow_the_branch_time_zone() {
        let at: DateTime<Utc> = "2026-03-31T20:00:00Z".parse().unwrap();
        assert_eq!(local_day(at, chrono_tz::Asia::Shanghai), d("2026-04-01"));
        assert_eq!(local_day(at, chrono_tz::UTC), d("2026-03-31"));
        let start = day_start(d("2026-04-01"), chrono_tz::Asia::Shanghai);
        assert_eq!(start.to_rfc3339(), "2026-03-31T16:00:00+00:00");
    }
}
