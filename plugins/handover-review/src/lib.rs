//! Handover review: once a deal whose total exceeds [`THRESHOLD`] (in the
//! deal's currency) is won, its owner gets a task to hold a handover review
//! with the delivery team within [`REVIEW_DAYS`] days, the deal is marked
//! `large_deal` = `"yes"`, and a `large_deal_won` event goes out. Smaller
//! deals and other moves need nothing. An `after` hook only: pair it with
//! `large-deal-guard`, which asks for a manager's approval before the win.

use dealflow_plugin_sdk::money::{self, Decimal};
use dealflow_plugin_sdk::{
    export_policy, AfterOutput, EventSpec, StageKind, TaskSpec, TransitionInput,
};

/// Totals above this (in the deal's currency) get a handover review.
pub const THRESHOLD: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);

/// Days the owner has to hold the handover review of a won large deal.
pub const REVIEW_DAYS: i64 = 3;

/// The after hook: a won large deal gets a handover review task.
pub fn after(input: TransitionInput) -> Result<AfterOutput, String> {
    let deal = &input.deal;
    if input.to_kind != StageKind::Won {
        return Ok(AfterOutput::none());
    }
    let total = money::parse_field("deal.amount_total", &deal.amount_total)?;
    if total <= THRESHOLD {
        return Ok(AfterOutput::none());
    }
    Ok(AfterOutput {
        tasks: vec![TaskSpec {
            title: format!(
                "Handover review of large deal {} ({} {})",
                deal.id,
                money::display(total, 2),
                deal.currency
            ),
            kind: Some("handover_review".into()),
            due_in_days: REVIEW_DAYS,
            assignee: Some(deal.owner.clone()),
        }],
        set: vec![("large_deal".into(), "yes".into())],
        events: vec![EventSpec {
            kind: "large_deal_won".into(),
            message: format!("large deal {} won", deal.id),
        }],
    })
}

export_policy! { after: after }

#[cfg(test)]
mod tests {
    use super::*;
    use dealflow_plugin_sdk::testing;

    fn moving(total: &str, to_kind: StageKind) -> TransitionInput {
        let deal = testing::deal(
            "D-7",
            "CNY",
            vec![testing::line("volvo", false, total, "1")],
        );
        testing::transition(deal, "won", to_kind)
    }

    #[test]
    fn a_won_large_deal_gets_a_handover_review_for_its_owner() {
        let out = after(moving("1000000.01", StageKind::Won)).unwrap();
        assert_eq!(out.tasks.len(), 1);
        assert_eq!(out.tasks[0].due_in_days, REVIEW_DAYS);
        assert_eq!(out.tasks[0].assignee.as_deref(), Some("rep1"));
        assert!(
            out.tasks[0].title.contains("1,000,000.01 CNY"),
            "{}",
            out.tasks[0].title
        );
        assert_eq!(out.set, vec![("large_deal".to_string(), "yes".to_string())]);
    }

    #[test]
    fn small_or_unwon_deals_need_no_review() {
        assert_eq!(
            after(moving("1000000", StageKind::Won)).unwrap(),
            AfterOutput::none()
        );
        assert_eq!(
            after(moving("5000000", StageKind::Open)).unwrap(),
            AfterOutput::none()
        );
    }
}
