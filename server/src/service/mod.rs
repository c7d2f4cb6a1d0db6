//! Use cases over the store, one file per resource: validate, authorize,
//! read, write one atomic batch. Handlers call exactly one function here.

mod assignment;
pub mod backup;
mod branches;
mod brands;
mod customers;
mod deals;
mod due_index;
mod error;
pub(crate) mod events;
mod first_sales;
mod followups;
mod fx;
mod jobs;
mod overdue;
mod page;
mod pipelines;
mod policies;
mod records;
mod rep_counts;
pub(crate) mod repo;
mod reports;
mod revenue_counts;
pub mod rule_book;
mod sessions;
mod settlement_csv;
mod settlement_run;
mod settlements;
mod tasks;
mod tiering;
mod tokens;
mod upgrade;

use std::sync::Arc;

pub use customers::CustomerFilter;
pub(crate) use customers::{check_version, stage_customer};
pub use deals::DealFilter;
pub(crate) use deals::{stage_deal, stage_signing_indexes, veto_key};
pub(crate) use error::policy_failed;
pub use error::ServiceError;
pub use events::{Delivery, EventHub, Retention, DEFAULT_RETENTION};
pub use followups::{DueCustomer, FollowupFilter, Followups};
pub use jobs::{JobFailure, JobHub, JobProgress, Progress};
pub use page::{Page, PageRequest};
pub use pipelines::{OrphanedStage, PipelineCache, PipelineChange};
pub use policies::{
    ActivateRequest, Activation, DeactivateRequest, DecidingPolicy, EffectiveHook, NewPolicy,
    Policy, PolicyRegistry, PolicyVersion, PolicyVersionDetail, UploadedPolicy,
};
pub use records::RecordFilter;
pub(crate) use repo::encode;
pub use repo::Repo;
pub use reports::{
    PipelineQuery, PipelineReport, ReferralQuery, ReferralReport, Referred, Referrer, RepSpread,
    StageValue, TeamQuery, TeamReport,
};
pub use rule_book::{RuleBook, RuleVersion};
pub use sessions::{Credential, SessionCaller, SessionConfig, SessionHub, DEFAULT_SESSIONS};
pub use settlement_csv::{settlement_csv, statement_csv};
pub use settlements::{LineQuery, LinesWanted, SettlementFilter};
pub(crate) use tasks::stage_task;
pub use tasks::TaskFilter;
pub(crate) use tiering::stage_tier_mark;
pub use tiering::{RetierReport, TierChange, TierQueue, TieringPolicy};
pub use tokens::AdminBootstrap;

use crate::policy::executor::Executor;
use crate::policy::Limits;
use crate::store::Store;

/// How many times a read-modify-write is retried when a concurrent writer
/// changed the record first (only without `If-Match`).
pub(crate) const MAX_RETRIES: usize = 16;

/// Every use case, sharing one repository.
#[derive(Clone)]
pub struct Services {
    /// Typed access to the store.
    pub(crate) repo: Repo,
    /// Valid tokens seen so far, by hash.
    tokens: Arc<tokens::TokenCache>,
    /// Effective pipelines by branch.
    pub(crate) pipelines: Arc<pipelines::PipelineCache>,
    /// Policy versions, the live set and the executor.
    pub(crate) policies: Arc<PolicyRegistry>,
    /// The event log's retention, trimming and subscriptions.
    pub(crate) events: Arc<EventHub>,
    /// Branches waiting for a re-tier.
    pub(crate) tiering: Arc<TierQueue>,
    /// Branches whose due index waits for recomputation.
    pub(crate) due_queue: Arc<due_index::DueQueue>,
    /// The conversion of revenue counters after an FX change.
    pub(crate) revenue_queue: Arc<revenue_counts::RevenueQueue>,
    /// The backup running now, if any.
    backups: Arc<backup::Backups>,
    /// Browser sessions: lifetimes, last uses, the "ended" signal.
    pub(crate) sessions: Arc<SessionHub>,
    /// Running jobs and their progress messages.
    pub(crate) jobs: Arc<JobHub>,
}

/// Most policy executions running at once, by default.
pub const DEFAULT_MAX_CONCURRENT_POLICIES: usize = 16;

impl Services {
    /// Services over `store` with default policy limits; an error when a
    /// policy engine cannot start (e.g. the WebAssembly engine's memory
    /// pool cannot be reserved).
    pub fn new(store: Arc<dyn Store>) -> Result<Self, crate::policy::PolicyError> {
        let executor = Executor::new(Limits::default(), DEFAULT_MAX_CONCURRENT_POLICIES)?;
        Ok(Self::with_executor(store, executor))
    }

    /// Services over `store` running policies with `executor`.
    pub fn with_executor(store: Arc<dyn Store>, executor: Executor) -> Self {
        let events = Arc::new(EventHub::default());
        let repo = Repo::new(store, Arc::clone(&events));
        Self {
            tokens: Arc::new(tokens::TokenCache::default()),
            pipelines: Arc::default(),
            policies: Arc::new(PolicyRegistry::new(executor)),
            events,
            tiering: Arc::default(),
            due_queue: Arc::default(),
            revenue_queue: Arc::default(),
            backups: Arc::default(),
            sessions: Arc::default(),
            jobs: Arc::default(),
            repo,
        }
    }

    /// The same services keeping events for `retention` (call before
    /// serving).
    pub fn with_event_retention(mut self, retention: Retention) -> Self {
        self.events = Arc::new(EventHub::new(retention));
        self.repo = Repo::new(self.repo.shared_store(), Arc::clone(&self.events));
        self
    }

    /// The same services with sessions lasting as `config` says (call
    /// before serving).
    pub fn with_sessions(mut self, config: SessionConfig) -> Self {
        self.sessions = Arc::new(SessionHub::new(config));
        self
    }

    /// Trims the event log to its retention in the background (at start:
    /// afterwards writes keep it trimmed).
    pub fn trim_events(&self) {
        self.events.start_trim(&self.repo.shared_store());
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<(), ServiceError> {
        Ok(self.repo.store().flush()?)
    }

    /// True when the store answers reads.
    pub fn healthy(&self) -> bool {
        self.repo.store().get(b"meta\0health").is_ok()
    }
}

/// The current time at millisecond precision (what we store and show).
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(3)
}

/// Business times (`at`, `opened_at`) may import the past but not the
/// future beyond a little clock skew.
pub(crate) fn check_business_time(
    field: &str,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<chrono::DateTime<chrono::Utc>, ServiceError> {
    use chrono::SubsecRound;
    let now = now();
    match at {
        None => Ok(now),
        Some(t) if t > now + chrono::Duration::minutes(5) => {
            Err(ServiceError::invalid(field, "must not be in the future"))
        }
        Some(t) if t.timestamp() < 0 => Err(ServiceError::invalid(field, "must be after 1970")),
        Some(t) => Ok(t.trunc_subsecs(3)),
    }
}
