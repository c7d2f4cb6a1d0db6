//! Builds the `bonus` hook's input for each kind of subject: a signed deal
//! (monthly), a customer whose 3-month window closed (quarterly), a rep
//! (half-yearly and yearly). Everything a rule needs is in its input: the
//! contract's lines and which brands were new at signing, the FX rates of
//! the signing date, the customer's segment, source and orders in its
//! window, the rep and the period.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

pub use super::deal_record::DealRecord;
use super::period::{local_day, window_last_day, Period};
use crate::domain::customer::Customer;
use crate::domain::fx::{FxRate, FxUsed};
use crate::policy::hook_values::{customer_info, ts};
use crate::policy::hooks::{BonusInput, BranchInfo, CustomerInfo, DealInfo, LineInfo, OrderInfo};

/// What a settlement line is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SubjectKind {
    /// A signed deal (new-brand sale bonus, per month).
    Deal,
    /// A customer whose window closed (new-customer bonus, per quarter).
    Customer,
    /// A rep (territory flag per half-year, deduction per year).
    Rep,
}

impl SubjectKind {
    /// The name hooks and lines use.
    pub fn name(self) -> &'static str {
        match self {
            SubjectKind::Deal => "deal",
            SubjectKind::Customer => "customer",
            SubjectKind::Rep => "rep",
        }
    }

    /// Parses [`SubjectKind::name`].
    pub fn parse(s: &str) -> Option<SubjectKind> {
        match s {
            "deal" => Some(SubjectKind::Deal),
            "customer" => Some(SubjectKind::Customer),
            "rep" => Some(SubjectKind::Rep),
            _ => None,
        }
    }
}

/// Dated FX rates by currency: 1 USD = `per_usd` units from a date on.
#[derive(Debug, Clone, Default)]
pub struct FxTable {
    /// Rates by currency, oldest first: (date, per USD, version).
    rates: HashMap<String, Vec<(NaiveDate, Decimal, u64)>>,
}

impl FxTable {
    /// A table of `rates` (any order).
    pub fn new(rates: impl IntoIterator<Item = FxRate>) -> Self {
        let mut table = FxTable::default();
        for r in rates {
            table
                .rates
                .entry(r.currency)
                .or_default()
                .push((r.date, r.per_usd, r.version));
        }
        for list in table.rates.values_mut() {
            list.sort_by_key(|(d, ..)| *d);
        }
        table
    }

    /// The rate of `currency` in force on `day`, as a receipt; `None` for
    /// USD (the base) and when none is in force.
    pub fn used(&self, currency: &str, day: NaiveDate) -> Option<FxUsed> {
        let list = self.rates.get(currency)?;
        let at = list.partition_point(|(d, ..)| *d <= day);
        let (date, per_usd, version) = list.get(at.checked_sub(1)?)?;
        Some(FxUsed {
            currency: currency.to_string(),
            date: *date,
            per_usd: *per_usd,
            version: *version,
        })
    }

    /// The receipts of the rates in force for each (currency, day), without
    /// repeats, in currency then date order.
    pub fn receipts<'a>(
        &self,
        reads: impl IntoIterator<Item = (&'a str, NaiveDate)>,
    ) -> Vec<FxUsed> {
        let mut out: Vec<FxUsed> = reads
            .into_iter()
            .filter_map(|(c, d)| self.used(c, d))
            .collect();
        out.sort_by(|a, b| (&a.currency, a.date).cmp(&(&b.currency, b.date)));
        out.dedup();
        out
    }

    /// Units of `currency` per USD in force on `day` (the latest rate dated
    /// on or before it); 1 for USD; `None` when none is in force yet.
    pub fn per_usd(&self, currency: &str, day: NaiveDate) -> Option<Decimal> {
        if currency == "USD" {
            return Some(Decimal::ONE);
        }
        let list = self.rates.get(currency)?;
        let at = list.partition_point(|(d, ..)| *d <= day);
        at.checked_sub(1).map(|i| list[i].1)
    }

    /// `amount` of `currency` in CNY at the rates of `day`.
    pub fn to_cny(
        &self,
        amount: Decimal,
        currency: &str,
        day: NaiveDate,
    ) -> Result<Decimal, String> {
        if currency == "CNY" {
            return Ok(amount);
        }
        let missing = |c: &str| format!("no {c} per USD rate is in force on {day}");
        let from = self
            .per_usd(currency, day)
            .ok_or_else(|| missing(currency))?;
        let cny = self.per_usd("CNY", day).ok_or_else(|| missing("CNY"))?;
        amount
            .checked_div(from)
            .and_then(|usd| usd.checked_mul(cny))
            .ok_or_else(|| format!("{amount} {currency} cannot be converted to CNY"))
    }
}

