//! Moving a deal between stages: check the move against the branch pipeline,
//! ask every guard policy (one snapshot of the live set decides the whole
//! request), run the after-hooks on the moved deal, then write the deal, its
//! history entry (with every decision), its stage index, the follow-up tasks
//! and (on signing) the brands it makes no longer new, in one atomic batch.

use std::sync::Arc;

use crate::auth::{Denied, Principal};
use crate::domain::customer::Customer;
use crate::domain::deal::{
    check_attribute, Deal, GuardVeto, TransitionCheck, TransitionRequest, Verdict, MAX_ATTRIBUTES,
};
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::history::{Decision, HistoryAction, HistoryEntry};
use crate::domain::pipeline::{Pipeline, StageKind};
use crate::domain::task::{Task, TaskStatus};
use crate::domain::validate;
use crate::policy::hooks::{AfterOutput, GuardVerdict, TransitionInput};
use crate::policy::live::LivePolicy;
use crate::policy::PolicyCalls;
use crate::policy::{Limits, PolicyError};
use crate::service::{check_version, encode, events, now, policy_failed, ServiceError, Services};
use crate::store::{keys, Batch, StoreError};

use super::hook_input::{branch_info, deal_info, records_info};
use crate::policy::hook_values::{actor_info, customer_info, ts};

/// What a transition request produced.
#[derive(Debug)]
pub enum TransitionOutcome {
    /// The deal moved (and the move is durable).
    Moved(Box<Deal>),
    /// A dry run: the verdicts, nothing changed.
    Checked(TransitionCheck),
}

/// The built-in rule name used in verdicts about the pipeline's structure.
const PIPELINE_RULE: &str = "pipeline";
/// Most tasks one after-hook may create.
const MAX_TASKS_PER_HOOK: usize = 20;

fn structural_verdict(pipeline: &Pipeline, deal: &Deal, to: &str) -> (Verdict, Vec<String>) {
    let targets = match (deal.stage_kind, pipeline.stage(&deal.stage)) {
        // Signed is final; a lost deal whose stage left the pipeline stays lost.
        (StageKind::Won, _) | (StageKind::Lost, None) => Vec::new(),
        _ => pipeline.targets(&deal.stage),
    };
    let allow = targets.iter().any(|t| t == to);
    let reason = (!allow).then(|| {
        if pipeline.stage(to).is_none() {
            format!("`{to}` is not a stage of this branch's pipeline")
        } else {
            format!("the pipeline does not allow `{}` → `{to}`", deal.stage)
        }
    });
    (
        Verdict {
            policy: PIPELINE_RULE.into(),
            version: pipeline.version,
            allow,
            reason,
        },
        targets,
    )
}

/// What the policies said about one move.
struct HookRun {
    /// Each guard with its answer.
    guards: Vec<(Arc<LivePolicy>, Result<GuardVerdict, PolicyError>)>,
    /// Each after-hook with its answer (empty when the move is refused or a dry run).
    afters: Vec<(Arc<LivePolicy>, Result<AfterOutput, PolicyError>)>,
}

/// One guard's refusal of a move (a guard that failed refuses it too).
struct Refusal<'a> {
    /// The refusing guard.
    policy: &'a LivePolicy,
    /// Its reason.
    reason: String,
    /// What it says is missing.
    missing: Vec<String>,
    /// The error, when the guard failed rather than answered.
    failed: Option<&'a PolicyError>,
}

impl HookRun {
    /// Every refusing guard, in order (failures count as refusals).
    fn refusals(&self) -> Vec<Refusal<'_>> {
        self.guards
            .iter()
            .filter_map(|(p, r)| match r {
                Ok(v) if v.allow => None,
                Ok(v) => Some(Refusal {
                    policy: p.as_ref(),
                    reason: v.reason.clone().unwrap_or_default(),
                    missing: v.missing.clone(),
                    failed: None,
                }),
                Err(e) => Some(Refusal {
                    policy: p.as_ref(),
                    reason: format!("the policy failed: {e}"),
                    missing: Vec::new(),
                    failed: Some(e),
                }),
            })
            .collect()
    }

    /// Every guard's decision, as the history keeps it; `forced` marks the
    /// refusals an admin overrode.
    fn guard_decisions(&self, forced: bool) -> Vec<Decision> {
        self.guards
            .iter()
            .map(|(p, r)| {
                let mut d = decision("guard", p);
                match r {
                    Ok(v) => {
                        d.allow = Some(v.allow);
                        d.reason = v.reason.clone();
                        if !v.allow {
                            d.missing = v.missing.clone();
                        }
                    }
                    Err(e) => {
                        d.allow = Some(false);
                        d.reason = Some(format!("the policy failed: {e}"));
                    }
                }
                d.overridden = forced && d.allow == Some(false);
                d
            })
            .collect()
    }
}

