//! Follow-up tasks created by after-hooks: listed by branch or deal.

use super::repo::Source;
use super::{Page, PageRequest, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::task::{Task, TaskStatus};
use crate::store::keys;

/// Filters of `GET /v1/tasks`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TaskFilter {
    /// Only this branch (non-admins: their own).
    pub branch: Option<String>,
    /// Only tasks created for this deal.
    pub deal_id: Option<String>,
    /// Only this status.
    #[param(value_type = Option<String>)]
    pub status: Option<TaskStatus>,
    /// Only this assignee (reps: always themselves).
    pub assignee: Option<String>,
    /// Page size.
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    pub cursor: Option<String>,
}

impl Services {
    /// Lists follow-up tasks in the caller's scope.
    pub fn list_tasks(
        &self,
        caller: &Principal,
        f: &TaskFilter,
    ) -> Result<Page<Task>, ServiceError> {
        let page = PageRequest {
            limit: f.limit,
            cursor: f.cursor.clone(),
        };
        let branch = caller.list_scope(f.branch.as_deref())?;
        let assignee = caller.owner_scope(f.assignee.as_deref())?;
        let source = match (&f.deal_id, &branch) {
            (Some(d), _) => {
                self.visible_deal(caller, d)?;
                Source::Index {
                    prefix: keys::prefix(keys::IX_TASK_DEAL, &[d]),
                    tag: keys::TASK,
                }
            }
            (None, Some(b)) => Source::Index {
                prefix: keys::prefix(keys::IX_TASK_BRANCH, &[b]),
                tag: keys::TASK,
            },
            (None, None) => Source::Primary(keys::prefix(keys::TASK, &[])),
        };
        let status = f.status;
        self.repo.list(source, &page, move |t: &Task| {
            branch.as_ref().is_none_or(|b| &t.branch == b)
                && assignee.as_ref().is_none_or(|a| &t.assignee == a)
                && status.is_none_or(|s| t.status == s)
        })
    }
}
