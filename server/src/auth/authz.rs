//! The authorization matrix of API.md, in one place.
//!
//! | role    | branches, brands, fx | customers        | deals                 | records              |
//! |---------|----------------------|------------------|-----------------------|----------------------|
//! | admin   | read, write          | all              | all                   | all                  |
//! | manager | read                 | own branch       | own branch            | own branch           |
//! | rep     | read                 | own branch       | own branch, own deals | own branch, own ones |
//!
//! Another branch's data is always refused with 403.

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
    /// `current` to `new` (DOMAIN.md §6: assignment is visible and fair): a
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
}