/// Runs the guards on `input`; when they allow (or `force`), runs the
/// after-hooks on the moved deal. Synchronous: called on the blocking pool.
fn run_hooks(
    guards: Vec<Arc<LivePolicy>>,
    afters: Vec<Arc<LivePolicy>>,
    input: TransitionInput,
    run_after: bool,
    force: bool,
    limits: &Limits,
) -> HookRun {
    let input = Arc::new(input);
    let guards: Vec<_> = guards
        .into_iter()
        .map(|g| {
            let r = g.timed(|| g.exec.guard(&input, limits));
            (g, r)
        })
        .collect();
    let allowed = guards.iter().all(|(_, r)| matches!(r, Ok(v) if v.allow));
    let mut run = HookRun {
        guards,
        afters: Vec::new(),
    };
    if run_after && (allowed || force) && !afters.is_empty() {
        // The guards are done with it: no copy unless a runtime kept one.
        let mut input = Arc::unwrap_or_clone(input);
        input.deal.stage = input.to.clone();
        input.deal.stages_passed.push(input.to.clone());
        if input.to_kind == "won" {
            input.deal.signed_at = Some(input.at.clone());
        }
        let input = Arc::new(input);
        run.afters = afters
            .into_iter()
            .map(|a| {
                let r = a.timed(|| a.exec.after(&input, limits));
                (a, r)
            })
            .collect();
    }
    run
}

fn decision(hook: &str, p: &LivePolicy) -> Decision {
    Decision {
        hook: hook.into(),
        policy: p.name.clone(),
        version: p.version,
        sha256: p.sha256.clone(),
        allow: None,
        reason: None,
        missing: Vec::new(),
        outcome: None,
        overridden: false,
    }
}

impl Services {
    /// Builds the hook input for moving `deal` to `to`.
    fn transition_input(
        &self,
        caller: &Principal,
        deal: &Deal,
        to: &str,
        to_kind: StageKind,
        at: &chrono::DateTime<chrono::Utc>,
    ) -> Result<TransitionInput, ServiceError> {
        let customer: Customer = self
            .repo
            .fetch(keys::CUSTOMER, "customer", &deal.customer_id)?
            .value;
        Ok(TransitionInput {
            branch: branch_info(self, &deal.branch)?,
            deal: deal_info(self, deal)?,
            customer: customer_info(&customer),
            records: records_info(self, &deal.customer_id)?,
            from: deal.stage.clone(),
            to: to.into(),
            to_kind: match to_kind {
                StageKind::Open => "open",
                StageKind::Won => "won",
                StageKind::Lost => "lost",
            }
            .into(),
            at: ts(at),
            actor: actor_info(caller),
        })
    }

