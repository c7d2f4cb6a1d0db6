//! Conversions between the hook records (`policy::hooks`) and the WIT
//! records of the bindings: decimals become decimal strings on the way in
//! and are parsed strictly on the way out (a malformed one is the plugin's
//! `BadOutput`); maps become lists of pairs and back.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::bindings::types as wit;
use crate::policy::hooks;
use crate::policy::PolicyError;

fn dec(d: &Decimal) -> String {
    d.to_string()
}

fn opt_dec(d: &Option<Decimal>) -> Option<String> {
    d.as_ref().map(dec)
}

fn pairs(m: &BTreeMap<String, String>) -> Vec<(String, String)> {
    m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The hook kind in the bindings' terms.
pub(super) fn hook_from_wit(h: wit::Hook) -> hooks::Hook {
    match h {
        wit::Hook::Guard => hooks::Hook::Guard,
        wit::Hook::After => hooks::Hook::After,
        wit::Hook::Tier => hooks::Hook::Tier,
        wit::Hook::Cadence => hooks::Hook::Cadence,
        wit::Hook::Assign => hooks::Hook::Assign,
        wit::Hook::Bonus => hooks::Hook::Bonus,
    }
}

fn branch(b: &hooks::BranchInfo) -> wit::BranchInfo {
    wit::BranchInfo {
        id: b.id.clone(),
        timezone: b.timezone.clone(),
    }
}

fn line(l: &hooks::LineInfo) -> wit::LineInfo {
    wit::LineInfo {
        brand: l.brand.clone(),
        brand_new: l.brand_new,
        product: l.product.clone(),
        amount: dec(&l.amount),
        cost: dec(&l.cost),
    }
}

fn deal(d: &hooks::DealInfo) -> wit::DealInfo {
    wit::DealInfo {
        id: d.id.clone(),
        title: d.title.clone(),
        owner: d.owner.clone(),
        currency: d.currency.clone(),
        needs: d.needs.clone(),
        prepayment_ratio: opt_dec(&d.prepayment_ratio),
        opened_at: d.opened_at.clone(),
        stage: d.stage.clone(),
        stages_passed: d.stages_passed.clone(),
        signed_at: d.signed_at.clone(),
        lines: d.lines.iter().map(line).collect(),
        amount_total: dec(&d.amount_total),
        cost_total: dec(&d.cost_total),
        attributes: pairs(&d.attributes),
    }
}

fn customer(c: &hooks::CustomerInfo) -> wit::CustomerInfo {
    wit::CustomerInfo {
        id: c.id.clone(),
        name: c.name.clone(),
        segment: c.segment.clone(),
        source: c.source.clone(),
        tier: c.tier.clone(),
        owner: c.owner.clone(),
        referred_by: c.referred_by.clone(),
        last_contact_at: c.last_contact_at.clone(),
    }
}

fn record(r: &hooks::RecordInfo) -> wit::RecordInfo {
    wit::RecordInfo {
        at: r.at.clone(),
        by: r.by.clone(),
        kind: r.kind.clone(),
        summary: r.summary.clone(),
        has_problems: r.has_problems,
    }
}

/// Input of `guard` and `after`.
pub(super) fn transition(t: &hooks::TransitionInput) -> wit::TransitionInput {
    wit::TransitionInput {
        branch: branch(&t.branch),
        deal: deal(&t.deal),
        customer: customer(&t.customer),
        records: t.records.iter().map(record).collect(),
        from_stage: t.from.clone(),
        to_stage: t.to.clone(),
        to_kind: t.to_kind.clone(),
        at: t.at.clone(),
        actor: wit::ActorInfo {
            user: t.actor.user.clone(),
            role: t.actor.role.clone(),
        },
    }
}

/// Input of `tier`.
pub(super) fn tier_input(t: &hooks::TierInput) -> wit::TierInput {
    wit::TierInput {
        branch: branch(&t.branch),
        as_of: t.as_of.clone(),
        customers: t
            .customers
            .iter()
            .map(|c| wit::RevenueInfo {
                customer_id: c.customer_id.clone(),
                revenue: dec(&c.revenue),
                tier: c.tier.clone(),
            })
            .collect(),
    }
}

/// Input of `cadence`.
pub(super) fn cadence_input(c: &hooks::CadenceInput) -> wit::CadenceInput {
    wit::CadenceInput {
        branch: branch(&c.branch),
        customer: customer(&c.customer),
    }
}

/// Input of `assign`.
pub(super) fn assign_input(a: &hooks::AssignInput) -> wit::AssignInput {
    wit::AssignInput {
        branch: branch(&a.branch),
        customer: customer(&a.customer),
        reps: a
            .reps
            .iter()
            .map(|r| wit::RepLoad {
                user: r.user.clone(),
                a_customers: r.a_customers,
                customers: r.customers,
                open_deals: r.open_deals,
            })
            .collect(),
    }
}

/// Input of `bonus`.
pub(super) fn bonus_input(b: &hooks::BonusInput) -> wit::BonusInput {
    wit::BonusInput {
        branch: branch(&b.branch),
        period: b.period.clone(),
        period_kind: b.period_kind.clone(),
        rep: b.rep.clone(),
        subject_kind: b.subject_kind.clone(),
        subject: b.subject.clone(),
        deal: b.deal.as_ref().map(deal),
        cny_per_usd: opt_dec(&b.cny_per_usd),
        per_usd: opt_dec(&b.per_usd),
        customer: b.customer.as_ref().map(customer),
        orders: b
            .orders
            .iter()
            .map(|o| wit::OrderInfo {
                deal_id: o.deal_id.clone(),
                signed_on: o.signed_on.clone(),
                amount_cny: dec(&o.amount_cny),
                cost_cny: dec(&o.cost_cny),
                prepayment_ratio: opt_dec(&o.prepayment_ratio),
            })
            .collect(),
        new_customers: b.new_customers,
    }
}

/// Parses a decimal the plugin returned: exactly a plain decimal string (no
/// surrounding spaces, exponents or junk).
fn parse_output_decimal(field: &str, s: &str) -> Result<Decimal, PolicyError> {
    let bad = || PolicyError::BadOutput(format!("`{field}` is not a decimal number: {s:?}"));
    if s.trim() != s {
        return Err(bad());
    }
    crate::domain::money::parse_decimal(s).map_err(|_| bad())
}

/// Output of `guard`; a rejection must say why.
pub(super) fn guard_verdict(v: wit::GuardVerdict) -> Result<hooks::GuardVerdict, PolicyError> {
    if !v.allow && v.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(PolicyError::BadOutput(
            "a rejection must give a `reason`".into(),
        ));
    }
    Ok(hooks::GuardVerdict {
        allow: v.allow,
        reason: v.reason,
        missing: v.missing,
    })
}

