//! Customers: created and changed by their branch, indexed by branch and owner.

use serde_json::json;

use super::repo::{encode, Source, Stored};
use super::{events, now, Page, PageRequest, ServiceError, Services, MAX_RETRIES};
use crate::auth::{Denied, Principal};
use crate::domain::customer::{Customer, CustomerPatch, NewCustomer, Tier};
use crate::domain::customer_history::{CustomerAction, CustomerEvent};
use crate::domain::event::{EventKind, ResourceRef};
use crate::domain::token::Role;
use crate::domain::validate;
use crate::domain::validate::FieldError;
use crate::store::{keys, Batch, StoreError};

/// Filters of `GET /v1/customers`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CustomerFilter {
    /// Only this branch (required scope for non-admins is their own).
    pub branch: Option<String>,
    /// Only customers of this owner.
    pub owner: Option<String>,
    /// Only this tier.
    pub tier: Option<Tier>,
    /// Only customers whose name contains this text (any case), or whose
    /// id it is. Paged like the whole list: a page holds up to `limit`
    /// matches, and `next_cursor` continues the search. Blank: no search.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Page size.
    #[param(schema_with = crate::domain::schema::limit)]
    pub limit: Option<usize>,
    /// Cursor from the previous page.
    #[param(schema_with = crate::domain::schema::cursor)]
    pub cursor: Option<String>,
}

/// Writes a customer and keeps its indexes in step with `old`.
pub(crate) fn stage_customer(batch: &mut Batch, old: Option<&Stored<Customer>>, new: &Customer) {
    let key = keys::key(keys::CUSTOMER, &[&new.id]);
    batch.expect(key.clone(), old.map(|o| o.raw.as_slice()));
    batch.put(key, encode(new));
    batch.put(
        keys::key(keys::IX_CUSTOMER_BRANCH, &[&new.branch, &new.id]),
        new.id.as_bytes(),
    );
    let old_owner = old.and_then(|o| o.value.owner.as_deref());
    if old_owner != new.owner.as_deref() {
        if let Some(o) = old_owner {
            batch.delete(keys::key(
                keys::IX_CUSTOMER_OWNER,
                &[&new.branch, o, &new.id],
            ));
        }
        if let Some(o) = &new.owner {
            batch.put(
                keys::key(keys::IX_CUSTOMER_OWNER, &[&new.branch, o, &new.id]),
                new.id.as_bytes(),
            );
        }
    }
    let old_tier = old.map(|o| (o.value.tier, o.value.owner.as_deref()));
    if old_tier != Some((new.tier, new.owner.as_deref())) {
        if let Some((t, _)) = old_tier {
            batch.delete(tier_key(&new.branch, t, &new.id));
        }
        batch.put(
            tier_key(&new.branch, new.tier, &new.id),
            new.owner.as_deref().unwrap_or_default().as_bytes(),
        );
    }
    let old_first = old.and_then(|o| o.value.first_order_at);
    if old_first != new.first_order_at {
        if let Some(t) = old_first {
            batch.delete(keys::key(
                keys::IX_CUSTOMER_FIRST_ORDER,
                &[&new.branch, &keys::time(&t), &new.id],
            ));
        }
        if let Some(t) = &new.first_order_at {
            batch.put(
                keys::key(
                    keys::IX_CUSTOMER_FIRST_ORDER,
                    &[&new.branch, &keys::time(t), &new.id],
                ),
                new.id.as_bytes(),
            );
        }
    }
}

/// The key of a customer's history entry `seq`.
pub(crate) fn history_key(customer: &str, seq: u64) -> Vec<u8> {
    keys::key(keys::CUSTOMER_HISTORY, &[customer, &format!("{seq:020}")])
}

/// The customer's entry in the tier index.
pub(crate) fn tier_key(branch: &str, tier: Tier, id: &str) -> Vec<u8> {
    keys::key(keys::IX_CUSTOMER_TIER, &[branch, tier.name(), id])
}

