//! New-brand product sale bonus (docs/business-rules.md §5.1), per signed contract.
//!
//! Only the deal's new-brand lines count. Their amount is converted to USD
//! at the rate of the signing date (`per_usd`: units of the deal currency per
//! USD, so `amount_usd = amount / per_usd`); their gross margin is
//! `(Σ amount − Σ cost) / Σ amount`. The bonus, in CNY:
//!
//! | new-brand amount (USD) | bonus (CNY) |
//! |---|---|
//! | ≤ 10,000, or margin < 10 % | 0 |
//! | > 10,000 and ≤ 30,000 | 300 |
//! | > 30,000 and ≤ 60,000 | 500 |
//! | > 60,000 and ≤ 100,000 | 800 |
//! | > 100,000 | 1,000 |
//!
//! Thresholds are compared exactly (`amount > t × per_usd`,
//! `(amount − cost) × 10 ≥ amount`), never on rounded quotients. A deal with
//! new-brand lines always gets one line, 0 CNY included, whose explanation
//! names the inputs, the tier hit and the thresholds; a deal without any (or
//! a subject that is not a deal) gets none; the plugin declares that it
//! settles deals only (`bonus_subjects`), so a settlement asks it about no
//! other subject.

use dealflow_plugin_sdk::money::{self, Decimal};
use dealflow_plugin_sdk::{
    export_policy, BonusInput, BonusLine, BonusOutput, LineInfo, SubjectKind,
};

/// The rule's name on bonus lines.
pub const RULE: &str = "new_brand_sale";

/// Least gross margin, in percent, of the new-brand lines.
pub const MIN_MARGIN_PERCENT: i64 = 10;

/// The tiers: (amount in USD the new-brand part must exceed, bonus in CNY),
/// highest first.
pub const TIERS: [(i64, i64); 4] = [
    (100_000, 1_000),
    (60_000, 800),
    (30_000, 500),
    (10_000, 300),
];

/// The bonus hook.
pub fn bonus(input: BonusInput) -> Result<BonusOutput, String> {
    let Some(deal) = input
        .deal
        .as_ref()
        .filter(|_| input.subject_kind == SubjectKind::Deal)
    else {
        return Ok(BonusOutput::none());
    };
    let new_lines: Vec<&LineInfo> = deal.lines.iter().filter(|l| l.brand_new).collect();
    if new_lines.is_empty() {
        return Ok(BonusOutput::none());
    }
    let (mut amount, mut cost) = (Decimal::ZERO, Decimal::ZERO);
    for l in &new_lines {
        amount += money::parse_field("line amount", &l.amount)?;
        cost += money::parse_field("line cost", &l.cost)?;
    }
    let per_usd = match input.per_usd.as_deref() {
        Some(rate) => money::parse_field("per_usd", rate)?,
        None if deal.currency == "USD" => Decimal::ONE,
        None => {
            return Err(format!(
                "no {} per USD rate on the signing date",
                deal.currency
            ))
        }
    };
    if per_usd <= Decimal::ZERO {
        return Err(format!("per_usd must be positive, not {per_usd}"));
    }

    let margin_ok = amount > Decimal::ZERO
        && (amount - cost) * Decimal::from(100) >= amount * Decimal::from(MIN_MARGIN_PERCENT);
    let tier = TIERS
        .iter()
        .find(|(over, _)| amount > Decimal::from(*over) * per_usd);
    let pay = match tier {
        Some((_, cny)) if margin_ok => Decimal::from(*cny),
        _ => Decimal::ZERO,
    };

    let mut brands: Vec<&str> = new_lines.iter().map(|l| l.brand.as_str()).collect();
    brands.sort_unstable();
    brands.dedup();
    let cur = &deal.currency;
    let usd = amount / per_usd;
    let margin = if amount > Decimal::ZERO {
        (amount - cost) / amount * Decimal::from(100)
    } else {
        Decimal::ZERO
    };
    let inputs = format!(
        "deal {}: new-brand lines ({}) amount {} {cur}, cost {} {cur}; at {} {cur} per USD that is {} USD; margin {} %",
        deal.id,
        brands.join(", "),
        money::display(amount, 2),
        money::display(cost, 2),
        money::format(per_usd),
        money::display(usd, 2),
        money::display(margin, 2),
    );
    let verdict = match tier {
        _ if !margin_ok => format!("margin below {MIN_MARGIN_PERCENT} % pays 0 CNY"),
        None => format!("tier ≤ {} USD pays 0 CNY", grouped(TIERS[3].0)),
        Some((over, cny)) => {
            let upper = TIERS.iter().rev().find(|(o, _)| o > over).map(|(o, _)| *o);
            match upper {
                Some(up) => format!(
                    "tier > {} and ≤ {} USD pays {} CNY",
                    grouped(*over),
                    grouped(up),
                    grouped(*cny)
                ),
                None => format!("tier > {} USD pays {} CNY", grouped(*over), grouped(*cny)),
            }
        }
    };
    let thresholds = format!(
        "thresholds: amount > 10,000 USD and margin ≥ {MIN_MARGIN_PERCENT} %; tiers at 10,000 / 30,000 / 60,000 / \
         100,000 USD paying 300 / 500 / 800 / 1,000 CNY"
    );
    Ok(BonusOutput::one(BonusLine::new(
        RULE,
        pay,
        format!("{inputs}; {verdict} ({thresholds})"),
    )))
}

