//! The checks every hook answer passes, once, whichever runtime gave it:
//! a runtime turns its values into the output record ([`super::hooks`]) and
//! [`HookOutput::checked`] decides whether the record is an answer at all.
//! A script and a plugin that return the same thing are accepted or refused
//! alike, with the same message.

use rust_decimal::Decimal;

use super::hooks::{
    AfterOutput, AssignOutput, BonusOutput, CadenceOutput, GuardVerdict, TierOutput,
};
use super::PolicyError;

/// A hook's output record, checked before anything acts on it.
pub trait HookOutput: Sized {
    /// The record itself when it is a usable answer, else `BadOutput`
    /// saying what is wrong. By default every record of the right shape is.
    fn checked(self) -> Result<Self, PolicyError> {
        Ok(self)
    }
}

impl HookOutput for GuardVerdict {
    /// A rejection must say why: the reason is what the user reads.
    fn checked(self) -> Result<Self, PolicyError> {
        if !self.allow && self.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            return Err(PolicyError::BadOutput(
                "a rejection must give a `reason`".into(),
            ));
        }
        Ok(self)
    }
}

// The other outputs' rules depend on the data they act on (a tier only for
// a customer of the branch, an attribute's name and size), and the services
// check them there.
impl HookOutput for AfterOutput {}
impl HookOutput for TierOutput {}
impl HookOutput for CadenceOutput {}
impl HookOutput for AssignOutput {}
impl HookOutput for BonusOutput {}

/// The subject kinds a wasm plugin declares for its `bonus` hook, checked:
/// each at most once, and only by a plugin that has the hook. `None`:
/// every subject.
pub fn checked_subjects(
    subjects: Option<Vec<String>>,
    hooks: &[super::hooks::Hook],
) -> Result<Option<Vec<String>>, PolicyError> {
    let Some(subjects) = subjects else {
        return Ok(None);
    };
    if !hooks.contains(&super::hooks::Hook::Bonus) {
        return Err(PolicyError::Interface(
            "`bonus-subjects()` declares subjects but there is no `bonus` hook".into(),
        ));
    }
    for (i, s) in subjects.iter().enumerate() {
        if subjects[..i].contains(s) {
            return Err(PolicyError::Interface(format!(
                "`bonus-subjects()` lists `{s}` twice"
            )));
        }
    }
    Ok(Some(subjects))
}

/// A decimal a policy returned as text (a bonus amount): exactly a plain
/// decimal string, no surrounding spaces, exponents or junk. Both runtimes
/// read returned decimal text through this one function.
pub fn output_decimal(field: &str, s: &str) -> Result<Decimal, PolicyError> {
    let bad = || PolicyError::BadOutput(format!("`{field}` is not a decimal number: {s:?}"));
    if s.trim() != s {
        return Err(bad());
    }
    crate::domain::money::parse_decimal(s).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_needs_a_reason_that_is_not_blank() {
        for reason in [None, Some(""), Some("  \n")] {
            let v = GuardVerdict {
                allow: false,
                reason: reason.map(str::to_string),
                missing: vec![],
            };
            match v.checked() {
                Err(PolicyError::BadOutput(m)) => assert_eq!(m, "a rejection must give a `reason`"),
                other => panic!("{reason:?}: {other:?}"),
            }
        }
        assert!(GuardVerdict::default().checked().is_err());
        let allowed = GuardVerdict {
            allow: true,
            ..GuardVerdict::default()
        };
        assert!(allowed.checked().is_ok());
    }

    #[test]
    fn returned_decimals_are_read_strictly() {
        assert_eq!(
            output_decimal("amount", "-12.50").unwrap(),
            Decimal::new(-125, 1)
        );
        for bad in ["", "1e3", " 300", "300 ", "3,00", "abc", "NaN"] {
            assert!(
                matches!(
                    output_decimal("amount", bad),
                    Err(PolicyError::BadOutput(_))
                ),
                "{bad:?}"
            );
        }
    }
}
