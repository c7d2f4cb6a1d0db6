//! Events: what happened to which resource. Every kind the server publishes
//! is listed in [`EventKind`]; every event names its resource
//! ([`ResourceRef`]: kind, id, branch, owner and where to read it), and who
//! may receive it is exactly who may read that resource
//! (`Principal::may_read`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::customer::Customer;
use super::deal::Deal;
use super::record::Record;
use super::settlement::Settlement;
use super::task::Task;

/// Every kind of event, and the resource kind each one is about.
///
/// | kind | resource | when |
/// |---|---|---|
/// | `branch_created` | branch | an admin adds a branch |
/// | `pipeline_changed` | pipeline | a branch's stages or moves are replaced |
/// | `brand_created` | brand | an admin adds a brand |
/// | `fx_rate_added` | fx_rate | an admin records a rate |
/// | `fx_rate_corrected` | fx_rate | an admin corrects a rate, with a reason |
/// | `customer_created` | customer | a customer is created (assigned or not) |
/// | `customer_changed` | customer | a customer's fields are changed |
/// | `owner_changed` | customer or deal | a customer or deal gets another owner |
/// | `tier_changed` | customer | a re-tier moves a customer to another tier |
/// | `record_added` | record | a communication record is logged |
/// | `record_corrected` | record | a record is corrected |
/// | `deal_created` | deal | a deal is opened |
/// | `deal_changed` | deal | a deal's fields are changed |
/// | `transition` | deal | a deal moves to another stage |
/// | `veto` | deal | a guard refuses a move |
/// | `override` | deal | an admin forces a vetoed move |
/// | `policy_event` | deal | an after-hook reports something |
/// | `deal_cancelled` | deal | a signed contract is cancelled |
/// | `task_created` | task | an after-hook creates a follow-up task |
/// | `task_closed` | task | a task is completed or dismissed |
/// | `policy_uploaded` | policy | a new policy version is stored |
/// | `policy_activated` | policy | a version goes live |
/// | `policy_rolled_back` | policy | an earlier version than the live one goes live |
/// | `policy_deactivated` | policy | no version of a policy is live any more |
/// | `settlement_drafted` | settlement | a draft is computed (or re-run) |
/// | `settlement_approved` | settlement | the branch's manager approves it |
/// | `award_announced` | statement | an approval announces one rep's award |
/// | `settlement_paid` | settlement | a settlement is marked paid |
/// | `token_revoked` | token | a token stops working |
///
/// Not stored, sent by `GET /v1/events` itself: `events_lost` (the
/// position asked for is older than the retention, or unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An admin added a branch.
    BranchCreated,
    /// A branch's pipeline was replaced.
    PipelineChanged,
    /// An admin added a brand.
    BrandCreated,
    /// An admin recorded an FX rate.
    FxRateAdded,
    /// An admin corrected an FX rate.
    FxRateCorrected,
    /// A customer was created.
    CustomerCreated,
    /// A customer's fields changed.
    CustomerChanged,
    /// A customer or deal got another owner.
    OwnerChanged,
    /// A customer moved to another tier.
    TierChanged,
    /// A communication record was logged.
    RecordAdded,
    /// A communication record was corrected.
    RecordCorrected,
    /// A deal was opened.
    DealCreated,
    /// A deal's fields changed.
    DealChanged,
    /// A deal moved to another stage.
    Transition,
    /// A guard refused a move.
    Veto,
    /// An admin forced a vetoed move.
    Override,
    /// An after-hook reported something.
    PolicyEvent,
    /// A signed contract was cancelled.
    DealCancelled,
    /// An after-hook created a follow-up task.
    TaskCreated,
    /// A task was completed or dismissed.
    TaskClosed,
    /// A policy version was stored.
    PolicyUploaded,
    /// A policy version went live.
    PolicyActivated,
    /// A version earlier than the live one went live.
    PolicyRolledBack,
    /// No version of a policy is live any more.
    PolicyDeactivated,
    /// A settlement draft was computed.
    SettlementDrafted,
    /// A settlement was approved.
    SettlementApproved,
    /// One rep's award, announced by an approval.
    AwardAnnounced,
    /// A settlement was paid.
    SettlementPaid,
    /// A token was revoked.
    TokenRevoked,
}

