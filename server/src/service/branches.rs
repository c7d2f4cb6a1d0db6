//! Branch offices: created by admins, visible to their own people.

use serde_json::json;

use super::repo::{encode, Source};
use super::{events, now, Page, PageRequest, ServiceError, Services};
use crate::auth::Principal;
use crate::domain::branch::{Branch, NewBranch};
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::{ids, validate};
use crate::store::{keys, Batch, StoreError};

impl Services {
    /// Creates a branch (admin).
    pub async fn create_branch(
        &self,
        caller: &Principal,
        req: NewBranch,
    ) -> Result<Branch, ServiceError> {
        caller.require_admin()?;
        if !ids::is_slug(&req.id) {
            return Err(ServiceError::invalid("id", "must match [a-z0-9-]{1,40}"));
        }
        let timezone = req.timezone.unwrap_or_else(|| "UTC".into());
        if timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ServiceError::invalid(
                "timezone",
                format!("`{timezone}` is not an IANA time zone name (e.g. Asia/Shanghai)"),
            ));
        }
        let branch = Branch {
            name: validate::name("name", &req.name)?,
            id: req.id,
            timezone,
            created_at: now(),
            version: 1,
        };
        let key = keys::key(keys::BRANCH, &[&branch.id]);
        let mut batch = Batch::new();
        batch.expect(key.clone(), None).put(key, encode(&branch));
        self.stage_new_branch_due(&mut batch, &branch.id);
        events::add(
            &mut batch,
            EventKind::BranchCreated,
            ResourceRef::branch(&branch.id),
            &caller.user,
            json!({"name": branch.name, "timezone": branch.timezone}),
        );
        match self.repo.commit(batch).await {
            Err(StoreError::Conflict { .. }) => Err(ServiceError::Duplicate {
                kind: "branch",
                id: branch.id,
            }),
            other => other.map(|_| branch).map_err(Into::into),
        }
    }

    /// Lists branches: all for admins, their own for everyone else.
    pub fn list_branches(
        &self,
        caller: &Principal,
        page: &PageRequest,
    ) -> Result<Page<Branch>, ServiceError> {
        // Checked for everyone, even when the answer is one branch.
        page.limit()?;
        page.after()?;
        match caller.list_scope(None)? {
            None => self.repo.list(
                Source::Primary(keys::prefix(keys::BRANCH, &[])),
                page,
                |_: &Branch| true,
            ),
            Some(own) => Ok(Page {
                items: vec![self.branch(caller, &own)?],
                next_cursor: None,
            }),
        }
    }

    /// One branch, if the caller works there.
    pub fn branch(&self, caller: &Principal, id: &str) -> Result<Branch, ServiceError> {
        caller.may_read(&ResourceRef::branch(id))?;
        Ok(self.repo.fetch(keys::BRANCH, "branch", id)?.value)
    }

    /// Checks that a branch named in a body exists.
    pub(crate) fn require_branch_exists(&self, field: &str, id: &str) -> Result<(), ServiceError> {
        if ids::is_slug(id) && self.repo.exists(keys::BRANCH, id)? {
            Ok(())
        } else {
            Err(ServiceError::UnknownReference {
                field: field.into(),
                kind: "branch",
                id: id.into(),
            })
        }
    }
}
