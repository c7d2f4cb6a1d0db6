//! Fair assignment (docs/business-rules.md §6): a customer created without an owner gets
//! one from its branch's `assign` policy, which sees every rep's load; the
//! choice and its reason are kept in the customer's history.

use std::collections::HashMap;
use std::sync::Arc;

use super::{policy_failed, ServiceError, Services};
use crate::domain::customer::{Customer, Tier};
use crate::domain::customer_history::{CustomerAction, CustomerEvent};
use crate::policy::hook_values::customer_info;
use crate::policy::hooks::{AssignInput, Hook, RepLoad};
use crate::policy::PolicyCalls;
use crate::policy::PolicyError;
use crate::store::keys;

impl Services {
    /// The branch's reps (users holding an active rep token for it: a
    /// revoked or expired token takes its holder out of assignment) and
    /// their load, by name: one counter per rep (`rep_counts`), however
    /// big the branch.
    pub fn rep_loads(&self, branch: &str) -> Result<Vec<RepLoad>, ServiceError> {
        self.active_reps(branch)?
            .into_iter()
            .map(|user| {
                let n = self.rep_count(branch, &user)?;
                Ok(RepLoad {
                    a_customers: n.a,
                    customers: n.a + n.b + n.c,
                    open_deals: n.open_deals,
                    user,
                })
            })
            .collect()
    }

    /// The reps' loads read from every entry of the branch's indexes (what
    /// the counters must equal: the tests' oracle).
    pub fn rep_loads_oracle(&self, branch: &str) -> Result<Vec<RepLoad>, ServiceError> {
        let store = self.repo.store();
        let mut a_tier: HashMap<String, i64> = HashMap::new();
        let a_prefix = keys::prefix(keys::IX_CUSTOMER_TIER, &[branch, Tier::A.name()]);
        for (_, owner) in store.scan(&a_prefix, None, usize::MAX)? {
            *a_tier
                .entry(String::from_utf8_lossy(&owner).into_owned())
                .or_default() += 1;
        }
        self.active_reps(branch)?
            .into_iter()
            .map(|user| {
                let count = |tag| store.count(&keys::prefix(tag, &[branch, &user]));
                Ok(RepLoad {
                    a_customers: a_tier.get(&user).copied().unwrap_or_default(),
                    customers: count(keys::IX_CUSTOMER_OWNER)? as i64,
                    open_deals: count(keys::IX_DEAL_OPEN)? as i64,
                    user,
                })
            })
            .collect()
    }

    /// Gives `customer` (new, without owner) the owner its branch's
    /// `assign` policy picks; returns the history entry to keep, or `None`
    /// when no policy assigns or the policy leaves it unassigned.
    pub(crate) async fn assign_owner(
        &self,
        customer: &mut Customer,
    ) -> Result<Option<CustomerEvent>, ServiceError> {
        let snapshot = self.policies.live.snapshot();
        let Some(policy) = snapshot.deciding(&customer.branch, Hook::Assign) else {
            return Ok(None);
        };
        let reps = self.rep_loads(&customer.branch)?;
        let input = Arc::new(AssignInput {
            branch: self.branch_for_hooks(&customer.branch)?,
            customer: customer_info(customer),
            reps,
        });
        let run = Arc::clone(&policy);
        let call = Arc::clone(&input);
        let out = self
            .policies
            .executor
            .run_hooks(policy.runs_inline(), move |limits| {
                run.timed(|| run.exec.assign(&call, limits))
            })
            .await
            .and_then(|r| r)
            .map_err(|e| policy_failed(&policy, "assign", e))?;
        let Some(owner) = out.owner else {
            return Ok(None);
        };
        if !input.reps.iter().any(|r| r.user == owner) {
            return Err(policy_failed(
                &policy,
                "assign",
                PolicyError::BadOutput(format!("`{owner}` is not one of the branch's reps")),
            ));
        }
        customer.owner = Some(owner.clone());
        Ok(Some(CustomerEvent {
            seq: customer.version,
            action: CustomerAction::Assigned,
            at: customer.created_at,
            by: "system".into(),
            trigger: "created".into(),
            from: None,
            to: Some(owner.clone()),
            owner: Some(owner),
            reason: out.reason,
            policy: Some(policy.name.clone()),
            version: Some(policy.version),
            sha256: Some(policy.sha256.clone()),
        }))
    }
}