fn grouped(n: i64) -> String {
    money::display(Decimal::from(n), 0)
}

export_policy! { bonus: bonus, bonus_subjects: [SubjectKind::Deal] }

#[cfg(test)]
mod tests {
    use super::*;
    use dealflow_plugin_sdk::testing;

    /// The bonus for one deal of `lines` in `currency` at `per_usd`.
    fn pay(
        currency: &str,
        per_usd: Option<&str>,
        lines: Vec<LineInfo>,
    ) -> Result<BonusOutput, String> {
        bonus(testing::deal_bonus(
            testing::deal("D-1", currency, lines),
            per_usd,
        ))
    }

    /// The amount paid for new-brand lines worth `amount` USD at a 20 % margin.
    fn usd(amount: &str) -> String {
        let a = money::parse(amount).unwrap();
        let out = pay(
            "USD",
            Some("1"),
            vec![testing::line(
                "volvo",
                true,
                amount,
                &money::format(a * Decimal::new(8, 1)),
            )],
        )
        .unwrap();
        assert_eq!(out.lines.len(), 1);
        out.lines[0].amount.clone()
    }

    #[test]
    fn tiers_on_both_sides_of_every_boundary() {
        let cases = [
            ("10000", "0"),
            ("10000.01", "300"),
            ("30000", "300"),
            ("30000.01", "500"),
            ("60000", "500"),
            ("60000.01", "800"),
            ("100000", "800"),
            ("100000.01", "1000"),
            ("5000000", "1000"),
        ];
        for (amount, want) in cases {
            assert_eq!(usd(amount), want, "{amount} USD");
        }
    }

    #[test]
    fn margin_of_ten_percent_counts_and_a_hair_less_does_not() {
        let at = |cost: &str| {
            pay(
                "USD",
                None,
                vec![testing::line("volvo", true, "20000", cost)],
            )
            .unwrap()
            .lines[0]
                .amount
                .clone()
        };
        assert_eq!(at("18000"), "300"); // exactly 10 %
        assert_eq!(at("18002"), "0"); // 9.99 %
        assert_eq!(at("18000.01"), "0"); // 9.99995 %
    }

    #[test]
    fn conversion_uses_per_usd_of_the_deal_currency() {
        // 71,000.07 CNY at 7.1 CNY per USD = 10,000.0098… USD: over 10,000.
        let over = pay(
            "CNY",
            Some("7.1"),
            vec![testing::line("volvo", true, "71000.07", "60000")],
        )
        .unwrap();
        assert_eq!(over.lines[0].amount, "300");
        // 71,000.00 CNY = exactly 10,000 USD: not over.
        let at = pay(
            "CNY",
            Some("7.1"),
            vec![testing::line("volvo", true, "71000", "60000")],
        )
        .unwrap();
        assert_eq!(at.lines[0].amount, "0");
    }

