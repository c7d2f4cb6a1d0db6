//! The default tiering rule (docs/business-rules.md §1) in Rust, answering exactly what
//! `policies/pareto-tiering.rhai` answers.

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::policy::hooks::{Hook, TierAssignment, TierInput, TierOutput};
use crate::policy::{Executable, Limits, PolicyError};

/// Share of the branch's revenue tier A reaches.
const A_SHARE: Decimal = Decimal::from_parts(80, 0, 0, false, 2);
/// Share tiers A and B reach together.
const B_SHARE: Decimal = Decimal::from_parts(95, 0, 0, false, 2);

/// Over the trailing revenue, highest first: A = the smallest top set whose
/// cumulative revenue reaches 80 % of the total, B = the following ones up
/// to 95 %, C = the rest and every customer without revenue; a customer
/// tied with the last one of a tier joins it.
pub fn pareto(input: &TierInput) -> TierOutput {
    let total: Decimal = input.customers.iter().map(|c| c.revenue).sum();
    let mut order: Vec<_> = input.customers.iter().collect();
    order.sort_by(|a, b| {
        b.revenue
            .cmp(&a.revenue)
            .then_with(|| a.customer_id.cmp(&b.customer_id))
    });
    let (a_limit, b_limit) = (total * A_SHARE, total * B_SHARE);
    let (mut cumulative, mut last_a, mut last_b) = (Decimal::ZERO, None, None);
    let tiers = order
        .into_iter()
        .map(|c| {
            let mut tier = "C";
            if c.revenue > Decimal::ZERO {
                if cumulative < a_limit || last_a == Some(c.revenue) {
                    tier = "A";
                    last_a = Some(c.revenue);
                } else if cumulative < b_limit || last_b == Some(c.revenue) {
                    tier = "B";
                    last_b = Some(c.revenue);
                }
            }
            cumulative += c.revenue;
            let share = if total > Decimal::ZERO {
                (cumulative * Decimal::ONE_HUNDRED / total).round_dp(2)
            } else {
                Decimal::ZERO
            };
            TierAssignment {
                customer_id: c.customer_id.clone(),
                tier: tier.into(),
                reason: Some(format!(
                    "revenue {} CNY; cumulative {} % of {} CNY (A to 80 %, B to 95 %)",
                    c.revenue.round_dp(2),
                    share,
                    total.round_dp(2)
                )),
            }
        })
        .collect();
    TierOutput { tiers }
}

/// [`pareto`] as a policy implementing only `tier`.
pub struct NativeTiering;

impl Executable for NativeTiering {
    fn hooks(&self) -> &[Hook] {
        &[Hook::Tier]
    }

    fn run_tier(&self, input: &Arc<TierInput>, _: &Limits) -> Result<TierOutput, PolicyError> {
        Ok(pareto(input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::hooks::{BranchInfo, RevenueInfo};
    use crate::policy::PolicyCalls;

    fn tiers(pairs: &[(&str, i64)]) -> Vec<(String, String)> {
        let input = TierInput {
            branch: BranchInfo {
                id: "b".into(),
                timezone: "UTC".into(),
            },
            as_of: "2026-11-27".into(),
            customers: pairs
                .iter()
                .map(|(id, r)| RevenueInfo {
                    customer_id: (*id).into(),
                    revenue: Decimal::from(*r),
                    tier: "C".into(),
                })
                .collect(),
        };
        let mut out: Vec<_> = pareto(&input)
            .tiers
            .into_iter()
            .map(|t| (t.customer_id, t.tier))
            .collect();
        out.sort();
        out
    }

    fn t(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    }

    /// The shipped script and this rule agree on generated branches full
    /// of ties, zeros and exact boundary shares.
    #[test]
    fn the_default_script_agrees_with_the_native_rule() {
        use crate::policy::rhai::RhaiHost;
        let script = RhaiHost::new(Limits::default())
            .compile(include_str!("../../../policies/pareto-tiering.rhai"))
            .unwrap();
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let amounts = [
            "0", "1", "5", "10", "15", "40", "80", "0.01", "33.33", "1000000",
        ];
        for case in 0..300 {
            let n = 1 + next(40);
            let customers: Vec<(String, i64)> = (0..n)
                .map(|i| (format!("c{i:03}"), next(amounts.len() as u64) as i64))
                .collect();
            let input = Arc::new(TierInput {
                branch: BranchInfo {
                    id: "b".into(),
                    timezone: "UTC".into(),
                },
                as_of: "2026-11-27".into(),
                customers: customers
                    .iter()
                    .map(|(id, k)| RevenueInfo {
                        customer_id: id.clone(),
                        revenue: amounts[*k as usize].parse().unwrap(),
                        tier: "C".into(),
                    })
                    .collect(),
            });
            let tiers = |out: TierOutput| {
                let mut v: Vec<_> = out
                    .tiers
                    .into_iter()
                    .map(|t| (t.customer_id, t.tier))
                    .collect();
                v.sort();
                v
            };
            let from_script = tiers(script.tier(&input, &Limits::default().bulk()).unwrap());
            assert_eq!(
                from_script,
                tiers(pareto(&input)),
                "case {case}: {customers:?}"
            );
        }
    }

    /// A branch of 60,000 customers tiers under the bulk limits, as
    /// natively.
    #[test]
    fn a_large_branch_tiers_under_the_bulk_limits() {
        use crate::policy::rhai::RhaiHost;
        let script = RhaiHost::new(Limits::default())
            .compile(include_str!("../../../policies/pareto-tiering.rhai"))
            .unwrap();
        let input = Arc::new(TierInput {
            branch: BranchInfo {
                id: "b".into(),
                timezone: "UTC".into(),
            },
            as_of: "2026-11-27".into(),
            customers: (0..60_000i64)
                .map(|i| RevenueInfo {
                    customer_id: format!("cus_{i:012}"),
                    revenue: Decimal::new((i * 7919) % 100_003, 2),
                    tier: "C".into(),
                })
                .collect(),
        });
        let out = script.tier(&input, &Limits::default().bulk()).unwrap();
        assert_eq!(out.tiers.len(), 60_000);
        let mut native = pareto(&input).tiers;
        let mut scripted = out.tiers;
        native.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        scripted.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
        assert!(native
            .iter()
            .zip(&scripted)
            .all(|(n, s)| n.customer_id == s.customer_id && n.tier == s.tier));
    }

    #[test]
    fn boundaries_ties_and_no_revenue() {
        assert_eq!(
            tiers(&[("a", 80), ("b", 15), ("c", 5)]),
            t(&[("a", "A"), ("b", "B"), ("c", "C")])
        );
        assert_eq!(
            tiers(&[("a", 40), ("b", 40), ("c", 10), ("d", 10)]),
            t(&[("a", "A"), ("b", "A"), ("c", "B"), ("d", "B")])
        );
        assert_eq!(tiers(&[("a", 100), ("z", 0)]), t(&[("a", "A"), ("z", "C")]));
        assert_eq!(tiers(&[]), t(&[]));
    }
}