impl EventKind {
    /// Every kind, in the order of the table above.
    pub const ALL: [EventKind; 29] = [
        EventKind::BranchCreated,
        EventKind::PipelineChanged,
        EventKind::BrandCreated,
        EventKind::FxRateAdded,
        EventKind::FxRateCorrected,
        EventKind::CustomerCreated,
        EventKind::CustomerChanged,
        EventKind::OwnerChanged,
        EventKind::TierChanged,
        EventKind::RecordAdded,
        EventKind::RecordCorrected,
        EventKind::DealCreated,
        EventKind::DealChanged,
        EventKind::Transition,
        EventKind::Veto,
        EventKind::Override,
        EventKind::PolicyEvent,
        EventKind::DealCancelled,
        EventKind::TaskCreated,
        EventKind::TaskClosed,
        EventKind::PolicyUploaded,
        EventKind::PolicyActivated,
        EventKind::PolicyRolledBack,
        EventKind::PolicyDeactivated,
        EventKind::SettlementDrafted,
        EventKind::SettlementApproved,
        EventKind::AwardAnnounced,
        EventKind::SettlementPaid,
        EventKind::TokenRevoked,
    ];

    /// The name clients see (the SSE `event:` field).
    pub fn name(self) -> &'static str {
        match self {
            EventKind::BranchCreated => "branch_created",
            EventKind::PipelineChanged => "pipeline_changed",
            EventKind::BrandCreated => "brand_created",
            EventKind::FxRateAdded => "fx_rate_added",
            EventKind::FxRateCorrected => "fx_rate_corrected",
            EventKind::CustomerCreated => "customer_created",
            EventKind::CustomerChanged => "customer_changed",
            EventKind::OwnerChanged => "owner_changed",
            EventKind::TierChanged => "tier_changed",
            EventKind::RecordAdded => "record_added",
            EventKind::RecordCorrected => "record_corrected",
            EventKind::DealCreated => "deal_created",
            EventKind::DealChanged => "deal_changed",
            EventKind::Transition => "transition",
            EventKind::Veto => "veto",
            EventKind::Override => "override",
            EventKind::PolicyEvent => "policy_event",
            EventKind::DealCancelled => "deal_cancelled",
            EventKind::TaskCreated => "task_created",
            EventKind::TaskClosed => "task_closed",
            EventKind::PolicyUploaded => "policy_uploaded",
            EventKind::PolicyActivated => "policy_activated",
            EventKind::PolicyRolledBack => "policy_rolled_back",
            EventKind::PolicyDeactivated => "policy_deactivated",
            EventKind::SettlementDrafted => "settlement_drafted",
            EventKind::SettlementApproved => "settlement_approved",
            EventKind::AwardAnnounced => "award_announced",
            EventKind::SettlementPaid => "settlement_paid",
            EventKind::TokenRevoked => "token_revoked",
        }
    }
}

/// What kind of thing an event is about; each has one read rule
/// (`Principal::may_read`) shared by its REST reads and by the events
/// about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A branch office (`GET /v1/branches/{id}`).
    Branch,
    /// A branch's pipeline (`GET /v1/branches/{id}/pipeline`).
    Pipeline,
    /// A brand (`GET /v1/brands/{id}`).
    Brand,
    /// An FX rate (`GET /v1/fx-rates?currency=`).
    FxRate,
    /// A customer (`GET /v1/customers/{id}`).
    Customer,
    /// A communication record (`GET /v1/customers/{id}/records/{record}`).
    Record,
    /// A deal (`GET /v1/deals/{id}`).
    Deal,
    /// A follow-up task (`GET /v1/tasks/{id}`).
    Task,
    /// A settlement (`GET /v1/settlements/{id}`).
    Settlement,
    /// A rep's statement of a period (`GET /v1/statements?branch=&rep=&period=`).
    Statement,
    /// A policy (`GET /v1/policies/{name}`).
    Policy,
    /// A bearer token (its holder, never its secret).
    Token,
}

/// The resource an event is about: enough to decide who may read it and
/// to fetch it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ResourceRef {
    /// What it is.
    pub kind: ResourceKind,
    /// Its id (a statement's: its period; an FX rate's: `CUR/date`).
    pub id: String,
    /// Its branch; absent for what belongs to no branch (brands, FX rates,
    /// global policies, admin tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// Its owner where reps see only their own: a deal's owner, a record's
    /// author, a task's assignee, a statement's rep; a customer's owner
    /// (customers are read by their whole branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Where to read it (`GET`, same token).
    pub href: String,
}

