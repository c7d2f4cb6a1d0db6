//! Settlements: what the bonus rules pay a branch's reps for a period, from
//! draft through approval to payment, and the statements drawn from them.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a settlement is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettlementStatus {
    /// Computed; may be re-run (which replaces it) or approved.
    Draft,
    /// Confirmed by the branch's manager; never changes again.
    Approved,
    /// Paid out; never changes again.
    Paid,
}

/// The policy version that produced a line: a receipt anyone can replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LinePolicy {
    /// Policy name.
    pub name: String,
    /// Version.
    pub version: u64,
    /// SHA-256 of the version's script or module.
    pub sha256: String,
}

/// One line of a settlement: one rep × rule × subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SettlementLine {
    /// The rep paid (or charged).
    pub rep: String,
    /// The rule's name.
    pub rule: String,
    /// Amount (negative for a deduction or a downward true-up).
    #[schema(value_type = String)]
    pub amount: Decimal,
    /// Always `CNY`.
    pub currency: String,
    /// The subject's id: a deal id, a customer id, or the rep's name.
    pub subject: String,
    /// `deal`, `customer` or `rep`.
    pub subject_kind: String,
    /// The subject's own period (a deal's month, a customer's quarter, a
    /// rep's half-year or year).
    pub subject_period: String,
    /// The day that chose the rule version (a deal's signing day, the last
    /// day of a customer's window, the last day of a rep's period).
    pub subject_day: NaiveDate,
    /// The inputs used, the tier hit and the thresholds checked.
    pub explanation: String,
    /// A flag for the manager without money (e.g. `territory_replan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// The version that computed it.
    pub policy: LinePolicy,
    /// The FX rates (and their versions) the subject's amounts were read
    /// with: an approved line keeps naming them after a rate is corrected.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fx_rates: Vec<crate::domain::fx::FxUsed>,
    /// For a true-up: what was settled before and where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adjusts: Option<Adjustment>,
}

/// What a true-up line corrects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Adjustment {
    /// The settlements that paid the subject so far.
    pub settlements: Vec<String>,
    /// What they paid in total.
    #[schema(value_type = String)]
    pub paid: Decimal,
    /// What the rule pays now.
    #[schema(value_type = String)]
    pub now: Decimal,
    /// Why it changed.
    pub reason: String,
}

/// One rep's total in a settlement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RepTotal {
    /// The rep.
    pub rep: String,
    /// Sum of their lines (CNY).
    #[schema(value_type = String)]
    pub total: Decimal,
    /// Their lines.
    pub lines: usize,
    /// Flags raised for them.
    pub flags: Vec<String>,
}

/// A settlement of one branch and period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Settlement {
    /// Server-generated id.
    pub id: String,
    /// The branch.
    pub branch: String,
    /// The period (`2026-03`, `2026-Q1`, `2026-H1`, `2026`).
    pub period: String,
    /// Lifecycle state.
    pub status: SettlementStatus,
    /// The lines, by rep, rule and subject (empty when asked for with
    /// `lines=none`: read them a page at a time from
    /// `GET /v1/settlements/{id}/lines`).
    pub lines: Vec<SettlementLine>,
    /// How many lines the settlement has (whether or not `lines` carries them).
    #[serde(default)]
    pub line_count: usize,
    /// Per-rep totals.
    pub totals: Vec<RepTotal>,
    /// Sum of every line (CNY).
    #[schema(value_type = String)]
    pub total: Decimal,
    /// Always `CNY`.
    pub currency: String,
    /// Subjects skipped because an approved settlement already pays them
    /// the same amount.
    pub already_settled: usize,
    /// Who ran it.
    pub created_by: String,
    /// When.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// Who approved it.
    #[serde(default)]
    pub approved_by: Option<String>,
    /// When.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub approved_at: Option<DateTime<Utc>>,
    /// Who marked it paid.
    #[serde(default)]
    pub paid_by: Option<String>,
    /// When.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub paid_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// Body of `POST /v1/settlements`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSettlement {
    /// The branch.
    #[schema(schema_with = crate::domain::schema::slug)]
    pub branch: String,
    /// `2026-03`, `2026-Q1`, `2026-H1` or `2026`.
    #[schema(schema_with = crate::domain::schema::period)]
    pub period: String,
}

