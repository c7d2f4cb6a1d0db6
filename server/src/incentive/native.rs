//! The default bonus rules of docs/business-rules.md §5 in plain Rust. The server runs
//! the rules as policies (rhai scripts, a wasm plugin); this version is the
//! limit the settlement benchmark measures them against, and the oracle the
//! tests compare them with. Amounts and thresholds are exact decimals.

use std::sync::Arc;

use rust_decimal::Decimal;

use crate::policy::hooks::{BonusInput, BonusLine, BonusOutput, Hook};
use crate::policy::{Executable, Limits, PolicyError};

/// Rule name of the new-brand sale bonus (§5.1).
pub const NEW_BRAND_SALE: &str = "new_brand_sale";
/// Rule name of the self-developed new-customer bonus (§5.2).
pub const NEW_CUSTOMER: &str = "new_customer";
/// Rule name of the half-year territory flag (§5.3).
pub const TERRITORY_REPLAN: &str = "territory_replan";
/// Rule name of the year-end deduction (§5.3).
pub const NO_NEW_CUSTOMER_DEDUCTION: &str = "no_new_customer_deduction";

/// §5.1 tiers: (new-brand amount in USD it must exceed, CNY), highest first.
const NEW_BRAND_TIERS: [(i64, i64); 4] = [
    (100_000, 1_000),
    (60_000, 800),
    (30_000, 500),
    (10_000, 300),
];

/// §5.2 tiers: (cumulative CNY it must reach, CNY), highest first.
const NEW_CUSTOMER_TIERS: [(i64, i64); 3] = [(300_000, 2_500), (200_000, 1_500), (100_000, 1_000)];

fn line(rule: &str, amount: i64, explanation: String, flag: Option<&str>) -> BonusOutput {
    BonusOutput {
        lines: vec![BonusLine {
            rule: rule.into(),
            amount: Decimal::from(amount),
            explanation,
            flag: flag.map(str::to_string),
        }],
    }
}

/// `(Σ amount − Σ cost) / Σ amount ≥ 10 %`, compared without dividing.
fn margin_at_least_ten_percent(amount: Decimal, cost: Decimal) -> bool {
    amount > Decimal::ZERO && (amount - cost) * Decimal::from(10) >= amount
}

/// §5.1: a deal's new-brand lines (brands new at its signing), over 10,000
/// USD at a margin of at least 10 %, pay by tier. A deal without new-brand
/// lines gets no line.
pub fn new_brand_sale(input: &BonusInput) -> Result<BonusOutput, String> {
    let Some(deal) = input.deal.as_ref().filter(|_| input.subject_kind == "deal") else {
        return Ok(BonusOutput::default());
    };
    let (mut amount, mut cost, mut any) = (Decimal::ZERO, Decimal::ZERO, false);
    for l in deal.lines.iter().filter(|l| l.brand_new) {
        amount += l.amount;
        cost += l.cost;
        any = true;
    }
    if !any {
        return Ok(BonusOutput::default());
    }
    let per_usd = match input.per_usd {
        Some(r) if r > Decimal::ZERO => r,
        Some(r) => return Err(format!("per_usd must be positive, not {r}")),
        None => {
            return Err(format!(
                "no {} per USD rate on the signing date",
                deal.currency
            ))
        }
    };
    let margin_ok = margin_at_least_ten_percent(amount, cost);
    let tier = NEW_BRAND_TIERS
        .iter()
        .find(|(over, _)| amount > Decimal::from(*over) * per_usd);
    let pay = match tier {
        Some((_, cny)) if margin_ok => *cny,
        _ => 0,
    };
    Ok(line(
        NEW_BRAND_SALE,
        pay,
        format!(
            "deal {}: new-brand amount {} {} at {} per USD, margin ok: {margin_ok}; pays {pay} CNY",
            deal.id, amount, deal.currency, per_usd
        ),
        None,
    ))
}

/// §5.2: a self-developed customer with more than 2 orders in the window
/// (the host passes exactly those), an amount-weighted margin of at least
/// 10 % and, when industrial, a first-order prepayment of at least 50 %,
/// pays by its cumulative CNY amount. Other customers get no line.
pub fn new_customer(input: &BonusInput) -> Result<BonusOutput, String> {
    let Some(customer) = input
        .customer
        .as_ref()
        .filter(|_| input.subject_kind == "customer")
    else {
        return Ok(BonusOutput::default());
    };
    if customer.source != "self_developed" {
        return Ok(BonusOutput::default());
    }
    let orders = &input.orders;
    let amount: Decimal = orders.iter().map(|o| o.amount_cny).sum();
    let cost: Decimal = orders.iter().map(|o| o.cost_cny).sum();
    let enough_orders = orders.len() > 2;
    let margin_ok = margin_at_least_ten_percent(amount, cost);
    let prepayment_ok = customer.segment != "industrial"
        || orders
            .first()
            .and_then(|o| o.prepayment_ratio)
            .is_some_and(|p| p * Decimal::from(2) >= Decimal::ONE);
    let tier = NEW_CUSTOMER_TIERS
        .iter()
        .find(|(at_least, _)| amount >= Decimal::from(*at_least));
    let pay = match tier {
        Some((_, cny)) if enough_orders && margin_ok && prepayment_ok => *cny,
        _ => 0,
    };
    Ok(line(
        NEW_CUSTOMER,
        pay,
        format!(
            "customer {}: {} orders, {amount} CNY, margin ok: {margin_ok}, prepayment ok: {prepayment_ok}; pays {pay} CNY",
            customer.id,
            orders.len()
        ),
        None,
    ))
}

/// §5.3: a rep with no new self-developed customer in a half-year gets a
/// territory flag (no money); in a year, a 1,000 CNY deduction.
pub fn no_new_customer(input: &BonusInput) -> Result<BonusOutput, String> {
    if input.subject_kind != "rep" || input.new_customers > 0 {
        return Ok(BonusOutput::default());
    }
    Ok(match input.period_kind.as_str() {
        "half" => line(
            TERRITORY_REPLAN,
            0,
            format!("{}: no new customer in {}", input.rep, input.period),
            Some(TERRITORY_REPLAN),
        ),
        "year" => line(
            NO_NEW_CUSTOMER_DEDUCTION,
            -1_000,
            format!("{}: no new customer in {}", input.rep, input.period),
            None,
        ),
        _ => BonusOutput::default(),
    })
}

/// Every default rule, as one: the lines of all three.
pub fn all_rules(input: &BonusInput) -> Result<BonusOutput, String> {
    let mut out = new_brand_sale(input)?;
    out.lines.extend(new_customer(input)?.lines);
    out.lines.extend(no_new_customer(input)?.lines);
    Ok(out)
}

/// A native rule as a policy implementing only `bonus`, so a settlement can
/// run it where it runs rhai or wasm (e.g. `NativeRule(all_rules)`).
pub struct NativeRule(pub fn(&BonusInput) -> Result<BonusOutput, String>);

impl Executable for NativeRule {
    fn hooks(&self) -> &[Hook] {
        &[Hook::Bonus]
    }

    fn run_bonus(&self, input: &Arc<BonusInput>, _: &Limits) -> Result<BonusOutput, PolicyError> {
        (self.0)(input).map_err(PolicyError::Failed)
    }
}
