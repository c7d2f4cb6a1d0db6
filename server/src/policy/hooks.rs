//! The policy interface, defined once for both runtimes
//! (`dealflow:policy@1.1.0`; plugins of 1.0.0 see the same records with
//! text for closed sets).
//!
//! Every hook takes one input record and returns one output record. rhai
//! scripts receive the input as a map (decimal fields as rhai `Decimal`,
//! times as RFC 3339 strings, dates as `YYYY-MM-DD`) and return a map of the
//! output's shape; WebAssembly plugins receive the same records through the
//! WIT world in `plugin-sdk/wit/` (decimals as strings there, closed sets
//! as enums). Hooks do no I/O: everything they need is in their input.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::money::{de_decimal, de_opt_decimal};

/// The version of this interface (the host also serves plugins of 1.0.0).
pub const INTERFACE_VERSION: &str = "1.1.0";

/// A hook point.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Hook {
    /// Before a transition: allow, or reject with a reason.
    Guard,
    /// After a transition: follow-up tasks, deal attributes, events.
    After,
    /// Customer tiering.
    Tier,
    /// Visit cadence of a customer.
    Cadence,
    /// Who gets a new customer.
    Assign,
    /// Bonus rules (incentives).
    Bonus,
}

impl Hook {
    /// Every hook, in a fixed order.
    pub const ALL: [Hook; 6] = [
        Hook::Guard,
        Hook::After,
        Hook::Tier,
        Hook::Cadence,
        Hook::Assign,
        Hook::Bonus,
    ];

    /// The function name a policy exports for this hook.
    pub fn name(self) -> &'static str {
        match self {
            Hook::Guard => "guard",
            Hook::After => "after",
            Hook::Tier => "tier",
            Hook::Cadence => "cadence",
            Hook::Assign => "assign",
            Hook::Bonus => "bonus",
        }
    }
}

/// The branch a hook runs for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BranchInfo {
    /// Branch id.
    pub id: String,
    /// IANA time zone.
    pub timezone: String,
}

/// A deal line as a hook sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LineInfo {
    /// Brand id.
    pub brand: String,
    /// Whether the brand was still new (never sold) when this was computed.
    pub brand_new: bool,
    /// Product.
    pub product: String,
    /// Amount in the deal currency.
    #[serde(deserialize_with = "de_decimal")]
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// Cost in the deal currency.
    #[serde(deserialize_with = "de_decimal")]
    #[schema(value_type = String)]
    pub cost: Decimal,
}

/// A deal as a hook sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DealInfo {
    /// Deal id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Owning rep.
    pub owner: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Recorded needs.
    pub needs: Vec<String>,
    /// Prepayment share, 0 to 1.
    #[serde(default, deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<String>)]
    pub prepayment_ratio: Option<Decimal>,
    /// When the deal was opened (RFC 3339).
    pub opened_at: String,
    /// Current stage.
    pub stage: String,
    /// Every stage so far, in order.
    pub stages_passed: Vec<String>,
    /// When signed (RFC 3339), if signed.
    pub signed_at: Option<String>,
    /// Lines.
    pub lines: Vec<LineInfo>,
    /// Sum of line amounts.
    #[serde(deserialize_with = "de_decimal")]
    #[schema(value_type = String)]
    pub amount_total: Decimal,
    /// Sum of line costs.
    #[serde(deserialize_with = "de_decimal")]
    #[schema(value_type = String)]
    pub cost_total: Decimal,
    /// Attributes set by after-hooks.
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// A customer as a hook sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomerInfo {
    /// Customer id.
    pub id: String,
    /// Name.
    pub name: String,
    /// industrial | government | enterprise | individual.
    pub segment: String,
    /// self_developed | assigned | referral.
    pub source: String,
    /// A | B | C.
    pub tier: String,
    /// Account manager.
    pub owner: Option<String>,
    /// Referring customer id.
    pub referred_by: Option<String>,
    /// Latest communication record time (RFC 3339).
    pub last_contact_at: Option<String>,
}

/// A communication record as a hook sees it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RecordInfo {
    /// When (RFC 3339).
    pub at: String,
    /// Company side.
    pub by: String,
    /// visit | call | meeting | message.
    pub kind: String,
    /// Summary.
    pub summary: String,
    /// Whether problems were noted.
    pub has_problems: bool,
}

/// Who asked for the transition.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActorInfo {
    /// User name.
    pub user: String,
    /// admin | manager | rep.
    pub role: String,
}

/// Input of `guard` and `after`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TransitionInput {
    /// The branch.
    pub branch: BranchInfo,
    /// The deal (before the move for `guard`, after it for `after`).
    pub deal: DealInfo,
    /// The deal's customer.
    pub customer: CustomerInfo,
    /// The customer's communication records, oldest first (the latest 50).
    pub records: Vec<RecordInfo>,
    /// Stage before.
    pub from: String,
    /// Stage after.
    pub to: String,
    /// open | won | lost: the kind of the target stage.
    pub to_kind: String,
    /// Business time of the move (RFC 3339).
    pub at: String,
    /// Who moves it.
    pub actor: ActorInfo,
}

/// Output of `guard`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardVerdict {
    /// Whether the move may happen.
    pub allow: bool,
    /// Why not (required when `allow` is false).
    #[serde(default)]
    pub reason: Option<String>,
    /// What is missing for the move, as sentences for the user.
    #[serde(default)]
    pub missing: Vec<String>,
}

