//! Pipeline definitions: stages, their kind, and the allowed moves. The
//! default is docs/business-rules.md §4 (`lead → qualify → visit → quote → sign`, `lost`
//! from any open stage); a branch may define its own.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ids::is_slug;
use super::validate::FieldError;

/// Whether a stage is still open, won (signed) or lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// The deal is in progress.
    Open,
    /// The contract is signed; entering records `signed_at`.
    Won,
    /// The deal is lost; entering records `lost_at`.
    Lost,
}

/// A stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Stage id, `[a-z0-9-]{1,40}` (underscores allowed too).
    #[schema(schema_with = crate::domain::schema::stage_id)]
    pub id: String,
    /// Display name; the id when absent.
    #[serde(default)]
    #[schema(schema_with = crate::domain::schema::opt_name)]
    pub name: Option<String>,
    /// Open (default), won or lost.
    #[serde(default = "open")]
    pub kind: StageKind,
}

fn open() -> StageKind {
    StageKind::Open
}

/// An allowed move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Move {
    /// From this stage.
    pub from: String,
    /// To this stage.
    pub to: String,
}

/// Body of `PUT /v1/branches/{id}/pipeline`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineDefinition {
    /// Stages in display order; the first is where new deals start.
    #[schema(schema_with = crate::domain::schema::stages)]
    pub stages: Vec<Stage>,
    /// Allowed moves.
    pub moves: Vec<Move>,
}

/// A branch's effective pipeline.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Pipeline {
    /// The branch.
    pub branch: String,
    /// True while the branch uses the default pipeline.
    pub default: bool,
    /// Stages in display order; the first is where new deals start.
    pub stages: Vec<Stage>,
    /// Allowed moves.
    pub moves: Vec<Move>,
    /// Optimistic-concurrency version (0 for the default).
    pub version: u64,
    /// Who last set it.
    pub updated_by: Option<String>,
    /// When it was last set.
    #[serde(default, with = "crate::domain::time::ms_opt")]
    pub updated_at: Option<DateTime<Utc>>,
}

pub use super::validate::MAX_STAGES;

impl Pipeline {
    /// The default pipeline of docs/business-rules.md §4 for `branch`.
    pub fn default_for(branch: &str) -> Self {
        let open = ["lead", "qualify", "visit", "quote"];
        let mut stages: Vec<Stage> = open
            .iter()
            .map(|id| Stage {
                id: (*id).into(),
                name: None,
                kind: StageKind::Open,
            })
            .collect();
        stages.push(Stage {
            id: "sign".into(),
            name: None,
            kind: StageKind::Won,
        });
        stages.push(Stage {
            id: "lost".into(),
            name: None,
            kind: StageKind::Lost,
        });
        let chain = ["lead", "qualify", "visit", "quote", "sign"];
        let mut moves: Vec<Move> = chain
            .windows(2)
            .map(|w| Move {
                from: w[0].into(),
                to: w[1].into(),
            })
            .collect();
        moves.extend(open.iter().map(|s| Move {
            from: (*s).into(),
            to: "lost".into(),
        }));
        Self {
            branch: branch.into(),
            default: true,
            stages,
            moves,
            version: 0,
            updated_by: None,
            updated_at: None,
        }
    }

    /// The stage where new deals start.
    pub fn initial(&self) -> &str {
        &self.stages[0].id
    }

    /// The stage with this id.
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.id == id)
    }

    /// The stages reachable from `from`. A deal whose stage left the pipeline
    /// may move to any open or lost stage, so it can be brought back in.
    pub fn targets(&self, from: &str) -> Vec<String> {
        if self.stage(from).is_none() {
            return self
                .stages
                .iter()
                .filter(|s| s.kind != StageKind::Won)
                .map(|s| s.id.clone())
                .collect();
        }
        self.moves
            .iter()
            .filter(|m| m.from == from)
            .map(|m| m.to.clone())
            .collect()
    }
}

fn is_stage_id(s: &str) -> bool {
    is_slug(&s.replace('_', "-"))
}

impl PipelineDefinition {
    /// Checks the definition is coherent.
    pub fn validate(&self) -> Result<(), FieldError> {
        if self.stages.is_empty() || self.stages.len() > MAX_STAGES {
            return Err(FieldError::new(
                "stages",
                format!("must have 1 to {MAX_STAGES} stages"),
            ));
        }
        let mut seen = HashSet::new();
        for (i, s) in self.stages.iter().enumerate() {
            if !is_stage_id(&s.id) {
                return Err(FieldError::new(
                    format!("stages[{i}].id"),
                    "must match [a-z0-9_-]{1,40}",
                ));
            }
            if !seen.insert(s.id.as_str()) {
                return Err(FieldError::new(
                    format!("stages[{i}].id"),
                    format!("duplicate stage `{}`", s.id),
                ));
            }
            if let Some(name) = &s.name {
                super::validate::name(&format!("stages[{i}].name"), name)?;
            }
        }
        if self.stages[0].kind != StageKind::Open {
            return Err(FieldError::new(
                "stages[0].kind",
                "the first stage is where deals start and must be open",
            ));
        }
        if !self.stages.iter().any(|s| s.kind == StageKind::Won) {
            return Err(FieldError::new("stages", "needs at least one won stage"));
        }
        if self.moves.len() > MAX_STAGES * MAX_STAGES {
            return Err(FieldError::new("moves", "too many moves"));
        }
        let mut moves = HashSet::new();
        for (i, m) in self.moves.iter().enumerate() {
            for (field, id) in [("from", &m.from), ("to", &m.to)] {
                if !seen.contains(id.as_str()) {
                    return Err(FieldError::new(
                        format!("moves[{i}].{field}"),
                        format!("unknown stage `{id}`"),
                    ));
                }
            }
            if m.from == m.to {
                return Err(FieldError::new(
                    format!("moves[{i}]"),
                    "a stage cannot move to itself",
                ));
            }
            let from = self
                .stages
                .iter()
                .find(|s| s.id == m.from)
                .expect("checked");
            if from.kind == StageKind::Won {
                return Err(FieldError::new(
                    format!("moves[{i}].from"),
                    "a signed deal cannot move on (won stages are final)",
                ));
            }
            if !moves.insert((&m.from, &m.to)) {
                return Err(FieldError::new(format!("moves[{i}]"), "duplicate move"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pipeline_is_valid_and_ordered() {
        let p = Pipeline::default_for("b");
        let def = PipelineDefinition {
            stages: p.stages.clone(),
            moves: p.moves.clone(),
        };
        def.validate().unwrap();
        assert_eq!(p.initial(), "lead");
        assert_eq!(p.targets("lead"), vec!["qualify", "lost"]);
        assert_eq!(p.targets("quote"), vec!["sign", "lost"]);
        assert!(p.targets("sign").is_empty());
        assert!(p.targets("lost").is_empty());
    }

    #[test]
    fn orphaned_stage_may_rejoin_any_open_or_lost_stage() {
        let p = Pipeline::default_for("b");
        assert_eq!(
            p.targets("gone"),
            vec!["lead", "qualify", "visit", "quote", "lost"]
        );
    }
}
