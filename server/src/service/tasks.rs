//! Follow-up tasks created by after-hooks: listed by branch or deal.

use serde_json::json;

use super::repo::{encode, Source, Stored};
use super::{check_version, events, now, Page, PageRequest, ServiceError, Services, MAX_RETRIES};
use crate::auth::{Denied, Principal};
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::task::{CloseTask, Task, TaskStatus};
use crate::domain::token::Role;
use crate::domain::validate;
use crate::store::{keys, Batch, StoreError};

/// Filters of `GET /v1/tasks`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TaskFilter {
    /// Only this branch (non-admins: their own).
    pub branch: Option<String>,
    /// Only tasks created for this deal.
    pub deal_id: Option<String>,
    /// Only this status.
    pub status: Option<TaskStatus>,
    /// Only this assignee (reps: always themselves).
    pub assignee: Option<String>,
    /// Page size.
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}

/// Writes a task and keeps its indexes in step with `old` (`None`: a new
/// task): an open task is listed by branch and by assignee in due order
/// and counted as an overdue instant of its assignee at its due time
/// (`overdue`); closing it takes it out of those.
pub(crate) fn stage_task(batch: &mut Batch, old: Option<&Stored<Task>>, new: &Task) {
    let key = keys::key(keys::TASK, &[&new.id]);
    batch.expect(key.clone(), old.map(|o| o.raw.as_slice()));
    batch.put(key, encode(new));
    let id = new.id.as_bytes();
    if old.is_none() {
        batch.put(keys::key(keys::IX_TASK_BRANCH, &[&new.branch, &new.id]), id);
        if let Some(d) = &new.deal_id {
            batch.put(keys::key(keys::IX_TASK_DEAL, &[d, &new.id]), id);
        }
    }
    let open = |t: &Task| t.status == TaskStatus::Open;
    let was = old.map(|o| &o.value).filter(|t| open(t));
    let is = Some(new).filter(|t| open(t));
    if let Some(t) = was {
        if is.is_some_and(|n| (&n.assignee, n.due_at) == (&t.assignee, t.due_at)) {
            return;
        }
        batch.delete(keys::key(keys::IX_TASK_OPEN, &[&t.branch, &t.id]));
        for k in due_keys(t) {
            batch.delete(k);
        }
        super::overdue::stage_instant(batch, &t.branch, &t.assignee, &t.id, &t.due_at, -1);
    }
    if let Some(t) = is {
        batch.put(keys::key(keys::IX_TASK_OPEN, &[&t.branch, &t.id]), id);
        for k in due_keys(t) {
            batch.put(k, id);
        }
        super::overdue::stage_instant(batch, &t.branch, &t.assignee, &t.id, &t.due_at, 1);
    }
}

/// An open task's keys in the indexes by assignee and by branch, in due
/// order.
pub(crate) fn due_keys(t: &Task) -> [Vec<u8>; 2] {
    let due = keys::instant(&t.due_at);
    [
        keys::key(
            keys::IX_TASK_DUE_OWNER,
            &[&t.branch, &t.assignee, &due, &t.id],
        ),
        keys::key(keys::IX_TASK_DUE_BRANCH, &[&t.branch, &due, &t.id]),
    ]
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

impl Services {
    /// One task, if the caller may read it (its assignee, or the branch's
    /// managers).
    pub fn task(&self, caller: &Principal, id: &str) -> Result<Task, ServiceError> {
        let t: Task = self.repo.fetch(keys::TASK, "task", id)?.value;
        caller.may_read(&ResourceRef::task(&t))?;
        Ok(t)
    }

    /// Completes or dismisses an open task: its assignee, or a manager of
    /// its branch. Dismissing needs a note.
    pub async fn close_task(
        &self,
        caller: &Principal,
        id: &str,
        to: TaskStatus,
        req: CloseTask,
        if_match: Option<u64>,
    ) -> Result<Task, ServiceError> {
        let note = validate::opt_text("note", req.note.as_deref())?;
        if to == TaskStatus::Dismissed && note.is_none() {
            return Err(ServiceError::invalid(
                "note",
                "say why the task is dismissed",
            ));
        }
        for _ in 0..MAX_RETRIES {
            let old: Stored<Task> = self.repo.fetch(keys::TASK, "task", id)?;
            caller.require_branch(&old.value.branch)?;
            if caller.role == Role::Rep && old.value.assignee != caller.user {
                return Err(Denied("a rep closes only their own tasks".into()).into());
            }
            check_version(if_match, old.value.version)?;
            if old.value.status != TaskStatus::Open {
                return Err(ServiceError::WrongState {
                    code: "invalid_state",
                    message: format!("task {id} is already closed"),
                });
            }
            let mut t = old.value.clone();
            t.status = to;
            t.note = note.clone();
            t.closed_by = Some(caller.user.clone());
            t.closed_at = Some(now());
            t.version += 1;
            let mut batch = Batch::new();
            stage_task(&mut batch, Some(&old), &t);
            events::add(
                &mut batch,
                EventKind::TaskClosed,
                ResourceRef::task(&t),
                &caller.user,
                json!({"status": t.status, "note": t.note, "deal": t.deal_id, "version": t.version}),
            );
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other.map(|_| t).map_err(Into::into),
            }
        }
        Err(ServiceError::Contended)
    }
}
