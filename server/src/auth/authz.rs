//! The authorization matrix (docs/http-reference.md, Conventions), in one place.
//!
//! | role    | branches, brands, fx | customers        | deals                 | records              |
//! |---------|----------------------|------------------|-----------------------|----------------------|
//! | admin   | read, write          | all              | all                   | all                  |
//! | manager | read                 | own branch       | own branch            | own branch           |
//! | rep     | read                 | own branch       | own branch, own deals | own branch, own ones |
//!
//! Another branch's data is always refused with 403.
//!
//! Reading one resource is decided by [`Principal::may_read`], per resource
//! kind: the REST reads call it, and `GET /v1/events` delivers an event
//! exactly to the callers for whom it allows the event's resource.

use crate::domain::event::{ResourceKind, ResourceRef};
use crate::domain::token::Role;

/// A refusal, with the sentence shown to the caller.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct Denied(pub String);

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The role.
    pub role: Role,
    /// The branch of a manager or rep.
    pub branch: Option<String>,
    /// The user name.
    pub user: String,
}

impl Principal {
    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Admins only (catalog and server administration).
    pub fn require_admin(&self) -> Result<(), Denied> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(Denied("only an admin may do this".into()))
        }
    }

    /// Anyone working in `branch` (admins everywhere).
    pub fn require_branch(&self, branch: &str) -> Result<(), Denied> {
        if self.is_admin() || self.branch.as_deref() == Some(branch) {
            Ok(())
        } else {
            Err(Denied(format!("branch `{branch}` is outside your scope")))
        }
    }

    /// An admin or the manager of `branch`.
    pub fn require_manager_of(&self, branch: &str) -> Result<(), Denied> {
        self.require_branch(branch)?;
        if self.role == Role::Rep {
            return Err(Denied(format!(
                "only a manager of `{branch}` or an admin may do this"
            )));
        }
        Ok(())
    }

    /// Access to something owned by `owner` in `branch` (a deal, a record):
    /// admins and the branch's managers see all of it, reps only their own.
    pub fn require_owned(&self, branch: &str, owner: &str) -> Result<(), Denied> {
        self.require_branch(branch)?;
        if self.role == Role::Rep && self.user != owner {
            return Err(Denied(format!(
                "this belongs to `{owner}`; a rep sees only their own"
            )));
        }
        Ok(())
    }

    /// Changing who owns something in `branch` (a customer or a deal) from
    /// `current` to `new` (docs/business-rules.md §6: assignment is visible and fair): a
    /// rep may only take what nobody owns, for themselves; the branch's
    /// managers and admins reassign anything (with a written reason, which
    /// the use case asks for).
    pub fn require_owner_change(
        &self,
        what: &str,
        branch: &str,
        current: Option<&str>,
        new: Option<&str>,
    ) -> Result<(), Denied> {
        self.require_branch(branch)?;
        if self.role != Role::Rep {
            return Ok(());
        }
        let reassign =
            || format!("only a manager of `{branch}` or an admin may reassign it, with a reason");
        match (current, new) {
            (Some(c), _) if c != self.user => Err(Denied(format!(
                "this {what} belongs to `{c}`; {}",
                reassign()
            ))),
            (_, Some(n)) if n == self.user => Ok(()),
            _ => Err(Denied(format!(
                "a rep cannot give a {what} to someone else; {}",
                reassign()
            ))),
        }
    }

    /// Whether the caller may read `r` (with `GET` on its `href`), as one
    /// rule per resource kind:
    ///
    /// | kind | who reads it |
    /// |---|---|
    /// | brand, FX rate, global policy | everyone |
    /// | branch, pipeline, customer, branch policy | the branch |
    /// | deal, record, task, statement | the branch's managers; a rep, their own |
    /// | settlement | the branch's managers (every rep's pay is on it) |
    /// | token | the branch's managers (a branch-less token: admins) |
    pub fn may_read(&self, r: &ResourceRef) -> Result<(), Denied> {
        let Some(branch) = r.branch.as_deref() else {
            return match r.kind {
                ResourceKind::Brand | ResourceKind::FxRate | ResourceKind::Policy => Ok(()),
                _ => self.require_admin(),
            };
        };
        let owner = r.owner.as_deref().unwrap_or_default();
        // A rep's own: the same check as `require_owned`, with the
        // sentence each resource has always answered with.
        let own = |refusal: &str| {
            self.require_branch(branch)?;
            if self.role == Role::Rep && self.user != owner {
                return Err(Denied(refusal.into()));
            }
            Ok(())
        };
        match r.kind {
            ResourceKind::Branch
            | ResourceKind::Pipeline
            | ResourceKind::Customer
            | ResourceKind::Policy
            | ResourceKind::Brand
            | ResourceKind::FxRate => self.require_branch(branch),
            ResourceKind::Deal => self.require_owned(branch, owner),
            ResourceKind::Record => own("a rep reads and corrects only the records they wrote"),
            ResourceKind::Task => own("a rep sees only their own tasks"),
            ResourceKind::Statement => own("a rep sees only their own statement"),
            ResourceKind::Settlement | ResourceKind::Token => self.require_manager_of(branch),
        }
    }

    /// The branch a list is limited to: what was asked for, checked, or the
    /// caller's own branch when nothing was asked (admins: everything).
    pub fn list_scope(&self, requested: Option<&str>) -> Result<Option<String>, Denied> {
        match (requested, self.is_admin()) {
            (Some(b), _) => self.require_branch(b).map(|_| Some(b.to_string())),
            (None, true) => Ok(None),
            (None, false) => Ok(self.branch.clone()),
        }
    }

    /// The owner a list is limited to: reps see only their own.
    pub fn owner_scope(&self, requested: Option<&str>) -> Result<Option<String>, Denied> {
        match (self.role, requested) {
            (Role::Rep, Some(o)) if o != self.user => Err(Denied(
                "a rep lists only their own deals and records".into(),
            )),
            (Role::Rep, _) => Ok(Some(self.user.clone())),
            (_, o) => Ok(o.map(str::to_string)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(role: Role, branch: Option<&str>, user: &str) -> Principal {
        Principal {
            role,
            branch: branch.map(str::to_string),
            user: user.into(),
        }
    }

    #[test]
    fn matrix() {
        let admin = p(Role::Admin, None, "root");
        let mgr = p(Role::Manager, Some("sh"), "wang");
        let rep = p(Role::Rep, Some("sh"), "li");
        assert!(admin.require_owned("bj", "x").is_ok());
        assert!(mgr.require_owned("sh", "x").is_ok());
        assert!(mgr.require_owned("bj", "x").is_err());
        assert!(rep.require_owned("sh", "li").is_ok());
        assert!(rep.require_owned("sh", "x").is_err());
        assert!(rep.require_manager_of("sh").is_err());
        assert!(mgr.require_manager_of("sh").is_ok());
        assert!(mgr.require_admin().is_err());
        assert_eq!(rep.list_scope(None).unwrap().as_deref(), Some("sh"));
        assert!(rep.list_scope(Some("bj")).is_err());
        assert_eq!(admin.list_scope(None).unwrap(), None);
        assert_eq!(rep.owner_scope(None).unwrap().as_deref(), Some("li"));
        assert!(rep.owner_scope(Some("x")).is_err());
    }

    #[test]
    fn owner_changes() {
        let mgr = p(Role::Manager, Some("sh"), "wang");
        let rep = p(Role::Rep, Some("sh"), "li");
        // A rep takes what nobody owns, for themselves only.
        assert!(rep
            .require_owner_change("customer", "sh", None, Some("li"))
            .is_ok());
        assert!(rep
            .require_owner_change("customer", "sh", Some("li"), Some("li"))
            .is_ok());
        assert!(rep
            .require_owner_change("customer", "sh", None, Some("zhao"))
            .is_err());
        assert!(rep
            .require_owner_change("customer", "sh", Some("li"), None)
            .is_err());
        let taken = rep
            .require_owner_change("customer", "sh", Some("zhao"), Some("li"))
            .unwrap_err();
        assert!(taken.0.contains("belongs to `zhao`"), "{taken}");
        assert!(taken.0.contains("manager of `sh`"), "{taken}");
        // Managers reassign inside their branch only.
        assert!(mgr
            .require_owner_change("customer", "sh", Some("zhao"), Some("li"))
            .is_ok());
        assert!(mgr
            .require_owner_change("customer", "bj", Some("zhao"), Some("li"))
            .is_err());
    }

    #[test]
    fn who_reads_which_resource() {
        use crate::domain::event::{ResourceKind, ResourceRef};
        let admin = p(Role::Admin, None, "root");
        let mgr = p(Role::Manager, Some("sh"), "wang");
        let rep = p(Role::Rep, Some("sh"), "li");
        let other_mgr = p(Role::Manager, Some("bj"), "zhao");
        let r = |kind, branch: Option<&str>, owner: Option<&str>| ResourceRef {
            kind,
            id: "x".into(),
            branch: branch.map(str::to_string),
            owner: owner.map(str::to_string),
            href: String::new(),
        };
        let cases = [
            // (resource, admin, manager of sh, rep li of sh, manager of bj)
            (r(ResourceKind::Brand, None, None), [true, true, true, true]),
            (
                r(ResourceKind::Policy, None, None),
                [true, true, true, true],
            ),
            (
                r(ResourceKind::Policy, Some("sh"), None),
                [true, true, true, false],
            ),
            (
                r(ResourceKind::Customer, Some("sh"), Some("zhang")),
                [true, true, true, false],
            ),
            (
                r(ResourceKind::Deal, Some("sh"), Some("li")),
                [true, true, true, false],
            ),
            (
                r(ResourceKind::Deal, Some("sh"), Some("zhang")),
                [true, true, false, false],
            ),
            (
                r(ResourceKind::Record, Some("sh"), Some("zhang")),
                [true, true, false, false],
            ),
            (
                r(ResourceKind::Task, Some("sh"), Some("li")),
                [true, true, true, false],
            ),
            (
                r(ResourceKind::Statement, Some("sh"), Some("zhang")),
                [true, true, false, false],
            ),
            (
                r(ResourceKind::Settlement, Some("sh"), None),
                [true, true, false, false],
            ),
            (
                r(ResourceKind::Token, Some("sh"), Some("li")),
                [true, true, false, false],
            ),
            (
                r(ResourceKind::Token, None, Some("root")),
                [true, false, false, false],
            ),
        ];
        for (resource, expected) in cases {
            let got = [&admin, &mgr, &rep, &other_mgr].map(|c| c.may_read(&resource).is_ok());
            assert_eq!(got, expected, "{resource:?}");
        }
    }
}
