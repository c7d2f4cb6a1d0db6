//! Moving a deal between stages: check the move against the branch pipeline,
//! then write the deal, its history entry, its stage index and (on signing)
//! the brands it makes no longer new, in one atomic batch.

use std::collections::BTreeSet;

use crate::auth::{Denied, Principal};
use crate::domain::brand::Brand;
use crate::domain::deal::{Deal, TransitionCheck, TransitionRequest, Verdict};
use crate::domain::history::{HistoryAction, HistoryEntry};
use crate::domain::pipeline::{Pipeline, StageKind};
use crate::domain::validate;
use crate::service::{check_version, now, ServiceError, Services};
use crate::store::{keys, Batch, StoreError};

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

fn structural_verdict(pipeline: &Pipeline, deal: &Deal, to: &str) -> (Verdict, Vec<String>) {
    let targets = pipeline.targets(&deal.stage);
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

impl Services {
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
        for _ in 0..crate::service::MAX_RETRIES {
            let old = self.visible_deal(caller, deal_id)?;
            check_version(if_match, old.value.version)?;
            let deal = &old.value;
            let pipeline = self.pipeline_of(&deal.branch)?;
            let (verdict, targets) = structural_verdict(&pipeline, deal, &req.to);
            if req.dry_run {
                let missing = verdict.reason.iter().cloned().collect();
                return Ok(TransitionOutcome::Checked(TransitionCheck {
                    dry_run: true,
                    allowed: verdict.allow,
                    from: deal.stage.clone(),
                    to: req.to.clone(),
                    allowed_targets: targets,
                    verdicts: vec![verdict],
                    missing,
                }));
            }
            if !verdict.allow {
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
                            deal.stage_entered_at.to_rfc3339()
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
            let now = now();
            let mut moved = deal.clone();
            moved.stage = req.to.clone();
            moved.stage_entered_at = at;
            moved.stages_passed.push(req.to.clone());
            moved.version += 1;
            moved.updated_at = now;
            match kind {
                StageKind::Won => moved.signed_at = Some(at),
                StageKind::Lost => moved.lost_at = Some(at),
                StageKind::Open => {}
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
                override_reason: override_reason.clone(),
                changes: None,
            };
            let mut batch = Batch::new();
            crate::service::stage_deal(&mut batch, Some(&old), &moved, &entry);
            if kind == StageKind::Won {
                self.stage_brands_sold(&mut batch, &moved)?;
            }
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => {
                    return other
                        .map(|_| TransitionOutcome::Moved(Box::new(moved)))

                        .map_err(Into::into)
                }
            }
        }
        Err(ServiceError::Contended)
    }

    /// Marks the deal's brands that were still new as sold by this deal.
    fn stage_brands_sold(&self, batch: &mut Batch, deal: &Deal) -> Result<(), ServiceError> {
        let brands: BTreeSet<&str> = deal.lines.iter().map(|l| l.brand.as_str()).collect();
        for id in brands {
            let key = keys::key(keys::BRAND, &[id]);
            let Some(stored) = self.repo.read::<Brand>(&key)? else {
                continue;
            };
            if !stored.value.new {
                continue;
            }
            let mut b = stored.value.clone();
            b.new = false;
            b.first_signed_at = deal.signed_at;
            b.first_signed_deal = Some(deal.id.clone());
            b.version += 1;
            batch.expect(key.clone(), Some(&stored.raw));
            batch.put(key, crate::service::encode(&b));
        }
        Ok(())
    }
}