/// Body of `POST /v1/policies/{name}/versions/{v}/simulate`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// The branch.
    #[schema(schema_with = crate::domain::schema::slug)]
    pub branch: String,
    /// The period, as for a settlement.
    #[schema(schema_with = crate::domain::schema::period)]
    pub period: String,
    /// Simulate activating it from this business date (as `activate` would).
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_day")]
    #[schema(schema_with = crate::domain::schema::opt_day)]
    pub effective_from: Option<NaiveDate>,
}

/// One rep's totals under the active rules and under the candidate.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RepComparison {
    /// The rep.
    pub rep: String,
    /// Total with the active versions.
    #[schema(value_type = String)]
    pub active: Decimal,
    /// Total with the candidate version.
    #[schema(value_type = String)]
    pub candidate: Decimal,
    /// `candidate − active`.
    #[schema(value_type = String)]
    pub difference: Decimal,
}

/// A line that differs between the active rules and the candidate.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LineChange {
    /// The line with the active versions (none: only the candidate pays it).
    pub active: Option<SettlementLine>,
    /// The line with the candidate (none: only the active rules pay it).
    pub candidate: Option<SettlementLine>,
}

/// What a candidate version would pay, beside the active rules; nothing is written.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Simulation {
    /// The policy.
    pub policy: String,
    /// The candidate version.
    pub version: u64,
    /// The branch.
    pub branch: String,
    /// The period.
    pub period: String,
    /// Per-rep totals, active against candidate.
    pub reps: Vec<RepComparison>,
    /// Total with the active versions.
    #[schema(value_type = String)]
    pub active_total: Decimal,
    /// Total with the candidate.
    #[schema(value_type = String)]
    pub candidate_total: Decimal,
    /// Every line that changes.
    pub changes: Vec<LineChange>,
    /// The settlement the candidate would draft (its lines and totals).
    pub candidate_lines: Vec<SettlementLine>,
}

/// One rep's statement for a period: their lines and totals by status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Statement {
    /// The rep.
    pub rep: String,
    /// The branch.
    pub branch: String,
    /// The period.
    pub period: String,
    /// Their lines, with the settlement and its status.
    pub lines: Vec<StatementLine>,
    /// Totals by settlement status (`draft`, `approved`, `paid`).
    #[schema(value_type = BTreeMap<String, String>)]
    pub totals: BTreeMap<String, Decimal>,
    /// Always `CNY`.
    pub currency: String,
}

/// A line of a statement.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatementLine {
    /// The settlement.
    pub settlement: String,
    /// Its status.
    pub status: SettlementStatus,
    /// The line.
    #[serde(flatten)]
    pub line: SettlementLine,
}

/// Sums lines per rep, reps in name order.
pub fn rep_totals(lines: &[SettlementLine]) -> Vec<RepTotal> {
    let mut by_rep: BTreeMap<&str, RepTotal> = BTreeMap::new();
    for l in lines {
        let t = by_rep.entry(&l.rep).or_insert_with(|| RepTotal {
            rep: l.rep.clone(),
            total: Decimal::ZERO,
            lines: 0,
            flags: Vec::new(),
        });
        t.total += l.amount;
        t.lines += 1;
        if let Some(f) = &l.flag {
            t.flags.push(f.clone());
        }
    }
    by_rep
        .into_values()
        .map(|mut t| {
            t.total = t.total.normalize();
            t
        })
        .collect()
}

impl Settlement {
    /// The settlement as read: `line_count` said (records stored before it
    /// existed have none), and the lines left out unless `with_lines`.
    pub fn read(mut self, with_lines: bool) -> Self {
        self.line_count = self.lines.len();
        if !with_lines {
            self.lines = Vec::new();
        }
        self
    }
}
