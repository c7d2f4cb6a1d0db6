//! Customer tiers (docs/business-rules.md §1): the branch's `tier` policy over the
//! trailing 12 months of signed revenue in CNY, every change kept in the
//! customer's history with its reason and policy version.
//!
//! A signing marks its branch (durably, in the signing's own batch) and a
//! background worker re-tiers marked branches one at a time: a burst of
//! signings costs one re-tier, never one branch scan per request, and a
//! mark left by a crash is picked up at the next start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};
use chrono_tz::Tz;
use parking_lot::Mutex;
use rust_decimal::Decimal;
use serde::Serialize;
use utoipa::ToSchema;

use super::customers::history_key;
use super::policy_failed;
use super::repo::{decode_signed_revenue, encode, Stored};
use super::{events, now, stage_customer, Progress, ServiceError, Services, MAX_RETRIES};
use crate::auth::Principal;
use crate::domain::branch::Branch;
use crate::domain::customer::{Customer, Tier};
use crate::domain::customer_history::{CustomerAction, CustomerEvent};
use crate::domain::event::{EventKind, ResourceRef};
use crate::incentive::period::{day_start, local_day};
use crate::incentive::FxTable;
use crate::policy::hooks::{BranchInfo, Hook, RevenueInfo, TierInput, TierOutput};
use crate::policy::live::LivePolicy;
use crate::policy::PolicyCalls;
use crate::policy::{Executable, Limits, PolicyError};
use crate::store::{keys, Batch, StoreError};

/// Customers re-tiered per batch.
const PER_BATCH: usize = 256;
/// Customers one bulk budget ([`Limits::bulk`]) is meant for: a branch
/// gets one such budget of time, fuel and memory per this many customers
/// (the whole-branch hook's cost grows with the branch; a fixed budget
/// made a branch of 1,000,000 impossible to tier).
const CUSTOMERS_PER_BUDGET: usize = 100_000;

/// The limits of the tier hook over `customers` customers: the bulk
/// limits, their deadline, fuel and memory times one per
/// [`CUSTOMERS_PER_BUDGET`] customers begun. Still finite and in
/// proportion to the input, so a hostile policy is stopped (rhai's
/// operation and size caps are the bulk engine's own and do not grow).
pub(crate) fn tier_limits(limits: &Limits, customers: usize) -> Limits {
    let bulk = limits.bulk();
    let budgets = customers.div_ceil(CUSTOMERS_PER_BUDGET).max(1);
    Limits {
        deadline: bulk
            .deadline
            .saturating_mul(u32::try_from(budgets).unwrap_or(u32::MAX)),
        fuel: bulk.fuel.saturating_mul(budgets as u64),
        memory_bytes: bulk.memory_bytes.saturating_mul(budgets),
        ..bulk
    }
}
/// How long the worker rests after a re-tier, in multiples of its time.
const IDLE_FACTOR: u32 = 4;
/// How far back signed revenue counts.
const TRAILING_MONTHS: u32 = 12;

/// One customer whose tier changed.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TierChange {
    /// Customer id.
    pub customer_id: String,
    /// Tier before.
    pub from: Tier,
    /// Tier after.
    pub to: Tier,
    /// The policy's reason.
    pub reason: Option<String>,
}

/// The policy version that tiered a branch.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TieringPolicy {
    /// Name.
    pub name: String,
    /// Version.
    pub version: u64,
    /// SHA-256 of the version.
    pub sha256: String,
}

/// What a re-tier did (`POST /v1/branches/{id}/retier`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RetierReport {
    /// The branch.
    pub branch: String,
    /// The last day of the trailing window, in the branch's calendar.
    #[schema(value_type = String)]
    pub as_of: NaiveDate,
    /// The first day of the window.
    #[schema(value_type = String)]
    pub window_from: NaiveDate,
    /// The deciding policy; none when no policy implements `tier`.
    pub policy: Option<TieringPolicy>,
    /// Customers of the branch.
    pub customers: usize,
    /// Signed deals counted.
    pub deals: usize,
    /// Signed deals left out: no FX rate in force on their signing day.
    pub unconverted: usize,
    /// Every change, by customer id.
    pub changes: Vec<TierChange>,
}

