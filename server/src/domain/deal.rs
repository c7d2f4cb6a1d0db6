//! Deals: a contract in the making, its lines, and where it is in the pipeline.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::money::{de_decimal, de_opt_decimal};
use super::pipeline::StageKind;

fn open_kind() -> StageKind {
    StageKind::Open
}

/// One line of a deal: a product of a brand, its amount and its cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Line {
    /// Brand id (must be in the catalog).
    #[schema(schema_with = crate::domain::schema::slug)]
    pub brand: String,
    /// Product name.
    #[schema(schema_with = crate::domain::schema::name)]
    pub product: String,
    /// Sale amount in the deal's currency.
    #[serde(deserialize_with = "de_decimal")]
    #[schema(schema_with = crate::domain::schema::amount)]
    pub amount: Decimal,
    /// Cost in the deal's currency.
    #[serde(deserialize_with = "de_decimal")]
    #[schema(schema_with = crate::domain::schema::cost)]
    pub cost: Decimal,
}

/// A deal.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Deal {
    /// Server id.
    pub id: String,
    /// The customer's branch.
    pub branch: String,
    /// The customer.
    pub customer_id: String,
    /// Title.
    pub title: String,
    /// The rep who owns the deal.
    pub owner: String,
    /// ISO 4217 currency of every line.
    pub currency: String,
    /// The customer's real needs as found out (docs/business-rules.md §4).
    pub needs: Vec<String>,
    /// Share of the first order paid up front, 0 to 1.
    #[schema(value_type = Option<String>)]
    pub prepayment_ratio: Option<Decimal>,
    /// When the deal was opened.
    #[serde(with = "crate::domain::time::ms")]
    pub opened_at: DateTime<Utc>,
    /// The lines.
    pub lines: Vec<Line>,
    /// Sum of line amounts.
    #[schema(value_type = String)]
    pub amount_total: Decimal,
    /// Sum of line costs.
    #[schema(value_type = String)]
    pub cost_total: Decimal,
    /// Current stage id.
    pub stage: String,
    /// When the current stage was entered.
    #[serde(with = "crate::domain::time::ms")]
    pub stage_entered_at: DateTime<Utc>,
    /// The kind the current stage had when the deal entered it: a signed
    /// deal stays final, and a lost one stays lost, whatever later happens
    /// to the branch's pipeline.
    #[serde(default = "open_kind")]
    pub stage_kind: StageKind,
    /// Every stage the deal has been in, in order.
    pub stages_passed: Vec<String>,
    /// When the deal reached a won stage.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub signed_at: Option<DateTime<Utc>>,
    /// When the deal reached a lost stage.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub lost_at: Option<DateTime<Utc>>,
    /// Brands whose first sale this contract is (the earliest signed,
    /// not cancelled, with the brand): what the new-brand bonus (docs/business-rules.md
    /// §5.1) pays on.
    #[serde(default)]
    pub new_brands: Vec<String>,
    /// When a signed contract was cancelled (settlements reverse what it
    /// was paid).
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled.
    #[serde(default)]
    pub cancel_reason: Option<String>,
    /// Attributes set by after-transition policies and by managers (e.g. an
    /// approval a guard asks for).
    #[serde(default)]
    pub attributes: std::collections::BTreeMap<String, String>,

    /// Created at.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    #[serde(with = "crate::domain::time::ms")]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl Deal {
    /// Recomputes the totals from the lines.
    pub fn retotal(&mut self) {
        self.amount_total = self
            .lines
            .iter()
            .map(|l| l.amount)
            .sum::<Decimal>()
            .normalize();
        self.cost_total = self
            .lines
            .iter()
            .map(|l| l.cost)
            .sum::<Decimal>()
            .normalize();
    }
}

/// Needs come as one text or a list of texts.
fn de_needs<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Needs {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Needs>::deserialize(d)? {
        None => None,
        Some(Needs::One(s)) => Some(vec![s]),
        Some(Needs::Many(v)) => Some(v),
    })
}

/// Body of `POST /v1/deals`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeal {
    /// The customer.
    pub customer_id: String,
    /// Title.
    #[schema(schema_with = crate::domain::schema::name)]
    pub title: String,
    /// The owning rep.
    #[schema(schema_with = crate::domain::schema::user)]
    pub owner: String,
    /// ISO 4217 currency.
    #[schema(schema_with = crate::domain::schema::currency)]
    pub currency: String,
    /// Needs found so far (a text or a list of texts).
    #[serde(default, deserialize_with = "de_needs")]
    #[schema(schema_with = crate::domain::schema::needs)]
    pub needs: Option<Vec<String>>,
    /// Share paid up front, 0 to 1.
    #[serde(default, deserialize_with = "de_opt_decimal")]
    #[schema(schema_with = crate::domain::schema::ratio)]
    pub prepayment_ratio: Option<Decimal>,
    /// When the deal was opened (for importing history); now when absent.
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_instant")]
    #[schema(schema_with = crate::domain::schema::opt_instant)]
    pub opened_at: Option<DateTime<Utc>>,
    /// At least one line.
    #[schema(schema_with = crate::domain::schema::lines)]
    pub lines: Vec<Line>,
}

