//! The due index: each customer's contact dates as its branch's `cadence`
//! policy answered them, kept in order of due time per owner and per
//! branch, so a rep's follow-ups are the first entries of one prefix
//! instead of a policy call per customer of the branch.
//!
//! The policy still decides; the index caches its answers. Every write
//! that changes what the policy sees of a customer (a record moving its
//! last contact, a tier, an owner, a name, a new customer) asks the policy
//! again and writes the answer in the same batch (`stage_due`), with the
//! entry's overdue time counted for the team report (`overdue`).
//!
//! Stale answers are never served. Each branch has a stamp naming the
//! cadence policy its entries follow (`keys::DUE_STAMP`), which every entry
//! write expects unchanged, and a mark while it is being recomputed
//! (`keys::DUE_DIRTY`). Activating or deactivating a cadence policy (or a
//! start that finds the stamp behind the live policy) writes the new stamp
//! and a mark after the live set changed, then a background worker asks
//! the policy about every customer of the branch and removes the mark: a
//! write that read the old stamp is refused and retried with the new
//! policy, so once the mark is gone every entry comes from the stamped
//! policy. Until then, or while the policy fails on some customer (whose
//! entry records the failure), follow-ups and reports compute the answer
//! the straightforward way (`followups::due_customers`), as before.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::followups::DueCustomer;
use super::repo::{decode, encode, Stored};
use super::{overdue, ServiceError, Services, MAX_RETRIES};
use crate::accounts::cadence::DueDates;
use crate::domain::branch::Branch;
use crate::domain::customer::{Customer, Tier};
use crate::policy::hook_values::customer_info;
use crate::policy::hooks::{BranchInfo, CadenceInput, CustomerInfo, Hook};
use crate::policy::live::LivePolicy;
use crate::policy::PolicyCalls;
use crate::store::{keys, Batch, StoreError};

/// Customers recomputed per batch by the background worker.
const PER_BATCH: usize = 256;
/// How long a failed recomputation waits before it is tried again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// A customer's contact dates under its cadence, with what a follow-up
/// list shows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DueEntry {
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
}

impl DueEntry {
    /// The entry as a follow-up list shows it at `as_of`.
    pub(crate) fn shown_at(self, as_of: DateTime<Utc>) -> DueCustomer {
        let dates = DueDates {
            due_at: self.due_at,
            overdue_at: self.overdue_at,
        };
        DueCustomer {
            status: dates.status(as_of),
            customer_id: self.customer_id,
            name: self.name,
            branch: self.branch,
            owner: self.owner,
            tier: self.tier,
            every_days: self.every_days,
            last_contact_at: self.last_contact_at,
            due_at: self.due_at,
            overdue_at: self.overdue_at,
        }
    }

    /// Its keys in the index by owner and by branch.
    fn index_keys(&self) -> [Vec<u8>; 2] {
        let due = keys::instant(&self.due_at);
        let owner = self.owner.as_deref().unwrap_or_default();
        [
            keys::key(
                keys::IX_DUE_OWNER,
                &[&self.branch, owner, &due, &self.customer_id],
            ),
            keys::key(
                keys::IX_DUE_BRANCH,
                &[&self.branch, &due, &self.customer_id],
            ),
        ]
    }
}

/// What the index holds for a customer (nothing: no cadence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub(crate) enum DueState {
    /// Listed with these dates.
    Due(DueEntry),
    /// The policy failed on it: the branch's index is not served.
    Failed,
}

/// A customer's index entry before and after a write, and the stamp the
/// answer was computed under (both expected unchanged at commit).
#[derive(Debug, Clone)]
pub(crate) struct DueUpdate {
    customer: String,
    branch: String,
    stamp: Option<Vec<u8>>,
    old_raw: Option<Vec<u8>>,
    old: Option<DueState>,
    new: Option<DueState>,
}

/// The due-index key of a customer.
fn pointer(customer: &str) -> Vec<u8> {
    keys::key(keys::DUE, &[customer])
}

fn stamp_key(branch: &str) -> Vec<u8> {
    keys::key(keys::DUE_STAMP, &[branch])
}

fn mark_key(branch: &str) -> Vec<u8> {
    keys::key(keys::DUE_DIRTY, &[branch])
}