/// Output of `after`; each attribute may be set once.
pub(super) fn after_output(o: wit::AfterOutput) -> Result<hooks::AfterOutput, PolicyError> {
    let mut set = BTreeMap::new();
    for (k, v) in o.set {
        if set.contains_key(&k) {
            return Err(PolicyError::BadOutput(format!(
                "attribute `{k}` is set twice"
            )));
        }
        set.insert(k, v);
    }
    Ok(hooks::AfterOutput {
        tasks: o
            .tasks
            .into_iter()
            .map(|t| hooks::TaskSpec {
                title: t.title,
                kind: t.kind,
                due_in_days: t.due_in_days,
                assignee: t.assignee,
            })
            .collect(),
        set,
        events: o
            .events
            .into_iter()
            .map(|e| hooks::EventSpec {
                kind: e.kind,
                message: e.message,
            })
            .collect(),
    })
}

/// Output of `tier`.
pub(super) fn tier_output(o: wit::TierOutput) -> hooks::TierOutput {
    hooks::TierOutput {
        tiers: o
            .tiers
            .into_iter()
            .map(|t| hooks::TierAssignment {
                customer_id: t.customer_id,
                tier: t.tier,
                reason: t.reason,
            })
            .collect(),
    }
}

/// Output of `cadence`.
pub(super) fn cadence_output(o: wit::CadenceOutput) -> hooks::CadenceOutput {
    hooks::CadenceOutput {
        every_days: o.every_days,
        overdue_after_days: o.overdue_after_days,
    }
}

/// Output of `assign`.
pub(super) fn assign_output(o: wit::AssignOutput) -> hooks::AssignOutput {
    hooks::AssignOutput {
        owner: o.owner,
        reason: o.reason,
    }
}

/// Output of `bonus`; every amount must be a decimal.
pub(super) fn bonus_output(o: wit::BonusOutput) -> Result<hooks::BonusOutput, PolicyError> {
    let lines = o
        .lines
        .into_iter()
        .map(|l| {
            Ok(hooks::BonusLine {
                amount: parse_output_decimal("amount", &l.amount)?,
                rule: l.rule,
                explanation: l.explanation,
                flag: l.flag,
            })
        })
        .collect::<Result<_, PolicyError>>()?;
    Ok(hooks::BonusOutput { lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(amount: &str) -> wit::BonusLine {
        wit::BonusLine {
            rule: "r".into(),
            amount: amount.into(),
            explanation: "e".into(),
            flag: None,
        }
    }

    #[test]
    fn bonus_amounts_are_parsed_strictly() {
        let ok = bonus_output(wit::BonusOutput {
            lines: vec![line("300"), line("-12.50")],
        })
        .unwrap();
        assert_eq!(ok.lines[0].amount, Decimal::from(300));
        assert_eq!(ok.lines[1].amount, Decimal::new(-125, 1));
        for bad in ["", "1e3", " 300", "300 ", "3,00", "abc", "NaN"] {
            let err = bonus_output(wit::BonusOutput {
                lines: vec![line(bad)],
            })
            .unwrap_err();
            assert!(matches!(err, PolicyError::BadOutput(_)), "{bad:?}: {err:?}");
        }
    }

    #[test]
    fn a_rejection_without_reason_is_bad_output() {
        let v = wit::GuardVerdict {
            allow: false,
            reason: Some("  ".into()),
            missing: vec![],
        };
        assert!(matches!(guard_verdict(v), Err(PolicyError::BadOutput(_))));
    }

    #[test]
    fn an_attribute_set_twice_is_bad_output() {
        let o = wit::AfterOutput {
            tasks: vec![],
            set: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            events: vec![],
        };
        assert!(matches!(after_output(o), Err(PolicyError::BadOutput(_))));
    }
}