/// Body of `PATCH /v1/deals/{id}`: absent fields stay; the stage moves only
/// through transitions.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DealPatch {
    /// New title.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_name)]
    pub title: Option<String>,
    /// New owner.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_user)]
    pub owner: Option<String>,
    /// New currency.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_currency)]
    pub currency: Option<String>,
    /// Replaces the needs.
    #[serde(default, deserialize_with = "de_needs")]
    #[schema(schema_with = crate::domain::schema::needs)]
    pub needs: Option<Vec<String>>,
    /// New prepayment ratio, or `null` to clear.
    #[serde(default, deserialize_with = "de_opt_opt_decimal")]
    #[schema(schema_with = crate::domain::schema::ratio)]
    pub prepayment_ratio: Option<Option<Decimal>>,
    /// Replaces the lines.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_lines)]
    pub lines: Option<Vec<Line>>,
    /// Corrects when a signed contract was signed. Once a deal is signed,
    /// its lines, currency, prepayment and signing time are changed only by
    /// the branch's managers and admins, each time with a `reason`.
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_instant")]
    #[schema(schema_with = crate::domain::schema::opt_instant)]
    pub signed_at: Option<DateTime<Utc>>,
    /// Sets (a string) or removes (`null`) deal attributes; managers and
    /// admins only, since guards read them as approvals.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::attributes)]
    pub attributes: Option<std::collections::BTreeMap<String, Option<String>>>,
    /// Why: required when a manager or admin gives the deal to another
    /// owner; kept in the deal's history.
    #[serde(default)]
    pub reason: Option<String>,
}

pub use super::validate::{MAX_LINES, MAX_NEEDS};

/// Most attributes a deal may carry.
pub const MAX_ATTRIBUTES: usize = 64;

/// Checks an attribute: keys are 1-64 of `[A-Za-z0-9_.-]`, values at most
/// 1000 characters.
pub fn check_attribute(key: &str, value: &str) -> Result<(), String> {
    let key_ok = (1..=64).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if key_ok && value.chars().count() <= 1000 && !value.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(format!(
            "attribute `{key}`: keys are 1-64 of [A-Za-z0-9_.-], values at most 1000 characters without control characters"
        ))
    }
}

fn de_opt_opt_decimal<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Decimal>>, D::Error> {
    de_opt_decimal(d).map(Some)
}

/// Body of `POST /v1/deals/{id}/cancel`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why the signed contract is cancelled (kept in its history).
    #[schema(schema_with = crate::domain::schema::name)]
    pub reason: String,
    /// Business time of the cancellation (defaults to now).
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_instant")]
    #[schema(schema_with = crate::domain::schema::opt_instant)]
    pub at: Option<DateTime<Utc>>,
}

/// Body of `POST /v1/deals/{id}/transitions`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    /// Target stage.
    pub to: String,
    /// Business time of the move; now when absent.
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_instant")]
    #[schema(schema_with = crate::domain::schema::opt_instant)]
    pub at: Option<DateTime<Utc>>,
    /// A note kept in the history.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_text)]
    pub note: Option<String>,
    /// Check only: report every verdict and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    /// Admin only: force a vetoed move, with this reason recorded.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_required_text)]
    pub override_reason: Option<String>,
}

/// Response of a dry run: would the move pass, and why not.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransitionCheck {
    /// Always true for this response.
    pub dry_run: bool,
    /// Whether the move would be made.
    pub allowed: bool,
    /// Current stage.
    pub from: String,
    /// Requested stage.
    pub to: String,
    /// Stages reachable from the current one.
    pub allowed_targets: Vec<String>,
    /// Every check's verdict, in order.
    pub verdicts: Vec<Verdict>,
    /// What is missing for the move, as sentences.
    pub missing: Vec<String>,
}

/// One guard's refusal of a move, as a `guard_rejected` error and a `veto`
/// event name it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GuardVeto {
    /// The refusing policy.
    pub policy: String,
    /// Its version.
    pub version: u64,
    /// SHA-256 of that version.
    pub sha256: String,
    /// Its reason.
    pub reason: String,
    /// What it says is missing, as sentences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

/// One check's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Verdict {
    /// The rule or policy that decided.
    pub policy: String,
    /// Its version (0 for built-in pipeline rules).
    pub version: u64,
    /// Whether it allows the move.
    pub allow: bool,
    /// Why not, when it does not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