/// The branch and its calendar.
#[derive(Debug, Clone)]
pub struct BranchCalendar {
    /// The branch as hooks see it.
    pub info: BranchInfo,
    /// Its time zone.
    pub tz: Tz,
}

fn base(
    branch: &BranchCalendar,
    period: &Period,
    rep: &str,
    kind: SubjectKind,
    subject: &str,
) -> BonusInput {
    BonusInput {
        branch: branch.info.clone(),
        period: period.to_string(),
        period_kind: period.kind.name().into(),
        rep: rep.into(),
        subject_kind: kind.name().into(),
        subject: subject.into(),
        deal: None,
        cny_per_usd: None,
        per_usd: None,
        customer: None,
        orders: Vec::new(),
        new_customers: 0,
    }
}

/// The input for a signed deal, in the month of its signing (`day`: its
/// signing day in the branch's calendar). Lines count as new-brand lines when
/// the deal is their brand's first sale (its earliest signed contract not
/// cancelled).
pub fn deal_input(
    branch: &BranchCalendar,
    deal: DealRecord,
    day: NaiveDate,
    customer: Option<CustomerInfo>,
    fx: &FxTable,
) -> BonusInput {
    let month = Period::containing(super::PeriodKind::Month, day);
    let mut input = base(branch, &month, &deal.owner, SubjectKind::Deal, &deal.id);
    input.per_usd = fx.per_usd(&deal.currency, day);
    input.cny_per_usd = fx.per_usd("CNY", day);
    input.customer = customer;
    let new_brands = deal.new_brands;
    input.deal = Some(DealInfo {
        id: deal.id,
        title: deal.title,
        owner: deal.owner,
        currency: deal.currency,
        needs: deal.needs,
        prepayment_ratio: deal.prepayment_ratio,
        opened_at: ts(&deal.opened_at),
        stage: deal.stage,
        stages_passed: deal.stages_passed,
        signed_at: deal.signed_at.as_ref().map(ts),
        lines: deal
            .lines
            .into_iter()
            .map(|l| LineInfo {
                brand_new: new_brands.contains(&l.brand),
                brand: l.brand,
                product: l.product,
                amount: l.amount,
                cost: l.cost,
            })
            .collect(),
        amount_total: deal.amount_total,
        cost_total: deal.cost_total,
        attributes: deal.attributes,
    });
    input
}

/// A customer's signed deal as its window reads it: the few fields of a
/// signing-index record an order needs, so a settlement can hold every
/// order of a quarter's windows without copying whole contracts.
#[derive(Debug, Clone)]
pub struct SignedOrder {
    /// The deal.
    pub deal_id: String,
    /// Its owner (the customer's rep when it has no account manager).
    pub owner: String,
    /// Its currency.
    pub currency: String,
    /// When it was signed.
    pub signed_at: DateTime<Utc>,
    /// Whether the contract was cancelled since (then it is no order).
    pub cancelled: bool,
    /// Sum of line amounts.
    pub amount_total: Decimal,
    /// Sum of line costs.
    pub cost_total: Decimal,
    /// Prepayment share.
    pub prepayment_ratio: Option<Decimal>,
}

impl SignedOrder {
    /// `deal` as an order; `None` when it is not signed.
    pub fn of(deal: &DealRecord) -> Option<SignedOrder> {
        Some(SignedOrder {
            deal_id: deal.id.clone(),
            owner: deal.owner.clone(),
            currency: deal.currency.clone(),
            signed_at: deal.signed_at?,
            cancelled: deal.cancelled_at.is_some(),
            amount_total: deal.amount_total,
            cost_total: deal.cost_total,
            prepayment_ratio: deal.prepayment_ratio,
        })
    }

    /// The order as rules see it, in CNY at its signing date.
    fn info(&self, tz: Tz, fx: &FxTable) -> Result<OrderInfo, String> {
        let day = local_day(self.signed_at, tz);
        let in_cny = |v: Decimal| {
            fx.to_cny(v, &self.currency, day)
                .map_err(|e| format!("deal {}: {e}", self.deal_id))
        };
        Ok(OrderInfo {
            deal_id: self.deal_id.clone(),
            signed_on: day.to_string(),
            amount_cny: in_cny(self.amount_total)?,
            cost_cny: in_cny(self.cost_total)?,
            prepayment_ratio: self.prepayment_ratio,
        })
    }
}

