//! When a customer is due and overdue for contact (docs/business-rules.md §2): due when
//! its last communication record is older than its cadence, overdue the
//! cadence's grace days after that.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::policy::hooks::CadenceOutput;

/// Where a customer stands against its cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DueStatus {
    /// Not yet due.
    Upcoming,
    /// Due for contact.
    Due,
    /// Past due by more than the grace days.
    Overdue,
}

/// A customer's contact dates under its cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DueDates {
    /// From when it is due (strictly after this instant).
    pub due_at: DateTime<Utc>,
    /// From when it is overdue (strictly after this instant).
    pub overdue_at: DateTime<Utc>,
}

impl DueDates {
    /// The customer's dates: counted from its last contact, or from its
    /// creation when it was never contacted; `None` without a cadence.
    pub fn of(
        cadence: &CadenceOutput,
        last_contact_at: Option<DateTime<Utc>>,
        created_at: DateTime<Utc>,
    ) -> Option<DueDates> {
        if cadence.every_days <= 0 {
            return None;
        }
        let from = last_contact_at.unwrap_or(created_at);
        let due_at = from.checked_add_signed(Duration::try_days(cadence.every_days)?)?;
        let overdue_at =
            due_at.checked_add_signed(Duration::try_days(cadence.overdue_after_days.max(0))?)?;
        Some(DueDates { due_at, overdue_at })
    }

    /// Its status at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> DueStatus {
        if now > self.overdue_at {
            DueStatus::Overdue
        } else if now > self.due_at {
            DueStatus::Due
        } else {
            DueStatus::Upcoming
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn due_after_the_cadence_overdue_after_the_grace_days() {
        let a = CadenceOutput {
            every_days: 30,
            overdue_after_days: 7,
        };
        let d = DueDates::of(
            &a,
            Some(at("2026-01-01T10:00:00Z")),
            at("2025-01-01T00:00:00Z"),
        )
        .unwrap();
        assert_eq!(d.status(at("2026-01-31T10:00:00Z")), DueStatus::Upcoming);
        assert_eq!(d.status(at("2026-01-31T10:00:00.001Z")), DueStatus::Due);
        assert_eq!(d.status(at("2026-02-07T10:00:00Z")), DueStatus::Due);
        assert_eq!(d.status(at("2026-02-07T10:00:01Z")), DueStatus::Overdue);
        let none = CadenceOutput::default();
        assert_eq!(DueDates::of(&none, None, at("2026-01-01T00:00:00Z")), None);
    }
}
