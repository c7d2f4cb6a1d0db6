//! Small, valid sample inputs for plugins' native unit tests (change the
//! fields a test is about, keep the rest), and the parameters [`crate::config`]
//! answers in them.
//!
//! ```
//! use dealflow_plugin_sdk::{testing, StageKind};
//! let deal = testing::deal("D-1", "CNY", vec![testing::line("volvo", true, "70000", "60000")]);
//! assert_eq!(deal.amount_total, "70000");
//! let input = testing::transition(deal, "won", StageKind::Won);
//! assert_eq!(input.to_kind, StageKind::Won);
//! testing::set_config(&[("cap", "700")]);
//! assert_eq!(dealflow_plugin_sdk::config("cap").as_deref(), Some("700"));
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::{
    ActorInfo, BonusInput, BranchInfo, CustomerInfo, DealInfo, LineInfo, Role, Segment, Source,
    StageKind, SubjectKind, Tier, TransitionInput,
};

thread_local! {
    /// The parameters `config` answers in this thread's native tests.
    static CONFIG: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
}

/// Sets the parameters [`crate::config`] answers on this thread (native
/// builds only: in the server they are the policy's own).
pub fn set_config(pairs: &[(&str, &str)]) {
    CONFIG.with(|c| {
        *c.borrow_mut() = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    });
}

/// The parameter `key` set with [`set_config`] on this thread (what
/// [`crate::config`] answers in native builds).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn configured(key: &str) -> Option<String> {
    CONFIG.with(|c| c.borrow().get(key).cloned())
}

/// A branch in Shanghai.
pub fn branch() -> BranchInfo {
    BranchInfo {
        id: "sh".into(),
        timezone: "Asia/Shanghai".into(),
    }
}

/// A deal line; `amount` and `cost` are decimal strings.
pub fn line(brand: &str, brand_new: bool, amount: &str, cost: &str) -> LineInfo {
    LineInfo {
        brand: brand.into(),
        brand_new,
        product: format!("{brand} product"),
        amount: amount.into(),
        cost: cost.into(),
    }
}

/// A signed deal of `lines` in `currency`, with totals summed from them
/// (a line amount or cost that is not a decimal counts as zero, so tests can
/// feed malformed lines).
pub fn deal(id: &str, currency: &str, lines: Vec<LineInfo>) -> DealInfo {
    let sum = |f: fn(&LineInfo) -> &str| -> String {
        let total: Decimal = lines
            .iter()
            .filter_map(|l| crate::money::parse(f(l)).ok())
            .sum();
        crate::money::format(total)
    };
    DealInfo {
        id: id.into(),
        title: format!("Deal {id}"),
        owner: "rep1".into(),
        currency: currency.into(),
        needs: Vec::new(),
        prepayment_ratio: None,
        opened_at: "2026-03-01T02:00:00Z".into(),
        stage: "negotiation".into(),
        stages_passed: vec!["lead".into(), "negotiation".into()],
        signed_at: Some("2026-03-20T02:00:00Z".into()),
        amount_total: sum(|l| &l.amount),
        cost_total: sum(|l| &l.cost),
        lines,
        attributes: Vec::new(),
    }
}

/// A self-developed enterprise customer owned by `rep1`.
pub fn customer(id: &str) -> CustomerInfo {
    CustomerInfo {
        id: id.into(),
        name: format!("Customer {id}"),
        segment: Segment::Enterprise,
        source: Source::SelfDeveloped,
        tier: Tier::B,
        owner: Some("rep1".into()),
        referred_by: None,
        last_contact_at: None,
    }
}

/// `deal` moving from its stage to `to` (of kind `to_kind`), asked by its
/// owner.
pub fn transition(deal: DealInfo, to: &str, to_kind: StageKind) -> TransitionInput {
    TransitionInput {
        branch: branch(),
        customer: customer("C-1"),
        records: Vec::new(),
        from_stage: deal.stage.clone(),
        to_stage: to.into(),
        to_kind,
        at: "2026-03-20T02:00:00Z".into(),
        actor: ActorInfo {
            user: deal.owner.clone(),
            role: Role::Rep,
        },
        deal,
    }
}

/// The bonus input for the deal subject `deal` of March 2026, with
/// `per_usd` units of the deal currency per USD (and 7.1 CNY per USD).
pub fn deal_bonus(deal: DealInfo, per_usd: Option<&str>) -> BonusInput {
    BonusInput {
        branch: branch(),
        period: "2026-03".into(),
        period_kind: "month".into(),
        rep: deal.owner.clone(),
        subject_kind: SubjectKind::Deal,
        subject: deal.id.clone(),
        deal: Some(deal),
        cny_per_usd: Some("7.1".into()),
        per_usd: per_usd.map(Into::into),
        customer: None,
        orders: Vec::new(),
        new_customers: 0,
    }
}
