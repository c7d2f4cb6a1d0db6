//! Builds the `bonus` hook's input for each kind of subject: a signed deal
//! (monthly), a customer whose 3-month window closed (quarterly), a rep
//! (half-yearly and yearly). Everything a rule needs is in its input: the
//! contract's lines and which brands were new at signing, the FX rates of
//! the signing date, the customer's segment, source and orders in its
//! window, the rep and the period.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::period::{local_day, window_last_day, Period};
use crate::domain::customer::Customer;
use crate::domain::deal::{Deal, Line};
use crate::domain::fx::FxRate;
use crate::pipeline::hook_input::{customer_info, ts};
use crate::policy::hooks::{BonusInput, BranchInfo, CustomerInfo, DealInfo, LineInfo, OrderInfo};

/// A signed deal as a settlement reads it: only the fields bonus rules see.
/// The signing indexes carry it as their value (written with the deal in
/// one batch), so a settlement streams a period's deals from one range scan
/// instead of fetching and decoding each full record; a stored `Deal` also
/// decodes into it (its other fields are skipped, not parsed).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DealRecord {
    /// Deal id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Owning rep.
    pub owner: String,
    /// Its customer.
    pub customer_id: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Recorded needs.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Prepayment share, 0 to 1.
    #[serde(default)]
    pub prepayment_ratio: Option<Decimal>,
    /// When opened.
    pub opened_at: DateTime<Utc>,
    /// Current stage.
    pub stage: String,
    /// Every stage so far.
    #[serde(default)]
    pub stages_passed: Vec<String>,
    /// When signed.
    #[serde(default)]
    pub signed_at: Option<DateTime<Utc>>,
    /// Lines.
    pub lines: Vec<Line>,
    /// Sum of line amounts.
    pub amount_total: Decimal,
    /// Sum of line costs.
    pub cost_total: Decimal,
    /// Brands that were new when it was signed.
    #[serde(default)]
    pub new_brands: Vec<String>,
    /// Attributes set by after-hooks.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// When the signed contract was cancelled.
    #[serde(default)]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why.
    #[serde(default)]
    pub cancel_reason: Option<String>,
}

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
    /// Rates by currency, oldest first.
    rates: HashMap<String, Vec<(NaiveDate, Decimal)>>,
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
                .push((r.date, r.per_usd));
        }
        for list in table.rates.values_mut() {
            list.sort_by_key(|(d, _)| *d);
        }
        table
    }

    /// Units of `currency` per USD in force on `day` (the latest rate dated
    /// on or before it); 1 for USD; `None` when none is in force yet.
    pub fn per_usd(&self, currency: &str, day: NaiveDate) -> Option<Decimal> {
        if currency == "USD" {
            return Some(Decimal::ONE);
        }
        let list = self.rates.get(currency)?;
        let at = list.partition_point(|(d, _)| *d <= day);
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

impl From<&Deal> for DealRecord {
    fn from(d: &Deal) -> Self {
        DealRecord {
            id: d.id.clone(),
            title: d.title.clone(),
            owner: d.owner.clone(),
            customer_id: d.customer_id.clone(),
            currency: d.currency.clone(),
            needs: d.needs.clone(),
            prepayment_ratio: d.prepayment_ratio,
            opened_at: d.opened_at,
            stage: d.stage.clone(),
            stages_passed: d.stages_passed.clone(),
            signed_at: d.signed_at,
            lines: d.lines.clone(),
            amount_total: d.amount_total,
            cost_total: d.cost_total,
            new_brands: d.new_brands.clone(),
            attributes: d.attributes.clone(),
            cancelled_at: d.cancelled_at,
            cancel_reason: d.cancel_reason.clone(),
        }
    }
}

/// The input for a signed deal, in the month of its signing (`day`: its
/// signing day in the branch's calendar). Lines count as new-brand lines when
/// their brand was new when the deal was signed.
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

/// A signed deal as an order of a customer, in CNY at its signing date.
pub fn order(deal: &DealRecord, tz: Tz, fx: &FxTable) -> Result<OrderInfo, String> {
    let signed = deal
        .signed_at
        .ok_or_else(|| format!("deal {} is not signed", deal.id))?;
    let day = local_day(signed, tz);
    let in_cny = |v: Decimal| {
        fx.to_cny(v, &deal.currency, day)
            .map_err(|e| format!("deal {}: {e}", deal.id))
    };
    Ok(OrderInfo {
        deal_id: deal.id.clone(),
        signed_on: day.to_string(),
        amount_cny: in_cny(deal.amount_total)?,
        cost_cny: in_cny(deal.cost_total)?,
        prepayment_ratio: deal.prepayment_ratio,
    })
}

/// The input for a customer whose window (from its first order) closed in
/// `quarter`: its orders signed within the window, oldest first.
/// `deals` are the customer's signed deals (any order, any time).
pub fn customer_input(
    branch: &BranchCalendar,
    quarter: &Period,
    customer: &Customer,
    deals: &[DealRecord],
    fx: &FxTable,
) -> Result<BonusInput, String> {
    let first = customer
        .first_order_at
        .map(|t| local_day(t, branch.tz))
        .ok_or_else(|| format!("customer {} has no order", customer.id))?;
    let last = window_last_day(first);
    // A cancelled contract is no order.
    let mut in_window: Vec<&DealRecord> = deals
        .iter()
        .filter(|d| d.cancelled_at.is_none())
        .filter(|d| {
            d.signed_at
                .map(|t| local_day(t, branch.tz))
                .is_some_and(|day| first <= day && day <= last)
        })
        .collect();
    in_window.sort_by(|a, b| (a.signed_at, &a.id).cmp(&(b.signed_at, &b.id)));
    let rep = customer_rep(customer, &in_window);
    let mut input = base(branch, quarter, &rep, SubjectKind::Customer, &customer.id);
    input.customer = Some(customer_info(customer));
    input.orders = in_window
        .iter()
        .map(|d| order(d, branch.tz, fx))
        .collect::<Result<_, _>>()?;
    input.cny_per_usd = fx.per_usd("CNY", last);
    Ok(input)
}

/// Who a customer subject belongs to: its account manager, or the owner of
/// its first order when it has none.
fn customer_rep(customer: &Customer, orders: &[&DealRecord]) -> String {
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