impl ResourceRef {
    fn new(kind: ResourceKind, id: &str, branch: Option<&str>, owner: Option<&str>) -> Self {
        Self {
            kind,
            id: id.into(),
            branch: branch.map(str::to_string),
            owner: owner.map(str::to_string),
            href: String::new(),
        }
    }

    fn at(mut self, href: String) -> Self {
        self.href = href;
        self
    }

    /// A branch.
    pub fn branch(id: &str) -> Self {
        Self::new(ResourceKind::Branch, id, Some(id), None).at(format!("/v1/branches/{id}"))
    }

    /// A branch's pipeline.
    pub fn pipeline(branch: &str) -> Self {
        Self::new(ResourceKind::Pipeline, branch, Some(branch), None)
            .at(format!("/v1/branches/{branch}/pipeline"))
    }

    /// A brand.
    pub fn brand(id: &str) -> Self {
        Self::new(ResourceKind::Brand, id, None, None).at(format!("/v1/brands/{id}"))
    }

    /// The FX rate of `currency` from `date`.
    pub fn fx_rate(currency: &str, date: &str) -> Self {
        Self::new(
            ResourceKind::FxRate,
            &format!("{currency}/{date}"),
            None,
            None,
        )
        .at(format!("/v1/fx-rates/{currency}/{date}"))
    }

    /// A customer.
    pub fn customer(c: &Customer) -> Self {
        Self::new(
            ResourceKind::Customer,
            &c.id,
            Some(&c.branch),
            c.owner.as_deref(),
        )
        .at(format!("/v1/customers/{}", c.id))
    }

    /// A communication record (owned by whoever entered it).
    pub fn record(r: &Record) -> Self {
        Self::new(
            ResourceKind::Record,
            &r.id,
            Some(&r.branch),
            Some(&r.created_by),
        )
        .at(format!("/v1/customers/{}/records/{}", r.customer_id, r.id))
    }

    /// A deal.
    pub fn deal(d: &Deal) -> Self {
        Self::new(ResourceKind::Deal, &d.id, Some(&d.branch), Some(&d.owner))
            .at(format!("/v1/deals/{}", d.id))
    }

    /// A follow-up task (owned by its assignee).
    pub fn task(t: &Task) -> Self {
        Self::new(
            ResourceKind::Task,
            &t.id,
            Some(&t.branch),
            Some(&t.assignee),
        )
        .at(format!("/v1/tasks/{}", t.id))
    }

    /// A settlement.
    pub fn settlement(s: &Settlement) -> Self {
        Self::new(ResourceKind::Settlement, &s.id, Some(&s.branch), None)
            .at(format!("/v1/settlements/{}", s.id))
    }

    /// The statement of `rep` in `branch` for `period`.
    pub fn statement(branch: &str, rep: &str, period: &str) -> Self {
        Self::new(ResourceKind::Statement, period, Some(branch), Some(rep)).at(format!(
            "/v1/statements?{}",
            query(&[("branch", branch), ("rep", rep), ("period", period)])
        ))
    }

    /// A policy of `branch` (`None`: global).
    pub fn policy(name: &str, branch: Option<&str>) -> Self {
        Self::new(ResourceKind::Policy, name, branch, None).at(format!("/v1/policies/{name}"))
    }

    /// The token `id` held by `user` (a manager's or rep's has a branch).
    pub fn token(id: &str, branch: Option<&str>, user: &str) -> Self {
        Self::new(ResourceKind::Token, id, branch, Some(user)).at(format!("/v1/tokens/{id}"))
    }
}

/// A URL query string, each value encoded.
fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    q.finish()
}

/// An event as stored in the log and sent to subscribers (its id is its
/// position in the log, sent as the SSE `id:` field).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// When it was recorded (millisecond precision).
    pub at: DateTime<Utc>,
    /// Who did it (`system` for the server's own work).
    pub by: String,
    /// What it happened to.
    pub resource: ResourceRef,
    /// The resource's branch (as `resource.branch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The resource's owner (as `resource.owner`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// What a reader of the resource may know of the change (the kind's
    /// own fields).
    #[schema(value_type = Object)]
    pub data: Value,
}
