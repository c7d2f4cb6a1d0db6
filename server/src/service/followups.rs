//! Follow-ups (docs/business-rules.md §2–3): customers due or overdue for contact under
//! their branch's `cadence` policy, and the open follow-up tasks that
//! after-hooks created; a new communication record clears a customer's due
//! state (it moves its last contact).

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::policy_failed;
use super::repo::decode;
use super::{now, ServiceError, Services};
use crate::accounts::cadence::{DueDates, DueStatus};
use crate::auth::Principal;
use crate::domain::branch::Branch;
use crate::domain::customer::{Customer, Tier};
use crate::domain::task::{Task, TaskStatus};
use crate::domain::validate::FieldError;
use crate::policy::hook_values::customer_info;
use crate::policy::hooks::{BranchInfo, CadenceInput, Hook};
use crate::policy::PolicyCalls;
use crate::store::keys;

/// Most customers and tasks one answer lists, by default and at most.
pub const FOLLOWUP_LIMIT: (usize, usize) = (1000, crate::domain::validate::MAX_FOLLOWUPS);

/// Filters of `GET /v1/followups`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FollowupFilter {
    /// Only this branch (non-admins: their own; admins: every branch when absent).
    pub branch: Option<String>,
    /// Only this owner's customers and this assignee's tasks (reps: themselves).
    pub owner: Option<String>,
    /// Customers whose contact falls due before this time (default: `as_of`),
    /// and tasks due before it (default: every open task).
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_instant")]
    #[param(schema_with = crate::domain::schema::opt_instant)]
    pub due_before: Option<DateTime<Utc>>,
    /// The time statuses are computed at (default: now).
    #[serde(default, deserialize_with = "crate::domain::time::de_opt_instant")]
    #[param(schema_with = crate::domain::schema::opt_instant)]
    pub as_of: Option<DateTime<Utc>>,
    /// Most customers and most tasks listed (default 1,000, at most 10,000).
    #[param(schema_with = crate::domain::schema::followup_limit)]
    pub limit: Option<usize>,
}

/// A customer to contact.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DueCustomer {
    /// Customer id.
    pub customer_id: String,
    /// Name.
    pub name: String,
    /// Branch.
    pub branch: String,
    /// Account manager.
    pub owner: Option<String>,
    /// Tier.
    pub tier: Tier,
    /// The cadence in days.
    pub every_days: i64,
    /// The latest communication record, if any.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub last_contact_at: Option<DateTime<Utc>>,
    /// Due after this time.
    #[serde(with = "crate::domain::time::ms")]
    pub due_at: DateTime<Utc>,
    /// Overdue after this time.
    #[serde(with = "crate::domain::time::ms")]
    pub overdue_at: DateTime<Utc>,
    /// Where it stands at `as_of`.
    pub status: DueStatus,
}

/// `GET /v1/followups`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Followups {
    /// When statuses were computed.
    #[serde(with = "crate::domain::time::ms")]
    pub as_of: DateTime<Utc>,
    /// Customers due before `due_before`, most overdue first.
    pub customers: Vec<DueCustomer>,
    /// Open follow-up tasks, earliest due first.
    pub tasks: Vec<Task>,
    /// Whether either list was cut at `limit`.
    pub truncated: bool,
}

impl Services {
    /// Customers due or overdue for contact and open follow-up tasks, in
    /// the caller's scope.
    pub async fn followups(
        &self,
        caller: &Principal,
        f: &FollowupFilter,
    ) -> Result<Followups, ServiceError> {
        let (default, max) = FOLLOWUP_LIMIT;
        let limit = match f.limit {
            None => default,
            Some(n) if (1..=max).contains(&n) => n,
            Some(n) => {
                return Err(ServiceError::BadParameter(FieldError::new(
                    "limit",
                    format!("must be between 1 and {max}, not {n}"),
                )))
            }
        };
        let owner = caller.owner_scope(f.owner.as_deref())?;
        let branches = match caller.list_scope(f.branch.as_deref())? {
            Some(b) => vec![self.repo.fetch::<Branch>(keys::BRANCH, "branch", &b)?.value],
            None => self
                .repo
                .store()
                .scan(&keys::prefix(keys::BRANCH, &[]), None, usize::MAX)?
                .iter()
                .map(|(k, v)| decode(k, v))
                .collect::<Result<_, _>>()?,
        };
        let as_of = f.as_of.unwrap_or_else(now);
        let due_before = f.due_before.unwrap_or(as_of);
        let mut out = Followups {
            as_of,
            customers: Vec::new(),
            tasks: Vec::new(),
            truncated: false,
        };
        for branch in &branches {
            // One more than shown: whether the list was cut.
            let due = if self.due_index_valid(&branch.id)? {
                self.indexed_due(&branch.id, owner.as_deref(), as_of, due_before, limit + 1)?
            } else {
                self.due_customers(branch, owner.as_deref(), as_of, due_before)
                    .await?
            };
            out.customers.extend(due);
            out.tasks.extend(self.indexed_tasks(
                &branch.id,
                owner.as_deref(),
                f.due_before,
                limit + 1,
            )?);
        }
        out.customers.sort_by(|a, b| {
            a.due_at
                .cmp(&b.due_at)
                .then(a.customer_id.cmp(&b.customer_id))
        });
        out.tasks
            .sort_by(|a, b| a.due_at.cmp(&b.due_at).then(a.id.cmp(&b.id)));
        out.truncated = out.customers.len() > limit || out.tasks.len() > limit;
        out.customers.truncate(limit);
        out.tasks.truncate(limit);
        Ok(out)
    }

