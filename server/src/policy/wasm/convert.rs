//! Conversions between the hook records (`policy::hooks`) and the WIT
//! records of one interface version: decimals become decimal strings on
//! the way in and are parsed strictly on the way out (a malformed one is
//! the plugin's `BadOutput`); maps become lists of pairs and back; closed
//! sets go through the version's own functions (text in 1.0.0, enums in
//! 1.1.0: `stage_kind`, `tier`, `tier_text`, `segment`, `source`,
//! `subject_kind`, `role`, `record_kind`).
//!
//! One source for every version: each version module includes this file
//! as its `convert` module, with its bindings as `wit`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{record_kind, role, segment, source, stage_kind, subject_kind, tier, tier_text, wit};
use crate::policy::answer::output_decimal;
use crate::policy::hooks;
use crate::policy::PolicyError;

fn dec(d: &Decimal) -> String {
    crate::domain::money::decimal_text(d)
}

fn opt_dec(d: &Option<Decimal>) -> Option<String> {
    d.as_ref().map(dec)
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

fn pairs(m: &BTreeMap<String, String>) -> Vec<(&str, &str)> {
    m.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The hook kind in the bindings' terms.
pub(crate) fn hook_from_wit(h: wit::Hook) -> hooks::Hook {
    match h {
        wit::Hook::Guard => hooks::Hook::Guard,
        wit::Hook::After => hooks::Hook::After,
        wit::Hook::Tier => hooks::Hook::Tier,
        wit::Hook::Cadence => hooks::Hook::Cadence,
        wit::Hook::Assign => hooks::Hook::Assign,
        wit::Hook::Bonus => hooks::Hook::Bonus,
    }
}

// Hook inputs are lent to the guest, not copied: each WIT record borrows
// the host record's strings, so only decimals (rendered as text) and the
// lists of references are built per call. The `with_*` functions own that
// per-call storage and hand the finished record to `f`.

fn branch(b: &hooks::BranchInfo) -> wit::BranchInfo<'_> {
    wit::BranchInfo {
        id: &b.id,
        timezone: &b.timezone,
    }
}

fn with_deal<R>(d: &hooks::DealInfo, f: impl FnOnce(wit::DealInfo<'_>) -> R) -> R {
    let amounts: Vec<(String, String)> = d
        .lines
        .iter()
        .map(|l| (dec(&l.amount), dec(&l.cost)))
        .collect();
    let lines: Vec<wit::LineInfo<'_>> = d
        .lines
        .iter()
        .zip(&amounts)
        .map(|(l, (amount, cost))| wit::LineInfo {
            brand: &l.brand,
            brand_new: l.brand_new,
            product: &l.product,
            amount,
            cost,
        })
        .collect();
    let (needs, stages_passed, attributes) =
        (strs(&d.needs), strs(&d.stages_passed), pairs(&d.attributes));
    let (amount_total, cost_total) = (dec(&d.amount_total), dec(&d.cost_total));
    let prepayment_ratio = opt_dec(&d.prepayment_ratio);
    f(wit::DealInfo {
        id: &d.id,
        title: &d.title,
        owner: &d.owner,
        currency: &d.currency,
        needs: &needs,
        prepayment_ratio: prepayment_ratio.as_deref(),
        opened_at: &d.opened_at,
        stage: &d.stage,
        stages_passed: &stages_passed,
        signed_at: d.signed_at.as_deref(),
        lines: &lines,
        amount_total: &amount_total,
        cost_total: &cost_total,
        attributes: &attributes,
    })
}

fn customer(c: &hooks::CustomerInfo) -> Result<wit::CustomerInfo<'_>, PolicyError> {
    Ok(wit::CustomerInfo {
        id: &c.id,
        name: &c.name,
        segment: segment(&c.segment)?,
        source: source(&c.source)?,
        tier: tier(&c.tier)?,
        owner: c.owner.as_deref(),
        referred_by: c.referred_by.as_deref(),
        last_contact_at: c.last_contact_at.as_deref(),
    })
}

fn record(r: &hooks::RecordInfo) -> Result<wit::RecordInfo<'_>, PolicyError> {
    Ok(wit::RecordInfo {
        at: &r.at,
        by: &r.by,
        kind: record_kind(&r.kind)?,
        summary: &r.summary,
        has_problems: r.has_problems,
    })
}

