//! Customers: who they are, who owns them, where they came from, their tier.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kind of organisation (drives rules such as industrial prepayment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Industrial buyer.
    Industrial,
    /// Government buyer.
    Government,
    /// Other enterprise.
    Enterprise,
    /// A private person.
    Individual,
}

/// How the customer came to the company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Found and developed by the rep personally.
    SelfDeveloped,
    /// Handed to the rep.
    Assigned,
    /// Referred by another customer.
    Referral,
}

/// The 80/20 tier.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
pub enum Tier {
    /// Key customer (top revenue to 80 %).
    A,
    /// Next to 95 %.
    B,
    /// Everyone else.
    C,
}

impl Tier {
    /// `A`, `B` or `C`.
    pub fn name(self) -> &'static str {
        match self {
            Tier::A => "A",
            Tier::B => "B",
            Tier::C => "C",
        }
    }

    /// Parses [`Tier::name`].
    pub fn parse(s: &str) -> Option<Tier> {
        match s {
            "A" => Some(Tier::A),
            "B" => Some(Tier::B),
            "C" => Some(Tier::C),
            _ => None,
        }
    }
}

/// A customer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Customer {
    /// Server id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Owning branch.
    pub branch: String,
    /// The account manager (rep), when assigned.
    pub owner: Option<String>,
    /// Kind of organisation.
    pub segment: Segment,
    /// How the customer came.
    pub source: Source,
    /// The customer who referred this one.
    pub referred_by: Option<String>,
    /// Current tier.
    pub tier: Tier,
    /// Time of the latest communication record.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub last_contact_at: Option<DateTime<Utc>>,
    /// When its first order (its earliest signed deal not cancelled) was
    /// signed: the start of its 3-month window for the new-customer bonus
    /// (docs/business-rules.md §5.2).
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub first_order_at: Option<DateTime<Utc>>,
    /// Created at.
    #[serde(with = "crate::domain::time::ms")]
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    #[serde(with = "crate::domain::time::ms")]
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

/// Body of `POST /v1/customers`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// Display name.
    #[schema(schema_with = crate::domain::schema::name)]
    pub name: String,
    /// Owning branch.
    pub branch: String,
    /// Account manager; picked by the branch's assignment rule when absent.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_user)]
    pub owner: Option<String>,
    /// Kind of organisation.
    pub segment: Segment,
    /// How the customer came.
    pub source: Source,
    /// Referring customer id (same branch).
    #[serde(default)]
    pub referred_by: Option<String>,
}

/// Body of `PATCH /v1/customers/{id}`: absent fields stay, `null` clears.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// New display name.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_name)]
    pub name: Option<String>,
    /// New owner, or `null` to unassign.
    #[serde(default, deserialize_with = "crate::domain::patch::double_option")]
    #[schema(schema_with = crate::domain::schema::opt_user)]
    pub owner: Option<Option<String>>,
    /// New segment.
    #[serde(default)]
    pub segment: Option<Segment>,
    /// New source.
    #[serde(default)]
    pub source: Option<Source>,
    /// New referrer, or `null` to clear.
    #[serde(default, deserialize_with = "crate::domain::patch::double_option")]
    #[schema(value_type = Option<String>)]
    pub referred_by: Option<Option<String>>,
    /// Why the owner changes: required when a manager or admin reassigns
    /// the customer; kept in its history.
    #[serde(default)]
    pub reason: Option<String>,
}
