//! Reading and replacing a branch's pipeline definition. Definitions are read
//! on every transition, so they are cached; the cache is updated by the same
//! call that commits a new definition. The same cache keeps what hooks see
//! of each branch (its record never changes).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use serde::Serialize;
use utoipa::ToSchema;

use super::{events, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::branch::Branch;
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::pipeline::{Pipeline, PipelineDefinition};
use crate::policy::hook_values;
use crate::policy::hooks::BranchInfo;
use crate::store::{keys, Batch, StoreError};

/// Effective pipelines by branch, and what hooks see of each branch.
#[derive(Default)]
pub struct PipelineCache {
    /// Branch id → its pipeline.
    by_branch: RwLock<HashMap<String, Arc<Pipeline>>>,
    /// Branch id → the branch as hooks see it. A branch record never
    /// changes once created, so entries never go stale; caching it saves
    /// every hooked transition a sled read (a read waits on the group
    /// writer's apply, BENCHMARKS.md "Issue 17") and a JSON decode.
    branch_infos: RwLock<HashMap<String, BranchInfo>>,
}

/// Deals left in a stage the new definition no longer has.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrphanedStage {
    /// The stage that disappeared.
    pub stage: String,
    /// How many deals are in it.
    pub deals: usize,
}

/// Response of `PUT /v1/branches/{id}/pipeline`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PipelineChange {
    /// The new effective pipeline.
    #[serde(flatten)]
    pub pipeline: Pipeline,
    /// Stages that disappeared while deals are still in them. Those deals
    /// keep their stage and may move to any open or lost stage.
    pub orphaned: Vec<OrphanedStage>,
}

impl Services {
    /// What hooks see of a branch (its time zone), read from the store once:
    /// a branch never changes once created.
    pub(crate) fn branch_for_hooks(&self, branch: &str) -> Result<BranchInfo, ServiceError> {
        if let Some(info) = self.pipelines.branch_infos.read().get(branch) {
            return Ok(info.clone());
        }
        let b: Branch = self.repo.fetch(keys::BRANCH, "branch", branch)?.value;
        let info = hook_values::branch_info(b);
        self.pipelines
            .branch_infos
            .write()
            .insert(branch.to_string(), info.clone());
        Ok(info)
    }

    /// The effective pipeline of a branch (no authorization: internal).
    pub(crate) fn pipeline_of(&self, branch: &str) -> Result<Arc<Pipeline>, ServiceError> {
        if let Some(p) = self.pipelines.by_branch.read().get(branch) {
            return Ok(Arc::clone(p));
        }
        let stored = self
            .repo
            .read::<Pipeline>(&keys::key(keys::PIPELINE, &[branch]))?;
        let p = Arc::new(stored.map_or_else(|| Pipeline::default_for(branch), |s| s.value));
        // A definition committed meanwhile may already be cached: keep it.
        let mut cache = self.pipelines.by_branch.write();
        Ok(Arc::clone(cache.entry(branch.to_string()).or_insert(p)))
    }

    /// A branch's pipeline, for anyone in the branch.
    pub fn pipeline(&self, caller: &Principal, branch: &str) -> Result<Pipeline, ServiceError> {
        caller.may_read(&ResourceRef::pipeline(branch))?;
        self.require_existing_branch(branch)?;
        Ok(self.pipeline_of(branch)?.as_ref().clone())
    }

    fn require_existing_branch(&self, branch: &str) -> Result<(), ServiceError> {
        if self.repo.exists(keys::BRANCH, branch)? {
            Ok(())
        } else {
            Err(ServiceError::not_found("branch", branch))
        }
    }

    /// Replaces a branch's pipeline (admin or the branch's manager).
    pub async fn set_pipeline(
        &self,
        caller: &Principal,
        branch: &str,
        def: PipelineDefinition,
        if_match: Option<u64>,
    ) -> Result<PipelineChange, ServiceError> {
        caller.require_manager_of(branch)?;
        self.require_existing_branch(branch)?;
        def.validate()?;
        let key = keys::key(keys::PIPELINE, &[branch]);
        let current = self.repo.read::<Pipeline>(&key)?;
        let version = current.as_ref().map_or(0, |c| c.value.version);
        crate::service::check_version(if_match, version)?;
        let pipeline = Pipeline {
            branch: branch.into(),
            default: false,
            stages: def.stages,
            moves: def.moves,
            version: version + 1,
            updated_by: Some(caller.user.clone()),
            updated_at: Some(crate::service::now()),
        };
        let mut batch = Batch::new();
        batch.expect(key.clone(), current.as_ref().map(|c| c.raw.as_slice()));
        batch.put(key, serde_json::to_vec(&pipeline).expect("serialises"));
        events::add(
            &mut batch,
            EventKind::PipelineChanged,
            ResourceRef::pipeline(branch),
            &caller.user,
            serde_json::json!({"version": pipeline.version,
                               "stages": pipeline.stages.iter().map(|s| &s.id).collect::<Vec<_>>()}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => {
                return Err(ServiceError::VersionConflict {
                    expected: version,
                    actual: version + 1,
                })
            }
            other => other?,
        }
        {
            // Concurrent replacements commit in version order (the expectation
            // above), but may reach this line out of order: never go back.
            let mut cache = self.pipelines.by_branch.write();
            let slot = cache
                .entry(branch.to_string())
                .or_insert_with(|| Arc::new(pipeline.clone()));
            if slot.version < pipeline.version {
                *slot = Arc::new(pipeline.clone());
            }
        }
        let old_stages: Vec<String> = match &current {
            Some(c) => c.value.stages.iter().map(|s| s.id.clone()).collect(),
            None => Pipeline::default_for(branch)
                .stages
                .into_iter()
                .map(|s| s.id)
                .collect(),
        };
        let mut orphaned = Vec::new();
        for stage in old_stages.iter().filter(|s| pipeline.stage(s).is_none()) {
            let deals = self
                .repo
                .store()
                .count(&keys::prefix(keys::IX_DEAL_STAGE, &[branch, stage]))?;
            if deals > 0 {
                orphaned.push(OrphanedStage {
                    stage: stage.clone(),
                    deals,
                });
            }
        }
        Ok(PipelineChange { pipeline, orphaned })
    }
}