/// The input for a customer whose window (from its first order) closed in
/// `quarter`: its orders signed within the window, oldest first.
/// `deals` are the customer's signed deals (any order, any time).
pub fn customer_input(
    branch: &BranchCalendar,
    quarter: &Period,
    customer: &Customer,
    deals: &[SignedOrder],
    fx: &FxTable,
) -> Result<BonusInput, String> {
    let (last, in_window) = window_orders(branch, customer, deals)?;
    let rep = customer_rep(customer, &in_window);
    let mut input = base(branch, quarter, &rep, SubjectKind::Customer, &customer.id);
    input.customer = Some(customer_info(customer));
    input.orders = in_window
        .iter()
        .map(|d| d.info(branch.tz, fx))
        .collect::<Result<_, _>>()?;
    input.cny_per_usd = fx.per_usd("CNY", last);
    Ok(input)
}

/// The last day of a customer's window and its orders in it, in signing
/// order (a cancelled contract is no order).
fn window_orders<'a>(
    branch: &BranchCalendar,
    customer: &Customer,
    deals: &'a [SignedOrder],
) -> Result<(NaiveDate, Vec<&'a SignedOrder>), String> {
    let first = customer
        .first_order_at
        .map(|t| local_day(t, branch.tz))
        .ok_or_else(|| format!("customer {} has no order", customer.id))?;
    let last = window_last_day(first);
    let mut in_window: Vec<&SignedOrder> = deals
        .iter()
        .filter(|d| !d.cancelled)
        .filter(|d| (first..=last).contains(&local_day(d.signed_at, branch.tz)))
        .collect();
    in_window.sort_by(|a, b| (a.signed_at, &a.deal_id).cmp(&(b.signed_at, &b.deal_id)));
    Ok((last, in_window))
}

/// The FX rates [`customer_input`] reads the customer's orders with: each
/// order's currency and CNY on its signing day, and CNY on the window's
/// last day.
pub fn customer_rates(
    branch: &BranchCalendar,
    customer: &Customer,
    deals: &[SignedOrder],
    fx: &FxTable,
) -> Vec<FxUsed> {
    let Ok((last, orders)) = window_orders(branch, customer, deals) else {
        return Vec::new();
    };
    let reads = orders.iter().flat_map(|o| {
        let day = local_day(o.signed_at, branch.tz);
        [(o.currency.as_str(), day), ("CNY", day)]
    });
    fx.receipts(reads.chain([("CNY", last)]))
}

/// Who a customer subject belongs to: its account manager, or the owner of
/// its first order when it has none.
fn customer_rep(customer: &Customer, orders: &[&SignedOrder]) -> String {
    customer
        .owner
        .clone()
        .or_else(|| orders.first().map(|d| d.owner.clone()))
        .unwrap_or_default()
}

/// The input for a rep over a half-year or year: how many self-developed
/// customers of theirs placed their first order in it.
pub fn rep_input(
    branch: &BranchCalendar,
    period: &Period,
    rep: &str,
    new_customers: i64,
) -> BonusInput {
    let mut input = base(branch, period, rep, SubjectKind::Rep, rep);
    input.new_customers = new_customers;
    input
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(c: &str, d: &str, r: &str) -> FxRate {
        FxRate {
            currency: c.into(),
            date: d.parse().unwrap(),
            per_usd: r.parse().unwrap(),
            recorded_at: chrono::Utc::now(),
            version: 1,
            recorded_by: None,
            reason: None,
        }
    }

    #[test]
    fn rates_in_force_on_a_day_and_conversion_to_cny() {
        let fx = FxTable::new([
            rate("CNY", "2026-02-01", "7.2"),
            rate("CNY", "2026-01-01", "7.1"),
            rate("EUR", "2026-01-01", "0.9"),
        ]);
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        assert_eq!(fx.per_usd("CNY", day("2025-12-31")), None);
        assert_eq!(
            fx.per_usd("CNY", day("2026-01-31")),
            Some("7.1".parse().unwrap())
        );
        assert_eq!(
            fx.per_usd("CNY", day("2026-02-01")),
            Some("7.2".parse().unwrap())
        );
        assert_eq!(fx.per_usd("USD", day("1999-01-01")), Some(Decimal::ONE));
        // 900 EUR = 1,000 USD = 7,200 CNY on 1 Feb.
        assert_eq!(
            fx.to_cny("900".parse().unwrap(), "EUR", day("2026-02-01"))
                .unwrap(),
            "7200".parse::<Decimal>().unwrap()
        );
        assert_eq!(
            fx.to_cny("5".parse().unwrap(), "CNY", day("1999-01-01"))
                .unwrap(),
            Decimal::from(5)
        );
        assert!(fx
            .to_cny(Decimal::ONE, "GBP", day("2026-02-01"))
            .unwrap_err()
            .contains("no GBP per USD rate"));
    }
}