    /// The follow-ups of `branch` (of `owner`) computed the straightforward
    /// way, however the indexes stand: the cadence policy asked about every
    /// customer in scope, every task of the branch read (what the indexed
    /// answer must equal: the tests' oracle).
    pub async fn followups_oracle(
        &self,
        branch: &str,
        owner: Option<&str>,
        as_of: DateTime<Utc>,
        due_before: Option<DateTime<Utc>>,
    ) -> Result<Followups, ServiceError> {
        let b: Branch = self.repo.fetch(keys::BRANCH, "branch", branch)?.value;
        let mut customers = self
            .due_customers(&b, owner, as_of, due_before.unwrap_or(as_of))
            .await?;
        let mut tasks = self.open_tasks(branch, owner, due_before)?;
        customers.sort_by(|a, b| {
            a.due_at
                .cmp(&b.due_at)
                .then(a.customer_id.cmp(&b.customer_id))
        });
        tasks.sort_by(|a, b| a.due_at.cmp(&b.due_at).then(a.id.cmp(&b.id)));
        Ok(Followups {
            as_of,
            customers,
            tasks,
            truncated: false,
        })
    }

    /// The branch's customers (or `owner`'s) whose contact falls due before
    /// `due_before`, under the branch's cadence policy.
    pub(crate) async fn due_customers(
        &self,
        branch: &Branch,
        owner: Option<&str>,
        as_of: DateTime<Utc>,
        due_before: DateTime<Utc>,
    ) -> Result<Vec<DueCustomer>, ServiceError> {
        let snapshot = self.policies.live.snapshot();
        let Some(policy) = snapshot.deciding(&branch.id, Hook::Cadence) else {
            return Ok(Vec::new());
        };
        let customers = self.customers_of(&branch.id, owner)?;
        let info = BranchInfo {
            id: branch.id.clone(),
            timezone: branch.timezone.clone(),
        };
        let run = Arc::clone(&policy);
        let answers = self
            .policies
            .executor
            .run(move |limits| {
                customers
                    .into_iter()
                    .map(|c| {
                        let input = Arc::new(CadenceInput {
                            branch: info.clone(),
                            customer: customer_info(&c),
                        });
                        let cadence = run.timed(|| run.exec.cadence(&input, limits))?;
                        Ok((c, cadence))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await
            .and_then(|r| r)
            .map_err(|e| policy_failed(&policy, "cadence", e))?;
        Ok(answers
            .into_iter()
            .filter_map(|(c, cadence)| {
                let dates = DueDates::of(&cadence, c.last_contact_at, c.created_at)?;
                (dates.due_at < due_before).then(|| DueCustomer {
                    status: dates.status(as_of),
                    customer_id: c.id,
                    name: c.name,
                    branch: c.branch,
                    owner: c.owner,
                    tier: c.tier,
                    every_days: cadence.every_days,
                    last_contact_at: c.last_contact_at,
                    due_at: dates.due_at,
                    overdue_at: dates.overdue_at,
                })
            })
            .collect())
    }

    /// Every customer of `branch` (or of `owner` in it).
    pub(crate) fn customers_of(
        &self,
        branch: &str,
        owner: Option<&str>,
    ) -> Result<Vec<Customer>, ServiceError> {
        let prefix = match owner {
            Some(o) => keys::prefix(keys::IX_CUSTOMER_OWNER, &[branch, o]),
            None => keys::prefix(keys::IX_CUSTOMER_BRANCH, &[branch]),
        };
        let mut out = Vec::new();
        for (_, id) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let id = String::from_utf8_lossy(&id);
            if let Some(c) = self
                .repo
                .read::<Customer>(&keys::key(keys::CUSTOMER, &[&id]))?
            {
                out.push(c.value);
            }
        }
        Ok(out)
    }

    /// Up to `limit` open tasks of `branch` (of `assignee`) due before
    /// `due_before`, earliest first, from the indexes of open tasks in due
    /// order.
    pub(crate) fn indexed_tasks(
        &self,
        branch: &str,
        assignee: Option<&str>,
        due_before: Option<DateTime<Utc>>,
        limit: usize,
    ) -> Result<Vec<Task>, ServiceError> {
        let prefix = match assignee {
            Some(a) => keys::prefix(keys::IX_TASK_DUE_OWNER, &[branch, a]),
            None => keys::prefix(keys::IX_TASK_DUE_BRANCH, &[branch]),
        };
        let stop = due_before.map(|d| [prefix.as_slice(), keys::instant(&d).as_bytes()].concat());
        let mut out = Vec::new();
        self.repo.walk(&prefix, None, limit.min(1024), |k, id| {
            if stop.as_deref().is_some_and(|s| k >= s) || out.len() == limit {
                return Ok(false);
            }
            let id = String::from_utf8_lossy(id);
            // An index entry and its task are written in one batch.
            if let Some(t) = self.repo.read::<Task>(&keys::key(keys::TASK, &[&id]))? {
                out.push(t.value);
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Open tasks of `branch` (of `assignee`), due before `due_before`,
    /// read from every task of the branch (the straightforward answer the
    /// indexes of open tasks give: the tests' oracle).
    pub fn open_tasks(
        &self,
        branch: &str,
        assignee: Option<&str>,
        due_before: Option<DateTime<Utc>>,
    ) -> Result<Vec<Task>, ServiceError> {
        let mut out = Vec::new();
        let prefix = keys::prefix(keys::IX_TASK_BRANCH, &[branch]);
        for (_, id) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let id = String::from_utf8_lossy(&id);
            let Some(t) = self.repo.read::<Task>(&keys::key(keys::TASK, &[&id]))? else {
                continue;
            };
            let t = t.value;
            if t.status == TaskStatus::Open
                && assignee.is_none_or(|a| t.assignee == a)
                && due_before.is_none_or(|d| t.due_at < d)
            {
                out.push(t);
            }
        }
        Ok(out)
    }
}