fn failed_key(branch: &str) -> Vec<u8> {
    keys::key(keys::DUE_FAILED, &[branch])
}

/// The stamp of a policy deciding `cadence` (or of none).
fn identity(policy: Option<&LivePolicy>) -> Vec<u8> {
    match policy {
        Some(p) => format!("{}@{}@{}", p.name, p.version, p.sha256).into_bytes(),
        None => b"none".to_vec(),
    }
}

/// What the cadence policy sees of a customer: a change of it asks the
/// policy again.
pub(crate) fn cadence_view(c: &Customer) -> (CustomerInfo, DateTime<Utc>) {
    (customer_info(c), c.created_at)
}

/// Writes a customer's new entry: expects the stamp and the entry it was
/// computed from, moves its index keys and overdue count.
pub(crate) fn stage_due(batch: &mut Batch, u: &DueUpdate) {
    let key = pointer(&u.customer);
    batch.expect(key.clone(), u.old_raw.as_deref());
    batch.expect(stamp_key(&u.branch), u.stamp.as_deref());
    if u.old == u.new {
        return;
    }
    match &u.old {
        Some(DueState::Due(e)) => {
            for k in e.index_keys() {
                batch.delete(k);
            }
            let owner = e.owner.as_deref().unwrap_or_default();
            overdue::stage_instant(batch, &e.branch, owner, &e.customer_id, &e.overdue_at, -1);
        }
        Some(DueState::Failed) => {
            batch.add(
                failed_key(&u.branch),
                &[rust_decimal::Decimal::NEGATIVE_ONE],
            );
        }
        None => {}
    }
    match &u.new {
        Some(state) => {
            let value = encode(state);
            if let DueState::Due(e) = state {
                for k in e.index_keys() {
                    batch.put(k, value.clone());
                }
                let owner = e.owner.as_deref().unwrap_or_default();
                overdue::stage_instant(batch, &e.branch, owner, &e.customer_id, &e.overdue_at, 1);
            } else {
                batch.add(failed_key(&u.branch), &[rust_decimal::Decimal::ONE]);
            }
            batch.put(key, value);
        }
        None => {
            batch.delete(key);
        }
    }
}

/// Marks `branch`'s due index for recomputation in `batch` (a write that
/// changed what the cadence policy sees without asking it).
pub(crate) fn stage_due_mark(batch: &mut Batch, branch: &str, token: &str) {
    batch.put(mark_key(branch), token.as_bytes());
}

/// Branches whose due index waits for recomputation, and the worker's
/// state.
#[derive(Default)]
pub struct DueQueue {
    /// Marked branches not yet recomputed.
    pending: Mutex<BTreeSet<String>>,
    /// Whether a worker task is running.
    running: AtomicBool,
}

impl Services {
    /// The index entries for customers about to be written as `customers`
    /// (all of `branch`), asking the branch's live cadence policy.
    pub(crate) async fn due_updates(
        &self,
        branch: &str,
        customers: &[Customer],
    ) -> Result<Vec<DueUpdate>, ServiceError> {
        let store = self.repo.store();
        // The stamp first, then the live set: an answer from a policy
        // older than the stamp it expects cannot happen (see the header).
        let stamp = store.get(&stamp_key(branch))?;
        let policy = self
            .policies
            .live
            .snapshot()
            .deciding(branch, Hook::Cadence);
        let mut updates = Vec::with_capacity(customers.len());
        for c in customers {
            let old_raw = store.get(&pointer(&c.id))?;
            let old = old_raw
                .as_deref()
                .map(|raw| decode(&pointer(&c.id), raw))
                .transpose()?;
            updates.push(DueUpdate {
                customer: c.id.clone(),
                branch: branch.to_string(),
                stamp: stamp.clone(),
                old_raw,
                old,
                new: None,
            });
        }
        let Some(policy) = policy else {
            return Ok(updates);
        };
        let b: Branch = self.repo.fetch(keys::BRANCH, "branch", branch)?.value;
        let info = BranchInfo {
            id: b.id,
            timezone: b.timezone,
        };
        let owned = customers.to_vec();
        let run = Arc::clone(&policy);
        let work = move |limits: &crate::policy::Limits| {
            owned
                .iter()
                .map(|c| answer(&run, &info, c, limits))
                .collect::<Vec<_>>()
        };
        let answers = if customers.len() == 1 {
            self.policies
                .executor
                .run_hooks(policy.runs_inline(), work)
                .await
        } else {
            self.policies.executor.run(work).await
        };
        match answers {
            Ok(answers) => {
                for (u, a) in updates.iter_mut().zip(answers) {
                    u.new = a;
                }
            }
            Err(_) => {
                for u in &mut updates {
                    u.new = Some(DueState::Failed);
                }
            }
        }
        Ok(updates)
    }