impl Services {
    /// Creates a customer in the caller's branch.
    pub async fn create_customer(
        &self,
        caller: &Principal,
        req: NewCustomer,
    ) -> Result<Customer, ServiceError> {
        self.require_branch_exists("branch", &req.branch)?;
        caller.require_branch(&req.branch)?;
        let owner = match (req.owner, caller.role) {
            (Some(o), Role::Rep) if o != caller.user => {
                return Err(Denied("a rep cannot give a customer to someone else".into()).into())
            }
            (Some(o), _) => Some(validate::user("owner", &o)?),
            // Without an owner the branch's assignment policy picks one
            // (below), whoever creates it: a rep keeps a customer by naming
            // themselves.
            (None, _) => None,
        };
        if let Some(r) = &req.referred_by {
            self.require_customer_in(&req.branch, "referred_by", r)?;
        }
        let now = now();
        let mut customer = Customer {
            id: self.repo.new_id("cus")?,
            name: validate::name("name", &req.name)?,
            branch: req.branch,
            owner,
            segment: req.segment,
            source: req.source,
            referred_by: req.referred_by,
            tier: Tier::C,
            last_contact_at: None,
            first_order_at: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let assigned = match customer.owner {
            Some(_) => None,
            None => self.assign_owner(&mut customer).await?,
        };
        let mut batch = Batch::new();
        stage_customer(&mut batch, None, &customer);
        let assigned_by_policy = assigned.is_some();
        if let Some(event) = assigned {
            batch.put(history_key(&customer.id, event.seq), encode(&event));
        }
        events::add(
            &mut batch,
            EventKind::CustomerCreated,
            ResourceRef::customer(&customer),
            &caller.user,
            json!({"name": customer.name, "owner": customer.owner, "tier": customer.tier,
                   "assigned_by_policy": assigned_by_policy, "version": customer.version}),
        );
        self.repo.commit(batch).await?;
        Ok(customer)
    }

    /// One customer, if the caller works in its branch.
    pub fn customer(&self, caller: &Principal, id: &str) -> Result<Customer, ServiceError> {
        let c: Customer = self.repo.fetch(keys::CUSTOMER, "customer", id)?.value;
        caller.may_read(&ResourceRef::customer(&c))?;
        Ok(c)
    }

    /// Lists customers in the caller's scope.
    pub fn list_customers(
        &self,
        caller: &Principal,
        f: &CustomerFilter,
    ) -> Result<Page<Customer>, ServiceError> {
        let page = PageRequest {
            limit: f.limit,
            cursor: f.cursor.clone(),
        };
        let branch = caller.list_scope(f.branch.as_deref())?;
        let source = match (&branch, &f.owner) {
            (Some(b), Some(o)) => Source::Index {
                prefix: keys::prefix(keys::IX_CUSTOMER_OWNER, &[b, o]),
                tag: keys::CUSTOMER,
            },
            (Some(b), None) => Source::Index {
                prefix: keys::prefix(keys::IX_CUSTOMER_BRANCH, &[b]),
                tag: keys::CUSTOMER,
            },
            (None, _) => Source::Primary(keys::prefix(keys::CUSTOMER, &[])),
        };
        let owner = f.owner.clone();
        let tier = f.tier;
        let q = search_text(f.q.as_deref())?;
        self.repo.list(source, &page, move |c: &Customer| {
            owner.as_ref().is_none_or(|o| c.owner.as_ref() == Some(o))
                && tier.is_none_or(|t| c.tier == t)
                && q.as_ref()
                    .is_none_or(|q| c.id == *q || c.name.to_lowercase().contains(q))
        })
    }

    /// Changes a customer; `if_match` guards against lost updates.
    pub async fn patch_customer(
        &self,
        caller: &Principal,
        id: &str,
        patch: CustomerPatch,
        if_match: Option<u64>,
    ) -> Result<Customer, ServiceError> {
        for _ in 0..MAX_RETRIES {
            let old: Stored<Customer> = self.repo.fetch(keys::CUSTOMER, "customer", id)?;
            caller.may_read(&ResourceRef::customer(&old.value))?;
            check_version(if_match, old.value.version)?;
            let mut c = old.value.clone();
            if let Some(name) = &patch.name {
                c.name = validate::name("name", name)?;
            }
            if let Some(owner) = &patch.owner {
                c.owner = owner
                    .as_deref()
                    .map(|o| validate::user("owner", o))
                    .transpose()?;
                // Naming an owner is a claim even when it changes nothing.
                caller.require_owner_change(
                    "customer",
                    &c.branch,
                    old.value.owner.as_deref(),
                    c.owner.as_deref(),
                )?;
            }
            let owner_change = if c.owner != old.value.owner {
                let reason = owner_change_reason(
                    caller,
                    "customer",
                    &c.branch,
                    old.value.owner.as_deref(),
                    c.owner.as_deref(),
                    patch.reason.as_deref(),
                )?;
                Some(CustomerEvent {
                    seq: c.version + 1,
                    action: CustomerAction::OwnerChanged,
                    at: now(),
                    by: caller.user.clone(),
                    trigger: if caller.role == Role::Rep {
                        "claimed"
                    } else {
                        "reassigned"
                    }
                    .into(),
                    from: old.value.owner.clone(),
                    to: c.owner.clone(),
                    owner: c.owner.clone(),
                    reason,
                    policy: None,
                    version: None,
                    sha256: None,
                })
            } else {
                None
            };
            if let Some(s) = patch.segment {
                c.segment = s;
            }
            if let Some(s) = patch.source {
                c.source = s;
            }
            if let Some(r) = &patch.referred_by {
                if let Some(r) = r {
                    if r == id {
                        return Err(ServiceError::invalid(
                            "referred_by",
                            "a customer cannot refer itself",
                        ));
                    }
                    self.require_customer_in(&c.branch, "referred_by", r)?;
                }
                c.referred_by = r.clone();
            }
            let fields = changed_fields(&old.value, &c);
            c.version += 1;
            c.updated_at = now();
            let mut batch = Batch::new();
            stage_customer(&mut batch, Some(&old), &c);
            if let Some(event) = &owner_change {
                batch.put(history_key(&c.id, event.seq), encode(event));
            }
            let resource = ResourceRef::customer(&c);
            if let Some(event) = &owner_change {
                events::add(
                    &mut batch,
                    EventKind::OwnerChanged,
                    resource.clone(),
                    &caller.user,
                    json!({"customer": c.id, "from": event.from, "to": event.to,
                           "reason": event.reason, "version": c.version}),
                );
            }
            let others: Vec<&str> = fields.iter().copied().filter(|f| *f != "owner").collect();
            // Even a patch that changes nothing makes a new version.
            if !others.is_empty() || fields.is_empty() {
                events::add(
                    &mut batch,
                    EventKind::CustomerChanged,
                    resource,
                    &caller.user,
                    json!({"customer": c.id, "fields": others, "version": c.version}),
                );
            }
            match self.repo.commit(batch).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => other?,
            }
            return Ok(c);
        }
        Err(ServiceError::Contended)
    }