    /// Moves a deal to `req.to`, or with `dry_run` reports what would happen.
    pub async fn transition(
        &self,
        caller: &Principal,
        deal_id: &str,
        req: TransitionRequest,
        if_match: Option<u64>,
    ) -> Result<TransitionOutcome, ServiceError> {
        if req.override_reason.is_some() {
            caller
                .require_admin()
                .map_err(|_| Denied("only an admin may override a vetoed move".into()))?;
        }
        let override_reason = req
            .override_reason
            .as_deref()
            .map(|r| validate::text("override_reason", r, validate::MAX_TEXT))
            .transpose()?;
        let note = validate::opt_text("note", req.note.as_deref())?;
        let requested_at = crate::service::check_business_time("at", req.at)?;
        // One snapshot decides the whole request, retries included.
        let live = self.policies.live.snapshot();
        for _ in 0..crate::service::MAX_RETRIES {
            let old = self.visible_deal(caller, deal_id)?;
            check_version(if_match, old.value.version)?;
            let deal = &old.value;
            let pipeline = self.pipeline_of(&deal.branch)?;
            let (verdict, targets) = structural_verdict(&pipeline, deal, &req.to);
            if !verdict.allow && !req.dry_run {
                return Err(ServiceError::InvalidTransition {
                    from: deal.stage.clone(),
                    to: req.to.clone(),
                    allowed: targets,
                });
            }
            let at = match req.at {
                Some(_) if requested_at < deal.stage_entered_at => {
                    return Err(ServiceError::invalid(
                        "at",
                        format!(
                            "must not be before the deal entered `{}` ({})",
                            deal.stage,
                            crate::domain::time::format(&deal.stage_entered_at)
                        ),
                    ))
                }
                Some(_) => requested_at,
                // A deal imported with a future-dated stage never moves back in time.
                None => requested_at.max(deal.stage_entered_at),
            };
            let kind = pipeline
                .stage(&req.to)
                .map(|s| s.kind)
                .unwrap_or(StageKind::Open);
            let (guards, _) = live.effective(&deal.branch, crate::policy::hooks::Hook::Guard);
            let (afters, _) = live.effective(&deal.branch, crate::policy::hooks::Hook::After);
            let run = if (guards.is_empty() && afters.is_empty()) || !verdict.allow {
                HookRun {
                    guards: Vec::new(),
                    afters: Vec::new(),
                }
            } else {
                let input = self.transition_input(caller, deal, &req.to, kind, &at)?;
                let (dry, force) = (req.dry_run, override_reason.is_some());
                let inline = guards.iter().chain(&afters).all(|p| p.runs_inline());
                self.policies
                    .executor
                    .run_hooks(inline, move |limits| {
                        run_hooks(guards, afters, input, !dry, force, limits)
                    })
                    .await
                    .map_err(|e| ServiceError::PolicyFailed {
                        policy: "runtime".into(),
                        version: 0,
                        hook: "guard".into(),
                        error: e,
                    })?
            };
            if req.dry_run {
                return Ok(TransitionOutcome::Checked(dry_run_report(
                    deal, &req.to, verdict, targets, &run,
                )));
            }
            let refusals = run.refusals();
            if !refusals.is_empty() && override_reason.is_none() {
                return Err(self
                    .refuse(caller, deal, &req.to, at, note.clone(), &run, refusals)
                    .await);
            }
            let overridden: Vec<(String, u64, String)> = refusals
                .iter()
                .map(|r| (r.policy.name.clone(), r.policy.version, r.reason.clone()))
                .collect();
            let mut decisions = run.guard_decisions(true);
            let now = now();
            let mut moved = deal.clone();
            moved.stage = req.to.clone();
            moved.stage_entered_at = at;
            moved.stage_kind = kind;
            moved.stages_passed.push(req.to.clone());
            moved.version += 1;
            moved.updated_at = now;
            match kind {
                StageKind::Won => moved.signed_at = Some(at),
                StageKind::Lost => moved.lost_at = Some(at),
                StageKind::Open => {}
            }
            let mut batch = Batch::new();
            let mut emitted = Vec::new();
            for (p, r) in &run.afters {
                let out = r.clone().map_err(|e| policy_failed(p, "after", e))?;
                let tasks = self.stage_tasks(&mut batch, &moved, &out, p, &at, &caller.user)?;
                apply_attributes(&mut moved, &out).map_err(|e| policy_failed(p, "after", e))?;
                let mut d = decision("after", p);
                d.outcome = Some(format!(
                    "{tasks} task(s), {} attribute(s), {} event(s)",
                    out.set.len(),
                    out.events.len()
                ));
                decisions.push(d);
                for e in &out.events {
                    emitted.push((p.name.clone(), p.version, e.clone()));
                }
            }
            let entry = HistoryEntry {
                seq: moved.version,
                action: HistoryAction::Transition,
                at,
                recorded_at: now,
                by: caller.user.clone(),
                from: Some(deal.stage.clone()),
                to: Some(req.to.clone()),
                note: note.clone(),
                override_reason: override_reason.clone().filter(|_| !overridden.is_empty()),
                reason: None,
                decisions,
                changes: None,
            };
            if kind == StageKind::Won {
                self.stage_first_sales(&mut batch, Some(deal), &mut moved, &caller.user)?;
                let signing = format!("{}@{}", moved.id, moved.version);
                crate::service::stage_tier_mark(&mut batch, &moved.branch, "deal signed", &signing);
            }
            let revenue = self.revenue_change(Some(deal), &moved)?;
            crate::service::stage_deal(&mut batch, Some(&old), &moved, &entry, revenue.as_ref());
            let resource = ResourceRef::deal(&moved);
            events::add(
                &mut batch,
                EventKind::Transition,
                resource.clone(),
                &caller.user,
                serde_json::json!({"deal": moved.id, "from": deal.stage, "to": moved.stage,
                                   "version": moved.version, "by": caller.user}),
            );
            for (policy, version, reason) in &overridden {
                events::add(
                    &mut batch,
                    EventKind::Override,
                    resource.clone(),
                    &caller.user,
                    serde_json::json!({"deal": moved.id, "policy": policy, "version": version, "reason": reason,
                                       "override_reason": override_reason, "by": caller.user}),
                );
            }
            for (policy, version, e) in emitted {
                events::add(
                    &mut batch,
                    EventKind::PolicyEvent,
                    resource.clone(),
                    &caller.user,
                    serde_json::json!({"deal": moved.id, "policy": policy, "version": version,
                                       "kind": e.kind, "message": e.message}),
                );
            }
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    other?;
                    if kind == StageKind::Won {
                        self.tiers_changed(&moved.branch);
                    }
                    for (policy, version, reason) in &overridden {
                        tracing::warn!(deal = %moved.id, %policy, version, %reason, by = %caller.user, "admin override of a vetoed move");
                    }
                    return Ok(TransitionOutcome::Moved(Box::new(moved)));
                }
            }
        }
        Err(ServiceError::Contended)
    }

    /// Records a refused move in the deal's history (a `veto` entry under
    /// the version it was refused at: the deal itself does not change),
    /// announces it, and returns the error the caller gets: `policy_failed`
    /// when the first refusing guard failed (a failing guard fails closed),
    /// otherwise `guard_rejected` naming every refusing guard.
    #[allow(clippy::too_many_arguments)]
    async fn refuse(
        &self,
        caller: &Principal,
        deal: &Deal,
        to: &str,
        at: chrono::DateTime<chrono::Utc>,
        note: Option<String>,
        run: &HookRun,
        refusals: Vec<Refusal<'_>>,
    ) -> ServiceError {
        let entry = HistoryEntry {
            from: Some(deal.stage.clone()),
            to: Some(to.to_string()),
            note,
            decisions: run.guard_decisions(false),
            ..HistoryEntry::new(deal.version, HistoryAction::Veto, at, now(), &caller.user)
        };
        let vetoes: Vec<GuardVeto> = refusals
            .iter()
            .map(|r| GuardVeto {
                policy: r.policy.name.clone(),
                version: r.policy.version,
                sha256: r.policy.sha256.clone(),
                reason: r.reason.clone(),
                missing: r.missing.clone(),
            })
            .collect();
        // The refusal is a decision of record: its history entry and its
        // event are committed (alone) before the 422 is answered.
        let recorded = match self.repo.new_id("veto") {
            Ok(id) => {
                let mut batch = Batch::new();
                batch.put(
                    crate::service::veto_key(&deal.id, deal.version, &id),
                    encode(&entry),
                );
                events::add(
                    &mut batch,
                    EventKind::Veto,
                    ResourceRef::deal(deal),
                    &caller.user,
                    serde_json::json!({"deal": deal.id, "from": deal.stage, "to": to, "version": deal.version,
                                       "policy": vetoes[0].policy, "reason": vetoes[0].reason,
                                       "vetoes": vetoes, "by": caller.user}),
                );
                self.repo.commit(batch).await.map_err(ServiceError::from)
            }
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            // The refusal stands; only its record is missing, and the
            // caller must not believe it was kept.
            return e;
        }
        let first = &refusals[0];
        if let Some(e) = first.failed {
            return policy_failed(first.policy, "guard", e.clone());
        }
        ServiceError::GuardRejected {
            policy: first.policy.name.clone(),
            version: first.policy.version,
            reason: first.reason.clone(),
            missing: first.missing.clone(),
            vetoes,
        }
    }

    /// Adds the tasks an after-hook asked for; returns how many.
    fn stage_tasks(
        &self,
        batch: &mut Batch,
        deal: &Deal,
        out: &AfterOutput,
        policy: &LivePolicy,
        at: &chrono::DateTime<chrono::Utc>,
        by: &str,
    ) -> Result<usize, ServiceError> {
        if out.tasks.len() > MAX_TASKS_PER_HOOK {
            return Err(policy_failed(
                policy,
                "after",
                PolicyError::BadOutput(format!(
                    "at most {MAX_TASKS_PER_HOOK} tasks per transition"
                )),
            ));
        }
        for spec in &out.tasks {
            let bad = |m: String| policy_failed(policy, "after", PolicyError::BadOutput(m));
            let title = validate::name("tasks[].title", &spec.title).map_err(|e| bad(e.reason))?;
            if !(0..=3650).contains(&spec.due_in_days) {
                return Err(bad("tasks[].due_in_days must be 0 to 3650".into()));
            }
            let assignee = match &spec.assignee {
                Some(a) => validate::user("tasks[].assignee", a).map_err(|e| bad(e.reason))?,
                None => deal.owner.clone(),
            };
            let task = Task {
                id: self.repo.new_id("task")?,
                branch: deal.branch.clone(),
                customer_id: deal.customer_id.clone(),
                deal_id: Some(deal.id.clone()),
                title,
                kind: spec.kind.clone(),
                assignee,
                due_at: *at + chrono::Duration::days(spec.due_in_days),
                status: TaskStatus::Open,
                note: None,
                created_by_policy: Some(format!("{}@{}", policy.name, policy.version)),
                closed_by: None,
                closed_at: None,
                created_at: now(),
                version: 1,
            };
            crate::service::stage_task(batch, None, &task);
            events::add(
                batch,
                EventKind::TaskCreated,
                ResourceRef::task(&task),
                by,
                serde_json::json!({"deal": deal.id, "customer": task.customer_id, "title": task.title,
                                   "kind": task.kind, "due_at": task.due_at, "policy": task.created_by_policy}),
            );
        }
        Ok(out.tasks.len())
    }
}

