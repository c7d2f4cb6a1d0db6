//! Constructors and accessors on the interface's records.

use rust_decimal::Decimal;

use crate::{AfterOutput, BonusLine, BonusOutput, DealInfo, GuardVerdict};

impl AfterOutput {
    /// Nothing to do after this move.
    pub fn none() -> Self {
        Self {
            tasks: Vec::new(),
            set: Vec::new(),
            events: Vec::new(),
        }
    }
}

impl GuardVerdict {
    /// Lets the move happen.
    pub fn allow() -> Self {
        Self {
            allow: true,
            reason: None,
            missing: Vec::new(),
        }
    }

    /// Refuses the move: `reason` says why, `missing` lists what the user
    /// must supply first, one sentence each.
    pub fn reject<S: Into<String>>(
        reason: impl Into<String>,
        missing: impl IntoIterator<Item = S>,
    ) -> Self {
        Self {
            allow: false,
            reason: Some(reason.into()),
            missing: missing.into_iter().map(Into::into).collect(),
        }
    }
}

impl DealInfo {
    /// The value of a deal attribute (set by after-hooks or users), if set.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl BonusLine {
    /// A bonus line of `amount` CNY for `rule`, explained.
    pub fn new(rule: impl Into<String>, amount: Decimal, explanation: impl Into<String>) -> Self {
        Self {
            rule: rule.into(),
            amount: crate::money::format(amount),
            explanation: explanation.into(),
            flag: None,
        }
    }
}

impl BonusOutput {
    /// No lines: the rule does not apply.
    pub fn none() -> Self {
        Self { lines: Vec::new() }
    }

    /// One line.
    pub fn one(line: BonusLine) -> Self {
        Self { lines: vec![line] }
    }
}