/// A follow-up task an after-hook asks for.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// What to do.
    pub title: String,
    /// A short kind (e.g. `thank_you_visit`, `recommend_products`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Due this many days after the transition.
    #[serde(default)]
    pub due_in_days: i64,
    /// Who does it; the deal owner when absent.
    #[serde(default)]
    pub assignee: Option<String>,
}

/// An event an after-hook emits.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventSpec {
    /// A short kind.
    pub kind: String,
    /// A sentence.
    pub message: String,
}

/// Output of `after`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AfterOutput {
    /// Follow-up tasks to create.
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
    /// Deal attributes to set (the only deal fields a policy may set).
    #[serde(default)]
    pub set: std::collections::BTreeMap<String, String>,
    /// Events to emit.
    #[serde(default)]
    pub events: Vec<EventSpec>,
}

/// One customer's revenue, for tiering.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RevenueInfo {
    /// Customer id.
    pub customer_id: String,
    /// Signed revenue in the window (CNY).
    #[serde(deserialize_with = "de_decimal")]
    #[schema(value_type = String)]
    pub revenue: Decimal,
    /// Current tier.
    pub tier: String,
}

/// Input of `tier`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TierInput {
    /// The branch.
    pub branch: BranchInfo,
    /// The day tiers are computed for (`YYYY-MM-DD`).
    pub as_of: String,
    /// Every customer of the branch with its revenue.
    pub customers: Vec<RevenueInfo>,
}

/// One customer's new tier.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierAssignment {
    /// Customer id.
    pub customer_id: String,
    /// A | B | C.
    pub tier: String,
    /// Why (kept in the customer's history).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Output of `tier`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TierOutput {
    /// New tiers; customers not listed keep theirs.
    pub tiers: Vec<TierAssignment>,
}

/// Input of `cadence`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CadenceInput {
    /// The branch.
    pub branch: BranchInfo,
    /// The customer.
    pub customer: CustomerInfo,
}

/// Output of `cadence`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CadenceOutput {
    /// Contact every this many days; 0 or absent: no cadence.
    #[serde(default)]
    pub every_days: i64,
    /// Overdue this many days after due (7 when absent, docs/business-rules.md §2).
    #[serde(default = "default_overdue_days")]
    pub overdue_after_days: i64,
}

fn default_overdue_days() -> i64 {
    7
}

/// A rep's load, for assignment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RepLoad {
    /// User name.
    pub user: String,
    /// A-tier customers owned.
    pub a_customers: i64,
    /// All customers owned.
    pub customers: i64,
    /// Open deals owned.
    pub open_deals: i64,
}

/// Input of `assign`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignInput {
    /// The branch.
    pub branch: BranchInfo,
    /// The new customer (no owner yet).
    pub customer: CustomerInfo,
    /// The branch's reps and their load.
    pub reps: Vec<RepLoad>,
}

/// Output of `assign`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignOutput {
    /// The chosen owner; none leaves the customer unassigned.
    #[serde(default)]
    pub owner: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// A signed order (deal) as a bonus rule sees it, converted to CNY.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OrderInfo {
    /// Deal id.
    pub deal_id: String,
    /// Signing date in the branch's calendar (`YYYY-MM-DD`).
    pub signed_on: String,
    /// Amount in CNY.
    #[serde(deserialize_with = "de_decimal")]
    #[schema(value_type = String)]
    pub amount_cny: Decimal,
    /// Cost in CNY.
    #[serde(deserialize_with = "de_decimal")]
    #[schema(value_type = String)]
    pub cost_cny: Decimal,
    /// Prepayment share, 0 to 1.
    #[serde(default, deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<String>)]
    pub prepayment_ratio: Option<Decimal>,
}

/// Input of `bonus`: one subject (a deal, a customer or a rep) of a period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BonusInput {
    /// The branch.
    pub branch: BranchInfo,
    /// The period: `2026-03`, `2026-Q1`, `2026-H1` or `2026`.
    pub period: String,
    /// month | quarter | half | year.
    pub period_kind: String,
    /// The rep the subject belongs to.
    pub rep: String,
    /// deal | customer | rep.
    pub subject_kind: String,
    /// The subject's id (deal id, customer id or rep name).
    pub subject: String,
    /// The signed deal, for deal subjects.
    pub deal: Option<DealInfo>,
    /// CNY per 1 USD on the signing date.
    #[serde(default, deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<String>)]
    pub cny_per_usd: Option<Decimal>,
    /// Units of the deal currency per 1 USD on the signing date.
    #[serde(default, deserialize_with = "de_opt_decimal")]
    #[schema(value_type = Option<String>)]
    pub per_usd: Option<Decimal>,
    /// The customer, for customer subjects.
    pub customer: Option<CustomerInfo>,
    /// The customer's orders in its window, for customer subjects.
    pub orders: Vec<OrderInfo>,
    /// Self-developed customers whose first order fell in the period, for rep subjects.
    pub new_customers: i64,
}

/// One bonus line a rule pays (or deducts, when negative).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BonusLine {
    /// The rule's name.
    pub rule: String,
    /// Amount in CNY (negative for a deduction).
    #[serde(deserialize_with = "de_decimal")]
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// The inputs used, the tier hit and the thresholds checked.
    pub explanation: String,
    /// A flag for the manager without money (e.g. territory re-plan).
    #[serde(default)]
    pub flag: Option<String>,
}

/// Output of `bonus`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BonusOutput {
    /// Lines to pay; none when the rule does not apply.
    #[serde(default)]
    pub lines: Vec<BonusLine>,
}