    /// Checks that `id` is a customer of `branch` (for references in bodies).
    pub(crate) fn require_customer_in(
        &self,
        branch: &str,
        field: &str,
        id: &str,
    ) -> Result<Stored<Customer>, ServiceError> {
        match self
            .repo
            .read::<Customer>(&keys::key(keys::CUSTOMER, &[id]))?
        {
            Some(c) if c.value.branch == branch => Ok(c),
            _ => Err(ServiceError::UnknownReference {
                field: field.into(),
                kind: "customer",
                id: id.into(),
            }),
        }
    }
}

/// The search text of `?q=`, lower-cased; `None` when absent or blank.
fn search_text(q: Option<&str>) -> Result<Option<String>, ServiceError> {
    match q.map(str::trim) {
        None | Some("") => Ok(None),
        Some(q) if q.chars().count() > 200 => Err(ServiceError::BadParameter(FieldError::new(
            "q",
            "must be at most 200 characters",
        ))),
        Some(q) => Ok(Some(q.to_lowercase())),
    }
}

/// Checks that `caller` may change the owner of a `what` in `branch` from
/// `from` to `to`, and returns the written reason it must give: a manager
/// or admin reassigning needs one; a rep taking an unowned one may add one.
pub(crate) fn owner_change_reason(
    caller: &Principal,
    what: &str,
    branch: &str,
    from: Option<&str>,
    to: Option<&str>,
    reason: Option<&str>,
) -> Result<Option<String>, ServiceError> {
    caller.require_owner_change(what, branch, from, to)?;
    let reason = validate::opt_text("reason", reason)?;
    if reason.is_none() && caller.role != Role::Rep {
        return Err(ServiceError::invalid(
            "reason",
            format!("is required to change a {what}'s owner: say why (it is kept in the {what}'s history)"),
        ));
    }
    Ok(reason)
}

/// The fields a patch changed (names as in the API).
fn changed_fields(old: &Customer, new: &Customer) -> Vec<&'static str> {
    let mut fields = Vec::new();
    if old.name != new.name {
        fields.push("name");
    }
    if old.owner != new.owner {
        fields.push("owner");
    }
    if old.segment != new.segment {
        fields.push("segment");
    }
    if old.source != new.source {
        fields.push("source");
    }
    if old.referred_by != new.referred_by {
        fields.push("referred_by");
    }
    fields
}

/// 409 when the client's `If-Match` version is not the current one.
pub(crate) fn check_version(if_match: Option<u64>, current: u64) -> Result<(), ServiceError> {
    match if_match {
        Some(v) if v != current => Err(ServiceError::VersionConflict {
            expected: v,
            actual: current,
        }),
        _ => Ok(()),
    }
}