fn apply_attributes(deal: &mut Deal, out: &AfterOutput) -> Result<(), PolicyError> {
    for (k, v) in &out.set {
        check_attribute(k, v).map_err(PolicyError::BadOutput)?;
        deal.attributes.insert(k.clone(), v.clone());
    }
    if deal.attributes.len() > MAX_ATTRIBUTES {
        return Err(PolicyError::BadOutput(format!(
            "a deal carries at most {MAX_ATTRIBUTES} attributes"
        )));
    }
    Ok(())
}

fn dry_run_report(
    deal: &Deal,
    to: &str,
    structural: Verdict,
    targets: Vec<String>,
    run: &HookRun,
) -> TransitionCheck {
    let mut missing: Vec<String> = structural.reason.iter().cloned().collect();
    let mut verdicts = vec![structural];
    for (p, r) in &run.guards {
        let (allow, reason) = match r {
            Ok(v) => {
                missing.extend(v.missing.iter().cloned());
                if !v.allow && v.missing.is_empty() {
                    missing.extend(v.reason.iter().cloned());
                }
                (v.allow, v.reason.clone())
            }
            Err(e) => (false, Some(format!("the policy failed: {e}"))),
        };
        verdicts.push(Verdict {
            policy: p.name.clone(),
            version: p.version,
            allow,
            reason,
        });
    }
    TransitionCheck {
        dry_run: true,
        allowed: verdicts.iter().all(|v| v.allow),
        from: deal.stage.clone(),
        to: to.to_string(),
        allowed_targets: targets,
        verdicts,
        missing,
    }
}