    /// The one update of a customer about to be written as `c`.
    pub(crate) async fn due_update(&self, c: &Customer) -> Result<DueUpdate, ServiceError> {
        let mut all = self.due_updates(&c.branch, std::slice::from_ref(c)).await?;
        Ok(all.pop().expect("one update per customer"))
    }

    /// Whether `branch`'s due index may be served: no recomputation
    /// pending, it follows the live cadence policy, and no customer's
    /// answer failed.
    pub(crate) fn due_index_valid(&self, branch: &str) -> Result<bool, ServiceError> {
        let store = self.repo.store();
        let live = self
            .policies
            .live
            .snapshot()
            .deciding(branch, Hook::Cadence);
        Ok(store.get(&mark_key(branch))?.is_none()
            && store.get(&stamp_key(branch))?.as_deref()
                == Some(identity(live.as_deref()).as_slice())
            && store.get(&failed_key(branch))?.is_none())
    }

    /// Up to `limit` customers of `branch` (of `owner`) due before
    /// `due_before`, earliest first, from the index.
    pub(crate) fn indexed_due(
        &self,
        branch: &str,
        owner: Option<&str>,
        as_of: DateTime<Utc>,
        due_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<DueCustomer>, ServiceError> {
        let prefix = match owner {
            Some(o) => keys::prefix(keys::IX_DUE_OWNER, &[branch, o]),
            None => keys::prefix(keys::IX_DUE_BRANCH, &[branch]),
        };
        let stop = [prefix.as_slice(), keys::instant(&due_before).as_bytes()].concat();
        let mut out = Vec::new();
        self.repo.walk(&prefix, None, limit.min(1024), |k, v| {
            if k >= stop.as_slice() || out.len() == limit {
                return Ok(false);
            }
            if let DueState::Due(e) = decode::<DueState>(k, v)? {
                out.push(e.shown_at(as_of));
            }
            Ok(true)
        })?;
        Ok(out)
    }

    /// Marks `branches` whose due index does not follow the live cadence
    /// policy (or that are marked already) and queues them: after a
    /// cadence policy changed, and at start.
    pub(crate) async fn cadence_changed(&self, branches: &[String]) -> Result<(), ServiceError> {
        let store = self.repo.store();
        for branch in branches {
            let live = self
                .policies
                .live
                .snapshot()
                .deciding(branch, Hook::Cadence);
            let stamp = store.get(&stamp_key(branch))?;
            let wanted = identity(live.as_deref());
            if stamp.as_deref() != Some(wanted.as_slice()) {
                let token = self.repo.new_id("mark")?;
                let mut batch = Batch::new();
                batch.put(stamp_key(branch), wanted);
                stage_due_mark(&mut batch, branch, &token);
                self.repo.commit(batch).await?;
            } else if store.get(&mark_key(branch))?.is_none() {
                continue;
            }
            self.due_marked(branch);
        }
        Ok(())
    }

    /// Queues every branch for a check of its due index (at start, once
    /// the policies are live).
    pub async fn resume_due_index(&self) -> Result<(), ServiceError> {
        let branches = self.branch_ids()?;
        self.cadence_changed(&branches).await
    }

    /// The stamp of a new branch's due index (it has no customers yet).
    pub(crate) fn stage_new_branch_due(&self, batch: &mut Batch, branch: &str) {
        let live = self
            .policies
            .live
            .snapshot()
            .deciding(branch, Hook::Cadence);
        batch.put(stamp_key(branch), identity(live.as_deref()));
    }

    /// After a committed mark: recomputes the branch in the background.
    pub(crate) fn due_marked(&self, branch: &str) {
        self.due_queue.pending.lock().insert(branch.to_string());
        if !self.due_queue.running.swap(true, Ordering::SeqCst) {
            let worker = self.clone();
            tokio::spawn(async move { worker.due_worker().await });
        }
    }

    /// Waits until no branch's due index is queued or being recomputed.
    pub async fn due_index_idle(&self) {
        while self.due_queue.running.load(Ordering::SeqCst)
            || !self.due_queue.pending.lock().is_empty()
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    async fn due_worker(self) {
        loop {
            let next = self.due_queue.pending.lock().pop_first();
            if let Some(branch) = next {
                if let Err(e) = self.recompute_due(&branch).await {
                    tracing::warn!(branch, error = %e, retry_in_s = RETRY_AFTER.as_secs(), "recomputing the due index failed; the branch stays marked");
                    let again = self.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(RETRY_AFTER).await;
                        again.due_marked(&branch);
                    });
                }
                continue;
            }
            self.due_queue.running.store(false, Ordering::SeqCst);
            if self.due_queue.pending.lock().is_empty()
                || self.due_queue.running.swap(true, Ordering::SeqCst)
            {
                return;
            }
        }
    }