/// Branches waiting for a re-tier, and the worker's state.
#[derive(Default)]
pub struct TierQueue {
    /// Marked branches not yet re-tiered.
    pending: Mutex<BTreeSet<String>>,
    /// Whether a worker task is running.
    running: AtomicBool,
    /// Whether the worker is held (marks are still written and queued).
    #[cfg(feature = "testing")]
    paused: AtomicBool,
    /// One re-tier at a time (the worker's and requested ones).
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl TierQueue {
    /// Whether a test holds the worker (never, without the `testing`
    /// feature).
    fn paused(&self) -> bool {
        #[cfg(feature = "testing")]
        return self.paused.load(Ordering::SeqCst);
        #[cfg(not(feature = "testing"))]
        false
    }
}

/// Signed revenue (CNY) over a window by customer and by deal owner, with
/// what was counted.
#[derive(Default)]
pub(crate) struct Revenue {
    pub by_customer: HashMap<String, Decimal>,
    pub by_owner: HashMap<String, Decimal>,
    pub deals: usize,
    pub unconverted: usize,
}

impl Revenue {
    fn merge(&mut self, other: Revenue) {
        for (c, r) in other.by_customer {
            *self.by_customer.entry(c).or_default() += r;
        }
        for (o, r) in other.by_owner {
            *self.by_owner.entry(o).or_default() += r;
        }
        self.deals += other.deals;
        self.unconverted += other.unconverted;
    }
}

/// The trailing window ending on `as_of`: its first day.
pub(crate) fn window_from(as_of: NaiveDate) -> NaiveDate {
    as_of
        .checked_sub_months(Months::new(TRAILING_MONTHS))
        .and_then(|d| d.succ_opt())
        .unwrap_or(NaiveDate::MIN)
}

impl Services {
    /// `POST /v1/branches/{id}/retier`: recomputes the branch's tiers now.
    pub async fn retier_branch(
        &self,
        caller: &Principal,
        branch: &str,
    ) -> Result<RetierReport, ServiceError> {
        self.retier_branch_with(caller, branch, None).await
    }

