//! Large-deal guard: a deal whose total exceeds the threshold (in the deal's
//! currency: the policy's parameter `threshold` when set, else
//! [`THRESHOLD`]) may enter a `won` stage only once a manager has approved
//! it, recorded as the deal attribute `manager_approved` = `"yes"`.
//!
//! Every other move is allowed. The rejection names the threshold, the total
//! and exactly what is missing.
//!
//! Its companion `handover-review` books the review once such a deal is won.

use dealflow_plugin_sdk::money::{self, Decimal};
use dealflow_plugin_sdk::{export_policy, GuardVerdict, PluginError, StageKind, TransitionInput};

/// Totals above this (in the deal's currency) need a manager's approval,
/// unless the policy's parameter `threshold` says otherwise.
pub const THRESHOLD: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// The deal attribute that records the approval.
pub const APPROVAL_ATTRIBUTE: &str = "manager_approved";

/// The threshold in force: the parameter `threshold`, else [`THRESHOLD`].
pub fn threshold() -> Result<Decimal, PluginError> {
    match dealflow_plugin_sdk::config("threshold") {
        Some(t) => Ok(money::parse_field("the parameter threshold", &t)?),
        None => Ok(THRESHOLD),
    }
}

/// The guard hook.
pub fn guard(input: TransitionInput) -> Result<GuardVerdict, PluginError> {
    if input.to_kind != StageKind::Won {
        return Ok(GuardVerdict::allow());
    }
    let deal = &input.deal;
    let total = money::parse_field("deal.amount_total", &deal.amount_total)?;
    let limit = threshold()?;
    if total <= limit {
        return Ok(GuardVerdict::allow());
    }
    if deal.attribute(APPROVAL_ATTRIBUTE) == Some("yes") {
        return Ok(GuardVerdict::allow());
    }
    let (cur, shown, limit) = (
        &deal.currency,
        money::display(total, 2),
        money::display(limit, 0),
    );
    Ok(GuardVerdict::reject(
        format!(
            "deal {} totals {shown} {cur}, over the large-deal threshold of {limit} {cur}: \
             it may enter `{}` only with a manager's approval",
            deal.id, input.to_stage
        ),
        [format!(
            "a manager's approval: the deal attribute `{APPROVAL_ATTRIBUTE}` set to \"yes\" (it is {})",
            match deal.attribute(APPROVAL_ATTRIBUTE) {
                Some(v) => format!("\"{v}\""),
                None => "not set".to_string(),
            }
        )],
    ))
}

export_policy! { guard: guard }

#[cfg(test)]
mod tests {
    use super::*;
    use dealflow_plugin_sdk::testing;

    fn moving(total: &str, to_kind: StageKind, approval: Option<&str>) -> TransitionInput {
        let mut deal = testing::deal(
            "D-7",
            "CNY",
            vec![testing::line("volvo", false, total, "1")],
        );
        if let Some(v) = approval {
            deal.attributes.push((APPROVAL_ATTRIBUTE.into(), v.into()));
        }
        testing::transition(deal, "won", to_kind)
    }

    #[test]
    fn at_the_threshold_a_deal_is_won_without_approval() {
        assert!(
            guard(moving("1000000", StageKind::Won, None))
                .unwrap()
                .allow
        );
        assert!(
            guard(moving("1000000.00", StageKind::Won, None))
                .unwrap()
                .allow
        );
    }

    #[test]
    fn a_cent_over_the_threshold_needs_approval() {
        let v = guard(moving("1000000.01", StageKind::Won, None)).unwrap();
        assert!(!v.allow);
        let reason = v.reason.unwrap();
        assert!(reason.contains("1,000,000.01 CNY"), "{reason}");
        assert!(reason.contains("1,000,000 CNY"), "{reason}");
        assert_eq!(v.missing.len(), 1);
        assert!(v.missing[0].contains("manager_approved"), "{:?}", v.missing);
        assert!(v.missing[0].contains("not set"), "{:?}", v.missing);
    }

    #[test]
    fn approval_lets_a_large_deal_be_won() {
        assert!(
            guard(moving("5000000", StageKind::Won, Some("yes")))
                .unwrap()
                .allow
        );
    }

    #[test]
    fn anything_but_yes_is_no_approval() {
        for v in ["no", "YES", "", "true"] {
            let verdict = guard(moving("5000000", StageKind::Won, Some(v))).unwrap();
            assert!(!verdict.allow, "{v}");
            assert!(
                verdict.missing[0].contains(&format!("\"{v}\"")),
                "{:?}",
                verdict.missing
            );
        }
    }

    #[test]
    fn moves_to_open_or_lost_stages_are_not_guarded() {
        assert!(
            guard(moving("5000000", StageKind::Open, None))
                .unwrap()
                .allow
        );
        assert!(
            guard(moving("5000000", StageKind::Lost, None))
                .unwrap()
                .allow
        );
    }

    #[test]
    fn a_malformed_total_is_an_error() {
        let mut input = moving("5000000", StageKind::Won, None);
        input.deal.amount_total = "5e6".into();
        assert!(guard(input).unwrap_err().message().contains("amount_total"));
    }

    #[test]
    fn the_threshold_is_a_parameter() {
        testing::set_config(&[("threshold", "2000000")]);
        assert!(
            guard(moving("2000000", StageKind::Won, None))
                .unwrap()
                .allow
        );
        let v = guard(moving("2000000.01", StageKind::Won, None)).unwrap();
        assert!(v.reason.unwrap().contains("2,000,000 CNY"));
        testing::set_config(&[("threshold", "lots")]);
        let e = guard(moving("1", StageKind::Won, None)).unwrap_err();
        assert!(e.message().contains("threshold"), "{e}");
    }
}