    /// Asks the live cadence policy about every customer of a marked
    /// branch, writes the answers that differ, then clears the mark unless
    /// it was written again meanwhile.
    async fn recompute_due(&self, branch: &str) -> Result<(), ServiceError> {
        let store = self.repo.store();
        loop {
            let Some(token) = store.get(&mark_key(branch))? else {
                return Ok(());
            };
            let prefix = keys::prefix(keys::IX_CUSTOMER_BRANCH, &[branch]);
            let mut after: Option<Vec<u8>> = None;
            loop {
                let page = store.scan(&prefix, after.as_deref(), PER_BATCH)?;
                let Some((last, _)) = page.last() else { break };
                after = Some(last.clone());
                let ids: Vec<String> = page
                    .iter()
                    .map(|(_, id)| String::from_utf8_lossy(id).into_owned())
                    .collect();
                self.recompute_some(branch, &ids).await?;
                if page.len() < PER_BATCH {
                    break;
                }
            }
            let mut batch = Batch::new();
            batch
                .expect(mark_key(branch), Some(&token))
                .delete(mark_key(branch));
            match self.repo.commit(batch).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Recomputes the entries of customers `ids` of `branch` in one batch,
    /// retried on a concurrent change.
    async fn recompute_some(&self, branch: &str, ids: &[String]) -> Result<(), ServiceError> {
        for _ in 0..MAX_RETRIES {
            let mut customers: Vec<Stored<Customer>> = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(c) = self
                    .repo
                    .read::<Customer>(&keys::key(keys::CUSTOMER, &[id]))?
                {
                    customers.push(c);
                }
            }
            let values: Vec<Customer> = customers.iter().map(|c| c.value.clone()).collect();
            let updates = self.due_updates(branch, &values).await?;
            let mut batch = Batch::new();
            for (c, u) in customers.iter().zip(&updates) {
                if u.old != u.new {
                    let key = keys::key(keys::CUSTOMER, &[&c.value.id]);
                    batch.expect(key, Some(&c.raw));
                    stage_due(&mut batch, u);
                }
            }
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map_err(Into::into),
            }
        }
        Err(ServiceError::Contended)
    }
}

/// The policy's answer for one customer (`None`: no cadence).
fn answer(
    policy: &LivePolicy,
    branch: &BranchInfo,
    c: &Customer,
    limits: &crate::policy::Limits,
) -> Option<DueState> {
    let input = Arc::new(CadenceInput {
        branch: branch.clone(),
        customer: customer_info(c),
    });
    match policy.timed(|| policy.exec.cadence(&input, limits)) {
        Err(_) => Some(DueState::Failed),
        Ok(cadence) => DueDates::of(&cadence, c.last_contact_at, c.created_at).map(|d| {
            DueState::Due(DueEntry {
                customer_id: c.id.clone(),
                name: c.name.clone(),
                branch: c.branch.clone(),
                owner: c.owner.clone(),
                tier: c.tier,
                every_days: cadence.every_days,
                last_contact_at: c.last_contact_at,
                due_at: d.due_at,
                overdue_at: d.overdue_at,
            })
        }),
    }
}