    /// [`Services::retier_branch`], reporting its progress (reading the
    /// branch, the tier policy, then each batch of changes).
    pub async fn retier_branch_with(
        &self,
        caller: &Principal,
        branch: &str,
        progress: Option<&Progress>,
    ) -> Result<RetierReport, ServiceError> {
        caller.require_manager_of(branch)?;
        let branch: Branch = self.repo.fetch(keys::BRANCH, "branch", branch)?.value;
        // A durable mark first: a re-tier is several batches, and one cut
        // short (a failure, a dropped request, a crash) is finished by the
        // background worker.
        let mark = keys::key(keys::TIER_DIRTY, &[&branch.id]);
        let token = self.repo.new_id("mark")?;
        let mut batch = Batch::new();
        stage_tier_mark(&mut batch, &branch.id, "retier", &token);
        self.repo.commit(batch).await?;
        match self
            .retier_with(&branch, &caller.user, "retier", now(), progress)
            .await
        {
            Ok(report) => {
                let mut batch = Batch::new();
                batch
                    .expect(mark.clone(), Some(&mark_value("retier", &token)))
                    .delete(mark);
                match self.repo.commit(batch).await {
                    Ok(()) | Err(StoreError::Conflict { .. }) => Ok(report),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) => {
                self.tiers_changed(&branch.id);
                Err(e)
            }
        }
    }

    /// The branch's tiers on the local day of `at`, applied; changes are
    /// written with their history entries.
    pub async fn retier(
        &self,
        branch: &Branch,
        by: &str,
        trigger: &str,
        at: DateTime<Utc>,
    ) -> Result<RetierReport, ServiceError> {
        self.retier_with(branch, by, trigger, at, None).await
    }

    /// [`Services::retier`], reporting progress: two units (the branch
    /// read, the policy run), then one per batch of changes written.
    async fn retier_with(
        &self,
        branch: &Branch,
        by: &str,
        trigger: &str,
        at: DateTime<Utc>,
        progress: Option<&Progress>,
    ) -> Result<RetierReport, ServiceError> {
        let step = |n: u64| progress.inspect(|p| p.advance(n));
        if let Some(p) = progress {
            p.add_total(2);
        }
        let _one = self.tiering.one_at_a_time.lock().await;
        let tz: Tz = branch.timezone.parse().unwrap_or(chrono_tz::UTC);
        let as_of = local_day(at, tz);
        let reader = self.clone();
        let b = branch.clone();
        let (input, current, mut report) =
            tokio::task::spawn_blocking(move || reader.tier_input(&b, tz, as_of))
                .await
                .map_err(|e| {
                    StoreError::Backend(format!("reading the tier input failed: {e}"))
                })??;
        step(1);
        let snapshot = self.policies.live.snapshot();
        let Some(policy) = snapshot.deciding(&branch.id, Hook::Tier) else {
            step(1);
            return Ok(report);
        };
        report.policy = Some(TieringPolicy {
            name: policy.name.clone(),
            version: policy.version,
            sha256: policy.sha256.clone(),
        });
        let input = Arc::new(input);
        let run = Arc::clone(&policy);
        let out = self
            .policies
            .executor
            .run(move |limits| {
                let limits = tier_limits(limits, input.customers.len());
                run.timed(|| run.exec.tier(&input, &limits))
            })
            .await
            .and_then(|r| r)
            .map_err(|e| policy_failed(&policy, "tier", e))?;
        report.changes = changes(&current, out).map_err(|e| policy_failed(&policy, "tier", e))?;
        step(1);
        if let Some(p) = progress {
            p.add_total(report.changes.len().div_ceil(PER_BATCH) as u64);
        }
        self.apply_tiers(&branch.id, &report.changes, &policy, by, trigger, progress)
            .await?;
        Ok(report)
    }

    /// The tiers `exec` gives `branch` on the local day of `at` and the
    /// changes they would make, computed and not applied (benchmarks and
    /// tools; blocking).
    pub fn compute_tiers(
        &self,
        branch: &Branch,
        at: DateTime<Utc>,
        exec: &dyn Executable,
        limits: &Limits,
    ) -> Result<RetierReport, ServiceError> {
        let tz: Tz = branch.timezone.parse().unwrap_or(chrono_tz::UTC);
        let (input, current, mut report) = self.tier_input(branch, tz, local_day(at, tz))?;
        let failed = |error| ServiceError::PolicyFailed {
            policy: "(computed)".into(),
            version: 0,
            hook: "tier".into(),
            error,
        };
        let limits = tier_limits(limits, input.customers.len());
        let out = exec.tier(&Arc::new(input), &limits).map_err(failed)?;
        report.changes = changes(&current, out).map_err(failed)?;
        Ok(report)
    }

    /// The tier hook's input: every customer of the branch (by id, from the
    /// tier index) with its revenue over the window ending on `as_of`; the
    /// current tiers; the report so far (without policy and changes).
    fn tier_input(
        &self,
        branch: &Branch,
        tz: Tz,
        as_of: NaiveDate,
    ) -> Result<(TierInput, BTreeMap<String, Tier>, RetierReport), ServiceError> {
        let prefix = keys::prefix(keys::IX_CUSTOMER_TIER, &[&branch.id]);
        let mut current = BTreeMap::new();
        for (key, _) in self.repo.store().scan(&prefix, None, usize::MAX)? {
            let rest = &key[prefix.len()..];
            let mut parts = rest.splitn(2, |b| *b == 0);
            let tier = parts
                .next()
                .and_then(|t| std::str::from_utf8(t).ok())
                .and_then(Tier::parse);
            let id = parts.next().and_then(|i| std::str::from_utf8(i).ok());
            let (Some(tier), Some(id)) = (tier, id) else {
                return Err(StoreError::Corrupt {
                    key: crate::store::printable(&key),
                    reason: "not a tier index key".into(),
                }
                .into());
            };
            current.insert(id.to_string(), tier);
        }
        let revenue = self.revenue(&branch.id, tz, window_from(as_of), as_of)?;
        let customers = current
            .iter()
            .map(|(id, tier)| RevenueInfo {
                customer_id: id.clone(),
                revenue: revenue.by_customer.get(id).copied().unwrap_or_default(),
                tier: tier.name().into(),
            })
            .collect();
        let input = TierInput {
            branch: BranchInfo {
                id: branch.id.clone(),
                timezone: branch.timezone.clone(),
            },
            as_of: as_of.to_string(),
            customers,
        };
        let report = RetierReport {
            branch: branch.id.clone(),
            as_of,
            window_from: window_from(as_of),
            policy: None,
            customers: current.len(),
            deals: revenue.deals,
            unconverted: revenue.unconverted,
            changes: Vec::new(),
        };
        Ok((input, current, report))
    }

    /// Signed revenue in CNY by customer over the local days `[from, to]`,
    /// cancelled contracts left out; the window's months are read in
    /// parallel.
    pub(crate) fn revenue(
        &self,
        branch: &str,
        tz: Tz,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Revenue, ServiceError> {
        let fx = FxTable::new(self.all_fx_rates()?);
        let mut slices = Vec::new();
        let mut start = from;
        while start <= to {
            let next = start
                .checked_add_months(Months::new(1))
                .map(|d| d.with_day(1).unwrap_or(d))
                .filter(|d| *d <= to)
                .unwrap_or_else(|| to.succ_opt().unwrap_or(NaiveDate::MAX));
            slices.push((day_start(start, tz), day_start(next, tz)));
            start = next;
        }
        let next = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let results: Mutex<Vec<Result<Revenue, ServiceError>>> = Mutex::default();
        std::thread::scope(|s| {
            for _ in 0..workers.min(slices.len()) {
                s.spawn(|| {
                    let mut out = Revenue::default();
                    while let Some((from, to)) = slices.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let read =
                            self.time_range(keys::IX_DEAL_SIGNED, branch, *from, *to, |_, k, v| {
                                let d = decode_signed_revenue(k, &v)?;
                                if d.cancelled_at.is_some() {
                                    return Ok(());
                                }
                                let Some(signed_at) = d.signed_at else {
                                    return Ok(());
                                };
                                match fx.to_cny(
                                    d.amount_total,
                                    &d.currency,
                                    local_day(signed_at, tz),
                                ) {
                                    Ok(cny) => {
                                        *out.by_customer.entry(d.customer_id).or_default() += cny;
                                        *out.by_owner.entry(d.owner).or_default() += cny;
                                        out.deals += 1;
                                    }
                                    Err(_) => out.unconverted += 1,
                                }
                                Ok(())
                            });
                        if let Err(e) = read {
                            results.lock().push(Err(e));
                            return;
                        }
                    }
                    results.lock().push(Ok(out));
                });
            }
        });
        let mut total = Revenue::default();
        for r in results.into_inner() {
            total.merge(r?);
        }
        Ok(total)
    }

    /// Writes tier changes with their history entries, a batch of
    /// customers at a time (re-read on a concurrent change).
    async fn apply_tiers(
        &self,
        branch: &str,
        changes: &[TierChange],
        policy: &LivePolicy,
        by: &str,
        trigger: &str,
        progress: Option<&Progress>,
    ) -> Result<(), ServiceError> {
        for chunk in changes.chunks(PER_BATCH) {
            let mut applied = false;
            for _ in 0..MAX_RETRIES {
                let mut batch = Batch::new();
                let at = now();
                let mut moving = Vec::with_capacity(chunk.len());
                for change in chunk {
                    let key = keys::key(keys::CUSTOMER, &[&change.customer_id]);
                    let Some(old) = self.repo.read::<Customer>(&key)? else {
                        continue;
                    };
                    if old.value.branch != branch || old.value.tier == change.to {
                        continue;
                    }
                    let new = retiered(&old.value, change, at);
                    moving.push((old, change, new));
                }
                // Their cadence follows their tier: the due index is asked
                // about the whole batch in one policy run.
                let news: Vec<Customer> = moving.iter().map(|(_, _, n)| n.clone()).collect();
                let due = self.due_updates(branch, &news).await?;
                for ((old, change, new), due) in moving.iter().zip(&due) {
                    stage_tier(&mut batch, old, new, change, policy, by, trigger, due);
                }
                match self.repo.commit(batch).await {
                    Err(StoreError::Conflict { .. }) => continue,
                    other => {
                        other?;
                        applied = true;
                        break;
                    }
                }
            }
            if !applied {
                return Err(ServiceError::Contended);
            }
            if let Some(p) = progress {
                p.advance(1);
            }
        }
        Ok(())
    }

    /// A customer's history (tier changes), oldest first.
    pub fn customer_history(
        &self,
        caller: &Principal,
        id: &str,
        page: &super::PageRequest,
    ) -> Result<super::Page<CustomerEvent>, ServiceError> {
        self.customer(caller, id)?;
        self.repo.list(
            super::repo::Source::Primary(keys::prefix(keys::CUSTOMER_HISTORY, &[id])),
            page,
            |_: &CustomerEvent| true,
        )
    }

    /// After a committed mark: re-tiers the branch in the background.
    pub(crate) fn tiers_changed(&self, branch: &str) {
        self.tiering.pending.lock().insert(branch.to_string());
        if self.tiering.paused() {
            return;
        }
        if !self.tiering.running.swap(true, Ordering::SeqCst) {
            let worker = self.clone();
            tokio::spawn(async move { worker.tier_worker().await });
        }
    }

    /// Waits until no branch is queued or being re-tiered (tests use it to
    /// read tiers after signings deterministically).
    pub async fn tiering_idle(&self) {
        while self.tiering.running.load(Ordering::SeqCst)
            || (!self.tiering.paused() && !self.tiering.pending.lock().is_empty())
        {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Holds the background re-tier: signings still mark and queue their
    /// branch (durably), nothing runs. For tests that check exactly what
    /// one request writes.
    #[cfg(feature = "testing")]
    pub fn pause_tiering(&self) {
        self.tiering.paused.store(true, Ordering::SeqCst);
    }

    /// Lets the background re-tier run again, starting with what queued.
    #[cfg(feature = "testing")]
    pub fn unpause_tiering(&self) {
        self.tiering.paused.store(false, Ordering::SeqCst);
        let queued: Vec<String> = self.tiering.pending.lock().iter().cloned().collect();
        for b in queued {
            self.tiers_changed(&b);
        }
    }

    /// Queues every branch a previous run marked and did not re-tier.
    pub async fn resume_tiering(&self) -> Result<usize, ServiceError> {
        let prefix = keys::prefix(keys::TIER_DIRTY, &[]);
        let marked = self.repo.store().scan(&prefix, None, usize::MAX)?;
        for (key, _) in &marked {
            self.tiers_changed(&String::from_utf8_lossy(&key[prefix.len()..]));
        }
        Ok(marked.len())
    }

    /// Re-tiers queued branches until none is left, then stops (so an idle
    /// server holds no task, and no store handle, for tiering).
    async fn tier_worker(self) {
        loop {
            let next = self.tiering.pending.lock().pop_first();
            if let Some(branch) = next {
                let started = std::time::Instant::now();
                self.retier_marked(&branch).await;
                // Under a stream of signings a large branch would be
                // re-tiered back to back: resting four times as long as
                // the re-tier took keeps the background work under a fifth
                // of one core (and costs nothing for small branches).
                tokio::time::sleep(started.elapsed() * IDLE_FACTOR).await;
                continue;
            }
            self.tiering.running.store(false, Ordering::SeqCst);
            // A branch queued after the pop saw the worker running and did
            // not start one: take it over unless another worker did.
            if self.tiering.pending.lock().is_empty()
                || self.tiering.running.swap(true, Ordering::SeqCst)
            {
                return;
            }
        }
    }

    /// Re-tiers a marked branch, then clears its mark unless a signing
    /// marked it again meanwhile.
    async fn retier_marked(&self, branch: &str) {
        let mark = keys::key(keys::TIER_DIRTY, &[branch]);
        let outcome = async {
            let Some(token) = self.repo.store().get(&mark)? else {
                return Ok(None);
            };
            if let Some(b) = self
                .repo
                .read::<Branch>(&keys::key(keys::BRANCH, &[branch]))?
            {
                let report = self
                    .retier(&b.value, "system", &mark_cause(&token), now())
                    .await?;
                if !report.changes.is_empty() {
                    tracing::info!(
                        branch,
                        changes = report.changes.len(),
                        "re-tiered after signings"
                    );
                }
            }
            let mut batch = Batch::new();
            batch
                .expect(mark.clone(), Some(&token))
                .delete(mark.clone());
            match self.repo.commit(batch).await {
                Ok(()) | Err(StoreError::Conflict { .. }) => Ok(Some(())),
                Err(e) => Err(ServiceError::from(e)),
            }
        };
        if let Err(e) = outcome.await {
            // The re-tier is idempotent: trying it again repairs whatever
            // part of it was written.
            tracing::warn!(branch, error = %e, retry_in_s = RETRY_AFTER.as_secs(), "background re-tier failed; the branch stays marked");
            let again = self.clone();
            let branch = branch.to_string();
            tokio::spawn(async move {
                tokio::time::sleep(RETRY_AFTER).await;
                again.tiers_changed(&branch);
            });
        }
    }

    /// Marks branches for a re-tier (durably) and queues them: after an
    /// activation of a tier policy. (The store upgrade only marks: it runs
    /// before the policies are loaded, and `resume_tiering` queues the
    /// marks once they are.)
    pub(crate) async fn mark_for_retier(
        &self,
        branches: &[String],
        cause: &str,
    ) -> Result<(), ServiceError> {
        self.write_retier_marks(branches, cause).await?;
        for b in branches {
            self.tiers_changed(b);
        }
        Ok(())
    }

    /// Writes re-tier marks for `branches` in one batch, queueing nothing.
    pub(crate) async fn write_retier_marks(
        &self,
        branches: &[String],
        cause: &str,
    ) -> Result<(), ServiceError> {
        if branches.is_empty() {
            return Ok(());
        }
        let token = self.repo.new_id("mark")?;
        let mut batch = Batch::new();
        for b in branches {
            stage_tier_mark(&mut batch, b, cause, &token);
        }
        self.repo.commit(batch).await?;
        Ok(())
    }

    /// Every branch's id.
    pub(crate) fn branch_ids(&self) -> Result<Vec<String>, ServiceError> {
        let prefix = keys::prefix(keys::BRANCH, &[]);
        Ok(self
            .repo
            .store()
            .scan(&prefix, None, usize::MAX)?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            .collect())
    }
}

/// Marks `branch` for a re-tier in `batch` (a signing's, a cancellation's,
/// an activation's): the mark is as durable as the change. Its value is the
/// cause (kept as the trigger of the tier changes) and `token`, naming the
/// change, so a re-tier clears only the mark it served.
pub(crate) fn stage_tier_mark(batch: &mut Batch, branch: &str, cause: &str, token: &str) {
    batch.put(
        keys::key(keys::TIER_DIRTY, &[branch]),
        mark_value(cause, token),
    );
}

/// What a mark holds: its cause and the change's token.
fn mark_value(cause: &str, token: &str) -> Vec<u8> {
    format!("{cause}|{token}").into_bytes()
}

/// The cause a mark records (see [`stage_tier_mark`]).
fn mark_cause(mark: &[u8]) -> String {
    let text = String::from_utf8_lossy(mark);
    match text.split_once('|') {
        Some((cause, _)) if !cause.is_empty() => cause.to_string(),
        _ => "deal signed".into(),
    }
}

/// How long a failed background re-tier waits before it is tried again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(30);

/// The changes a tier answer makes, checked: known customers, once each,
/// tiers A, B or C.
fn changes(
    current: &BTreeMap<String, Tier>,
    out: TierOutput,
) -> Result<Vec<TierChange>, PolicyError> {
    let mut seen = BTreeSet::new();
    let mut changes = Vec::new();
    for t in out.tiers {
        let Some(from) = current.get(&t.customer_id) else {
            return Err(PolicyError::BadOutput(format!(
                "`{}` is not a customer of the branch",
                t.customer_id
            )));
        };
        let to = Tier::parse(&t.tier)
            .ok_or_else(|| PolicyError::BadOutput(format!("tier `{}` is not A, B or C", t.tier)))?;
        if !seen.insert(t.customer_id.clone()) {
            return Err(PolicyError::BadOutput(format!(
                "customer `{}` is tiered twice",
                t.customer_id
            )));
        }
        if *from != to {
            changes.push(TierChange {
                customer_id: t.customer_id,
                from: *from,
                to,
                reason: t.reason,
            });
        }
    }
    changes.sort_by(|a, b| a.customer_id.cmp(&b.customer_id));
    Ok(changes)
}

/// `old` with its new tier, as a new version.
fn retiered(old: &Customer, change: &TierChange, at: DateTime<Utc>) -> Customer {
    let mut c = old.clone();
    c.tier = change.to;
    c.version += 1;
    c.updated_at = at;
    c
}

/// Stages one customer's new tier (`c`, from [`retiered`]) and its
/// history entry.
#[allow(clippy::too_many_arguments)]
fn stage_tier(
    batch: &mut Batch,
    old: &Stored<Customer>,
    c: &Customer,
    change: &TierChange,
    policy: &LivePolicy,
    by: &str,
    trigger: &str,
    due: &super::due_index::DueUpdate,
) {
    let from = old.value.tier;
    let at = c.updated_at;
    let event = CustomerEvent {
        seq: c.version,
        action: CustomerAction::TierChanged,
        at,
        by: by.into(),
        trigger: trigger.into(),
        from: Some(from.name().into()),
        to: Some(change.to.name().into()),
        owner: None,
        reason: change.reason.clone(),
        policy: Some(policy.name.clone()),
        version: Some(policy.version),
        sha256: Some(policy.sha256.clone()),
    };
    batch.put(history_key(&c.id, c.version), encode(&event));
    stage_customer(batch, Some(old), c, Some(due));
    events::add(
        batch,
        EventKind::TierChanged,
        ResourceRef::customer(c),
        by,
        serde_json::json!({"customer": c.id, "from": from, "to": change.to, "reason": change.reason,
                           "trigger": trigger, "policy": policy.name, "policy_version": policy.version,
                           "version": c.version}),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A branch gets one bulk budget per 100,000 customers begun: ten at
    /// 1,000,000, still finite.
    #[test]
    fn the_tier_budget_grows_with_the_branch_and_stays_bounded() {
        let base = Limits::default();
        let bulk = base.bulk();
        for (customers, budgets) in [(0, 1), (1, 1), (100_000, 1), (100_001, 2), (1_000_000, 10)] {
            let l = tier_limits(&base, customers);
            assert_eq!(l.deadline, bulk.deadline * budgets, "{customers}");
            assert_eq!(l.fuel, bulk.fuel * u64::from(budgets), "{customers}");
            assert_eq!(l.memory_bytes, bulk.memory_bytes * budgets as usize);
            assert_eq!(l.max_operations, bulk.max_operations);
        }
        assert!(tier_limits(&base, usize::MAX).deadline < std::time::Duration::MAX);
    }
}