/// Input of `guard` and `after`.
pub(crate) fn with_transition<R>(
    t: &hooks::TransitionInput,
    f: impl FnOnce(&wit::TransitionInput<'_>) -> R,
) -> Result<R, PolicyError> {
    with_deal(&t.deal, |deal| {
        let records = t
            .records
            .iter()
            .map(record)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(f(&wit::TransitionInput {
            branch: branch(&t.branch),
            deal,
            customer: customer(&t.customer)?,
            records: &records,
            from_stage: &t.from,
            to_stage: &t.to,
            to_kind: stage_kind(&t.to_kind)?,
            at: &t.at,
            actor: wit::ActorInfo {
                user: &t.actor.user,
                role: role(&t.actor.role)?,
            },
        }))
    })
}

/// Input of `tier`.
pub(crate) fn with_tier_input<R>(
    t: &hooks::TierInput,
    f: impl FnOnce(&wit::TierInput<'_>) -> R,
) -> Result<R, PolicyError> {
    let revenues: Vec<String> = t.customers.iter().map(|c| dec(&c.revenue)).collect();
    let customers = t
        .customers
        .iter()
        .zip(&revenues)
        .map(|(c, revenue)| {
            Ok(wit::RevenueInfo {
                customer_id: &c.customer_id,
                revenue,
                tier: tier(&c.tier)?,
            })
        })
        .collect::<Result<Vec<_>, PolicyError>>()?;
    Ok(f(&wit::TierInput {
        branch: branch(&t.branch),
        as_of: &t.as_of,
        customers: &customers,
    }))
}

/// Input of `cadence`.
pub(crate) fn with_cadence_input<R>(
    c: &hooks::CadenceInput,
    f: impl FnOnce(&wit::CadenceInput<'_>) -> R,
) -> Result<R, PolicyError> {
    Ok(f(&wit::CadenceInput {
        branch: branch(&c.branch),
        customer: customer(&c.customer)?,
    }))
}

/// Input of `assign`.
pub(crate) fn with_assign_input<R>(
    a: &hooks::AssignInput,
    f: impl FnOnce(&wit::AssignInput<'_>) -> R,
) -> Result<R, PolicyError> {
    let reps: Vec<_> = a
        .reps
        .iter()
        .map(|r| wit::RepLoad {
            user: &r.user,
            a_customers: r.a_customers,
            customers: r.customers,
            open_deals: r.open_deals,
        })
        .collect();
    Ok(f(&wit::AssignInput {
        branch: branch(&a.branch),
        customer: customer(&a.customer)?,
        reps: &reps,
    }))
}

/// Input of `bonus`.
pub(crate) fn with_bonus_input<R>(
    b: &hooks::BonusInput,
    f: impl FnOnce(&wit::BonusInput<'_>) -> R,
) -> Result<R, PolicyError> {
    let amounts: Vec<(String, String, Option<String>)> = b
        .orders
        .iter()
        .map(|o| {
            (
                dec(&o.amount_cny),
                dec(&o.cost_cny),
                opt_dec(&o.prepayment_ratio),
            )
        })
        .collect();
    let orders: Vec<_> = b
        .orders
        .iter()
        .zip(&amounts)
        .map(|(o, (amount_cny, cost_cny, prepayment))| wit::OrderInfo {
            deal_id: &o.deal_id,
            signed_on: &o.signed_on,
            amount_cny,
            cost_cny,
            prepayment_ratio: prepayment.as_deref(),
        })
        .collect();
    let (cny_per_usd, per_usd) = (opt_dec(&b.cny_per_usd), opt_dec(&b.per_usd));
    let customer = b.customer.as_ref().map(customer).transpose()?;
    let subject_kind = subject_kind(&b.subject_kind)?;
    let build = |deal: Option<wit::DealInfo<'_>>| {
        Ok(f(&wit::BonusInput {
            branch: branch(&b.branch),
            period: &b.period,
            period_kind: &b.period_kind,
            rep: &b.rep,
            subject_kind,
            subject: &b.subject,
            deal,
            cny_per_usd: cny_per_usd.as_deref(),
            per_usd: per_usd.as_deref(),
            customer,
            orders: &orders,
            new_customers: b.new_customers,
        }))
    };
    match &b.deal {
        Some(d) => with_deal(d, |deal| build(Some(deal))),
        None => build(None),
    }
}

/// Output of `guard`.
pub(crate) fn guard_verdict(v: wit::GuardVerdict) -> hooks::GuardVerdict {
    hooks::GuardVerdict {
        allow: v.allow,
        reason: v.reason,
        missing: v.missing,
    }
}

/// Output of `after`; each attribute may be set once.
pub(crate) fn after_output(o: wit::AfterOutput) -> Result<hooks::AfterOutput, PolicyError> {
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
pub(crate) fn tier_output(o: wit::TierOutput) -> hooks::TierOutput {
    hooks::TierOutput {
        tiers: o
            .tiers
            .into_iter()
            .map(|t| hooks::TierAssignment {
                customer_id: t.customer_id,
                tier: tier_text(t.tier),
                reason: t.reason,
            })
            .collect(),
    }
}

/// Output of `cadence`.
pub(crate) fn cadence_output(o: wit::CadenceOutput) -> hooks::CadenceOutput {
    hooks::CadenceOutput {
        every_days: o.every_days,
        overdue_after_days: o.overdue_after_days,
    }
}

/// Output of `assign`.
pub(crate) fn assign_output(o: wit::AssignOutput) -> hooks::AssignOutput {
    hooks::AssignOutput {
        owner: o.owner,
        reason: o.reason,
    }
}

/// Output of `bonus`; every amount must be a decimal.
pub(crate) fn bonus_output(o: wit::BonusOutput) -> Result<hooks::BonusOutput, PolicyError> {
    let lines = o
        .lines
        .into_iter()
        .map(|l| {
            Ok(hooks::BonusLine {
                amount: output_decimal("amount", &l.amount)?,
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
    fn an_attribute_set_twice_is_bad_output() {
        let o = wit::AfterOutput {
            tasks: vec![],
            set: vec![("a".into(), "1".into()), ("a".into(), "2".into())],
            events: vec![],
        };
        assert!(matches!(after_output(o), Err(PolicyError::BadOutput(_))));
    }
}