    #[test]
    fn only_new_brand_lines_count() {
        // 9,000 USD new brand + 50,000 USD old brand: the new part is under 10,000.
        let lines = vec![
            testing::line("volvo", true, "9000", "1000"),
            testing::line("bmw", false, "50000", "10000"),
        ];
        assert_eq!(pay("USD", Some("1"), lines).unwrap().lines[0].amount, "0");
        // An old brand's bad margin does not spoil the new brand's.
        let lines = vec![
            testing::line("volvo", true, "40000", "30000"),
            testing::line("bmw", false, "50000", "50000"),
        ];
        assert_eq!(pay("USD", Some("1"), lines).unwrap().lines[0].amount, "500");
        // Margin is over all new-brand lines together: 15,000 at 0 % + 15,000 at 20 % = 10 %.
        let lines = vec![
            testing::line("volvo", true, "15000", "15000"),
            testing::line("polestar", true, "15000", "12000"),
        ];
        assert_eq!(pay("USD", Some("1"), lines).unwrap().lines[0].amount, "300");
    }

    #[test]
    fn no_new_brand_lines_or_no_deal_means_no_line() {
        assert!(pay(
            "USD",
            Some("1"),
            vec![testing::line("bmw", false, "90000", "1")]
        )
        .unwrap()
        .lines
        .is_empty());
        let mut input = testing::deal_bonus(
            testing::deal(
                "D-1",
                "USD",
                vec![testing::line("volvo", true, "90000", "1")],
            ),
            Some("1"),
        );
        input.subject_kind = SubjectKind::Rep;
        assert!(bonus(input).unwrap().lines.is_empty());
    }

    #[test]
    fn the_explanation_names_inputs_tier_and_thresholds() {
        let out = pay(
            "CNY",
            Some("7.1"),
            vec![testing::line("volvo", true, "71000.07", "60000")],
        )
        .unwrap();
        let line = &out.lines[0];
        assert_eq!(line.rule, RULE);
        let e = &line.explanation;
        for part in [
            "D-1",
            "volvo",
            "71,000.07 CNY",
            "60,000.00 CNY",
            "7.1 CNY per USD",
            "10,000.01 USD",
            "15.49 %",
            "tier > 10,000 and ≤ 30,000 USD pays 300 CNY",
            "margin ≥ 10 %",
        ] {
            assert!(e.contains(part), "`{part}` missing from: {e}");
        }
        let low = pay(
            "USD",
            Some("1"),
            vec![testing::line("volvo", true, "50000", "46000")],
        )
        .unwrap();
        assert!(
            low.lines[0]
                .explanation
                .contains("margin below 10 % pays 0 CNY"),
            "{}",
            low.lines[0].explanation
        );
        let top = pay(
            "USD",
            Some("1"),
            vec![testing::line("volvo", true, "200000", "1")],
        )
        .unwrap();
        assert!(
            top.lines[0]
                .explanation
                .contains("tier > 100,000 USD pays 1,000 CNY"),
            "{}",
            top.lines[0].explanation
        );
    }

    #[test]
    fn bad_rates_and_amounts_are_errors() {
        let l = || vec![testing::line("volvo", true, "90000", "1")];
        assert!(pay("EUR", None, l()).unwrap_err().contains("EUR per USD"));
        assert!(pay("EUR", Some("0"), l()).unwrap_err().contains("positive"));
        assert!(pay("EUR", Some("abc"), l())
            .unwrap_err()
            .contains("per_usd"));
        assert!(
            pay("USD", None, vec![testing::line("volvo", true, "1e5", "1")])
                .unwrap_err()
                .contains("amount")
        );
    }

    #[test]
    fn a_zero_amount_pays_nothing() {
        assert_eq!(
            pay("USD", None, vec![testing::line("volvo", true, "0", "0")])
                .unwrap()
                .lines[0]
                .amount,
            "0"
        );
    }
}
